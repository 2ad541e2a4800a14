"""Fixtures for the component tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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
