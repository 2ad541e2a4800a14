"""The plugin run from the plugin cache: `pulumi plugin install resource imm 0.1.0 --file provider/` copies the
folder verbatim to ``~/.pulumi/plugins/resource-imm-v0.1.0/`` (pulumi's pluginstorage.DirPlugin), where nothing
relative to the checkout resolves. The copy must still find a Python with imm-faces (here: through the
`pulumi-resource-imm` that pip put on PATH), and say clearly what to do when there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from google.protobuf import empty_pb2

from imm_faces.components.providers.plugin import package_version
from tests.provider.engine import PLUGIN_DIR, launched, plugin_command, plugin_env

SYSTEM_PATH = "/usr/bin:/bin"


def installed_copy(home: Path) -> Path:
    """What `pulumi plugin install resource imm 0.1.0 --file provider/` leaves in the plugin cache."""
    target = home / ".pulumi" / "plugins" / "resource-imm-v0.1.0"
    shutil.copytree(PLUGIN_DIR, target)
    return target


def test_the_cached_copy_finds_the_pip_installed_python(tmp_path: Path) -> None:
    """Only the `pulumi-resource-imm` command is on PATH, not its environment's python3 (as pipx installs it:
    ``~/.local/bin/pulumi-resource-imm`` linked into the package's own virtualenv)."""
    copy = installed_copy(tmp_path)
    commands = tmp_path / "bin"
    commands.mkdir()
    (commands / "pulumi-resource-imm").symlink_to(Path(sys.executable).parent / "pulumi-resource-imm")
    env = plugin_env(tmp_path)
    del env["IMM_FACES_PYTHON"]
    env["PATH"] = f"{commands}:{SYSTEM_PATH}"
    with launched(plugin_command("executable", folder=copy), tmp_path, env) as plugin:
        assert plugin.GetPluginInfo(empty_pb2.Empty()).version == package_version()


def start(copy: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The plugin copy's launcher, as the engine starts it (its engine address unreachable: it stops before)."""
    command = [str(copy / "pulumi-resource-imm"), "127.0.0.1:1"]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_without_a_usable_python_it_says_what_to_do(tmp_path: Path) -> None:
    copy = installed_copy(tmp_path)
    env = {**plugin_env(tmp_path), "PATH": SYSTEM_PATH}
    del env["IMM_FACES_PYTHON"]
    if (
        shutil.which("python3", path=SYSTEM_PATH)
        and subprocess.run(
            ["python3", "-c", "import pulumi, imm_faces"], env=env, cwd=tmp_path, capture_output=True, check=False
        ).returncode
        == 0
    ):
        env["PATH"] = str(tmp_path / "empty")  # that python3 has imm-faces: hide it
    done = start(copy, env, tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "no Python with imm-faces and its pulumi extra was found" in done.stderr
    assert "pip install 'imm-faces[pulumi]'" in done.stderr and "IMM_FACES_PYTHON" in done.stderr

    env["IMM_FACES_PYTHON"] = "/nonexistent/python"
    done = start(copy, env, tmp_path)
    assert done.returncode == 2 and "IMM_FACES_PYTHON=/nonexistent/python cannot import imm-faces" in done.stderr


def test_the_folder_holds_only_the_executable_and_examples() -> None:
    """No PulumiPlugin.yaml: with one, `pulumi plugin install --file provider/` runs the Python host's dependency
    install, which makes a virtualenv beside the plugin cache (``../.venv``) and upgrades pip from PyPI."""
    assert sorted(p.name for p in PLUGIN_DIR.iterdir()) == ["examples", "pulumi-resource-imm"]
    assert os.access(PLUGIN_DIR / "pulumi-resource-imm", os.X_OK)
