"""A figure clustering run as a dynamic resource: ``pulumi-python:dynamic/imm:FigureClusteringTask``.

``create`` starts CreateFigureClusteringTask and waits (GetTask) until it ends or ``timeout`` seconds pass; a
Failed task fails the deployment with IMM's Code and Message. A change of ``triggers`` (or of what the task
runs on) replaces the resource, which runs the task again. ``delete`` does nothing remote: a task is a past
event, and the figure clusters it made belong to the dataset. Stable path:
``imm_faces.components.providers.clustering_task.ClusteringTaskProvider``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from imm_faces.components.providers.base import ImmProvider, ProviderError
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import tasks
from imm_faces.runtime.rules import check_name
from imm_faces.runtime.waiters import TaskTimeoutError, wait_for_task

DEFAULT_TIMEOUT = 1800.0
POLL_INTERVAL = 2.0
RESULT_PROPS = ("task_id", "status", "start_time", "end_time")


def _positive(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"must be a positive number of seconds; got {value!r}")
    return float(value)


class ClusteringTaskProvider(ImmProvider):
    replace_on = ("region", "endpoint", "project_name", "dataset_name", "triggers", "notification_topic")
    update_on = ("timeout", "poll_interval")
    unique = ()
    defaults = {"timeout": DEFAULT_TIMEOUT, "poll_interval": POLL_INTERVAL, "triggers": {}}
    validators = {"project_name": check_name, "dataset_name": check_name, "timeout": _positive,
                  "poll_interval": _positive}  # fmt: skip

    def create(self, props: dict[str, Any]) -> CreateResult:
        project, dataset = props["project_name"], props["dataset_name"]
        params: dict[str, Any] = {"project_name": project, "dataset_name": dataset}
        if props.get("notification_topic"):
            params["notification"] = {"MNS": {"TopicName": props["notification_topic"]}}
        if props.get("triggers"):
            params["tags"] = dict(props["triggers"])  # the task records why it ran
        with self.client(props) as imm:
            try:
                task_id = imm.call(tasks.CreateFigureClusteringTask, **params).task_id or ""
                task = wait_for_task(imm, project, task_id, timeout=float(props["timeout"]),
                                     interval=float(props["poll_interval"]))  # fmt: skip
            except TaskTimeoutError as exc:
                raise ProviderError(f"figure clustering on {project}/{dataset}: {exc}; raise `timeout` or check "
                                    "the task with GetTask") from None  # fmt: skip
            except ImmError as exc:
                raise ProviderError(f"figure clustering on {project}/{dataset}: {exc}") from None
        if task.status != tasks.TASK_SUCCEEDED:
            raise ProviderError(f"figure clustering task {task_id} on {project}/{dataset} {task.status}: "
                                f"{task.code}: {task.message}")  # fmt: skip
        outs = {**props, "task_id": task_id, "status": task.status, "start_time": task.start_time,
                "end_time": task.end_time}  # fmt: skip
        return CreateResult(task_id, outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """The task's current record; when IMM no longer has it (tasks expire), the stored record stands."""
        try:
            with self.client(props) as imm:
                task = imm.call(tasks.GetTask, project_name=props["project_name"], task_id=id_,
                                task_type=tasks.FACE_CLUSTERING)  # fmt: skip
        except ImmError as exc:
            if exc.resource_not_found:
                return ReadResult(id_, props)
            raise
        return ReadResult(id_, {**props, "status": task.status, "start_time": task.start_time,
                                "end_time": task.end_time})  # fmt: skip

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only the waiting settings changed: nothing to run; keep the last run's record."""
        return UpdateResult({**news, **{k: olds.get(k) for k in RESULT_PROPS}})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class FigureClusteringTask(dynamic.Resource, module="imm", name="FigureClusteringTask"):
    """One figure clustering run over a dataset, waited for at deployment."""

    task_id: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        seed = dict.fromkeys(RESULT_PROPS)
        super().__init__(ClusteringTaskProvider(), name, {**seed, **props}, opts)
