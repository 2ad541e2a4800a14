"""Bindings of a dataset to OSS: CreateBinding, GetBinding, DeleteBinding, ListBindings."""

from typing import Annotated

from imm_faces.runtime.models.resources import Binding
from imm_faces.runtime.operations import _params as p
from imm_faces.runtime.operations.base import Operation, Request, Response


class CreateBindingRequest(Request):
    project_name: str
    dataset_name: str
    uri: p.OssLocation


class BindingRequest(Request):
    project_name: str
    dataset_name: str
    uri: str


class ListBindingsRequest(Request):
    project_name: str
    dataset_name: str
    max_results: Annotated[int | None, p.max_results("ListBindings")] = None
    next_token: str | None = None


class BindingResponse(Response):
    binding: Binding | None = None


class ListBindingsResponse(Response):
    bindings: list[Binding] | None = None
    next_token: str | None = None


CreateBinding = Operation(
    "CreateBinding",
    CreateBindingRequest,
    BindingResponse,
    "Bind an OSS location: index it, then keep indexing.",
)
GetBinding = Operation("GetBinding", BindingRequest, BindingResponse, "Get a binding.")
DeleteBinding = Operation("DeleteBinding", BindingRequest, Response, "Delete a binding.")
ListBindings = Operation(
    "ListBindings",
    ListBindingsRequest,
    ListBindingsResponse,
    "List a dataset's bindings.",
    page_items="bindings",
)
