"""This repository's stack program (``__main__.py``) under the real Pulumi engine, against the emulator.

One stack is taken through its life in one test, in the order a person would (each step needs the state the
previous one left): preview, up, verify, a no-change preview, an in-place update, refresh after out-of-band
changes, the state's provider names, destroy. The stack's credentials are secret stack config throughout, and at
the end nothing the engine wrote or printed holds them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import projects
from tests.engine.conftest import SERVICE_ROLE, credentials_config, stack_config
from tests.engine.pulumi_engine import Workspace
from tests.engine.stacks import Project, Stack

pytestmark = pytest.mark.engine

STACK = "dev"
PROJECT = "imm-faces-dev-faces-project"  # the default names: <Pulumi project>-<stack>-faces-<what>
DATASET = "imm-faces-dev-faces-faces"
IMM_TYPES = ("Project", "Dataset", "Binding", "FigureClusteringTask")


def project_names(imm: ImmClient) -> list[str]:
    return sorted(p.project_name or "" for p in imm.call(projects.ListProjects).projects or [])


def verify(ws: Workspace, stack: Stack, keys: Credentials) -> subprocess.CompletedProcess[str]:
    """``imm-faces verify --stack`` as a user runs it: it reads ``pulumi stack output --json`` itself."""
    env = {**ws.env, "ALIBABA_CLOUD_ACCESS_KEY_ID": keys.access_key_id,
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": keys.access_key_secret}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "imm_faces.runtime.cli.main", "verify", "--stack", stack.name, "--json",
         "--min-clusters", "1"],
        cwd=stack.project.folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_stack_lifecycle(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    project = Project(workspace, tmp_path / "program")
    stack = project.stack(STACK, stack_config(engine_emulator), credentials_config(keys))

    # preview: the plan names every object; nothing exists afterwards
    preview = stack.preview("--diff")
    for kind in IMM_TYPES:
        assert f"pulumi-python:dynamic/imm:{kind}" in preview.stdout, preview.stdout
    assert project_names(imm) == []

    # up: every object, and the stack outputs of the contract
    stack.up()
    assert project_names(imm) == [PROJECT]
    state = stack.by_name()
    assert {name: r["type"] for name, r in state.items() if "imm:" in r["type"]} == {
        "faces-project": "pulumi-python:dynamic/imm:Project",
        "faces-dataset": "pulumi-python:dynamic/imm:Dataset",
        "faces-binding-0": "pulumi-python:dynamic/imm:Binding",
        "faces-clustering": "pulumi-python:dynamic/imm:FigureClusteringTask",
    }
    outputs = stack.outputs()
    assert outputs["project_name"] == PROJECT and outputs["dataset_name"] == DATASET
    assert outputs["endpoint"] == engine_emulator.endpoint
    assert outputs["service_role"] == SERVICE_ROLE
    assert outputs["binding_uris"] == ["oss://photos/family/"]
    assert outputs["clustering_task_id"], outputs

    # verify reads the real `pulumi stack output --json`
    checked = verify(workspace, stack, keys)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["passed"] is True, report

    # right after up, the program and the state agree
    stack.preview("--expect-no-changes")
