"""Waiting for IMM's asynchronous work: a task to finish, a binding's first full scan to end."""

from __future__ import annotations

import time

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmFacesError
from imm_faces.runtime.models.resources import Binding
from imm_faces.runtime.operations.bindings import GetBinding
from imm_faces.runtime.operations.tasks import FACE_CLUSTERING, TASK_RUNNING, GetTask, GetTaskResponse

FIRST_POLL = 0.2
"""Seconds before the second look at a task or a binding; later polls back off from there."""


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

    ``timeout`` and ``interval`` are in seconds: polls start at a fifth of a second (a small task is done
    almost at once) and back off to ``interval``. Raises :class:`TaskTimeoutError` when time runs out.
    """
    deadline = time.monotonic() + timeout
    pause = min(FIRST_POLL, interval)
    while True:
        task = client.call(GetTask, project_name=project_name, task_id=task_id, task_type=task_type)
        if task.status != TASK_RUNNING:
            return task
        if time.monotonic() >= deadline:
            raise TaskTimeoutError(f"task {task_id} is still {task.status} after {timeout:g}s")
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, interval)


BINDING_FULL_SCAN = "FullScanning"
BINDING_FAILED_STATES = frozenset({"Failed", "Stopped", "Deleted"})
"""Binding states in which the first full scan will not finish by itself (GetBinding's ``State``)."""


class BindingScanError(ImmFacesError):
    """A binding's first full scan failed, stopped, or did not finish in time."""


def wait_for_full_scan(
    client: ImmClient,
    project_name: str,
    dataset_name: str,
    uri: str,
    *,
    timeout: float,
    interval: float = FIRST_POLL,
    max_interval: float = 5.0,
) -> Binding:
    """Poll GetBinding until the binding has left its first full scan (``Phase`` is no longer FullScanning):
    what was in the location is then indexed, and a clustering task started afterwards sees it. Polls back off
    from ``interval`` to ``max_interval`` seconds. Raises :class:`BindingScanError` when the binding enters a
    state it will not leave by itself, or when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        binding = client.call(GetBinding, project_name=project_name, dataset_name=dataset_name, uri=uri).binding
        if binding is None:
            raise BindingScanError(f"binding {uri} of {project_name}/{dataset_name}: GetBinding returned no binding")
        if binding.state in BINDING_FAILED_STATES:
            raise BindingScanError(f"binding {uri} of {project_name}/{dataset_name} is {binding.state}"
                                   + (f": {binding.reason}" if binding.reason else ""))  # fmt: skip
        if binding.phase != BINDING_FULL_SCAN:
            return binding
        if time.monotonic() >= deadline:
            raise BindingScanError(f"binding {uri} of {project_name}/{dataset_name} is still {binding.phase} "
                                   f"after {timeout:g}s")  # fmt: skip
        time.sleep(min(interval, max(deadline - time.monotonic(), 0.0)))
        interval = min(interval * 2, max_interval)
