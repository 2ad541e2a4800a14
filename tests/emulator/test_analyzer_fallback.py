"""Without the vision extra the emulator still indexes, and a clustering task says face analysis is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from imm_faces.emulator.analysis import MetadataAnalyzer, default_analyzer
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import datasets, files, projects, tasks
from imm_faces.runtime.waiters import wait_for_task
from tests.conftest import CREDS
from tests.fakes import write_photo
from tests.helpers import wait_indexed


def test_default_analyzer_without_the_vision_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imm_faces.emulator.vision", None)  # as if dlib were not installed
    assert isinstance(default_analyzer(), MetadataAnalyzer)


def test_indexing_works_and_the_task_fails_clearly(tmp_path: Path) -> None:
    uri = write_photo(tmp_path, "photos", "a.png", [{"person": 1}])
    with (
        Emulator(oss_root=tmp_path, analyzer=MetadataAnalyzer()) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=CREDS) as c,
    ):
        c.call(projects.CreateProject, project_name="p")
        c.call(datasets.CreateDataset, project_name="p", dataset_name="d")
        c.call(files.IndexFileMeta, project_name="p", dataset_name="d", file={"URI": uri})
        wait_indexed(c, "p", "d", 1)  # a task clusters what is indexed when it runs
        task_id = c.call(tasks.CreateFigureClusteringTask, project_name="p", dataset_name="d").task_id or ""
        task = wait_for_task(c, "p", task_id, timeout=30, interval=0.05)
        assert (task.status, task.code) == ("Failed", "FaceAnalysisUnavailable")
        assert "pip install 'imm-faces[vision]'" in (task.message or "")
        meta = c.call(files.GetFileMeta, project_name="p", dataset_name="d", uri=uri).files
        assert meta and meta[0].image_width == 64 and not meta[0].figures
