"""The stack-outputs contract: what a deployed stack exports and ``imm-faces verify`` reads.

Defined once here. The Pulumi component exports exactly these keys; the verify command reads them from
``pulumi stack output --json --show-secrets`` or from a file (or stdin) in that same format.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imm_faces.runtime.errors import ConfigError


class OutputsError(ConfigError):
    """The stack outputs could not be read or break the contract."""


class StackOutputs(BaseModel):
    """Outputs of a stack built with ``components.FaceClustering`` (keys as ``pulumi stack output`` prints)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    project_name: str = Field(description="The IMM project (2020-09-30 API).")
    dataset_name: str = Field(description="The dataset holding the indexed photos and figure clusters.")
    region: str = Field(description="The region of the project, e.g. cn-hangzhou.")
    endpoint: str | None = Field(
        default=None,
        description="A custom IMM endpoint URL (e.g. the local emulator's); absent for the cloud.",
    )
    clustering_task_id: str | None = Field(
        default=None, description="The TaskId of the last figure clustering task, when the stack ran one."
    )
    service_role: str | None = Field(default=None, description="The RAM role IMM assumes (name).")
    service_role_arn: str | None = Field(default=None, description="The ARN of that role.")
    binding_uris: list[str] | None = Field(default=None, description="The OSS locations bound to the dataset.")


_JSON_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "an object")


def _contract_type(name: str) -> str:
    annotation = str(StackOutputs.model_fields[name].annotation)
    return "list of strings" if "list[str]" in annotation else "string"


def parse_outputs(document: Any, source: str) -> StackOutputs:
    """Validate a decoded outputs document; errors name the key and what was expected."""
    if not isinstance(document, dict):
        raise OutputsError(f"{source}: expected a JSON object of stack outputs; got {_json_type(document)}")
    try:
        return StackOutputs.model_validate(document)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err["loc"])
        top = str(err["loc"][0])
        if err["type"] == "missing":
            description = StackOutputs.model_fields[top].description
            raise OutputsError(f"{source}: required output {key!r} is missing ({description})") from None
        raise OutputsError(
            f"{source}: output {key!r} must be a {_contract_type(top)}; got {_json_type(err.get('input'))}"
        ) from None


def load_outputs_json(text: str, source: str) -> StackOutputs:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise OutputsError(f"{source}: not valid JSON ({exc})") from None
    return parse_outputs(document, source)


def read_outputs_file(path: str) -> StackOutputs:
    """Read outputs from a file, or from standard input when ``path`` is ``-``."""
    if path == "-":
        return load_outputs_json(sys.stdin.read(), "standard input")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputsError(f"{path}: no such outputs file") from None
    except OSError as exc:
        raise OutputsError(f"{path}: cannot read ({exc.strerror})") from None
    return load_outputs_json(text, path)


def read_stack_outputs(stack: str | None = None, cwd: str | None = None, pulumi: str = "pulumi") -> StackOutputs:
    """Run ``pulumi stack output --json --show-secrets`` (with ``--stack``/``--cwd``) and parse it."""
    exe = shutil.which(pulumi)
    if exe is None:
        raise OutputsError(
            "the Pulumi CLI is not on PATH; install it, or pass --outputs FILE with the output of "
            "`pulumi stack output --json --show-secrets`"
        )
    cmd = [exe, "stack", "output", "--json", "--show-secrets", "--non-interactive"]
    if stack:
        cmd += ["--stack", stack]
    if cwd:
        cmd += ["--cwd", cwd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise OutputsError(f"pulumi stack output failed: {detail}")
    return load_outputs_json(proc.stdout, f"stack {stack or '(current)'}")


def contract_table() -> str:
    """The contract as a Markdown table (for the README)."""
    rows = ["| key | type | required | meaning |", "|---|---|---|---|"]
    for name, field in StackOutputs.model_fields.items():
        rows.append(
            f"| `{name}` | {_contract_type(name)} | {'yes' if field.is_required() else 'no'} | {field.description} |"
        )
    return "\n".join(rows)
