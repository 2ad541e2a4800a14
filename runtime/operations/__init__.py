"""IMM's 2020-09-30 operations used by this project: the one catalog.

Look an operation up by name in :data:`CATALOG`, or import it from its module
(``imm_faces.runtime.operations.figure_clusters.GetFigureCluster``). Adding an operation is adding one entry to its
module and to :data:`OPERATIONS`; the client, the emulator and the docs all read it from here.

Importing this package imports no operation module, and no model is built at import
(:class:`~imm_faces.runtime.models.base.WireModel` defers it): a program that uses a few operations
(``imm-faces verify``) imports their modules and builds each model when it is first used. Reading :data:`CATALOG`
imports every module and builds every model (the emulator reads it at start).
"""

import importlib
from typing import TYPE_CHECKING, Any

from imm_faces.runtime.models.base import build_all
from imm_faces.runtime.operations.base import JSON_STRING, Operation, ParameterError, Request, Response

OPERATIONS: tuple[str, ...] = (
    "projects.CreateProject",
    "projects.GetProject",
    "projects.UpdateProject",
    "projects.DeleteProject",
    "projects.ListProjects",
    "datasets.CreateDataset",
    "datasets.GetDataset",
    "datasets.UpdateDataset",
    "datasets.DeleteDataset",
    "datasets.ListDatasets",
    "bindings.CreateBinding",
    "bindings.GetBinding",
    "bindings.DeleteBinding",
    "bindings.ListBindings",
    "files.IndexFileMeta",
    "files.BatchIndexFileMeta",
    "files.GetFileMeta",
    "files.DeleteFileMeta",
    "files.BatchDeleteFileMeta",
    "query.SimpleQuery",
    "tasks.CreateFigureClusteringTask",
    "tasks.CreateFigureClustersMergingTask",
    "tasks.GetTask",
    "tasks.ListTasks",
    "figure_clusters.QueryFigureClusters",
    "figure_clusters.GetFigureCluster",
    "figure_clusters.BatchGetFigureCluster",
    "figure_clusters.UpdateFigureCluster",
    "figure_clusters.SearchImageFigureCluster",
)
"""Every operation, as ``<module>.<name>`` (the module under this package that defines it), in the docs' order."""

if TYPE_CHECKING:
    CATALOG: dict[str, Operation[Any, Any]]


def _catalog() -> dict[str, Operation[Any, Any]]:
    """Every operation by name, each module imported and every model built (whoever reads the whole catalog, the
    emulator above all, serves all of them, from several threads)."""
    catalog: dict[str, Operation[Any, Any]] = {}
    for path in OPERATIONS:
        module, name = path.split(".")
        op = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        catalog[op.name] = op
    build_all()
    return catalog


def __getattr__(name: str) -> Any:
    if name == "CATALOG":  # built once, on first use, then an ordinary module attribute
        globals()["CATALOG"] = catalog = _catalog()
        return catalog
    if name in {"projects", "datasets", "bindings", "files", "query", "tasks", "figure_clusters"}:
        return importlib.import_module(f"{__name__}.{name}")  # `from ...operations import projects`
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CATALOG", "JSON_STRING", "OPERATIONS", "Operation", "ParameterError", "Request", "Response"]
