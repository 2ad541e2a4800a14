"""Child processes the tests start and stop by PID: `imm-faces emulator` on a loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imm_faces.emulator.server import free_port, wait_ready


@contextmanager
def emulator_process(
    db: Path, oss_root: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`imm-faces emulator` in a child process (with ``env`` added to its environment); killed by PID (SIGKILL)
    on the way out if still alive."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "imm_faces.runtime.cli.main", "emulator", "--port", str(port), "--db", str(db),
         "--oss-root", str(oss_root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_ready(endpoint, timeout=60)
        yield proc, endpoint
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
