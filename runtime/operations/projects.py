"""Projects: CreateProject, GetProject, UpdateProject, DeleteProject, ListProjects."""

from typing import Annotated

from pydantic import Field

from imm_faces.runtime.models.inputs import Tag
from imm_faces.runtime.models.resources import Project
from imm_faces.runtime.operations import _params as p
from imm_faces.runtime.operations.base import JSON_STRING, Operation, Request, Response


class _ProjectSettings(Request):
    service_role: str | None = None
    description: p.Description | None = None
    template_id: str | None = None
    project_max_dataset_count: p.ProjectMaxDatasetCount | None = None
    dataset_max_bind_count: p.DatasetMaxBindCount | None = None
    dataset_max_file_count: p.DatasetMaxFileCount | None = None
    dataset_max_entity_count: p.DatasetMaxEntityCount | None = None
    dataset_max_relation_count: p.DatasetMaxRelationCount | None = None
    dataset_max_total_file_size: p.DatasetMaxTotalFileSize | None = None
    tag: Annotated[list[Tag] | None, JSON_STRING] = None


class CreateProjectRequest(_ProjectSettings):
    project_name: p.NewName


class UpdateProjectRequest(_ProjectSettings):
    project_name: str


class GetProjectRequest(Request):
    project_name: str
    with_statistics: bool | None = None


class DeleteProjectRequest(Request):
    project_name: str


class ListProjectsRequest(Request):
    max_results: Annotated[int | None, p.max_results("ListProjects")] = None
    next_token: str | None = None
    prefix: Annotated[str | None, Field(max_length=128)] = None
    tag: Annotated[list[Tag] | None, JSON_STRING] = None


class ProjectResponse(Response):
    project: Project | None = None


class ListProjectsResponse(Response):
    projects: list[Project] | None = None
    next_token: str | None = None


CreateProject = Operation("CreateProject", CreateProjectRequest, ProjectResponse, "Create a project.")
GetProject = Operation("GetProject", GetProjectRequest, ProjectResponse, "Get a project.")
UpdateProject = Operation("UpdateProject", UpdateProjectRequest, ProjectResponse, "Update a project.")
DeleteProject = Operation("DeleteProject", DeleteProjectRequest, Response, "Delete a project without datasets.")
ListProjects = Operation(
    "ListProjects", ListProjectsRequest, ListProjectsResponse, "List projects.", page_items="projects"
)
