"""A dataset's binding to an OSS location as a dynamic resource: ``pulumi-python:dynamic/imm:Binding``.

A binding has nothing to update: any change replaces it. Stable path:
``imm_faces.components.providers.binding.BindingProvider``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic

from imm_faces.components.providers.base import ManagedObjectProvider
from imm_faces.runtime.operations import bindings
from imm_faces.runtime.rules import check_name, check_oss_uri


class BindingProvider(ManagedObjectProvider):
    kind = "binding"
    replace_on = ("region", "endpoint", "project_name", "dataset_name", "uri")
    update_on = ()
    unique = ("project_name", "dataset_name", "uri")
    validators = {"project_name": check_name, "dataset_name": check_name, "uri": check_oss_uri}
    operations = {"create": bindings.CreateBinding, "get": bindings.GetBinding, "delete": bindings.DeleteBinding}

    def identity(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {"project_name": props["project_name"], "dataset_name": props["dataset_name"], "uri": props["uri"]}

    reported = ("create_time", "update_time", "state", "phase")


class Binding(dynamic.Resource, module="imm", name="Binding"):
    """Binds an ``oss://bucket[/prefix]`` location to a dataset; IMM indexes what is there and what arrives."""

    uri: pulumi.Output[str]
    state: pulumi.Output[str]
    phase: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(BindingProvider(), name, {**dict.fromkeys(BindingProvider.reported), **props}, opts)
