"""What a verify run produces (the report and its records) and the helpers its parts share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from imm_faces.runtime.errors import ConfigError, ImmError
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.verify.checks import CHECKS, Failure

SCHEMA_VERSION = 1
"""Version of the ``--json`` report; raised when a field changes meaning or goes away (additions keep it)."""

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

View = Literal["list", "bulk", "get"]
VIEW_API: dict[str, str] = {"list": "QueryFigureClusters", "bulk": "BatchGetFigureCluster", "get": "GetFigureCluster"}
T = TypeVar("T")


class AccessError(ConfigError):
    """IMM refused the credentials, or the identity lacks a permission verify needs."""


def raise_if_access(exc: ImmError, project: str) -> None:
    if exc.code.startswith(_ACCESS_CODES):
        need = f"; the identity needs imm:{exc.action} on project {project}" if exc.action else ""
        raise AccessError(f"IMM refused the request: {exc}{need}") from None


@dataclass
class CheckRecord:
    """One check id's outcome over every subject it was applied to."""

    id: str
    checked: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def status(self) -> Literal["failed", "passed", "skipped"]:
        if self.failures:
            return "failed"
        return "skipped" if self.skipped is not None and not self.checked else "passed"


@dataclass
class ClusterRecord:
    object_id: str
    name: str | None = None
    face_count: int | None = None
    image_count: int | None = None
    views: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Coverage:
    """What was checked, and how much."""

    listed: int = 0
    bulk_checked: int = 0
    sample: int = 0
    get_checked: int = 0
    suspects: int = 0
    files_checked_clusters: int = 0
    files_examined: int = 0
    grouped_clusters: int | None = None
    requests: dict[str, int] = field(default_factory=dict)


@dataclass
class VerifyReport:
    endpoint: str
    outputs: StackOutputs
    checks: dict[str, CheckRecord] = field(default_factory=dict)
    clusters: dict[str, ClusterRecord] = field(default_factory=dict)
    coverage: Coverage = field(default_factory=Coverage)
    total_clusters: int = 0
    seconds: float = 0.0

    def check(self, check_id: str) -> CheckRecord:
        record = self.checks.get(check_id)
        if record is None:
            if check_id not in CHECKS:
                raise KeyError(f"unknown check id {check_id!r}")
            record = self.checks[check_id] = CheckRecord(check_id)
            order = list(CHECKS)  # the report lists checks in CHECKS order, whatever order they ran in
            self.checks = dict(sorted(self.checks.items(), key=lambda kv: order.index(kv[0])))
        return record

    def passed_one(self, *check_ids: str) -> None:
        for check_id in check_ids:
            (self.checks.get(check_id) or self.check(check_id)).checked += 1

    def fail(self, failure: Failure) -> None:
        record = self.check(failure.check)
        record.checked += 1
        record.failures.append(failure)

    def note(self, check_id: str, text: str) -> None:
        self.check(check_id).notes.append(text)

    def skip(self, check_ids: Iterable[str], reason: str) -> None:
        for check_id in check_ids:
            record = self.check(check_id)
            if record.skipped is None:
                record.skipped = reason

    @property
    def failures(self) -> list[Failure]:
        return [f for record in self.checks.values() for f in record.failures]

    @property
    def notes(self) -> list[tuple[str, str]]:
        return [(record.id, n) for record in self.checks.values() for n in record.notes]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "passed": self.passed,
            "endpoint": self.endpoint,
            "project_name": self.outputs.project_name,
            "dataset_name": self.outputs.dataset_name,
            "seconds": round(self.seconds, 3),
            "total_clusters": self.total_clusters,
            "checked_clusters": len(self.clusters),
            "coverage": {
                "listed": self.coverage.listed,
                "bulk_checked": self.coverage.bulk_checked,
                "sample": self.coverage.sample,
                "get_checked": self.coverage.get_checked,
                "suspects": self.coverage.suspects,
                "files_checked_clusters": self.coverage.files_checked_clusters,
                "files_examined": self.coverage.files_examined,
                "grouped_clusters": self.coverage.grouped_clusters,
                "requests": dict(sorted(self.coverage.requests.items())),
            },
            "checks": [
                {
                    "id": r.id,
                    "rule": CHECKS[r.id],
                    "status": r.status,
                    "checked": r.checked,
                    "failed": len(r.failures),
                    "notes": r.notes,
                    **({"skipped": r.skipped} if r.status == "skipped" else {}),
                    "failures": [{"subject": f.subject, "detail": f.detail} for f in r.failures],
                }
                for r in self.checks.values()
            ],
            "clusters": [
                {
                    "object_id": c.object_id,
                    "name": c.name,
                    "face_count": c.face_count,
                    "image_count": c.image_count,
                    "views": c.views,
                    "passed": c.passed,
                    "failures": [{"check": f.check, "detail": f.detail} for f in c.failures],
                }
                for c in self.clusters.values()
            ],
            "failures": [{"check": f.check, "subject": f.subject, "detail": f.detail} for f in self.failures],
            "notes": [{"check": c, "note": n} for c, n in self.notes],
        }


Progress = Callable[[str, int, int | None], None]
"""``progress(phase, done, total)``; total is None while unknown (listing)."""


async def _awaited(item: Awaitable[T]) -> T:
    return await item


async def gather_all(items: Iterable[Awaitable[T]]) -> list[T]:
    """Await coroutines or tasks concurrently; the first exception cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(item)) for item in items]
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [t.result() for t in tasks]
