"""A fake `pulumi` executable on PATH, for the tests of the few Pulumi CLI commands verify runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers: dict[str, object]) -> Path:
    """A `pulumi` on PATH that logs each call's arguments (one line per call) and prints the JSON answer for
    the first words it was called with ("stack output", "stack output --show-secrets", "config", "config get X")."""
    fake, log = tmp_path / "pulumi", tmp_path / "calls"
    table = tmp_path / "answers.json"
    table.write_text(json.dumps(answers))
    fake.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
open({str(log)!r}, "a").write(" ".join(args) + "\\n")
words = [a for a in args if a not in ("--json", "--non-interactive")]
cut = words.index("--stack") if "--stack" in words else len(words)
cut = min(cut, words.index("--cwd") if "--cwd" in words else len(words))
key = " ".join(words[:cut])
answers = json.load(open({str(table)!r}))
if key not in answers:
    print("error: no such thing: " + key, file=sys.stderr)
    sys.exit(255)
value = answers[key]
print(value if isinstance(value, str) else json.dumps(value))
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    return log
