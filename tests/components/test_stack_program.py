"""The stack program's files agree with each other: Pulumi.yaml's config schema, the keys the program reads,
the example stack config, and the examples' project files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from imm_faces.components.program import args_from_config

ROOT = Path(__file__).resolve().parents[2]
TYPES = {"string", "boolean", "integer", "array"}
OPTIONAL = re.compile(r"^#   (\w+) \((string|string\[\]|boolean|integer)\): \S")
"""A documented setting without a default: a comment, since the engine requires a value for every declared key
without a default (pulumi/pulumi#21797)."""


def optional_keys(path: Path) -> set[str]:
    return {m.group(1) for line in path.read_text().splitlines() if (m := OPTIONAL.match(line))}


class RecordingConfig:
    """Stands in for pulumi.Config: records which keys the program reads, answers from a dict."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.read: set[str] = set()

    def _get(self, key: str) -> Any:
        self.read.add(key)
        return self.values.get(key)

    get = get_object = get_bool = get_int = _get


def test_schema_matches_what_the_program_reads() -> None:
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert schema["name"] == "imm-faces" and schema["runtime"]["name"] == "python"
    config = RecordingConfig({"region": "cn-hangzhou"})
    args = args_from_config(config, RecordingConfig({}))  # type: ignore[arg-type]
    assert set(schema["config"]) | optional_keys(ROOT / "Pulumi.yaml") == config.read
    assert not set(schema["config"]) & optional_keys(ROOT / "Pulumi.yaml")
    for key, spec in schema["config"].items():
        assert spec["type"] in TYPES and spec["description"], key
        assert "default" in spec, f"{key}: a declared key without a default is required by the engine"
        if spec["type"] == "array":
            assert spec["items"] == {"type": "string"}
    assert args.region == "cn-hangzhou"


def test_example_stack_config_uses_declared_keys() -> None:
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    values = {}
    for key, value in stack.items():
        namespace, _, name = key.partition(":")
        assert namespace in ("imm-faces", "alicloud"), key
        if namespace == "imm-faces":
            assert name in schema or name in optional_keys(ROOT / "Pulumi.yaml"), key
            values[name] = value
    resolved = args_from_config(RecordingConfig(values), RecordingConfig({})).resolved("faces")  # type: ignore[arg-type]
    assert resolved.oss_locations == ("oss://my-photo-bucket/family/",)


def test_missing_region_is_a_clear_error() -> None:
    import pulumi

    with pytest.raises(pulumi.RunError, match="set the region"):
        args_from_config(RecordingConfig({}), RecordingConfig({}))  # type: ignore[arg-type]


def test_example_project_file() -> None:
    project = yaml.safe_load((ROOT / "examples" / "two-datasets" / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert all(spec["type"] in TYPES and "default" in spec for spec in project["config"].values())
