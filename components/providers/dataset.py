"""The IMM dataset as a dynamic resource: ``pulumi-python:dynamic/imm:Dataset``.

Stable path: state refers to ``imm_faces.components.providers.dataset.DatasetProvider`` by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from imm_faces.components.providers.base import ManagedObjectProvider
from imm_faces.components.providers.core import DATASET_SETTINGS as SETTINGS
from imm_faces.components.providers.core import DatasetCrud
from imm_faces.components.providers.remote import ImmResource

__all__ = ["SETTINGS", "Dataset", "DatasetProvider"]


class DatasetProvider(ManagedObjectProvider):
    """The dynamic provider: an adapter to :class:`~imm_faces.components.providers.core.DatasetCrud`."""

    crud = DatasetCrud


class Dataset(ImmResource, module="imm", name="Dataset"):
    """An IMM dataset in a project."""

    project_name: pulumi.Output[str]
    dataset_name: pulumi.Output[str]
    endpoint: pulumi.Output[str | None]
    create_time: pulumi.Output[str]
    adopted: pulumi.Output[bool]
    """Whether it existed and was taken over (``adopt``): then `pulumi destroy` keeps it (unless ``delete_adopted``)."""

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        self._init("imm:index:Dataset", DatasetProvider, name, props, (*DatasetProvider.reported, "adopted"), opts)
