"""The rules ``imm-faces verify`` applies: pure functions from IMM responses to failures."""

from __future__ import annotations

from dataclasses import dataclass, field

from imm_faces.runtime.models.figure_cluster import FIGURE_CLUSTER_OBJECT_TYPE, FigureCluster
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.timestamps import parse_rfc3339


@dataclass(frozen=True)
class Failure:
    """One broken rule. ``subject`` is what was checked (``project``, ``task``, a cluster's ObjectId)."""

    subject: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.rule}: {self.detail}"


@dataclass
class ClusterResult:
    object_id: str
    name: str | None = None
    face_count: int | None = None
    image_count: int | None = None
    failures: list[Failure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def check_cluster(cluster: FigureCluster, requested_id: str, outputs: StackOutputs) -> list[Failure]:
    """Every rule a figure cluster of a healthy deployment satisfies."""
    failures: list[Failure] = []

    def fail(rule: str, detail: str) -> None:
        failures.append(Failure(requested_id, rule, detail))

    if cluster.object_type != FIGURE_CLUSTER_OBJECT_TYPE:
        fail("ObjectType is figure-cluster", f"got {cluster.object_type!r}")
    if cluster.object_id != requested_id:
        fail("ObjectId is the one requested", f"got {cluster.object_id!r}")
    if cluster.project_name != outputs.project_name:
        fail("ProjectName is the stack's", f"expected {outputs.project_name!r}, got {cluster.project_name!r}")
    if cluster.dataset_name != outputs.dataset_name:
        fail("DatasetName is the stack's", f"expected {outputs.dataset_name!r}, got {cluster.dataset_name!r}")
    if cluster.face_count is None or cluster.face_count < 1:
        fail("FaceCount >= 1", f"got {cluster.face_count!r}")
    if cluster.image_count is None or cluster.image_count < 1:
        fail("ImageCount >= 1", f"got {cluster.image_count!r}")
    if cluster.cover is None or not cluster.cover.uri:
        fail("Cover has a URI", "no Cover" if cluster.cover is None else "Cover.URI is empty")
    for label, value in (("CreateTime", cluster.create_time), ("UpdateTime", cluster.update_time)):
        try:
            parse_rfc3339(value or "")
        except ValueError:
            fail(f"{label} is an RFC3339 timestamp", f"got {value!r}")
    ages = (cluster.min_age, cluster.average_age, cluster.max_age)
    if all(a is not None for a in ages) and not (ages[0] <= ages[1] <= ages[2]):  # type: ignore[operator]
        fail("MinAge <= AverageAge <= MaxAge", f"got {ages[0]} / {ages[1]} / {ages[2]}")
    return failures


def pick_sample(ids: list[str], size: int | None) -> list[str]:
    """``size`` ids spread evenly over ``ids`` (all of them when size is None or larger)."""
    if size is None or size >= len(ids):
        return list(ids)
    if size <= 0:
        return []
    step = len(ids) / size
    return [ids[int(i * step)] for i in range(size)]
