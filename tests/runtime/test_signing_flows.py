"""What the httpx auth flows sign beyond the published vectors: form bodies, empty values, defaults, refreshes."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import pytest

from imm_faces.runtime.auth.signing import (
    FORM_CONTENT_TYPE,
    AcsV3Auth,
    RpcV2Auth,
    parse_v3_authorization,
    v2_signature,
    v2_string_to_sign,
    v3_canonical_request,
)
from imm_faces.runtime.credentials import Credentials, RefreshingCredentials
from imm_faces.runtime.timestamps import utc_seconds

CREDS = Credentials("FAKEAKID", "FAKESECRET")


def _v2_signed(request: httpx.Request) -> dict[str, str]:
    auth = RpcV2Auth(CREDS, nonce=lambda: "nonce")
    signed = next(auth.auth_flow(request))
    return dict(parse_qsl(signed.url.query.decode(), keep_blank_values=True))


def _v2_expected(method: str, sent: dict[str, str], body: list[tuple[str, str]] | None = None) -> str:
    params = [(k, v) for k, v in sent.items() if k != "Signature"] + (body or [])
    return v2_signature("FAKESECRET", v2_string_to_sign(method, params))


def test_v2_signs_the_form_body_parameters_too() -> None:
    body = [("FigureCluster", '{"ObjectId":"Cluster-1","Name":"Ann"}'), ("Description", "")]
    request = httpx.Request(
        "POST",
        "https://imm.example/?ProjectName=p",
        data=dict(body),
        headers={"x-acs-action": "UpdateFigureCluster", "x-acs-version": "2020-09-30"},
    )
    assert request.headers["content-type"].startswith(FORM_CONTENT_TYPE)
    sent = _v2_signed(request)
    assert sent["Signature"] == _v2_expected("POST", sent, body)
    assert sent["Signature"] != _v2_expected("POST", sent)  # the body is not left out of the signature
    assert "FigureCluster" not in sent  # the body stays in the body


def test_v2_signs_empty_values_and_defaults_the_version() -> None:
    request = httpx.Request(
        "POST", "https://imm.example/?ProjectName=p&Description=", headers={"x-acs-action": "UpdateProject"}
    )
    sent = _v2_signed(request)
    assert sent["Description"] == ""  # an empty parameter is sent and signed, not dropped
    assert sent["Version"] == "2020-09-30"
    assert (sent["Action"], sent["Format"], sent["SignatureMethod"], sent["SignatureVersion"]) == (
        "UpdateProject",
        "json",
        "HMAC-SHA1",
        "1.0",
    )
    assert sent["Signature"] == _v2_expected("POST", sent)


def test_v3_signs_an_empty_query_value() -> None:
    auth = AcsV3Auth(CREDS, clock=lambda: datetime(2024, 1, 1, tzinfo=UTC), nonce=lambda: "nonce")
    with_empty = httpx.Request(
        "POST",
        "https://imm.example/?Description=&ProjectName=p",
        headers={"x-acs-action": "UpdateProject", "x-acs-version": "2020-09-30"},
    )
    without = httpx.Request(
        "POST",
        "https://imm.example/?ProjectName=p",
        headers={"x-acs-action": "UpdateProject", "x-acs-version": "2020-09-30"},
    )
    a = next(auth.auth_flow(with_empty)).headers["Authorization"]
    b = next(auth.auth_flow(without)).headers["Authorization"]
    assert a != b  # "Description=" is part of what is signed


def test_async_flow_refreshes_credentials_off_the_event_loop() -> None:
    fetched_on: list[str] = []

    def fetch() -> Credentials:
        fetched_on.append(threading.current_thread().name)
        return Credentials("STS.id", "sts-secret", "sts-token")

    source = RefreshingCredentials(fetch, "test")
    auth = RpcV2Auth(source, nonce=lambda: "nonce")

    async def sign() -> httpx.Request:
        request = httpx.Request("POST", "https://imm.example/", headers={"x-acs-action": "GetProject"})
        flow = auth.async_auth_flow(request)
        return await flow.__anext__()

    loop_thread = threading.current_thread().name
    signed = asyncio.run(sign())
    assert fetched_on and fetched_on[0] != loop_thread
    assert dict(parse_qsl(signed.url.query.decode()))["SecurityToken"] == "sts-token"


def test_v3_signs_accept_and_content_type_as_the_official_sdk_does() -> None:
    auth = AcsV3Auth(CREDS, nonce=lambda: "nonce")
    request = httpx.Request(
        "POST",
        "https://imm.example/",
        data={"A": "1"},
        headers={"x-acs-action": "GetProject", "Accept": "application/json"},
    )
    authorization = next(auth.auth_flow(request)).headers["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == [
        "accept",
        "content-type",
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
    ]


def test_v2_takes_the_version_from_the_request() -> None:
    request = httpx.Request(
        "POST", "https://imm.example/", headers={"x-acs-action": "X", "x-acs-version": "2017-09-06"}
    )
    assert _v2_signed(request)["Version"] == "2017-09-06"


def test_timestamps_are_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        before = datetime.now(UTC).replace(microsecond=0)
        stamp = datetime.strptime(utc_seconds(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert before <= stamp <= before + timedelta(seconds=2)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_authorization_parsing_tolerates_spaces_after_commas() -> None:
    parsed = parse_v3_authorization("ACS3-HMAC-SHA256 Credential=AK, SignedHeaders=host;x-acs-date, Signature=abc")
    assert parsed == ("AK", ["host", "x-acs-date"], "abc")
    assert parse_v3_authorization("ACS3-HMAC-SHA1 Credential=AK,SignedHeaders=host,Signature=abc") is None
    assert parse_v3_authorization("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host") is None
    assert parse_v3_authorization("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders,Signature=abc") is None


def test_v3_canonical_path_defaults_to_slash_and_the_flow_signs_the_real_path() -> None:
    headers = {"host": "h", "x-acs-action": "A"}
    assert v3_canonical_request("POST", "", [], headers, "x") == v3_canonical_request("POST", "/", [], headers, "x")
    auth = AcsV3Auth(CREDS, clock=lambda: datetime(2024, 1, 1, tzinfo=UTC), nonce=lambda: "nonce")
    root = httpx.Request("POST", "https://imm.example/", headers={"x-acs-action": "A"})
    deep = httpx.Request("POST", "https://imm.example/v1/x", headers={"x-acs-action": "A"})
    assert next(auth.auth_flow(root)).headers["Authorization"] != next(auth.auth_flow(deep)).headers["Authorization"]
