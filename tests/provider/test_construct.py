"""``imm:index:FaceClustering`` constructed by the plugin, as the engine asks for a remote component: Construct with
the engine's monitor (a fake one, which hands the component's ``imm`` children to the same plugin: Check, then
Create), in preview and for real against the emulator; a broken argument is an input error naming it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


def construct(
    plugin: provider_pb2_grpc.ResourceProviderStub,
    address: str,
    inputs: dict[str, Any],
    dry_run: bool,
    name: str = "faces",
    config: dict[str, str] | None = None,
) -> provider_pb2.ConstructResponse:
    return plugin.Construct(
        provider_pb2.ConstructRequest(
            project=PROJECT,
            stack=STACK,
            organization="organization",
            dryRun=dry_run,
            parallel=8,
            monitorEndpoint=address,
            type="imm:index:FaceClustering",
            name=name,
            parent=STACK_URN,
            inputs=struct(inputs),
            accepts_output_values=True,
            config=config or {},
        ),
        timeout=150,
    )


def test_face_clustering_constructed_in_preview_and_for_real(
    engine_and_plugin: Any, emulator: Emulator, client: ImmClient, oss_root: Path
) -> None:
    engine, address, plugin = engine_and_plugin
    configure(plugin, emulator)
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    inputs = {
        "region": "cn-hangzhou",
        "endpoint": emulator.endpoint,
        "ossLocations": ["oss://photos/"],
        "clusteringTriggers": {"photos": "v1"},
        "quotas": {"DatasetMaxFileCount": 1000.0},
    }

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
    task = client.call(
        tasks.GetTask,
        project_name=state["projectName"],
        task_id=state["clusteringTaskId"],
        task_type=tasks.FACE_CLUSTERING,
    )
    assert task.status == "Succeeded"
    bound = client.call(bindings.ListBindings, project_name=state["projectName"], dataset_name=state["datasetName"])
    assert [b.uri for b in bound.bindings or []] == ["oss://photos/"]

    by_type = {r.type: r for r in engine.registered}
    custom_imm = sorted(t for t, r in by_type.items() if r.custom and t.startswith("imm:"))
    assert custom_imm == [
        "imm:index:Binding",
        "imm:index:Dataset",
        "imm:index:FigureClusteringTask",
        "imm:index:Project",
    ]  # the plugin's resources, not dynamic ones
    assert not any(t.startswith("pulumi-python:dynamic") for t in by_type)
    assert "alicloud:ram/role:Role" in by_type and by_type["alicloud:ram/role:Role"].custom
    project = by_type["imm:index:Project"]
    assert project.inputs["projectName"] == f"{name}-project" and project.inputs["serviceRole"] == f"{name}-imm-role"
    assert project.outputs["adopted"] is False
    dataset = by_type["imm:index:Dataset"]
    assert dataset.inputs["datasetMaxFileCount"] == 1000  # the component's quota, camelCase on the wire


def test_bad_argument_is_an_input_error_naming_it(
    engine_and_plugin: Any, emulator: Emulator, client: ImmClient
) -> None:
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


def test_sixteen_locations_constructed_at_once_complete(
    engine_and_plugin: Any, emulator: Emulator, client: ImmClient, oss_root: Path
) -> None:
    """Two components of eight OSS locations each, constructed at once (as a program with two FaceClustering
    gets them; IMM binds at most 10 locations to one dataset, DatasetMaxBindCount): sixteen bindings wait for
    their first scans at the same time. Before, the SDK's child registrations and the plugin's Creates shared
    asyncio's default pool (6 threads on 2 cores) and Construct deadlocked from six locations on."""
    engine, address, plugin = engine_and_plugin
    configure(plugin, emulator)
    locations = [
        write_photo(oss_root, f"bucket-{i:02d}", "a.png", [{"person": i}]).rsplit("/", 1)[0] + "/" for i in range(16)
    ]
    requests = [
        {
            "region": "cn-hangzhou",
            "endpoint": emulator.endpoint,
            "ossLocations": locations[k * 8 : k * 8 + 8],
            "clusteringTriggers": {"photos": "v1"},
        }
        for k in range(2)
    ]
    with ThreadPoolExecutor(2) as pool:
        built = [
            pool.submit(construct, plugin, address, inputs, False, f"faces{k}") for k, inputs in enumerate(requests)
        ]
        states = [json_format.MessageToDict(b.result(timeout=300).state) for b in built]
    for state, inputs in zip(states, requests, strict=True):
        assert state["bindingUris"] == inputs["ossLocations"]
        bound = client.call(bindings.ListBindings, project_name=state["projectName"], dataset_name=state["datasetName"])
        assert sorted(b.uri for b in bound.bindings or []) == sorted(inputs["ossLocations"])
        task = client.call(
            tasks.GetTask,
            project_name=state["projectName"],
            task_id=state["clusteringTaskId"],
            task_type=tasks.FACE_CLUSTERING,
        )
        assert task.status == "Succeeded"
    assert sum(r.type == "imm:index:Binding" for r in engine.registered) == 16


def input_errors(err: pytest.ExceptionInfo[grpc.RpcError]) -> dict[str, str]:
    metadata = dict(err.value.trailing_metadata())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(metadata["grpc-status-details-bin"])
    found = errors_pb2.InputPropertiesError()
    assert status.details[0].Unpack(found)
    return {e.property_path: e.reason for e in found.errors}


def test_inputs_of_the_wrong_kind_are_input_errors_naming_them(
    engine_and_plugin: Any, emulator: Emulator, client: ImmClient
) -> None:
    """A string where the list of locations belongs is not taken character by character; a missing region is
    an input error naming it, with a message that says so (not Python's `__init__() missing ...`)."""
    engine, address, plugin = engine_and_plugin
    configure(plugin, emulator)
    with pytest.raises(grpc.RpcError) as err:
        construct(
            plugin,
            address,
            {
                "region": "cn-hangzhou",
                "ossLocations": "oss://photos/",
                "adoptExisting": "yes",
                "quotas": {"DatasetMaxFileCount": "many"},
            },
            dry_run=False,
        )
    assert input_errors(err) == {
        "ossLocations": "must be a list of strings",
        "adoptExisting": "must be true or false",
        "quotas": "must be a map of whole numbers",
    }
    with pytest.raises(grpc.RpcError) as err:
        construct(plugin, address, {"ossLocations": ["oss://photos/"]}, dry_run=False)
    assert input_errors(err) == {"region": "is required"}
    assert "region: is required" in err.value.details() and "__init__" not in err.value.details()  # type: ignore[attr-defined]
    assert list(client.paginate(projects.ListProjects)) == [] and engine.registered == []


def test_alicloud_assume_role_is_refused_when_the_component_creates_ram_objects(
    engine_and_plugin: Any, emulator: Emulator, client: ImmClient
) -> None:
    """With `alicloud:assumeRole` in the stack config, pulumi-alicloud would create the RAM role as that role while
    the IMM children use the imm provider's settings: Construct refuses, as the Python component refuses an
    explicit alicloud provider with an assumed role. With an existing `serviceRole`, nothing of alicloud's is made."""
    engine, address, plugin = engine_and_plugin
    configure(plugin, emulator)
    config = {"alicloud:assumeRole": '{"roleArn": "acs:ram::123:role/deployer"}', "alicloud:region": "cn-hangzhou"}
    inputs = {"region": "cn-hangzhou", "endpoint": emulator.endpoint, "ossLocations": ["oss://photos/"]}
    with pytest.raises(grpc.RpcError) as err:
        construct(plugin, address, inputs, dry_run=True, config=config)
    assert "alicloud:assumeRole (acs:ram::123:role/deployer)" in err.value.details()  # type: ignore[attr-defined]
    assert "`serviceRole`" in err.value.details() and engine.registered == []  # type: ignore[attr-defined]
    engine.dry_run = True
    preview = construct(plugin, address, {**inputs, "serviceRole": "existing-role"}, dry_run=True, config=config)
    assert preview.urn.endswith("::imm:index:FaceClustering::faces")
    assert not any(r.type.startswith("alicloud:") for r in engine.registered)
