"""The real Pulumi engine for tests: where it is, and an offline workspace to run it in.

Where the engine comes from, first found wins:

1. ``IMM_FACES_PULUMI_ENGINE``: a folder holding ``pulumi`` and its language hosts (what CI exports);
2. the cache of ``scripts/pulumi-engine.sh`` (asked with ``--check``: nothing is built here);
3. a ``pulumi`` v3.139.0 or later on PATH, with ``pulumi-language-python`` beside it or on PATH.

Never a stand-in: each is a CLI built from Pulumi's own Go modules or the user's own Pulumi install.
:func:`locate` gives the :class:`Engine` or, when there is none, the reason (which the ``engine`` marker's skip,
or in CI its failure, shows).

:class:`Workspace` runs it fully offline: a ``file://`` backend and ``PULUMI_HOME`` in a temporary folder, the
passphrase secrets provider, no update check, no plugin download, and no Alibaba Cloud or Pulumi credentials of
the person running the tests in its environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

# One finder for the rehearsal and the tests: the override variable, the script's cache, a `pulumi` on PATH.
from imm_faces.components.rehearsal.real_engine import ENGINE_SCRIPT, Engine, locate, offline_environment

__all__ = [
    "ENGINE_SCRIPT",
    "REPO",
    "TOOLS",
    "Engine",
    "Workspace",
    "in_ci",
    "interrupt",
    "kill",
    "locate",
    "offline_env",
]

TOOLS = (
    "pulumi",
    "pulumi-language-python",
    "pulumi-language-python-exec",
    "pulumi-resource-pulumi-python",
    "pulumi-language-nodejs",
    "pulumi-resource-pulumi-nodejs",
    "pulumi-language-yaml",
)
"""Everything scripts/pulumi-engine.sh provides."""
REPO = ENGINE_SCRIPT.parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def offline_env(engine: Engine, root: Path, python: str = sys.executable) -> dict[str, str]:
    """The environment the engine runs in: offline, isolated under ``root`` (``home``, a ``file://`` backend in
    ``state``), no credentials of the person running the tests (the rehearsal's, :func:`offline_environment`)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_"))}
    return {**offline_environment(engine, root, base), "PULUMI_PYTHON_CMD": python}


class Workspace:
    """One offline Pulumi home and ``file://`` backend (any number of projects and stacks) under ``root``."""

    def __init__(self, engine: Engine, root: Path, python: str = sys.executable) -> None:
        self.engine, self.root = engine, root
        for folder in ("home", "state"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.env = offline_env(engine, root, python)

    def run(
        self,
        *args: str,
        cwd: Path,
        check: bool = True,
        timeout: float = 600,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``pulumi ARGS --non-interactive`` in ``cwd``; with ``check``, a failure raises with its output."""
        cmd = [str(self.engine.pulumi), *args, "--non-interactive"]
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env={**self.env, **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            out = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            raise AssertionError(f"pulumi {' '.join(args)} exited {proc.returncode}\n{out}")
        return proc

    def start(self, *args: str, cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``pulumi ARGS`` in the background (its own process group), output to ``log``; stop it by PID."""
        with log.open("ab") as out:
            return subprocess.Popen(
                [str(self.engine.pulumi), *args, "--non-interactive"],
                cwd=cwd,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


def interrupt(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for a :meth:`Workspace.start`ed CLI: SIGINT to it alone (its children get the engine's cancel)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)


def kill(proc: subprocess.Popen[Any]) -> None:
    """Stop a started CLI and its process group by PID, if still running."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
