"""`imm-faces verify` against a running emulator: passes on a healthy deployment, exit 1 on tampering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.cli.main import main
from imm_faces.runtime.client import ImmClient
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, cluster_ids, deploy, outputs_file


class Deployment(NamedTuple):
    task_id: str
    outputs: Path


@pytest.fixture
def deployment(
    emulator: Emulator, client: ImmClient, oss_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Deployment:
    """Two people clustered in the emulator, their stack outputs on disk, credentials in the environment."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-access-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "emulator-access-key-secret")
    task_id = deploy(client, oss_root, TWO_PEOPLE)
    return Deployment(task_id, outputs_file(tmp_path, emulator.endpoint, task_id))


def tamper(emulator: Emulator, kind: str, dataset: str, key: str, **changes: Any) -> None:
    """Change a stored document behind the API's back."""
    with emulator.store.tx() as tx:
        doc = tx.get(kind, PROJECT, dataset, key)
        assert doc is not None
        doc.update(changes)
        tx.put(kind, doc, PROJECT, dataset, key)


def test_verify_passes_then_fails_when_a_cluster_is_tampered_with(
    emulator: Emulator, client: ImmClient, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = deployment.outputs
    assert main(["verify", "--outputs", str(outputs), "--json", "--min-clusters", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["total_clusters"] == 2 and report["checked_clusters"] == 2

    # Tamper: make one cluster claim zero faces, straight in the emulator's store.
    victim = cluster_ids(client)[0]
    tamper(emulator, "cluster", DATASET, victim, FaceCount=0)
    assert main(["verify", "--outputs", str(outputs)]) == 1
    text = capsys.readouterr().out
    assert f"{victim}: FaceCount >= 1: got 0" in text and "FAILED" in text


def test_verify_fails_when_too_few_clusters_or_unknown_cluster(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = deployment.outputs
    assert main(["verify", "--outputs", str(outputs), "--min-clusters", "3"]) == 1
    assert "found 2, need at least 3" in capsys.readouterr().out
    assert main(["verify", "--outputs", str(outputs), "--cluster-id", "Cluster-nope", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["clusters"][0]["failures"][0]["detail"].startswith("ResourceNotFound")


def test_verify_exit_2_for_config_and_credential_errors(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = outputs_file(tmp_path, emulator.endpoint, None)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-access-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret-value")
    assert main(["verify", "--outputs", str(outputs)]) == 2
    err = capsys.readouterr().err
    assert "SignatureDoesNotMatch" in err and "wrong-secret-value" not in err and "Traceback" not in err
    assert main(["verify", "--outputs", str(tmp_path / "missing.json")]) == 2
    assert "no such outputs file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["verify", "--sample", "0"])
    assert usage.value.code == 2


def test_verify_reports_a_failed_task(
    emulator: Emulator, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(emulator, "task", "", deployment.task_id, Status="Failed", Code="InternalError", Message="boom")
    assert main(["verify", "--outputs", str(deployment.outputs)]) == 1
    assert "status Failed (InternalError: boom)" in capsys.readouterr().out
