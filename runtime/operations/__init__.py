"""IMM's 2020-09-30 operations used by this project: the one catalog.

Look an operation up by name in :data:`CATALOG`, or import it from its module
(``imm_faces.runtime.operations.figure_clusters.GetFigureCluster``). Adding an operation is adding one entry to its
module and to this list; the client, the emulator and the docs all read it from here.
"""

from __future__ import annotations

from typing import Any

from imm_faces.runtime.operations import bindings, datasets, figure_clusters, files, projects, query, tasks
from imm_faces.runtime.operations._base import JSON_STRING, Operation, ParameterError, Request, Response

_ALL: tuple[Operation[Any, Any], ...] = (
    projects.CreateProject,
    projects.GetProject,
    projects.UpdateProject,
    projects.DeleteProject,
    projects.ListProjects,
    datasets.CreateDataset,
    datasets.GetDataset,
    datasets.UpdateDataset,
    datasets.DeleteDataset,
    datasets.ListDatasets,
    bindings.CreateBinding,
    bindings.GetBinding,
    bindings.DeleteBinding,
    bindings.ListBindings,
    files.IndexFileMeta,
    files.BatchIndexFileMeta,
    files.GetFileMeta,
    files.DeleteFileMeta,
    files.BatchDeleteFileMeta,
    query.SimpleQuery,
    tasks.CreateFigureClusteringTask,
    tasks.CreateFigureClustersMergingTask,
    tasks.GetTask,
    tasks.ListTasks,
    figure_clusters.QueryFigureClusters,
    figure_clusters.GetFigureCluster,
    figure_clusters.BatchGetFigureCluster,
    figure_clusters.UpdateFigureCluster,
    figure_clusters.SearchImageFigureCluster,
)

CATALOG: dict[str, Operation[Any, Any]] = {op.name: op for op in _ALL}

__all__ = ["CATALOG", "JSON_STRING", "Operation", "ParameterError", "Request", "Response"]
