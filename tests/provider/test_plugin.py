"""The `imm` provider plugin driven over gRPC as the engine drives it, against the emulator: each resource's
lifecycle (preview with unknowns, create, refresh, diff, update, delete), `pulumi import` (Read by id only), a
missing object reading as gone, secrets kept secret through Read, and partial failure (ErrorResourceInitFailed)
resumed by the next update (test_behaviour.py, with the dynamic providers). The plugin has no credentials in
its environment: they come from its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import bindings, datasets, files, projects, tasks
from imm_faces.runtime.waiters import wait_for_task
from tests.fakes import write_photo
from tests.provider.engine import (
    UNKNOWN,
    configure,
    is_secret,
    plain,
    secret,
    struct,
    urn,
)

Stub = provider_pb2_grpc.ResourceProviderStub
DIFF_SOME, DIFF_NONE = provider_pb2.DiffResponse.DIFF_SOME, provider_pb2.DiffResponse.DIFF_NONE
KIND = provider_pb2.PropertyDiff


def check(plugin: Stub, token: str, name: str, news: dict[str, Any], olds: Any = None) -> provider_pb2.CheckResponse:
    return plugin.Check(
        provider_pb2.CheckRequest(
            urn=urn(token, name),
            olds=olds or struct({}),
            news=struct(news),
            name=name,
            type=token,
            randomSeed=b"0" * 32,
        )
    )


def checked(plugin: Stub, token: str, name: str, news: dict[str, Any]) -> Any:
    response = check(plugin, token, name, news)
    assert [(f.property, f.reason) for f in response.failures] == []
    return response.inputs


def create(plugin: Stub, token: str, name: str, inputs: Any, preview: bool = False) -> provider_pb2.CreateResponse:
    return plugin.Create(
        provider_pb2.CreateRequest(urn=urn(token, name), properties=inputs, preview=preview, timeout=300)
    )


def read(
    plugin: Stub, token: str, name: str, id_: str, properties: Any = None, inputs: Any = None
) -> provider_pb2.ReadResponse:
    request = provider_pb2.ReadRequest(id=id_, urn=urn(token, name))
    if properties is not None:
        request.properties.CopyFrom(properties)
    if inputs is not None:
        request.inputs.CopyFrom(inputs)
    return plugin.Read(request)


def diff(plugin: Stub, token: str, id_: str, olds: Any, news: Any) -> provider_pb2.DiffResponse:
    return plugin.Diff(provider_pb2.DiffRequest(id=id_, urn=urn(token, "r"), olds=olds, news=news))


PROJECT, DATASET, BINDING, TASK = (f"imm:index:{t}" for t in ("Project", "Dataset", "Binding", "FigureClusteringTask"))


def test_project_lifecycle_preview_refresh_diff_update_delete(
    plugin: Stub, emulator: Emulator, client: ImmClient
) -> None:
    configure(plugin, emulator)
    # preview: the name is not known yet; nothing is judged or created, IMM's outputs are unknown
    inputs = checked(plugin, PROJECT, "p", {"projectName": UNKNOWN})
    assert plain(inputs)["serviceRole"] == "AliyunIMMDefaultRole" and plain(inputs)["region"] == "cn-hangzhou"
    assert plain(inputs)["endpoint"] == emulator.endpoint  # from the provider config
    preview = create(plugin, PROJECT, "p", inputs, preview=True)
    assert preview.id == "" and plain(preview.properties)["createTime"] == UNKNOWN
    assert list(client.paginate(projects.ListProjects)) == []

    news = {"projectName": "photos", "description": secret("family photos"), "projectMaxDatasetCount": 5.0}
    inputs = checked(plugin, PROJECT, "p", news)
    assert is_secret(plain(inputs)["description"])
    created = create(plugin, PROJECT, "p", inputs)
    outs = plain(created.properties)
    assert created.id == "photos" and outs["adopted"] is False and outs["createTime"]
    assert outs["description"] == secret("family photos")  # still secret in the outputs
    remote = client.call(projects.GetProject, project_name="photos").project
    assert (remote.description, remote.project_max_dataset_count) == ("family photos", 5)

    # refresh after a change by hand: the drift is read back, still secret
    client.call(projects.UpdateProject, project_name="photos", description="changed by hand")
    refreshed = read(plugin, PROJECT, "p", "photos", created.properties, inputs)
    assert refreshed.id == "photos"
    assert plain(refreshed.properties)["description"] == secret("changed by hand")
    assert plain(refreshed.inputs)["description"] == secret("changed by hand")
    assert "createTime" not in plain(refreshed.inputs) and "adopted" not in plain(refreshed.inputs)

    same = diff(plugin, PROJECT, "photos", created.properties, inputs)
    assert same.changes == DIFF_NONE
    changed = diff(plugin, PROJECT, "photos", refreshed.properties, inputs)  # the next `up` puts it back
    assert (changed.changes, list(changed.replaces), list(changed.diffs)) == (DIFF_SOME, [], ["description"])
    assert changed.detailedDiff["description"].kind == KIND.UPDATE
    other_name = checked(plugin, PROJECT, "p", {**news, "projectName": "other"})
    renamed = diff(plugin, PROJECT, "photos", created.properties, other_name)
    assert list(renamed.replaces) == ["projectName"] and not renamed.deleteBeforeReplace  # new name: create first
    other_region = checked(plugin, PROJECT, "p", {**news, "region": "cn-shanghai"})
    moved = diff(plugin, PROJECT, "photos", created.properties, other_region)
    assert list(moved.replaces) == ["region"] and moved.deleteBeforeReplace  # same name: delete first
    assert moved.detailedDiff["region"].kind == KIND.UPDATE_REPLACE

    updated = plugin.Update(
        provider_pb2.UpdateRequest(
            id="photos", urn=urn(PROJECT, "p"), olds=refreshed.properties, news=inputs, timeout=300
        )
    )
    assert plain(updated.properties)["description"] == secret("family photos")
    assert client.call(projects.GetProject, project_name="photos").project.description == "family photos"

    for _ in range(2):  # the second finds it gone: still fine
        plugin.Delete(provider_pb2.DeleteRequest(id="photos", urn=urn(PROJECT, "p"), properties=updated.properties))
    assert list(client.paginate(projects.ListProjects)) == []
    gone = read(plugin, PROJECT, "p", "photos", updated.properties, inputs)
    assert gone.id == "" and not gone.HasField("properties") and not gone.HasField("inputs")


def test_check_failures_name_the_property(plugin: Stub, emulator: Emulator) -> None:
    configure(plugin, emulator)
    failures = check(plugin, DATASET, "d", {"projectName": "ok", "datasetName": "no spaces", "colour": "red"}).failures
    assert sorted(f.property for f in failures) == ["colour", "datasetName"]
    assert any("letters, digits" in f.reason for f in failures)
    bad_uri = check(plugin, BINDING, "b", {"projectName": "p", "datasetName": "d", "uri": "http://x"}).failures
    assert [(f.property, "oss://" in f.reason) for f in bad_uri] == [("uri", True)]
    assert not check(plugin, BINDING, "b", {"projectName": "p", "datasetName": "d", "uri": UNKNOWN}).failures
    task = plain(checked(plugin, TASK, "faces-clustering", {"projectName": "p", "datasetName": "d"}))
    assert task["owner"] == "consumer/dev/faces-clustering"  # from the URN, as the Python component names it
    assert (task["timeout"], task["pollInterval"], task["triggers"]) == (1800, 2, {})  # the defaults
    configure(plugin, emulator, region="")  # no region anywhere (the plugin's environment has none)
    no_region = check(plugin, PROJECT, "p", {"projectName": "p"}).failures
    assert [f.property for f in no_region] == ["region"]


def test_credentials_come_from_the_provider_config(plugin: Stub, emulator: Emulator, client: ImmClient) -> None:
    configure(plugin, emulator, accessKey="", secretKey="")  # none in the config, none in its environment
    inputs = checked(plugin, PROJECT, "p", {"projectName": "nocreds"})
    with pytest.raises(grpc.RpcError) as err:
        create(plugin, PROJECT, "p", inputs)
    assert "no Alibaba Cloud credentials found" in err.value.details()  # type: ignore[attr-defined]
    assert "Traceback" not in err.value.details()  # type: ignore[attr-defined]
    assert list(client.paginate(projects.ListProjects)) == []


def test_dataset_and_binding_lifecycle(plugin: Stub, emulator: Emulator, client: ImmClient, oss_root: Path) -> None:
    configure(plugin, emulator)
    client.call(projects.CreateProject, project_name="p")
    ds = create(
        plugin,
        DATASET,
        "d",
        checked(plugin, DATASET, "d", {"projectName": "p", "datasetName": "d", "datasetMaxFileCount": 1000.0}),
    )
    assert ds.id == "p/d"
    assert client.call(datasets.GetDataset, project_name="p", dataset_name="d").dataset.dataset_max_file_count == 1000
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    b_inputs = checked(plugin, BINDING, "b", {"projectName": "p", "datasetName": "d", "uri": "oss://photos"})
    assert plain(b_inputs)["scanTimeout"] == 3600  # the default
    bound = create(plugin, BINDING, "b", b_inputs)
    assert bound.id == "p/d/oss://photos" and plain(bound.properties)["phase"] == "IncrementalScanning"
    meta = client.call(files.GetFileMeta, project_name="p", dataset_name="d", uri="oss://photos/a.png")
    assert meta.files  # indexed before create returned
    with pytest.raises(grpc.RpcError) as err:  # another stack binding the same location
        create(plugin, BINDING, "b2", b_inputs)
    assert "already exists and this stack did not create it" in err.value.details()  # type: ignore[attr-defined]
    moved = diff(
        plugin,
        BINDING,
        bound.id,
        bound.properties,
        checked(plugin, BINDING, "b", {"projectName": "p", "datasetName": "d", "uri": "oss://photos/x/"}),
    )
    assert list(moved.replaces) == ["uri"]
    plugin.Delete(provider_pb2.DeleteRequest(id=bound.id, urn=urn(BINDING, "b"), properties=bound.properties))
    assert not client.call(bindings.ListBindings, project_name="p", dataset_name="d").bindings
    for token, resource in ((BINDING, bound), (DATASET, ds)):  # the binding again: already gone, still fine
        plugin.Delete(provider_pb2.DeleteRequest(id=resource.id, urn=urn(token, "x"), properties=resource.properties))
    assert list(client.paginate(datasets.ListDatasets, project_name="p")) == []


def test_import_reads_existing_objects_by_id(
    plugin: Stub, emulator: Emulator, client: ImmClient, oss_root: Path
) -> None:
    """`pulumi import imm:index:<Type> <name> <id>`: Read with the id only; the answer carries the inputs."""
    configure(plugin, emulator)
    client.call(projects.CreateProject, project_name="old", description="made by hand", project_max_dataset_count=7)
    client.call(datasets.CreateDataset, project_name="old", dataset_name="d", description="by hand too")
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    client.call(bindings.CreateBinding, project_name="old", dataset_name="d", uri="oss://photos/")
    task_id = client.call(
        tasks.CreateFigureClusteringTask, project_name="old", dataset_name="d", tags={"photos": "v1"}
    ).task_id
    assert task_id and wait_for_task(client, "old", task_id, timeout=30, interval=0.05).status == "Succeeded"

    project = read(plugin, PROJECT, "imported", "old")
    assert project.id == "old"
    assert {
        k: plain(project.inputs).get(k)
        for k in ("projectName", "description", "projectMaxDatasetCount", "serviceRole", "region", "endpoint")
    } == {
        "projectName": "old",
        "description": "made by hand",
        "projectMaxDatasetCount": 7,
        "serviceRole": "AliyunIMMDefaultRole",
        "region": "cn-hangzhou",
        "endpoint": emulator.endpoint,
    }
    assert plain(project.properties)["createTime"] and plain(project.properties)["adopted"] is False
    # what import records, the next `up` with the same inputs sees as no change
    assert diff(plugin, PROJECT, "old", project.properties, project.inputs).changes == DIFF_NONE

    dataset = read(plugin, DATASET, "imported", "old/d")
    assert (dataset.id, plain(dataset.inputs)["description"]) == ("old/d", "by hand too")
    binding = read(plugin, BINDING, "imported", "old/d/oss://photos/")
    assert plain(binding.inputs)["uri"] == "oss://photos/" and plain(binding.properties)["state"]
    task = read(plugin, TASK, "imported", f"old/{task_id}")
    assert plain(task.properties)["status"] == "Succeeded" and plain(task.properties)["taskId"] == task_id
    assert plain(task.inputs)["datasetName"] == "d" and plain(task.inputs)["triggers"] == {"photos": "v1"}

    for token, id_ in (
        (PROJECT, "nothere"),
        (DATASET, "old/nothere"),
        (BINDING, "old/d/oss://other/"),
        (TASK, "old/FaceClustering-0000"),
    ):
        missing = read(plugin, token, "imported", id_)
        assert missing.id == "" and not missing.HasField("properties"), token
    with pytest.raises(grpc.RpcError) as err:
        read(plugin, DATASET, "imported", "just-a-project")
    assert "expected <project_name>/<dataset_name>" in err.value.details()  # type: ignore[attr-defined]
