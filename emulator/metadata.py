"""A stand-in for the ECS metadata service's credential endpoints, so the instance-role flow runs on loopback.

:class:`MetadataStandIn` serves ``PUT /latest/api/token`` (IMDSv2), ``/latest/meta-data/ram/security-credentials/``
and ``/<role>``, and a credentials-URI document at ``/credentials``, on a loopback port of its own (the real
service has an address of its own), through the same front door as the emulator
(:class:`~imm_faces.emulator.front_door.FrontDoor`). Only tests start it; the runtime reaches it only through
``resolve_provider(metadata_url=...)``. Its credentials are issued by the emulator's STS.
"""

from __future__ import annotations

import json
import secrets
import threading
import time

import uvicorn

from imm_faces.emulator.asgi import Exchange
from imm_faces.emulator.front_door import FrontDoor
from imm_faces.emulator.server import listen
from imm_faces.emulator.sts import StsService
from imm_faces.runtime.auth.sts import (
    METADATA_CREDENTIALS_PATH,
    METADATA_TOKEN_HEADER,
    METADATA_TOKEN_PATH,
    METADATA_TOKEN_TTL,
    METADATA_TOKEN_TTL_HEADER,
    MetadataCredentials,
)
from imm_faces.runtime.timestamps import utc_seconds

__all__ = ["DEFAULT_ECS_ROLE", "MetadataStandIn"]
DEFAULT_ECS_ROLE = "imm-faces-ecs-role"
_TOKEN_HEADER = METADATA_TOKEN_HEADER.lower()
_TTL_HEADER = METADATA_TOKEN_TTL_HEADER.lower()


class MetadataStandIn:
    """The ECS metadata service's credential endpoints on ``127.0.0.1`` (tests only), issuing credentials of
    ``role_name`` in the emulator's account through ``sts``. ``imdsv1=False`` answers 401 without a token,
    as an instance with IMDSv1 disabled does. ``token_requests`` and ``v1_requests`` count what clients did."""

    MAX_TOKENS = 1000

    def __init__(
        self, sts: StsService, *, role_name: str = DEFAULT_ECS_ROLE, imdsv1: bool = True, host: str = "127.0.0.1"
    ) -> None:
        self.sts = sts
        self.role_name = role_name
        self.imdsv1 = imdsv1
        self.token_requests = 0
        self.v1_requests = 0
        self.credential_requests = 0
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._socket = listen(host, 0)
        self._host, self._port = host, int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            FrontDoor([], self.serve), log_level="warning", access_log=False, lifespan="off", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    async def serve(self, exchange: Exchange) -> None:
        """Every request: a token PUT, or a GET of the role's name or its credentials (plain text or JSON)."""
        content_type = b"text/plain"
        if exchange.method == "PUT":
            status, body = self._token_answer(exchange)
        elif exchange.method == "GET":
            status, body = self._get_answer(exchange)
            if exchange.path != METADATA_CREDENTIALS_PATH and status == 200:
                content_type = b"application/json"  # the credentials document
        else:
            status, body = 405, "method not allowed"
        data = body.encode()
        headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
        await exchange.send({"type": "http.response.start", "status": status, "headers": headers})
        await exchange.send({"type": "http.response.body", "body": data})

    def _token_answer(self, exchange: Exchange) -> tuple[int, str]:
        # Headers arrive decoded as latin-1: byte \xb2 is "²", which isdigit() takes and int() refuses.
        ttl = exchange.headers.get(_TTL_HEADER, "")
        seconds = int(ttl) if ttl.isascii() and ttl.isdigit() and len(ttl) <= 5 else 0
        if exchange.path != METADATA_TOKEN_PATH or not 1 <= seconds <= METADATA_TOKEN_TTL:
            return 400, "bad token request"
        return 200, self.new_token(seconds)

    def _get_answer(self, exchange: Exchange) -> tuple[int, str]:
        token = exchange.headers.get(_TOKEN_HEADER)
        if token is not None and not self.token_valid(token):
            return 401, "invalid token"
        if token is None:
            if not self.imdsv1 and exchange.path != "/credentials":
                return 401, "IMDSv1 is disabled"
            self.v1_requests += 1
        if exchange.path == METADATA_CREDENTIALS_PATH:
            return 200, self.role_name
        if exchange.path in (METADATA_CREDENTIALS_PATH + self.role_name, "/credentials"):
            self.credential_requests += 1
            return 200, self.document()
        return 404, "not found"

    def new_token(self, ttl: int) -> str:
        """An IMDSv2 token good for ``ttl`` seconds. Expired tokens are dropped, and beyond MAX_TOKENS the oldest
        (ours: the service documents no number; without a bound every PUT would stay in memory)."""
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self._lock:
            self.token_requests += 1
            for old in [t for t, until in self._tokens.items() if until < now]:
                del self._tokens[old]
            while len(self._tokens) >= self.MAX_TOKENS:
                del self._tokens[next(iter(self._tokens))]  # the oldest (dicts keep insertion order)
            self._tokens[token] = now + ttl
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            return self._tokens.get(token, 0) >= time.time()

    @property
    def tokens_held(self) -> int:
        with self._lock:
            return len(self._tokens)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def document(self) -> str:
        role_arn = f"acs:ram::{self.sts.account_id}:role/{self.role_name}"
        creds, _ = self.sts.issue(role_arn, "ecs-instance", None)
        now = utc_seconds()
        doc = MetadataCredentials(code="Success", last_updated=now, **creds.model_dump())
        return json.dumps(doc.model_dump(by_alias=True, exclude_none=True, mode="json"))

    def start(self) -> MetadataStandIn:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="ecs-metadata", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
        self._socket.close()

    def __enter__(self) -> MetadataStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
