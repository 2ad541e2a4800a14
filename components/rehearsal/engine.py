"""Run the stack program offline: the Pulumi SDK's mocks stand in for the engine, and every dynamic resource
is checked and created by the real dynamic-provider host (:mod:`imm_faces.components.rehearsal.host`), in program
order, against whatever endpoint the program targets (the emulator). Resources of other providers (the
alicloud RAM role, policy and attachment) cannot be created without the engine and the alicloud plugin:
they are recorded with their inputs and given the outputs the provider would compute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from pulumi.dynamic.dynamic import PROVIDER_KEY
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs, Mocks

from imm_faces.components.rehearsal.host import DynamicProviderHost, ProviderCallError
from imm_faces.components.rehearsal.session import DYNAMIC_PREFIX, IMM_TYPE_PREFIX, Created
from imm_faces.emulator.figures import OWNER_ID  # the account the emulator reports as every object's owner


class RehearsalError(Exception):
    """A resource failed its check or its creation; the message names it."""


def recorded_outputs(typ: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What alicloud would compute for the RAM resources (an ARN), the inputs otherwise."""
    outs = dict(inputs)
    if typ == "alicloud:ram/role:Role":
        outs["arn"] = f"acs:ram::{OWNER_ID}:role/{str(inputs.get('roleName', '')).lower()}"
    return outs


class RehearsalMocks(Mocks):
    """The engine's part: register resources in program order; dynamic ones go through the provider host.

    ``endpoint``, when given, is where every IMM resource is created whatever the program says (a rehearsal
    never reaches the cloud); ``before_create`` sees each IMM resource's inputs first (the rehearsal puts the
    sample photos where a binding points)."""

    def __init__(
        self,
        host: DynamicProviderHost,
        project: str,
        stack: str,
        on_resource: Callable[[Created], None] | None = None,
        *,
        endpoint: str | None = None,
        before_create: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.host = host
        self.prefix = f"urn:pulumi:{stack}::{project}"
        self.created: list[Created] = []
        self.on_resource = on_resource or (lambda _: None)
        self.endpoint = endpoint
        self.before_create = before_create or (lambda _typ, _inputs: None)

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:  # components: nothing to create
            return None, dict(args.inputs)
        urn = f"{self.prefix}::{args.typ}::{args.name}"
        if args.typ.startswith(DYNAMIC_PREFIX):
            news = dict(args.inputs)
            if args.typ.startswith(IMM_TYPE_PREFIX):
                if self.endpoint is not None:
                    news["endpoint"] = self.endpoint
                self.before_create(args.typ.removeprefix(IMM_TYPE_PREFIX), news)
            try:
                inputs, failures = self.host.check(urn, {}, news)
                if failures:
                    reasons = "; ".join(f"{f.property}: {f.reason}" for f in failures)
                    raise RehearsalError(f"{args.name} ({args.typ}) failed its check: {reasons}")
                id_, outs = self.host.create(urn, inputs)
            except ProviderCallError as exc:
                raise RehearsalError(f"{args.name} ({args.typ}): {exc}") from None
            done = Created(args.typ, args.name, urn, id_, outs, True)
        else:
            outs = recorded_outputs(args.typ, args.inputs)
            done = Created(args.typ, args.name, urn, f"{args.name}-rehearsal-id", outs, False, dict(args.inputs))
        self.created.append(done)
        self.on_resource(done)
        return done.id, {k: v for k, v in done.outputs.items() if k != PROVIDER_KEY}

    def call(self, args: Any) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


def run_program(
    program: Callable[[], Any], mocks: RehearsalMocks, *, project: str, stack: str, config: Mapping[str, str]
) -> dict[str, Any]:
    """Run ``program`` under the mocks as the language host would, and return the stack outputs: what the
    root Stack resource registers (its exports, resolved as ``Stack._finish`` does), i.e. what
    ``pulumi stack output --json`` prints."""
    from pulumi.runtime.stack import massage

    asyncio.set_event_loop(asyncio.new_event_loop())  # before set_mocks: the SDK binds to this loop
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=MockMonitor(mocks))
    pulumi.runtime.set_all_config(dict(config))
    captured: dict[str, Any] = {}

    def deploy() -> pulumi.Output[Any]:
        program()
        root = pulumi.runtime.get_root_resource()
        exports = massage(getattr(root, "outputs", {}), [])
        return pulumi.Output.from_input(exports).apply(captured.update)

    as_test: Callable[[Callable[[], Any]], Callable[[], None]] = pulumi.runtime.test
    as_test(deploy)()  # the SDK's own driver: run, then await every output and outstanding registration
    return captured


def destroy(mocks: RehearsalMocks, host: DynamicProviderHost, on_delete: Callable[[Created], None]) -> None:
    """Delete the dynamic resources in reverse creation order, as `pulumi destroy` does with dependents first."""
    for created in reversed(mocks.created):
        if created.dynamic:
            host.delete(created.urn, created.id, created.outputs)
            on_delete(created)
    mocks.created = [c for c in mocks.created if not c.dynamic]
