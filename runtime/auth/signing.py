"""Alibaba Cloud request signatures, as ``httpx.Auth`` flows and as pure functions.

* ACS3-HMAC-SHA256 ("V3", the default of Alibaba's own SDKs): an HMAC-SHA256 over a canonical request
  built from the method, path, decoded query, signed headers and the SHA-256 of the body.
* The legacy RPC signature ("V2", HMAC-SHA1, SignatureVersion 1.0): common parameters in the query and an
  HMAC-SHA1 over the percent-encoded canonical query.

Both sign *decoded* parameter values re-encoded per RFC 3986, so how the wire encodes a space (``+`` or
``%20``) does not matter. The pure functions are shared with the emulator, which verifies what clients send.
Every attempt gets a fresh nonce and date, because the service rejects a reused nonce.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qsl, quote

import httpx

from imm_faces.runtime.auth.credentials import CredentialSource
from imm_faces.runtime.timestamps import utc_seconds

V3_ALGORITHM = "ACS3-HMAC-SHA256"
API_VERSION = "2020-09-30"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SignatureVersion = Literal["v3", "v2"]


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8 bytes: only ``A-Z a-z 0-9 - _ . ~`` stay literal (space -> ``%20``)."""
    return quote(value, safe="-_.~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Sorted ``key=value`` pairs, each percent-encoded, joined with ``&``."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params))


def encode_query(params: Mapping[str, str]) -> str:
    """The query string a client sends: the canonical encoding, so the wire and the signature agree."""
    return canonical_query(params.items())


CANONICAL_QUERY = "imm_faces.canonical_query"
"""``httpx.Request.extensions`` key: the request's query string as :func:`encode_query` made it. The V3 signer then
uses it as the canonical query (it is one already) instead of decoding and encoding it again, as long as it is
still exactly the URL's query."""


def new_nonce() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------- V3


def v3_canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_sha256: str,
) -> tuple[str, str]:
    """Return (canonical request, signed header list). ``headers`` are exactly the headers to sign."""
    return _v3_canonical(method, path, canonical_query(query), headers, payload_sha256)


def _v3_canonical(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_sha256: str
) -> tuple[str, str]:
    """:func:`v3_canonical_request` with the canonical query already made."""
    lowered = sorted((name.lower(), value.strip()) for name, value in headers.items())
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in lowered)
    signed = ";".join(name for name, _ in lowered)
    request = "\n".join([method.upper(), path or "/", query, canonical_headers, signed, payload_sha256])
    return request, signed


def v3_string_to_sign(canonical_request: str) -> str:
    return f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def v3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v3_authorization(access_key_id: str, signed_headers: str, signature: str) -> str:
    return f"{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"


def parse_v3_authorization(value: str) -> tuple[str, list[str], str] | None:
    """Split an ``Authorization`` header into (AccessKeyId, signed header names, signature), or None."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != V3_ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    try:
        return fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]
    except KeyError:
        return None


def _v3_signed_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers to sign, from lower-cased names: IMM requires host and every x-acs-* header to be signed;
    accept and content-type are signed too because the official SDK signs them. Headers the transport adds
    later are left out."""
    return {k: v for k, v in headers.items() if k.startswith("x-acs-") or k in ("host", "accept", "content-type")}


class _Signer(httpx.Auth):
    """Holds the credentials; a fixed ``clock`` and ``nonce`` make signatures reproducible in tests.

    ``credentials`` is a fixed set or a source of temporary ones: every request is signed with what the source
    gives at that moment, so credentials refreshed during a long wait are used by the next request. An async
    client refreshes them on a worker thread, never on the event loop."""

    def __init__(
        self,
        credentials: CredentialSource,
        *,
        clock: Callable[[], datetime] | None = None,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._nonce = nonce

    def _timestamp(self) -> str:
        return utc_seconds(self._clock() if self._clock else None)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._credentials.due():
            await asyncio.to_thread(self._credentials.get)  # a refresh is blocking I/O
        for signed in self.auth_flow(request):
            yield signed


class AcsV3Auth(_Signer):
    """Sign requests with ACS3-HMAC-SHA256 (STS tokens supported)."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        creds = self._credentials.get()
        body = request.content
        added = {
            "x-acs-date": self._timestamp(),
            "x-acs-signature-nonce": self._nonce(),
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256,
        }
        if creds.security_token:
            added["x-acs-accesskey-id"] = creds.access_key_id
            added["x-acs-security-token"] = creds.security_token
        request.headers.update(added)
        # One pass over the headers (httpx joins repeated ones with ", ", as indexing them does).
        signed = _v3_signed_headers({k.lower(): v for k, v in request.headers.items()})
        # Only the URL query is canonicalised; a form body is covered by its SHA-256.
        raw_query = request.url.query
        query = request.extensions.get(CANONICAL_QUERY)
        if not isinstance(query, str) or query.encode() != raw_query:
            query = canonical_query(parse_qsl(raw_query.decode(), keep_blank_values=True))
        canonical, signed_names = _v3_canonical(
            request.method, request.url.path, query, signed, added["x-acs-content-sha256"]
        )
        signature = v3_signature(creds.access_key_secret, v3_string_to_sign(canonical))
        request.headers["Authorization"] = v3_authorization(creds.access_key_id, signed_names, signature)
        yield request


# ---------------------------------------------------------------------------------------------- V2


def v2_string_to_sign(method: str, params: Iterable[tuple[str, str]]) -> str:
    """``METHOD&%2F&pct(canonical query)``: the query is percent-encoded a second time."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def v2_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class RpcV2Auth(_Signer):
    """Sign requests with the legacy RPC signature (HMAC-SHA1). The action comes from ``x-acs-action``."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        creds = self._credentials.get()
        params = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        params.update(
            Action=request.headers["x-acs-action"],
            Version=request.headers.get("x-acs-version", API_VERSION),
            Format="json",
            Timestamp=self._timestamp(),
            SignatureNonce=self._nonce(),
            SignatureMethod="HMAC-SHA1",
            SignatureVersion="1.0",
            AccessKeyId=creds.access_key_id,
        )
        if creds.security_token:
            params["SecurityToken"] = creds.security_token
        signed = list(params.items())
        if request.headers.get("content-type", "").startswith(FORM_CONTENT_TYPE):
            signed += parse_qsl(request.content.decode(), keep_blank_values=True)
        params["Signature"] = v2_signature(creds.access_key_secret, v2_string_to_sign(request.method, signed))
        request.url = request.url.copy_with(query=encode_query(params).encode())
        yield request


def auth_for(credentials: CredentialSource, version: SignatureVersion) -> httpx.Auth:
    return RpcV2Auth(credentials) if version == "v2" else AcsV3Auth(credentials)
