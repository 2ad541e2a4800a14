"""HTTP exchanges bounded in wall-clock time and in size, whatever the server does, for the small answers the
credential chain reads (the ECS metadata service, a credentials URI, STS).

httpx's timeouts bound each operation (the connect, each read, each write): a server that sends one byte every
two seconds never trips a 5-second read timeout, and the exchange lasts as long as it likes. :func:`send` bounds
the whole of it: a watchdog shuts the connection's socket down when the time is up (the read it is blocked in
fails at once), and the body is read in chunks, refused past a byte limit. The time is also cut to what is left
of the caller's deadline (:data:`DEADLINE`), so a credential fetch made for ``imm-faces verify --deadline`` never
outlives it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

DEADLINE: ContextVar[float | None] = ContextVar("imm_faces_deadline", default=None)
"""When the work under way must end (``time.monotonic()``), if it must: set by the IMM client around a call; a
thread the call starts with ``asyncio.to_thread`` sees it too."""
GRACE_SECONDS = 0.5  # past the deadline, so that the caller's own timer (which reports the deadline) fires first


class TooLargeError(httpx.TransportError):
    """The answer's body is larger than the exchange allows."""


class WallClockTimeout(httpx.ReadTimeout):
    """The whole exchange took longer than it was allowed (whatever each read took)."""


def reason(exc: Exception) -> str:
    """A transport failure in a few words: its kind, and for this module's own limits, which one."""
    if isinstance(exc, TooLargeError | WallClockTimeout):
        return f"{exc.__class__.__name__}: {exc}"
    return exc.__class__.__name__


def seconds_for(limit: float) -> float:
    """``limit`` seconds, cut to what is left of :data:`DEADLINE` (plus a short grace), never below 0."""
    deadline = DEADLINE.get()
    if deadline is None:
        return limit
    return max(0.0, min(limit, deadline - time.monotonic() + GRACE_SECONDS))


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Run the block with :data:`DEADLINE` set to ``at`` (None: no deadline)."""
    token = DEADLINE.set(at)
    try:
        yield
    finally:
        DEADLINE.reset(token)


class _Watchdog:
    """Shuts down, when fired, every socket a request opened (httpcore reports them through its ``trace``)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.fire)
        self._timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.connect_unix_socket.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.append(sock)
                    if self.fired:
                        self._shut(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def send(
    client: httpx.Client, request: httpx.Request, *, seconds: float, max_bytes: int, auth: httpx.Auth | None = None
) -> httpx.Response:
    """``request`` sent and its answer read whole within ``seconds`` of wall-clock time (cut by
    :func:`seconds_for`) and ``max_bytes`` of body. Raises :class:`WallClockTimeout` when the time is up,
    :class:`TooLargeError` when the body is larger, and httpx's other transport errors as they come. The client
    should open a connection of its own for the request (a connection reused from its pool is not watched)."""
    limit = seconds_for(seconds)
    if limit <= 0:
        raise WallClockTimeout("no time left before the deadline", request=request)
    timeout = request.extensions.get("timeout") or client.timeout.as_dict()
    request.extensions["timeout"] = {k: (limit if v is None else min(v, limit)) for k, v in timeout.items()}
    with _Watchdog(limit) as watchdog:
        request.extensions["trace"] = watchdog.trace
        try:
            response = client.send(request, auth=auth, stream=True)
            try:
                body = _read(response, max_bytes, watchdog)
            finally:
                response.close()
        except httpx.TransportError as exc:
            if watchdog.fired and not isinstance(exc, TooLargeError):
                raise WallClockTimeout(f"no complete answer within {limit:.1f} s", request=request) from None
            raise
    return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


def _read(response: httpx.Response, max_bytes: int, watchdog: _Watchdog) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) < 20 and int(declared) > max_bytes:
        raise TooLargeError(f"the answer is {declared} bytes; at most {max_bytes} are read")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise TooLargeError(f"the answer is larger than {max_bytes} bytes")
        chunks.append(chunk)
        if watchdog.fired:
            raise WallClockTimeout("the time for the answer is up")
    return b"".join(chunks)
