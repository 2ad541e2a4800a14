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

from collections.abc import Mapping
from typing import Any

import pulumi

from imm_faces.components.providers.base import ImmProvider
from imm_faces.components.providers.core import (
    IDENTITY_PROPS,
    OWNER_TAG,
    POLL_INTERVAL,
    RESULT_PROPS,
    ClusteringTaskCrud,
    owner_digest,
)
from imm_faces.components.providers.remote import ImmResource

__all__ = [
    "IDENTITY_PROPS",
    "OWNER_TAG",
    "POLL_INTERVAL",
    "RESULT_PROPS",
    "ClusteringTaskProvider",
    "FigureClusteringTask",
    "owner_digest",
]


class ClusteringTaskProvider(ImmProvider):
    """The dynamic provider: an adapter to :class:`~imm_faces.components.providers.core.ClusteringTaskCrud`."""

    crud = ClusteringTaskCrud


class FigureClusteringTask(ImmResource, module="imm", name="FigureClusteringTask"):
    """One figure clustering run over a dataset, waited for at deployment."""

    task_id: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        self._init("imm:index:FigureClusteringTask", ClusteringTaskProvider, name, props, tuple(RESULT_PROPS), opts)
