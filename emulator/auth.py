"""Request authentication, as Alibaba Cloud's API gateway does it.

ACS3-HMAC-SHA256 (``Authorization`` header) and the legacy RPC signature (``Signature`` parameter) are
both verified with the same functions the client signs with (:mod:`imm_faces.runtime.signing`). STS tokens must
match the key's token; the request time must be within 15 minutes; a nonce is accepted once.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qsl

from imm_faces.emulator.errors import ApiError
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.signing import (
    parse_v3_authorization,
    v2_signature,
    v2_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)

CLOCK_SKEW_SECONDS = 15 * 60


def parse_access_key(text: str) -> Credentials:
    """``ID:SECRET[:STS_TOKEN]`` (the ``--access-key`` option): a key the emulator accepts; with a token it
    behaves as STS credentials."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("--access-key must be ID:SECRET[:STS_TOKEN]")
    return Credentials(parts[0], parts[1], parts[2] if len(parts) == 3 and parts[2] else None)


@dataclass
class IncomingRequest:
    """What authentication looks at. ``query`` is the decoded URL query; header names are lower-case."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes

    @cached_property
    def form(self) -> list[tuple[str, str]]:
        """Parameters of an ``application/x-www-form-urlencoded`` body (none for other bodies)."""
        if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return parse_qsl(self.body.decode(), keep_blank_values=True)
        return []


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    signature_version: str


class NonceCache:
    """Nonces seen within the skew window (older ones cannot be replayed: their timestamp is expired)."""

    def __init__(self, window: float = 2 * CLOCK_SKEW_SECONDS) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._window = window

    def use(self, key_id: str, nonce: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 100_000:
                cutoff = now - self._window
                self._seen = {k: t for k, t in self._seen.items() if t > cutoff}
            key = f"{key_id}\0{nonce}"
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def _check_time(text: str | None) -> None:
    if not text:
        raise ApiError("IncompleteSignature", detail="The request date is missing.")
    try:
        when = calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise ApiError("InvalidTimeStamp.Format") from None
    if abs(time.time() - when) > CLOCK_SKEW_SECONDS:
        raise ApiError("InvalidTimeStamp.Expired")


class Authenticator:
    def __init__(self, keys: Mapping[str, Credentials]) -> None:
        self._keys = dict(keys)
        self._nonces = NonceCache()

    def _key(self, key_id: str, token: str | None) -> Credentials:
        key = self._keys.get(key_id)
        if key is None:
            raise ApiError("InvalidAccessKeyId.NotFound")
        if (key.security_token or None) != (token or None):
            raise ApiError("InvalidSecurityToken.Mismatch")
        return key

    def _nonce(self, key_id: str, nonce: str | None) -> None:
        if not nonce:
            raise ApiError("IncompleteSignature", detail="The signature nonce is missing.")
        if not self._nonces.use(key_id, nonce):
            raise ApiError("SignatureNonceUsed")

    def verify(self, request: IncomingRequest) -> Caller:
        """Authenticate a request; raise :class:`ApiError` as the gateway would."""
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("ACS3-"):
            return self._verify_v3(request, authorization)
        if any(k == "Signature" for k, _ in request.query):
            return self._verify_v2(request)
        raise ApiError("IncompleteSignature", detail="No Authorization header and no Signature parameter.")

    def _verify_v3(self, request: IncomingRequest, authorization: str) -> Caller:
        headers = request.headers
        parsed = parse_v3_authorization(authorization)
        if parsed is None:
            if not authorization.startswith("ACS3-HMAC-SHA256 "):
                raise ApiError("InvalidSignatureMethod")
            raise ApiError("IncompleteSignature", detail="The Authorization header is malformed.")
        key_id, signed_names, signature = parsed
        required = {"host"} | {name for name in headers if name.startswith("x-acs-")}
        if missing := sorted(required - set(signed_names)):
            raise ApiError("IncompleteSignature", detail=f"Headers not signed: {', '.join(missing)}.")
        if any(name not in headers for name in signed_names):
            raise ApiError("IncompleteSignature", detail="A signed header is not present.")
        key = self._key(key_id, headers.get("x-acs-security-token"))
        if headers.get("x-acs-security-token") and headers.get("x-acs-accesskey-id") != key_id:
            raise ApiError("InvalidSecurityToken.Mismatch")
        payload_hash = headers.get("x-acs-content-sha256", "")
        if payload_hash != hashlib.sha256(request.body).hexdigest():
            raise ApiError("SignatureDoesNotMatch", detail="x-acs-content-sha256 does not match the body.")
        canonical, _ = v3_canonical_request(
            request.method, request.path, request.query, {name: headers[name] for name in signed_names}, payload_hash
        )
        string_to_sign = v3_string_to_sign(canonical)
        if not hmac.compare_digest(v3_signature(key.access_key_secret, string_to_sign), signature):
            raise ApiError("SignatureDoesNotMatch", detail=f"server string to sign is:{string_to_sign}")
        _check_time(headers.get("x-acs-date"))
        self._nonce(key_id, headers.get("x-acs-signature-nonce"))
        return Caller(key_id, "v3")

    def _verify_v2(self, request: IncomingRequest) -> Caller:
        params = dict(request.query)
        for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp"):
            if not params.get(name):
                raise ApiError("IncompleteSignature", detail=f"The parameter {name} is missing.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise ApiError("InvalidSignatureMethod")
        key = self._key(params["AccessKeyId"], params.get("SecurityToken"))
        signed = [(k, v) for k, v in request.query if k != "Signature"] + request.form
        string_to_sign = v2_string_to_sign(request.method, signed)
        if not hmac.compare_digest(v2_signature(key.access_key_secret, string_to_sign), params["Signature"]):
            raise ApiError("SignatureDoesNotMatch", detail=f"server string to sign is:{string_to_sign}")
        _check_time(params["Timestamp"])
        self._nonce(key.access_key_id, params.get("SignatureNonce"))
        return Caller(key.access_key_id, "v2")
