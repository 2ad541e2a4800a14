"""HTTP helpers every client of this package shares (IMM, STS, the metadata service, OSS): the TLS context, the
reading of an endpoint someone gave, and the way into an async client's connection pool. A leaf: it imports
nothing of this package but the error types."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from imm_faces.runtime.errors import ConfigError


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's own default (certifi's CAs, hostname checked; ``trust_env=False`` as our clients use), made once per
    process and shared by every client: loading the CA file costs ~20 ms of CPU per client otherwise."""
    return httpx.create_ssl_context(trust_env=False)


def tls_context_for(base_url: str) -> ssl.SSLContext:
    """The TLS context of a client that talks to ``base_url`` only: :func:`tls_context` for https. A plain-http
    endpoint (the local emulator) never uses TLS, and loading the CA file is ~25 ms of a short run's start-up:
    it gets a context that trusts no certificate at all, through which a TLS connection would fail, never pass
    unverified."""
    return _trusts_nothing() if base_url.startswith("http://") else tls_context()


@functools.cache
def _trusts_nothing() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verification required, hostnames checked, no CA loaded


def explicit_base_url(endpoint: str, what: str) -> str:
    """An endpoint someone gave (``https://`` added when it names no scheme) as a base URL; ``what`` names the
    setting in the error."""
    url = endpoint if "://" in endpoint else f"https://{endpoint}"
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{what}: must be host[:port] or http(s)://host[:port]; got {endpoint!r}")
    return str(parsed.copy_with(path="/", query=None))


class PoolEntry:
    """Requests into one ``httpx.AsyncClient``'s connection pool one at a time, each let in once the one before it
    holds its connection.

    httpcore (1.0.9) hands an idle keep-alive connection to every request that arrives before the first of them
    starts on it; all but one then fail with ConnectionNotAvailable and go round the pool again, which checks
    every connection each time (encode/httpcore#1110, #1035). Requests started together met that ~1.3 times each
    in ``imm-faces verify`` (~14% of its run's CPU). httpcore's documented ``trace`` extension says when a request
    has its connection (its first event: a new connection being opened, or its headers being sent on a taken one);
    the next request goes in then, and the request is traced no further. Nothing waits for a connection to be
    opened or for an answer.

        async with entry.turn(request.extensions):
            response = await http.send(request)

    Worth it where requests start in bursts (verify: a page's bulk and sample fetches). Where they start one as
    another ends (the report's OSS reads, paced by the server's work) it was measured to gain nothing
    (benchmarks/report.py, 300 clusters, two alternating runs) and is not used."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def turn(self, extensions: dict[str, Any]) -> AsyncIterator[None]:
        """Wait for this request's turn; ``extensions`` (the request's own, which httpx hands to httpcore) get the
        ``trace`` that ends the turn once the request has its connection, or the turn ends with the block."""
        await self._lock.acquire()
        holding = True

        async def taken(event: str, info: dict[str, Any]) -> None:
            nonlocal holding
            if holding:
                holding = False
                extensions.pop("trace", None)
                self._lock.release()

        extensions["trace"] = taken
        try:
            yield
        finally:
            if holding:
                holding = False
                extensions.pop("trace", None)
                self._lock.release()
