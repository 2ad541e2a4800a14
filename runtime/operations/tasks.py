"""Tasks: CreateFigureClusteringTask, GetTask, ListTasks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from imm_faces.runtime.models.inputs import Notification, TimeRange
from imm_faces.runtime.models.resources import TaskInfo
from imm_faces.runtime.operations import _params as p
from imm_faces.runtime.operations._base import JSON_STRING, Operation, Request, Response

FACE_CLUSTERING = "FaceClustering"
"""GetTask's TaskType for tasks made by CreateFigureClusteringTask (not "FigureClustering")."""

TASK_RUNNING, TASK_SUCCEEDED, TASK_FAILED = "Running", "Succeeded", "Failed"


class CreateFigureClusteringTaskRequest(Request):
    project_name: str
    dataset_name: str
    notification: Annotated[Notification | None, JSON_STRING] = None
    tags: Annotated[dict[str, Any] | None, JSON_STRING] = None
    user_data: p.UserData | None = None


class CreateTaskResponse(Response):
    task_id: str | None = None
    event_id: str | None = None


class GetTaskRequest(Request):
    project_name: str
    task_id: str
    task_type: str
    request_definition: bool | None = None


class GetTaskResponse(Response, TaskInfo):
    project_name: str | None = None
    event_id: str | None = None


class ListTasksRequest(Request):
    project_name: str
    max_results: Annotated[int | None, p.max_results("ListTasks")] = None
    next_token: str | None = None
    order: Literal["asc", "desc"] | None = None
    sort: Literal["TaskId", "StartTime", "EndTime"] | None = None
    status: str | None = None
    task_types: Annotated[list[str] | None, JSON_STRING] = None
    start_time_range: Annotated[TimeRange | None, JSON_STRING] = None
    end_time_range: Annotated[TimeRange | None, JSON_STRING] = None
    tag_selector: str | None = None
    request_definition: bool | None = None


class ListTasksResponse(Response):
    project_name: str | None = None
    tasks: list[TaskInfo] | None = None
    next_token: str | None = None
    max_results: str | None = None  # a string in the service's model


CreateFigureClusteringTask = Operation(
    "CreateFigureClusteringTask",
    CreateFigureClusteringTaskRequest,
    CreateTaskResponse,
    "Cluster the dataset's faces into figure clusters (asynchronous, incremental).",
)
GetTask = Operation("GetTask", GetTaskRequest, GetTaskResponse, "Get an asynchronous task's status.")
ListTasks = Operation("ListTasks", ListTasksRequest, ListTasksResponse, "List a project's tasks.", page_items="tasks")
