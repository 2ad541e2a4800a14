"""This repository's stack program (``__main__.py``) under the real Pulumi engine, against the emulator.

One stack is taken through its life in one test, in the order a person would (each step needs the state the
previous one left): preview, up, verify, a no-change preview, an in-place update, refresh after out-of-band
changes, the state's provider names, destroy. The stack's credentials are secret stack config throughout, and at
the end nothing the engine wrote or printed holds them.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import bindings, projects
from tests.engine.conftest import SERVICE_ROLE, credentials_config, stack_config
from tests.engine.pulumi_engine import Workspace
from tests.engine.stacks import Project

pytestmark = pytest.mark.engine

STACK = "dev"
PROJECT = "imm-faces-dev-faces-project"  # the default names: <Pulumi project>-<stack>-faces-<what>
DATASET = "imm-faces-dev-faces-faces"
IMM_TYPES = ("Project", "Dataset", "Binding", "FigureClusteringTask")
BINDING = "oss://photos/family/"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
"""The key under which Pulumi's state marks a secret value."""


def description(imm: ImmClient) -> str | None:
    return imm.call(projects.GetProject, project_name=PROJECT).project.description


def encodings(secret: str) -> list[str]:
    """The secret as it could appear: plain, hex, and base64 at each of the three alignments (a substring of a
    longer base64 text, trimmed of the characters that depend on the neighbours)."""
    raw = secret.encode()
    forms = [secret, raw.hex()]
    for shift in range(3):
        text = base64.b64encode(b"\0" * shift + raw).decode().rstrip("=")
        forms.append(text[(shift * 4 + 2) // 3 + 1 : -2])
    return forms


def secret_paths(export: dict[str, Any], secret: str) -> list[tuple[str, bool]]:
    """Where ``secret`` is in a ``--show-secrets`` export: (resource type.path, whether it is marked secret)."""
    found: list[tuple[str, bool]] = []

    def walk(value: Any, path: str, secret_marked: bool) -> None:
        if isinstance(value, dict):
            marked = secret_marked or SECRET_SIG in value
            for key, item in value.items():
                walk(item, f"{path}.{key}" if key != "plaintext" else path, marked)
        elif isinstance(value, list):
            for item in value:
                walk(item, path, secret_marked)
        elif isinstance(value, str) and secret in value:
            found.append((path, secret_marked))

    for res in export["deployment"]["resources"]:
        for part in ("inputs", "outputs"):
            walk(res.get(part), f"{res['type']}.{part}", False)
    return found


def providers(export: dict[str, Any]) -> dict[str, Any]:
    """Each dynamic resource's provider, unpickled from its ``__provider`` input (an export with --show-secrets)."""
    found = {}
    for res in export["deployment"]["resources"]:
        pickled = (res.get("inputs") or {}).get("__provider")
        if isinstance(pickled, dict):  # shown: {SECRET_SIG: ..., "plaintext": its JSON}
            pickled = json.loads(pickled["plaintext"])
        if pickled is not None:
            found[res["urn"].rsplit("::", 1)[1]] = dill.loads(base64.b64decode(pickled))
    return found


def project_names(imm: ImmClient) -> list[str]:
    return sorted(p.project_name or "" for p in imm.call(projects.ListProjects).projects or [])


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

    # up: every object, and the stack outputs of the contract. The emulator accepts only this test's random keys,
    # which nothing but the stack's secret config holds (the engine's environment has no credentials): the
    # providers got them from the config the engine passed them.
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
    checked = stack.verify(keys)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["passed"] is True, report

    # right after up, the program and the state agree
    stack.preview("--expect-no-changes")

    # the state names the providers by their import path (pickled by reference), and keeps them secret
    plain = stack.export()
    pickles = [i["__provider"] for r in plain["deployment"]["resources"] if "__provider" in (i := r.get("inputs", {}))]
    assert len(pickles) == len(IMM_TYPES) and all(p.get(SECRET_SIG) for p in pickles), pickles
    shown = stack.export(secrets=True)
    assert {name: type(p).__module__ + "." + type(p).__qualname__ for name, p in providers(shown).items()} == {
        "faces-project": "imm_faces.components.providers.project.ProjectProvider",
        "faces-dataset": "imm_faces.components.providers.dataset.DatasetProvider",
        "faces-binding-0": "imm_faces.components.providers.binding.BindingProvider",
        "faces-clustering": "imm_faces.components.providers.clustering_task.ClusteringTaskProvider",
    }

    # a setting changed: an in-place update of the project and the dataset, nothing replaced, no new task
    stack.set("imm-faces:description", "Family photos, v2")
    planned = stack.preview("--diff").stdout
    updated = re.findall(r"~ pulumi-python:dynamic/imm:(\w+): \(update\)", planned)
    assert sorted(updated) == ["Dataset", "Project"], planned
    assert len(re.findall(r'\+ description +: "Family photos, v2"', planned)) == 2, planned
    assert "replace" not in planned, planned
    stack.up()
    assert description(imm) == "Family photos, v2"
    assert stack.outputs()["clustering_task_id"] == outputs["clustering_task_id"]

    # refresh after an out-of-band change: the state takes IMM's value, the next up restores the stack's
    imm.call(projects.UpdateProject, project_name=PROJECT, description="changed in the console")
    refreshed = stack.pulumi("refresh", "--yes", "--diff").stdout
    assert "faces-project" in refreshed and "changed in the console" in refreshed, refreshed
    assert stack.by_name()["faces-project"]["outputs"]["description"] == "changed in the console"
    assert stack.preview("--expect-no-changes", check=False).returncode != 0
    stack.up()
    assert description(imm) == "Family photos, v2"

    # refresh after an out-of-band delete: the binding leaves the state, the next up makes it again
    imm.call(bindings.DeleteBinding, project_name=PROJECT, dataset_name=DATASET, uri=BINDING)
    refreshed = stack.pulumi("refresh", "--yes").stdout
    assert "faces-binding-0" not in stack.by_name(), refreshed
    stack.up()
    assert "faces-binding-0" in stack.by_name()
    assert imm.call(bindings.GetBinding, project_name=PROJECT, dataset_name=DATASET, uri=BINDING).binding

    # destroy: nothing of the stack is left in IMM, nor in the state
    stack.pulumi("destroy", "--yes")
    assert project_names(imm) == []
    assert not stack.by_name()

    # the credentials were secret stack config all along: no state, log, output or file of the engine holds them
    haystack = {f"output of command {i}": text for i, text in enumerate(project.transcript)}
    haystack |= {"verify's output": checked.stdout + checked.stderr, "the state": json.dumps(plain)}
    for folder in (workspace.root, project.folder):
        haystack |= {str(p): p.read_bytes().decode(errors="replace") for p in folder.rglob("*") if p.is_file()}
    haystack |= {f"{name}'s provider": repr(vars(p)) for name, p in providers(shown).items()}
    leaks = {
        where: form for form in encodings(keys.access_key_secret) for where, text in haystack.items() if form in text
    }
    assert not leaks, leaks
    # Only `pulumi stack export --show-secrets` shows them: the engine keeps the stack's config as the inputs of
    # the dynamic providers' provider resource (pulumi:providers:pulumi-python), each secret one as a secret
    assert set(secret_paths(shown, keys.access_key_secret)) == {
        (f"pulumi:providers:pulumi-python.{part}.alicloud:secretKey", True) for part in ("inputs", "outputs")
    }
