"""`imm-faces emulator` stops the same way on SIGTERM (a service manager, `kill`) as on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import projects
from tests.conftest import CREDS
from tests.processes import emulator_process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_the_state_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    db, oss_root = tmp_path / "state.db", tmp_path / "oss"
    oss_root.mkdir()
    with emulator_process(db, oss_root) as (proc, endpoint):
        with ImmClient(endpoint=endpoint, credentials=CREDS) as imm:
            imm.call(projects.CreateProject, project_name="kept")
        proc.send_signal(sig)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 20 s after {sig.name}")
    assert code == 130  # interrupted, as `imm-faces` reports Ctrl-C; not killed by the signal (-15)
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # closed: the state is whole in the --db file alone
    with emulator_process(db, oss_root) as (_, endpoint), ImmClient(endpoint=endpoint, credentials=CREDS) as imm:
        assert [p.project_name for p in imm.paginate(projects.ListProjects)] == ["kept"]
