"""IMM operations on figure clusters: Query, Get, BatchGet, Update, SearchImageFigureCluster, and the
clusters' API views."""

from __future__ import annotations

import json
from typing import Any

from imm_faces.emulator.errors import invalid, not_found
from imm_faces.emulator.figures import cluster_document
from imm_faces.emulator.operations.base import (
    OperationsBase,
    RenderedResponse,
    in_windows,
    labels_match,
)
from imm_faces.emulator.operations.paging import offset_page, page_size
from imm_faces.emulator.store import ClusterKey, Clusters, FileKey, Tx
from imm_faces.runtime.models.figure_cluster import FigureCluster
from imm_faces.runtime.operations import figure_clusters as fc
from imm_faces.runtime.operations.base import Response
from imm_faces.runtime.timestamps import now_rfc3339_nano, parse_rfc3339

LIST_VIEW_OMITS = "BaseImages"
"""What the list views of a figure cluster (QueryFigureClusters, BatchGetFigureCluster) leave out of it; a
GetFigureCluster shows it."""


def cluster_view(doc: dict[str, Any], *, base_images: bool) -> FigureCluster:
    """A figure cluster as the API shows it: its stored document without the bookkeeping fields (names starting
    with ``_``, e.g. a pinned cover's ``_CoverFigureId``) and, in a list view, without :data:`LIST_VIEW_OMITS`."""
    out = {k: v for k, v in doc.items() if not k.startswith("_") and (k != LIST_VIEW_OMITS or base_images)}
    return FigureCluster.model_validate(out)


def _cluster_views(tx: Tx, project: str, dataset: str, ids: list[str], base_images: bool) -> list[str]:
    """The views of these clusters as JSON text, in the ids' order, leaving out the ids with no cluster.

    No document is decoded on the usual path. A cluster's stored document is written through the runtime
    model (``figures.cluster_document``: validated by ``FigureCluster``, dumped without nulls, by wire name),
    so once SQLite has dropped :data:`LIST_VIEW_OMITS` from it, a document that holds no bookkeeping field
    and no null *is* the JSON :func:`cluster_view` renders (same members and values; only their order may
    differ). A document with either (a pinned cover; a null inside free-form CustomLabels, which the model
    keeps; one written before documents were normalised) goes through :func:`cluster_view`, as every view
    did before. A string that merely contains ``"_`` or ``null`` takes that path too: slower, same answer."""
    texts = tx.get_many_text(Clusters(project, dataset), ids, without=None if base_images else LIST_VIEW_OMITS)
    views: list[str] = []
    for text in texts:
        if text is not None and ('"_' in text or "null" in text):
            doc = json.loads(text)
            views.append(cluster_view(doc, base_images=base_images).model_dump_json(by_alias=True, exclude_none=True))
        elif text is not None:
            views.append(text)
    return views


def json_array(items: list[str]) -> str:
    return f"[{','.join(items)}]"


class FigureClusterOperations(OperationsBase):
    def op_query_figure_clusters(self, req: fc.QueryFigureClustersRequest) -> RenderedResponse:
        size = page_size("QueryFigureClusters", req.max_results)
        sort = req.sort or "ObjectId"
        if sort not in fc.SORT_FIELDS:
            raise invalid(f"The parameter Sort is invalid: must be one of {', '.join(fc.SORT_FIELDS[1:])}")
        if sort == "ObjectId" and not (req.create_time_range or req.update_time_range or req.custom_labels):
            return self._query_clusters_by_id(req, size)
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            rows = [doc for _, doc in tx.scan(Clusters(req.project_name, req.dataset_name))]
            rows = in_windows(rows, {"CreateTime": req.create_time_range, "UpdateTime": req.update_time_range})
            if req.custom_labels:
                rows = [r for r in rows if labels_match(r.get("CustomLabels") or {}, req.custom_labels)]

            def order_key(r: dict[str, Any]) -> tuple[Any, str]:
                value = r.get(sort)
                if sort.endswith("Time"):
                    value = parse_rfc3339(value) if value else None
                return (value if value is not None else "", r["ObjectId"])

            rows.sort(key=order_key, reverse=req.order == "desc")
            page, more = offset_page(rows, req.next_token, size)
            views = _cluster_views(tx, req.project_name, req.dataset_name, [r["ObjectId"] for r in page], False)
        shell = fc.QueryFigureClustersResponse(next_token=more, total_count=len(rows) if req.with_total_count else None)
        return RenderedResponse(shell, "figure_clusters", json_array(views))

    def _query_clusters_by_id(self, req: fc.QueryFigureClustersRequest, size: int) -> RenderedResponse:
        """The default order (ObjectId) without filters: page over the keys and read only the page's documents,
        so a page costs O(page), not O(clusters). Same order and NextToken as the general path."""
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            keys = tx.keys(Clusters(req.project_name, req.dataset_name))
            if req.order == "desc":
                keys.reverse()
            page_keys, more = offset_page(keys, req.next_token, size)
            views = _cluster_views(tx, req.project_name, req.dataset_name, page_keys, False)
        shell = fc.QueryFigureClustersResponse(next_token=more, total_count=len(keys) if req.with_total_count else None)
        return RenderedResponse(shell, "figure_clusters", json_array(views))

    def op_get_figure_cluster(self, req: fc.GetFigureClusterRequest) -> RenderedResponse:
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            views = _cluster_views(tx, req.project_name, req.dataset_name, [req.object_id], True)
        if not views:
            raise not_found("FigureCluster")
        return RenderedResponse(fc.FigureClusterResponse(), "figure_cluster", views[0])

    def op_batch_get_figure_cluster(self, req: fc.BatchGetFigureClusterRequest) -> RenderedResponse:
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            views = _cluster_views(tx, req.project_name, req.dataset_name, req.object_ids, False)
        return RenderedResponse(fc.BatchGetFigureClusterResponse(), "figure_clusters", json_array(views))

    def op_update_figure_cluster(self, req: fc.UpdateFigureClusterRequest) -> Response:
        change = req.figure_cluster
        with self.store.tx() as tx:
            doc = self._child(tx, ClusterKey(req.project_name, req.dataset_name, change.object_id), "FigureCluster")
            current = int(doc.get("MetaLockVersion", 0))
            if change.meta_lock_version is not None and change.meta_lock_version != current:
                # The service's code for a stale lock is not published; InvalidArgument is its generic 400.
                raise invalid(
                    f"MetaLockVersion mismatch: the cluster is at version {current}, "
                    f"the request expected {change.meta_lock_version}"
                )
            for attr, key in (("name", "Name"), ("custom_id", "CustomId"), ("custom_labels", "CustomLabels")):
                value = getattr(change, attr)
                if value is not None:
                    doc[key] = value
            if change.cover is not None and change.cover.figures:
                figure_id = change.cover.figures[0].figure_id
                face = next(
                    (
                        r
                        for r in tx.faces(req.project_name, req.dataset_name, cluster_id=change.object_id)
                        if r.figure_id == figure_id
                    ),
                    None,
                )
                if face is None:
                    raise invalid(
                        f"The parameter FigureCluster.Cover.Figures.0.FigureId is invalid: "
                        f"{figure_id!r} is not a face of {change.object_id}"
                    )
                cover = tx.get(FileKey(req.project_name, req.dataset_name, face.uri))
                if cover is not None:
                    doc["Cover"] = cover
                    doc["_CoverFigureId"] = figure_id  # pins the cover against re-clustering (never rendered)
            doc["MetaLockVersion"] = current + 1
            doc["UpdateTime"] = now_rfc3339_nano()
            tx.put(ClusterKey(req.project_name, req.dataset_name, change.object_id), cluster_document(doc))
        return Response()

    def op_search_image_figure_cluster(
        self, req: fc.SearchImageFigureClusterRequest
    ) -> fc.SearchImageFigureClusterResponse:
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
        return fc.SearchImageFigureClusterResponse(
            clusters=self.jobs.search_image(req.project_name, req.dataset_name, req.source_uri)
        )
