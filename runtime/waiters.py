"""Waiting for IMM's asynchronous tasks to finish."""

from __future__ import annotations

import time

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmFacesError
from imm_faces.runtime.operations.tasks import FACE_CLUSTERING, TASK_RUNNING, GetTask, GetTaskResponse


class TaskTimeoutError(ImmFacesError):
    """A task was still Running when the wait gave up."""


def wait_for_task(
    client: ImmClient,
    project_name: str,
    task_id: str,
    *,
    task_type: str = FACE_CLUSTERING,
    timeout: float = 600.0,
    interval: float = 0.5,
) -> GetTaskResponse:
    """Poll GetTask until the task is no longer Running; return its final state (Succeeded or Failed).

    ``timeout`` and ``interval`` are in seconds. Raises :class:`TaskTimeoutError` when time runs out.
    """
    deadline = time.monotonic() + timeout
    while True:
        task = client.call(GetTask, project_name=project_name, task_id=task_id, task_type=task_type)
        if task.status != TASK_RUNNING:
            return task
        if time.monotonic() >= deadline:
            raise TaskTimeoutError(f"task {task_id} is still {task.status} after {timeout:g}s")
        time.sleep(interval)
