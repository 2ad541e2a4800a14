"""IMM's wire: turns an HTTP request at ``/`` into a catalog operation and its response model back into JSON.

Thin and generic (the operation catalog describes every call), and in the gateway's order: method first, then
authentication before any other work (a request that claims no signature is answered before its body is read),
then the operation, taken only from what the signature covers, then its parameters, then the service. A large
body is verified and parsed on a worker thread, so a hostile upload cannot stall other clients. The front door
(:mod:`imm_faces.emulator.front_door`) routes here and answers the errors raised.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from imm_faces.emulator.asgi import Exchange, RejectError, agree
from imm_faces.emulator.auth import Authenticator, IncomingRequest, parse_params
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.json_text import nests_deeper_than
from imm_faces.emulator.service import ImmService, RenderedResponse
from imm_faces.runtime.auth.signing import API_VERSION
from imm_faces.runtime.operations import CATALOG, Operation, ParameterError, Request

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


def _check_nesting(params: dict[str, str]) -> None:
    for name, value in params.items():
        if value.lstrip()[:1] in ("[", "{") and nests_deeper_than(value, MAX_JSON_DEPTH):
            raise ApiError("InvalidJSON", f"The parameter {name} nests deeper than {MAX_JSON_DEPTH} levels.")


def _decode(request: IncomingRequest, auth: Authenticator) -> tuple[Operation[Any, Any], Request]:
    """Authenticate, find the operation, decode its parameters (all from what the signature covers), and ask
    RAM whether the caller may run it."""
    caller, params = auth.verify(request)
    if caller.signature_version == "v3":
        # Every x-acs-* header is signed (verify checks), and so are the query and the body.
        action = agree(request.headers.get("x-acs-action"), params.get("Action"), "Action")
        version = agree(request.headers.get("x-acs-version"), params.get("Version"), "Version")
    else:
        # V2 signs parameters only: headers may repeat them (the official SDK sends both) but never decide.
        action, version = params.get("Action", ""), params.get("Version", "")
        agree(request.headers.get("x-acs-action"), action, "Action")
        agree(request.headers.get("x-acs-version"), version, "Version")
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


class ImmWire:
    """IMM at ``/``: operations run on ``pool``, those of HEAVY_OPERATIONS on ``heavy`` when given (their owner
    shuts them down). A plain executor hop costs half the CPU of anyio's ``to_thread`` (measured: 52 vs 110 us
    per call)."""

    def __init__(self, service: ImmService, auth: Authenticator, pool: Executor, heavy: Executor | None) -> None:
        self.service = service
        self.auth = auth
        self.pool = pool
        self.heavy = heavy or pool

    async def serve(self, exchange: Exchange) -> None:
        incoming = self._unread(exchange)
        incoming.body = await exchange.body()
        loop = asyncio.get_running_loop()
        if len(incoming.body) + len(exchange.raw_query) > INLINE_BODY_BYTES:
            op, request = await loop.run_in_executor(self.pool, _decode, incoming, self.auth)
        else:
            op, request = _decode(incoming, self.auth)
        runs_on = self.heavy if op.name in HEAVY_OPERATIONS else self.pool
        body = await loop.run_in_executor(runs_on, _execute, self.service, self.auth, op, request, exchange.request_id)
        await exchange.respond(200, body)

    def _unread(self, exchange: Exchange) -> IncomingRequest:
        """The request before its body is read: every refusal here closes the connection (RejectError)."""
        if exchange.path != "/":
            raise RejectError(ApiError("InvalidAction.NotFound"))
        if exchange.method not in ("GET", "POST"):
            error = ApiError("UnsupportedHTTPMethod", method=exchange.method[:32])
            raise RejectError(error, (b"allow", b"GET, POST"))
        try:
            query = parse_params(exchange.query_string, "query string")
        except ApiError as exc:
            raise RejectError(exc) from None
        incoming = IncomingRequest(exchange.method, exchange.path, query, exchange.headers, b"")
        if self.auth.signed_by(incoming) is None:  # nothing to authenticate: refuse before reading the body
            detail = "No Authorization header and no Signature parameter."
            raise RejectError(ApiError("IncompleteSignature", detail=detail))
        return incoming


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
