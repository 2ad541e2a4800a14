"""Pulumi projects and stacks driven through the real CLI (:mod:`tests.engine.pulumi_engine`), for the engine tests.

A :class:`Project` is a folder with a ``Pulumi.yaml`` and a program: by default a copy of this repository's own
(``Pulumi.yaml`` and ``__main__.py``), which imports ``imm_faces`` from the test run's virtualenv exactly as a
user's ``pulumi up`` does from ``.venv`` (the folder gets a ``.venv`` link to it, for a host that honours
Pulumi.yaml's ``virtualenv`` option). A :class:`Stack` records everything the CLI printed, so a test can check
that no secret appeared in any of it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from imm_faces.runtime.credentials import Credentials
from tests.engine.pulumi_engine import REPO, Workspace


class Project:
    def __init__(self, ws: Workspace, folder: Path, program: dict[str, str] | None = None) -> None:
        """``program``: file name -> text of another program (default: this repository's Pulumi.yaml and
        __main__.py)."""
        self.ws, self.folder = ws, folder
        folder.mkdir(parents=True, exist_ok=True)
        if program is None:
            for name in ("Pulumi.yaml", "__main__.py"):
                shutil.copy(REPO / name, folder / name)
        else:
            for name, text in program.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(text)
        venv = folder / ".venv"
        if not venv.exists():
            venv.symlink_to(Path(sys.prefix), target_is_directory=True)
        self.transcript: list[str] = []

    def stack(self, name: str, config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None) -> Stack:
        """``pulumi stack init NAME`` with its config (``--path`` for lists and objects) and secret config."""
        stack = Stack(self, name)
        stack.pulumi("stack", "init")
        for key, value in (config or {}).items():
            stack.set(key, value)
        for key, value in (secrets or {}).items():
            stack.pulumi("config", "set", "--secret", key, stdin=value)  # the value never on a command line
        return stack


class Stack:
    def __init__(self, project: Project, name: str) -> None:
        self.project, self.name = project, name

    def verify(self, keys: Credentials) -> subprocess.CompletedProcess[str]:
        """``imm-faces verify --stack NAME --json`` as a user runs it, signing with ``keys``: it reads ``pulumi stack
        output --json`` itself."""
        env = {
            **self.project.ws.env,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": keys.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": keys.access_key_secret,
        }
        verify = [sys.executable, "-m", "imm_faces.runtime.cli.main", "verify", "--stack", self.name]
        return subprocess.run(
            [*verify, "--json", "--min-clusters", "1"],
            cwd=self.project.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def pulumi(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 600, record: bool = True
    ) -> Any:
        """``pulumi ARGS --stack NAME``; its output joins the project's transcript unless ``record`` is False (a
        command asked to show secrets)."""
        proc = self.project.ws.run(
            *args, "--stack", self.name, cwd=self.project.folder, check=False, stdin=stdin, timeout=timeout
        )
        if record:
            self.project.transcript.extend([proc.stdout, proc.stderr])
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} (stack {self.name}) exited {proc.returncode}\n--- stdout\n{proc.stdout}\n"
                f"--- stderr\n{proc.stderr}"
            )
        return proc

    def set(self, key: str, value: Any) -> None:
        if isinstance(value, list):
            self.pulumi("config", "rm", key, check=False)
            for i, item in enumerate(value):
                self.pulumi("config", "set", "--path", f"{key}[{i}]", str(item))
        else:
            text = json.dumps(value) if isinstance(value, bool) else str(value)
            self.pulumi("config", "set", key, text)

    def up(self, *args: str, check: bool = True) -> Any:
        return self.pulumi("up", "--yes", "--skip-preview", *args, check=check)

    def preview(self, *args: str, check: bool = True) -> Any:
        return self.pulumi("preview", *args, check=check)

    def outputs(self, secrets: bool = False) -> dict[str, Any]:
        text = self.pulumi(
            "stack", "output", "--json", *(["--show-secrets"] if secrets else []), record=not secrets
        ).stdout
        value = json.loads(text)
        assert isinstance(value, dict)
        return value

    def export(self, secrets: bool = False) -> dict[str, Any]:
        text = self.pulumi("stack", "export", *(["--show-secrets"] if secrets else []), record=not secrets).stdout
        value = json.loads(text)
        assert isinstance(value, dict)
        return value

    def resources(self) -> list[dict[str, Any]]:
        """The stack's resources as the state records them (``pulumi stack export``)."""
        return list(self.export()["deployment"].get("resources") or [])

    def by_name(self) -> dict[str, dict[str, Any]]:
        """Custom resources of the state by their name (the URN's last part)."""
        return {r["urn"].rsplit("::", 1)[1]: r for r in self.resources() if r.get("custom")}
