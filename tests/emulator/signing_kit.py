"""Signed requests built by hand (V3 and V2), so tests can tamper with them after signing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx

from imm_faces.runtime.auth.signing import (
    API_VERSION,
    FORM_CONTENT_TYPE,
    encode_query,
    new_nonce,
    v2_signature,
    v2_string_to_sign,
    v3_authorization,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.timestamps import utc_seconds
from tests.conftest import CREDS


def v3(
    endpoint: str,
    action: str | None,
    params: Mapping[str, str],
    *,
    creds: Credentials = CREDS,
    body: bytes = b"",
    content_type: str | None = None,
    method: str = "POST",
    extra_headers: Mapping[str, str] | None = None,
    unsigned: Iterable[str] = (),
    when: datetime | None = None,
) -> httpx.Request:
    """A request signed with ACS3-HMAC-SHA256; header names in ``unsigned`` are left out of SignedHeaders."""
    url = httpx.URL(endpoint + "/").copy_with(query=encode_query(dict(params)).encode() or None)
    sha = hashlib.sha256(body).hexdigest()
    headers = {
        "host": url.netloc.decode(),
        "accept": "application/json",
        "x-acs-version": API_VERSION,
        "x-acs-date": utc_seconds(when),
        "x-acs-signature-nonce": new_nonce(),
        "x-acs-content-sha256": sha,
    }
    if action is not None:
        headers["x-acs-action"] = action
    if creds.security_token:
        headers["x-acs-accesskey-id"] = creds.access_key_id
        headers["x-acs-security-token"] = creds.security_token
    if content_type:
        headers["content-type"] = content_type
    headers.update(extra_headers or {})
    signed = {k: v for k, v in headers.items() if k not in set(unsigned)}
    canonical, names = v3_canonical_request(method, "/", list(params.items()), signed, sha)
    signature = v3_signature(creds.access_key_secret, v3_string_to_sign(canonical))
    headers["authorization"] = v3_authorization(creds.access_key_id, names, signature)
    return httpx.Request(method, url, headers=headers, content=body)


def v2(
    endpoint: str,
    action: str,
    params: Mapping[str, str],
    *,
    creds: Credentials = CREDS,
    form: Mapping[str, str] | None = None,
    method: str = "POST",
    header_action: str | None = None,
    when: datetime | None = None,
) -> httpx.Request:
    """A request signed with the legacy RPC signature; ``header_action`` adds an (unsigned) x-acs-action."""
    query = {
        **params,
        "Action": action,
        "Version": API_VERSION,
        "Format": "json",
        "Timestamp": utc_seconds(when),
        "SignatureNonce": new_nonce(),
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": creds.access_key_id,
    }
    if creds.security_token:
        query["SecurityToken"] = creds.security_token
    signed = list(query.items()) + list((form or {}).items())
    query["Signature"] = v2_signature(creds.access_key_secret, v2_string_to_sign(method, signed))
    headers = {"x-acs-action": header_action} if header_action else {}
    body = b""
    if form:
        headers["content-type"] = FORM_CONTENT_TYPE
        body = encode_query(dict(form)).encode()
    url = httpx.URL(endpoint + "/").copy_with(query=encode_query(query).encode())
    return httpx.Request(method, url, headers=headers, content=body)


def with_body(request: httpx.Request, body: bytes) -> httpx.Request:
    """The same request with another body (and a Content-Length to match)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    return httpx.Request(request.method, request.url, headers=headers, content=body)


def with_query(request: httpx.Request, **changes: str) -> httpx.Request:
    params = dict(request.url.params)
    params.update(changes)
    request.url = request.url.copy_with(query=encode_query(params).encode())
    return request


def send(request: httpx.Request) -> tuple[int, dict[str, Any]]:
    """Send a request; return the status and the JSON body (``{}`` when there is none)."""
    with httpx.Client(trust_env=False, timeout=30) as http:
        response = http.send(request)
    return response.status_code, (response.json() if response.content else {})
