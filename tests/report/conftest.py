"""A deployed dataset whose photos are drawn: each face (where the sidecar analyzer says it is) is a coloured
disc, so a test can tell from pixels whether a crop or a box landed on it. One photo is stored turned a
quarter with an EXIF Orientation that turns it back, and holds the best face of its person (the cover)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.models.figure_cluster import FigureClusterForReq
from imm_faces.runtime.operations import datasets, figure_clusters, files, projects, tasks
from imm_faces.runtime.waiters import wait_for_task
from tests.conftest import CREDS
from tests.helpers import BUCKET, DATASET, PROJECT, cluster_ids, outputs_file, wait_indexed

FACE_COLOURS = {1: (250, 200, 40), 2: (150, 60, 200)}  # person -> the colour of their face disc
SIZE = (360, 240)
PHOTOS: dict[str, list[dict[str, Any]]] = {
    "alice-1.png": [{"person": 1, "quality": 0.7, "age": 30}],
    "alice-2.jpg": [{"person": 1, "quality": 0.9, "age": 34}],
    "alice-3.png": [{"person": 1, "quality": 0.85, "age": 31}],
    "bob-1.png": [{"person": 2, "quality": 0.85, "age": 50, "gender": "male"}],
    "bob-rotated.jpg": [{"person": 2, "quality": 0.97, "age": 51, "gender": "male"}],
    "both.png": [
        {"person": 1, "quality": 0.95, "age": 32},
        {"person": 2, "quality": 0.82, "age": 52, "gender": "male"},
    ],
    "landscape.png": [],
}
ROTATED = "bob-rotated.jpg"


def face_box(index: int) -> tuple[int, int, int, int]:
    """Where tests.fakes.SidecarAnalyzer puts face ``index`` (upright pixels): left, top, width, height."""
    return 10 + 120 * index, 5, 100, 100


def draw(key: str, faces: list[dict[str, Any]]) -> Image.Image:
    img = Image.new("RGB", SIZE, (60 + len(key) * 9 % 120, 110, 150))
    pen = ImageDraw.Draw(img)
    pen.rectangle((0, 170, SIZE[0], SIZE[1]), fill=(70, 120, 70))
    for i, face in enumerate(faces):
        left, top, w, h = face_box(i)
        pen.ellipse((left + 8, top + 4, left + w - 8, top + h - 4), fill=FACE_COLOURS[face["person"]])
        for eye in (left + 34, left + 62):
            pen.ellipse((eye - 6, top + 36, eye + 6, top + 48), fill=(30, 30, 30))
        pen.arc((left + 30, top + 50, left + 70, top + 80), 20, 160, fill=(120, 30, 30), width=4)
    return img


def write_photos(root: Path) -> list[str]:
    uris = []
    for key, faces in PHOTOS.items():
        path = root / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        img = draw(key, faces)
        buf = io.BytesIO()
        if key == ROTATED:
            exif = Image.Exif()
            exif[0x0112] = 6  # "turn 90 degrees clockwise to view": stored turned a quarter anticlockwise
            img.transpose(Image.Transpose.ROTATE_90).save(buf, format="JPEG", quality=92, exif=exif)
        elif key.endswith(".jpg"):
            img.save(buf, format="JPEG", quality=92)
        else:
            img.save(buf, format="PNG")
        path.write_bytes(buf.getvalue())
        (path.parent / (key + ".faces.json")).write_text(json.dumps(faces))
        uris.append(f"oss://{BUCKET}/{key}")
    return uris


def deploy_drawn(client: ImmClient, oss_root: Path) -> str:
    client.call(projects.CreateProject, project_name=PROJECT)
    client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
    uris = write_photos(oss_root)
    client.call(files.BatchIndexFileMeta, project_name=PROJECT, dataset_name=DATASET, files=[{"URI": u} for u in uris])
    wait_indexed(client, PROJECT, DATASET, len(uris))
    task_id = client.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name=DATASET).task_id
    assert task_id
    assert wait_for_task(client, PROJECT, task_id, timeout=30, interval=0.05).status == tasks.TASK_SUCCEEDED
    return task_id


def person_cluster(client: ImmClient, person: int) -> str:
    """The cluster holding ``person``'s faces (found by the face colour's file names)."""
    wanted = {k for k, faces in PHOTOS.items() if faces and all(f["person"] == person for f in faces)}
    for object_id in cluster_ids(client):
        got = client.call(
            figure_clusters.GetFigureCluster, project_name=PROJECT, dataset_name=DATASET, object_id=object_id
        ).figure_cluster
        assert got is not None and got.cover is not None
        if (got.cover.uri or "").rsplit("/", 1)[-1] in wanted | {"both.png"} and got.gender == (
            "male" if person == 2 else "female"
        ):
            return object_id
    raise AssertionError(f"no cluster for person {person}")


class Drawn:
    def __init__(self, emulator: Emulator, client: ImmClient, outputs: Path, alice: str, bob: str) -> None:
        self.emulator, self.client, self.outputs, self.alice, self.bob = emulator, client, outputs, alice, bob


@pytest.fixture
def drawn(emulator: Emulator, oss_root: Path, tmp_path: Path) -> Iterator[Drawn]:
    with ImmClient(endpoint=emulator.endpoint, credentials=CREDS) as client:
        task_id = deploy_drawn(client, oss_root)
        alice, bob = person_cluster(client, 1), person_cluster(client, 2)
        named = FigureClusterForReq(object_id=alice, name="Alice <b>&", custom_id="emp-0042")
        client.call(
            figure_clusters.UpdateFigureCluster, project_name=PROJECT, dataset_name=DATASET, figure_cluster=named
        )
        yield Drawn(emulator, client, outputs_file(tmp_path, emulator.endpoint, task_id), alice, bob)
