"""Tasks: CreateFigureClusteringTask, CreateFigureClustersMergingTask, GetTask, ListTasks."""

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from imm_faces.runtime.models.inputs import Notification, TimeRange
from imm_faces.runtime.models.resources import TaskInfo
from imm_faces.runtime.operations import _params as p
from imm_faces.runtime.operations.base import JSON_STRING, Operation, Request, Response
from imm_faces.runtime.rules import MERGE_MAX_FROMS

FACE_CLUSTERING = "FaceClustering"
"""GetTask's TaskType for tasks made by CreateFigureClusteringTask (not "FigureClustering")."""

FIGURE_CLUSTERS_MERGING = "FigureClustersMerging"
"""GetTask's TaskType for CreateFigureClustersMergingTask. Inferred: IMM's task-type table does not list this
operation; the name follows the operation's name the way the other task types do."""

TASK_RUNNING, TASK_SUCCEEDED, TASK_FAILED = "Running", "Succeeded", "Failed"


class CreateFigureClusteringTaskRequest(Request):
    project_name: str
    dataset_name: str
    notification: Annotated[Notification | None, JSON_STRING] = None
    tags: Annotated[dict[str, Any] | None, JSON_STRING] = None
    user_data: p.UserData | None = None


class CreateFigureClustersMergingTaskRequest(Request):
    """Merge the figure clusters ``From`` (one id) or ``Froms`` (up to 100 ids; exactly one of the two) into
    ``To``: their faces join ``To``, which keeps its id, and they cease to exist."""

    project_name: str
    dataset_name: str
    from_: Annotated[str | None, Field(alias="From")] = None
    froms: Annotated[list[str] | None, JSON_STRING, Field(min_length=1, max_length=MERGE_MAX_FROMS)] = None
    to: str
    notification: Annotated[Notification | None, JSON_STRING] = None
    tags: Annotated[dict[str, Any] | None, JSON_STRING] = None
    user_data: p.UserData | None = None

    @field_validator("froms")
    @classmethod
    def _one_source(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and info.data.get("from_") is not None:
            raise ValueError("give From or Froms, not both")
        return value

    def sources(self) -> list[str]:
        """The clusters to merge into ``To``, in the order given, without repeats."""
        return list(dict.fromkeys([self.from_] if self.from_ is not None else self.froms or []))


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
CreateFigureClustersMergingTask = Operation(
    "CreateFigureClustersMergingTask",
    CreateFigureClustersMergingTaskRequest,
    CreateTaskResponse,
    "Merge figure clusters (From or Froms) into one (To) (asynchronous).",
)
GetTask = Operation("GetTask", GetTaskRequest, GetTaskResponse, "Get an asynchronous task's status.")
ListTasks = Operation("ListTasks", ListTasksRequest, ListTasksResponse, "List a project's tasks.", page_items="tasks")
