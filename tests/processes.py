"""Child processes the tests and benchmarks start and stop by PID: `imm-faces emulator` on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imm_faces.emulator.server import wait_ready

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
EMULATOR_COMMAND = (sys.executable, "-m", "imm_faces.runtime.cli.main", "emulator")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def loopback_only() -> None:
    """Drop proxy settings: every server here is on loopback, and the official SDK honours proxies."""
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc): what a benchmark's server used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def emulator_process(
    db: Path, oss_root: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`imm-faces emulator` in a child process (with ``env`` added to its environment); killed by PID (SIGKILL)
    on the way out if still alive. Its log goes to ``<db>.log`` (a pipe nobody reads would stall it once full)."""
    port = free_port()
    with db.with_name(db.name + ".log").open("ab") as log:
        proc = subprocess.Popen(
            [*EMULATOR_COMMAND, "--port", str(port), "--db", str(db), "--oss-root", str(oss_root)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, **(env or {})},
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_ready(endpoint, timeout=60)
        yield proc, endpoint
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def without_pulumi_engine(base: dict[str, str], empty: Path) -> dict[str, str]:
    """``base`` as on a machine without Go or Pulumi: no `pulumi` on PATH, no engine built by
    scripts/pulumi-engine.sh (its cache pointed at the empty folder ``empty``), none named by a variable. (Go
    itself may stay: nothing here builds the engine, `scripts/pulumi-engine.sh --check` only looks.)"""
    path = [p for p in base.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "pulumi").exists()]
    env = {k: v for k, v in base.items() if k != "IMM_FACES_PULUMI_ENGINE"}
    return {**env, "PATH": os.pathsep.join(path), "IMM_FACES_ENGINE_CACHE": str(empty)}
