"""What the plugin makes of its inputs, over gRPC as the engine calls it: a CheckFailure naming the property for
every bad input (no KeyError, AttributeError or ValueError at Create), CheckConfig's rules, no secret value in
any message, an endpoint change that updates nothing in IMM (never a replace), and `pulumi import` followed by
the same program being no change (IMM's defaults are not recorded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from imm_faces.components.providers.plugin import Config
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import bindings, datasets, projects
from tests.fakes import write_photo
from tests.provider.engine import configure, init_failed, plain, secret, struct, urn
from tests.provider.faults import FaultProxy
from tests.provider.test_plugin import BINDING, DATASET, PROJECT, TASK, check, checked, create, diff, read

Stub = provider_pb2_grpc.ResourceProviderStub
DIFF_SOME, DIFF_NONE = provider_pb2.DiffResponse.DIFF_SOME, provider_pb2.DiffResponse.DIFF_NONE
PROVIDER_URN = "urn:pulumi:dev::consumer::pulumi:providers:imm::default"
SECRET_NAME = "TopSecretName1!!bad"


def failures(response: provider_pb2.CheckResponse) -> dict[str, str]:
    return {f.property: f.reason for f in response.failures}


@pytest.mark.parametrize(
    ("token", "news", "expected"),
    [
        (PROJECT, {}, {"projectName": "is required"}),
        (DATASET, {"projectName": "p"}, {"datasetName": "is required"}),
        (BINDING, {"projectName": "p", "datasetName": "d"}, {"uri": "is required"}),
        (TASK, {"datasetName": "d"}, {"projectName": "is required"}),
        (PROJECT, {"projectName": "p", "tags": ["a"]}, {"tags": "must be a map of strings (key: value); got a list"}),
        (PROJECT, {"projectName": "p", "tags": {"a": 1.0}}, {"tags": "must be a map of strings"}),
        (TASK, {"projectName": "p", "datasetName": "d", "triggers": "v1"}, {"triggers": "must be a map of strings"}),
        (PROJECT, {"projectName": "p", "adopt": "yes"}, {"adopt": "must be true or false; got a string"}),
        (
            BINDING,
            {"projectName": "p", "datasetName": "d", "uri": "oss://bucket/", "scanTimeout": "long"},
            {"scanTimeout": "must be a number; got a string"},
        ),
        (PROJECT, {"projectName": "p", "projectMaxDatasetCount": 2.5}, {"projectMaxDatasetCount": "must be a whole"}),
        (PROJECT, {"projectName": 7.0}, {"projectName": "must be a string; got a number"}),
        (
            DATASET,
            {"projectName": "p", "datasetName": "d", "endpoint": "not a url"},
            {"endpoint": "must be an http(s) URL"},
        ),
    ],
)
def test_every_bad_input_is_a_check_failure_naming_it(
    plugin: Stub, emulator: Emulator, token: str, news: dict[str, Any], expected: dict[str, str]
) -> None:
    configure(plugin, emulator)
    found = failures(check(plugin, token, "r", news))
    assert set(found) == set(expected), found
    for prop, reason in expected.items():
        assert found[prop].startswith(reason), (prop, found[prop])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"endpoint": "not a url"}, {"endpoint": "must be an http(s) URL"}),
        ({"endpoint": "ftp://imm.example.com"}, {"endpoint": "must be an http(s) URL"}),
        ({"accessKey": secret("LTAI-only-the-id")}, {"secretKey": "is required with `accessKey`"}),
        ({"secretKey": secret("only-the-secret")}, {"accessKey": "is required with `secretKey`"}),
        ({"securityToken": secret("a-token")}, {"securityToken": "goes with `accessKey` and `secretKey`"}),
        ({"region": "mars-north-1"}, {"region": "must be an IMM region"}),
        ({"region": 5.0}, {"region": "must be a string; got a number"}),
        ({"assumeRole": '{"roleArn": "acs:ram::1:role/r"}'}, {"assumeRole": "not a setting of the imm provider"}),
    ],
)
def test_check_config_failures_name_the_setting(plugin: Stub, config: dict[str, Any], expected: dict[str, str]) -> None:
    response = plugin.CheckConfig(provider_pb2.CheckRequest(urn=PROVIDER_URN, olds=struct({}), news=struct(config)))
    found = failures(response)
    assert set(found) == set(expected), found
    for prop, reason in expected.items():
        assert found[prop].startswith(reason), (prop, found[prop])
    reasons = " ".join(found.values())
    assert "LTAI-only-the-id" not in reasons and "only-the-secret" not in reasons


def test_no_secret_value_in_any_message(plugin: Stub, emulator: Emulator, client: ImmClient) -> None:
    """A secret input that breaks a rule, an error naming a secret project, a partial create's reasons."""
    configure(plugin, emulator)
    bad = check(plugin, PROJECT, "p", {"projectName": secret(SECRET_NAME), "description": secret("x" * 300)})
    assert set(failures(bad)) == {"projectName", "description"}
    assert SECRET_NAME not in str(failures(bad)) and "xxx" not in str(failures(bad))
    assert "[secret]" in failures(bad)["projectName"]  # the rule is still said, the value hidden

    client.call(projects.CreateProject, project_name="TopSecretProject")
    inputs = checked(plugin, PROJECT, "p", {"projectName": secret("TopSecretProject")})
    with pytest.raises(grpc.RpcError) as err:  # "project TopSecretProject already exists..."
        create(plugin, PROJECT, "p", inputs)
    assert "already exists" in err.value.details() and "TopSecretProject" not in err.value.details()  # type: ignore[attr-defined]

    client.call(datasets.CreateDataset, project_name="TopSecretProject", dataset_name="d")
    inputs = checked(
        plugin,
        BINDING,
        "b",
        {"projectName": "TopSecretProject", "datasetName": "d", "uri": secret("oss://secret-bucket/x/")},
    )
    with FaultProxy(emulator.endpoint) as proxy:  # the scan fails and the undo gets a 500: a partial create
        proxy.faults["DeleteBinding"] = "500"
        configure(plugin, emulator, endpoint=proxy.endpoint)
        with pytest.raises(grpc.RpcError) as err:
            create(plugin, BINDING, "b", checked(plugin, BINDING, "b", {**plain(inputs), "endpoint": proxy.endpoint}))
    detail = init_failed(err.value)
    assert detail is not None and "first full scan did not finish" in detail.reasons[0]
    for text in (err.value.details(), *detail.reasons):  # type: ignore[attr-defined]
        assert "secret-bucket" not in text, text


def test_an_endpoint_change_updates_nothing(
    plugin: Stub, emulator: Emulator, client: ImmClient, oss_root: Path
) -> None:
    """Another spelling of the same endpoint (a trailing '/') is no change at all; another endpoint (e.g. the VPC
    one instead of the public one) is an update of the record that writes nothing to IMM, for all four
    resources. Before, both planned delete-then-create of everything (the dataset's index with it)."""
    configure(plugin, emulator)
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    made: dict[str, Any] = {}
    specs = [
        (PROJECT, {"projectName": "p"}),
        (DATASET, {"projectName": "p", "datasetName": "d"}),
        (BINDING, {"projectName": "p", "datasetName": "d", "uri": "oss://photos/"}),
        (TASK, {"projectName": "p", "datasetName": "d", "pollInterval": 0.05}),
    ]
    for token, news in specs:
        made[token] = create(plugin, token, "r", checked(plugin, token, "r", news))
    with FaultProxy(emulator.endpoint) as proxy:
        for token, news in specs:
            old = made[token]
            slash = checked(plugin, token, "r", {**news, "endpoint": emulator.endpoint + "/"})
            assert diff(plugin, token, old.id, old.properties, slash).changes == DIFF_NONE, token
            moved = checked(plugin, token, "r", {**news, "endpoint": proxy.endpoint})  # another way to IMM
            planned = diff(plugin, token, old.id, old.properties, moved)
            assert (planned.changes, list(planned.replaces), list(planned.diffs)) == (DIFF_SOME, [], ["endpoint"])
            assert (
                planned.detailedDiff["endpoint"].kind == provider_pb2.PropertyDiff.UPDATE
                and not planned.deleteBeforeReplace
            )
            updated = plugin.Update(
                provider_pb2.UpdateRequest(id=old.id, urn=urn(token, "r"), olds=old.properties, news=moved, timeout=60)
            )
            assert plain(updated.properties)["endpoint"] == proxy.endpoint, token
        writes = {a: n for a, n in proxy.counts.items() if not a.startswith(("Get", "List"))}
        assert writes == {}  # reads only (the outputs IMM reports), through the new endpoint
    assert [p.project_name for p in client.paginate(projects.ListProjects)] == ["p"]
    bound = client.call(bindings.ListBindings, project_name="p", dataset_name="d").bindings or []
    assert [b.uri for b in bound] == ["oss://photos/"]


def test_import_then_the_same_program_is_no_change(plugin: Stub, emulator: Emulator, client: ImmClient) -> None:
    """An object made with IMM's defaults, imported, then the program's inputs (which set none of them, or set
    one to IMM's default): no change. Before, import recorded `templateId: ""` and five dataset quotas."""
    configure(plugin, emulator)
    client.call(projects.CreateProject, project_name="old")
    client.call(datasets.CreateDataset, project_name="old", dataset_name="d", description="by hand")
    imported = read(plugin, DATASET, "imported", "old/d")
    assert plain(imported.inputs)["description"] == "by hand"
    assert not {k for k in plain(imported.inputs) if k.startswith("dataset") and k != "datasetName"}
    assert "templateId" not in plain(imported.inputs)
    program = checked(plugin, DATASET, "imported", {"projectName": "old", "datasetName": "d", "description": "by hand"})
    assert diff(plugin, DATASET, "old/d", imported.properties, program).changes == DIFF_NONE
    at_default = checked(plugin, DATASET, "imported", {**plain(program), "datasetMaxBindCount": 10.0, "templateId": ""})
    assert diff(plugin, DATASET, "old/d", imported.properties, at_default).changes == DIFF_NONE
    other = checked(plugin, DATASET, "imported", {**plain(program), "datasetMaxBindCount": 3.0})
    assert list(diff(plugin, DATASET, "old/d", imported.properties, other).diffs) == ["datasetMaxBindCount"]
    project = read(plugin, PROJECT, "imported", "old")
    project_program = checked(plugin, PROJECT, "imported", {"projectName": "old"})
    assert diff(plugin, PROJECT, "old", project.properties, project_program).changes == DIFF_NONE


def test_diff_config_compares_endpoints_in_normal_form(plugin: Stub) -> None:
    """The provider's own config: a trailing '/' is no change (under the real engine it re-planned the provider
    and failed `preview --expect-no-changes`); another endpoint is a change, never a replace."""
    old = struct({"region": "cn-hangzhou", "endpoint": "http://127.0.0.1:8000", "version": "0.1.0"})

    def diff_config(endpoint: str) -> provider_pb2.DiffResponse:
        news = struct({"region": "cn-hangzhou", "endpoint": endpoint, "version": "0.1.0"})
        return plugin.DiffConfig(provider_pb2.DiffRequest(urn=PROVIDER_URN, olds=old, news=news))

    assert diff_config("http://127.0.0.1:8000/").changes == DIFF_NONE
    moved = diff_config("http://localhost:8000")
    assert (moved.changes, list(moved.diffs), list(moved.replaces)) == (DIFF_SOME, ["endpoint"], [])


def test_the_region_falls_back_on_the_environment() -> None:
    """``imm:region``, else ALIBABA_CLOUD_REGION, else ALICLOUD_REGION (an empty one is not set)."""
    env = {"ALICLOUD_REGION": "cn-beijing", "ALIBABA_CLOUD_REGION": ""}
    assert Config({}, env).region == "cn-beijing"
    assert Config({}, {**env, "ALIBABA_CLOUD_REGION": "cn-shanghai"}).region == "cn-shanghai"
    assert Config({"region": "cn-hangzhou"}, {**env, "ALIBABA_CLOUD_REGION": "cn-shanghai"}).region == "cn-hangzhou"
    assert Config({}, {"ALIBABA_CLOUD_REGION": ""}).region is None
