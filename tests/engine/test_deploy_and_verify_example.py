"""examples/deploy-and-verify: `pulumi up` through Pulumi's Automation API, then verify through imm-faces' Python
API, as a CI step would run it (the real engine on PATH, an offline backend, the emulator's key in the
environment): a deployment that passes; the same stack after its dataset was deleted out of band, which `pulumi up`
does not see and verify does (exit 1 with the report); a deployment the engine refuses (exit 1 with its error)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import datasets, projects
from tests.engine.conftest import BUCKET, PREFIX, SERVICE_ROLE
from tests.engine.pulumi_engine import Workspace

pytestmark = pytest.mark.engine

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deploy-and-verify" / "deploy_and_verify.py"


def deploy_and_verify(workspace: Workspace, keys: Credentials, *args: str) -> subprocess.CompletedProcess[str]:
    """The example as a pipeline step runs it: its credentials in the environment, the engine on PATH."""
    env = {**workspace.env, **keys.environment()}
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace.root,
        timeout=600,
        check=False,
    )


def test_deploy_then_verify_passes_and_a_dataset_deleted_out_of_band_fails_the_pipeline(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials
) -> None:
    config = [
        "--config",
        "region=cn-hangzhou",
        "--config",
        f"endpoint={engine_emulator.endpoint}",
        "--config",
        f"serviceRole={SERVICE_ROLE}",
        "--config",
        f'ossLocations=["oss://{BUCKET}/{PREFIX}"]',
        "--config",
        "scanTimeout=120",
        "--config",
        "clusteringTimeout=120",
    ]
    deployed = deploy_and_verify(workspace, keys, "--stack", "ci", *config, "--min-clusters", "2")
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    assert "+ 6 created" in deployed.stderr  # the engine's progress, on stderr
    assert deployed.stdout.startswith("imm-faces verify: imm-faces-ci-faces-project/imm-faces-ci-faces-faces at ")
    assert "PASS  clusters.min_count" in deployed.stdout  # Alice's and Bob's groups
    assert deployed.stdout.rstrip().endswith("PASSED: the deployment answers and every check holds.")
    assert "imm-faces-ci-faces-project" in {p.project_name for p in imm.paginate(projects.ListProjects)}

    imm.call(datasets.DeleteDataset, project_name="imm-faces-ci-faces-project", dataset_name="imm-faces-ci-faces-faces")
    again = deploy_and_verify(workspace, keys, "--stack", "ci", *config, "--min-clusters", "2")
    assert again.returncode == 1, again.stdout[-3000:] + again.stderr[-3000:]
    assert "6 unchanged" in again.stderr  # the engine's state still holds the dataset: up changes nothing
    assert "FAIL  dataset.exists" in again.stdout and "SKIP  clusters.listable" in again.stdout
    assert "FAILED: 1 check(s) failed:" in again.stdout
    for run in (deployed, again):
        assert keys.access_key_secret not in run.stdout + run.stderr and "Traceback" not in run.stderr


def test_a_deployment_the_engine_refuses_fails_the_pipeline_with_its_error(
    workspace: Workspace, engine_emulator: Emulator, keys: Credentials
) -> None:
    refused = deploy_and_verify(
        workspace,
        keys,
        "--stack",
        "mars",
        "--config",
        "region=mars-1",
        "--config",
        f"endpoint={engine_emulator.endpoint}",
    )
    assert refused.returncode == 1, refused.stdout[-3000:] + refused.stderr[-3000:]
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("deploy-and-verify: pulumi up of stack mars failed: error: ") and "mars-1" in last, last
    assert refused.stdout == "" and "Traceback" not in last  # no report: nothing was deployed to check
    bad = deploy_and_verify(workspace, keys, "--stack", "mars", "--config", "no-equals-sign")
    assert bad.returncode == 2 and "--config 'no-equals-sign': must be KEY=VALUE" in bad.stderr
