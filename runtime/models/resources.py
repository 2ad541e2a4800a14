"""IMM's projects, datasets, bindings and tasks as the 2020-09-30 API returns them."""

from typing import Any

from imm_faces.runtime.models.base import WireModel


class ResponseTag(WireModel):
    """A project tag in a response (IMM spells the keys TagKey/TagValue here, Key/Value in requests)."""

    tag_key: str | None = None
    tag_value: str | None = None


class Project(WireModel):
    project_name: str | None = None
    service_role: str | None = None
    template_id: str | None = None
    description: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    project_queries_per_second: int | None = None
    engine_concurrency: int | None = None
    project_max_dataset_count: int | None = None
    dataset_max_bind_count: int | None = None
    dataset_max_file_count: int | None = None
    dataset_max_entity_count: int | None = None
    dataset_max_relation_count: int | None = None
    dataset_max_total_file_size: int | None = None
    dataset_count: int | None = None
    file_count: int | None = None
    total_file_size: int | None = None
    tags: list[ResponseTag] | None = None


class WorkflowParameter(WireModel):
    name: str
    value: str


class Dataset(WireModel):
    project_name: str | None = None
    dataset_name: str | None = None
    description: str | None = None
    template_id: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    dataset_max_bind_count: int | None = None
    dataset_max_file_count: int | None = None
    dataset_max_entity_count: int | None = None
    dataset_max_relation_count: int | None = None
    dataset_max_total_file_size: int | None = None
    bind_count: int | None = None
    file_count: int | None = None
    total_file_size: int | None = None
    workflow_parameters: list[WorkflowParameter] | None = None


class Binding(WireModel):
    """A dataset's link to an OSS location. ``phase`` is FullScanning, then IncrementalScanning."""

    project_name: str | None = None
    dataset_name: str | None = None
    uri: str | None = None
    state: str | None = None
    phase: str | None = None
    reason: str | None = None
    create_time: str | None = None
    update_time: str | None = None


class TaskInfo(WireModel):
    """One asynchronous task (ListTasks item; GetTask returns the same fields at the top level)."""

    task_id: str | None = None
    task_type: str | None = None
    status: str | None = None
    code: str | None = None
    message: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    progress: int | None = None
    tags: dict[str, Any] | None = None
    user_data: str | None = None
    task_request_definition: str | None = None
