"""The emulator's one front door: a single ASGI app that takes every request, gives it a request id, and routes
it to the service it is for, in this order:

- ``/-/ready``: the readiness document (the operations this emulator serves);
- ``/`` with ``Version`` 2015-04-01 (query or ``x-acs-version``): STS (:mod:`imm_faces.emulator.sts`);
- ``/<bucket>/<key>`` signed for OSS (V4 header or presigned query): object reads
  (:mod:`imm_faces.emulator.oss_get`);
- everything else: IMM (:mod:`imm_faces.emulator.wire`), which answers an unknown path ``InvalidAction.NotFound``.

The ECS metadata stand-in (:mod:`imm_faces.emulator.metadata`, tests only) is served by a front door of its own
on a port of its own, as the real service has an address of its own.

Errors are answered here, once for every service behind it: an :class:`ApiError` as IMM's JSON error body, a
:class:`RejectError` the same and the connection closed (the rest of the request is never read), and anything
else as ``InternalError``: nothing a client sends makes a 5xx. OSS answers its own errors (XML bodies).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor

from imm_faces.emulator import sts as sts_wire
from imm_faces.emulator.asgi import (
    CLOSE,
    ASGIApp,
    Exchange,
    Message,
    Receive,
    RejectError,
    Scope,
    Send,
    new_request_id,
    read_headers,
    render_json,
)
from imm_faces.emulator.auth import Authenticator
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.oss_get import OssObjects
from imm_faces.emulator.service import ImmService
from imm_faces.emulator.sts import StsService
from imm_faces.emulator.wire import REQUEST_THREADS, ImmWire
from imm_faces.runtime.operations import CATALOG

log = logging.getLogger("imm_faces.emulator")
READY_PATH = "/-/ready"
Handler = Callable[[Exchange], Awaitable[None]]
Route = tuple[Callable[[Exchange], bool], Handler]


class FrontDoor:
    """An ASGI app: the first route that claims a request (on its path, method, query and headers; its body is
    unread) answers it, else ``fallback``; then what the handler raises is answered here."""

    def __init__(self, routes: Sequence[Route], fallback: Handler) -> None:
        self.routes = tuple(routes)
        self.fallback = fallback

    def handler(self, exchange: Exchange) -> Handler:
        return next((serve for claims, serve in self.routes if claims(exchange)), self.fallback)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off and websockets are not served
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        exchange = Exchange(scope, receive, tracked_send, read_headers(scope), new_request_id())
        try:
            await self.handler(exchange)(exchange)
        except Exception as exc:
            if started:  # the answer is under way: the server closes the connection
                raise
            await _answer_error(exchange, exc)


async def _answer_error(exchange: Exchange, exc: Exception) -> None:
    if isinstance(exc, RejectError):
        await exchange.respond_error(exc.error, CLOSE, *exc.headers)
    elif isinstance(exc, ApiError):
        await exchange.respond_error(exc)
    else:
        log.exception("internal error", exc_info=exc)
        await exchange.respond_error(ApiError("InternalError"))


def _ready(document: bytes) -> Handler:
    async def ready(exchange: Exchange) -> None:
        if exchange.method not in ("GET", "HEAD"):
            raise RejectError(ApiError("UnsupportedHTTPMethod", method=exchange.method[:32]), (b"allow", b"GET"))
        await exchange.respond(200, document)

    return ready


def create_app(
    service: ImmService,
    auth: Authenticator,
    oss: OssObjects | None = None,
    sts: StsService | None = None,
    *,
    executor: Executor | None = None,
    heavy: Executor | None = None,
) -> ASGIApp:
    """The emulator's app: IMM at ``/``; with ``sts``, STS 2015-04-01 on the same port; with ``oss``, OSS-signed
    (V4) object reads at ``/<bucket>/<key>``.

    IMM operations run on ``executor``, those of ``wire.HEAVY_OPERATIONS`` on ``heavy`` when given; their owner
    shuts them down."""
    pool = executor or ThreadPoolExecutor(max_workers=REQUEST_THREADS, thread_name_prefix="imm-request")
    ready = render_json({"ready": True, "operations": sorted(CATALOG)})
    routes: list[Route] = [(lambda x: x.path == READY_PATH, _ready(ready))]
    if sts is not None:
        routes.append((lambda x: x.path == "/" and sts_wire.claims(x), sts.serve))
    if oss is not None:
        routes.append((lambda x: x.path != "/" and oss.claims(x), oss.serve))
    return FrontDoor(routes, ImmWire(service, auth, pool, heavy).serve)
