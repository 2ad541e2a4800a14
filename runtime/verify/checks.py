"""The rules ``imm-faces verify`` applies, each with a stable id; pure functions from IMM responses to failures.

Check ids are part of the report's contract (``--json``, JUnit, GitHub annotations): a CI rule may match
on them, so an id never changes meaning. :data:`CHECKS` lists every one with what it asserts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from imm_faces.runtime.models.figure_cluster import FIGURE_CLUSTER_OBJECT_TYPE, FigureCluster, FigureClusterSummary
from imm_faces.runtime.models.file import File, FileFaces
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.timestamps import is_rfc3339

# id -> what holds when the check passes
CHECKS: dict[str, str] = {
    # the deployment
    "project.exists": "GetProject finds the stack's project",
    "dataset.exists": "GetDataset finds the stack's dataset in that project",
    "task.succeeded": "the stack's clustering task succeeded (a record past IMM's retention is a note)",
    "clusters.listable": "QueryFigureClusters lists the dataset's figure clusters, every page",
    "clusters.not_empty": "the dataset has at least one figure cluster (unless --allow-empty)",
    "clusters.min_count": "the dataset has at least --min-clusters figure clusters",
    # every cluster, from the list and bulk views; the sample (and any suspect) from GetFigureCluster too
    "cluster.exists": "a requested cluster exists (BatchGetFigureCluster / GetFigureCluster return it)",
    "cluster.object_type": "ObjectType is figure-cluster",
    "cluster.object_id": "ObjectId is the one listed or requested",
    "cluster.project": "ProjectName is the stack's",
    "cluster.dataset": "DatasetName is the stack's",
    "cluster.face_count": "FaceCount >= 1",
    "cluster.image_count": "ImageCount >= 1",
    "cluster.cover": "a Cover with a URI",
    "cluster.timestamps": "CreateTime and UpdateTime are RFC3339 timestamps",
    "cluster.ages": "MinAge <= AverageAge <= MaxAge when present",
    "cluster.views_agree": "QueryFigureClusters, BatchGetFigureCluster and GetFigureCluster agree on the cluster",
    # consistency with the files (SimpleQuery)
    "consistency.image_count": "ImageCount equals the number of image files whose faces name the cluster",
    "consistency.face_count": "FaceCount equals the number of faces naming the cluster",
    "consistency.cover": "the Cover is a file holding one of the cluster's faces",
    "consistency.no_orphans": "no file names a figure cluster that does not exist",
    # the run itself
    "verify.deadline": "the whole check finished within --deadline",
}

VIEW_RULES = (
    "cluster.object_type",
    "cluster.object_id",
    "cluster.project",
    "cluster.dataset",
    "cluster.face_count",
    "cluster.image_count",
    "cluster.cover",
    "cluster.timestamps",
    "cluster.ages",
)
"""The rules :func:`check_cluster` applies to each view (list, bulk, get) of a cluster."""

# Fields on which the list, bulk and get views of one cluster must agree (BaseImages is only in Get).
AGREEING_FIELDS = (
    "object_id",
    "object_type",
    "project_name",
    "dataset_name",
    "face_count",
    "image_count",
    "name",
    "create_time",
    "update_time",
    "meta_lock_version",
    "min_age",
    "average_age",
    "max_age",
)


ClusterView = FigureCluster | FigureClusterSummary
"""A cluster as one API returned it: the list views are read as summaries, GetFigureCluster's answer whole."""
FileView = File | FileFaces
"""A file found by SimpleQuery: verify reads what it asks for (:class:`FileFaces`); a whole File holds it too."""


@dataclass(frozen=True)
class Failure:
    """One broken rule: ``check`` is a :data:`CHECKS` id, ``subject`` what was checked (``project``,
    ``task``, a cluster's ObjectId, a file's URI)."""

    check: str
    subject: str
    detail: str

    @property
    def rule(self) -> str:
        return CHECKS[self.check]

    def __str__(self) -> str:
        return f"{self.subject}: {self.check} ({self.rule}): {self.detail}"


def check_cluster(cluster: ClusterView, expected_id: str, outputs: StackOutputs) -> list[Failure]:
    """Every rule one view of a figure cluster of a healthy deployment satisfies."""
    failures: list[Failure] = []

    def fail(check: str, detail: str) -> None:
        failures.append(Failure(check, expected_id, detail))

    if cluster.object_type != FIGURE_CLUSTER_OBJECT_TYPE:
        fail("cluster.object_type", f"got {cluster.object_type!r}")
    if cluster.object_id != expected_id:
        fail("cluster.object_id", f"got {cluster.object_id!r}")
    if cluster.project_name != outputs.project_name:
        fail("cluster.project", f"expected {outputs.project_name!r}, got {cluster.project_name!r}")
    if cluster.dataset_name != outputs.dataset_name:
        fail("cluster.dataset", f"expected {outputs.dataset_name!r}, got {cluster.dataset_name!r}")
    if cluster.face_count is None or cluster.face_count < 1:
        fail("cluster.face_count", f"got {cluster.face_count!r}")
    if cluster.image_count is None or cluster.image_count < 1:
        fail("cluster.image_count", f"got {cluster.image_count!r}")
    if cluster.cover is None or not cluster.cover.uri:
        fail("cluster.cover", "no Cover" if cluster.cover is None else "Cover.URI is empty")
    for label, value in (("CreateTime", cluster.create_time), ("UpdateTime", cluster.update_time)):
        if not is_rfc3339(value or ""):
            fail("cluster.timestamps", f"{label}: got {value!r}")
    low, mean, high = cluster.min_age, cluster.average_age, cluster.max_age
    if low is not None and mean is not None and high is not None and not (low <= mean <= high):
        fail("cluster.ages", f"got {low} / {mean} / {high}")
    return failures


_agreeing = attrgetter(*AGREEING_FIELDS)


def disagreements(first: ClusterView, second: ClusterView) -> list[str]:
    """The fields (and cover URI) on which two views of one cluster differ, as ``Field: a != b``."""
    a, b = (c.cover.uri if c.cover else None for c in (first, second))
    if a == b and _agreeing(first) == _agreeing(second):  # the common case, compared at once
        return []
    out = [
        f"{name}: {getattr(first, name)!r} != {getattr(second, name)!r}"
        for name in AGREEING_FIELDS
        if getattr(first, name) != getattr(second, name)
    ]
    if a != b:
        out.append(f"Cover.URI: {a!r} != {b!r}")
    return out


def faces_naming(files: Iterable[FileView], cluster_id: str) -> tuple[int, set[str]]:
    """(faces whose FigureClusterId is ``cluster_id``, URIs of the image files holding them)."""
    faces, images = 0, set()
    for file in files:
        named = sum(1 for fig in file.figures or [] if fig.figure_cluster_id == cluster_id)
        faces += named
        if named and file.media_type in (None, "image") and file.uri:
            images.add(file.uri)
    return faces, images


def check_against_files(cluster: ClusterView, files: list[FileView], cluster_id: str) -> list[Failure]:
    """FaceCount, ImageCount and the cover against the files whose faces name the cluster (from SimpleQuery)."""
    failures: list[Failure] = []
    faces, images = faces_naming(files, cluster_id)
    if cluster.face_count != faces:
        detail = f"FaceCount {cluster.face_count!r}, but {faces} face(s) name the cluster"
        failures.append(Failure("consistency.face_count", cluster_id, detail))
    if cluster.image_count != len(images):
        detail = f"ImageCount {cluster.image_count!r}, but {len(images)} image(s) hold its faces"
        failures.append(Failure("consistency.image_count", cluster_id, detail))
    cover = cluster.cover.uri if cluster.cover else None
    if cover is not None and cover not in images:
        failures.append(Failure("consistency.cover", cluster_id, f"Cover {cover!r} holds none of its faces"))
    return failures


def sample_positions(total: int, size: int | None) -> set[int]:
    """Positions of ``size`` items spread evenly over ``total`` (all of them when size is None or larger)."""
    if size is None or size >= total:
        return set(range(total))
    if size <= 0:
        return set()
    step = total / size
    return {int(i * step) for i in range(size)}
