"""Figure clusters: QueryFigureClusters, GetFigureCluster, BatchGetFigureCluster, UpdateFigureCluster,
SearchImageFigureCluster."""

from typing import Annotated, Any, Literal

from pydantic import Field

from imm_faces.runtime.models.base import Number, WireModel
from imm_faces.runtime.models.figure_cluster import FigureCluster, FigureClusterForReq, FigureClusterSummary
from imm_faces.runtime.models.file import Boundary
from imm_faces.runtime.models.inputs import TimeRange
from imm_faces.runtime.operations import _params as p
from imm_faces.runtime.operations.base import JSON_STRING, Operation, Request, Response
from imm_faces.runtime.rules import BATCH_GET_MAX_IDS


class QueryFigureClustersRequest(Request):
    project_name: str
    dataset_name: str
    max_results: Annotated[int | None, p.max_results("QueryFigureClusters")] = None
    next_token: str | None = None
    order: Literal["asc", "desc"] | None = None
    sort: str | None = None
    create_time_range: Annotated[TimeRange | None, JSON_STRING] = None
    update_time_range: Annotated[TimeRange | None, JSON_STRING] = None
    custom_labels: str | None = None  # a query expression, sent as plain text
    with_total_count: bool | None = None


class QueryFigureClustersResponse(Response):
    figure_clusters: list[FigureCluster] | None = None
    next_token: str | None = None
    total_count: int | None = None


class GetFigureClusterRequest(Request):
    project_name: str
    dataset_name: str
    object_id: str


class FigureClusterResponse(Response):
    figure_cluster: FigureCluster | None = None


class BatchGetFigureClusterRequest(Request):
    project_name: str
    dataset_name: str
    object_ids: Annotated[list[str], JSON_STRING, Field(min_length=1, max_length=BATCH_GET_MAX_IDS)]


class BatchGetFigureClusterResponse(Response):
    figure_clusters: list[FigureCluster] | None = None


class FigureClusterSummaries(Response):
    """QueryFigureClusters' or BatchGetFigureCluster's answer read as summaries (:class:`FigureClusterSummary`)."""

    figure_clusters: list[FigureClusterSummary] | None = None
    next_token: str | None = None
    total_count: int | None = None


class UpdateFigureClusterRequest(Request):
    project_name: str
    dataset_name: str
    figure_cluster: Annotated[FigureClusterForReq, JSON_STRING]


class SearchImageFigureClusterRequest(Request):
    project_name: str
    dataset_name: str
    source_uri: p.OssObject
    credential_config: Annotated[dict[str, Any] | None, JSON_STRING] = None


class FigureClusterMatch(WireModel):
    """A face of the searched image and the figure cluster it belongs to (similarity 0-1)."""

    boundary: Boundary | None = None
    cluster_id: str | None = None
    similarity: Number | None = None


class SearchImageFigureClusterResponse(Response):
    clusters: list[FigureClusterMatch] | None = None


QueryFigureClusters = Operation(
    "QueryFigureClusters",
    QueryFigureClustersRequest,
    QueryFigureClustersResponse,
    "List a dataset's figure clusters, with paging, ordering and time ranges.",
    page_items="figure_clusters",
)
GetFigureCluster = Operation(
    "GetFigureCluster", GetFigureClusterRequest, FigureClusterResponse, "Get one figure cluster."
)
BatchGetFigureCluster = Operation(
    "BatchGetFigureCluster",
    BatchGetFigureClusterRequest,
    BatchGetFigureClusterResponse,
    f"Get up to {BATCH_GET_MAX_IDS} figure clusters.",
)
UpdateFigureCluster = Operation(
    "UpdateFigureCluster",
    UpdateFigureClusterRequest,
    Response,
    "Change a figure cluster's Name, CustomId, CustomLabels or Cover (MetaLockVersion is an optimistic lock).",
)

SearchImageFigureCluster = Operation(
    "SearchImageFigureCluster",
    SearchImageFigureClusterRequest,
    SearchImageFigureClusterResponse,
    "Which figure clusters the faces in an image belong to (boundary and similarity per face).",
)

SORT_FIELDS = ("", "ObjectId", "CreateTime", "UpdateTime", "FaceCount", "ImageCount")
"""QueryFigureClusters ``Sort`` values this project supports (IMM does not publish the list)."""

QueryFigureClusterSummaries = QueryFigureClusters.reading(FigureClusterSummaries)
"""QueryFigureClusters, each cluster read as a :class:`FigureClusterSummary`."""
BatchGetFigureClusterSummaries = BatchGetFigureCluster.reading(FigureClusterSummaries)
"""BatchGetFigureCluster, each cluster read as a :class:`FigureClusterSummary`."""
