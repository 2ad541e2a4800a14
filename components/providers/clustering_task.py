"""A figure clustering run as a dynamic resource: ``pulumi-python:dynamic/imm:FigureClusteringTask``.

``create`` starts CreateFigureClusteringTask and waits (GetTask) until it ends or ``timeout`` seconds pass; a
Failed task fails the deployment with IMM's Code and Message. Each task carries the resource's identity in its
``Tags`` (:data:`OWNER_TAG`: a digest of ``owner`` and of everything that makes the run what it is), so a
create that finds a task of the same resource still Running (ListTasks) waits for that one instead of starting
another: a deployment that timed out, or was interrupted, resumes the same task on the next ``pulumi up``.
A change of ``triggers`` (or of what the task runs on) replaces the resource, which runs the task again.
``delete`` does nothing remote: a task is a past event, and the figure clusters it made belong to the dataset.
Stable path: ``imm_faces.components.providers.clustering_task.ClusteringTaskProvider``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from imm_faces.components.providers.base import ImmProvider, ProviderError, positive_seconds
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import tasks
from imm_faces.runtime.rules import check_name
from imm_faces.runtime.waiters import TaskTimeoutError, wait_for_task

DEFAULT_TIMEOUT = 1800.0
POLL_INTERVAL = 2.0
RESULT_PROPS = ("task_id", "status", "start_time", "end_time")
OWNER_TAG = "imm-faces-resource"
"""The task tag that names the resource a task was started for (a digest: see :func:`owner_digest`)."""
IDENTITY_PROPS = ("owner", "project_name", "dataset_name", "triggers", "notification_topic")


def owner_digest(props: Mapping[str, Any]) -> str:
    """Who started a task and for what: the resource's ``owner`` (Pulumi project, stack and resource name) and
    the inputs that make a run different. Two runs of one resource with the same inputs share it."""
    identity = json.dumps({k: props.get(k) for k in IDENTITY_PROPS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


class ClusteringTaskProvider(ImmProvider):
    replace_on = ("region", "endpoint", "project_name", "dataset_name", "triggers", "notification_topic")
    update_on = ("timeout", "poll_interval")
    unique = ()
    defaults = {"timeout": DEFAULT_TIMEOUT, "poll_interval": POLL_INTERVAL, "triggers": {}}
    validators = {"project_name": check_name, "dataset_name": check_name, "timeout": positive_seconds,
                  "poll_interval": positive_seconds}  # fmt: skip

    def create(self, props: dict[str, Any]) -> CreateResult:
        project, dataset = props["project_name"], props["dataset_name"]
        owner = owner_digest(props)
        with self.client(props) as imm:
            try:
                task_id = self._running_task(imm, project, owner) or self._start(imm, props, owner)
                task = wait_for_task(imm, project, task_id, timeout=float(props["timeout"]),
                                     interval=float(props["poll_interval"]))  # fmt: skip
            except TaskTimeoutError as exc:
                raise ProviderError(f"figure clustering on {project}/{dataset}: {exc}. The task goes on in IMM; "
                                    f"the next `pulumi up` waits for this same task (it is tagged "
                                    f"{OWNER_TAG}={owner}) instead of starting another. Raise `timeout` to wait "
                                    "longer.") from None  # fmt: skip
            except ImmError as exc:
                raise ProviderError(f"figure clustering on {project}/{dataset}: {exc}") from None
        if task.status != tasks.TASK_SUCCEEDED:
            raise ProviderError(f"figure clustering task {task_id} on {project}/{dataset} {task.status}: "
                                f"{task.code}: {task.message}")  # fmt: skip
        outs = {**props, "task_id": task_id, "status": task.status, "start_time": task.start_time,
                "end_time": task.end_time}  # fmt: skip
        return CreateResult(task_id, outs)

    @staticmethod
    def _running_task(imm: ImmClient, project: str, owner: str) -> str | None:
        """The TaskId of a task this resource started that is still Running, if any (the newest)."""
        running = [
            t for t in imm.paginate(tasks.ListTasks, project_name=project, task_types=[tasks.FACE_CLUSTERING],
                                    status=tasks.TASK_RUNNING, tag_selector=f"{OWNER_TAG}={owner}")
            if (t.tags or {}).get(OWNER_TAG) == owner  # checked here too: the selector's syntax is IMM's
        ]  # fmt: skip
        running.sort(key=lambda t: t.start_time or "")
        return running[-1].task_id if running else None

    @staticmethod
    def _start(imm: ImmClient, props: Mapping[str, Any], owner: str) -> str:
        params: dict[str, Any] = {"project_name": props["project_name"], "dataset_name": props["dataset_name"]}
        if props.get("notification_topic"):
            params["notification"] = {"MNS": {"TopicName": props["notification_topic"]}}
        params["tags"] = {**dict(props.get("triggers") or {}), OWNER_TAG: owner}  # why it ran, and for whom
        return imm.call(tasks.CreateFigureClusteringTask, **params).task_id or ""

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
