"""An ``up`` interrupted with Ctrl-C (SIGINT) while the clustering task runs, under the real engine: what Pulumi
reports afterwards, and the next ``up`` resuming the same task instead of starting another."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import tasks
from tests.engine.conftest import credentials_config, stack_config
from tests.engine.pulumi_engine import Workspace, interrupt, kill
from tests.engine.stacks import Project

pytestmark = pytest.mark.engine

PROJECT = "imm-faces-cut-faces-project"


def test_interrupted_up_resumes_the_same_task(
    workspace: Workspace,
    engine_emulator: Emulator,
    imm: ImmClient,
    keys: Credentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The emulator's clustering waits at a gate: a task that runs as long as the test needs. The gate opens once
    # the second `up` has asked IMM for the stack's running task (ListTasks), so a resume can be told apart
    # from a second task.
    started, gate, armed, looked = (threading.Event() for _ in range(4))
    run_clustering, list_tasks = (
        engine_emulator.jobs.tasks._run_clustering,
        engine_emulator.service.handlers["ListTasks"],
    )

    def gated(*args: Any) -> None:
        started.set()
        gate.wait(300)
        run_clustering(*args)

    def watched(request: Any) -> Any:
        if armed.is_set():
            looked.set()
        return list_tasks(request)

    monkeypatch.setattr(engine_emulator.jobs.tasks, "_run_clustering", gated)
    monkeypatch.setitem(engine_emulator.service.handlers, "ListTasks", watched)
    try:
        interrupted_then_resumed(workspace, imm, keys, tmp_path, engine_emulator, started, gate, armed, looked)
    finally:
        gate.set()  # never leave the emulator's task worker waiting (its shutdown joins it)


def interrupted_then_resumed(
    workspace: Workspace,
    imm: ImmClient,
    keys: Credentials,
    tmp_path: Path,
    engine_emulator: Emulator,
    started: threading.Event,
    gate: threading.Event,
    armed: threading.Event,
    looked: threading.Event,
) -> None:
    project = Project(workspace, tmp_path / "program")
    stack = project.stack(
        "cut", stack_config(engine_emulator, **{"imm-faces:clusteringTimeout": 300}), credentials_config(keys)
    )
    log = tmp_path / "up.log"
    proc = workspace.start("up", "--yes", "--skip-preview", "--stack", "cut", cwd=project.folder, log=log)
    try:
        assert started.wait(180), log.read_text()
        (first_task,) = running(imm)
        # Ctrl-C: Pulumi cancels, waiting for the step under way (the dynamic-provider host does nothing on Cancel)
        interrupt(proc)
        deadline = time.monotonic() + 60
        while "^C received; cancelling" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.2)
        time.sleep(2)
        assert proc.poll() is None, log.read_text()
        # Ctrl-C again: terminate now, the create left pending
        interrupt(proc)
        proc.wait(60)
    finally:
        kill(proc)
    said = log.read_text()
    assert proc.returncode != 0 and "^C received; terminating" in said, said
    assert "faces-clustering creating (interrupted)" in said, said
    pending = stack.export()["deployment"].get("pending_operations") or []
    assert [(op["type"], op["resource"]["urn"].rsplit("::", 1)[1]) for op in pending] == [
        ("creating", "faces-clustering")
    ]
    # `pulumi cancel` on the file backend: it clears the interrupted update's claim on the stack
    cancel = stack.pulumi("cancel", "--yes")
    assert "The currently running update for 'cut' has been canceled!" in cancel.stdout, cancel.stdout

    # the next up: Pulumi reports the pending create, and the provider waits for the task the first one started
    armed.set()
    opener = threading.Thread(target=lambda: looked.wait(300) and gate.set(), daemon=True)
    opener.start()
    second = stack.up()
    reported = second.stdout + second.stderr
    assert "Attempting to deploy or update resources with 1 pending operations" in reported, reported
    assert "faces-clustering, interrupted while creating" in reported, reported
    assert stack.outputs()["clustering_task_id"] == first_task
    listed = imm.call(tasks.ListTasks, project_name=PROJECT, task_type="FaceClustering").tasks or []
    assert [(t.task_id, t.status) for t in listed] == [(first_task, tasks.TASK_SUCCEEDED)]
    # the pending create stays recorded ("`pulumi refresh` will need to be run interactively to clear pending
    # CREATE operations", the warning says) until a refresh clears it; the task stays in the stack
    assert stack.export()["deployment"].get("pending_operations")
    stack.pulumi("refresh", "--yes", "--clear-pending-creates")
    assert not stack.export()["deployment"].get("pending_operations")
    assert stack.by_name()["faces-clustering"]["id"] == f"{PROJECT}/{first_task}"
    stack.preview("--expect-no-changes")


def running(imm: ImmClient) -> list[str]:
    listed = imm.call(tasks.ListTasks, project_name=PROJECT, task_type="FaceClustering").tasks or []
    return [t.task_id or "" for t in listed if t.status == tasks.TASK_RUNNING]
