"""The stack-outputs contract: what a deployed stack exports and ``imm-faces verify`` reads.

Defined once here. The Pulumi component exports exactly these keys, at the top level or nested under one
output (``pulumi.export("faces", faces.outputs)``); the verify command reads them from ``pulumi stack output
--json`` (again with ``--show-secrets`` only when a contract field is secret) or from a file (or stdin) in that
same format. Keys outside the contract are kept (``StackOutputs.model_extra``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imm_faces.runtime.auth.config import ALICLOUD_SETTINGS_KEYS
from imm_faces.runtime.errors import ConfigError
from imm_faces.runtime.models.base import camel_name


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


SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - a placeholder, not a password
"""What ``pulumi stack output --json`` prints for a secret output without ``--show-secrets``."""


def _is_contract(value: Any) -> bool:
    return isinstance(value, dict) and "project_name" in value


def select_outputs(document: Any, key_path: str | None, source: str) -> Any:
    """The object holding the contract: ``key_path`` (dotted, e.g. ``faces`` or ``prod.faces``) inside the
    document; without one, the document itself, or its only nested contract object (a stack that exports
    ``faces = FaceClustering(...).outputs``). Errors name the key and what is there instead."""
    if key_path is not None:
        node: Any = document
        walked: list[str] = []
        for part in key_path.split("."):
            if not part:
                raise OutputsError(f"--output-key {key_path!r}: empty segment (use dots between keys, e.g. a.b)")
            if not isinstance(node, dict) or part not in node:
                where = ".".join(walked) or "the top level"
                keys = ", ".join(sorted(node)) if isinstance(node, dict) else f"not an object but {_json_type(node)}"
                raise OutputsError(f"{source}: no output {'.'.join([*walked, part])!r} ({where} has: {keys or 'none'})")
            node = node[part]
            walked.append(part)
        return node
    if not isinstance(document, dict) or "project_name" in document:
        return document
    nested = sorted(k for k, v in document.items() if _is_contract(v))
    if len(nested) == 1:
        return document[nested[0]]
    if nested:
        raise OutputsError(
            f"{source}: the outputs hold several figure clustering deployments ({', '.join(nested)}); "
            f"choose one with --output-key"
        )
    return document


def secret_fields(document: Any) -> list[str]:
    """Contract fields shown as ``[secret]`` (the whole object, or some of its keys)."""
    if document == SECRET_PLACEHOLDER:
        return ["(the whole object)"]
    if not isinstance(document, dict):
        return []
    return [k for k in StackOutputs.model_fields if document.get(k) == SECRET_PLACEHOLDER]


def parse_outputs(document: Any, source: str) -> StackOutputs:
    """Validate a decoded outputs document; errors name the key and what was expected."""
    if not isinstance(document, dict):
        raise OutputsError(f"{source}: expected a JSON object of stack outputs; got {_json_type(document)}")
    if not any(k in document for k in StackOutputs.model_fields if "_" in k):  # the plugin component: camelCase
        snake = {camel_name(k): k for k in StackOutputs.model_fields}
        document = {snake.get(k, k): v for k, v in document.items()}
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


def _decode(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OutputsError(f"{source}: not valid JSON ({exc})") from None


def load_outputs_json(text: str, source: str, key_path: str | None = None) -> StackOutputs:
    """Parse a ``pulumi stack output --json`` document; ``key_path`` selects nested outputs."""
    selected = select_outputs(_decode(text, source), key_path, source)
    where = f"{source} at {key_path!r}" if key_path else source
    hidden = secret_fields(selected)
    if hidden:
        raise OutputsError(
            f"{where}: {', '.join(hidden)} shown as [secret]; the outputs contract holds no secret, "
            "so export them in the clear, or pass the output of `pulumi stack output --json "
            "--show-secrets`"
        )
    return parse_outputs(selected, where)


def read_outputs_file(path: str, key_path: str | None = None) -> StackOutputs:
    """Read outputs from a file, or from standard input when ``path`` is ``-``."""
    if path == "-":
        return load_outputs_json(sys.stdin.read(), "standard input", key_path)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputsError(f"{path}: no such outputs file") from None
    except OSError as exc:
        raise OutputsError(f"{path}: cannot read ({exc.strerror})") from None
    return load_outputs_json(text, path, key_path)


class PulumiCli:
    """The few Pulumi CLI commands verify runs, for one stack (``--stack``/``--cwd``)."""

    def __init__(self, stack: str | None = None, cwd: str | None = None, pulumi: str = "pulumi") -> None:
        exe = shutil.which(pulumi)
        if exe is None:
            raise OutputsError(
                "the Pulumi CLI is not on PATH; install it, or pass --outputs FILE with the output of "
                "`pulumi stack output --json`"
            )
        self.exe, self.stack = exe, stack
        self.where = [*(["--stack", stack] if stack else []), *(["--cwd", cwd] if cwd else [])]
        self.label = f"stack {stack or '(current)'}"

    def run(self, *args: str) -> str:
        cmd = [self.exe, *args, "--non-interactive", *self.where]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
        except subprocess.TimeoutExpired as exc:  # a hung CLI (a lock, a prompt): the user's problem, not a bug
            raise OutputsError(f"pulumi {' '.join(args[:2])} did not finish within {exc.timeout:g} s") from None
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise OutputsError(f"pulumi {' '.join(args[:2])} failed: {detail}")
        return proc.stdout

    def outputs(self, key_path: str | None = None) -> StackOutputs:
        """``pulumi stack output --json``; again with ``--show-secrets`` only when a contract field is secret."""
        document = _decode(self.run("stack", "output", "--json"), self.label)
        selected = select_outputs(document, key_path, self.label)
        if secret_fields(selected):
            document = _decode(self.run("stack", "output", "--json", "--show-secrets"), self.label)
            selected = select_outputs(document, key_path, self.label)
        return parse_outputs(selected, f"{self.label} at {key_path!r}" if key_path else self.label)

    def alicloud_config(self) -> dict[str, Any]:
        """The stack's pulumi-alicloud credential settings (:data:`ALICLOUD_SETTINGS_KEYS`), as ``pulumi up``'s
        providers get them. ``pulumi config --json`` lists the keys without secret values; each secret one is then
        read alone with ``pulumi config get`` (never ``--show-secrets``, which would print every secret of the
        stack). Structured values (``alicloud:assumeRole``) come back as objects or JSON text."""
        config = _decode(self.run("config", "--json"), f"{self.label} config")
        if not isinstance(config, dict):
            return {}
        values: dict[str, Any] = {}
        for key in ALICLOUD_SETTINGS_KEYS:
            entry = config.get(key)
            if not isinstance(entry, dict):
                continue
            if not entry.get("secret") and ("objectValue" in entry or isinstance(entry.get("value"), str)):
                values[key] = entry.get("objectValue", entry.get("value"))
            else:  # a secret: its value is not in the listing
                values[key] = self.run("config", "get", key).rstrip("\n") or None
        return values


def contract_table() -> str:
    """The contract as a Markdown table (for the README)."""
    rows = ["| key | type | required | meaning |", "|---|---|---|---|"]
    for name, field in StackOutputs.model_fields.items():
        rows.append(
            f"| `{name}` | {_contract_type(name)} | {'yes' if field.is_required() else 'no'} | {field.description} |"
        )
    return "\n".join(rows)
