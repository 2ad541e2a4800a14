"""Pulumi components for IMM face clustering: ``FaceClustering`` and the dynamic resources it is made of."""

from components.args import ArgsError, FaceClusteringArgs
from components.face_clustering import FaceClustering

__all__ = ["ArgsError", "FaceClustering", "FaceClusteringArgs"]
