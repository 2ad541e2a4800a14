"""A consumer's own Pulumi project under the real engine: a program with its own ``components/`` package using
``FaceClustering`` protected, a ``clustering_triggers`` change that replaces only the task, two stacks of it on
one emulator; and adoption of an existing project by this repository's program, refused and then opted in."""

from __future__ import annotations

from pathlib import Path

import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import datasets, projects, tasks
from tests.engine.conftest import BUCKET, PREFIX, SERVICE_ROLE, credentials_config, stack_config
from tests.engine.pulumi_engine import Workspace
from tests.engine.stacks import Project

pytestmark = pytest.mark.engine

CONSUMER = {
    "Pulumi.yaml": "name: consumer-photos\nruntime:\n  name: python\n  options:\n    virtualenv: .venv\n",
    # the usual Pulumi layout: the project's own package named components (imm_faces' never shadows it)
    "components/__init__.py": "",
    "components/labels.py": 'def team_label(stack: str) -> str:\n    return f"photos-team/{stack}"\n',
    "__main__.py": """\
import pulumi

from components.labels import team_label
from imm_faces.components import FaceClustering, FaceClusteringArgs

config = pulumi.Config()
faces = FaceClustering(
    "photos",
    FaceClusteringArgs(
        region="cn-hangzhou", endpoint=config.require("endpoint"), oss_locations=config.require_object("locations"),
        service_role=config.require("role"), clustering_triggers={"run": config.get("run") or "1"},
        scan_timeout=120, clustering_timeout=120,
    ),
    opts=pulumi.ResourceOptions(protect=True),
)
pulumi.export("faces", faces.outputs)
pulumi.export("label", team_label(pulumi.get_stack()))
""",
}


def consumer_config(emulator: Emulator, **extra: str) -> dict[str, object]:
    return {
        "consumer-photos:endpoint": emulator.endpoint,
        "consumer-photos:role": SERVICE_ROLE,
        "consumer-photos:locations": [f"oss://{BUCKET}/{PREFIX}"],
        **extra,
    }


def clustering_tasks(imm: ImmClient, project: str) -> list[str]:
    listed = imm.call(tasks.ListTasks, project_name=project, task_type="FaceClustering").tasks or []
    return sorted(t.task_id or "" for t in listed)


def test_consumer_project_protected_trigger_and_two_stacks(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    project = Project(workspace, tmp_path / "consumer", CONSUMER)
    stack_a = project.stack("a", consumer_config(engine_emulator), credentials_config(keys))
    stack_a.up()
    outputs = stack_a.outputs()
    assert outputs["label"] == "photos-team/a"  # the consumer's own components package
    name_a = outputs["faces"]["project_name"]
    assert name_a == "consumer-photos-a-photos-project"
    first_task = outputs["faces"]["clustering_task_id"]
    assert clustering_tasks(imm, name_a) == [first_task]

    # protect reaches the children; the clustering task opts out, so a new trigger can replace it
    protected = {name: r.get("protect", False) for name, r in stack_a.by_name().items() if "imm:" in r["type"]}
    assert protected == {
        "photos-project": True,
        "photos-dataset": True,
        "photos-binding-0": True,
        "photos-clustering": False,
    }
    stack_a.set("consumer-photos:run", "2")
    planned = stack_a.preview("--diff").stdout
    assert "+-pulumi-python:dynamic/imm:FigureClusteringTask: (replace)" in planned, planned
    assert "dynamic/imm:Project: (update)" not in planned and "(delete)" not in planned, planned
    stack_a.up()
    second_task = stack_a.outputs()["faces"]["clustering_task_id"]
    assert second_task != first_task
    assert clustering_tasks(imm, name_a) == sorted([first_task, second_task])  # a task is history: none deleted
    ran = imm.call(tasks.GetTask, project_name=name_a, task_id=second_task, task_type="FaceClustering")
    assert ran.status == tasks.TASK_SUCCEEDED and (ran.tags or {}).get("run") == "2"

    # the component is protected: destroy refuses, and nothing is deleted
    refused = stack_a.pulumi("destroy", "--yes", check=False)
    assert refused.returncode != 0 and "protected" in refused.stdout + refused.stderr
    assert imm.call(projects.GetProject, project_name=name_a).project

    # a second stack of the same program on the same emulator: its own names, the first stack untouched
    stack_b = project.stack("b", consumer_config(engine_emulator), credentials_config(keys))
    stack_b.up()
    name_b = stack_b.outputs()["faces"]["project_name"]
    assert name_b == "consumer-photos-b-photos-project"
    listed = sorted(p.project_name or "" for p in imm.call(projects.ListProjects).projects or [])
    assert listed == sorted([name_a, name_b])
    stack_a.preview("--expect-no-changes")


def test_adoption_refused_then_opted_in(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    existing = "imm-faces-adopt-faces-project"  # the name the stack's project defaults to
    imm.call(projects.CreateProject, project_name=existing, description="someone else's", service_role=SERVICE_ROLE)
    project = Project(workspace, tmp_path / "program")
    stack = project.stack("adopt", stack_config(engine_emulator), credentials_config(keys))

    refused = stack.up(check=False)
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert f"project {existing} already exists and this stack did not create it" in said, said
    assert "adopt_existing" in said, said
    assert imm.call(projects.GetProject, project_name=existing).project.description == "someone else's"
    assert "faces-project" not in stack.by_name()

    stack.set("imm-faces:adoptExisting", True)
    stack.up()
    state = stack.by_name()
    assert state["faces-project"]["outputs"]["adopted"] is True
    assert state["faces-dataset"]["outputs"]["adopted"] is False
    stack.pulumi("destroy", "--yes")
    # the adopted project is kept (deleteAdopted is false); what the stack created in it is gone
    assert imm.call(projects.GetProject, project_name=existing).project
    assert not imm.call(datasets.ListDatasets, project_name=existing).datasets
