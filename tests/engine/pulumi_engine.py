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
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = REPO / "scripts" / "pulumi-engine.sh"
OVERRIDE = "IMM_FACES_PULUMI_ENGINE"
MIN_VERSION = (3, 139, 0)
"""The first CLI that passes the stack's config to dynamic providers (pulumi PR #17673)."""
PYTHON_TOOLS = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python")
"""What a Python program with dynamic providers needs on PATH."""
TOOLS = (*PYTHON_TOOLS, "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "pulumi-language-yaml")
"""Everything scripts/pulumi-engine.sh provides."""
PASSPHRASE = "imm-faces-engine-tests"
DROPPED_ENV = re.compile(r"^(ALIBABA_CLOUD_|ALICLOUD_|ALIYUN_|PULUMI_)")
"""The caller's cloud credentials and Pulumi settings never reach the engine."""


@dataclass(frozen=True)
class Engine:
    """A real Pulumi CLI and its language hosts, all in ``bin_dir``."""

    bin_dir: Path
    version: str
    """``pulumi version``, e.g. v3.276.0."""
    source: str
    """Where it was found: the override variable, the script's cache, or PATH."""

    @property
    def pulumi(self) -> Path:
        return self.bin_dir / "pulumi"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _version(pulumi: Path) -> tuple[str, tuple[int, ...]] | str:
    try:
        out = subprocess.run([str(pulumi), "version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{pulumi} version failed ({exc})"
    text = out.stdout.strip()
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        return f"{pulumi} version printed {text!r}"
    return text, tuple(int(part) for part in match.groups())


def _engine_in(folder: Path, source: str) -> Engine | str:
    missing = [tool for tool in PYTHON_TOOLS if not os.access(folder / tool, os.X_OK)]
    if missing:
        return f"{source} {folder} lacks {', '.join(missing)}"
    version = _version(folder / "pulumi")
    if isinstance(version, str):
        return version
    text, parts = version
    if parts < MIN_VERSION:
        return f"{source} {folder}: pulumi {text} is older than v{'.'.join(map(str, MIN_VERSION))}"
    return Engine(folder, text, source)


def _from_path() -> Engine | str:
    """A Pulumi install on PATH: the official one keeps the language hosts and their helpers beside the CLI."""
    found = shutil.which("pulumi")
    if found is None:
        return "no pulumi on PATH"
    return _engine_in(Path(found).resolve().parent, "PATH:")


@functools.cache
def locate() -> Engine | str:
    """The engine (see the module's docstring), or why there is none."""
    override = os.environ.get(OVERRIDE)
    if override:
        return _engine_in(Path(override), f"{OVERRIDE}=")
    reasons = []
    if shutil.which("bash") and ENGINE_SCRIPT.exists():
        proc = subprocess.run(["bash", str(ENGINE_SCRIPT), "--check"], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return _engine_in(Path(proc.stdout.strip()), "scripts/pulumi-engine.sh cache:")
        reasons.append("scripts/pulumi-engine.sh has not built it (run it once: needs Go and the Go module proxy)")
    found = _from_path()
    if isinstance(found, Engine):
        return found
    return "; ".join([*reasons, found])


def offline_env(engine: Engine, home: Path, backend: Path, python: str = sys.executable) -> dict[str, str]:
    """The environment the engine runs in: offline, isolated in ``home``/``backend``, the program run by ``python``."""
    env = {k: v for k, v in os.environ.items() if not DROPPED_ENV.match(k)}
    venv_bin = str(Path(python).parent)
    env.update({
        "PATH": os.pathsep.join([str(engine.bin_dir), venv_bin, env.get("PATH", "")]),
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": backend.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        # A language host built from sdk/v3 v3.79.0 (see scripts/pulumi-engine.sh) does not receive Pulumi.yaml's
        # runtime options from a v3.276 CLI, so it would run `python3`: name the interpreter (what the official
        # host's virtualenv option resolves to). The dynamic-provider launcher reads the same variable.
        "PULUMI_PYTHON_CMD": python,
    })  # fmt: skip
    return env


class Workspace:
    """One offline Pulumi home and ``file://`` backend (any number of projects and stacks) under ``root``."""

    def __init__(self, engine: Engine, root: Path, python: str = sys.executable) -> None:
        self.engine, self.root = engine, root
        self.home, self.backend = root / "pulumi-home", root / "state"
        self.home.mkdir(parents=True, exist_ok=True)
        self.backend.mkdir(parents=True, exist_ok=True)
        self.env = offline_env(engine, self.home, self.backend, python)

    def run(
        self, *args: str, cwd: Path, check: bool = True, timeout: float = 600, stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """``pulumi ARGS --non-interactive`` in ``cwd``; with ``check``, a failure raises with its output."""
        cmd = [str(self.engine.pulumi), *args, "--non-interactive"]
        proc = subprocess.run(cmd, cwd=cwd, env={**self.env, **(env or {})}, input=stdin, capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip
        if check and proc.returncode != 0:
            out = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            raise AssertionError(f"pulumi {' '.join(args)} exited {proc.returncode}\n{out}")
        return proc

    def start(self, *args: str, cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``pulumi ARGS`` in the background (its own process group), output to ``log``; stop it by PID."""
        with log.open("ab") as out:
            return subprocess.Popen([str(self.engine.pulumi), *args, "--non-interactive"], cwd=cwd,
                                    env={**self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip


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
