"""Run the smoke check against a deployment.

What runs (n clusters, s the sample), with requests in flight up to ``concurrency``:

1. GetProject, GetDataset and GetTask (when the outputs name a task; a record gone after IMM's retention is a
   note, not a failure), together.
2. Every cluster: the QueryFigureClusters pages (100 clusters each, every field but BaseImages; the first asks
   for the total count) and, for each page as it arrives, one BatchGetFigureCluster of its ids. Both views are
   checked and compared: about n/50 requests instead of n.
3. GetFigureCluster (the seed API) on every cluster of the sample, started as soon as the listing reaches it,
   and on every cluster whose bulk view looks wrong (a broken rule, a disagreement with the list, or absent).
4. Consistency with the files (SimpleQuery, :mod:`.consistency`), started alongside the listing.

Everything is judged once all answers are in; the report says what was checked and how much (:class:`Coverage`).
One total deadline (the client's) bounds it all: when it passes, the report so far fails ``verify.deadline``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.errors import DeadlineExceededError, ImmError
from imm_faces.runtime.models.figure_cluster import FigureCluster, FigureClusterSummary
from imm_faces.runtime.operations.base import Operation
from imm_faces.runtime.operations.datasets import GetDataset
from imm_faces.runtime.operations.figure_clusters import (
    BatchGetFigureCluster,
    BatchGetFigureClusterSummaries,
    GetFigureCluster,
    QueryFigureClusters,
    QueryFigureClusterSummaries,
)
from imm_faces.runtime.operations.projects import GetProject
from imm_faces.runtime.operations.query import SimpleQuery
from imm_faces.runtime.operations.tasks import FACE_CLUSTERING, TASK_SUCCEEDED, GetTask
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.rules import BATCH_GET_MAX_IDS, PAGE_LIMITS, TASK_RETENTION_DAYS
from imm_faces.runtime.verify import DEFAULT_CONCURRENCY, DEFAULT_SAMPLE
from imm_faces.runtime.verify.base import (
    SCHEMA_VERSION,
    VIEW_API,
    AccessError,
    ClusterRecord,
    Coverage,
    Progress,
    VerifyReport,
    View,
    gather_all,
    raise_if_access,
)
from imm_faces.runtime.verify.checks import (
    CHECKS,
    VIEW_RULES,
    ClusterView,
    Failure,
    check_cluster,
    disagreements,
    sample_positions,
)
from imm_faces.runtime.verify.consistency import FILES_WAIT, Consistency

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_SAMPLE",
    "OPERATIONS",
    "PROJECT_SCOPED",
    "SCHEMA_VERSION",
    "AccessError",
    "ClusterRecord",
    "Coverage",
    "VerifyReport",
    "verify_deployment",
]

LIST_PAGE = PAGE_LIMITS["QueryFigureClusters"][0]

OPERATIONS: tuple[Operation[Any, Any], ...] = (
    GetProject,
    GetTask,
    GetDataset,
    QueryFigureClusters,
    BatchGetFigureCluster,
    GetFigureCluster,
    SimpleQuery,
)
"""Every operation verify calls (read-only), and so every permission it needs: ``imm:<Name>``. :meth:`_Run.call`
refuses any other (by name: the list views are read as summaries), so this list cannot fall behind the code."""
_NAMES = frozenset(op.name for op in OPERATIONS)
PROJECT_SCOPED = frozenset({"GetProject", "GetTask"})
"""Operations on the project's RAM resource (``acs:imm:<region>:<account>:project/<name>``); the others act on
the dataset's (``.../project/<name>/dataset/<dataset>``). Inferred for GetProject and GetTask: IMM's RAM tables
confirm the dataset resource for GetDataset and BatchGetFigureCluster only."""


class _Run:
    def __init__(
        self, client: AsyncImmClient, outputs: StackOutputs, concurrency: int, progress: Progress | None
    ) -> None:
        self.client = client
        self.outputs = outputs
        self.project, self.dataset = outputs.project_name, outputs.dataset_name
        self.report = VerifyReport(client.endpoint, outputs)
        self.gate = asyncio.Semaphore(max(1, concurrency))
        self.progress = progress
        self.listed: dict[str, FigureClusterSummary] = {}
        self.bulk: dict[str, FigureClusterSummary] = {}
        self.got: dict[str, FigureCluster] = {}
        self.get_errors: dict[str, str] = {}
        self.bulk_failed: set[str] = set()
        self.pending: list[asyncio.Task[None]] = []
        self.chosen: list[str] = []

    async def call(self, op: Operation[Any, Any], **params: Any) -> Any:
        if op.name not in _NAMES:
            raise RuntimeError(f"verify calls {op.name}, which OPERATIONS (its permissions) does not list")
        requests = self.report.coverage.requests
        requests[op.name] = requests.get(op.name, 0) + 1
        async with self.gate:
            return await self.client.call(op, project_name=self.project, **params)

    def tick(self, phase: str, done: int, total: int | None) -> None:
        if self.progress:
            self.progress(phase, done, total)

    def spawn(self, work: Awaitable[None]) -> None:
        self.pending.append(asyncio.ensure_future(work))

    async def drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            await gather_all(batch)

    def cancel_pending(self) -> None:
        for task in self.pending:
            task.cancel()
        self.pending = []

    # ------------------------------------------------------------------ the deployment

    async def probe(self, check_id: str, subject: str, probe: Callable[[], Awaitable[str | None]]) -> bool:
        try:
            detail = await probe()
        except ImmError as exc:
            raise_if_access(exc, self.project)
            detail = f"{exc.code}: {exc.message}"
        if detail:
            self.report.fail(Failure(check_id, subject, detail))
            return False
        self.report.passed_one(check_id)
        return True

    async def project_exists(self) -> str | None:
        got = (await self.call(GetProject)).project
        return None if got and got.project_name == self.project else f"GetProject returned {got and got.project_name!r}"

    async def dataset_exists(self) -> str | None:
        got = (await self.call(GetDataset, dataset_name=self.dataset)).dataset
        if got and got.dataset_name == self.dataset and got.project_name in (None, self.project):
            return None
        return f"GetDataset returned {got and got.dataset_name!r}"

    async def task(self) -> bool:
        task_id = self.outputs.clustering_task_id
        if not task_id:
            self.report.skip(["task.succeeded"], "the outputs name no clustering task")
            return True
        try:
            task = await self.call(GetTask, task_id=task_id, task_type=FACE_CLUSTERING)
        except ImmError as exc:
            raise_if_access(exc, self.project)
            if exc.resource_not_found:
                self.report.passed_one("task.succeeded")
                self.report.note(
                    "task.succeeded",
                    f"task {task_id} has no record any more: IMM keeps task records "
                    f"{TASK_RETENTION_DAYS} days; its clusters are checked below",
                )
                return True
            self.report.fail(Failure("task.succeeded", f"task {task_id}", f"{exc.code}: {exc.message}"))
            return False
        if task.status == TASK_SUCCEEDED:
            self.report.passed_one("task.succeeded")
            return True
        reason = f" ({task.code}: {task.message})" if task.code else ""
        self.report.fail(Failure("task.succeeded", f"task {task_id}", f"status {task.status}{reason}"))
        return False

    # ------------------------------------------------------------------ fetching

    async def list_all(
        self, sample: int | None, on_chosen: Callable[[str], None], after_page: Callable[[], None]
    ) -> bool:
        """Every QueryFigureClusters page; a bulk cross-check per page and the sample's fetches start as pages
        arrive. False when the listing failed."""
        token: str | None = None
        positions: set[int] | None = None
        try:
            while True:
                page = await self.call(
                    QueryFigureClusterSummaries,
                    dataset_name=self.dataset,
                    max_results=LIST_PAGE,
                    next_token=token,
                    with_total_count=True if token is None else None,
                )
                if positions is None and page.total_count is not None:
                    positions = sample_positions(page.total_count, sample)
                ids: list[str] = []
                for cluster in page.figure_clusters or []:
                    object_id = cluster.object_id or ""
                    if object_id in self.listed:
                        self.report.fail(Failure("clusters.listable", object_id, "listed twice (paging is unstable)"))
                        continue
                    if positions is not None and len(self.listed) in positions:
                        on_chosen(object_id)
                    self.listed[object_id] = cluster
                    ids.append(object_id)
                if ids:
                    self.spawn(self.fetch_bulk(ids))
                after_page()
                self.tick("listing", len(self.listed), page.total_count)
                token = page.next_token
                if not token:
                    break
        except ImmError as exc:
            raise_if_access(exc, self.project)
            self.report.fail(Failure("clusters.listable", "dataset", f"{exc.code}: {exc.message}"))
            return False
        self.report.passed_one("clusters.listable")
        if positions is None:  # the service gave no total: choose the sample now
            listed = list(self.listed)
            for position in sorted(sample_positions(len(listed), sample)):
                on_chosen(listed[position])
        return True

    async def fetch_bulk(self, ids: list[str]) -> None:
        try:
            answer = await self.call(BatchGetFigureClusterSummaries, dataset_name=self.dataset, object_ids=ids)
        except ImmError as exc:
            raise_if_access(exc, self.project)
            self.bulk_failed.update(ids)  # no bulk view: each becomes a suspect, fetched with GetFigureCluster
            return
        for cluster in answer.figure_clusters or []:
            if cluster.object_id in ids:
                self.bulk[cluster.object_id] = cluster
            else:
                detail = f"BatchGetFigureCluster returned {cluster.object_id!r}, which was not asked for"
                self.report.fail(Failure("cluster.object_id", str(cluster.object_id), detail))
        self.tick("bulk", len(self.bulk), len(self.listed) or None)

    async def fetch_one(self, object_id: str) -> None:
        try:
            got = (await self.call(GetFigureCluster, dataset_name=self.dataset, object_id=object_id)).figure_cluster
        except ImmError as exc:
            raise_if_access(exc, self.project)
            self.get_errors[object_id] = f"GetFigureCluster: {exc.code}: {exc.message}"
            return
        if got is None:
            self.get_errors[object_id] = "GetFigureCluster returned no FigureCluster"
        else:
            self.got[object_id] = got
        self.tick("get", len(self.got), None)

    def suspects(self) -> list[str]:
        """Clusters whose bulk view is absent, breaks a rule, or disagrees with the list."""
        out = []
        for object_id, listed in self.listed.items():
            bulk = self.bulk.get(object_id)
            if bulk is None or check_cluster(bulk, object_id, self.outputs) or disagreements(listed, bulk):
                out.append(object_id)
        return out

    # ------------------------------------------------------------------ judging

    def record(self, object_id: str) -> ClusterRecord:
        clusters = self.report.clusters
        record = clusters.get(object_id)
        if record is None:
            record = clusters[object_id] = ClusterRecord(object_id)
        return record

    def judge_views(self, object_id: str) -> None:
        """Every rule on every view of one cluster (a rule broken in several views is one failure naming them),
        existence, and the views agreeing with one another."""
        record = self.record(object_id)
        found: list[tuple[View, ClusterView | None]] = [
            ("list", self.listed.get(object_id)),
            ("bulk", self.bulk.get(object_id)),
            ("get", self.got.get(object_id)),
        ]
        views = [(view, got) for view, got in found if got is not None]
        record.views = [v for v, _ in views]
        if object_id in self.bulk_failed:
            record.views.append("bulk failed")
        if object_id in self.get_errors:
            record.failures.append(Failure("cluster.exists", object_id, self.get_errors[object_id]))
        elif views:
            self.report.passed_one("cluster.exists")
        if views:
            latest = views[-1][1]
            record.name, record.face_count, record.image_count = latest.name, latest.face_count, latest.image_count
            hits: dict[tuple[str, str], list[str]] = {}
            for view, cluster in views:
                for f in check_cluster(cluster, object_id, self.outputs):
                    hits.setdefault((f.check, f.detail), []).append(VIEW_API[view])
            broken = {check for check, _ in hits}
            self.report.passed_one(*(c for c in VIEW_RULES if c not in broken))
            for (check, detail), apis in hits.items():
                record.failures.append(Failure(check, object_id, f"{detail} (in {', '.join(apis)})"))
            self.judge_agreement(object_id, views)
        for failure in record.failures:
            self.report.fail(failure)

    def judge_agreement(self, object_id: str, views: list[tuple[View, ClusterView]]) -> None:
        """Each view against the seed API's (GetFigureCluster) when fetched, else against the list's."""
        record = self.record(object_id)
        reference_view, reference = views[-1] if views[-1][0] == "get" else views[0]
        for view, other in views:
            if view == reference_view:
                continue
            differ = disagreements(other, reference)
            if not differ:
                self.report.passed_one("cluster.views_agree")
            elif other.update_time != reference.update_time:
                self.report.note(
                    "cluster.views_agree",
                    f"{object_id} changed while it was checked "
                    f"({VIEW_API[view]} and {VIEW_API[reference_view]} differ in UpdateTime)",
                )
            else:
                detail = f"{VIEW_API[view]} vs {VIEW_API[reference_view]}: {'; '.join(differ)}"
                record.failures.append(Failure("cluster.views_agree", object_id, detail))

    def not_empty(self, allow_empty: bool) -> None:
        if self.listed:
            self.report.passed_one("clusters.not_empty")
        elif allow_empty:
            self.report.passed_one("clusters.not_empty")
            self.report.note("clusters.not_empty", "the dataset has no figure cluster (allowed by --allow-empty)")
        else:
            detail = "no figure cluster found: nothing was clustered (use --allow-empty if that is expected)"
            self.report.fail(Failure("clusters.not_empty", "dataset", detail))

    def min_count(self, minimum: int) -> None:
        if not minimum:
            self.report.skip(["clusters.min_count"], "--min-clusters not given")
        elif self.report.total_clusters < minimum:
            detail = f"found {self.report.total_clusters}, need at least {minimum}"
            self.report.fail(Failure("clusters.min_count", "dataset", detail))
        else:
            self.report.passed_one("clusters.min_count")


async def verify_deployment(
    client: AsyncImmClient,
    outputs: StackOutputs,
    *,
    cluster_ids: list[str] | None = None,
    sample: int | None = DEFAULT_SAMPLE,
    concurrency: int = DEFAULT_CONCURRENCY,
    min_clusters: int = 0,
    allow_empty: bool = False,
    consistency: bool = True,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check a deployment end to end (see the module doc). ``sample`` bounds the GetFigureCluster and file
    consistency checks (None: every cluster). Raises :class:`AccessError` when IMM refuses the credentials;
    a passed deadline is a failed ``verify.deadline`` check in a partial report."""
    started = time.monotonic()
    run = _Run(client, outputs, concurrency, progress)
    report = run.report
    try:
        await _checks(run, cluster_ids, sample, min_clusters, allow_empty, consistency)
    except DeadlineExceededError as exc:
        run.cancel_pending()
        report.fail(Failure("verify.deadline", "verify", f"stopped before every check ran: {exc}"))
    except BaseException:
        run.cancel_pending()
        raise
    else:
        report.passed_one("verify.deadline")
    report.seconds = time.monotonic() - started
    return report


async def _checks(
    run: _Run,
    cluster_ids: list[str] | None,
    sample: int | None,
    min_clusters: int,
    allow_empty: bool,
    consistency: bool,
) -> None:
    """The checks in their order: the project, dataset and task; the clusters (the ones given, else all listed,
    a sample of them fetched one by one); the suspects; then the verdicts on every view and on the files."""
    cluster_checks = [c for c in CHECKS if c.startswith(("clusters.", "cluster.", "consistency."))]
    if not await _resources_exist(run):
        run.report.skip(cluster_checks, "the dataset is not there")
        return
    files = _consistency(run, consistency, listing=not cluster_ids)
    if cluster_ids:
        _fetch_given(run, files, cluster_ids)
    elif not await _list_clusters(run, files, sample, allow_empty):
        run.cancel_pending()
        run.report.skip([c for c in cluster_checks if c != "clusters.listable"], "the clusters could not be listed")
        return
    if files is not None:
        files.flush(run.spawn)
    await run.drain()
    suspects = await _fetch_suspects(run)
    _judge(run, files, suspects, min_clusters, complete_listing=not cluster_ids)


async def _resources_exist(run: _Run) -> bool:
    """The project, the dataset and the clustering task, at once; whether the dataset is there."""
    _, dataset_ok, _ = await gather_all(
        [
            run.probe("project.exists", "project", run.project_exists),
            run.probe("dataset.exists", "dataset", run.dataset_exists),
            run.task(),
        ]
    )
    return bool(dataset_ok)


def _consistency(run: _Run, consistency: bool, *, listing: bool) -> Consistency | None:
    """The checks against files, unless ``--no-consistency``; when every cluster is listed, the dataset's grouping
    of files by cluster is fetched from the start."""
    if not consistency:
        run.report.skip([c for c in CHECKS if c.startswith("consistency.")], "--no-consistency given")
        return None
    files = Consistency(run.call, run.report, run.tick)
    if listing:
        run.spawn(files.fetch_groups())
    return files


def _choose(run: _Run, files: Consistency | None, object_id: str) -> None:
    """A cluster of the sample: fetched with the seed API, and its files when they are checked."""
    run.chosen.append(object_id)
    run.spawn(run.fetch_one(object_id))
    if files is not None:
        files.want(object_id, run.spawn)


def _fetch_given(run: _Run, files: Consistency | None, cluster_ids: list[str]) -> None:
    """``--cluster-id``: those clusters only, in bulk and each with the seed API (nothing is listed)."""
    ids = list(dict.fromkeys(cluster_ids))
    run.report.skip(["clusters.listable", "clusters.not_empty", "consistency.no_orphans"], "--cluster-id given")
    for i in range(0, len(ids), BATCH_GET_MAX_IDS):
        run.spawn(run.fetch_bulk(ids[i : i + BATCH_GET_MAX_IDS]))
    for object_id in ids:  # every requested cluster is fetched with the seed API
        _choose(run, files, object_id)
    run.report.total_clusters = len(ids)


async def _list_clusters(run: _Run, files: Consistency | None, sample: int | None, allow_empty: bool) -> bool:
    """Every cluster, listed page by page, a sample chosen as the pages come; False when they cannot be listed."""

    def after_page() -> None:
        if files is not None:
            files.flush(run.spawn, waited=FILES_WAIT)  # the batch's query once its first cluster waited that long

    if not await run.list_all(sample, lambda object_id: _choose(run, files, object_id), after_page):
        return False
    run.report.total_clusters = len(run.listed)
    run.not_empty(allow_empty)
    return True


async def _fetch_suspects(run: _Run) -> list[str]:
    """The clusters outside the sample whose views look wrong, fetched with the seed API too."""
    in_sample = set(run.chosen)
    suspects = [i for i in run.suspects() if i not in in_sample]
    for object_id in suspects:
        run.spawn(run.fetch_one(object_id))
    await run.drain()
    return suspects


def _judge(
    run: _Run, files: Consistency | None, suspects: list[str], min_clusters: int, *, complete_listing: bool
) -> None:
    """The verdicts: every view of every cluster, the count, the coverage, and the clusters against their files."""
    for object_id in dict.fromkeys([*run.listed, *run.chosen]):
        run.judge_views(object_id)
    run.min_count(min_clusters)
    coverage = run.report.coverage
    coverage.listed, coverage.bulk_checked, coverage.get_checked = len(run.listed), len(run.bulk), len(run.got)
    coverage.sample, coverage.suspects = len(run.chosen), len(suspects)
    if files is not None:
        views: dict[str, ClusterView] = {**run.listed, **run.bulk, **run.got}
        files.judge(views, complete_listing=complete_listing)
