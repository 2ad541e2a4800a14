"""The IMM dataset as a dynamic resource: ``pulumi-python:dynamic/imm:Dataset``.

Stable path: state refers to ``imm_faces.components.providers.dataset.DatasetProvider`` by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi import dynamic

from imm_faces.components.providers.base import ManagedObjectProvider
from imm_faces.runtime.operations import datasets
from imm_faces.runtime.rules import check_description, check_name

# The settings UpdateDataset takes, straight from the operation's request model (workflow parameters are not
# managed by this resource).
SETTINGS = tuple(f for f in datasets.UpdateDatasetRequest.model_fields
                 if f not in ("project_name", "dataset_name", "workflow_parameters"))  # fmt: skip


class DatasetProvider(ManagedObjectProvider):
    kind = "dataset"
    replace_on = ("region", "endpoint", "project_name", "dataset_name")
    update_on = SETTINGS
    unique = ("project_name", "dataset_name")
    compatible_on = ("template_id",)
    validators = {"project_name": check_name, "dataset_name": check_name, "description": check_description}
    operations = {"create": datasets.CreateDataset, "get": datasets.GetDataset, "update": datasets.UpdateDataset,
                  "delete": datasets.DeleteDataset}  # fmt: skip

    def identity(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {"project_name": props["project_name"], "dataset_name": props["dataset_name"]}


class Dataset(dynamic.Resource, module="imm", name="Dataset"):
    """An IMM dataset in a project."""

    project_name: pulumi.Output[str]
    dataset_name: pulumi.Output[str]
    endpoint: pulumi.Output[str | None]
    create_time: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DatasetProvider(), name, {**dict.fromkeys(DatasetProvider.reported), **props}, opts)
