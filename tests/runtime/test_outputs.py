"""Reading stack outputs: good documents, and every kind of bad one, each with a clear message."""

from __future__ import annotations

import io
import json
import locale
import subprocess
import sys
from pathlib import Path

import pytest

from imm_faces.runtime.outputs import (
    OutputsError,
    PulumiCli,
    StackOutputs,
    load_outputs_json,
    parse_outputs,
    read_outputs_file,
)
from tests.pulumi_cli import fake_pulumi


def read_stack_outputs(
    stack: str | None = None, cwd: str | None = None, pulumi: str = "pulumi", key_path: str | None = None
) -> StackOutputs:
    """A stack's outputs through the Pulumi CLI, as verify reads them."""
    return PulumiCli(stack, cwd, pulumi).outputs(key_path)


GOOD = {
    "project_name": "p",
    "dataset_name": "d",
    "region": "cn-hangzhou",
    "endpoint": "http://127.0.0.1:1",
    "clustering_task_id": "t",
    "extra_key": [1, 2],
}


def test_good_document_and_unknown_keys_kept(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps(GOOD))
    out = read_outputs_file(str(path))
    assert (out.project_name, out.endpoint, out.clustering_task_id) == ("p", "http://127.0.0.1:1", "t")
    assert out.model_extra == {"extra_key": [1, 2]}  # keys outside the contract are kept, unchanged
    nested = read_outputs_file(str(path), None)
    assert nested == out


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(GOOD)))
    assert read_outputs_file("-").dataset_name == "d"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object of stack outputs; got a list"),
        (json.dumps({"dataset_name": "d", "region": "r"}), "required output 'project_name' is missing"),
        (json.dumps({**GOOD, "region": 5}), "output 'region' must be a string; got an integer"),
        (json.dumps({**GOOD, "endpoint": ["x"]}), "output 'endpoint' must be a string; got a list"),
        (json.dumps({**GOOD, "binding_uris": "oss://b"}), "output 'binding_uris' must be a list of strings"),
    ],
)
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


def test_pulumi_cli_is_called_with_stack_and_cwd_and_without_show_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_pulumi(tmp_path, monkeypatch, {"stack output": GOOD})
    assert read_stack_outputs("dev", "/infra").project_name == "p"
    assert log.read_text().split() == [
        "stack",
        "output",
        "--json",
        "--non-interactive",
        "--stack",
        "dev",
        "--cwd",
        "/infra",
    ]


def test_show_secrets_only_when_a_contract_field_is_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hidden = {"faces": {**GOOD, "endpoint": "[secret]"}, "db_password": "[secret]"}
    shown = {"faces": GOOD, "db_password": "hunter2"}
    log = fake_pulumi(tmp_path, monkeypatch, {"stack output": hidden, "stack output --show-secrets": shown})
    assert read_stack_outputs("dev", key_path="faces").endpoint == "http://127.0.0.1:1"
    assert [line.split()[:3] for line in log.read_text().splitlines()] == [
        ["stack", "output", "--json"],
        ["stack", "output", "--json"],
    ]
    assert "--show-secrets" in log.read_text().splitlines()[1]
    # a secret output outside the contract never causes --show-secrets
    log.unlink()
    fake_pulumi(tmp_path, monkeypatch, {"stack output": {"faces": GOOD, "db_password": "[secret]"}})
    read_stack_outputs("dev", key_path="faces")
    assert "--show-secrets" not in log.read_text()


def test_stack_config_credentials_read_secret_keys_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {
        "alicloud:accessKey": {"value": "AKID", "secret": False},
        "alicloud:secretKey": {"secret": True},
        "other:password": {"secret": True},
    }
    log = fake_pulumi(tmp_path, monkeypatch, {"config": config, "config get alicloud:secretKey": "s3cret"})
    assert PulumiCli("dev").alicloud_config() == {"alicloud:accessKey": "AKID", "alicloud:secretKey": "s3cret"}
    calls = log.read_text()
    assert "config get alicloud:secretKey" in calls
    assert "--show-secrets" not in calls and "other:password" not in calls
    fake_pulumi(tmp_path, monkeypatch, {"config": {"alicloud:accessKey": {"value": "AKID", "secret": False}}})
    assert PulumiCli("dev").alicloud_config() == {"alicloud:accessKey": "AKID"}


def test_pulumi_failure_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pulumi(tmp_path, monkeypatch, {})
    with pytest.raises(OutputsError, match="pulumi stack output failed: error: no such thing"):
        read_stack_outputs("dev")


NESTED = {"family": {**GOOD, "dataset_name": "fam"}, "events": {**GOOD, "dataset_name": "ev"}, "note": "x"}


def test_output_key_selects_nested_outputs() -> None:
    text = json.dumps({"prod": NESTED})
    assert load_outputs_json(text, "o.json", "prod.family").dataset_name == "fam"
    assert load_outputs_json(json.dumps(NESTED), "o.json", "events").dataset_name == "ev"
    # the README's reuse example: one nested deployment is found without --output-key
    assert load_outputs_json(json.dumps({"faces": GOOD, "url": "x"}), "o.json").project_name == "p"


@pytest.mark.parametrize(
    ("document", "key", "message"),
    [
        (NESTED, None, "several figure clustering deployments \\(events, family\\); choose one with --output-key"),
        (NESTED, "fam", "no output 'fam' \\(the top level has: events, family, note\\)"),
        (NESTED, "note.x", "no output 'note.x' \\(note has: not an object but a string\\)"),
        (NESTED, "family.", "empty segment"),
        ({"faces": {**GOOD, "project_name": "[secret]"}}, "faces", "project_name shown as \\[secret\\]"),
        ({"faces": "[secret]"}, "faces", "the whole object\\) shown as \\[secret\\]"),
        ({"x": {"dataset_name": "d"}}, "x", "o.json at 'x': required output 'project_name' is missing"),
    ],
)
def test_output_key_errors_name_the_key(document: object, key: str | None, message: str) -> None:
    with pytest.raises(OutputsError, match=message):
        load_outputs_json(json.dumps(document), "o.json", key)


def test_the_docs_show_the_contract_as_defined() -> None:
    from imm_faces.runtime.outputs import StackOutputs, contract_table

    table = contract_table()
    page = (Path(__file__).parents[2] / "docs" / "verify.md").read_text(encoding="utf-8")
    assert table in page
    rows = table.splitlines()[2:]
    assert len(rows) == len(StackOutputs.model_fields)
    assert "| `project_name` | string | yes |" in table and "| `binding_uris` | list of strings | no |" in table


def test_every_message_names_where_the_outputs_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "o.json"
    path.write_text("{not json")
    with pytest.raises(OutputsError, match=f"^{path}: not valid JSON"):
        read_outputs_file(str(path))
    monkeypatch.setattr("sys.stdin", io.StringIO("{not json"))
    with pytest.raises(OutputsError, match=r"^standard input: not valid JSON"):
        read_outputs_file("-")
    path.write_text(json.dumps({"faces": {**GOOD, "region": None}}))
    with pytest.raises(OutputsError, match=f"^{path} at 'faces': output 'region' must be a string; got null$"):
        read_outputs_file(str(path), "faces")
    with pytest.raises(OutputsError, match=f"^{path}: no output 'other'"):
        read_outputs_file(str(path), "other")
    with pytest.raises(OutputsError, match=f"^{tmp_path}: cannot read \\(Is a directory\\)$"):
        read_outputs_file(str(tmp_path))
    with pytest.raises(OutputsError, match=r"^o\.json: output 'region' must be a string; got an object$"):
        load_outputs_json(json.dumps({**GOOD, "region": {"id": "cn-hangzhou"}}), "o.json")


def test_output_key_is_followed_from_a_file_and_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps(NESTED))
    assert read_outputs_file(str(path), "events").dataset_name == "ev"
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(NESTED)))
    assert read_outputs_file("-", "family").dataset_name == "fam"


def test_only_objects_holding_project_name_count_as_deployments() -> None:
    document = {"faces": GOOD, "tags": {"team": "photos"}, "note": "project_name is exported under faces"}
    assert load_outputs_json(json.dumps(document), "o.json").dataset_name == "d"


def test_secret_message_lists_every_hidden_field_and_the_way_out() -> None:
    document = {**GOOD, "project_name": "[secret]", "region": "[secret]"}
    with pytest.raises(OutputsError) as caught:
        load_outputs_json(json.dumps(document), "o.json")
    assert str(caught.value) == (
        "o.json: project_name, region shown as [secret]; the outputs contract holds no secret, so export them in "
        "the clear, or pass the output of `pulumi stack output --json --show-secrets`"
    )


def test_stack_config_reads_every_setting_and_never_trusts_a_listed_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a secret entry may carry a placeholder value: it is read alone with `config get`, never taken as listed
    config = {
        "alicloud:secretKey": {"value": "[secret]", "secret": True},
        "alicloud:endpoints": {"objectValue": [{"sts": "http://127.0.0.1:1"}], "secret": False},
    }
    log = fake_pulumi(tmp_path, monkeypatch, {"config": config, "config get alicloud:secretKey": "s3cret"})
    settings = PulumiCli("dev").alicloud_config()
    assert settings == {"alicloud:secretKey": "s3cret", "alicloud:endpoints": [{"sts": "http://127.0.0.1:1"}]}
    assert log.read_text().splitlines()[0].split()[:2] == ["config", "--json"]
    fake_pulumi(tmp_path, monkeypatch, {"config": "not json"})
    with pytest.raises(OutputsError, match=r"^stack dev config: not valid JSON"):
        PulumiCli("dev").alicloud_config()


def test_top_level_outputs_win_over_a_nested_deployment() -> None:
    document: dict[str, object] = {**GOOD, "copy": {**GOOD, "dataset_name": "nested"}}
    assert load_outputs_json(json.dumps(document), "o.json").dataset_name == "d"


def test_contract_errors_say_which_item_and_what_the_key_means() -> None:
    with pytest.raises(
        OutputsError, match=r"^o\.json: output 'binding_uris\.1' must be a list of strings; got an integer$"
    ):
        load_outputs_json(json.dumps({**GOOD, "binding_uris": ["oss://b/", 7]}), "o.json")
    with pytest.raises(
        OutputsError, match=r"^o\.json: required output 'region' is missing \(The region of the project"
    ):
        load_outputs_json(json.dumps({"project_name": "p", "dataset_name": "d"}), "o.json")
    with pytest.raises(OutputsError, match=r"^o\.json: no output 'a\.b' \(a has: none\)$"):
        load_outputs_json(json.dumps({"a": {}}), "o.json", "a.b")


def test_pulumi_cli_messages_name_the_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_pulumi(tmp_path, monkeypatch, {"stack output": "not json"})
    with pytest.raises(OutputsError, match=r"^stack \(current\): not valid JSON"):
        read_stack_outputs()
    assert "--stack" not in log.read_text() and "--cwd" not in log.read_text()
    fake_pulumi(tmp_path, monkeypatch, {"stack output": {"faces": {**GOOD, "region": 5}}})
    with pytest.raises(OutputsError, match=r"^stack dev at 'faces': output 'region' must be a string"):
        read_stack_outputs("dev", key_path="faces")
    with pytest.raises(OutputsError, match=r"^stack dev: no output 'other'"):
        read_stack_outputs("dev", key_path="other")
    hidden = {"faces": {**GOOD, "endpoint": "[secret]"}}
    fake_pulumi(tmp_path, monkeypatch, {"stack output": hidden, "stack output --show-secrets": "not json"})
    with pytest.raises(OutputsError, match=r"^stack dev: not valid JSON"):
        read_stack_outputs("dev", key_path="faces")
    shown = {"faces": {**GOOD, "endpoint": "http://127.0.0.1:2"}, "other": GOOD}
    fake_pulumi(
        tmp_path, monkeypatch, {"stack output": {**hidden, "other": GOOD}, "stack output --show-secrets": shown}
    )
    assert read_stack_outputs("dev", key_path="faces").endpoint == "http://127.0.0.1:2"
    fake_pulumi(tmp_path, monkeypatch, {"stack output": {**hidden, "other": GOOD}, "stack output --show-secrets": {}})
    with pytest.raises(OutputsError, match=r"^stack dev: no output 'faces' \(the top level has: none\)$"):
        read_stack_outputs("dev", key_path="faces")


def test_pulumi_failure_without_a_message_gives_the_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(3)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OutputsError, match=r"^pulumi stack output failed: exit 3$"):
        read_stack_outputs("dev")


def test_pulumi_cli_absent_says_what_to_do_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(OutputsError) as caught:
        PulumiCli("dev")
    assert str(caught.value) == (
        "the Pulumi CLI is not on PATH; install it, or pass --outputs FILE with the output "
        "of `pulumi stack output --json`"
    )


def test_deeper_key_paths_and_stack_messages_without_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OutputsError, match=r"^o\.json: no output 'a\.b\.c' \(a\.b has: none\)$"):
        load_outputs_json(json.dumps({"a": {"b": {}}}), "o.json", "a.b.c")
    fake_pulumi(tmp_path, monkeypatch, {"stack output": {**GOOD, "region": 5}})
    with pytest.raises(OutputsError, match=r"^stack dev: output 'region' must be a string"):
        read_stack_outputs("dev")


def test_a_hung_pulumi_is_a_clear_error_after_two_minutes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_pulumi(tmp_path, monkeypatch, {"stack output": GOOD})
    seen: dict[str, object] = {}

    def hangs(cmd: list[str], **kwargs: object) -> None:  # what subprocess.run does when the timeout passes
        seen.update(kwargs)
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess, "run", hangs)
    with pytest.raises(OutputsError) as caught:
        read_stack_outputs("dev")
    assert str(caught.value) == "pulumi stack output did not finish within 120 s"
    assert seen["timeout"] == 120 and seen["capture_output"] is True and seen["text"] is True


def test_a_secret_read_with_config_get_loses_only_the_newline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pulumi config get` ends its answer with one newline; any other trailing character is the value's."""
    config = {"alicloud:accessKey": {"secret": True}, "alicloud:secretKey": {"secret": True}}
    fake_pulumi(
        tmp_path,
        monkeypatch,
        {"config": config, "config get alicloud:accessKey": "AKIDX", "config get alicloud:secretKey": "s3cret "},
    )
    assert PulumiCli("dev").alicloud_config() == {"alicloud:accessKey": "AKIDX", "alicloud:secretKey": "s3cret "}


def test_an_outputs_file_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**GOOD, "dataset_name": "相册"}, ensure_ascii=False), encoding="utf-8")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale (a bare container, cron): the file is still UTF-8
    try:
        assert read_outputs_file(str(path)).dataset_name == "相册"
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_another_pulumi_executable_is_the_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = fake_pulumi(tmp_path, monkeypatch, {"stack output": GOOD})
    (tmp_path / "pulumi").rename(tmp_path / "pulumi-3")  # no `pulumi` on PATH any more
    assert read_stack_outputs("dev", pulumi="pulumi-3").project_name == "p"
    assert log.read_text().splitlines() == ["stack output --json --non-interactive --stack dev"]


def test_the_plugin_components_camel_case_outputs_are_the_same_contract() -> None:
    """`imm:index:FaceClustering` exports projectName, datasetName...: each contract key has its camelCase name."""
    camel = {
        "projectName": "p",
        "datasetName": "d",
        "region": "cn-hangzhou",
        "endpoint": "http://127.0.0.1:1",
        "clusteringTaskId": "t",
        "serviceRole": "r",
        "serviceRoleArn": "acs:ram::1:role/r",
        "bindingUris": ["oss://b/"],
        "someExtra": 1,
    }
    parsed = parse_outputs(camel, "outputs")
    assert parsed.model_dump(exclude_none=False) == {
        "project_name": "p",
        "dataset_name": "d",
        "region": "cn-hangzhou",
        "endpoint": "http://127.0.0.1:1",
        "clustering_task_id": "t",
        "service_role": "r",
        "service_role_arn": "acs:ram::1:role/r",
        "binding_uris": ["oss://b/"],
        "someExtra": 1,
    }
    assert parsed.model_extra == {"someExtra": 1}  # a key outside the contract is kept under its own name
    # one snake_case contract key and the document is read as it stands: camelCase keys are extras then
    mixed = parse_outputs(
        {"project_name": "p", "datasetName": "d", "dataset_name": "d2", "region": "r", "clusteringTaskId": "x"},
        "outputs",
    )
    assert (mixed.dataset_name, mixed.clustering_task_id) == ("d2", None)
    assert mixed.model_extra == {"datasetName": "d", "clusteringTaskId": "x"}
    with pytest.raises(OutputsError, match=r"^outputs: required output 'region' is missing"):
        parse_outputs({"projectName": "p", "datasetName": "d"}, "outputs")
