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

from imm_faces.components.args import DEFAULT_SCAN_TIMEOUT
from imm_faces.components.providers.base import ManagedObjectProvider
from imm_faces.components.providers.core import BindingCrud
from imm_faces.components.providers.remote import ImmResource

__all__ = ["DEFAULT_SCAN_TIMEOUT", "Binding", "BindingProvider"]


class BindingProvider(ManagedObjectProvider):
    """The dynamic provider: an adapter to :class:`~imm_faces.components.providers.core.BindingCrud`."""

    crud = BindingCrud


class Binding(ImmResource, module="imm", name="Binding"):
    """Binds an ``oss://bucket[/prefix]`` location to a dataset; IMM indexes what is there and what arrives."""

    uri: pulumi.Output[str]
    state: pulumi.Output[str]
    phase: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        self._init("imm:index:Binding", BindingProvider, name, props, tuple(BindingProvider.reported), opts)
