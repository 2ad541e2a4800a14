"""One behaviour suite for both ways a program reaches the IMM resources: the Python dynamic providers (called as
the provider host calls them) and the `imm` plugin (over gRPC). Each test is written once and runs against
both front ends on the emulator: no silent adoption, adoption kept on destroy, drift and deletion seen by a
refresh, a binding whose first scan fails undone, and a clustering task that timed out resumed, not restarted
(the dynamic provider by its next create finding the task by its tag; the plugin by its next update of the
partially created resource)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from imm_faces.components.providers import BindingProvider, ClusteringTaskProvider, DatasetProvider, ProjectProvider
from imm_faces.components.providers.base import ProviderError
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.models.base import camel_name as camel
from imm_faces.runtime.models.base import snake_name as snake
from imm_faces.runtime.operations import bindings, datasets, files, projects, tasks
from tests.fakes import write_photo
from tests.helpers import wait_indexed
from tests.provider.engine import configure, init_failed, plain, struct, urn
from tests.provider.faults import FaultProxy


@dataclass
class StepFailedError(Exception):
    message: str
    partial: tuple[str, dict[str, Any]] | None = None  # (id, outputs) when recorded as partially created


class Frontend(Protocol):
    def check(self, kind: str, news: dict[str, Any]) -> dict[str, Any]: ...
    def create(self, kind: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]: ...
    def read(self, kind: str, id_: str, outs: dict[str, Any]) -> tuple[str, dict[str, Any]]: ...
    def update(self, kind: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, kind: str, id_: str, outs: dict[str, Any]) -> None: ...
    def diff(self, kind: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> tuple[bool, list[str]]: ...
    def resume(self, kind: str, inputs: dict[str, Any], failed: StepFailedError) -> tuple[str, dict[str, Any]]: ...


DYNAMIC = {
    "Project": ProjectProvider,
    "Dataset": DatasetProvider,
    "Binding": BindingProvider,
    "FigureClusteringTask": ClusteringTaskProvider,
}


class Dynamic:
    """The dynamic providers, called as `python -m pulumi.dynamic` calls them (credentials from the environment)."""

    providers = DYNAMIC

    def check(self, kind: str, news: dict[str, Any]) -> dict[str, Any]:
        result = self.providers[kind]().check({}, news)
        assert result.failures == []
        return dict(result.inputs)

    def create(self, kind: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        try:
            created = self.providers[kind]().create(inputs)
        except ProviderError as exc:
            raise StepFailedError(str(exc)) from None  # nothing is recorded in the state
        return created.id or "", dict(created.outs or {})

    def read(self, kind: str, id_: str, outs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        result = self.providers[kind]().read(id_, outs)
        return result.id or "", dict(result.outs or {})

    def update(self, kind: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        return dict(self.providers[kind]().update(id_, olds, news).outs or {})

    def delete(self, kind: str, id_: str, outs: dict[str, Any]) -> None:
        self.providers[kind]().delete(id_, outs)

    def diff(self, kind: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> tuple[bool, list[str]]:
        planned = self.providers[kind]().diff(id_, olds, news)
        return bool(planned.changes), list(planned.replaces or [])

    def resume(self, kind: str, inputs: dict[str, Any], failed: StepFailedError) -> tuple[str, dict[str, Any]]:
        assert failed.partial is None
        return self.create(kind, inputs)  # the next `up` creates again


class Plugin:
    """The plugin over gRPC, as the engine calls it (credentials from the provider config)."""

    def __init__(self, stub: provider_pb2_grpc.ResourceProviderStub) -> None:
        self.stub = stub

    @staticmethod
    def _wire(props: dict[str, Any]) -> Any:
        return struct({camel(k): v for k, v in props.items()})

    @staticmethod
    def _props(message: Any) -> dict[str, Any]:
        return {snake(k): v for k, v in plain(message).items()}

    def check(self, kind: str, news: dict[str, Any]) -> dict[str, Any]:
        token = f"imm:index:{kind}"
        result = self.stub.Check(provider_pb2.CheckRequest(urn=urn(token, "r"), olds=struct({}), news=self._wire(news)))
        assert list(result.failures) == []
        return self._props(result.inputs)

    def create(self, kind: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        request = provider_pb2.CreateRequest(urn=urn(f"imm:index:{kind}", "r"), properties=self._wire(inputs))
        try:
            created = self.stub.Create(request)
        except grpc.RpcError as exc:
            partial = init_failed(exc)
            recorded = (partial.id, self._props(partial.properties)) if partial else None
            raise StepFailedError(exc.details(), recorded) from None  # type: ignore[attr-defined]
        return created.id, self._props(created.properties)

    def read(self, kind: str, id_: str, outs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        read = self.stub.Read(
            provider_pb2.ReadRequest(id=id_, urn=urn(f"imm:index:{kind}", "r"), properties=self._wire(outs))
        )
        return read.id, self._props(read.properties)

    def update(self, kind: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        request = provider_pb2.UpdateRequest(
            id=id_, urn=urn(f"imm:index:{kind}", "r"), olds=self._wire(olds), news=self._wire(news)
        )
        return self._props(self.stub.Update(request).properties)

    def diff(self, kind: str, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> tuple[bool, list[str]]:
        planned = self.stub.Diff(
            provider_pb2.DiffRequest(
                id=id_, urn=urn(f"imm:index:{kind}", "r"), olds=self._wire(olds), news=self._wire(news)
            )
        )
        return planned.changes == provider_pb2.DiffResponse.DIFF_SOME, [snake(k) for k in planned.replaces]

    def delete(self, kind: str, id_: str, outs: dict[str, Any]) -> None:
        self.stub.Delete(
            provider_pb2.DeleteRequest(id=id_, urn=urn(f"imm:index:{kind}", "r"), properties=self._wire(outs))
        )

    def resume(self, kind: str, inputs: dict[str, Any], failed: StepFailedError) -> tuple[str, dict[str, Any]]:
        assert failed.partial is not None, "not recorded: the engine would forget the object"
        id_, outs = failed.partial
        return id_, self.update(kind, id_, outs, inputs)  # the next `up` updates what was recorded


@pytest.fixture(params=["dynamic", "plugin"])
def front(request: pytest.FixtureRequest, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Frontend:
    if request.param == "dynamic":
        for key, value in DEFAULT_ACCESS_KEY.environment().items():
            monkeypatch.setenv(key, value)
        return Dynamic()
    stub = request.getfixturevalue("plugin")
    configure(stub, emulator)
    return Plugin(stub)


def where(emulator: Emulator) -> dict[str, Any]:
    return {"region": "cn-hangzhou", "endpoint": emulator.endpoint}


def test_existing_objects_are_taken_over_only_when_asked_and_kept_on_delete(
    front: Frontend, emulator: Emulator, client: ImmClient
) -> None:
    client.call(projects.CreateProject, project_name="theirs", description="A's project")
    inputs = front.check("Project", {**where(emulator), "project_name": "theirs", "description": "B's"})
    with pytest.raises(StepFailedError) as err:
        front.create("Project", inputs)
    assert "already exists and this stack did not create it" in err.value.message and err.value.partial is None
    assert client.call(projects.GetProject, project_name="theirs").project.description == "A's project"

    adopted_id, adopted = front.create("Project", {**inputs, "adopt": True})
    assert adopted["adopted"] is True
    assert client.call(projects.GetProject, project_name="theirs").project.description == "B's"
    front.delete("Project", adopted_id, adopted)  # destroy keeps what was adopted
    assert client.call(projects.GetProject, project_name="theirs").project.project_name == "theirs"
    opted = front.update("Project", adopted_id, adopted, {**inputs, "adopt": True, "delete_adopted": True})
    front.delete("Project", adopted_id, opted)
    assert list(client.paginate(projects.ListProjects)) == []


def test_refresh_sees_drift_and_deletion(front: Frontend, emulator: Emulator, client: ImmClient) -> None:
    client.call(projects.CreateProject, project_name="p")
    inputs = front.check("Dataset", {**where(emulator), "project_name": "p", "dataset_name": "d", "description": "a"})
    id_, outs = front.create("Dataset", inputs)
    client.call(datasets.UpdateDataset, project_name="p", dataset_name="d", description="by hand")
    read_id, read = front.read("Dataset", id_, outs)
    assert (read_id, read["description"]) == ("p/d", "by hand")
    client.call(datasets.DeleteDataset, project_name="p", dataset_name="d")
    assert front.read("Dataset", id_, outs)[0] == ""
    front.delete("Dataset", id_, outs)  # already gone: fine


def test_binding_whose_first_scan_fails_is_undone(front: Frontend, emulator: Emulator, client: ImmClient) -> None:
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    inputs = front.check(
        "Binding", {**where(emulator), "project_name": "p", "dataset_name": "d", "uri": "oss://no-bucket/x/"}
    )
    with pytest.raises(StepFailedError) as err:
        front.create("Binding", inputs)
    assert "first full scan did not finish" in err.value.message and "deleted again" in err.value.message
    assert err.value.partial is None  # nothing left to record
    assert not client.call(bindings.ListBindings, project_name="p", dataset_name="d").bindings


def test_timed_out_task_is_resumed_not_started_again(
    front: Frontend, emulator: Emulator, client: ImmClient, oss_root: Any
) -> None:
    run = emulator.jobs.tasks._run_clustering

    def slow(*args: Any) -> None:  # the task outlasts the first wait
        time.sleep(0.6)
        run(*args)

    emulator.jobs.tasks._run_clustering = slow  # type: ignore[method-assign]
    uris = [write_photo(oss_root, "photos", f"{i}.png", [{"person": 1}]) for i in range(2)]
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    client.call(files.BatchIndexFileMeta, project_name="p", dataset_name="d", files=[{"URI": u} for u in uris])
    wait_indexed(client, "p", "d", 2)
    inputs = front.check(
        "FigureClusteringTask",
        {
            **where(emulator),
            "project_name": "p",
            "dataset_name": "d",
            "timeout": 0.2,
            "poll_interval": 0.05,
            "owner": "consumer/dev/faces-clustering",
        },
    )
    with pytest.raises(StepFailedError) as err:
        front.create("FigureClusteringTask", inputs)
    (running,) = client.call(tasks.ListTasks, project_name="p").tasks or []
    assert running.task_id in err.value.message and "waits for this same task" in err.value.message
    id_, outs = front.resume("FigureClusteringTask", {**inputs, "timeout": 60.0}, err.value)
    assert (id_, outs["task_id"], outs["status"]) == (f"p/{running.task_id}", running.task_id, "Succeeded")
    assert len(client.call(tasks.ListTasks, project_name="p").tasks or []) == 1


def test_an_endpoint_change_updates_nothing(front: Frontend, emulator: Emulator, client: ImmClient) -> None:
    """The rule both front ends share (the core's): another endpoint to the same IMM is an update that writes
    nothing, never a replace; another spelling of the same endpoint is no change."""
    client.call(projects.CreateProject, project_name="p")
    inputs = front.check("Dataset", {**where(emulator), "project_name": "p", "dataset_name": "d"})
    id_, outs = front.create("Dataset", inputs)
    assert front.diff("Dataset", id_, outs, {**inputs, "endpoint": emulator.endpoint + "/"}) == (False, [])
    with FaultProxy(emulator.endpoint) as proxy:
        moved = {**inputs, "endpoint": proxy.endpoint}
        assert front.diff("Dataset", id_, outs, moved) == (True, [])
        assert front.update("Dataset", id_, outs, moved)["endpoint"] == proxy.endpoint
    assert {a for a in proxy.counts if not a.startswith(("Get", "List"))} == set()
    assert [d.dataset_name for d in client.paginate(datasets.ListDatasets, project_name="p")] == ["d"]
