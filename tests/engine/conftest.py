"""Fixtures of the real-engine tests: an emulator with its own keys and photos, an offline Pulumi workspace."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from tests.engine.pulumi_engine import Engine, Workspace
from tests.fakes import SidecarAnalyzer, write_photo
from tests.helpers import TWO_PEOPLE

BUCKET, PREFIX = "photos", "family/"
SERVICE_ROLE = "imm-faces-engine-test-role"
"""An existing RAM role given to the component: the RAM role, policy and attachment it would otherwise create
need pulumi-alicloud's plugin, which cannot be built here (see the README's engine section)."""


@pytest.fixture
def keys() -> Credentials:
    """Keys only this test's emulator accepts; the secret is random, so finding it anywhere is a leak."""
    return Credentials(f"engine-test-{secrets.token_hex(4)}", f"engine-secret-{secrets.token_hex(16)}")


@pytest.fixture
def engine_emulator(tmp_path: Path, keys: Credentials) -> Iterator[Emulator]:
    oss_root = tmp_path / "oss"
    oss_root.mkdir()
    for key, faces in TWO_PEOPLE.items():
        write_photo(oss_root, BUCKET, PREFIX + key, faces)
    with Emulator(
        oss_root=oss_root, db=tmp_path / "imm.db", analyzer=SidecarAnalyzer(oss_root), access_keys=[keys]
    ) as emu:
        yield emu


@pytest.fixture
def imm(engine_emulator: Emulator, keys: Credentials) -> Iterator[ImmClient]:
    """A client of the test's emulator: what a person would see in the console."""
    with ImmClient(endpoint=engine_emulator.endpoint, credentials=keys) as client:
        yield client


@pytest.fixture
def workspace(pulumi_engine: Engine, tmp_path: Path) -> Workspace:
    return Workspace(pulumi_engine, tmp_path / "pulumi")


def stack_config(emulator: Emulator, **extra: Any) -> dict[str, Any]:
    """The stack config of this repository's program against ``emulator``: small timeouts, an existing role."""
    return {
        "imm-faces:region": "cn-hangzhou",
        "imm-faces:endpoint": emulator.endpoint,
        "imm-faces:ossLocations": [f"oss://{BUCKET}/{PREFIX}"],
        "imm-faces:serviceRole": SERVICE_ROLE,
        "imm-faces:scanTimeout": 120,
        "imm-faces:clusteringTimeout": 120,
        **extra,
    }


def credentials_config(keys: Credentials) -> dict[str, str]:
    """pulumi-alicloud's credential settings, set as secrets (``pulumi config set --secret``)."""
    return {"alicloud:accessKey": keys.access_key_id, "alicloud:secretKey": keys.access_key_secret}
