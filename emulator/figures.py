"""The figure-cluster lifecycle over the store: faces recorded at indexing, grouped by a clustering task,
forgotten when their file goes, and clusters kept true to the faces the files hold.

Every change to faces goes through here, so one invariant holds after each (see :func:`check_invariants`):
a cluster's FaceCount and ImageCount are what the files' Figures say, every FigureClusterId on a file names
an existing cluster, the cover is one of the cluster's faces, and the faces table agrees with the Figures.

Documented by IMM, followed here:

- a face group starts only from enough "good" faces of one person (``runtime.rules.is_good_face``; IMM's
  image FAQ), and later faces, good or not, may join it;
- "When all images that contain the faces in a cluster are deleted, the cluster is also deleted"
  (CreateFigureClusteringTask): :func:`forget_file_faces` removes a cluster with its last face.

Inferred (IMM does not say): re-indexing a file keeps a face's FigureId and cluster when the new analysis
finds the same face (same embedding within :data:`SAME_FACE_DISTANCE`, or an overlapping box and an
embedding within the clustering threshold), so user-set fields of its cluster (Name, CustomId, CustomLabels,
MetaLockVersion, a chosen cover) are never lost; a face of the file that is no longer found leaves its
cluster, and a cluster left without faces is removed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from imm_faces.emulator.clustering import DEFAULT_THRESHOLD, ClusterStats, assign
from imm_faces.emulator.store import ClusterKey, Clusters, FileKey, Files, Tx
from imm_faces.runtime.models.figure_cluster import FIGURE_CLUSTER_OBJECT_TYPE, FigureCluster
from imm_faces.runtime.rules import is_good_face
from imm_faces.runtime.timestamps import now_rfc3339_nano

OWNER_ID = "1000000000000000"
BASE_IMAGES = 3
SAME_FACE_DISTANCE = 0.2
"""Two analyses of one file whose embeddings are this close found the same face (a re-run of dlib on the
same pixels gives distance 0; re-encoding the image moves it by a few hundredths)."""
SAME_BOX_IOU = 0.5
USER_FIELDS = ("Name", "CustomId", "CustomLabels", "_CoverFigureId")


def new_cluster_id() -> str:
    return f"Cluster-{uuid.uuid4()}"


# ---------------------------------------------------------------------------------------------- a face's facts


def figure_is_good(figure: dict[str, Any]) -> bool:
    """Whether a file's Figures entry may count towards starting a face group."""
    box = figure.get("Boundary") or {}
    pose = figure.get("HeadPose")
    angles = None if not pose else (float(pose.get("Pitch", 0)), float(pose.get("Roll", 0)), float(pose.get("Yaw", 0)))
    return is_good_face(
        float(box.get("Width") or 0), float(box.get("Height") or 0), angles, float(figure.get("FaceQuality") or 0)
    )


def iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The overlap of two Boundary boxes: intersection over union, 0 when they do not meet (or have no area)."""
    ax, ay, aw, ah = (float(a.get(k) or 0) for k in ("Left", "Top", "Width", "Height"))
    bx, by, bw, bh = (float(b.get(k) or 0) for k in ("Left", "Top", "Width", "Height"))
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return w * h / union if union > 0 else 0.0


def match_faces(
    old: Sequence[tuple[npt.NDArray[np.float32], dict[str, Any]]],
    new: Sequence[tuple[npt.NDArray[np.float32], dict[str, Any]]],
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[int, int]:
    """Pair the faces of two analyses of one file: {new index: old index}, each used once, closest first.

    (embedding, Boundary) each. A pair is the same face when the embeddings are within
    :data:`SAME_FACE_DISTANCE`, or the boxes overlap (IoU >= :data:`SAME_BOX_IOU`) and the embeddings are
    within the clustering ``threshold``."""
    pairs: list[tuple[float, int, int]] = []
    for j, (new_vec, new_box) in enumerate(new):
        for i, (old_vec, old_box) in enumerate(old):
            distance = float(np.linalg.norm(new_vec.astype(np.float64) - old_vec.astype(np.float64)))
            if distance < SAME_FACE_DISTANCE or (distance < threshold and iou(old_box, new_box) >= SAME_BOX_IOU):
                pairs.append((distance, j, i))
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _, j, i in sorted(pairs):
        if j not in matched and i not in used:
            matched[j] = i
            used.add(i)
    return matched


# ---------------------------------------------------------------------------------------------- changes


def record_file_faces(
    tx: Tx, project: str, dataset: str, doc: dict[str, Any], embeddings: Sequence[npt.NDArray[np.float32]]
) -> None:
    """Store an (re-)indexed file: its document and its faces (``embeddings[k]`` is ``doc["Figures"][k]``'s).

    A face found again keeps its FigureId and cluster; faces no longer found leave their clusters, which
    are rebuilt (or removed when empty). New faces are pending until a clustering task groups them."""
    uri = doc["URI"]
    figures: list[dict[str, Any]] = doc.get("Figures") or []
    if len(figures) != len(embeddings):
        raise ValueError(f"{uri}: {len(figures)} figures but {len(embeddings)} embeddings")
    before = tx.get(FileKey(project, dataset, uri)) or {}
    old_boxes = {fig["FigureId"]: fig.get("Boundary") or {} for fig in before.get("Figures") or []}
    old = tx.file_faces(project, dataset, uri)
    matched = match_faces(
        [(vec, old_boxes.get(row.figure_id, {})) for row, vec in old],
        [(vec, fig.get("Boundary") or {}) for vec, fig in zip(embeddings, figures, strict=True)],
    )
    rows: list[tuple[str, str | None, float, npt.NDArray[np.float32]]] = []
    for j, (vec, fig) in enumerate(zip(embeddings, figures, strict=True)):
        cluster_id: str | None = None
        if j in matched:
            row = old[matched[j]][0]
            fig["FigureId"], cluster_id = row.figure_id, row.cluster_id
        fig["FigureClusterId"] = cluster_id
        rows.append((fig["FigureId"], cluster_id, float(fig.get("FaceQuality") or 0), vec))
    tx.put(FileKey(project, dataset, uri), doc)
    tx.put_file_faces(project, dataset, uri, rows)
    for cluster_id in {row.cluster_id for row, _ in old if row.cluster_id} | {r[1] for r in rows if r[1]}:
        rebuild_cluster(tx, project, dataset, cluster_id)


def forget_file_faces(tx: Tx, project: str, dataset: str, uri: str) -> set[str]:
    """Forget the faces of a file leaving the dataset (DeleteFileMeta, a binding losing the object).

    Call it in the transaction that deletes the file's document (before or after the delete: it reads only
    the other files). Each cluster that held one of its faces is rebuilt: counts, ages, cover and base images
    from the faces left; a cluster left with none is deleted. Returns the ids of the clusters touched."""
    touched = {row.cluster_id for row, _ in tx.file_faces(project, dataset, uri) if row.cluster_id}
    tx.put_file_faces(project, dataset, uri, [])
    for cluster_id in touched:
        rebuild_cluster(tx, project, dataset, cluster_id)
    return touched


def merge_clusters(tx: Tx, project: str, dataset: str, source: str, target: str) -> int:
    """Move every face of cluster ``source`` into ``target`` (which keeps its id and user-set fields) and
    delete ``source``. Returns the number of faces moved."""
    moved = tx.faces(project, dataset, cluster_id=source)
    tx.assign_faces(project, dataset, {face.figure_id: target for face in moved})
    _sync_files(tx, project, dataset, {face.uri for face in moved})
    rebuild_cluster(tx, project, dataset, source)
    rebuild_cluster(tx, project, dataset, target)
    return len(moved)


def cluster_pending(tx: Tx, project: str, dataset: str, threshold: float = DEFAULT_THRESHOLD) -> set[str]:
    """A clustering task's work: group the faces not yet in a cluster; return the clusters touched.

    Existing clusters keep their ids and members; pending faces join them or, when enough good faces of one
    person wait, start a new one (see :mod:`imm_faces.emulator.clustering`). Each file of a pending face is
    read once: for its faces' good flags, to write their clusters onto it, and to rebuild the clusters."""
    pending_ids, _, pending = tx.embeddings(project, dataset, assigned=False)
    if not pending_ids:
        return set()
    stats = cluster_stats(tx, project, dataset)
    uris = {face.figure_id: face.uri for face in tx.faces(project, dataset) if face.cluster_id is None}
    docs = {uri: tx.get(FileKey(project, dataset, uri)) or {} for uri in {uris[fid] for fid in pending_ids}}
    figures = {fig["FigureId"]: fig for doc in docs.values() for fig in doc.get("Figures") or []}
    good = np.array([figure_is_good(figures.get(fid, {})) for fid in pending_ids], dtype=bool)
    labels = assign(pending, stats, new_cluster_id, threshold, good=good)
    assignments = {fid: cid for fid, cid in zip(pending_ids, labels, strict=True) if cid is not None}
    if not assignments:
        return set()
    tx.assign_faces(project, dataset, assignments)
    for fid, cid in assignments.items():  # onto the file's Figures, as GetFileMeta shows them
        figures[fid]["FigureClusterId"] = cid
    for uri in {uris[fid] for fid in assignments}:
        tx.put(FileKey(project, dataset, uri), docs[uri])
    touched = set(assignments.values())
    for cluster_id in touched:
        rebuild_cluster(tx, project, dataset, cluster_id, docs)
    return touched


def cluster_stats(tx: Tx, project: str, dataset: str) -> ClusterStats:
    """The running figures of every cluster of a dataset (read a batch of members at a time)."""
    return ClusterStats.from_batches(tx.member_batches(project, dataset))


def _sync_files(tx: Tx, project: str, dataset: str, uris: Iterable[str]) -> None:
    """Write each face's cluster onto its file's Figures (as GetFileMeta shows it)."""
    for uri in uris:
        doc = tx.get(FileKey(project, dataset, uri))
        if doc is None:
            continue
        cluster_of = {row.figure_id: row.cluster_id for row, _ in tx.file_faces(project, dataset, uri)}
        for fig in doc.get("Figures", []):
            fig["FigureClusterId"] = cluster_of.get(fig["FigureId"])
        tx.put(FileKey(project, dataset, uri), doc)


def rebuild_cluster(
    tx: Tx, project: str, dataset: str, cluster_id: str, read: dict[str, dict[str, Any]] | None = None
) -> None:
    """Recompute a figure cluster's statistics, cover and base images from its faces; delete it when it has
    none. Id, CreateTime, MetaLockVersion and the user-set fields are kept. ``read``: file documents the caller
    holds as they are stored (the others are read)."""
    faces = tx.faces(project, dataset, cluster_id=cluster_id)
    existing = tx.get(ClusterKey(project, dataset, cluster_id)) or {}
    if not faces:
        tx.delete(ClusterKey(project, dataset, cluster_id))
        return
    known = read or {}
    files = {
        uri: known[uri] if uri in known else tx.get(FileKey(project, dataset, uri)) for uri in {f.uri for f in faces}
    }
    figures = {fig["FigureId"]: fig for doc in files.values() if doc for fig in doc.get("Figures", [])}
    attrs = [figures[f.figure_id] for f in faces if f.figure_id in figures]
    ages = [float(a["Age"]) for a in attrs if a.get("Age") is not None]
    genders = [a["Gender"] for a in attrs if a.get("Gender")]
    ranked = sorted(faces, key=lambda f: -f.quality)
    pinned = next((f for f in faces if f.figure_id == existing.get("_CoverFigureId")), None)
    cover_face = pinned or ranked[0]
    base: list[dict[str, Any]] = []
    for face in ranked:
        image = files.get(face.uri)
        if image and all(b["URI"] != image["URI"] for b in base):
            base.append(image)
        if len(base) == BASE_IMAGES:
            break
    now = now_rfc3339_nano()
    cluster: dict[str, Any] = {
        "OwnerId": OWNER_ID,
        "ProjectName": project,
        "DatasetName": dataset,
        "ObjectType": FIGURE_CLUSTER_OBJECT_TYPE,
        "ObjectId": cluster_id,
        "CreateTime": existing.get("CreateTime", now),
        "UpdateTime": now,
        "FaceCount": len(faces),
        "ImageCount": len({f.uri for f in faces if (files.get(f.uri) or {}).get("MediaType") == "image"}),
        "VideoCount": 0,
        "MetaLockVersion": existing.get("MetaLockVersion", 0),
        "Cover": files.get(cover_face.uri) or {},
        "BaseImages": base,
    }
    if ages:
        cluster.update(MinAge=min(ages), MaxAge=max(ages), AverageAge=round(sum(ages) / len(ages), 1))
    if genders:
        cluster["Gender"] = max(sorted(set(genders)), key=genders.count)
    for key in USER_FIELDS:
        if key in existing:
            cluster[key] = existing[key]
    if pinned is None:
        cluster.pop("_CoverFigureId", None)  # the chosen cover's face is gone: the best face covers again
    tx.put(ClusterKey(project, dataset, cluster_id), cluster_document(cluster))


def cluster_document(cluster: dict[str, Any]) -> dict[str, Any]:
    """A figure cluster as it is stored: its fields validated through the runtime model ``FigureCluster`` and
    dumped by wire name without nulls (what a Get renders), then its bookkeeping fields (names starting with
    ``_``) as they are. The service's reads pass such a document through without decoding it."""
    public = {k: v for k, v in cluster.items() if not k.startswith("_")}
    doc = FigureCluster.model_validate(public).model_dump(by_alias=True, exclude_none=True, mode="json")
    doc.update({k: v for k, v in cluster.items() if k.startswith("_")})
    return doc


# ---------------------------------------------------------------------------------------------- the invariant


def check_invariants(tx: Tx, project: str, dataset: str) -> list[str]:
    """Every way the dataset's clusters disagree with its files and faces (empty when consistent)."""
    problems: list[str] = []
    clusters = dict(tx.scan(Clusters(project, dataset)))
    faces = {face.figure_id: face for face in tx.faces(project, dataset)}
    on_files: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    seen: set[str] = set()
    media: dict[str, str] = {}
    for uri, doc in tx.scan(Files(project, dataset)):
        media[uri] = doc.get("MediaType", "")
        for fig in doc.get("Figures") or []:
            fid, cid = fig["FigureId"], fig.get("FigureClusterId")
            seen.add(fid)
            face = faces.get(fid)
            if face is None or face.uri != uri:
                problems.append(f"{uri}: figure {fid} has no face record")
            elif face.cluster_id != cid:
                problems.append(f"{uri}: figure {fid} says cluster {cid}, its face record {face.cluster_id}")
            if cid:
                if cid not in clusters:
                    problems.append(f"{uri}: figure {fid} names cluster {cid}, which does not exist")
                on_files[cid].append((uri, fig))
    for fid in set(faces) - seen:
        problems.append(f"face {fid} of {faces[fid].uri} is on no file's Figures")
    for cid, cluster in clusters.items():
        members = on_files.get(cid, [])
        images = {uri for uri, _ in members if media.get(uri) == "image"}
        if cluster.get("FaceCount") != len(members):
            problems.append(f"{cid}: FaceCount {cluster.get('FaceCount')}, the files hold {len(members)}")
        if cluster.get("ImageCount") != len(images):
            problems.append(f"{cid}: ImageCount {cluster.get('ImageCount')}, its faces are in {len(images)}")
        cover = cluster.get("Cover") or {}
        if cover.get("URI") not in {uri for uri, _ in members}:
            problems.append(f"{cid}: cover {cover.get('URI')} holds none of its faces")
        ages = [float(fig["Age"]) for _, fig in members if fig.get("Age") is not None]
        if ages and (cluster.get("MinAge"), cluster.get("MaxAge")) != (min(ages), max(ages)):
            problems.append(
                f"{cid}: ages {cluster.get('MinAge')}-{cluster.get('MaxAge')}, faces' {min(ages)}-{max(ages)}"
            )
    return problems
