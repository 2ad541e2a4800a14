"""Figure clusters against the files that name them, through SimpleQuery (``Figures.FigureClusterId``).

* The whole dataset, in one request: a ``group`` aggregation of ``Figures.FigureClusterId`` counts, per
  cluster id, the files whose faces name it. Every id there must be a listed cluster (no file names a missing
  cluster), and each cluster's count must be its ImageCount + VideoCount. IMM returns at most
  :data:`~imm_faces.runtime.rules.SIMPLE_QUERY_MAX_GROUPS` groups (most files first); beyond that the report
  says so, and only the clusters it returned are compared.
* The sample: the files naming each sampled cluster (every page; one ``or`` query for up to
  :data:`CLUSTERS_PER_QUERY` sampled clusters, sent when full, when its first cluster has waited
  :data:`FILES_WAIT`, or when the listing ends), so FaceCount is the number of faces naming it, ImageCount the
  number of images holding them, and the Cover one of those images.

Fetching starts while the clusters are still being listed; :meth:`Consistency.judge` runs at the end.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.models.query import SimpleQuery as Query
from imm_faces.runtime.models.query import SimpleQueryAggregation
from imm_faces.runtime.operations.query import SimpleQueryFileFaces
from imm_faces.runtime.rules import PAGE_LIMITS, SIMPLE_QUERY_MAX_GROUPS
from imm_faces.runtime.verify.base import VerifyReport, raise_if_access
from imm_faces.runtime.verify.checks import ClusterView, Failure, FileView, check_against_files

CLUSTER_FIELD = "Figures.FigureClusterId"
FILE_FIELDS = ["URI", "MediaType", "Figures"]
CLUSTERS_PER_QUERY = 50
"""Sampled clusters whose files one SimpleQuery fetches (an ``or`` of ``eq`` leaves). IMM does not publish a
limit on SubQueries; 50 is inferred (half the largest page size IMM documents)."""
FILES_WAIT = 1.0
"""Seconds the first sampled cluster of a batch may wait, while the listing goes on, for others to share its query:
few requests (the default sample of 25 from 1,000 clusters: one query, not one per listed page), and every
cluster's files read within about a second of the cluster itself (a dataset that changes while verify reads it
shows fewer false disagreements). The listing's end sends what waits."""

Call = Callable[..., Awaitable[Any]]
Spawn = Callable[[Awaitable[None]], None]


class Consistency:
    def __init__(self, call: Call, report: VerifyReport, tick: Callable[[str, int, int | None], None]) -> None:
        self.call = call
        self.report = report
        self.tick = tick
        self.dataset = report.outputs.dataset_name
        self.groups: dict[str, int] | None = None
        self.batch: list[str] = []
        self.batch_since = 0.0  # time.monotonic() when the batch's first cluster was added
        self.found: list[tuple[list[str], list[FileView]]] = []
        self.error: str | None = None

    # ------------------------------------------------------------------ fetching

    async def fetch_groups(self) -> None:
        try:
            answer = await self.call(
                SimpleQueryFileFaces,
                dataset_name=self.dataset,
                query=Query(field=CLUSTER_FIELD, operation="exist"),
                aggregations=[SimpleQueryAggregation(field=CLUSTER_FIELD, operation="group")],
                max_results=SIMPLE_QUERY_MAX_GROUPS,
            )
        except ImmError as exc:
            self.failed(exc)
            return
        self.groups = {g.value: g.count or 0 for a in answer.aggregations or [] for g in a.groups or [] if g.value}

    def want(self, object_id: str, spawn: Spawn) -> None:
        """Fetch the files of this sampled cluster (batched: a query per :data:`CLUSTERS_PER_QUERY`)."""
        if not self.batch:
            self.batch_since = time.monotonic()
        self.batch.append(object_id)
        if len(self.batch) == CLUSTERS_PER_QUERY:
            self.flush(spawn)

    def flush(self, spawn: Spawn, *, waited: float = 0.0) -> None:
        """Send the batch's query: now, or (``waited``) only once its first cluster has waited that many seconds."""
        if self.batch and time.monotonic() - self.batch_since >= waited:
            spawn(self.fetch_files(self.batch))
            self.batch = []

    async def fetch_files(self, cluster_ids: list[str]) -> None:
        """Every file whose faces name one of ``cluster_ids`` (one ``or`` query, every page)."""
        leaves = [Query(field=CLUSTER_FIELD, operation="eq", value=i) for i in cluster_ids]
        query = leaves[0] if len(leaves) == 1 else Query(operation="or", sub_queries=leaves)
        files: list[FileView] = []
        token: str | None = None
        try:
            while True:
                page = await self.call(
                    SimpleQueryFileFaces,
                    dataset_name=self.dataset,
                    query=query,
                    with_fields=FILE_FIELDS,
                    max_results=PAGE_LIMITS["SimpleQuery"][0],
                    next_token=token,
                    without_total_hits=True,
                )
                files += page.files or []
                token = page.next_token
                if not token:
                    break
        except ImmError as exc:
            self.failed(exc)
            return
        self.found.append((cluster_ids, files))
        self.tick("files", sum(len(ids) for ids, _ in self.found), None)

    def failed(self, exc: ImmError) -> None:
        raise_if_access(exc, self.report.outputs.project_name)
        self.error = f"SimpleQuery failed: {exc.code}: {exc.message}"

    # ------------------------------------------------------------------ judging

    def judge(self, views: Mapping[str, ClusterView], *, complete_listing: bool) -> None:
        if self.error is not None:
            self.report.fail(Failure("consistency.no_orphans", "dataset", self.error))
            return
        if self.groups is not None:
            self.judge_groups(self.groups, views, complete_listing)
        for cluster_ids, files in self.found:
            for object_id in cluster_ids:
                if object_id in views:
                    self.judge_files(views[object_id], object_id, files)

    def judge_groups(self, groups: dict[str, int], views: Mapping[str, ClusterView], complete_listing: bool) -> None:
        self.report.coverage.grouped_clusters = len(groups)
        truncated = len(groups) >= SIMPLE_QUERY_MAX_GROUPS
        if truncated:
            self.report.note(
                "consistency.no_orphans",
                f"SimpleQuery returns at most {SIMPLE_QUERY_MAX_GROUPS} groups:"
                " the clusters named by the fewest files were not compared",
            )
        if complete_listing:
            for cluster_id, count in groups.items():
                if cluster_id in views:
                    self.report.passed_one("consistency.no_orphans")
                else:
                    detail = f"{count} file(s) name this figure cluster, which does not exist"
                    self.report.fail(Failure("consistency.no_orphans", cluster_id, detail))
        for cluster_id, cluster in views.items():
            if cluster_id not in groups and truncated:
                continue
            count = groups.get(cluster_id, 0)
            media = (cluster.image_count or 0) + (cluster.video_count or 0)
            if count == media:
                self.report.passed_one("consistency.image_count")
            else:
                detail = f"ImageCount + VideoCount is {media}, but {count} file(s) name the cluster"
                self.report.fail(Failure("consistency.image_count", cluster_id, detail))

    def judge_files(self, cluster: ClusterView, object_id: str, files: list[FileView]) -> None:
        mine = [f for f in files if any(fig.figure_cluster_id == object_id for fig in f.figures or [])]
        self.report.coverage.files_checked_clusters += 1
        self.report.coverage.files_examined += len(mine)
        failures = {f.check: f for f in check_against_files(cluster, mine, object_id)}
        record = self.report.clusters.get(object_id)
        for check in ("consistency.face_count", "consistency.image_count", "consistency.cover"):
            if check in failures:
                self.report.fail(failures[check])
                if record is not None:
                    record.failures.append(failures[check])
            else:
                self.report.passed_one(check)
