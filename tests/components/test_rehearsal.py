"""`imm-faces rehearse` end to end, and the examples/ program run the same way (mocks + the real
dynamic-provider host + the emulator)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

from imm_faces.components.rehearsal.engine import RehearsalMocks, destroy, run_program
from imm_faces.components.rehearsal.host import DynamicProviderHost
from imm_faces.emulator.server import DEFAULT_ACCESS_KEY, Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import datasets, projects
from imm_faces.runtime.outputs import parse_outputs
from tests.fakes import write_photo

ROOT = Path(__file__).resolve().parents[2]
ENV = DEFAULT_ACCESS_KEY.environment()


def test_rehearse_passes_and_leaves_the_emulator_empty(tmp_path: Path) -> None:
    outputs = tmp_path / "stack-outputs.json"
    proc = subprocess.run(
        [sys.executable, "-m", "imm_faces.runtime.cli.main", "rehearse", "--outputs", str(outputs), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = proc.stderr  # with --json the steps go to stderr and stdout holds only the summary
    assert "OFFLINE rehearsal" in steps and "Not exercised: the Pulumi engine" in steps
    for kind in ("Project", "Dataset", "Binding", "FigureClusteringTask"):
        assert f"created  pulumi-python:dynamic/imm:{kind}" in steps
        assert f"deleted pulumi-python:dynamic/imm:{kind}" in steps
    assert "recorded alicloud:ram/role:Role" in steps
    assert "emulator is empty" in steps and "rehearsal PASSED" in steps
    summary = json.loads(proc.stdout)
    assert summary["passed"] and summary["emulator_empty"] and summary["verify_exit"] == 0
    assert summary["verify"]["passed"] and summary["verify"]["total_clusters"] == 2  # the two people
    created = {r["type"].rsplit(":", 1)[-1]: r["created"] for r in summary["resources"]}
    assert created == {"Role": False, "Policy": False, "RolePolicyAttachment": False, "Project": True,
                       "Dataset": True, "Binding": True, "FigureClusteringTask": True}  # fmt: skip
    stack = parse_outputs(json.loads(outputs.read_text()), str(outputs))
    assert stack.project_name == "rehearsal-faces" and stack.clustering_task_id
    assert summary["outputs"] == json.loads(outputs.read_text())
    assert "emulator-access-key-secret" not in outputs.read_text()


def test_rehearse_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "imm_faces.runtime.cli.main", "rehearse", "--photos", "/nonexistent"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 2 and "not a directory" in proc.stderr


def test_the_two_datasets_example(emulator: Emulator, client: ImmClient, oss_root: Path) -> None:
    write_photo(oss_root, "family", "a.png", [{"person": 1}])
    write_photo(oss_root, "events", "b.png", [{"person": 2}])
    os.environ.update(ENV)
    config = {
        "faces-two-datasets:endpoint": emulator.endpoint,
        "faces-two-datasets:familyLocations": json.dumps(["oss://family"]),
        "faces-two-datasets:eventLocations": json.dumps(["oss://events"]),
    }
    with DynamicProviderHost(env=ENV) as host:
        mocks = RehearsalMocks(host, "faces-two-datasets", "test")
        outputs = run_program(lambda: runpy.run_path(str(ROOT / "examples" / "two-datasets" / "__main__.py")),
                              mocks, project="faces-two-datasets", stack="test", config=config)  # fmt: skip
        assert outputs["family"]["project_name"] == outputs["events"]["project_name"] == "photo-library"
        assert (outputs["family"]["dataset_name"], outputs["events"]["dataset_name"]) == ("family", "events")
        assert outputs["events"]["service_role"] is None and outputs["family"]["service_role"]
        assert [p.project_name for p in client.paginate(projects.ListProjects)] == ["photo-library"]
        names = sorted(d.dataset_name for d in client.paginate(datasets.ListDatasets, project_name="photo-library"))
        assert names == ["events", "family"]
        policy = next(c for c in mocks.created if c.type == "alicloud:ram/policy:Policy")
        assert "acs:oss:*:*:events/*" in policy.inputs["policyDocument"]  # the role may read both datasets
        destroy(mocks, host, lambda _: None)
    assert list(client.paginate(projects.ListProjects)) == []
