"""scripts/pulumi-engine.sh with a Pulumi install on PATH: it uses that CLI and the hosts beside it, builds nothing,
and answers the same folder every time (idempotent), from its cache with ``--check``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.engine.pulumi_engine import ENGINE_SCRIPT, TOOLS, Engine

pytestmark = pytest.mark.engine


def script(*args: str, path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{path}{os.pathsep}{os.environ['PATH']}", "IMM_FACES_ENGINE_CACHE": str(cache)}
    env.pop("IMM_FACES_PULUMI_FROM_PATH", None)
    return subprocess.run(
        ["bash", str(ENGINE_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_pulumi_on_path_is_used_with_its_hosts(pulumi_engine: Engine, tmp_path: Path) -> None:
    install = tmp_path / "pulumi-install"  # an install of the real engine elsewhere, as the official one is
    install.mkdir()
    for tool in TOOLS:
        shutil.copy2(pulumi_engine.bin_dir / tool, install / tool)
    cache = tmp_path / "cache"
    assert script("--check", path=install, cache=cache).returncode == 1  # nothing cached yet, nothing built

    first = script(path=install, cache=cache)
    assert first.returncode == 0, first.stderr
    assert f"using the pulumi on PATH: {install / 'pulumi'}" in first.stderr
    assert "building" not in first.stderr
    folder = Path(first.stdout.strip())
    assert {tool: (folder / tool).resolve() for tool in TOOLS} == {tool: install / tool for tool in TOOLS}

    again = script(path=install, cache=cache)
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, "")  # from the cache, silently
    assert script("--check", path=install, cache=cache).stdout == first.stdout
    exported = script("--export", path=install, cache=cache).stdout
    assert exported == f'export PATH="{folder}:$PATH"\n'
