"""``imm:index:FaceClustering``: the Python ``FaceClustering`` component, constructed by the plugin for programs in
any language (the engine's Construct).

The component's code is not repeated: :meth:`FaceClusteringProvider.construct` builds ``FaceClusteringArgs`` from
the inputs (validated as in Python: a broken rule is an input error naming the property) and runs
``FaceClustering`` under :func:`~imm_faces.components.providers.remote.plugin_resources`, so its IMM children are
the plugin's ``imm:index:*`` resources and its RAM role, policy and attachment pulumi-alicloud's, all registered
with the engine. It sits under an ``imm:index:FaceClustering`` component (the type the program asked for); its
outputs are the stack-outputs contract in camelCase. Its schema comes from ``FaceClusteringArgs`` (types and
attribute docstrings) and ``StackOutputs``; its inputs are ``plain`` (a generated SDK takes no Output for them:
the component validates its arguments before it registers anything), and Construct checks them against that
schema first (a string where a list belongs is an input error, not a list of characters).

The RAM role (and the checker policy) are pulumi-alicloud's, created with ``alicloud:*`` settings; the IMM
children use the ``imm`` provider's (``imm:*``), which cannot assume a role. With ``alicloud:assumeRole`` in the
stack config the two could act in different accounts, so Construct refuses to create them then, as the Python
component refuses an explicit alicloud provider with an assumed role.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.errors import InputPropertiesError, InputPropertyError
from pulumi.provider import ConstructResult, Provider

from imm_faces.components.args import ArgsError, FaceClusteringArgs, NameScope, ResolvedArgs
from imm_faces.components.providers.core import as_int
from imm_faces.components.providers.remote import plugin_resources
from imm_faces.runtime.credentials import SETTINGS
from imm_faces.runtime.models.base import camel_name as camel
from imm_faces.runtime.models.base import snake_name as snake
from imm_faces.runtime.outputs import StackOutputs

COMPONENT_TYPE = "imm:index:FaceClustering"


def _docstrings(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string right after each annotated field)."""
    body = ast.parse(inspect.getsource(cls)).body[0]
    assert isinstance(body, ast.ClassDef)
    out, last = {}, None
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            last = node.target.id
        elif last and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            out[last] = " ".join(str(node.value.value).split()).replace("``", "`")
            last = None
        else:
            last = None
    return out


def _type(annotation: Any) -> dict[str, Any]:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _type(args[0])
    if origin in (Mapping, dict, typing.Mapping):
        return {"type": "object", "additionalProperties": _type(args[1])}
    if origin in (Sequence, list, tuple, typing.Sequence):
        return {"type": "array", "items": _type(args[0])}
    simple = {str: "string", bool: "boolean", float: "number", int: "integer"}
    if annotation in simple:
        return {"type": simple[annotation]}
    raise TypeError(f"no schema type for {annotation!r}")


def _plain(spec: dict[str, Any]) -> dict[str, Any]:
    """A type that takes no eventual value (Output), at every level (Pulumi's ``plain``)."""
    out = {**spec, "plain": True}
    for key in ("items", "additionalProperties"):
        if key in spec:
            out[key] = _plain(spec[key])
    return out


def component_schema() -> dict[str, Any]:
    hints = typing.get_type_hints(FaceClusteringArgs)
    docs = _docstrings(FaceClusteringArgs)
    inputs, required = {}, []
    for field in FaceClusteringArgs.__dataclass_fields__.values():
        spec = {**_plain(_type(hints[field.name])), "description": docs.get(field.name, field.name)}
        if isinstance(field.default, str | bool | int | float) and field.default is not None:
            spec["default"] = field.default
        inputs[camel(field.name)] = spec
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            required.append(camel(field.name))
    outputs = {}
    for name, info in StackOutputs.model_fields.items():
        outputs[camel(name)] = {**_type(info.annotation), "description": info.description or name}
    return {
        "isComponent": True,
        "description": "Face clustering on IMM: a project, its dataset, the RAM role IMM assumes (least privilege), "
        "the OSS bindings (each waiting for its first full scan) and a figure clustering task; the Python "
        "`FaceClustering` component. Its outputs are the stack-outputs contract `imm-faces verify` reads.",
        "inputProperties": inputs,
        "requiredInputs": required,
        "properties": outputs,
        "required": [camel(n) for n, info in StackOutputs.model_fields.items() if info.is_required()],
    }


def _matches(spec: Mapping[str, Any], value: Any) -> bool:
    """Whether a plain value has the schema type ``spec`` (numbers arrive as floats)."""
    kind = spec.get("type")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list) and all(_matches(spec["items"], v) for v in value)
    if kind == "object":
        return isinstance(value, Mapping) and all(_matches(spec["additionalProperties"], v) for v in value.values())
    checks = {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "number": number,
        "integer": number and float(value).is_integer(),
    }
    return checks.get(str(kind), False)


def _described(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    if kind == "array":
        return f"a list of {_described(spec['items'])}s"
    if kind == "object":
        return f"a map of {_described(spec['additionalProperties'])}s"
    return {"string": "string", "boolean": "true or false", "integer": "whole number"}.get(str(kind), str(kind))


def input_failures(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(property, reason) for each input the schema refuses: missing, of another type, or not known yet."""
    schema = component_schema()
    properties, failures = schema["inputProperties"], []
    for key in schema["requiredInputs"]:
        if inputs.get(key) is None:
            failures.append((key, "is required"))
    for key, value in inputs.items():
        if isinstance(value, pulumi.Output):
            failures.append(
                (
                    key,
                    "must be a known value: FaceClustering validates its arguments before it "
                    "registers anything, so pass a literal or config value, not another resource's "
                    "output or a secret",
                )
            )
        elif key in properties and value is not None and not _matches(properties[key], value):
            failures.append((key, f"must be {_described(properties[key])}"))
    return failures


def assumed_role_conflict(name: str, args: ResolvedArgs) -> str | None:
    """Why the component must not run with this stack config (``alicloud:assumeRole`` while it creates RAM
    objects with pulumi-alicloud), or None."""
    assume = SETTINGS["assume_role"]
    try:
        namespace, key = str(assume.config_key).split(":")
        setting = pulumi.Config(namespace).get_object(key)
    except Exception:  # not JSON: pulumi-alicloud reads it, and refuses it, itself
        setting = None
    role = setting.get("roleArn") if isinstance(setting, dict) else None
    creates = [
        what
        for what, yes in (
            ("the RAM role and policy", args.manage_project and args.service_role is None),
            ("the checker policy", args.create_checker_policy),
        )
        if yes
    ]
    if not role or not creates:
        return None
    return (
        f"{COMPONENT_TYPE} {name}: the stack config sets {assume.config_key} ({role}); pulumi-alicloud would "
        f"create {' and '.join(creates)} as that role, but the IMM project and dataset are created with the imm "
        "provider's settings (imm:*), which do not assume roles, so they could land in different accounts. "
        "Pass `serviceRole` (an existing role of the account the imm provider reaches) and leave "
        f"`createCheckerPolicy` off, or set the role with {assume.env[0]}, which both providers read, "
        f"instead of {assume.config_key}."
    )


class FaceClusteringProvider(Provider):
    """What the plugin's Construct runs (through the SDK's own Construct servicer)."""

    def construct(
        self, name: str, resource_type: str, inputs: Mapping[str, Any], options: pulumi.ResourceOptions | None = None
    ) -> ConstructResult:
        from imm_faces.components.face_clustering import FaceClustering

        if resource_type != COMPONENT_TYPE:
            raise InputPropertyError("", f"unknown component {resource_type!r}; this provider has {COMPONENT_TYPE}")
        if failures := input_failures(inputs):
            raise InputPropertiesError(
                f"{COMPONENT_TYPE} {name}: " + "; ".join(f"{p}: {r}" for p, r in failures),
                [{"property_path": p, "reason": r} for p, r in failures],
            )
        values = {snake(key): _whole(value) for key, value in inputs.items()}
        try:
            args = FaceClusteringArgs.from_config(values)
            resolved = args.resolved(name, NameScope(pulumi.get_project(), pulumi.get_stack()))  # before registering
            if conflict := assumed_role_conflict(name, resolved):
                raise pulumi.RunError(conflict)
            wrapper = pulumi.ComponentResource(COMPONENT_TYPE, name, None, options)
            with plugin_resources():
                faces = FaceClustering(name, args, pulumi.ResourceOptions(parent=wrapper))
        except ArgsError as exc:
            path = camel(exc.field)  # e.g. ossLocations[0]
            raise InputPropertiesError(
                f"{COMPONENT_TYPE} {name}: {path}: {exc.rule}", [{"property_path": path, "reason": exc.rule}]
            ) from None
        except TypeError as exc:  # a value of the wrong kind for the dataclass
            raise InputPropertyError("", str(exc)) from None
        state = {camel(k): v for k, v in faces.outputs.items()}
        wrapper.register_outputs(state)
        return ConstructResult(urn=wrapper.urn, state=state)


def _whole(value: Any) -> Any:
    """Numbers as the engine sends them (floats) back to ints where whole; lists and maps alike."""
    if isinstance(value, Mapping):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return as_int(value)
