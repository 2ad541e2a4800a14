"""``imm:index:FaceClustering`` constructed by the plugin, as the engine asks for a remote component: Construct with
the engine's monitor (a fake one, which hands the component's ``imm`` children to the same plugin: Check, then
Create), in preview and for real against the emulator; a broken argument is an input error naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import errors_pb2, provider_pb2, provider_pb2_grpc, status_pb2

from imm_faces.components.providers.plugin import package_version
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import bindings, projects, tasks
from tests.fakes import write_photo
from tests.provider import fake_engine
from tests.provider.engine import PROJECT, STACK, UNKNOWN, configure, launched, plugin_command, struct

STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[fake_engine.FakeEngine, str, Any]]:
    """The fake engine, and a plugin started the other way the engine finds one: the `pulumi-resource-imm` on PATH that
    `pip install 'imm-faces[pulumi]'` installs."""
    server, engine, address = fake_engine.start(PROJECT, STACK)
    try:
        with launched(plugin_command("installed", engine=address), tmp_path_factory.mktemp("home")) as plugin:
            engine.plugin = plugin
            yield engine, address, plugin
    finally:
        server.stop(0)


@pytest.fixture
def engine_and_plugin(started: tuple[fake_engine.FakeEngine, str, Any]) -> tuple[fake_engine.FakeEngine, str, Any]:
    engine, _, plugin = started
    engine.registered, engine.dry_run = [], False
    assert plugin.GetPluginInfo(empty_pb2.Empty()).version == package_version()
    return started


def construct(plugin: provider_pb2_grpc.ResourceProviderStub, address: str, inputs: dict[str, Any],
              dry_run: bool) -> provider_pb2.ConstructResponse:  # fmt: skip
    return plugin.Construct(provider_pb2.ConstructRequest(
        project=PROJECT, stack=STACK, organization="organization", dryRun=dry_run, parallel=4,
        monitorEndpoint=address, type="imm:index:FaceClustering", name="faces", parent=STACK_URN,
        inputs=struct(inputs), accepts_output_values=True), timeout=120)  # fmt: skip


def test_face_clustering_constructed_in_preview_and_for_real(engine_and_plugin: Any, emulator: Emulator,
                                                             client: ImmClient, oss_root: Path) -> None:  # fmt: skip
    engine, address, plugin = engine_and_plugin
    configure(plugin, emulator)
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    inputs = {"region": "cn-hangzhou", "endpoint": emulator.endpoint, "ossLocations": ["oss://photos/"],
              "clusteringTriggers": {"photos": "v1"}, "quotas": {"DatasetMaxFileCount": 1000.0}}  # fmt: skip

    engine.dry_run = True
    preview = construct(plugin, address, inputs, dry_run=True)
    assert preview.urn.endswith("::imm:index:FaceClustering::faces")
    assert list(client.paginate(projects.ListProjects)) == []  # a preview creates nothing
    assert json_format.MessageToDict(preview.state)["clusteringTaskId"] == UNKNOWN

    engine.dry_run, engine.registered = False, []
    response = construct(plugin, address, inputs, dry_run=False)
    state = json_format.MessageToDict(response.state)
    name = f"{PROJECT}-{STACK}-faces"
    assert (state["projectName"], state["datasetName"]) == (f"{name}-project", f"{name}-faces")
    assert state["bindingUris"] == ["oss://photos/"] and state["endpoint"] == emulator.endpoint
    task = client.call(tasks.GetTask, project_name=state["projectName"], task_id=state["clusteringTaskId"],
                       task_type=tasks.FACE_CLUSTERING)  # fmt: skip
    assert task.status == "Succeeded"
    bound = client.call(bindings.ListBindings, project_name=state["projectName"], dataset_name=state["datasetName"])
    assert [b.uri for b in bound.bindings or []] == ["oss://photos/"]

    by_type = {r.type: r for r in engine.registered}
    custom_imm = sorted(t for t, r in by_type.items() if r.custom and t.startswith("imm:"))
    assert custom_imm == ["imm:index:Binding", "imm:index:Dataset", "imm:index:FigureClusteringTask",
                          "imm:index:Project"]  # fmt: skip  # the plugin's resources, not dynamic ones
    assert not any(t.startswith("pulumi-python:dynamic") for t in by_type)
    assert "alicloud:ram/role:Role" in by_type and by_type["alicloud:ram/role:Role"].custom
    project = by_type["imm:index:Project"]
    assert project.inputs["projectName"] == f"{name}-project" and project.inputs["serviceRole"] == f"{name}-imm-role"
    assert project.outputs["adopted"] is False
    dataset = by_type["imm:index:Dataset"]
    assert dataset.inputs["datasetMaxFileCount"] == 1000  # the component's quota, camelCase on the wire


def test_bad_argument_is_an_input_error_naming_it(engine_and_plugin: Any, emulator: Emulator,
                                                  client: ImmClient) -> None:  # fmt: skip
    engine, address, plugin = engine_and_plugin
    configure(plugin, emulator)
    with pytest.raises(grpc.RpcError) as err:
        construct(plugin, address, {"region": "cn-hangzhou", "ossLocations": ["http://not-oss/"]}, dry_run=False)
    details = err.value.details()  # type: ignore[attr-defined]
    assert "ossLocations[0]: must be oss://" in details and "Traceback" not in details and 'File "' not in details
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    metadata = dict(err.value.trailing_metadata())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(metadata["grpc-status-details-bin"])
    found = errors_pb2.InputPropertiesError()
    assert status.details[0].Unpack(found)
    assert [(e.property_path, e.reason[:14]) for e in found.errors] == [("ossLocations[0]", "must be oss://")]
    assert list(client.paginate(projects.ListProjects)) == [] and engine.registered == []
