"""Shared fixtures: a real emulator on a free loopback port, with the sidecar face analyzer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from tests.fakes import SidecarAnalyzer
from tests.processes import loopback_only

STS_KEY = Credentials("STS.emulator-sts-id", "emulator-sts-secret", "emulator-sts-token")
CREDS = DEFAULT_ACCESS_KEY

loopback_only()

pytest_plugins = ("tests.engine.plugin",)  # the `engine` marker and the `pulumi_engine` fixture


@pytest.fixture
def oss_root(tmp_path: Path) -> Path:
    root = tmp_path / "oss"
    root.mkdir()
    return root


@pytest.fixture
def emulator(oss_root: Path, tmp_path: Path) -> Iterator[Emulator]:
    keys = [DEFAULT_ACCESS_KEY, STS_KEY]
    with Emulator(
        oss_root=oss_root, db=tmp_path / "imm.db", analyzer=SidecarAnalyzer(oss_root), access_keys=keys
    ) as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator) -> Iterator[ImmClient]:
    with ImmClient(endpoint=emulator.endpoint, credentials=CREDS) as c:
        yield c
