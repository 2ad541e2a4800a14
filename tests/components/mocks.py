"""A recording stand-in for the Pulumi engine under the SDK's mocks, shared by the component tests."""

from __future__ import annotations

from typing import Any

from pulumi.runtime.mocks import MockResourceArgs, Mocks

ROLE, POLICY, ATTACH = (
    "alicloud:ram/role:Role",
    "alicloud:ram/policy:Policy",
    "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment",
)
COMPONENT = "imm-faces:index:FaceClustering"
DYN = "pulumi-python:dynamic/imm:"


class Recorder(Mocks):
    def __init__(self) -> None:
        self.registered: list[MockResourceArgs] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.registered.append(args)
        outs = dict(args.inputs)
        if args.typ == ROLE:
            outs["arn"] = f"acs:ram::123:role/{args.inputs['roleName']}"
        if args.typ == f"{DYN}FigureClusteringTask":
            outs["task_id"] = "FaceClustering-mock"
        return f"{args.name}-id", outs

    def call(self, args: Any) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None
