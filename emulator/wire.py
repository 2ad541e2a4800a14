"""The wire layer: an ASGI app that turns HTTP into catalog operations and back.

Thin and generic (the operation catalog describes every call): merge query and form parameters,
authenticate, find the operation by ``x-acs-action`` or ``Action``, decode the request model, call the
service, render the response model. Every error is IMM's JSON error body with its HTTP status.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imm_faces.emulator.auth import Authenticator, IncomingRequest
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.service import ImmService
from imm_faces.runtime.operations import CATALOG, ParameterError
from imm_faces.runtime.signing import API_VERSION

log = logging.getLogger("imm_faces.emulator")
READY_PATH = "/-/ready"
_JSON = "application/json;charset=utf-8"


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _render(body: dict[str, Any], status: int, request_id: str) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type=_JSON,
        headers={"x-acs-request-id": request_id},
    )


def create_app(service: ImmService, auth: Authenticator) -> Starlette:
    async def handle(http: HttpRequest) -> Response:
        request_id = _request_id()
        host = http.headers.get("host", "localhost")
        try:
            incoming = IncomingRequest(
                http.method,
                http.url.path,
                parse_qsl(http.url.query, keep_blank_values=True),
                {k.lower(): v for k, v in http.headers.items()},
                await http.body(),
            )
            params = dict(incoming.query + incoming.form)
            auth.verify(incoming)
            action = incoming.headers.get("x-acs-action") or params.get("Action") or ""
            version = incoming.headers.get("x-acs-version") or params.get("Version") or ""
            op = CATALOG.get(action)
            if op is None:
                raise ApiError("InvalidAction.NotFound")
            if version != API_VERSION:
                raise ApiError("InvalidVersion")
            try:
                # V2's common parameters (Action, Signature...) are not fields of any request: ignored.
                request = op.request.from_params(params)
            except ParameterError as exc:
                raise ApiError(exc.code, exc.message) from None
            # The service is synchronous (SQLite); run it off the event loop.
            result = await run_in_threadpool(service.handle, op.name, request)
            out = result.model_dump(by_alias=True, exclude_none=True, mode="json")
            return _render({"RequestId": request_id, **out}, 200, request_id)
        except ApiError as exc:
            return _render(exc.body(request_id, host), exc.status, request_id)
        except Exception:
            log.exception("internal error")
            err = ApiError("InternalError")
            return _render(err.body(request_id, host), err.status, request_id)

    async def ready(_: HttpRequest) -> Response:
        return JSONResponse({"ready": True, "operations": sorted(CATALOG)})

    return Starlette(routes=[Route(READY_PATH, ready, methods=["GET"]), Route("/", handle, methods=["GET", "POST"])])
