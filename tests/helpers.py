"""A deployed-looking dataset in the emulator: project, dataset, photos of two people and one empty photo."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import datasets, figure_clusters, files, projects, query, tasks
from imm_faces.runtime.waiters import wait_for_task

if TYPE_CHECKING:
    from imm_faces.emulator.store import Store

PROJECT, DATASET, BUCKET = "faces-project", "faces-dataset", "photos"


def deploy(client: ImmClient, oss_root: Path, photos: dict[str, list[dict[str, object]]]) -> str:
    """Create project+dataset, index ``photos`` ({key: faces}), run clustering; return the task id."""
    from tests.fakes import write_photo

    client.call(projects.CreateProject, project_name=PROJECT)
    client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
    uris = [write_photo(oss_root, BUCKET, key, faces) for key, faces in photos.items()]
    client.call(files.BatchIndexFileMeta, project_name=PROJECT, dataset_name=DATASET, files=[{"URI": u} for u in uris])
    wait_indexed(client, PROJECT, DATASET, len(uris))  # a task clusters what is indexed when it runs, as IMM's
    task_id = client.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name=DATASET).task_id
    assert task_id
    assert wait_for_task(client, PROJECT, task_id, timeout=30, interval=0.05).status == tasks.TASK_SUCCEEDED
    return task_id


def wait_indexed(client: ImmClient, project: str, dataset: str, count: int, timeout: float = 30) -> None:
    """Wait until the dataset holds ``count`` files (SimpleQuery's TotalHits): indexing is asynchronous."""
    deadline = time.monotonic() + timeout
    while (client.call(query.SimpleQuery, project_name=project, dataset_name=dataset).total_hits or 0) < count:
        assert time.monotonic() < deadline, f"{project}/{dataset}: fewer than {count} files after {timeout:g}s"
        time.sleep(0.02)


TWO_PEOPLE = {
    # IMM starts a face group only from three "good" faces of one person (the fakes' faces are good by default:
    # 100 px, frontal, quality 0.9); alice-1 (quality 0.7) is not good and joins Alice's group once it exists.
    "alice-1.png": [{"person": 1, "quality": 0.7, "age": 30}],
    "alice-2.png": [{"person": 1, "quality": 0.9, "age": 34}],
    "alice-3.png": [{"person": 1, "quality": 0.85, "age": 31}],
    "bob-1.png": [{"person": 2, "quality": 0.85, "age": 50, "gender": "male"}],
    "bob-2.png": [{"person": 2, "quality": 0.9, "age": 51, "gender": "male"}],
    "both.png": [
        {"person": 1, "quality": 0.95, "age": 32},
        {"person": 2, "quality": 0.82, "age": 52, "gender": "male"},
    ],
    "landscape.png": [],
}


def outputs_file(tmp: Path, endpoint: str, task_id: str | None) -> Path:
    path = tmp / "outputs.json"
    doc = {"project_name": PROJECT, "dataset_name": DATASET, "region": "cn-hangzhou", "endpoint": endpoint}
    if task_id:
        doc["clustering_task_id"] = task_id
    path.write_text(json.dumps(doc))
    return path


def cluster_ids(client: ImmClient) -> list[str]:
    return [
        c.object_id
        for c in client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=DATASET)
    ]


def dataset_store(db: str | Path = ":memory:", project: str = "p", dataset: str = "d") -> Store:
    """An emulator store holding one project and its dataset: the start of every test of the store-level rules
    (figures, clustering, cluster views, SimpleQuery's reads)."""
    from imm_faces.emulator.store import DatasetKey, ProjectKey, Store

    store = Store(db)
    with store.tx() as tx:
        tx.put(ProjectKey(project), {"ProjectName": project})
        tx.put(DatasetKey(project, dataset), {"ProjectName": project, "DatasetName": dataset})
    return store
