"""Bindings, indexing and tasks never wait on a pool they run on; tasks do not wait for bindings.

The emulators here run with two indexing workers (the machine this must hold on has two cores) and an
analyzer that takes a little time per photo, so scans, index jobs and tasks really overlap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imm_faces.emulator import binding_scanner
from imm_faces.emulator.analysis import ImageAnalysis
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import bindings, datasets, figure_clusters, files, projects, query, tasks
from imm_faces.runtime.waiters import wait_for_task
from tests.conftest import CREDS
from tests.fakes import SidecarAnalyzer, write_photo

PROJECT, BUCKET = "binds", "photos"


class SlowAnalyzer(SidecarAnalyzer):
    """The sidecar analyzer, taking ``delay`` seconds per file (as real face analysis takes time)."""

    def __init__(self, root: Path, delay: float) -> None:
        super().__init__(root)
        self.delay = delay

    def analyze(self, data: bytes, filename: str) -> ImageAnalysis:
        time.sleep(self.delay)
        return super().analyze(data, filename)


@contextmanager
def running(oss_root: Path, db: Path, delay: float, workers: int = 2) -> Iterator[tuple[Emulator, ImmClient]]:
    with (
        Emulator(oss_root=oss_root, db=db, analyzer=SlowAnalyzer(oss_root, delay), workers=workers) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=CREDS) as client,
    ):
        yield emu, client


def until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still waiting after {timeout:g}s: {what}"
        time.sleep(0.05)


def phase(client: ImmClient, dataset: str, uri: str) -> tuple[str | None, str | None]:
    b = client.call(bindings.GetBinding, project_name=PROJECT, dataset_name=dataset, uri=uri).binding
    assert b is not None
    return b.phase, b.state


def file_count(client: ImmClient, dataset: str) -> int:
    return client.call(query.SimpleQuery, project_name=PROJECT, dataset_name=dataset).total_hits or 0


def people(oss_root: Path, prefix: str, person: int, photos: int = 3) -> None:
    """``photos`` photos of one person under ``prefix`` (enough good faces to start a face group)."""
    for i in range(photos):
        write_photo(oss_root, BUCKET, f"{prefix}p{person}-{i}.png", [{"person": person}])


def cluster(client: ImmClient, dataset: str) -> list[int]:
    task_id = client.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name=dataset).task_id
    assert task_id and wait_for_task(client, PROJECT, task_id, timeout=30, interval=0.05).status == "Succeeded"
    found = client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=dataset)
    return sorted(c.face_count or 0 for c in found)


def test_eight_bindings_on_one_dataset_and_eight_across_datasets_all_finish(tmp_path: Path) -> None:
    oss_root = tmp_path / "oss"
    for i in range(16):
        people(oss_root, f"set{i}/", person=i)
    with running(oss_root, tmp_path / "imm.db", delay=0.01) as (_, client):
        client.call(projects.CreateProject, project_name=PROJECT)
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="shared")
        bound = [("shared", f"oss://{BUCKET}/set{i}/") for i in range(8)]
        for i in range(8, 16):
            client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=f"own-{i}")
            bound.append((f"own-{i}", f"oss://{BUCKET}/set{i}/"))
        for dataset, uri in bound:
            client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name=dataset, uri=uri)
        # Before the fix, three bindings sat in FullScanning for good: each scan held an indexing worker
        # while waiting for index jobs queued behind it on the same pool.
        until(
            "every binding leaves FullScanning",
            lambda: all(phase(client, d, u) == ("IncrementalScanning", "Running") for d, u in bound),
        )
        # A binding ends its full scan only once what it found is indexed (3 photos + 3 sidecar files each).
        assert file_count(client, "shared") == 8 * 6
        assert cluster(client, "shared") == [3] * 8
        assert [cluster(client, f"own-{i}") for i in range(8, 16)] == [[3]] * 8


def test_a_restart_in_the_middle_of_a_full_scan_resumes_it(tmp_path: Path) -> None:
    oss_root, db = tmp_path / "oss", tmp_path / "imm.db"
    people(oss_root, "big/", person=1, photos=8)
    uri = f"oss://{BUCKET}/big/"
    with running(oss_root, db, delay=0.3, workers=1) as (_, client):
        client.call(projects.CreateProject, project_name=PROJECT)
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="d")
        client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="d", uri=uri)
        until("a first file is indexed", lambda: file_count(client, "d") >= 1)
        assert phase(client, "d", uri)[0] == "FullScanning"
        before = file_count(client, "d")
    assert before < 16  # stopped mid-scan: the rest of the queue is in the database
    with running(oss_root, db, delay=0.0) as (_, client):
        until("the resumed scan ends", lambda: phase(client, "d", uri) == ("IncrementalScanning", "Running"))
        assert file_count(client, "d") == 16
        assert cluster(client, "d") == [8]


def test_a_clustering_task_does_not_wait_for_a_binding(tmp_path: Path) -> None:
    oss_root = tmp_path / "oss"
    people(oss_root, "slow/", person=1, photos=3)
    uri = f"oss://{BUCKET}/slow/"
    with running(oss_root, tmp_path / "imm.db", delay=0.15, workers=1) as (_, client):
        client.call(projects.CreateProject, project_name=PROJECT)
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="d")
        client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="d", uri=uri)
        task_id = client.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name="d").task_id
        assert task_id and wait_for_task(client, PROJECT, task_id, timeout=30, interval=0.05).status == "Succeeded"
        # The task ended while the binding was still scanning: it clustered what was indexed (not enough
        # faces for a group yet), as IMM's does; a later task picks up the rest.
        assert phase(client, "d", uri)[0] == "FullScanning"
        assert cluster(client, "d") == []
        until("the scan ends", lambda: phase(client, "d", uri)[0] == "IncrementalScanning")
        assert cluster(client, "d") == [3]


def test_files_leaving_a_bound_prefix_leave_the_dataset_and_their_clusters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(binding_scanner, "SCAN_INTERVAL", 0.1)
    oss_root = tmp_path / "oss"
    people(oss_root, "fam/", person=1, photos=4)
    uri = f"oss://{BUCKET}/fam/"
    with running(oss_root, tmp_path / "imm.db", delay=0.0) as (_, client):
        client.call(projects.CreateProject, project_name=PROJECT)
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="d")
        client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="d", uri=uri)
        until("the scan ends", lambda: phase(client, "d", uri)[0] == "IncrementalScanning")
        assert cluster(client, "d") == [4]
        (oss_root / BUCKET / "fam" / "p1-0.png").unlink()
        (oss_root / BUCKET / "fam" / "p1-1.png").rename(oss_root / BUCKET / "elsewhere.png")
        until("the incremental scan removes both", lambda: file_count(client, "d") == 6)
        (remaining,) = client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name="d")
        assert (remaining.face_count, remaining.image_count) == (2, 2)
        for key in ("p1-2.png", "p1-3.png"):
            (oss_root / BUCKET / "fam" / key).unlink()
        until(
            "the cluster goes with its last image",
            lambda: (
                not list(client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name="d"))
            ),
        )
        assert file_count(client, "d") == 4  # the four sidecar files
        # A file that comes back is indexed again.
        (oss_root / BUCKET / "elsewhere.png").rename(oss_root / BUCKET / "fam" / "p1-1.png")
        until("the returning file is indexed", lambda: file_count(client, "d") == 5)


def test_a_delete_cancels_an_index_job_still_queued(tmp_path: Path) -> None:
    oss_root = tmp_path / "oss"
    uris = [write_photo(oss_root, BUCKET, f"q/{i}.png", [{"person": 1}]) for i in range(3)]
    with running(oss_root, tmp_path / "imm.db", delay=0.2, workers=1) as (emu, client):
        client.call(projects.CreateProject, project_name=PROJECT)
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="d")
        client.call(files.BatchIndexFileMeta, project_name=PROJECT, dataset_name="d", files=[{"URI": u} for u in uris])
        client.call(files.DeleteFileMeta, project_name=PROJECT, dataset_name="d", uri=uris[2])
        assert emu.jobs.wait_idle(PROJECT, "d", timeout=30)
        got = client.call(query.SimpleQuery, project_name=PROJECT, dataset_name="d", with_fields=["URI"])
        assert sorted(f.uri or "" for f in got.files or []) == uris[:2]


def test_a_merging_task_left_running_is_resumed_on_restart(tmp_path: Path) -> None:
    """A merge acknowledged but not done when the process died (its task row says Running) is done by the next."""
    from imm_faces.emulator.store import Store, TaskKey

    oss_root, db = tmp_path / "oss", tmp_path / "imm.db"
    people(oss_root, "a/", person=1)
    people(oss_root, "b/", person=2)
    with running(oss_root, db, delay=0.0) as (_, client):
        client.call(projects.CreateProject, project_name=PROJECT)
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="d")
        client.call(
            files.BatchIndexFileMeta,
            project_name=PROJECT,
            dataset_name="d",
            files=[{"URI": f"oss://{BUCKET}/{k}/p{p}-{i}.png"} for k, p in (("a", 1), ("b", 2)) for i in range(3)],
        )
        until("six photos are indexed", lambda: file_count(client, "d") == 6)
        assert cluster(client, "d") == [3, 3]
        source, target = sorted(
            c.object_id or ""
            for c in client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name="d")
        )
    store = Store(db)
    request = tasks.CreateFigureClustersMergingTaskRequest(
        project_name=PROJECT, dataset_name="d", from_=source, to=target
    )
    task_id = "FigureClustersMerging-left"
    row = {
        "TaskId": task_id,
        "TaskType": tasks.FIGURE_CLUSTERS_MERGING,
        "Status": "Running",
        "ProjectName": PROJECT,
        "TaskRequestDefinition": json.dumps(request.to_params()),
    }
    with store.tx() as tx:  # what CreateFigureClustersMergingTask had written before the process was killed
        tx.put(TaskKey(PROJECT, task_id), row)
    store.close()
    with running(oss_root, db, delay=0.0) as (_, client):
        done = wait_for_task(
            client, PROJECT, task_id, timeout=30, interval=0.05, task_type=tasks.FIGURE_CLUSTERS_MERGING
        )
        assert done.status == "Succeeded"
        (merged,) = client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name="d")
        assert (merged.object_id, merged.face_count) == (target, 6)


def test_a_full_scan_killed_midway_resumes_in_the_next_process(tmp_path: Path) -> None:
    """SIGKILL while a binding is in its first full scan: the next process on the same database finishes it."""
    import os
    import signal

    from tests.processes import emulator_process

    oss_root, db = tmp_path / "oss", tmp_path / "imm.db"
    folder = oss_root / BUCKET / "many"
    folder.mkdir(parents=True)
    for i in range(150):
        (folder / f"{i:03}.txt").write_text(f"note {i}")
    uri = f"oss://{BUCKET}/many/"
    with emulator_process(db, oss_root) as (proc, endpoint), ImmClient(endpoint=endpoint, credentials=CREDS) as c:
        c.call(projects.CreateProject, project_name=PROJECT)
        c.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="d")
        c.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="d", uri=uri)
        assert phase(c, "d", uri)[0] == "FullScanning"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    with emulator_process(db, oss_root) as (_, endpoint), ImmClient(endpoint=endpoint, credentials=CREDS) as c:
        until("the scan ends in the new process", lambda: phase(c, "d", uri) == ("IncrementalScanning", "Running"))
        assert file_count(c, "d") == 150


def test_a_deleted_binding_is_no_longer_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binding_scanner, "SCAN_INTERVAL", 0.05)
    oss_root = tmp_path / "oss"
    people(oss_root, "x/", person=1, photos=1)
    uri = f"oss://{BUCKET}/x/"
    with running(oss_root, tmp_path / "imm.db", delay=0.0) as (emu, client):
        client.call(projects.CreateProject, project_name=PROJECT)
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="d")
        client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="d", uri=uri)
        until("the scan ends", lambda: phase(client, "d", uri)[0] == "IncrementalScanning")
        people(oss_root, "x/", person=2, photos=1)
        until("a new object is indexed", lambda: file_count(client, "d") == 4)
        client.call(bindings.DeleteBinding, project_name=PROJECT, dataset_name="d", uri=uri)
        people(oss_root, "x/", person=3, photos=1)
        (oss_root / BUCKET / "x" / "p1-0.png").unlink()
        time.sleep(0.5)  # ten scan intervals
        assert emu.jobs.wait_idle(PROJECT, "d", timeout=10)
        assert file_count(client, "d") == 4  # neither the new object indexed nor the removed one forgotten
