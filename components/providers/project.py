"""The IMM project (2020-09-30 API) as a dynamic resource: ``pulumi-python:dynamic/imm:Project``.

Stable path: state refers to ``imm_faces.components.providers.project.ProjectProvider`` by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic

from imm_faces.components.providers.base import ManagedObjectProvider, settings
from imm_faces.runtime.operations import projects
from imm_faces.runtime.rules import DEFAULT_SERVICE_ROLE, check_description, check_name

# The settings UpdateProject takes, straight from the operation's request model ("tag" is a list there; the
# resource takes a mapping under "tags").
SETTINGS = tuple(f for f in projects.UpdateProjectRequest.model_fields if f not in ("project_name", "tag"))


class ProjectProvider(ManagedObjectProvider):
    kind = "project"
    replace_on = ("region", "endpoint", "project_name")
    update_on = (*SETTINGS, "tags")
    unique = ("project_name",)
    compatible_on = ("service_role",)
    defaults = {"service_role": DEFAULT_SERVICE_ROLE}
    validators = {"project_name": check_name, "description": check_description}
    operations = {"create": projects.CreateProject, "get": projects.GetProject, "update": projects.UpdateProject,
                  "delete": projects.DeleteProject}  # fmt: skip

    def identity(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {"project_name": props["project_name"]}

    def parameters(self, props: Mapping[str, Any]) -> dict[str, Any]:
        params = settings(props, [k for k in self.update_on if k != "tags"])
        if props.get("tags"):
            params["tag"] = [{"Key": k, "Value": v} for k, v in sorted(props["tags"].items())]
        return params

    def observed(self, remote: Any) -> dict[str, Any]:
        seen = super().observed(remote)
        seen["tags"] = {t.tag_key: t.tag_value for t in remote.tags or []} or None
        return seen


class Project(dynamic.Resource, module="imm", name="Project"):
    """An IMM project. Inputs are snake_case IMM settings; credentials come from the provider host."""

    project_name: pulumi.Output[str]
    region: pulumi.Output[str]
    service_role: pulumi.Output[str]
    create_time: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ProjectProvider(), name, {**dict.fromkeys(ProjectProvider.reported), **props}, opts)
