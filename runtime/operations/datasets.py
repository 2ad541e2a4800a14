"""Datasets: CreateDataset, GetDataset, UpdateDataset, DeleteDataset, ListDatasets."""

from typing import Annotated

from pydantic import Field

from imm_faces.runtime.models.resources import Dataset, WorkflowParameter
from imm_faces.runtime.operations import _params as p
from imm_faces.runtime.operations.base import JSON_STRING, Operation, Request, Response


class _DatasetSettings(Request):
    project_name: str
    description: p.Description | None = None
    template_id: str | None = None
    dataset_max_bind_count: p.DatasetMaxBindCount | None = None
    dataset_max_file_count: p.DatasetMaxFileCount | None = None
    dataset_max_entity_count: p.DatasetMaxEntityCount | None = None
    dataset_max_relation_count: p.DatasetMaxRelationCount | None = None
    dataset_max_total_file_size: p.DatasetMaxTotalFileSize | None = None
    workflow_parameters: Annotated[list[WorkflowParameter] | None, JSON_STRING] = None


class CreateDatasetRequest(_DatasetSettings):
    dataset_name: p.NewName


class UpdateDatasetRequest(_DatasetSettings):
    dataset_name: str


class GetDatasetRequest(Request):
    project_name: str
    dataset_name: str
    with_statistics: bool | None = None


class DeleteDatasetRequest(Request):
    project_name: str
    dataset_name: str


class ListDatasetsRequest(Request):
    project_name: str
    max_results: Annotated[int | None, p.max_results("ListDatasets")] = None
    next_token: str | None = None
    prefix: Annotated[str | None, Field(max_length=128)] = None


class DatasetResponse(Response):
    dataset: Dataset | None = None


class ListDatasetsResponse(Response):
    datasets: list[Dataset] | None = None
    next_token: str | None = None


CreateDataset = Operation("CreateDataset", CreateDatasetRequest, DatasetResponse, "Create a dataset.")
GetDataset = Operation("GetDataset", GetDatasetRequest, DatasetResponse, "Get a dataset.")
UpdateDataset = Operation("UpdateDataset", UpdateDatasetRequest, DatasetResponse, "Update a dataset.")
DeleteDataset = Operation("DeleteDataset", DeleteDatasetRequest, Response, "Delete a dataset.")
ListDatasets = Operation(
    "ListDatasets",
    ListDatasetsRequest,
    ListDatasetsResponse,
    "List a project's datasets.",
    page_items="datasets",
)
