"""Restart durability: acknowledged writes survive SIGKILL of the `imm-faces emulator` process.

What this proves: a write is committed before it is acknowledged and handed to the OS, and queued work is resumed.
Not that it reached the disk: the page cache outlives a killed process, so `synchronous=OFF` passes here too;
`test_power_loss.py` checks that every acknowledged write was synced.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import datasets, files, projects
from tests.conftest import CREDS
from tests.fakes import write_photo
from tests.processes import emulator_process

DATASETS = 25


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db, oss_root = tmp_path / "state.db", tmp_path / "oss"
    photo = write_photo(oss_root, "photos", "kept.png", [])
    with emulator_process(db, oss_root) as (proc, endpoint), ImmClient(endpoint=endpoint, credentials=CREDS) as c:
        c.call(projects.CreateProject, project_name="durable", description="before")
        c.call(projects.UpdateProject, project_name="durable", description="after")
        for i in range(DATASETS):
            c.call(datasets.CreateDataset, project_name="durable", dataset_name=f"ds-{i}", description=f"n{i}")
        c.call(files.IndexFileMeta, project_name="durable", dataset_name="ds-0", file={"URI": photo})
        # The last write: acknowledged, then the process is killed at once, with no chance to flush or close.
        c.call(datasets.UpdateDataset, project_name="durable", dataset_name=f"ds-{DATASETS - 1}", description="last")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

    with emulator_process(db, oss_root) as (_, endpoint), ImmClient(endpoint=endpoint, credentials=CREDS) as c:
        assert c.call(projects.GetProject, project_name="durable").project.description == "after"
        names = {d.dataset_name: d.description for d in c.paginate(datasets.ListDatasets, project_name="durable")}
        expected = {f"ds-{i}": f"n{i}" for i in range(DATASETS)} | {f"ds-{DATASETS - 1}": "last"}
        assert names == expected
        # The indexing job that was queued before the kill either finished or is picked up again.
        meta = _wait_file(c, photo)
        assert meta.uri == photo


def _wait_file(client: ImmClient, uri: str) -> files.File:
    import time

    deadline = time.monotonic() + 30
    while True:
        try:
            return client.call(files.GetFileMeta, project_name="durable", dataset_name="ds-0", uri=uri).files[0]
        except ImmError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_unfinished_work_is_resumed_on_restart(tmp_path: Path) -> None:
    """A crash between acknowledging IndexFileMeta/CreateFigureClusteringTask and finishing them loses nothing:
    the next process finds the queued index jobs and the Running task in the store and completes them."""
    from imm_faces.emulator.server import Emulator
    from imm_faces.emulator.store import Store, TaskKey
    from imm_faces.runtime.operations import figure_clusters, tasks
    from imm_faces.runtime.waiters import wait_for_task
    from tests.fakes import SidecarAnalyzer

    db, oss_root = tmp_path / "state.db", tmp_path / "oss"
    photos = [write_photo(oss_root, "photos", f"queued-{i}.png", [{"person": 1, "quality": 0.9}]) for i in range(3)]
    with (
        Emulator(db=db, oss_root=oss_root, analyzer=SidecarAnalyzer(oss_root)) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=CREDS) as c,
    ):
        c.call(projects.CreateProject, project_name="durable")
        c.call(datasets.CreateDataset, project_name="durable", dataset_name="ds-0")
    # What a killed process leaves behind: the queued jobs and the task row, written before it answered.
    store = Store(db)
    with store.tx() as tx:
        tx.enqueue("durable", "ds-0", [{"URI": photo} for photo in photos])
        definition = '{"ProjectName": "durable", "DatasetName": "ds-0"}'
        tx.put(
            TaskKey("durable", "FaceClustering-left-running"),
            {
                "TaskId": "FaceClustering-left-running",
                "TaskType": "FaceClustering",
                "Status": "Running",
                "ProjectName": "durable",
                "TaskRequestDefinition": definition,
            },
        )
    store.close()
    with (
        Emulator(db=db, oss_root=oss_root, analyzer=SidecarAnalyzer(oss_root)) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=CREDS) as c,
    ):
        task = wait_for_task(c, "durable", "FaceClustering-left-running", timeout=30, interval=0.05)
        assert task.status == tasks.TASK_SUCCEEDED
        assert all(len(_wait_file(c, photo).figures or []) == 1 for photo in photos)
        with emu.store.tx() as tx:
            assert tx.queued() == []
        # The resumed task clustered what was indexed when it ran (as IMM's tasks do); the next one groups all.
        again = c.call(tasks.CreateFigureClusteringTask, project_name="durable", dataset_name="ds-0").task_id or ""
        assert wait_for_task(c, "durable", again, timeout=30, interval=0.05).status == tasks.TASK_SUCCEEDED
        (group,) = c.paginate(figure_clusters.QueryFigureClusters, project_name="durable", dataset_name="ds-0")
        assert group.face_count == 3
        assert all((_wait_file(c, photo).figures or [])[0].figure_cluster_id == group.object_id for photo in photos)
