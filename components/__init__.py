"""Pulumi components for IMM face clustering: ``FaceClustering`` and the dynamic resources it is made of.

The names below load on first use, so ``imm-faces --help`` and the provider host do not pay for importing
pulumi-alicloud unless they need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imm_faces.components.args import ArgsError, FaceClusteringArgs
    from imm_faces.components.face_clustering import FaceClustering
    from imm_faces.components.policies import checker_policy

_EXPORTS = {
    "ArgsError": "imm_faces.components.args",
    "FaceClusteringArgs": "imm_faces.components.args",
    "FaceClustering": "imm_faces.components.face_clustering",
    "checker_policy": "imm_faces.components.policies",
}
__all__ = ["ArgsError", "FaceClustering", "FaceClusteringArgs", "checker_policy"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'components' has no attribute {name!r}")
