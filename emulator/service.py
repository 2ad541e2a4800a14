"""IMM's behaviour: one handler per catalog operation, over the store.

Handlers take the operation's request model and return its response model (both from
``imm_faces.runtime.operations``); the wire layer does the rest. Asynchronous work (indexing, clustering) is handed
to the job runner, which the service holds as ``jobs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imm_faces.emulator.operations.base import Jobs, RenderedResponse
from imm_faces.emulator.operations.bindings import BindingOperations
from imm_faces.emulator.operations.datasets import DatasetOperations
from imm_faces.emulator.operations.figure_clusters import FigureClusterOperations
from imm_faces.emulator.operations.files import FileOperations
from imm_faces.emulator.operations.projects import ProjectOperations
from imm_faces.emulator.operations.query import QueryOperations
from imm_faces.emulator.operations.tasks import TaskOperations
from imm_faces.emulator.store import Store
from imm_faces.runtime.models.base import snake_name
from imm_faces.runtime.operations import CATALOG
from imm_faces.runtime.operations.base import Request, Response

__all__ = ["ImmService", "Jobs", "RenderedResponse"]


class ImmService(
    ProjectOperations,
    DatasetOperations,
    BindingOperations,
    FileOperations,
    QueryOperations,
    TaskOperations,
    FigureClusterOperations,
):
    def __init__(self, store: Store, jobs: Jobs) -> None:
        super().__init__(store, jobs)
        # One handler per catalog operation: ``GetFigureCluster`` is served by ``op_get_figure_cluster``.
        self.handlers: dict[str, Callable[[Any], Response | RenderedResponse]] = {
            name: getattr(self, f"op_{snake_name(name)}") for name in CATALOG
        }

    def handle(self, name: str, request: Request) -> Response | RenderedResponse:
        """The operation's response model, or for the figure-cluster reads a :class:`RenderedResponse`."""
        return self.handlers[name](request)
