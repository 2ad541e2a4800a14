"""Face clustering: the engine on its own (rms test, IMM's three-good-faces rule, incremental ids), then the
figure-cluster lifecycle over the store (index, cluster, re-index, delete, merge) with the invariant checked
after every change, then the issue's re-index scenario through the emulator."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from imm_faces.emulator import figures
from imm_faces.emulator.analysis import FaceRecord, ImageAnalysis
from imm_faces.emulator.clustering import CHUNK, DEFAULT_THRESHOLD, ClusterStats, assign
from imm_faces.emulator.indexer import file_doc, put_file
from imm_faces.emulator.store import ClusterKey, Clusters, FileKey, Store, Tx
from imm_faces.runtime import rules
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import figure_clusters, files, tasks
from imm_faces.runtime.waiters import wait_for_task
from tests.fakes import write_photo
from tests.helpers import BUCKET, DATASET, PROJECT, dataset_store, deploy

F32 = npt.NDArray[np.float32]
DIM = 128
SIGMA = 0.4 / np.sqrt(2 * DIM)  # faces of one person ~0.4 apart (dlib: 0.27-0.59)


def centres(n: int, seed: int = 3) -> F32:
    """People ~0.9 apart (dlib: different people 0.66-0.96)."""
    return np.random.default_rng(seed).normal(scale=0.9 / np.sqrt(2 * DIM), size=(n, DIM)).astype(np.float32)


def photos_of(centre: F32, n: int, seed: int) -> F32:
    return (centre + np.random.default_rng(seed).normal(scale=SIGMA, size=(n, DIM))).astype(np.float32)


def namer(prefix: str = "c") -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


def empty() -> ClusterStats:
    return ClusterStats.from_members([], np.zeros((0, DIM), np.float32))


# ---------------------------------------------------------------------------------------------- the engine


def test_rms_is_the_root_mean_square_distance_to_the_members() -> None:
    rng = np.random.default_rng(1)
    members = rng.normal(size=(7, DIM)).astype(np.float32)
    stats = ClusterStats.from_members(["a"] * 4 + ["b"] * 3, members)
    x = rng.normal(size=(2, DIM))
    brute = [
        [np.mean(((members[s].astype(np.float64) - xi) ** 2).sum(1)) for s in (slice(0, 4), slice(4, 7))] for xi in x
    ]
    assert np.allclose(stats.rms2(x), brute)
    labels = ["a"] * 4 + ["b"] * 3
    batched = ClusterStats.from_batches((labels[k : k + 3], members[k : k + 3]) for k in range(0, 7, 3))
    assert batched.ids == ["a", "b"] and np.allclose(batched.rms2(x), brute)


def test_a_group_needs_three_good_faces() -> None:
    (a,) = centres(1)
    faces = photos_of(a, 4, seed=5)
    stats = empty()
    assert assign(faces[:2], stats, namer()) == [None, None]  # two good faces: still pending
    labels = assign(faces[:3], stats, namer())  # the pending two are offered again with a third
    assert labels == ["c0", "c0", "c0"] and len(stats) == 1
    assert assign(faces[3:], stats, namer("d")) == ["c0"]  # later faces join


def test_faces_that_are_not_good_join_a_group_but_never_start_one() -> None:
    (a,) = centres(1)
    faces = photos_of(a, 7, seed=6)
    good = np.array([False, False, False, False, True, True, True])
    stats = empty()
    assert assign(faces[:4], stats, namer(), good=good[:4]) == [None] * 4  # four, none good: no group
    assert assign(faces[:6], stats, namer(), good=good[:6]) == [None] * 6  # two good are not enough
    labels = assign(faces, stats, namer(), good=good)  # the third good face starts it; the rest join
    assert labels == ["c0"] * 7
    assert assign(photos_of(a, 1, seed=7), stats, namer("d"), good=np.array([False])) == ["c0"]


def test_threshold_is_on_the_rms_not_on_the_distance_to_the_mean() -> None:
    # Three members at distance s from their mean, pairwise orthogonal offsets: variance = s^2.
    s = 0.3
    offsets = np.zeros((3, DIM))
    offsets[0, 0], offsets[1, 1], offsets[2, 2] = s, s, s
    offsets -= offsets.mean(0)
    members = offsets.astype(np.float32)
    variance = float((offsets**2).sum(1).mean())

    def probe(rms: float) -> list[str | None]:
        stats = ClusterStats.from_members(["c"] * 3, members)
        x = np.zeros((1, DIM), np.float32)
        x[0, 10] = np.sqrt(rms**2 - variance)  # orthogonal to the offsets: |x - mean|^2 + variance = rms^2
        return assign(x, stats, namer("n"), good=np.array([False]))

    assert probe(0.95 * DEFAULT_THRESHOLD) == ["c"]
    assert probe(1.05 * DEFAULT_THRESHOLD) == [None]
    # Within the threshold of the mean, but not in rms: a centroid test would take it.
    near_mean = np.sqrt(DEFAULT_THRESHOLD**2 - variance) * 1.1
    assert near_mean < DEFAULT_THRESHOLD and probe(float(np.sqrt(near_mean**2 + variance))) == [None]


def test_a_face_left_waiting_joins_once_the_group_has_grown_towards_it() -> None:
    rng = np.random.default_rng(14)
    axis = np.zeros(DIM)
    axis[0] = 1.0

    def near(centre: npt.NDArray[np.float64], k: int) -> F32:
        return (centre + rng.normal(scale=0.01, size=(k, DIM))).astype(np.float32)

    x = near(0.6 * axis, 1)  # 0.6 from the first three: over the threshold then
    faces = np.vstack([near(0 * axis, 3), x, near(0.3 * axis, 6)])
    labels = assign(faces, empty(), namer(), good=np.array([True] * 3 + [False] * 7))
    assert labels == ["c0"] * 10  # the group moved towards x: x is offered again at the end of the task


def test_pending_faces_are_not_absorbed_by_a_strangers_group() -> None:
    rng = np.random.default_rng(9)
    b = centres(1, seed=11)[0]
    direction = rng.normal(size=DIM)
    a = (b + 0.5 * direction / np.linalg.norm(direction)).astype(np.float32)  # a look-alike of B, seen twice
    a_faces = (a + np.random.default_rng(12).normal(scale=SIGMA / 4, size=(2, DIM))).astype(np.float32)
    b_faces = photos_of(b, 10, seed=13)
    stats = empty()
    labels = assign(np.vstack([a_faces, b_faces]), stats, namer())
    assert labels == [None, None] + ["c0"] * 10
    # A's faces are nearer than the threshold to B's mean (a centroid test would take them), but not in rms.
    members = b_faces.astype(np.float64)
    assert (np.linalg.norm(a_faces - members.mean(0), axis=1) < DEFAULT_THRESHOLD).all()
    assert (np.sqrt(stats.rms2(a_faces.astype(np.float64))[:, 0]) > DEFAULT_THRESHOLD).all()
    assert assign(a_faces, stats, namer("d")) == [None, None]  # offered again to the grown group: still pending


def _photos(centre: npt.NDArray[np.float64], spread: float, n: int, rng: np.random.Generator) -> F32:
    """``n`` photos of a person: their centre plus isotropic noise ~``spread`` from it, each photo's own scale."""
    scale = spread * np.exp(rng.normal(scale=0.15, size=n))
    return (centre + rng.normal(size=(n, DIM)) * scale[:, None] / np.sqrt(DIM)).astype(np.float32)


def _groups(labels: list[str | None], truth: npt.NDArray[np.int64]) -> dict[str, set[int]]:
    """The people in each group."""
    out: dict[str, set[int]] = {}
    for label, person in zip(labels, truth.tolist(), strict=True):
        if label is not None:
            out.setdefault(label, set()).add(person)
    return out


def test_strangers_of_a_crowded_subgroup_each_get_their_own_group() -> None:
    # 40 people seen 3-5 times each, whose centres are ~0.45 from their nearest stranger's (photos of one person
    # ~0.38 apart, of such neighbours ~0.55): every person a group of their own, none holding two people
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, DIM)) * 0.36 / np.sqrt(DIM)
    truth = np.repeat(np.arange(40), rng.integers(3, 6, 40))
    order = rng.permutation(len(truth))
    faces = np.vstack([_photos(centres[p], 0.27, 1, rng) for p in truth])[order]
    groups = _groups(assign(faces, empty(), namer()), truth[order])
    assert sorted(min(people) for people in groups.values()) == list(range(40))
    assert all(len(people) == 1 for people in groups.values())


def test_a_heavily_photographed_wide_person_stays_one_group_apart_from_a_look_alike() -> None:
    # 60 photos spread wider than most people's (0.37 from their centre, not 0.27), a look-alike 0.55 away (six
    # photos) and a neighbour 0.5 away (four), in random order: the 60 in one group, each other person in theirs
    rng = np.random.default_rng(0)
    heavy = rng.normal(size=DIM) * 0.6 / np.sqrt(DIM)
    away = rng.normal(size=(2, DIM))
    away /= np.linalg.norm(away, axis=1)[:, None]
    faces = np.vstack(
        [
            _photos(heavy, 0.37, 60, rng),
            _photos(heavy + 0.55 * away[0], 0.27, 6, rng),
            _photos(heavy + 0.5 * away[1], 0.27, 4, rng),
        ]
    )
    truth = np.array([0] * 60 + [1] * 6 + [2] * 4)
    order = rng.permutation(len(truth))
    labels = assign(faces[order], empty(), namer())
    assert sorted(_groups(labels, truth[order]).values(), key=min) == [{0}, {1}, {2}]
    assert None not in labels


def test_each_person_one_cluster_across_chunk_boundaries() -> None:
    people = CHUNK // 2
    rng = np.random.default_rng(4)
    truth = rng.permutation(np.arange(people * 5) % people)
    faces = (centres(people)[truth] + rng.normal(scale=SIGMA * 0.8, size=(len(truth), DIM))).astype(np.float32)
    labels = assign(faces, empty(), namer())
    mapping: dict[str | None, int] = {}
    for label, person in zip(labels, truth.tolist(), strict=True):
        assert label is not None
        assert mapping.setdefault(label, person) == person  # no cluster mixes two people
    assert len(mapping) == people  # and no person is split


def test_incremental_tasks_keep_ids_and_match_one_task() -> None:
    rng = np.random.default_rng(8)
    truth = rng.permutation(np.arange(20 * 6) % 20)
    faces = (centres(20)[truth] + rng.normal(scale=SIGMA * 0.8, size=(len(truth), DIM))).astype(np.float32)
    stats = empty()
    first = assign(faces[:60], stats, namer())
    before = list(stats.ids)
    pending = [i for i, label in enumerate(first) if label is None]
    # The next task: the stored members rebuild the stats; pending faces are offered again before new ones.
    members = [(i, label) for i, label in enumerate(first) if label is not None]
    rebuilt = ClusterStats.from_members([label for _, label in members], faces[[i for i, _ in members]])
    second = assign(faces[pending + list(range(60, len(faces)))], rebuilt, namer("d"))
    assert rebuilt.ids[: len(before)] == sorted(before)  # existing ids kept
    assert None not in second
    together = assign(faces, empty(), namer("e"))
    assert len(set(rebuilt.ids)) == len(set(together)) == 20


def test_bad_input_is_an_error() -> None:
    stats = ClusterStats.from_members(["x"], np.zeros((1, DIM), np.float32))
    with pytest.raises(ValueError, match="dimension"):
        assign(np.zeros((1, 64), np.float32), stats, namer())
    with pytest.raises(ValueError, match="one flag per embedding"):
        assign(np.zeros((2, DIM), np.float32), stats, namer(), good=np.array([True]))


def test_the_good_face_rule_is_strict_on_every_criterion() -> None:
    side, pose, quality = rules.FACE_GROUP_MIN_SIDE, rules.FACE_GROUP_MAX_POSE, rules.FACE_GROUP_MIN_QUALITY
    assert rules.is_good_face(side + 1, side + 1, (0, 0, 0), quality + 0.01)
    assert not rules.is_good_face(side, side + 1, (0, 0, 0), quality + 0.01)
    assert not rules.is_good_face(side + 1, side, (0, 0, 0), quality + 0.01)
    for k in range(3):
        angles = [0.0, 0.0, 0.0]
        angles[k] = -pose
        assert not rules.is_good_face(side + 1, side + 1, (angles[0], angles[1], angles[2]), quality + 0.01)
        angles[k] = pose - 0.1
        assert rules.is_good_face(side + 1, side + 1, (angles[0], angles[1], angles[2]), quality + 0.01)
    assert not rules.is_good_face(side + 1, side + 1, (0, 0, 0), quality)
    assert not rules.is_good_face(side + 1, side + 1, None, 1.0)


# ---------------------------------------------------------------------------------------------- the lifecycle

P, D = "p", "d"


@pytest.fixture
def store() -> Iterator[Store]:
    s = dataset_store(":memory:", P, D)
    yield s
    s.close()


PEOPLE = centres(4, seed=21)


def face(person: int, shot: int, *, good: bool = True, age: float = 30, left: int = 0) -> FaceRecord:
    vec = photos_of(PEOPLE[person], 1, seed=1000 * person + shot)[0]
    side = 100 if good else 60
    return FaceRecord(embedding=vec, boundary=(left, 10, side, side), quality=0.9, age=age, head_pose=(0, 0, 0))


def index(tx: Tx, name: str, *faces: FaceRecord) -> str:
    """Index a file as the emulator's indexer does (same document builder, same store path)."""
    uri = f"oss://b/{name}"
    analysis = ImageAnalysis("image", "image/png", 640, 480, 1, {}, list(faces))
    put_file(tx, P, D, *file_doc(P, D, {"URI": uri}, analysis, size=len(name), etag='"E"', mtime_ns=0))
    return uri


def consistent(tx: Tx) -> dict[str, dict[str, object]]:
    assert figures.check_invariants(tx, P, D) == []
    return dict(tx.scan(Clusters(P, D)))


def cluster_of(tx: Tx, uri: str) -> list[str | None]:
    doc = tx.get(FileKey(P, D, uri)) or {}
    return [fig.get("FigureClusterId") for fig in doc.get("Figures", [])]


def test_index_cluster_reindex_keeps_ids_and_user_fields(store: Store) -> None:
    with store.tx() as tx:
        uris = [index(tx, f"a{k}.png", face(0, k, age=30 + k)) for k in range(3)]
        uris.append(index(tx, "b0.png", face(1, 0)))  # one photo of person 1: pending, no group
        uris.append(index(tx, "pair.png", face(0, 3, good=False), face(2, 0, left=300)))
        # Person 3: three photos, but one face is too small (60 px): two good faces start no group.
        small = [index(tx, f"c{k}.png", face(3, k, good=k > 0)) for k in range(3)]
        assert consistent(tx) == {}  # indexing alone groups nothing
        figures.cluster_pending(tx, P, D)
        assert [cluster_of(tx, u) for u in small] == [[None]] * 3
        clusters = consistent(tx)
        (cid,) = clusters
        assert clusters[cid]["FaceCount"] == 4 and clusters[cid]["ImageCount"] == 4
        assert (clusters[cid]["MinAge"], clusters[cid]["MaxAge"]) == (30, 32)
        assert cluster_of(tx, uris[3]) == [None] and cluster_of(tx, uris[4]) == [cid, None]
        doc = clusters[cid]
        doc.update(Name="Ann", CustomId="ann-1", CustomLabels={"k": "v"}, MetaLockVersion=3)
        tx.put(ClusterKey(P, D, cid), doc)
        before = {uri: [f["FigureId"] for f in (tx.get(FileKey(P, D, uri)) or {})["Figures"]] for uri in uris}

        # The same files indexed again: the analysis gives new figure ids; the faces are the same faces.
        for k in range(3):
            index(tx, f"a{k}.png", face(0, k, age=30 + k))
        index(tx, "b0.png", face(1, 0))
        index(tx, "pair.png", face(0, 3, good=False), face(2, 0, left=300))
        after = consistent(tx)
        assert set(after) == {cid}  # no ghost cluster, no new cluster
        assert {uri: [f["FigureId"] for f in (tx.get(FileKey(P, D, uri)) or {})["Figures"]] for uri in uris} == before
        figures.cluster_pending(tx, P, D)
        after = consistent(tx)
        assert set(after) == {cid} and after[cid]["FaceCount"] == 4
        for key, value in (
            ("Name", "Ann"),
            ("CustomId", "ann-1"),
            ("CustomLabels", {"k": "v"}),
            ("MetaLockVersion", 3),
        ):
            assert after[cid][key] == value


def test_reindex_that_loses_a_face_shrinks_then_removes_its_cluster(store: Store) -> None:
    with store.tx() as tx:
        uris = [index(tx, f"a{k}.png", face(0, k)) for k in range(3)]
        figures.cluster_pending(tx, P, D)
        (cid,) = consistent(tx)
        index(tx, "a0.png", face(3, 0))  # the photo was replaced: another person now
        clusters = consistent(tx)
        assert clusters[cid]["FaceCount"] == 2 and cluster_of(tx, uris[0]) == [None]
        index(tx, "a1.png")  # no face any more
        index(tx, "a2.png")
        assert consistent(tx) == {}


def test_delete_updates_counts_ages_and_cover_then_removes_the_cluster(store: Store) -> None:
    with store.tx() as tx:
        uris = [index(tx, f"a{k}.png", face(0, k, age=20 + 10 * k)) for k in range(3)]
        figures.cluster_pending(tx, P, D)
        (cid,) = consistent(tx)
        doc = tx.get(ClusterKey(P, D, cid)) or {}
        cover_uri = doc["Cover"]["URI"]
        doc["_CoverFigureId"] = (tx.get(FileKey(P, D, cover_uri)) or {})["Figures"][0]["FigureId"]
        tx.put(ClusterKey(P, D, cid), doc)
        assert figures.forget_file_faces(tx, P, D, cover_uri) == {cid}
        tx.delete(FileKey(P, D, cover_uri))
        left = [u for u in uris if u != cover_uri]
        clusters = consistent(tx)
        ages = sorted(20 + 10 * uris.index(u) for u in left)
        assert clusters[cid]["FaceCount"] == 2 and (clusters[cid]["MinAge"], clusters[cid]["MaxAge"]) == tuple(ages)
        assert clusters[cid]["Cover"]["URI"] in left and "_CoverFigureId" not in clusters[cid]
        for uri in left:
            figures.forget_file_faces(tx, P, D, uri)
            tx.delete(FileKey(P, D, uri))
        assert consistent(tx) == {}


def test_merge_moves_every_face_and_keeps_the_target(store: Store) -> None:
    with store.tx() as tx:
        for person in (0, 1):
            for k in range(3):
                index(tx, f"p{person}-{k}.png", face(person, k))
        figures.cluster_pending(tx, P, D)
        clusters = consistent(tx)
        assert len(clusters) == 2
        source, target = sorted(clusters)
        assert figures.merge_clusters(tx, P, D, source, target) == 3
        clusters = consistent(tx)
        assert set(clusters) == {target} and clusters[target]["FaceCount"] == 6


def test_check_invariants_reports_each_kind_of_drift(store: Store) -> None:
    with store.tx() as tx:
        uris = [index(tx, f"a{k}.png", face(0, k)) for k in range(3)]
        figures.cluster_pending(tx, P, D)
        (cid,) = consistent(tx)
        ghost = {**(tx.get(ClusterKey(P, D, cid)) or {}), "ObjectId": "ghost"}
        tx.put(ClusterKey(P, D, "ghost"), ghost)
        doc = tx.get(ClusterKey(P, D, cid)) or {}
        doc.update(ImageCount=5, Cover={"URI": "oss://b/elsewhere.png"})
        tx.put(ClusterKey(P, D, cid), doc)
        file_doc = tx.get(FileKey(P, D, uris[0])) or {}
        file_doc["Figures"][0]["FigureClusterId"] = "gone"
        tx.put(FileKey(P, D, uris[0]), file_doc)
        problems = "\n".join(figures.check_invariants(tx, P, D))
    assert "ghost: FaceCount 3, the files hold 0" in problems
    assert f"{cid}: ImageCount 5" in problems and f"{cid}: cover oss://b/elsewhere.png" in problems
    assert "names cluster gone, which does not exist" in problems and "its face record" in problems


# ---------------------------------------------------------------------------------------------- through the emulator


def test_reindexing_through_the_emulator_leaves_no_ghost_clusters(
    emulator: object, client: ImmClient, oss_root: Path
) -> None:
    photos: dict[str, list[dict[str, object]]] = {f"p{p}-{k}.png": [{"person": p}] for p in range(4) for k in range(3)}
    photos["single.png"] = [{"person": 9}]  # seen once: never a group
    photos["group.png"] = [{"person": 0}, {"person": 1}, {"person": 8}]
    deploy(client, oss_root, photos)
    listed = list(client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=DATASET))
    assert sorted(c.face_count for c in listed) == [3, 3, 4, 4]
    first = {c.object_id for c in listed}
    client.call(
        figure_clusters.UpdateFigureCluster,
        project_name=PROJECT,
        dataset_name=DATASET,
        figure_cluster={"ObjectId": min(first), "Name": "kept"},
    )
    uris = [write_photo(oss_root, BUCKET, key, faces) for key, faces in photos.items()]
    client.call(files.BatchIndexFileMeta, project_name=PROJECT, dataset_name=DATASET, files=[{"URI": u} for u in uris])
    task_id = client.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name=DATASET).task_id
    assert task_id and wait_for_task(client, PROJECT, task_id, timeout=30, interval=0.05).status == "Succeeded"
    again = list(client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=DATASET))
    assert {c.object_id for c in again} == first and sorted(c.face_count for c in again) == [3, 3, 4, 4]
    assert next(c for c in again if c.object_id == min(first)).name == "kept"
    with emulator.store.tx() as tx:  # type: ignore[attr-defined]
        assert figures.check_invariants(tx, PROJECT, DATASET) == []
