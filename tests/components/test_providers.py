"""The dynamic providers against a running emulator: lifecycle, adoption, drift, idempotent delete, the
clustering task's success, failure and timeout; and the serialized provider run by the SDK's real provider
host in a fresh interpreter."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider

from imm_faces.components.providers import BindingProvider, ClusteringTaskProvider, DatasetProvider, ProjectProvider
from imm_faces.components.providers.base import ProviderError
from imm_faces.components.rehearsal.host import DynamicProviderHost
from imm_faces.emulator.analysis import MetadataAnalyzer
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import bindings, datasets, files, projects, tasks
from tests.fakes import SidecarAnalyzer, write_photo
from tests.helpers import wait_indexed

CREDS_ENV = DEFAULT_ACCESS_KEY.environment()


@pytest.fixture(autouse=True)
def credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CREDS_ENV.items():
        monkeypatch.setenv(key, value)


def where(emulator: Emulator) -> dict[str, Any]:
    return {"region": "cn-hangzhou", "endpoint": emulator.endpoint}


def checked(provider: Any, props: dict[str, Any]) -> dict[str, Any]:
    result = provider.check({}, props)
    assert result.failures == []
    return dict(result.inputs)


def test_project_and_dataset_lifecycle(emulator: Emulator, client: ImmClient) -> None:
    project = ProjectProvider()
    props = checked(
        project, {**where(emulator), "project_name": "life", "description": "one", "project_max_dataset_count": 5.0}
    )  # floats, as the engine sends
    assert props["service_role"] == "AliyunIMMDefaultRole"  # check fills the default
    created = project.create(props)
    assert created.id == "life" and created.outs["create_time"]
    remote = client.call(projects.GetProject, project_name="life").project
    assert (remote.description, remote.project_max_dataset_count) == ("one", 5)

    news = {**props, "description": "two"}
    plan = project.diff("life", created.outs, news)
    assert (plan.changes, plan.replaces) == (True, [])
    updated = project.update("life", created.outs, news)
    assert updated.outs["description"] == "two" and updated.outs["project_name"] == "life"  # full outputs kept
    assert client.call(projects.GetProject, project_name="life").project.description == "two"

    dataset = DatasetProvider()
    ds_props = checked(dataset, {**where(emulator), "project_name": "life", "dataset_name": "d1"})
    ds = dataset.create(ds_props)
    assert ds.id == "life/d1"
    region_change = dataset.diff(ds.id, ds.outs, {**ds_props, "region": "cn-shanghai"})
    assert region_change.replaces == ["region"] and region_change.delete_before_replace is True

    dataset.delete(ds.id, ds.outs)
    dataset.delete(ds.id, ds.outs)  # already gone: still fine
    project.delete("life", updated.outs)
    project.delete("life", updated.outs)
    assert list(client.paginate(projects.ListProjects)) == []


def test_check_reports_rule_violations(emulator: Emulator) -> None:
    result = DatasetProvider().check({}, {**where(emulator), "project_name": "ok", "dataset_name": "no spaces"})
    assert [(f.property, "letters, digits" in f.reason) for f in result.failures] == [("dataset_name", True)]
    from pulumi.output import Unknown  # preview: not known yet, so not judged; the SDK's dynamic-provider host
    from pulumi.runtime.rpc import UNKNOWN  # passes an Unknown (seen under the real engine), the plugin the sentinel

    for unknown in (Unknown(), UNKNOWN):
        assert (
            BindingProvider()
            .check({}, {**where(emulator), "project_name": "p", "dataset_name": "d", "uri": unknown})
            .failures
            == []
        )


def test_existing_objects_are_never_taken_over_silently(emulator: Emulator, client: ImmClient) -> None:
    """Stack B pointed at stack A's project: B's create fails naming the opt-in, and A's object is untouched."""
    client.call(projects.CreateProject, project_name="theirs", description="A's project")
    client.call(datasets.CreateDataset, project_name="theirs", dataset_name="d", description="A's dataset")
    for provider, props in (
        (ProjectProvider(), {"project_name": "theirs", "description": "B's"}),
        (DatasetProvider(), {"project_name": "theirs", "dataset_name": "d", "description": "B's"}),
    ):
        with pytest.raises(ProviderError) as err:
            provider.create(checked(provider, {**where(emulator), **props}))
        assert "already exists and this stack did not create it" in str(err.value)
        assert "adopt_existing=True" in str(err.value) and "adoptExisting" in str(err.value)
    assert client.call(projects.GetProject, project_name="theirs").project.description == "A's project"
    dataset = client.call(datasets.GetDataset, project_name="theirs", dataset_name="d").dataset
    assert dataset.description == "A's dataset"


def test_adoption_is_explicit_and_kept_on_delete(emulator: Emulator, client: ImmClient) -> None:
    client.call(projects.CreateProject, project_name="taken", description="theirs")
    project = ProjectProvider()
    props = checked(project, {**where(emulator), "project_name": "taken", "description": "ours", "adopt": True})
    adopted = project.create(props)
    assert adopted.id == "taken" and adopted.outs["adopted"] is True
    assert client.call(projects.GetProject, project_name="taken").project.description == "ours"
    project.delete(adopted.id, adopted.outs)  # destroy: an adopted object outlives the stack
    assert client.call(projects.GetProject, project_name="taken").project.project_name == "taken"
    opted = project.diff(adopted.id, adopted.outs, {**props, "delete_adopted": True})
    assert opted.changes and opted.replaces == []  # recorded by an update, so destroy sees it
    updated = project.update(adopted.id, adopted.outs, {**props, "delete_adopted": True})
    assert updated.outs["adopted"] is True
    project.delete(adopted.id, updated.outs)
    assert list(client.paginate(projects.ListProjects)) == []

    mine = project.create(checked(project, {**where(emulator), "project_name": "mine", "adopt": True}))
    assert mine.outs["adopted"] is False  # created, not adopted: destroy deletes it
    project.delete(mine.id, mine.outs)
    assert list(client.paginate(projects.ListProjects)) == []

    client.call(projects.CreateProject, project_name="other", service_role="SomeoneElsesRole")
    with pytest.raises(ProviderError, match="already exists and cannot be adopted: service_role is 'SomeoneElsesRole'"):
        project.create(checked(project, {**where(emulator), "project_name": "other", "adopt": True}))
    assert client.call(projects.GetProject, project_name="other").project.service_role == "SomeoneElsesRole"


def test_read_reports_drift_and_deletion(emulator: Emulator, client: ImmClient) -> None:
    project = ProjectProvider()
    created = project.create(checked(project, {**where(emulator), "project_name": "drift", "description": "a"}))
    client.call(projects.UpdateProject, project_name="drift", description="changed by hand")
    read = project.read("drift", created.outs)
    assert read.id == "drift" and read.outs["description"] == "changed by hand"
    assert project.diff("drift", read.outs, created.outs).changes  # the next `up` puts it back
    client.call(projects.DeleteProject, project_name="drift")
    assert project.read("drift", created.outs).id == ""


def test_binding_and_clustering_task(emulator: Emulator, client: ImmClient, oss_root: Path) -> None:
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    write_photo(oss_root, "photos", "b.png", [{"person": 1}, {"person": 2}])
    binding = BindingProvider()
    b_props = checked(binding, {**where(emulator), "project_name": "p", "dataset_name": "d", "uri": "oss://photos"})
    bound = binding.create(b_props)
    assert bound.outs["phase"] == "IncrementalScanning" and bound.outs["adopted"] is False  # first scan done
    with pytest.raises(ProviderError, match="already exists and this stack did not create it"):
        binding.create(b_props)  # another stack binding the same location
    for name in ("a.png", "b.png"):  # indexed before create returned: what the task depends on is there
        meta = client.call(files.GetFileMeta, project_name="p", dataset_name="d", uri=f"oss://photos/{name}")
        assert meta.files and meta.files[0].figures

    task = ClusteringTaskProvider()
    t_props = checked(
        task,
        {
            **where(emulator),
            "project_name": "p",
            "dataset_name": "d",
            "timeout": 30.0,
            "poll_interval": 0.05,
            "triggers": {"photos": "v1"},
            "owner": "p/s/c",
        },
    )
    ran = task.create(t_props)
    assert ran.outs["status"] == "Succeeded" and ran.id == f"p/{ran.outs['task_id']}"  # <project>/<TaskId>
    assert task.read(ran.id, ran.outs).outs["status"] == "Succeeded"
    rerun = task.diff(ran.id, ran.outs, {**t_props, "triggers": {"photos": "v2"}})
    assert rerun.replaces == ["triggers"]
    wait_only = task.diff(ran.id, ran.outs, {**t_props, "timeout": 60.0})
    assert wait_only.changes and wait_only.replaces == []
    assert task.update(ran.id, ran.outs, {**t_props, "timeout": 60.0}).outs["task_id"] == ran.outs["task_id"]
    task.delete(ran.id, ran.outs)  # nothing remote
    binding.delete(bound.id, bound.outs)
    binding.delete(bound.id, bound.outs)


def test_binding_whose_first_scan_fails_fails_the_deployment_and_is_undone(
    emulator: Emulator, client: ImmClient
) -> None:
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    binding = BindingProvider()
    props = checked(binding, {**where(emulator), "project_name": "p", "dataset_name": "d", "uri": "oss://no-bucket/x/"})
    with pytest.raises(ProviderError) as err:
        binding.create(props)
    assert "first full scan did not finish" in str(err.value) and "is Failed" in str(err.value)
    assert "deleted again" in str(err.value)
    left = client.call(bindings.ListBindings, project_name="p", dataset_name="d").bindings
    assert not left  # nothing half-made for the next `up` to trip over


def test_a_failed_binding_that_cannot_be_undone_is_reported_as_partly_created(
    emulator: Emulator, client: ImmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan failed and the binding cannot be deleted again: it exists, so the error carries its id and
    outputs (the plugin records them; nothing is silently left behind) and says to delete it by hand."""
    from imm_faces.components.providers.core import BindingCrud, PartialCreateError
    from imm_faces.runtime.errors import ImmError

    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    crud = BindingCrud()
    real_call = crud.call

    def refuse_delete(props: Any, verb: str, **params: Any) -> Any:
        if verb == "delete":
            raise ImmError("Forbidden.RAM", "not allowed", status=403)
        return real_call(props, verb, **params)

    monkeypatch.setattr(crud, "call", refuse_delete)
    props, failures = crud.check(
        {**where(emulator), "project_name": "p", "dataset_name": "d", "uri": "oss://no-bucket/x/"}
    )
    assert failures == []
    with pytest.raises(PartialCreateError) as err:
        crud.create(props)
    assert err.value.resource_id == "p/d/oss://no-bucket/x/" and err.value.outputs["uri"] == "oss://no-bucket/x/"
    assert "could not be deleted again (Forbidden.RAM): delete it by hand" in err.value.unrecorded  # dynamic
    assert "could not be deleted again (Forbidden.RAM): it is recorded" in str(err.value)  # the plugin records it
    left = client.call(bindings.ListBindings, project_name="p", dataset_name="d").bindings or []
    assert [b.uri for b in left] == ["oss://no-bucket/x/"]


def slow_clustering(emu: Emulator, seconds: float = 1.5) -> None:
    """Make the emulator's clustering tasks take ``seconds`` longer (they cluster what is indexed, without
    waiting for anything, so they are quick otherwise); the delay is before the task's transaction."""
    run = emu.jobs.tasks._run_clustering

    def slow(*args: Any) -> None:
        time.sleep(seconds)
        run(*args)

    emu.jobs.tasks._run_clustering = slow  # type: ignore[method-assign]


def test_clustering_task_failure_names_imm_code(tmp_path: Path) -> None:
    oss_root = tmp_path / "oss"
    uri = write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    with (
        Emulator(oss_root=oss_root, analyzer=MetadataAnalyzer()) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=None) as client,
    ):
        client.call(projects.CreateProject, project_name="p")
        client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
        client.call(files.IndexFileMeta, project_name="p", dataset_name="d", file={"URI": uri})
        wait_indexed(client, "p", "d", 1)  # a task clusters what is indexed when it runs
        task = ClusteringTaskProvider()
        props = checked(task, {**where(emu), "project_name": "p", "dataset_name": "d", "poll_interval": 0.05})
        with pytest.raises(ProviderError, match=r"Failed: FaceAnalysisUnavailable: face analysis is unavailable"):
            task.create(props)


def test_timed_out_task_is_resumed_not_started_again(tmp_path: Path) -> None:
    """A create that times out leaves its task running in IMM; the next create waits for that same task."""
    oss_root = tmp_path / "oss"
    uris = [write_photo(oss_root, "photos", f"{i}.png", [{"person": 1}]) for i in range(2)]
    with (
        Emulator(oss_root=oss_root, analyzer=SidecarAnalyzer(oss_root)) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=None) as client,
    ):
        slow_clustering(emu, 0.8)  # longer than the first create's 0.3 s timeout
        client.call(projects.CreateProject, project_name="p")
        client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
        client.call(files.BatchIndexFileMeta, project_name="p", dataset_name="d", files=[{"URI": u} for u in uris])
        task = ClusteringTaskProvider()
        props = checked(
            task,
            {
                **where(emu),
                "project_name": "p",
                "dataset_name": "d",
                "timeout": 0.3,
                "poll_interval": 0.05,
                "owner": "imm-faces/dev/faces-clustering",
            },
        )
        with pytest.raises(ProviderError) as err:
            task.create(props)
        (first,) = client.call(tasks.ListTasks, project_name="p").tasks or []
        assert first.task_id in str(err.value) and "the next `pulumi up` waits for this same task" in str(err.value)
        with pytest.raises(ProviderError) as other:  # another stack's resource never waits on this one's task
            task.create({**props, "owner": "imm-faces/prod/faces-clustering", "timeout": 0.01})
        assert first.task_id not in str(other.value)
        resumed = task.create({**props, "timeout": 60.0})
        assert resumed.id == f"p/{first.task_id}" and resumed.outs["status"] == "Succeeded"
        assert len(client.call(tasks.ListTasks, project_name="p").tasks or []) == 2
        again = task.create({**props, "timeout": 60.0})  # nothing running any more: a new run
        assert again.id != f"p/{first.task_id}"


def test_configure_credentials_are_used_and_never_pickled(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in CREDS_ENV:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.aliyun/config.json either
    provider = ProjectProvider()
    provider.configure(
        ConfigureRequest(
            Config(
                {
                    "alicloud:accessKey": DEFAULT_ACCESS_KEY.access_key_id,
                    "alicloud:secretKey": DEFAULT_ACCESS_KEY.access_key_secret,
                },
                "imm-faces",
            )
        )
    )
    created = provider.create(checked(provider, {**where(emulator), "project_name": "cfg"}))
    assert created.id == "cfg"
    serialized = serialize_provider(provider)
    import base64

    assert DEFAULT_ACCESS_KEY.access_key_secret.encode() not in base64.b64decode(serialized)
    assert b"imm_faces.components.providers.project" in base64.b64decode(serialized)  # by reference: the stable path


@pytest.fixture
def host() -> Iterator[DynamicProviderHost]:
    with DynamicProviderHost(env={**os.environ, **CREDS_ENV}) as h:
        yield h


def test_serialized_provider_runs_in_a_fresh_interpreter(
    emulator: Emulator, host: DynamicProviderHost, client: ImmClient
) -> None:
    """`python -m pulumi.dynamic`, started as the engine starts it, unpickles and runs our providers."""
    urn = "urn:pulumi:test::imm-faces::pulumi-python:dynamic/imm:Project::faces-project"
    news = {
        "__provider": serialize_provider(ProjectProvider()),
        **where(emulator),
        "project_name": "fresh",
        "description": "from the host",
        "project_max_dataset_count": 3,
    }
    inputs, failures = host.check(urn, {}, news)
    assert failures == [] and inputs["service_role"] == "AliyunIMMDefaultRole"
    id_, outs = host.create(urn, inputs)
    assert (
        id_ == "fresh" and client.call(projects.GetProject, project_name="fresh").project.description == "from the host"
    )
    changes, replaces, _ = host.diff(urn, id_, outs, {**inputs, "description": "updated"})
    assert changes and replaces == []
    outs = host.update(urn, id_, outs, {**inputs, "description": "updated"})
    assert outs["description"] == "updated" and outs["__provider"] == news["__provider"]
    read_id, read = host.read(urn, id_, outs)
    assert read_id == "fresh" and read["description"] == "updated"
    host.delete(urn, id_, outs)
    host.delete(urn, id_, outs)
    _, failures = host.check(urn, {}, {**news, "project_name": "no spaces allowed"})
    assert [f.property for f in failures] == ["project_name"]
    assert list(client.paginate(projects.ListProjects)) == []


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        (ProjectProvider, b"imm_faces.components.providers.project"),
        (DatasetProvider, b"imm_faces.components.providers.dataset"),
        (BindingProvider, b"imm_faces.components.providers.binding"),
        (ClusteringTaskProvider, b"imm_faces.components.providers.clustering_task"),
    ],
)
def test_providers_pickle_by_reference(provider: type, path: bytes) -> None:
    """State names the class by module path, so the installed code runs and the path is a stable API."""
    import base64

    raw = base64.b64decode(serialize_provider(provider()))
    assert path in raw and provider.__name__.encode() in raw
    assert len(raw) < 200  # a reference, not pickled bytecode
