"""Run the smoke check against a deployment: project, dataset, task, then every figure cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.errors import ConfigError, ImmError
from imm_faces.runtime.operations.datasets import GetDataset
from imm_faces.runtime.operations.figure_clusters import GetFigureCluster, QueryFigureClusters
from imm_faces.runtime.operations.projects import GetProject
from imm_faces.runtime.operations.tasks import FACE_CLUSTERING, TASK_SUCCEEDED, GetTask
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.verify.checks import ClusterResult, Failure, check_cluster, pick_sample

DEFAULT_CONCURRENCY = 8

# Errors that mean the caller cannot talk to IMM at all: a configuration problem, not a failed check.
_ACCESS_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "InvalidTimeStamp",
    "Forbidden",
    "NoPermission",
)


class AccessError(ConfigError):
    """IMM refused the credentials or the request could not be authenticated."""


def _raise_if_access(exc: ImmError) -> None:
    if exc.code.startswith(_ACCESS_CODES):
        raise AccessError(f"IMM rejected the credentials: {exc}") from None


@dataclass
class VerifyReport:
    endpoint: str
    outputs: StackOutputs
    checks: list[tuple[str, Failure | None]] = field(default_factory=list)
    clusters: list[ClusterResult] = field(default_factory=list)
    total_clusters: int = 0

    @property
    def failures(self) -> list[Failure]:
        found = [f for _, f in self.checks if f is not None]
        return found + [f for c in self.clusters for f in c.failures]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "endpoint": self.endpoint,
            "project_name": self.outputs.project_name,
            "dataset_name": self.outputs.dataset_name,
            "checks": [{"check": name, "passed": f is None, **({"detail": f.detail} if f else {})}
                       for name, f in self.checks],
            "total_clusters": self.total_clusters,
            "checked_clusters": len(self.clusters),
            "clusters": [
                {
                    "object_id": c.object_id,
                    "name": c.name,
                    "face_count": c.face_count,
                    "image_count": c.image_count,
                    "passed": c.passed,
                    "failures": [{"rule": f.rule, "detail": f.detail} for f in c.failures],
                }
                for c in self.clusters
            ],
            "failures": [str(f) for f in self.failures],
        }  # fmt: skip


Progress = Callable[[int, int], None]


async def verify_deployment(  # noqa: PLR0915 - one readable sequence of checks
    client: AsyncImmClient,
    outputs: StackOutputs,
    *,
    cluster_ids: list[str] | None = None,
    sample: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    min_clusters: int = 0,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check a deployment end to end; raise :class:`AccessError` when IMM refuses the credentials."""
    report = VerifyReport(client.endpoint, outputs)
    project, dataset = outputs.project_name, outputs.dataset_name

    async def check(name: str, subject: str, probe: Callable[[], Any]) -> bool:
        try:
            detail = await probe()
        except ImmError as exc:
            _raise_if_access(exc)
            detail = f"{exc.code}: {exc.message}"
        report.checks.append((name, Failure(subject, name, detail) if detail else None))
        return not detail

    async def project_exists() -> str | None:
        got = (await client.call(GetProject, project_name=project)).project
        return None if got and got.project_name == project else f"GetProject returned {got and got.project_name!r}"

    async def dataset_exists() -> str | None:
        got = (await client.call(GetDataset, project_name=project, dataset_name=dataset)).dataset
        if got and got.dataset_name == dataset and got.project_name in (None, project):
            return None
        return f"GetDataset returned {got and got.dataset_name!r}"

    async def task_succeeded() -> str | None:
        task = await client.call(
            GetTask, project_name=project, task_id=outputs.clustering_task_id, task_type=FACE_CLUSTERING
        )
        if task.status == TASK_SUCCEEDED:
            return None
        reason = f" ({task.code}: {task.message})" if task.code else ""
        return f"status {task.status}{reason}"

    await check(f"project {project} exists", "project", project_exists)
    if not await check(f"dataset {dataset} exists", "dataset", dataset_exists):
        return report
    if outputs.clustering_task_id:
        await check(f"clustering task {outputs.clustering_task_id} succeeded", "task", task_succeeded)

    if cluster_ids:
        ids = list(dict.fromkeys(cluster_ids))
        report.total_clusters = len(ids)
    else:
        try:
            ids = [
                c.object_id
                async for c in client.paginate(
                    QueryFigureClusters, project_name=project, dataset_name=dataset, max_results=100
                )
            ]
        except ImmError as exc:
            _raise_if_access(exc)
            report.checks.append(
                (
                    "figure clusters can be listed",
                    Failure("dataset", "QueryFigureClusters", f"{exc.code}: {exc.message}"),
                )
            )
            return report
        report.total_clusters = len(ids)
    if min_clusters:
        short = report.total_clusters < min_clusters
        detail = f"found {report.total_clusters}, need at least {min_clusters}"
        report.checks.append(
            (
                f"at least {min_clusters} figure clusters",
                Failure("dataset", "minimum cluster count", detail) if short else None,
            )
        )

    chosen = pick_sample(ids, sample)
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0

    async def fetch(object_id: str) -> ClusterResult:
        nonlocal done
        result = ClusterResult(object_id)
        async with gate:
            try:
                got = (
                    await client.call(GetFigureCluster, project_name=project, dataset_name=dataset, object_id=object_id)
                ).figure_cluster
            except ImmError as exc:
                _raise_if_access(exc)
                result.failures.append(Failure(object_id, "GetFigureCluster succeeds", f"{exc.code}: {exc.message}"))
                got = None
        if got is not None:
            result.name, result.face_count, result.image_count = got.name, got.face_count, got.image_count
            result.failures.extend(check_cluster(got, object_id, outputs))
        elif not result.failures:
            result.failures.append(Failure(object_id, "GetFigureCluster returns a FigureCluster", "none returned"))
        done += 1
        if progress:
            progress(done, len(chosen))
        return result

    report.clusters = list(await asyncio.gather(*(fetch(i) for i in chosen)))
    return report
