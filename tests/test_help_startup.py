"""`imm-faces --help` and each command's `--help` answer without importing what only running a command needs:
the command modules are light (options and help), and what runs a command is imported when it runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("httpx", "pydantic", "pulumi", "grpc", "uvicorn", "numpy", "PIL")

PROBE = """
import contextlib, io, json, sys
from imm_faces.runtime.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
print(json.dumps({"code": code, "help": out.getvalue(), "heavy": heavy}))
"""


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["--help"], ["verify", "emulator", "rehearse"]),
        (["verify", "--help"], ["--stack", "--outputs"]),
        (["emulator", "--help"], ["--access-key-file", "IMM_FACES_EMULATOR_ACCESS_KEYS", "--ram-config"]),
        (["rehearse", "--help"], ["--program", "--engine", "IMM_FACES_EMULATOR_ACCESS_KEYS", "--html"]),
    ],
)
def test_help_imports_nothing_heavy(argv: list[str], shown: list[str]) -> None:
    code = PROBE.replace("json.loads(HEAVY)", repr(list(HEAVY)))
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    for text in shown:
        assert text in result["help"]
    assert result["heavy"] == []
