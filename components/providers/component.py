"""``imm:index:FaceClustering``: the Python ``FaceClustering`` component, constructed by the plugin for programs in
any language (the engine's Construct).

The component's code is not repeated: :meth:`FaceClusteringProvider.construct` builds ``FaceClusteringArgs`` from
the inputs (validated as in Python: a broken rule is an input error naming the property) and runs
``FaceClustering`` under :func:`~imm_faces.components.providers.remote.plugin_resources`, so its IMM children are
the plugin's ``imm:index:*`` resources and its RAM role, policy and attachment pulumi-alicloud's, all registered
with the engine. It sits under an ``imm:index:FaceClustering`` component (the type the program asked for); its
outputs are the stack-outputs contract in camelCase. Its schema comes from ``FaceClusteringArgs`` (types and
attribute docstrings) and ``StackOutputs``.
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

from imm_faces.components.args import ArgsError, FaceClusteringArgs, NameScope
from imm_faces.components.providers.core import as_int
from imm_faces.components.providers.remote import plugin_resources
from imm_faces.components.providers.schema import camel, snake
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


def component_schema() -> dict[str, Any]:
    hints = typing.get_type_hints(FaceClusteringArgs)
    docs = _docstrings(FaceClusteringArgs)
    inputs, required = {}, []
    for field in FaceClusteringArgs.__dataclass_fields__.values():
        spec = {**_type(hints[field.name]), "description": docs.get(field.name, field.name)}
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


class FaceClusteringProvider(Provider):
    """What the plugin's Construct runs (through the SDK's own Construct servicer)."""

    def construct(self, name: str, resource_type: str, inputs: Mapping[str, Any],
                  options: pulumi.ResourceOptions | None = None) -> ConstructResult:  # fmt: skip
        from imm_faces.components.face_clustering import FaceClustering

        if resource_type != COMPONENT_TYPE:
            raise InputPropertyError("", f"unknown component {resource_type!r}; this provider has {COMPONENT_TYPE}")
        values: dict[str, Any] = {}
        for key, value in inputs.items():
            if isinstance(value, pulumi.Output):
                raise InputPropertyError(key, "must be a known value: FaceClustering validates its arguments "
                                         "before it registers anything, so pass a literal or config value, not "
                                         "another resource's output or a secret")  # fmt: skip
            values[snake(key)] = _plain(value)
        try:
            args = FaceClusteringArgs.from_config(values)
            args.resolved(name, NameScope(pulumi.get_project(), pulumi.get_stack()))  # before anything registers
            wrapper = pulumi.ComponentResource(COMPONENT_TYPE, name, None, options)
            with plugin_resources():
                faces = FaceClustering(name, args, pulumi.ResourceOptions(parent=wrapper))
        except ArgsError as exc:
            path = camel(exc.field)  # e.g. ossLocations[0]
            raise InputPropertiesError(f"{COMPONENT_TYPE} {name}: {path}: {exc.rule}",
                                       [{"property_path": path, "reason": exc.rule}]) from None  # fmt: skip
        except TypeError as exc:  # a value of the wrong kind for the dataclass
            raise InputPropertyError("", str(exc)) from None
        state = {camel(k): v for k, v in faces.outputs.items()}
        wrapper.register_outputs(state)
        return ConstructResult(urn=wrapper.urn, state=state)


def _plain(value: Any) -> Any:
    """Numbers as the engine sends them (floats) back to ints where whole; lists and maps alike."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return as_int(value)
