"""Real photos, real faces: dlib analysis in the emulator, driven through Alibaba's official SDK.

The photos come from PyPI at test time (``imm_faces.emulator.sample_photos``: the face_recognition 1.3.0 sdist) and are
cached; none is committed. Seven photos of one person (a PNG, a rotated JPEG with an EXIF orientation, two
partial faces), two of another (JPEG, WebP) and a landscape with no face.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_imm20200930.client import Client

from imm_faces.emulator.analysis import FaceRecord, ImageAnalysis
from imm_faces.emulator.sample_photos import SampleBucket, write_sample_bucket
from imm_faces.emulator.server import Emulator
from imm_faces.emulator.vision import DlibAnalyzer
from imm_faces.runtime.cli.main import main
from tests.sdk import now_rfc3339, sdk, wait_indexed

BUCKET, PREFIX = "photos", "people/"


class RememberingAnalyzer(DlibAnalyzer):
    """dlib's analysis, remembered per image for this module: its tests index the same photos into several
    datasets, and an image's analysis does not change (what is tested is what the emulator does with it)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[tuple[bytes, str], ImageAnalysis] = {}
        self._lock = threading.Lock()

    def analyze(self, data: bytes, filename: str) -> ImageAnalysis:
        key = (hashlib.sha256(data).digest(), filename)
        with self._lock:
            known = self._seen.get(key)
        if known is None:
            known = super().analyze(data, filename)
            with self._lock:
                self._seen[key] = known
        return copy.deepcopy(known)


@pytest.fixture(scope="module")
def analyzer() -> DlibAnalyzer:
    return RememberingAnalyzer()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleBucket]:
    oss_root = tmp_path_factory.mktemp("oss")
    return oss_root, write_sample_bucket(oss_root / BUCKET, PREFIX)


@pytest.fixture(scope="module")
def real_emulator(photos: tuple[Path, SampleBucket], analyzer: DlibAnalyzer) -> Iterator[Emulator]:
    with Emulator(oss_root=photos[0], analyzer=analyzer) as emu:
        yield emu


def uri(key: str) -> str:
    return f"oss://{BUCKET}/{key}"


def cluster_dataset(c: Client, dataset: str, keys: list[str]) -> str:
    since = now_rfc3339()
    c.batch_index_file_meta(
        m.BatchIndexFileMetaRequest(
            project_name="faces", dataset_name=dataset, files=[m.InputFile(uri=uri(k)) for k in keys]
        )
    )
    wait_indexed(c, "faces", dataset, [uri(k) for k in keys], since)  # a task clusters only what is indexed
    task_id = c.create_figure_clustering_task(
        m.CreateFigureClusteringTaskRequest(project_name="faces", dataset_name=dataset)
    ).body.task_id
    deadline = time.monotonic() + 120
    while True:
        task = c.get_task(m.GetTaskRequest(project_name="faces", task_id=task_id, task_type="FaceClustering")).body
        if task.status != "Running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert task.status == "Succeeded", (task.code, task.message)
    return str(task_id)


def clusters_of(c: Client, dataset: str) -> dict[str, m.FigureCluster]:
    body = c.query_figure_clusters(m.QueryFigureClustersRequest(project_name="faces", dataset_name=dataset)).body
    return {x.object_id: x for x in body.figure_clusters or []}


def figure_clusters_by_key(c: Client, dataset: str, keys: list[str]) -> dict[str, list[str]]:
    out = {}
    for key in keys:
        (meta,) = c.get_file_meta(
            m.GetFileMetaRequest(project_name="faces", dataset_name=dataset, uri=uri(key))
        ).body.files
        out[key] = [f.figure_cluster_id for f in meta.figures or []]
    return out


def test_one_cluster_per_person_through_the_official_sdk(
    real_emulator: Emulator,
    photos: tuple[Path, SampleBucket],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample = photos[1]
    c = sdk(real_emulator)
    c.create_project(m.CreateProjectRequest(project_name="faces"))
    c.create_dataset(m.CreateDatasetRequest(project_name="faces", dataset_name="all"))
    task_id = cluster_dataset(c, "all", sample.keys)

    by_key = figure_clusters_by_key(c, "all", sample.keys)
    assert by_key["people/landscape.png"] == []
    # IMM starts a face group only from three good faces of one person (every face here is good: > 75 px,
    # |pose| < 30 deg, FaceQuality > 0.8). Obama's seven photos make one group; Biden's two make none.
    (obama,) = {cid for k in sample.people["obama"] for cid in by_key[k]}
    assert obama and all(by_key[k] == [obama] for k in sample.people["obama"]), by_key
    assert all(by_key[k] == [None] for k in sample.people["biden"]), by_key

    clusters = clusters_of(c, "all")
    assert set(clusters) == {obama}
    keys = sample.people["obama"]
    full = c.get_figure_cluster(
        m.GetFigureClusterRequest(project_name="faces", dataset_name="all", object_id=obama)
    ).body.figure_cluster
    assert (full.face_count, full.image_count, full.video_count) == (len(keys), len(keys), 0)
    assert full.gender == "male"
    assert 20 <= full.min_age <= full.average_age <= full.max_age <= 90
    assert full.cover.uri in {uri(k) for k in keys}
    (cover_face,) = [f for f in full.cover.figures if f.figure_cluster_id == obama]
    assert cover_face.face_quality == max(_qualities(c, keys, obama))
    assert full.meta_lock_version is not None and full.create_time and full.update_time

    # The rotated photo was found only because its EXIF orientation was applied: the face is upright there.
    (rotated,) = c.get_file_meta(
        m.GetFileMetaRequest(project_name="faces", dataset_name="all", uri=uri("people/obama-rotated.jpg"))
    ).body.files
    assert (rotated.orientation, rotated.image_width, rotated.image_height) == (8, 910, 1137)
    webp = c.get_file_meta(
        m.GetFileMetaRequest(project_name="faces", dataset_name="all", uri=uri("people/biden.webp"))
    ).body.files[0]
    assert webp.content_type == "image/webp" and webp.media_type == "image"
    face = webp.figures[0]
    assert face.boundary.width > 100 and 0 < face.face_quality <= 1 and 0 <= face.sharpness < 1
    assert face.head_pose is not None and face.gender == "male" and face.age > 0

    # And the smoke check passes on this deployment.
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "project_name": "faces",
                "dataset_name": "all",
                "region": "cn-hangzhou",
                "endpoint": real_emulator.endpoint,
                "clustering_task_id": task_id,
            }
        )
    )
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-access-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "emulator-access-key-secret")
    assert main(["verify", "--outputs", str(outputs), "--min-clusters", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["total_clusters"] == 1


def _qualities(c: Client, keys: list[str], cluster_id: str) -> list[float]:
    out = []
    for key in keys:
        (meta,) = c.get_file_meta(
            m.GetFileMetaRequest(project_name="faces", dataset_name="all", uri=uri(key))
        ).body.files
        out += [f.face_quality for f in meta.figures if f.figure_cluster_id == cluster_id]
    return out


def test_incremental_tasks_keep_cluster_ids(real_emulator: Emulator, photos: tuple[Path, SampleBucket]) -> None:
    sample = photos[1]
    c = sdk(real_emulator)
    if not c.list_projects(m.ListProjectsRequest()).body.projects:
        c.create_project(m.CreateProjectRequest(project_name="faces"))
    c.create_dataset(m.CreateDatasetRequest(project_name="faces", dataset_name="grow"))
    obama, biden = sample.people["obama"], sample.people["biden"]
    cluster_dataset(c, "grow", [*obama[:2], biden[0]])
    assert clusters_of(c, "grow") == {}  # two good faces of one person are not enough for a group
    cluster_dataset(c, "grow", [obama[2]])  # the third starts it, with the two that were pending
    before = clusters_of(c, "grow")
    assert [x.face_count for x in before.values()] == [3]

    cluster_dataset(c, "grow", [k for k in sample.keys if k not in {*obama[:3], biden[0]}])
    after = clusters_of(c, "grow")
    assert set(after) == set(before)  # new faces joined the existing cluster; no id changed
    assert [x.face_count for x in after.values()] == [len(obama)]  # and Biden, seen twice, has no group


def test_a_photo_without_faces_and_a_non_image_give_no_face(
    analyzer: DlibAnalyzer, photos: tuple[Path, SampleBucket]
) -> None:
    oss_root, sample = photos
    landscape = analyzer.analyze((oss_root / BUCKET / sample.no_face[0]).read_bytes(), "landscape.png")
    assert (landscape.media_type, landscape.faces) == ("image", [])
    text = analyzer.analyze(b"not an image", "notes.txt")
    assert (text.media_type, text.faces) == ("other", [])


def test_same_person_is_closer_than_the_threshold(analyzer: DlibAnalyzer, photos: tuple[Path, SampleBucket]) -> None:
    from imm_faces.emulator.clustering import DEFAULT_THRESHOLD

    oss_root, sample = photos
    faces: dict[str, list[FaceRecord]] = {
        person: [analyzer.analyze((oss_root / BUCKET / k).read_bytes(), k).faces[0] for k in keys]
        for person, keys in sample.people.items()
    }
    same = [_distance(a, b) for group in faces.values() for i, a in enumerate(group) for b in group[i + 1 :]]
    different = [_distance(a, b) for a in faces["obama"] for b in faces["biden"]]
    assert max(same) < DEFAULT_THRESHOLD < min(different)


def _distance(a: FaceRecord, b: FaceRecord) -> float:
    import numpy as np

    return float(np.linalg.norm(a.embedding - b.embedding))


def test_query_search_merge_and_delete_on_real_faces(
    real_emulator: Emulator, photos: tuple[Path, SampleBucket]
) -> None:
    """On real photos: a face group's images by SimpleQuery (IMM's FAQ), the groups of a photo's faces, a merge
    (To keeps its id), then deletes shrinking the group and finally removing it. Three photos of each person
    (Biden's third is his portrait mirrored), so both have a group."""
    from PIL import Image, ImageOps

    from imm_faces.emulator.figures import check_invariants

    oss_root, sample = photos
    mirrored = "more/biden-mirrored.jpg"
    (oss_root / BUCKET / "more").mkdir(exist_ok=True)
    with Image.open(oss_root / BUCKET / PREFIX / "biden.jpg") as img:
        ImageOps.mirror(img).save(oss_root / BUCKET / mirrored, format="JPEG", quality=92)
    obama_keys, biden_keys = sample.people["obama"][:3], [*sample.people["biden"], mirrored]
    c = sdk(real_emulator)
    if not c.list_projects(m.ListProjectsRequest()).body.projects:
        c.create_project(m.CreateProjectRequest(project_name="faces"))
    c.create_dataset(m.CreateDatasetRequest(project_name="faces", dataset_name="life"))
    cluster_dataset(c, "life", [*obama_keys, *biden_keys])
    by_key = figure_clusters_by_key(c, "life", [*obama_keys, *biden_keys])
    (obama,) = {by_key[k][0] for k in obama_keys}
    (biden,) = {by_key[k][0] for k in biden_keys}
    assert set(clusters_of(c, "life")) == {obama, biden} and obama != biden

    def images_of(cluster_id: str) -> set[str]:
        query = m.SimpleQuery(field="Figures.FigureClusterId", operation="eq", value=cluster_id)
        found = c.simple_query(m.SimpleQueryRequest(project_name="faces", dataset_name="life", query=query)).body
        assert found.total_hits == len(found.files or [])
        return {f.uri for f in found.files or []}

    def invariants() -> list[str]:
        with real_emulator.store.snapshot() as tx:
            return check_invariants(tx, "faces", "life")

    assert images_of(obama) == {uri(k) for k in obama_keys}
    assert images_of(biden) == {uri(k) for k in biden_keys}

    # Which groups the faces of a photo belong to (the photo need not be indexed: it is analysed).
    unindexed = uri(sample.people["obama"][-1])
    hits = c.search_image_figure_cluster(
        m.SearchImageFigureClusterRequest(project_name="faces", dataset_name="life", source_uri=unindexed)
    ).body.clusters
    assert [h.cluster_id for h in hits] == [obama] and 0 < hits[0].similarity <= 1

    # A merge (here a deliberate one): Biden's group into Obama's, which keeps its id; Biden's is gone.
    merge = c.create_figure_clusters_merging_task(
        m.CreateFigureClustersMergingTaskRequest(project_name="faces", dataset_name="life", from_=biden, to=obama)
    ).body
    deadline = time.monotonic() + 60
    status = m.GetTaskRequest(project_name="faces", task_id=merge.task_id, task_type="FigureClustersMerging")
    while (task := c.get_task(status).body).status == "Running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert task.status == "Succeeded", (task.code, task.message)
    merged = clusters_of(c, "life")
    assert set(merged) == {obama} and (merged[obama].face_count, merged[obama].image_count) == (6, 6)
    assert images_of(obama) == {uri(k) for k in [*obama_keys, *biden_keys]}
    assert invariants() == []

    # Deletes shrink the group; deleting its last images removes it (IMM: "When all images that contain the
    # faces in a cluster are deleted, the cluster is also deleted").
    c.delete_file_meta(m.DeleteFileMetaRequest(project_name="faces", dataset_name="life", uri=uri(mirrored)))
    shrunk = c.get_figure_cluster(
        m.GetFigureClusterRequest(project_name="faces", dataset_name="life", object_id=obama)
    ).body.figure_cluster
    assert (shrunk.face_count, shrunk.image_count) == (5, 5) and shrunk.cover.uri != uri(mirrored)
    assert invariants() == []
    c.batch_delete_file_meta(
        m.BatchDeleteFileMetaRequest(
            project_name="faces", dataset_name="life", uris=[uri(k) for k in [*obama_keys, *biden_keys[:2]]]
        )
    )
    assert clusters_of(c, "life") == {}
    assert not images_of(obama) and invariants() == []
