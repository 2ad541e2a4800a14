"""FaceClustering under the Pulumi SDK's mocks (preview=False, so every apply runs and checks cannot pass
vacuously): the resource graph and parentage, the RAM documents, validation, and the outputs contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs, Mocks

from imm_faces.components import ArgsError, FaceClustering, FaceClusteringArgs
from imm_faces.runtime.outputs import StackOutputs
from tests.components.mocks import ATTACH, COMPONENT, DYN, POLICY, ROLE, Recorder


@pytest.fixture
def mocks() -> Iterator[tuple[Recorder, MockMonitor]]:
    recorder = Recorder()
    monitor = MockMonitor(recorder)
    pulumi.runtime.set_mocks(recorder, project="imm-faces", stack="test", preview=False, monitor=monitor)
    yield recorder, monitor


def deploy(args: FaceClusteringArgs) -> dict[str, Any]:
    """Build the component and resolve every output (the SDK's test driver awaits them all)."""
    got: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator,misc]
    def run() -> pulumi.Output[Any]:
        faces = FaceClustering("faces", args)
        return pulumi.Output.all(**faces.outputs).apply(got.update)

    run()
    return got


ARGS = FaceClusteringArgs(
    region="cn-hangzhou",
    project_name="prj",
    dataset_name="ds",
    oss_locations=["oss://photos/family/"],
    notification_topic="faces-done",
    account_id="123",
    clustering_triggers={"photos": "v1"},
)


def by_type(recorder: Recorder) -> dict[str, list[MockResourceArgs]]:
    out: dict[str, list[MockResourceArgs]] = {}
    for r in recorder.registered:
        out.setdefault(r.typ, []).append(r)
    return out


def test_graph_and_parentage(mocks: tuple[Recorder, MockMonitor]) -> None:
    recorder, monitor = mocks
    outputs = deploy(ARGS)
    types = sorted(r.typ for r in recorder.registered)
    assert types == sorted(
        [
            COMPONENT,
            ROLE,
            POLICY,
            ATTACH,
            f"{DYN}Project",
            f"{DYN}Dataset",
            f"{DYN}Binding",
            f"{DYN}FigureClusteringTask",
        ]
    )
    urns = [urn for urn in monitor.get_registered_resources() if "FaceClustering$" in urn]
    assert len(urns) == len(types) - 1  # every child's URN shows the component as its parent
    assert outputs["clustering_task_id"] == "FaceClustering-mock"
    task = by_type(recorder)[f"{DYN}FigureClusteringTask"][0].inputs
    assert (task["project_name"], task["dataset_name"], task["triggers"]) == ("prj", "ds", {"photos": "v1"})
    assert task["timeout"] == 1800 and task["notification_topic"] == "faces-done"
    assert "__provider" in task  # serialized (by reference) at construction


def test_role_trust_and_least_privilege(mocks: tuple[Recorder, MockMonitor]) -> None:
    recorder, _ = mocks
    outputs = deploy(ARGS)
    kinds = by_type(recorder)
    role = kinds[ROLE][0].inputs
    assert json.loads(role["assumeRolePolicyDocument"])["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["imm.aliyuncs.com"]}}
    ]
    policy = json.loads(kinds[POLICY][0].inputs["policyDocument"])
    actions = [a for s in policy["Statement"] for a in s["Action"]]
    assert sorted(actions) == ["mns:PublishMessage", "oss:GetObject", "oss:GetObjectMeta", "oss:ListObjects"]
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    assert resources == [
        "acs:oss:*:*:photos/family/*",
        "acs:oss:*:*:photos",
        "acs:mns:cn-hangzhou:123:/topics/faces-done/messages",
    ]
    attach = kinds[ATTACH][0].inputs
    assert (attach["roleName"], attach["policyName"], attach["policyType"]) == (
        role["roleName"],
        kinds[POLICY][0].inputs["policyName"],
        "Custom",
    )
    project = kinds[f"{DYN}Project"][0].inputs
    assert project["service_role"] == role["roleName"] == outputs["service_role"]
    assert outputs["service_role_arn"] == f"acs:ram::123:role/{role['roleName']}"


def test_outputs_are_the_runtime_contract(mocks: tuple[Recorder, MockMonitor]) -> None:
    outputs = deploy(ARGS)
    assert set(outputs) == set(StackOutputs.model_fields)
    parsed = StackOutputs.model_validate(outputs)
    assert (parsed.project_name, parsed.dataset_name, parsed.region) == ("prj", "ds", "cn-hangzhou")
    assert parsed.binding_uris == ["oss://photos/family/"] and parsed.endpoint is None


def test_existing_role_and_unmanaged_project(mocks: tuple[Recorder, MockMonitor]) -> None:
    recorder, _ = mocks
    outputs = deploy(
        FaceClusteringArgs(region="cn-hangzhou", service_role="AliyunIMMDefaultRole", run_clustering=False)
    )
    kinds = by_type(recorder)
    assert ROLE not in kinds and POLICY not in kinds and f"{DYN}FigureClusteringTask" not in kinds
    assert kinds[f"{DYN}Project"][0].inputs["service_role"] == "AliyunIMMDefaultRole"
    assert outputs["clustering_task_id"] is None and outputs["project_name"] == "imm-faces-test-faces-project"
    recorder.registered.clear()
    deploy(FaceClusteringArgs(region="cn-hangzhou", project_name="shared", manage_project=False))
    kinds = by_type(recorder)
    assert f"{DYN}Project" not in kinds and ROLE not in kinds
    assert kinds[f"{DYN}Dataset"][0].inputs["project_name"] == "shared"


def test_validation_fails_before_anything_is_registered(mocks: tuple[Recorder, MockMonitor]) -> None:
    recorder, _ = mocks
    with pytest.raises(ArgsError, match=r"FaceClusteringArgs.oss_locations\[0\]: must be oss://"):
        FaceClustering("faces", FaceClusteringArgs(region="cn-hangzhou", oss_locations=["http://x"]))
    assert recorder.registered == []


class ProtectRecordingMonitor(MockMonitor):
    """The mock monitor, also recording each registration's ``protect`` flag as the engine would receive it."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.protect: dict[str, bool] = {}

    def RegisterResource(self, request: Any) -> Any:
        # The stack's own resource is registered here too when an earlier test of this process left the SDK's root
        # resource unset (it depends on the order the tests run in): it is not the component's.
        if request.type != "pulumi:pulumi:Stack":
            self.protect[request.name] = bool(request.protect)
        return super().RegisterResource(request)


def test_protect_reaches_every_child_but_the_clustering_run() -> None:
    """`protect=True` on the component must not block the documented re-run of the task (a replace)."""
    recorder = Recorder()
    monitor = ProtectRecordingMonitor(recorder)
    pulumi.runtime.set_mocks(recorder, project="imm-faces", stack="prod", preview=False, monitor=monitor)

    @pulumi.runtime.test  # type: ignore[untyped-decorator,misc]
    def run() -> None:
        FaceClustering("faces", ARGS, pulumi.ResourceOptions(protect=True))

    run()
    assert monitor.protect.pop("faces-clustering") is False
    assert monitor.protect and all(monitor.protect.values()), monitor.protect  # project, dataset, role, ...


def test_ownership_and_ordering_inputs(mocks: tuple[Recorder, MockMonitor]) -> None:
    recorder, _ = mocks
    deploy(
        FaceClusteringArgs(
            region="cn-hangzhou",
            oss_locations=["oss://aaa/x/", "oss://bbb/"],
            adopt_existing=True,
            scan_timeout=120,
            role_name="team-role",
        )
    )
    kinds = by_type(recorder)
    for kind in ("Project", "Dataset", "Binding"):
        for r in kinds[f"{DYN}{kind}"]:
            assert (r.inputs["adopt"], r.inputs["delete_adopted"]) == (True, False), kind
    assert [b.inputs["scan_timeout"] for b in kinds[f"{DYN}Binding"]] == [120, 120]
    task = kinds[f"{DYN}FigureClusteringTask"][0]
    assert task.inputs["owner"] == "imm-faces/test/faces-clustering"  # who the task is tagged for
    assert kinds[ROLE][0].inputs["roleName"] == "team-role"
    assert kinds[POLICY][0].inputs["policyName"] == "imm-faces-test-faces-imm-policy"
    assert kinds[f"{DYN}Dataset"][0].inputs["dataset_name"] == "imm-faces-test-faces-faces"


def test_checker_policy_is_exported_and_created_on_request(mocks: tuple[Recorder, MockMonitor]) -> None:
    """The smoke check's identity gets exactly verify's read-only actions on this dataset, and reading the photos
    of its bound locations (``verify --html``), nothing else."""
    recorder, _ = mocks
    got: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator,misc]
    def run() -> pulumi.Output[Any]:
        faces = FaceClustering(
            "faces",
            FaceClusteringArgs(
                region="cn-hangzhou",
                project_name="prj",
                dataset_name="ds",
                account_id="123",
                create_checker_policy=True,
                oss_locations=["oss://bkt/photos/"],
            ),
        )
        return faces.checker_policy_document.apply(lambda doc: got.update(doc=doc))

    run()
    document = json.loads(got["doc"])
    actions = sorted(a for s in document["Statement"] for a in s["Action"])
    reads = ("imm:Get", "imm:Query", "imm:BatchGet", "imm:SimpleQuery", "oss:GetObject")
    assert "oss:GetObject" in actions and all(a.startswith(reads) for a in actions)
    resources = sorted(r for s in document["Statement"] for r in s["Resource"])
    assert resources == [
        "acs:imm:cn-hangzhou:123:project/prj",
        "acs:imm:cn-hangzhou:123:project/prj/dataset/ds",
        "acs:oss:*:*:bkt/photos/*",
    ]
    (checker,) = [r for r in by_type(recorder)[POLICY] if r.name == "faces-checker-policy"]
    assert checker.inputs["policyName"] == "imm-faces-test-faces-imm-checker"
    assert json.loads(checker.inputs["policyDocument"]) == document
    recorder.registered.clear()
    deploy(ARGS)  # not asked for: the document only
    assert [r.name for r in by_type(recorder)[POLICY]] == ["faces-policy"]
