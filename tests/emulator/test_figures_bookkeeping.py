"""figures.py's bookkeeping with concrete values: what a rebuilt cluster holds (counts, ages, gender, cover,
base images, kept fields), what re-indexing keeps, what each change returns, and every problem the invariant
check names. Unit level: an in-memory store, files written as the indexer writes them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from imm_faces.emulator import figures
from imm_faces.emulator.analysis import FaceRecord, ImageAnalysis
from imm_faces.emulator.indexer import file_doc, put_file
from imm_faces.emulator.store import ClusterKey, Clusters, DatasetKey, FileKey, Tx
from tests.helpers import dataset_store

P, D = "p", "d"
DIM = 128


@pytest.fixture
def tx() -> Iterator[Tx]:
    store = dataset_store(":memory:", P, D)
    with store.tx() as t:
        yield t
    store.close()


def vec(person: int, shot: float = 0.0) -> npt.NDArray[np.float32]:
    """Person ``person`` (people 5 apart), shot ``shot`` moved along a dimension of its own (0.05 per shot)."""
    out = np.zeros(DIM, np.float32)
    out[person] = 5.0
    out[100] = 0.05 * shot
    return out


def face(
    person: int,
    shot: float = 0.0,
    *,
    quality: float = 0.9,
    age: float | None = 30,
    gender: str | None = None,
    box: tuple[int, int, int, int] = (0, 0, 100, 100),
    good: bool = True,
) -> FaceRecord:
    if not good:
        box = (box[0], box[1], 60, 60)
    return FaceRecord(
        embedding=vec(person, shot),
        boundary=box,
        quality=quality,
        age=age,
        gender=gender,
        gender_confidence=0.9 if gender else None,
        head_pose=(0, 0, 0),
    )


def index(tx: Tx, name: str, *faces: FaceRecord, media: str = "image") -> str:
    uri = f"oss://b/{name}"
    analysis = ImageAnalysis(media, f"{media}/x", 640, 480, 1, {}, list(faces))
    doc, found = file_doc(P, D, {"URI": uri}, analysis, size=len(name), etag='"E"', mtime_ns=0)
    if media != "image" and faces:  # the indexer lists faces on images only; the bookkeeping takes any file's
        doc["Figures"] = [
            {"FigureId": fid, "Boundary": {"Left": 0, "Top": 0, "Width": 100, "Height": 100}, "FaceQuality": f.quality}
            for fid, f in found
        ]
    put_file(tx, P, D, doc, found)
    return uri


def figure_ids(tx: Tx, uri: str) -> list[str]:
    return [fig["FigureId"] for fig in (tx.get(FileKey(P, D, uri)) or {}).get("Figures", [])]


def cluster_ids(tx: Tx, uri: str) -> list[str | None]:
    return [fig["FigureClusterId"] for fig in (tx.get(FileKey(P, D, uri)) or {}).get("Figures", [])]


def clusters(tx: Tx) -> dict[str, dict[str, Any]]:
    assert figures.check_invariants(tx, P, D) == []
    return dict(tx.scan(Clusters(P, D)))


def one_cluster(tx: Tx) -> tuple[str, dict[str, Any]]:
    ((cid, doc),) = clusters(tx).items()
    return cid, doc


def uris(images: list[dict[str, Any]]) -> list[str]:
    return [image["URI"] for image in images]


# ---------------------------------------------------------------------------------------------- rebuild


def test_a_new_cluster_document_holds_its_faces_figures(tx: Tx) -> None:
    a = index(tx, "a.png", face(0, 0, quality=0.85, age=20, gender="male"))
    b = index(tx, "b.png", face(0, 1, quality=0.95, age=21, gender="female"))
    c = index(tx, "c.png", face(0, 2, quality=0.9, age=23, gender="male"))
    touched = figures.cluster_pending(tx, P, D)
    cid, doc = one_cluster(tx)
    assert touched == {cid}
    assert cid.startswith("Cluster-") and len(cid) == len("Cluster-") + 36
    times = {k: doc.pop(k) for k in ("CreateTime", "UpdateTime")}
    assert times["CreateTime"] == times["UpdateTime"] and re.fullmatch(r"\d{4}-.*\.\d{9}Z", times["CreateTime"])
    cover, base = doc.pop("Cover"), doc.pop("BaseImages")
    assert doc == {
        "OwnerId": figures.OWNER_ID,
        "ProjectName": P,
        "DatasetName": D,
        "ObjectType": "figure-cluster",
        "ObjectId": cid,
        "FaceCount": 3,
        "ImageCount": 3,
        "VideoCount": 0,
        "MetaLockVersion": 0,
        "MinAge": 20,
        "MaxAge": 23,
        "AverageAge": 21.3,
        "Gender": "male",
    }
    assert cover == tx.get(FileKey(P, D, b))  # the best face's file, whole
    assert uris(base) == [b, c, a] and base[1] == tx.get(FileKey(P, D, c))  # best faces first


def test_gender_is_the_most_common_and_a_tie_goes_to_the_first_name(tx: Tx) -> None:
    for k, gender in enumerate(["male", "female", None]):
        index(tx, f"a{k}.png", face(0, k, gender=gender))
    figures.cluster_pending(tx, P, D)
    assert one_cluster(tx)[1]["Gender"] == "female"  # one each: "female" sorts first
    index(tx, "a3.png", face(0, 3, gender="male"))
    figures.cluster_pending(tx, P, D)
    assert one_cluster(tx)[1]["Gender"] == "male"


def test_faces_without_age_or_gender_give_none(tx: Tx) -> None:
    for k in range(3):
        index(tx, f"a{k}.png", face(0, k, age=None))
    figures.cluster_pending(tx, P, D)
    doc = one_cluster(tx)[1]
    assert not {"MinAge", "MaxAge", "AverageAge", "Gender"} & set(doc)
    assert None not in doc.values()


def test_base_images_are_the_three_best_distinct_files(tx: Tx) -> None:
    # a.png holds the two best faces (one person seen twice, e.g. in a mirror): it is one base image
    a = index(tx, "a.png", face(0, 0, quality=0.99), face(0, 1, quality=0.98, box=(200, 0, 100, 100)))
    b = index(tx, "b.png", face(0, 2, quality=0.97))
    c = index(tx, "c.png", face(0, 3, quality=0.96))
    index(tx, "d.png", face(0, 4, quality=0.95))
    figures.cluster_pending(tx, P, D)
    doc = one_cluster(tx)[1]
    assert doc["FaceCount"] == 5 and doc["ImageCount"] == 4
    assert uris(doc["BaseImages"]) == [a, b, c] and doc["Cover"]["URI"] == a


def test_image_count_counts_images_only(tx: Tx) -> None:
    for k in range(3):
        index(tx, f"a{k}.png", face(0, k))
    index(tx, "v.mp4", face(0, 3), media="video")
    figures.cluster_pending(tx, P, D)
    doc = one_cluster(tx)[1]
    assert (doc["FaceCount"], doc["ImageCount"], doc["VideoCount"]) == (4, 3, 0)


def test_a_chosen_cover_stays_while_its_face_does(tx: Tx) -> None:
    a = index(tx, "a.png", face(0, 0, quality=0.95))
    b = index(tx, "b.png", face(0, 1, quality=0.85))
    c = index(tx, "c.png", face(0, 2, quality=0.9))
    figures.cluster_pending(tx, P, D)
    cid, doc = one_cluster(tx)
    doc.update(_CoverFigureId=figure_ids(tx, b)[0], Name="Ann", MetaLockVersion=4, CreateTime="then")
    tx.put(ClusterKey(P, D, cid), doc)
    assert figures.forget_file_faces(tx, P, D, c) == {cid}
    tx.delete(FileKey(P, D, c))
    doc = clusters(tx)[cid]
    assert doc["Cover"]["URI"] == b and doc["_CoverFigureId"] == figure_ids(tx, b)[0]
    assert (doc["Name"], doc["MetaLockVersion"], doc["CreateTime"], doc["FaceCount"]) == ("Ann", 4, "then", 2)
    assert uris(doc["BaseImages"]) == [a, b]
    figures.forget_file_faces(tx, P, D, b)  # the chosen face goes: the best face covers again
    tx.delete(FileKey(P, D, b))
    doc = clusters(tx)[cid]
    assert doc["Cover"]["URI"] == a and "_CoverFigureId" not in doc and doc["Name"] == "Ann"


def test_cluster_document_keeps_bookkeeping_fields_and_drops_nulls() -> None:
    doc = figures.cluster_document({"ObjectId": "c", "Name": None, "FaceCount": 2, "_CoverFigureId": "f", "_x": None})
    assert doc == {"ObjectId": "c", "FaceCount": 2, "_CoverFigureId": "f", "_x": None}


# ---------------------------------------------------------------------------------------------- record


def test_record_refuses_figures_without_their_embeddings(tx: Tx) -> None:
    doc = {"URI": "oss://b/x.png", "Figures": [{"FigureId": "f1"}, {"FigureId": "f2"}]}
    with pytest.raises(ValueError, match=r"^oss://b/x\.png: 2 figures but 1 embeddings$"):
        figures.record_file_faces(tx, P, D, doc, [vec(0)])
    assert tx.get(FileKey(P, D, "oss://b/x.png")) is None


def test_reindexing_keeps_a_face_whose_box_overlaps_and_embedding_moved(tx: Tx) -> None:
    a = index(tx, "a.png", face(0, 0, quality=0.91))
    for k in (1, 2):
        index(tx, f"a{k}.png", face(0, k))
    figures.cluster_pending(tx, P, D)
    cid = one_cluster(tx)[0]
    (fid,) = figure_ids(tx, a)
    # moved 0.3 (over SAME_FACE_DISTANCE, under the threshold), the box shifted a little: the same face
    index(tx, "a.png", face(0, 6, quality=0.97, box=(10, 0, 100, 100)))
    assert figure_ids(tx, a) == [fid] and cluster_ids(tx, a) == [cid]
    doc = clusters(tx)[cid]
    assert doc["FaceCount"] == 3 and doc["Cover"]["URI"] == a  # rebuilt with the new quality
    (row,) = [row for row, _ in tx.file_faces(P, D, a)]
    assert (row.figure_id, row.cluster_id, row.quality) == (fid, cid, pytest.approx(0.97))
    # moved as much with a box elsewhere: another face; the old one leaves its cluster
    index(tx, "a.png", face(0, 0, box=(300, 0, 100, 100)))
    assert figure_ids(tx, a) != [fid] and cluster_ids(tx, a) == [None]
    assert clusters(tx)[cid]["FaceCount"] == 2


def test_reindexing_finds_a_face_without_a_box_by_its_embedding(tx: Tx) -> None:
    uri = "oss://b/x.png"
    first = {"URI": uri, "MediaType": "image", "Figures": [{"FigureId": "f1", "FaceQuality": 0.9}]}
    figures.record_file_faces(tx, P, D, first, [vec(0)])
    again = {"URI": uri, "MediaType": "image", "Figures": [{"FigureId": "f2"}, {"FigureId": "f3"}]}
    figures.record_file_faces(tx, P, D, again, [vec(1), vec(0, 1)])
    assert figure_ids(tx, uri) == ["f2", "f1"] and cluster_ids(tx, uri) == [None, None]
    rows = [(row.figure_id, row.quality) for row, _ in tx.file_faces(P, D, uri)]
    assert rows == [("f2", 0.0), ("f1", 0.0)]  # no FaceQuality: 0


def test_record_rebuilds_the_clusters_a_reindex_leaves(tx: Tx) -> None:
    names = [index(tx, f"{n}{k}.png", face(p, k)) for p, n in enumerate("ab") for k in range(3)]
    figures.cluster_pending(tx, P, D)
    first, second = (cluster_ids(tx, names[0])[0], cluster_ids(tx, names[3])[0])
    assert first and second and first != second
    index(tx, "a0.png", face(1, 5))  # now a photo of the other person: a pending face
    counts = {cid: doc["FaceCount"] for cid, doc in clusters(tx).items()}
    assert counts == {first: 2, second: 3} and cluster_ids(tx, names[0]) == [None]
    assert figures.cluster_pending(tx, P, D) == {second}
    assert {cid: doc["FaceCount"] for cid, doc in clusters(tx).items()} == {first: 2, second: 4}


# ---------------------------------------------------------------------------------------------- forget, merge


def test_forget_returns_the_clusters_it_touched_and_removes_an_emptied_one(tx: Tx) -> None:
    both = index(tx, "both.png", face(0, 0), face(1, 0, box=(300, 0, 100, 100)), face(2, 0, box=(600, 0, 100, 100)))
    for k in (1, 2):
        index(tx, f"a{k}.png", face(0, k))
    for k in (1, 2, 3):
        index(tx, f"b{k}.png", face(1, k))
    figures.cluster_pending(tx, P, D)
    a_id, b_id, pending = cluster_ids(tx, both)
    assert a_id and b_id and pending is None
    assert figures.forget_file_faces(tx, P, D, both) == {a_id, b_id}
    tx.delete(FileKey(P, D, both))
    assert {cid: doc["FaceCount"] for cid, doc in clusters(tx).items()} == {a_id: 2, b_id: 3}
    assert tx.file_faces(P, D, both) == [] and len(tx.faces(P, D)) == 5
    assert figures.forget_file_faces(tx, P, D, "oss://b/none.png") == set()
    for k in (1, 2):
        assert figures.forget_file_faces(tx, P, D, f"oss://b/a{k}.png") == {a_id}
        tx.delete(FileKey(P, D, f"oss://b/a{k}.png"))
    assert set(clusters(tx)) == {b_id}


def test_merge_moves_the_faces_and_returns_how_many(tx: Tx) -> None:
    a = [index(tx, f"a{k}.png", face(0, k, age=10)) for k in range(3)]
    b = [index(tx, f"b{k}.png", face(1, k, age=40)) for k in range(4)]
    figures.cluster_pending(tx, P, D)
    source, target = cluster_ids(tx, a[0])[0], cluster_ids(tx, b[0])[0]
    assert source and target
    doc = clusters(tx)[target]
    doc["Name"] = "Bob"
    tx.put(ClusterKey(P, D, target), doc)
    assert figures.merge_clusters(tx, P, D, source, target) == 3
    (cid, doc) = one_cluster(tx)
    assert cid == target and doc["Name"] == "Bob" and doc["FaceCount"] == 7
    assert (doc["MinAge"], doc["MaxAge"], doc["AverageAge"]) == (10, 40, round((3 * 10 + 4 * 40) / 7, 1))
    assert [cluster_ids(tx, u) for u in a + b] == [[target]] * 7
    assert {f.cluster_id for f in tx.faces(P, D)} == {target}


# ---------------------------------------------------------------------------------------------- a task


def test_cluster_pending_returns_the_clusters_it_touched(tx: Tx) -> None:
    assert figures.cluster_pending(tx, P, D) == set()  # no face at all
    index(tx, "x.png", face(3, 0))
    assert figures.cluster_pending(tx, P, D) == set()  # one face waits: nothing touched
    for k in range(3):
        index(tx, f"a{k}.png", face(0, k))
    (cid,) = figures.cluster_pending(tx, P, D)
    assert clusters(tx)[cid]["FaceCount"] == 3 and cluster_ids(tx, "oss://b/x.png") == [None]
    assert figures.cluster_pending(tx, P, D) == set()  # x still waits
    index(tx, "a3.png", face(0, 3, good=False))
    for k in range(3):
        index(tx, f"b{k}.png", face(1, k))
    touched = figures.cluster_pending(tx, P, D)
    assert cid in touched and len(touched) == 2
    counts = {c: doc["FaceCount"] for c, doc in clusters(tx).items()}
    assert counts == {c: (4 if c == cid else 3) for c in touched}


def test_a_task_starts_groups_from_good_faces_only(tx: Tx) -> None:
    names = [index(tx, f"a{k}.png", face(0, k, good=k != 1)) for k in range(3)]
    assert figures.cluster_pending(tx, P, D) == set()  # two good faces and a small one
    index(tx, "a3.png", face(0, 3, quality=0.8))  # FaceQuality must be over 0.8
    assert figures.cluster_pending(tx, P, D) == set()
    index(tx, "a4.png", face(0, 4))
    (cid,) = figures.cluster_pending(tx, P, D)
    assert [cluster_ids(tx, u) for u in names] == [[cid]] * 3
    assert clusters(tx)[cid]["FaceCount"] == 5


def test_a_task_reads_the_existing_clusters_members(tx: Tx) -> None:
    for k in range(3):
        index(tx, f"a{k}.png", face(0, 4 * k))  # shots 0, 4, 8: members 0.2 apart along the shot axis
    (cid,) = figures.cluster_pending(tx, P, D)
    stats = figures.cluster_stats(tx, P, D)
    assert stats.ids == [cid]
    mean, spread = stats.mean_and_spread(0)
    assert mean[0] == pytest.approx(5.0) and mean[100] == pytest.approx(0.2)
    assert spread == pytest.approx(25 + (0 + 0.2**2 + 0.4**2) / 3)
    index(tx, "far.png", face(0, 14, good=False))  # 0.5 from the mean, rms 0.52: joins
    index(tx, "farther.png", face(0, 18, good=False))  # 0.575 from the mean grown by far: waits
    assert figures.cluster_pending(tx, P, D) == {cid}
    assert cluster_ids(tx, "oss://b/far.png") == [cid] and cluster_ids(tx, "oss://b/farther.png") == [None]


# ---------------------------------------------------------------------------------------------- the invariant


def test_check_invariants_names_every_problem(tx: Tx) -> None:
    a = [index(tx, f"a{k}.png", face(0, k, age=30 + k)) for k in range(3)]
    v = index(tx, "v.mp4", face(0, 3), media="video")
    figures.cluster_pending(tx, P, D)
    cid, doc = one_cluster(tx)
    f0, f1 = figure_ids(tx, a[0])[0], figure_ids(tx, a[1])[0]
    doc.update(FaceCount=9, ImageCount=4, Cover={"URI": "oss://b/none.png"}, MinAge=1)
    tx.put(ClusterKey(P, D, cid), doc)
    file0 = tx.get(FileKey(P, D, a[0])) or {}
    file0["Figures"][0]["FigureClusterId"] = "gone"
    file0["Figures"].append({"FigureId": "stray"})
    tx.put(FileKey(P, D, a[0]), file0)
    file1 = tx.get(FileKey(P, D, a[1])) or {}
    file1["Figures"] = []
    tx.put(FileKey(P, D, a[1]), file1)
    file2 = tx.get(FileKey(P, D, a[2])) or {}
    file2["Figures"].append({**file2["Figures"][0], "FigureId": f0, "FigureClusterId": cid})
    tx.put(FileKey(P, D, a[2]), file2)
    assert sorted(figures.check_invariants(tx, P, D)) == sorted(
        [
            f"{a[0]}: figure {f0} says cluster gone, its face record {cid}",
            f"{a[0]}: figure {f0} names cluster gone, which does not exist",
            f"{a[0]}: figure stray has no face record",
            f"{a[2]}: figure {f0} has no face record",
            f"face {f1} of {a[1]} is on no file's Figures",
            f"{cid}: FaceCount 9, the files hold 3",
            f"{cid}: ImageCount 4, its faces are in 1",
            f"{cid}: cover oss://b/none.png holds none of its faces",
            f"{cid}: ages 1-32.0, faces' 32.0-32.0",
        ]
    )
    assert v  # the video's face counts in FaceCount, not in ImageCount


def test_check_invariants_accepts_a_consistent_dataset_and_a_cluster_without_cover(tx: Tx) -> None:
    for k in range(3):
        index(tx, f"a{k}.png", face(0, k, age=None))
    figures.cluster_pending(tx, P, D)
    cid, doc = one_cluster(tx)
    assert figures.check_invariants(tx, P, D) == []
    del doc["Cover"]
    tx.put(ClusterKey(P, D, cid), doc)
    assert figures.check_invariants(tx, P, D) == [f"{cid}: cover None holds none of its faces"]


def test_a_task_groups_with_the_threshold_it_is_given(tx: Tx) -> None:
    for k in range(3):
        index(tx, f"a{k}.png", face(0, 2 * k))  # 0.1 apart
    assert figures.cluster_pending(tx, P, D, threshold=0.09) == set()  # the default (0.55) would group them
    (cid,) = figures.cluster_pending(tx, P, D, threshold=0.25)
    assert clusters(tx)[cid]["FaceCount"] == 3


def test_check_invariants_looks_at_one_dataset(tx: Tx) -> None:
    for k in range(3):
        index(tx, f"a{k}.png", face(0, k))
    figures.cluster_pending(tx, P, D)
    # another dataset of the project, inconsistent: a figure without its face, a cluster with wrong counts
    tx.put(DatasetKey(P, "other"), {"ProjectName": P, "DatasetName": "other"})
    tx.put(
        FileKey(P, "other", "oss://b/x.png"),
        {"URI": "oss://b/x.png", "Figures": [{"FigureId": "f", "FigureClusterId": "g"}]},
    )
    tx.put(ClusterKey(P, "other", "g"), {"ObjectId": "g", "FaceCount": 5})
    assert figures.check_invariants(tx, P, D) == []
    assert sorted(figures.check_invariants(tx, P, "other")) == [
        "g: FaceCount 5, the files hold 1",
        "g: ImageCount None, its faces are in 0",
        "g: cover None holds none of its faces",
        "oss://b/x.png: figure f has no face record",
    ]
