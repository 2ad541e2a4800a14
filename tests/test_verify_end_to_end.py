"""`imm-faces verify` against a running emulator: passes on a healthy deployment, exit 1 on tampering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.server import Emulator
from runtime.cli.main import main
from runtime.client import ImmClient
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, cluster_ids, deploy, outputs_file


@pytest.fixture
def env_creds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-access-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "emulator-access-key-secret")


def test_verify_passes_then_fails_when_a_cluster_is_tampered_with(
    emulator: Emulator, client: ImmClient, oss_root: Path, tmp_path: Path, env_creds: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    task_id = deploy(client, oss_root, TWO_PEOPLE)
    outputs = outputs_file(tmp_path, emulator.endpoint, task_id)

    assert main(["verify", "--outputs", str(outputs), "--json", "--min-clusters", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["total_clusters"] == 2 and report["checked_clusters"] == 2

    # Tamper: make one cluster claim zero faces, straight in the emulator's store.
    victim = cluster_ids(client)[0]
    with emulator.store.tx() as tx:
        doc = tx.get("cluster", PROJECT, DATASET, victim)
        assert doc is not None
        doc["FaceCount"] = 0
        tx.put("cluster", doc, PROJECT, DATASET, victim)
    assert main(["verify", "--outputs", str(outputs)]) == 1
    text = capsys.readouterr().out
    assert f"{victim}: FaceCount >= 1: got 0" in text and "FAILED" in text


def test_verify_fails_when_too_few_clusters_or_unknown_cluster(
    emulator: Emulator, client: ImmClient, oss_root: Path, tmp_path: Path, env_creds: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    task_id = deploy(client, oss_root, TWO_PEOPLE)
    outputs = outputs_file(tmp_path, emulator.endpoint, task_id)
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
    emulator: Emulator, client: ImmClient, oss_root: Path, tmp_path: Path, env_creds: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    task_id = deploy(client, oss_root, TWO_PEOPLE)
    with emulator.store.tx() as tx:
        doc = tx.get("task", PROJECT, "", task_id)
        assert doc is not None
        doc.update(Status="Failed", Code="InternalError", Message="boom")
        tx.put("task", doc, PROJECT, "", task_id)
    assert main(["verify", "--outputs", str(outputs_file(tmp_path, emulator.endpoint, task_id))]) == 1
    assert "status Failed (InternalError: boom)" in capsys.readouterr().out
