"""Dynamic providers for what pulumi-alicloud does not cover: IMM (2020-09-30) projects, datasets, bindings
and figure clustering tasks. Module paths and class names here are pickled into stack state: keep them."""

from imm_faces.components.providers.binding import Binding, BindingProvider
from imm_faces.components.providers.clustering_task import ClusteringTaskProvider, FigureClusteringTask
from imm_faces.components.providers.dataset import Dataset, DatasetProvider
from imm_faces.components.providers.project import Project, ProjectProvider

__all__ = [
    "Binding",
    "BindingProvider",
    "ClusteringTaskProvider",
    "Dataset",
    "DatasetProvider",
    "FigureClusteringTask",
    "Project",
    "ProjectProvider",
]
