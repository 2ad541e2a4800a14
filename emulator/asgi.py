"""What every request to the emulator's front door shares, written once: the ASGI types, the request id, the
headers (one value each), the body read within its limit, and JSON answers and error bodies.

A leaf of the wire: the front door (:mod:`imm_faces.emulator.front_door`) and the services behind it (IMM,
STS, OSS) use it; it imports none of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from imm_faces.emulator.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Header = tuple[bytes, bytes]

JSON_CONTENT_TYPE = b"application/json;charset=utf-8"
CLOSE: Header = (b"connection", b"close")
# Ours, not IMM's (it documents no body limit; its SDK sends every parameter in the query and an empty
# body): a body larger than this is refused with RequestEntityTooLarge as soon as its size is known.
MAX_BODY_BYTES = 1024 * 1024


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def read_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name. A header given twice reads as ``"\\0"``: several values of one
    header would make what was signed ambiguous, and no signature covers that value."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        headers[name] = raw_value.decode("latin-1") if name not in headers else "\0"
    return headers


def agree(header: str | None, param: str | None, name: str) -> str:
    """The action or version: from the signed header or the signed parameter; both given must agree."""
    if header and param and header != param:
        raise ApiError("SignatureDoesNotMatch", detail=f"The header and the parameter {name} differ.")
    return header or param or ""


def render_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class RejectError(Exception):
    """Answer with this error (and ``headers``) and close the connection: the rest of the request is not read."""

    def __init__(self, error: ApiError, *headers: Header) -> None:
        self.error = error
        self.headers = headers


@dataclass
class Exchange:
    """One request at the front door and the means to answer it."""

    scope: Scope
    receive: Receive
    send: Send
    headers: dict[str, str]
    request_id: str

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def raw_query(self) -> bytes:
        return bytes(self.scope.get("query_string", b""))

    @property
    def query_string(self) -> str:
        return self.raw_query.decode("latin-1")

    @property
    def host(self) -> str:
        return self.headers.get("host", "localhost")

    async def body(self) -> bytes:
        """The whole body, refused (:class:`RejectError`: the rest is not read) once it is over MAX_BODY_BYTES."""
        for name, value in self.scope["headers"]:
            if name == b"content-length" and int(value) > MAX_BODY_BYTES:  # h11 checked it is a number
                raise RejectError(ApiError("RequestEntityTooLarge", limit=str(MAX_BODY_BYTES)))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                raise RejectError(ApiError("InvalidParameter.Format", detail="The request ended early."))
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise RejectError(ApiError("RequestEntityTooLarge", limit=str(MAX_BODY_BYTES)))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def respond(self, status: int, body: bytes, *extra: Header) -> None:
        """A JSON answer (``body`` is rendered JSON) with the request id."""
        headers = [
            (b"content-type", JSON_CONTENT_TYPE),
            (b"content-length", str(len(body)).encode()),
            (b"x-acs-request-id", self.request_id.encode()),
            *extra,
        ]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def respond_error(self, error: ApiError, *extra: Header) -> None:
        """IMM's (and STS's) JSON error body with a ``Code``."""
        await self.respond(error.status, render_json(error.body(self.request_id, self.host)), *extra)
