"""What `pip install` makes of this repository: one import root, and the docs' install commands accepted.

The wheel is built from a git clone of the committed tree (what `pip install git+...` and CI's clean clone
see), so the ``imm_faces/`` links to ``components/``, ``runtime/`` and ``emulator/`` are checked as git stores
them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = "".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # pip judges the installed package alone
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the wheel is built from a clone of the committed tree")
    out = tmp_path_factory.mktemp("wheel")
    built = pip("wheel", "--no-deps", "-q", "-w", str(out), f"imm-faces @ git+file://{ROOT}", cwd=out)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("imm_faces-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_has_exactly_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"imm_faces"}
    for module in (
        "imm_faces/components/providers/project.py",
        "imm_faces/runtime/cli/main.py",
        "imm_faces/emulator/server.py",
        "imm_faces/py.typed",
        "imm_faces/runtime/py.typed",
    ):
        assert module in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "imm-faces = imm_faces.runtime.cli.main:console" in wheel.read(entry).decode()


def readme_install_specs() -> list[str]:
    """The `pip install '...'` requirement strings the README and docs/ show for other stacks."""
    specs = re.findall(r"pip install '(imm-faces\[[a-z,]+\] @ [^']+)'", DOCS)
    assert specs, "the docs show no pip install command for other stacks"
    return specs


def test_readme_install_commands_are_accepted_by_pip(tmp_path: Path) -> None:
    specs = readme_install_specs()
    assert any("@ file://" in s for s in specs) and any("@ git+" in s for s in specs)
    for spec in specs:
        local = re.sub(
            r"file://\S*|git\+\S*", lambda m: ("git+" if m.group().startswith("git+") else "") + f"file://{ROOT}", spec
        )  # the README's placeholders -> this checkout
        report = tmp_path / "report.json"
        proc = pip("install", "--dry-run", "--no-deps", "-q", "--report", str(report), local, cwd=tmp_path)
        assert proc.returncode == 0, f"{spec}: {proc.stderr[-2000:]}"
        (item,) = json.loads(report.read_text())["install"]
        assert item["metadata"]["name"] == "imm-faces" and item["requested_extras"] == ["pulumi"]


def test_the_editable_install_is_quiet_and_puts_only_imm_faces_on_the_path(tmp_path: Path) -> None:
    """What the Quickstart's commands run (`pip install -e`): no BuildBackendWarning about folders of the working
    directory, and from anywhere only `imm_faces` imports, never this checkout's `components` or `runtime`."""
    import venv

    venv.create(tmp_path / "env", with_pip=False)
    python = tmp_path / "env" / "bin" / "python"
    proc = pip("--python", str(python), "install", "--no-deps", "-e", str(ROOT), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    probe = (
        "import importlib.util as u, imm_faces.runtime.rules as r; "
        "print(r.__file__, [n for n in ('components', 'runtime', 'emulator') if u.find_spec(n)])"
    )
    seen = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    path, shadows = seen.stdout.split(" ", 1)
    assert Path(path).resolve() == (ROOT / "runtime" / "rules.py").resolve() and shadows.strip() == "[]"
