"""Our signatures against the official SDK's own signing code (alibabacloud_tea_openapi), in-process.

The vectors in test_signing.py pin a few inputs; here any parameter values (every Unicode character, reserved
characters such as ``* ~ + / =``, empty strings) must give exactly the signature Alibaba's SDK computes, for V2
and V3, through the pure functions and through the httpx auth flows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import parse_qsl

import httpx
from alibabacloud_tea_openapi.utils import Utils
from hypothesis import given, settings
from hypothesis import strategies as st

from imm_faces.runtime.auth.signing import (
    AcsV3Auth,
    RpcV2Auth,
    encode_query,
    percent_encode,
    v2_signature,
    v2_string_to_sign,
    v3_authorization,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from imm_faces.runtime.credentials import Credentials

# IMM's parameter names are ASCII letters and digits (the SDK does not encode names in V3; we do, identically)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# ("P" first: never one of the common parameters the flows set, such as Action or Timestamp)
names = st.text(st.sampled_from(ALNUM), min_size=1, max_size=8).map(lambda n: f"P{n}")
values = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(["*", "~", "+ /=&%", ""])
params = st.dictionaries(names, values, max_size=5)
secrets = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)


def test_percent_encoding_is_rfc3986() -> None:
    assert percent_encode("a b*c~d+e/f=g&h-i_j.k") == "a%20b%2Ac~d%2Be%2Ff%3Dg%26h-i_j.k"
    assert percent_encode("张") == "%E5%BC%A0"
    assert encode_query({"b": "2", "a": "x y"}) == "a=x%20y&b=2"


@settings(max_examples=60, deadline=None)
@given(params, st.sampled_from(["GET", "POST"]), secrets)
def test_v2_signature_is_the_sdks(query: dict[str, str], method: str, secret: str) -> None:
    ours = v2_signature(secret, v2_string_to_sign(method, query.items()))
    assert ours == Utils.get_rpcsignature(query, method, secret)


@settings(max_examples=60, deadline=None)
@given(params, st.dictionaries(names.map(lambda n: f"x-acs-{n.lower()}"), values.map(str.strip), max_size=3), secrets)
def test_v3_authorization_is_the_sdks(query: dict[str, str], extra: dict[str, str], secret: str) -> None:
    headers = {"host": "imm.cn-hangzhou.aliyuncs.com", "x-acs-action": "GetProject", **extra}
    payload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    canonical, signed = v3_canonical_request("POST", "/", query.items(), headers, payload)
    ours = v3_authorization("AKID", signed, v3_signature(secret, v3_string_to_sign(canonical)))
    request = SimpleNamespace(method="POST", pathname="/", query=query, headers=headers)
    assert ours == Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload, "AKID", secret)


def _request(query: dict[str, str], action: str = "GetProject") -> httpx.Request:
    url = httpx.URL("https://imm.cn-hangzhou.aliyuncs.com/").copy_with(query=encode_query(query).encode())
    return httpx.Request("POST", url, headers={"x-acs-action": action, "x-acs-version": "2020-09-30"})


@settings(max_examples=40, deadline=None)
@given(params, st.booleans())
def test_v3_flow_signs_what_it_sends_as_the_sdk_would(query: dict[str, str], sts: bool) -> None:
    creds = Credentials("AKID", "SECRET", "TOKEN" if sts else None)
    auth = AcsV3Auth(creds, clock=lambda: datetime(2024, 1, 1, tzinfo=UTC), nonce=lambda: "n")
    sent = next(auth.auth_flow(_request(query)))
    signed_names = sent.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    } <= set(signed_names)
    assert ("x-acs-security-token" in signed_names) is sts
    assert all(name.islower() for name in signed_names)
    request = SimpleNamespace(
        method="POST",
        pathname="/",
        headers={n: sent.headers[n] for n in signed_names},
        query=dict(parse_qsl(sent.url.query.decode(), keep_blank_values=True)),
    )
    expected = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", sent.headers["x-acs-content-sha256"], "AKID", "SECRET"
    )
    assert sent.headers["Authorization"] == expected
    assert sent.headers["x-acs-date"] == "2024-01-01T00:00:00Z"


@settings(max_examples=40, deadline=None)
@given(params, st.booleans())
def test_v2_flow_signs_what_it_sends_as_the_sdk_would(query: dict[str, str], sts: bool) -> None:
    creds = Credentials("AKID", "SECRET", "TOKEN" if sts else None)
    auth = RpcV2Auth(creds, clock=lambda: datetime(2024, 1, 1, tzinfo=UTC), nonce=lambda: "n")
    sent = dict(parse_qsl(next(auth.auth_flow(_request(query))).url.query.decode(), keep_blank_values=True))
    signature = sent.pop("Signature")
    assert signature == Utils.get_rpcsignature(sent, "POST", "SECRET")
    assert sent["Timestamp"] == "2024-01-01T00:00:00Z" and sent["AccessKeyId"] == "AKID"
    assert {k: v for k, v in sent.items() if k in query} == query
