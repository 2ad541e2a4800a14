"""The async client over httpx's real connection pool (a loopback emulator): requests started together each get
a connection of their own, once, and a cancelled request never blocks the ones after it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import pytest

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.operations.projects import ListProjects

IN_FLIGHT = 8
REQUESTS = 40


@pytest.fixture
def taken_already(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests httpcore sent to a connection another request had already taken (ConnectionNotAvailable)."""
    seen: list[str] = []
    real = httpcore.AsyncHTTPConnection.handle_async_request

    async def counted(self: httpcore.AsyncHTTPConnection, request: httpcore.Request) -> httpcore.Response:
        try:
            return await real(self, request)
        except httpcore.ConnectionNotAvailable:
            seen.append(str(request.url))
            raise

    monkeypatch.setattr(httpcore.AsyncHTTPConnection, "handle_async_request", counted)
    return seen


def test_requests_started_together_never_take_the_same_pooled_connection(
    emulator: Emulator, taken_already: list[str]
) -> None:
    """httpcore hands one idle connection to every request that reaches the pool before the first starts on it;
    the others fail with ConnectionNotAvailable and go round again. The client lets the next request in once the
    previous one holds its connection, so that never happens (without it: ~1.3 times a request here)."""

    async def burst() -> list[Any]:
        async with AsyncImmClient(endpoint=emulator.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
            gate = asyncio.Semaphore(IN_FLIGHT)

            async def one() -> Any:
                async with gate:
                    return await imm.call(ListProjects)

            return await asyncio.gather(*(one() for _ in range(REQUESTS)))

    answers = asyncio.run(burst())
    assert len(answers) == REQUESTS and all(a.request_id for a in answers)
    assert taken_already == []


def test_a_request_cancelled_at_the_pool_lets_the_next_ones_in(emulator: Emulator) -> None:
    """Cancelled while it holds the pool's entry (or waits for it), a request leaves it free: the calls after it
    are answered."""

    async def run() -> tuple[int, int]:
        async with AsyncImmClient(endpoint=emulator.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
            doomed = [asyncio.ensure_future(imm.call(ListProjects)) for _ in range(IN_FLIGHT)]
            await asyncio.sleep(0)  # each has entered the client; some wait for the pool
            for task in doomed:
                task.cancel()
            cancelled = sum(
                isinstance(r, asyncio.CancelledError) for r in await asyncio.gather(*doomed, return_exceptions=True)
            )
            answered = await asyncio.wait_for(asyncio.gather(*(imm.call(ListProjects) for _ in range(IN_FLIGHT))), 30)
            return cancelled, len(answered)

    cancelled, answered = asyncio.run(run())
    assert cancelled >= 1 and answered == IN_FLIGHT
