"""Waiting for IMM's asynchronous work: a task to finish, a binding's first full scan to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmFacesError
from imm_faces.runtime.models.resources import Binding
from imm_faces.runtime.operations.bindings import GetBinding
from imm_faces.runtime.operations.tasks import FACE_CLUSTERING, TASK_RUNNING, GetTask, GetTaskResponse

FIRST_POLL = 0.2
"""Seconds before the second look at a task or a binding; later polls back off from there."""


T = TypeVar("T")


class TaskTimeoutError(ImmFacesError):
    """A task was still Running when the wait gave up."""


def poll(
    look: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    cap: float,
    gave_up: Callable[[T], Exception],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``look`` until ``done`` says its answer is final; pause :data:`FIRST_POLL` seconds (at most ``cap``)
    and double the pause each time up to ``cap``; past ``timeout`` seconds raise ``gave_up(last answer)``.
    ``sleep`` makes each pause (a caller's may end the wait early by raising, e.g. when a deployment is
    cancelled)."""
    deadline = time.monotonic() + timeout
    pause = min(FIRST_POLL, cap)
    while True:
        answer = look()
        if done(answer):
            return answer
        if time.monotonic() >= deadline:
            raise gave_up(answer)
        sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, cap)


def wait_for_task(
    client: ImmClient,
    project_name: str,
    task_id: str,
    *,
    task_type: str = FACE_CLUSTERING,
    timeout: float = 600.0,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> GetTaskResponse:
    """Poll GetTask until the task is no longer Running; return its final state (Succeeded or Failed).

    ``timeout`` and ``interval`` are in seconds: polls start at a fifth of a second (a small task is done
    almost at once) and back off to ``interval``. Raises :class:`TaskTimeoutError` when time runs out.
    """
    return poll(
        lambda: client.call(GetTask, project_name=project_name, task_id=task_id, task_type=task_type),
        lambda task: task.status != TASK_RUNNING,
        timeout=timeout,
        cap=interval,
        gave_up=lambda task: TaskTimeoutError(f"task {task_id} is still {task.status} after {timeout:g}s"),
        sleep=sleep,
    )


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
    max_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Binding:
    """Poll GetBinding until the binding has left its first full scan (``Phase`` is no longer FullScanning):
    what was in the location is then indexed, and a clustering task started afterwards sees it. Polls back off
    to ``max_interval`` seconds. Raises :class:`BindingScanError` when the binding enters a state it will not
    leave by itself, or when ``timeout`` seconds pass."""
    where = f"binding {uri} of {project_name}/{dataset_name}"

    def look() -> Binding:
        binding = client.call(GetBinding, project_name=project_name, dataset_name=dataset_name, uri=uri).binding
        if binding is None:
            raise BindingScanError(f"{where}: GetBinding returned no binding")
        if binding.state in BINDING_FAILED_STATES:
            raise BindingScanError(f"{where} is {binding.state}" + (f": {binding.reason}" if binding.reason else ""))
        return binding

    return poll(
        look,
        lambda b: b.phase != BINDING_FULL_SCAN,
        timeout=timeout,
        cap=max_interval,
        sleep=sleep,
        gave_up=lambda b: BindingScanError(f"{where} is still {b.phase} after {timeout:g}s"),
    )
