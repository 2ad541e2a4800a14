"""Fixtures for the component tests."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def current_event_loop() -> Iterator[None]:
    """A current event loop for each test: the Pulumi SDK's mocks bind to it, and a test elsewhere that ran
    ``asyncio.run`` leaves the thread without one (the suite's order must not decide the outcome)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(scope="module")
def three_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three photos of one person: the fewest from which IMM forms a face group (quicker than all ten)."""
    from imm_faces.emulator.sample_photos import fetch_photos

    folder = tmp_path_factory.mktemp("three-photos")
    for name in ("obama.jpg", "obama2.jpg", "32bit.png"):
        shutil.copyfile(fetch_photos() / name, folder / name)
    return folder
