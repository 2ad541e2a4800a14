"""IMM's ``FigureCluster``: one person, as grouped by a face clustering task."""

from typing import Any

from pydantic import ConfigDict

from imm_faces.runtime.models.base import Number, WireModel, WireView
from imm_faces.runtime.models.file import File

FIGURE_CLUSTER_OBJECT_TYPE = "figure-cluster"


class FigureClusterFields(WireModel):
    """A figure cluster's own fields, as every view of it has them (all but its pictures: Cover, BaseImages).

    Times are RFC3339Nano strings (nine fractional digits, which ``datetime`` cannot parse directly; see
    :func:`imm_faces.runtime.timestamps.parse_rfc3339`). Ages are in years.
    """

    owner_id: str | None = None
    project_name: str | None = None
    dataset_name: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    name: str | None = None
    custom_id: str | None = None
    custom_labels: dict[str, Any] | None = None
    gender: str | None = None
    face_count: int | None = None
    image_count: int | None = None
    video_count: int | None = None
    average_age: Number | None = None
    min_age: Number | None = None
    max_age: Number | None = None
    meta_lock_version: int | None = None


class FigureCluster(FigureClusterFields):
    """A figure cluster as GetFigureCluster / BatchGetFigureCluster / QueryFigureClusters return it."""

    cover: File | None = None
    base_images: list[File] | None = None


class CoverView(WireView):
    """Of a cluster's Cover, its URI."""

    uri: str | None = None


class FigureClusterSummary(FigureClusterFields):
    """What ``imm-faces verify`` reads of every cluster in the list views (QueryFigureClusters,
    BatchGetFigureCluster): the cluster's own fields and, of its Cover, the URI. Everything else is skipped
    while parsing (not kept, as :class:`WireView` does): a page of 100 clusters parses about four times faster.
    The seed API's answer (GetFigureCluster) is still read whole."""

    model_config = ConfigDict(extra="ignore")

    cover: CoverView | None = None


class CoverFigure(WireModel):
    figure_id: str


class CoverForReq(WireModel):
    figures: list[CoverFigure]


class FigureClusterForReq(WireModel):
    """UpdateFigureCluster's ``FigureCluster`` parameter: which cluster, and the fields that may change."""

    object_id: str
    name: str | None = None
    custom_id: str | None = None
    custom_labels: dict[str, Any] | None = None
    meta_lock_version: int | None = None
    cover: CoverForReq | None = None
