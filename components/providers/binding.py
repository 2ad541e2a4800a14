"""A dataset's binding to an OSS location as a dynamic resource: ``pulumi-python:dynamic/imm:Binding``.

``create`` binds the location and waits (GetBinding) until IMM's first full scan of it has finished, so that
what depends on the binding (the clustering task) sees the location's photos indexed: IMM clusters only what
is indexed when a task runs. A scan that fails, stops or outlasts ``scan_timeout`` fails the deployment; a
binding this create made is then deleted again, so the next ``pulumi up`` starts over cleanly. A binding has
nothing to update: any change of location replaces it. Stable path:
``imm_faces.components.providers.binding.BindingProvider``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic import CreateResult

from imm_faces.components.providers.base import ManagedObjectProvider, ProviderError, positive_seconds
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import bindings
from imm_faces.runtime.rules import check_name, check_oss_uri
from imm_faces.runtime.waiters import BindingScanError, wait_for_full_scan

DEFAULT_SCAN_TIMEOUT = 3600.0


class BindingProvider(ManagedObjectProvider):
    kind = "binding"
    replace_on = ("region", "endpoint", "project_name", "dataset_name", "uri")
    update_on = ()
    unique = ("project_name", "dataset_name", "uri")
    defaults = {"scan_timeout": DEFAULT_SCAN_TIMEOUT}
    validators = {"project_name": check_name, "dataset_name": check_name, "uri": check_oss_uri,
                  "scan_timeout": positive_seconds}  # fmt: skip
    operations = {"create": bindings.CreateBinding, "get": bindings.GetBinding, "delete": bindings.DeleteBinding}
    reported = ("create_time", "update_time", "state", "phase")

    def identity(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {"project_name": props["project_name"], "dataset_name": props["dataset_name"], "uri": props["uri"]}

    def create(self, props: dict[str, Any]) -> CreateResult:
        created = super().create(props)
        timeout = float(props.get("scan_timeout") or DEFAULT_SCAN_TIMEOUT)
        try:
            with self.client(props) as imm:
                scanned = wait_for_full_scan(imm, **self.identity(props), timeout=timeout)
        except (BindingScanError, ImmError) as exc:
            undo = "" if created.outs and created.outs.get("adopted") else self._undo(props)
            raise ProviderError(f"binding {props['uri']}: the first full scan did not finish: {exc}.{undo} "
                                f"Check the role's OSS access, or raise `scan_timeout`.") from None  # fmt: skip
        return CreateResult(created.id, {**(created.outs or {}), "state": scanned.state, "phase": scanned.phase})

    def _undo(self, props: Mapping[str, Any]) -> str:
        """Delete the binding this create made (the deployment records nothing): the next `up` starts over."""
        try:
            self.call(props, "delete", **self.identity(props))
        except ImmError as exc:
            return f" The binding was created and could not be deleted again ({exc.code}): delete it by hand."
        return " The binding was deleted again; the next `pulumi up` creates it anew."


class Binding(dynamic.Resource, module="imm", name="Binding"):
    """Binds an ``oss://bucket[/prefix]`` location to a dataset; IMM indexes what is there and what arrives."""

    uri: pulumi.Output[str]
    state: pulumi.Output[str]
    phase: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(BindingProvider(), name, {**dict.fromkeys(BindingProvider.reported), **props}, opts)
