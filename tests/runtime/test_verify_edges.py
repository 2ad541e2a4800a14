"""Verify at its edges: a run that cannot check anything still reports (--json, --junit-xml), and outputs in
the plugin component's camelCase are the same contract."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from imm_faces.runtime.cli.main import main as imm_faces
from tests.processes import free_port


def outputs_of_nothing(folder: Path) -> Path:
    """A stack outputs file whose endpoint is a loopback port nothing listens on."""
    outputs = folder / "outputs.json"
    endpoint = f"http://127.0.0.1:{free_port()}"
    outputs.write_text(
        json.dumps({"project_name": "p", "dataset_name": "d", "region": "cn-hangzhou", "endpoint": endpoint})
    )
    return outputs


def test_an_unreachable_endpoint_is_reported_in_json_and_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "a-secret-that-must-not-show")
    outputs = outputs_of_nothing(tmp_path)
    junit = tmp_path / "verify.xml"
    code = imm_faces(["verify", "--outputs", str(outputs), "--json", "--junit-xml", str(junit), "--deadline", "5"])
    out, err = capsys.readouterr()
    assert code == 2 and "cannot reach" in err
    report = json.loads(out)
    assert report["passed"] is False and report["exit_code"] == 2 and report["schema_version"]
    assert report["error"]["id"] == "verify.run" and "cannot reach" in report["error"]["message"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    (case,) = suite.findall("testcase")
    error = case.find("error")
    assert case.get("name") == "verify.run" and error is not None and "cannot reach" in (error.get("message") or "")
    assert "a-secret-that-must-not-show" not in out + err + junit.read_text()


def test_a_bad_outputs_file_is_reported_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text("{}")
    assert imm_faces(["verify", "--outputs", str(outputs), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert "project_name" in report["error"]["message"] and report["passed"] is False


def test_the_plugin_components_camel_case_outputs_are_read() -> None:
    """`imm:index:FaceClustering` (the plugin) names its outputs projectName...; they mean the same contract."""
    from imm_faces.runtime.outputs import parse_outputs

    parsed = parse_outputs(
        {
            "projectName": "p",
            "datasetName": "d",
            "region": "cn-hangzhou",
            "clusteringTaskId": "t",
            "bindingUris": ["oss://b/"],
            "extra": 1,
        },
        "outputs",
    )
    assert (parsed.project_name, parsed.dataset_name, parsed.clustering_task_id) == ("p", "d", "t")
    assert parsed.binding_uris == ["oss://b/"]
    mixed = parse_outputs(
        {"project_name": "p", "dataset_name": "d", "region": "cn-hangzhou", "clusteringTaskId": "x"}, "outputs"
    )
    assert mixed.clustering_task_id is None  # snake_case present: the document is the contract as it stands


def test_a_secret_that_is_not_utf8_is_a_usage_error_even_with_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte that is not UTF-8 in the secret (kept by Python as a lone surrogate) is named as such, exit 2, with
    no traceback and no trace of the secret, even under --debug (which prints the locals of a real bug)."""
    secret = "not-utf8-\udcb2-secret-value"
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    outputs = outputs_of_nothing(tmp_path)
    code = imm_faces(["verify", "--outputs", str(outputs), "--debug", "--deadline", "5"])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "ALIBABA_CLOUD_ACCESS_KEY" in err and "not UTF-8" in err
    assert "Traceback" not in err and "not-utf8" not in out + err and "secret-value" not in out + err


def test_a_half_built_client_has_a_repr() -> None:
    """A traceback's captured locals show ``self`` of a client whose __init__ failed: its repr must not raise."""
    from imm_faces.runtime.client import AsyncImmClient, ImmClient

    for cls in (ImmClient, AsyncImmClient):
        assert repr(cls.__new__(cls)) == f"{cls.__name__}(not built)"
