"""The wire layer: an ASGI app that turns HTTP into catalog operations and back.

Thin and generic (the operation catalog describes every call), and in the gateway's order: route and method
first, then authentication before any other work (a request that claims no signature is answered before its
body is read), then the operation, taken only from what the signature covers, then its parameters, then the
service. Every answer that is not 2xx is IMM's JSON error body with a ``Code``; nothing a client sends makes
a 5xx. The body is read with a size limit enforced while it streams in, and a large one is verified and parsed
on a worker thread, so a hostile upload cannot stall other clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from imm_faces.emulator.auth import Authenticator, IncomingRequest, parse_params
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.oss_get import OssObjects
from imm_faces.emulator.service import ImmService, RenderedResponse
from imm_faces.emulator.sts import StsService
from imm_faces.runtime.auth.signing import API_VERSION
from imm_faces.runtime.operations import CATALOG, Operation, ParameterError, Request

log = logging.getLogger("imm_faces.emulator")
READY_PATH = "/-/ready"
_JSON = b"application/json;charset=utf-8"

# Ours, not IMM's (it documents no body limit; its SDK sends every parameter in the query and an empty
# body): a body larger than this is refused with RequestEntityTooLarge as soon as its size is known.
MAX_BODY_BYTES = 1024 * 1024
# Ours: JSON parameters (Files, FigureCluster, Tags...) nest a few levels; deeper is refused before parsing,
# so that neither the JSON parser nor pydantic's serializer reaches its recursion limit.
MAX_JSON_DEPTH = 32
# Requests whose body and query together are up to this size are verified and decoded on the event loop
# (microseconds); larger ones on a worker thread.
INLINE_BODY_BYTES = 64 * 1024
# Threads that run operations (as many as anyio's default): a write waiting for the store's lock holds one.
REQUEST_THREADS = 40
# Operations that decode images (face analysis): run on the heavy pool when one is given, so that however many
# are waiting, the request threads stay free for everything else.
HEAVY_OPERATIONS = frozenset({"SearchImageFigureCluster"})
# Operations that only read state: the others must not run before their nonce is durable.
READ_ONLY_PREFIXES = ("Get", "List", "Query", "BatchGet", "SimpleQuery", "Search")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``limit``, found in one linear pass without
    parsing it (no recursion). Brackets inside strings do not count; a stray backslash outside a string makes
    the text invalid JSON, which the parser rejects at that point, so what follows it is never reached."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = deepest = 0
    in_string = False
    for mark in _JSON_TOKENS.findall(text):
        if mark[0] == "\\":
            continue
        if mark == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif mark in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest > limit


def _check_nesting(params: dict[str, str]) -> None:
    for name, value in params.items():
        if value.lstrip()[:1] in ("[", "{") and nests_deeper_than(value, MAX_JSON_DEPTH):
            raise ApiError("InvalidJSON", f"The parameter {name} nests deeper than {MAX_JSON_DEPTH} levels.")


def _one(header: str | None, param: str | None, name: str) -> str:
    """The action or version: from the signed header or the signed parameter; both given must agree."""
    if header and param and header != param:
        raise ApiError("SignatureDoesNotMatch", detail=f"The header and the parameter {name} differ.")
    return header or param or ""


def _decode(request: IncomingRequest, auth: Authenticator) -> tuple[Operation[Any, Any], Request]:
    """Authenticate, find the operation, decode its parameters (all from what the signature covers), and ask
    RAM whether the caller may run it."""
    caller, params = auth.verify(request)
    if caller.signature_version == "v3":
        # Every x-acs-* header is signed (verify checks), and so are the query and the body.
        action = _one(request.headers.get("x-acs-action"), params.get("Action"), "Action")
        version = _one(request.headers.get("x-acs-version"), params.get("Version"), "Version")
    else:
        # V2 signs parameters only: headers may repeat them (the official SDK sends both) but never decide.
        action, version = params.get("Action", ""), params.get("Version", "")
        _one(request.headers.get("x-acs-action"), action, "Action")
        _one(request.headers.get("x-acs-version"), version, "Version")
    op = CATALOG.get(action)
    if op is None:
        raise ApiError("InvalidAction.NotFound")
    if version != API_VERSION:
        raise ApiError("InvalidVersion")
    _check_nesting(params)
    try:
        # V2's common parameters (Action, Signature...) are not fields of any request: ignored.
        decoded = op.request.from_params(params)
    except ParameterError as exc:
        raise ApiError(exc.code, exc.message) from None
    except RecursionError:
        raise ApiError("InvalidJSON", "A parameter nests too deeply.") from None
    # RAM: imm:<Action> on the dataset's ARN, else the project's (emulator/ram.py).
    resource = auth.ram.imm_resource(getattr(decoded, "project_name", None), getattr(decoded, "dataset_name", None))
    auth.authorize(caller.access_key_id, f"imm:{op.name}", resource)
    return op, decoded


class _RejectError(Exception):
    """Answer with this error and close the connection (the rest of the request is not read)."""

    def __init__(self, error: ApiError) -> None:
        self.error = error


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and int(value) > MAX_BODY_BYTES:  # h11 checked it is a number
            raise _RejectError(ApiError("RequestEntityTooLarge", limit=str(MAX_BODY_BYTES)))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _RejectError(ApiError("InvalidParameter.Format", detail="The request ended early."))
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _RejectError(ApiError("RequestEntityTooLarge", limit=str(MAX_BODY_BYTES)))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        # Several values of one header would make what was signed ambiguous.
        headers[name] = raw_value.decode("latin-1") if name not in headers else "\0"
    return headers


def create_app(
    service: ImmService,
    auth: Authenticator,
    oss: OssObjects | None = None,
    sts: StsService | None = None,
    *,
    executor: Executor | None = None,
    heavy: Executor | None = None,
) -> ASGIApp:
    """The IMM API at ``/``; with ``oss``, also OSS-signed (V4) object reads at ``/<bucket>/<key>``.

    Operations run on ``executor`` (the service is synchronous: SQLite), those of HEAVY_OPERATIONS on ``heavy``
    when given; their owner shuts them down. A plain executor hop costs half the CPU of anyio's ``to_thread``
    (measured: 52 vs 110 us per call)."""
    pool = executor or ThreadPoolExecutor(max_workers=REQUEST_THREADS, thread_name_prefix="imm-request")
    ready_document = {"ready": True, "operations": sorted(CATALOG)}

    async def respond(send: Send, status: int, body: bytes, request_id: str, *extra: tuple[bytes, bytes]) -> None:
        headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode()),
                   (b"x-acs-request-id", request_id.encode()), *extra]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def render(body: dict[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off and websockets are not served
            return
        request_id = _request_id()
        headers = _headers(scope)
        host = headers.get("host", "localhost")
        method, path = scope["method"], scope["path"]
        extra: tuple[tuple[bytes, bytes], ...] = ((b"connection", b"close"),)  # until the body is read
        try:
            if path == READY_PATH:
                if method not in ("GET", "HEAD"):
                    extra += ((b"allow", b"GET"),)
                    raise ApiError("UnsupportedHTTPMethod", method=method[:32])
                await respond(send, 200, render(ready_document), request_id)
                return
            if path != "/":
                raise ApiError("InvalidAction.NotFound")
            if method not in ("GET", "POST"):
                extra += ((b"allow", b"GET, POST"),)
                raise ApiError("UnsupportedHTTPMethod", method=method[:32])
            query = parse_params(scope["query_string"].decode("latin-1"), "query string")
            incoming = IncomingRequest(method, path, query, headers, b"")
            if auth.signed_by(incoming) is None:  # nothing to authenticate: refuse before reading the body
                raise _RejectError(ApiError("IncompleteSignature",
                                       detail="No Authorization header and no Signature parameter."))  # fmt: skip
            incoming.body = await _read_body(scope, receive)
            extra, loop = (), asyncio.get_running_loop()
            if len(incoming.body) + len(scope["query_string"]) > INLINE_BODY_BYTES:
                op, request = await loop.run_in_executor(pool, _decode, incoming, auth)
            else:
                op, request = _decode(incoming, auth)
            runs_on = (heavy or pool) if op.name in HEAVY_OPERATIONS else pool
            body = await loop.run_in_executor(runs_on, _execute, service, auth, op, request, request_id)
            await respond(send, 200, body, request_id)
        except ApiError as exc:
            await respond(send, exc.status, render(exc.body(request_id, host)), request_id, *extra)
        except _RejectError as exc:
            body = render(exc.error.body(request_id, host))
            await respond(send, exc.error.status, body, request_id, (b"connection", b"close"))
        except Exception:
            log.exception("internal error")
            err = ApiError("InternalError")
            await respond(send, err.status, render(err.body(request_id, host)), request_id)

    routed = app if sts is None else sts.route(app, _request_id)  # STS 2015-04-01 on the same port
    return routed if oss is None else oss.route(routed, _request_id)


def _execute(
    service: ImmService, auth: Authenticator, op: Operation[Any, Any], request: Request, request_id: str
) -> bytes:
    """Run an operation (synchronous: SQLite) on a worker thread and render its response model as JSON.

    pydantic writes the JSON itself (``RequestId``, the base model's field, first): half the time of
    ``model_dump`` then ``json.dumps`` (measured 28 vs 59 us for a figure cluster)."""
    if not op.name.startswith(READ_ONLY_PREFIXES):
        auth.nonces.flush()  # a state change must never be replayable, even after a hard kill
    result = service.handle(op.name, request)
    if isinstance(result, RenderedResponse):  # the figure-cluster reads: their clusters are JSON text already
        return result.render(request_id)
    return (
        result.model_copy(update={"request_id": request_id}).model_dump_json(by_alias=True, exclude_none=True).encode()
    )
