"""The IMM resources as the `imm` plugin's custom resources, for the component the plugin constructs.

``Project``, ``Dataset``, ``Binding`` and ``FigureClusteringTask`` are dynamic resources in a Python program. When
the plugin constructs ``imm:index:FaceClustering`` for a program in another language (Construct), the same
``FaceClustering`` code runs inside the plugin, and there its IMM children must be the plugin's own resources
(``imm:index:Project``...): a dynamic resource would need the program's Python, and pickles a module path into
the state. :func:`plugin_resources` switches the four classes to that for the duration of a construct; their
properties then travel in the schema's camelCase and come back as the same snake_case attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pulumi
from pulumi import dynamic

from imm_faces.components.providers.schema import BY_TOKEN
from imm_faces.runtime.models.base import camel_name as camel
from imm_faces.runtime.models.base import snake_name as snake

_PLUGIN_RESOURCES: ContextVar[bool] = ContextVar("imm_faces_plugin_resources", default=False)


@contextmanager
def plugin_resources() -> Iterator[None]:
    """Within this block, the IMM resources are registered as the plugin's ``imm:index:*`` resources."""
    token = _PLUGIN_RESOURCES.set(True)
    try:
        yield
    finally:
        _PLUGIN_RESOURCES.reset(token)


class ImmResource(dynamic.Resource):
    """Base of the four resource classes: a dynamic resource, or the plugin's resource under
    :func:`plugin_resources`."""

    _imm_token: str | None = None
    """The plugin's type token while registered as the plugin's resource (None as a dynamic resource)."""

    def _init(
        self,
        token: str,
        provider: Callable[[], dynamic.ResourceProvider],
        name: str,
        props: Mapping[str, Any],
        seeded: tuple[str, ...],
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        if not _PLUGIN_RESOURCES.get():
            super().__init__(provider(), name, {**dict.fromkeys(seeded), **props}, opts)
            return
        spec = BY_TOKEN[token]
        self._imm_token = token
        self._imm_names = {p.name for p in (*spec.inputs, *spec.outputs)}
        outputs = dict.fromkeys(p.name for p in spec.outputs)
        pulumi.CustomResource.__init__(self, token, name, {**outputs, **props}, opts)

    def translate_input_property(self, prop: str) -> str:
        return camel(prop) if self._imm_token and prop in self._imm_names else prop

    def translate_output_property(self, prop: str) -> str:
        return snake(prop) if self._imm_token and snake(prop) in self._imm_names else prop
