"""File metadata: IndexFileMeta, BatchIndexFileMeta, GetFileMeta, DeleteFileMeta, BatchDeleteFileMeta."""

from typing import Annotated

from pydantic import Field

from imm_faces.runtime.models.file import File
from imm_faces.runtime.models.inputs import InputFile, Notification
from imm_faces.runtime.operations import _params as p
from imm_faces.runtime.operations.base import JSON_STRING, Operation, Request, Response
from imm_faces.runtime.rules import BATCH_DELETE_MAX_URIS, BATCH_INDEX_MAX_FILES


class IndexFileMetaRequest(Request):
    project_name: str
    dataset_name: str
    file: Annotated[InputFile, JSON_STRING]
    notification: Annotated[Notification | None, JSON_STRING] = None
    user_data: p.UserData | None = None


class BatchIndexFileMetaRequest(Request):
    project_name: str
    dataset_name: str
    files: Annotated[list[InputFile], JSON_STRING, Field(min_length=1, max_length=BATCH_INDEX_MAX_FILES)]
    notification: Annotated[Notification | None, JSON_STRING] = None
    user_data: p.UserData | None = None


class GetFileMetaRequest(Request):
    project_name: str
    dataset_name: str
    uri: str
    with_fields: Annotated[list[str] | None, JSON_STRING] = None


class DeleteFileMetaRequest(Request):
    project_name: str
    dataset_name: str
    uri: str


class BatchDeleteFileMetaRequest(Request):
    project_name: str
    dataset_name: str
    uris: Annotated[list[str], JSON_STRING, Field(alias="URIs", min_length=1, max_length=BATCH_DELETE_MAX_URIS)]


class IndexFileMetaResponse(Response):
    event_id: str | None = None


class GetFileMetaResponse(Response):
    files: list[File] | None = None


IndexFileMeta = Operation(
    "IndexFileMeta", IndexFileMetaRequest, IndexFileMetaResponse, "Index one file (asynchronous)."
)
BatchIndexFileMeta = Operation(
    "BatchIndexFileMeta",
    BatchIndexFileMetaRequest,
    IndexFileMetaResponse,
    f"Index up to {BATCH_INDEX_MAX_FILES} files (asynchronous).",
)
GetFileMeta = Operation("GetFileMeta", GetFileMetaRequest, GetFileMetaResponse, "Get an indexed file's metadata.")
DeleteFileMeta = Operation(
    "DeleteFileMeta",
    DeleteFileMetaRequest,
    Response,
    "Remove a file's metadata from a dataset (its faces leave their figure clusters).",
)
BatchDeleteFileMeta = Operation(
    "BatchDeleteFileMeta",
    BatchDeleteFileMetaRequest,
    Response,
    f"Remove up to {BATCH_DELETE_MAX_URIS} files' metadata from a dataset.",
)
