"""Long waits in the plugin, driven over gRPC as the engine drives it (the plugin started with an engine address
that is a fake engine, so its Log calls are seen): a trivial Create answers at once while eight clustering tasks
are waited for; Cancel (Ctrl-C in `pulumi up`) ends every wait within seconds, each object recorded as partially
created (ErrorResourceInitFailed), and a new plugin process (the next `up`) resumes them by Update; during a
wait, progress reaches the engine's log as status messages of the resource."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from imm_faces.components.providers.core import DeploymentCancelledError
from imm_faces.components.providers.plugin import EnginePauses
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import bindings, datasets, files, projects, tasks
from tests.fakes import write_photo
from tests.helpers import wait_indexed
from tests.provider import fake_engine
from tests.provider.engine import PROJECT, STACK, configure, init_failed, launched, plain, plugin_command, urn
from tests.provider.faults import FaultProxy
from tests.provider.test_plugin import BINDING, TASK, checked, create

Stub = provider_pb2_grpc.ResourceProviderStub


@pytest.fixture
def engine() -> Iterator[tuple[fake_engine.FakeEngine, str]]:
    server, fake, address = fake_engine.start(PROJECT, STACK)
    try:
        yield fake, address
    finally:
        server.stop(0)


def plugin_with(address: str, home: Path) -> Any:
    return launched(plugin_command("executable", engine=address), home)


def hold(emulator: Emulator) -> tuple[threading.Event, set[str]]:
    """Clustering tasks stay Running, and the first full scan of the locations put in the returned set stays
    FullScanning, until the returned event is set."""
    release, held = threading.Event(), set()
    run, scan = emulator.jobs.tasks._run_clustering, emulator.jobs.scanner._scan_binding

    def held_clustering(*args: Any) -> None:
        release.wait(120)
        run(*args)

    def held_scan(binding: dict[str, Any]) -> None:
        if binding["URI"] in held and not release.is_set():
            return
        scan(binding)

    emulator.jobs.tasks._run_clustering = held_clustering  # type: ignore[method-assign]
    emulator.jobs.scanner._scan_binding = held_scan  # type: ignore[method-assign]
    return release, held


def dataset_with_photos(client: ImmClient, oss_root: Path) -> None:
    uris = [write_photo(oss_root, "photos", f"{i}.png", [{"person": 1}]) for i in range(2)]
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    client.call(files.BatchIndexFileMeta, project_name="p", dataset_name="d", files=[{"URI": u} for u in uris])
    wait_indexed(client, "p", "d", 2)


def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running_tasks(client: ImmClient) -> int:
    return len(client.call(tasks.ListTasks, project_name="p").tasks or [])


def test_a_trivial_create_answers_while_eight_waits_are_in_flight(
    emulator: Emulator, client: ImmClient, oss_root: Path, tmp_path: Path
) -> None:
    """Eight clustering tasks are waited for (the engine's default --parallel on 2 cores is 8); a project's
    Create still answers in under a second. Before, the waits filled asyncio's default pool (6 threads on 2
    cores) and it waited for one of them to end (22 s when measured)."""
    release, _ = hold(emulator)
    dataset_with_photos(client, oss_root)
    with ThreadPoolExecutor(8) as pool, plugin_with("127.0.0.1:1", tmp_path) as plugin:
        try:
            configure(plugin, emulator)
            waits = [
                pool.submit(
                    create,
                    plugin,
                    TASK,
                    f"clustering-{i}",
                    checked(
                        plugin, TASK, f"clustering-{i}", {"projectName": "p", "datasetName": "d", "pollInterval": 0.5}
                    ),
                )
                for i in range(8)
            ]
            until(lambda: running_tasks(client) == 8)
            time.sleep(1.0)  # every wait past its first polls, asleep between two
            inputs = checked(plugin, "imm:index:Project", "quick", {"projectName": "quick"})
            started = time.monotonic()
            created = plugin.Create(
                provider_pb2.CreateRequest(urn=urn("imm:index:Project", "quick"), properties=inputs), timeout=30
            )
            took = time.monotonic() - started
            print(f"a trivial Create beside eight waits: {took:.3f} s")
            assert created.id == "quick" and not any(w.done() for w in waits)
            assert took < 1.0, f"a trivial Create took {took:.2f} s while eight waits were in flight"
        finally:
            release.set()
        assert all(plain(w.result(timeout=60).properties)["status"] == "Succeeded" for w in waits)


def test_cancel_ends_every_wait_and_the_next_up_resumes(
    engine: tuple[fake_engine.FakeEngine, str], emulator: Emulator, client: ImmClient, oss_root: Path, tmp_path: Path
) -> None:
    """Two clustering tasks and a binding's first scan are waited for with the default timeouts (an hour for the
    scan); progress reaches the engine's log; Cancel ends all three waits within seconds, each recorded as
    partially created; a new plugin process, given the recorded state, resumes the same task and binding."""
    fake, address = engine
    release, held = hold(emulator)
    dataset_with_photos(client, oss_root)
    write_photo(oss_root, "family", "a.png", [{"person": 3}])
    held.add("oss://family/")
    steps: dict[str, Any] = {}
    try:
        with ThreadPoolExecutor(3) as pool, plugin_with(address, tmp_path) as plugin:  # (a hung call ends with it)
            configure(plugin, emulator)
            for name in ("clustering-a", "clustering-b"):
                steps[name] = (TASK, checked(plugin, TASK, name, {"projectName": "p", "datasetName": "d"}))
            steps["family"] = (
                BINDING,
                checked(plugin, BINDING, "family", {"projectName": "p", "datasetName": "d", "uri": "oss://family/"}),
            )
            assert (
                plain(steps["family"][1])["scanTimeout"] == 3600 and plain(steps["clustering-a"][1])["timeout"] == 1800
            )
            calls: dict[str, Future[Any]] = {
                name: pool.submit(create, plugin, token, name, inputs) for name, (token, inputs) in steps.items()
            }

            def progress(name: str) -> list[str]:
                token = steps[name][0]
                return [log.message for log in fake.logs if log.urn == urn(token, name) and log.ephemeral]

            until(lambda: all(progress(name) for name in steps))  # each wait has said what it waits for
            assert "waiting for IMM's first full scan" in progress("family")[0] and "so far" in progress("family")[0]
            assert "waiting for it to end" in progress("clustering-a")[0]
            assert not any(call.done() for call in calls.values())
            started = time.monotonic()
            plugin.Cancel(empty_pb2.Empty())
            recorded = {}
            for name, call in calls.items():
                with pytest.raises(grpc.RpcError) as err:
                    call.result(timeout=30)
                detail = init_failed(err.value)
                assert detail is not None, (name, err.value.details())  # type: ignore[attr-defined]
                assert "cancelled" in detail.reasons[0]
                recorded[name] = detail
            took = time.monotonic() - started
            assert took < 5.0, f"the waits ended {took:.1f} s after Cancel"
    finally:
        release.set()  # the emulator's held jobs go on, whatever happened
    assert plain(recorded["family"].properties)["phase"] == "FullScanning"
    assert all(plain(recorded[t].properties)["status"] == "Running" for t in ("clustering-a", "clustering-b"))
    task_ids = {plain(recorded[t].properties)["taskId"] for t in ("clustering-a", "clustering-b")}
    assert {f"p/{t}" for t in task_ids} == {recorded[t].id for t in ("clustering-a", "clustering-b")}

    with plugin_with(address, tmp_path) as plugin:  # the next `pulumi up`: Update of what was recorded
        configure(plugin, emulator)
        for name, detail in recorded.items():
            token = steps[name][0]
            request = provider_pb2.UpdateRequest(
                id=detail.id, urn=urn(token, name), olds=detail.properties, news=detail.inputs, timeout=300
            )
            updated = plugin.Update(request, timeout=60)
            outs = plain(updated.properties)
            if token == TASK:
                assert (outs["status"], outs["taskId"]) == ("Succeeded", plain(detail.properties)["taskId"])
            else:
                assert (outs["state"], outs["phase"]) == ("Running", "IncrementalScanning")
    assert running_tasks(client) == 2  # the same tasks, none started again
    bound = client.call(bindings.ListBindings, project_name="p", dataset_name="d").bindings or []
    assert [b.uri for b in bound] == ["oss://family/"]


def test_progress_is_reported_periodically_and_a_cancel_ends_the_pause() -> None:
    reports: list[str] = []
    cancelled = threading.Event()
    sleep = EnginePauses(cancelled, reports.append, every=0.05).sleeper("waiting for x")
    started = time.monotonic()
    while time.monotonic() - started < 0.3:
        sleep(0.02)
    assert 3 <= len(reports) <= 8 and all(r.startswith("waiting for x: ") for r in reports)
    threading.Timer(0.1, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(DeploymentCancelledError):
        sleep(30)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_a_binding_whose_scan_failed_and_could_not_be_undone_is_recorded_and_resumed(
    plugin: Stub, emulator: Emulator, client: ImmClient, oss_root: Path, fault: str
) -> None:
    """The first scan fails (the bucket is not there) and deleting the binding again fails too: with a 500, or on
    the network. The binding is recorded as partially created, the message keeps the scan's failure; once the
    cause is fixed, the next `up`'s Update deletes the failed binding and binds the location anew. Before, the
    next Update recorded the Failed binding as healthy (500), or nothing was recorded and the scan's failure was
    lost from the message (network)."""
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    with FaultProxy(emulator.endpoint) as proxy:
        configure(plugin, emulator, endpoint=proxy.endpoint)
        proxy.faults["DeleteBinding"] = fault  # type: ignore[assignment]
        inputs = checked(plugin, BINDING, "family", {"projectName": "p", "datasetName": "d", "uri": "oss://family/"})
        with pytest.raises(grpc.RpcError) as err:
            create(plugin, BINDING, "family", inputs)
        detail = init_failed(err.value)
        assert detail is not None, err.value.details()  # type: ignore[attr-defined]
        assert detail.id == "p/d/oss://family/" and plain(detail.properties)["state"] == "Failed"
        for text in (err.value.details(), detail.reasons[0]):  # type: ignore[attr-defined]
            assert "bucket family does not exist" in text and "could not be deleted again" in text, text
        assert proxy.counts["DeleteBinding"] >= 1

        del proxy.faults["DeleteBinding"]
        write_photo(oss_root, "family", "a.png", [{"person": 1}])  # the cause, fixed
        request = provider_pb2.UpdateRequest(
            id=detail.id, urn=urn(BINDING, "family"), olds=detail.properties, news=detail.inputs, timeout=300
        )
        outs = plain(plugin.Update(request, timeout=60).properties)
    assert (outs["state"], outs["phase"]) == ("Running", "IncrementalScanning")
    (bound,) = client.call(bindings.ListBindings, project_name="p", dataset_name="d").bindings or []
    assert (bound.state, bound.phase) == ("Running", "IncrementalScanning")
    assert client.call(files.GetFileMeta, project_name="p", dataset_name="d", uri="oss://family/a.png").files


def test_creating_a_binding_that_exists_names_the_resources_adopt_input(
    plugin: Stub, emulator: Emulator, client: ImmClient
) -> None:
    configure(plugin, emulator)
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    client.call(bindings.CreateBinding, project_name="p", dataset_name="d", uri="oss://photos/")
    with pytest.raises(grpc.RpcError) as err:
        create(
            plugin,
            BINDING,
            "b",
            checked(plugin, BINDING, "b", {"projectName": "p", "datasetName": "d", "uri": "oss://photos/"}),
        )
    assert "already exists" in err.value.details() and "adopt on an imm resource" in err.value.details()  # type: ignore[attr-defined]
