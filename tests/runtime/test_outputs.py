"""Reading stack outputs: good documents, and every kind of bad one, each with a clear message."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from imm_faces.runtime.outputs import OutputsError, load_outputs_json, read_outputs_file, read_stack_outputs

GOOD = {"project_name": "p", "dataset_name": "d", "region": "cn-hangzhou", "endpoint": "http://127.0.0.1:1",
        "clustering_task_id": "t", "extra_key": [1, 2]}  # fmt: skip


def test_good_document_and_unknown_keys_kept(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps(GOOD))
    out = read_outputs_file(str(path))
    assert (out.project_name, out.endpoint, out.clustering_task_id) == ("p", "http://127.0.0.1:1", "t")


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(GOOD)))
    assert read_outputs_file("-").dataset_name == "d"


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not valid JSON"),
     ("[1, 2]", "expected a JSON object of stack outputs; got a list"),
     (json.dumps({"dataset_name": "d", "region": "r"}), "required output 'project_name' is missing"),
     (json.dumps({**GOOD, "region": 5}), "output 'region' must be a string; got an integer"),
     (json.dumps({**GOOD, "endpoint": ["x"]}), "output 'endpoint' must be a string; got a list"),
     (json.dumps({**GOOD, "binding_uris": "oss://b"}), "output 'binding_uris' must be a list of strings")],
)  # fmt: skip
def test_bad_documents_name_the_key_and_rule(text: str, message: str) -> None:
    with pytest.raises(OutputsError, match=message):
        load_outputs_json(text, "outputs.json")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OutputsError, match="no such outputs file"):
        read_outputs_file(str(tmp_path / "nope.json"))


def test_pulumi_cli_absent_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(OutputsError, match="Pulumi CLI is not on PATH"):
        read_stack_outputs("dev")


def test_pulumi_cli_is_called_with_stack_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "pulumi"
    log = tmp_path / "args"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {log}\necho '{json.dumps(GOOD)}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert read_stack_outputs("dev", "/infra").project_name == "p"
    assert log.read_text().split() == ["stack", "output", "--json", "--show-secrets", "--non-interactive",
                                       "--stack", "dev", "--cwd", "/infra"]  # fmt: skip
