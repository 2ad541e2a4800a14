"""The IMM project (2020-09-30 API) as a dynamic resource: ``pulumi-python:dynamic/imm:Project``.

Stable path: state refers to ``imm_faces.components.providers.project.ProjectProvider`` by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from imm_faces.components.providers.base import ManagedObjectProvider
from imm_faces.components.providers.core import PROJECT_SETTINGS as SETTINGS
from imm_faces.components.providers.core import ProjectCrud
from imm_faces.components.providers.remote import ImmResource

__all__ = ["SETTINGS", "Project", "ProjectProvider"]


class ProjectProvider(ManagedObjectProvider):
    """The dynamic provider: an adapter to :class:`~imm_faces.components.providers.core.ProjectCrud`."""

    crud = ProjectCrud


class Project(ImmResource, module="imm", name="Project"):
    """An IMM project. Inputs are snake_case IMM settings; credentials come from the provider host."""

    project_name: pulumi.Output[str]
    region: pulumi.Output[str]
    service_role: pulumi.Output[str]
    create_time: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        self._init("imm:index:Project", ProjectProvider, name, props, tuple(ProjectProvider.reported), opts)
