"""IMM's ``FigureCluster``: one person, as grouped by a face clustering task."""

from __future__ import annotations

from typing import Any

from imm_faces.runtime.models.base import Number, WireModel, WireView
from imm_faces.runtime.models.file import File

FIGURE_CLUSTER_OBJECT_TYPE = "figure-cluster"


class FigureCluster(WireModel):
    """A figure cluster as GetFigureCluster / BatchGetFigureCluster / QueryFigureClusters return it.

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
    cover: File | None = None
    base_images: list[File] | None = None


class CoverView(WireView):
    """Of a cluster's Cover, its URI."""

    uri: str | None = None


class FigureClusterSummary(WireView):
    """What ``imm-faces verify`` checks of every cluster in the list views (QueryFigureClusters,
    BatchGetFigureCluster): :class:`FigureCluster`'s fields of the same names and types (a test holds them
    equal), of the Cover only its URI. Everything else is skipped while parsing: a page of 100 clusters parses
    about four times faster. The seed API's answer (GetFigureCluster) is still read whole."""

    project_name: str | None = None
    dataset_name: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    name: str | None = None
    face_count: int | None = None
    image_count: int | None = None
    video_count: int | None = None
    average_age: Number | None = None
    min_age: Number | None = None
    max_age: Number | None = None
    meta_lock_version: int | None = None
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
