"""Every test vector of research §3.4, through the pure functions and through the httpx auth flows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
import pytest

from imm_faces.runtime.auth.signing import (
    CANONICAL_QUERY,
    EMPTY_SHA256,
    AcsV3Auth,
    RpcV2Auth,
    encode_query,
    v2_signature,
    v2_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from imm_faces.runtime.credentials import Credentials

NONCE = "0123456789abcdef0123456789abcdef"
V3_HEADERS = {
    "host": "imm.cn-hangzhou.aliyuncs.com",
    "x-acs-action": "GetFigureCluster",
    "x-acs-version": "2020-09-30",
    "x-acs-date": "2024-01-01T00:00:00Z",
    "x-acs-signature-nonce": NONCE,
    "x-acs-content-sha256": EMPTY_SHA256,
}
GET_QUERY = [("DatasetName", "test-dataset"), ("ObjectId", "Cluster-1"), ("ProjectName", "test-project")]
UPDATE_QUERY = [
    ("DatasetName", "test-dataset"),
    ("FigureCluster", '{"Name":"Alice 张","ObjectId":"Cluster-1"}'),
    ("ProjectName", "test-project"),
]
V2_BASE = {
    "AccessKeyId": "FAKEAKID",
    "Action": "GetFigureCluster",
    "DatasetName": "test-dataset",
    "Format": "json",
    "ObjectId": "Cluster-1",
    "ProjectName": "test-project",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": NONCE,
    "SignatureVersion": "1.0",
    "Timestamp": "2024-01-01T00:00:00Z",
    "Version": "2020-09-30",
}


def v3(query: list[tuple[str, str]], headers: dict[str, str], payload: str = EMPTY_SHA256) -> tuple[str, str, str]:
    canonical, signed = v3_canonical_request("POST", "/", query, headers, payload)
    return canonical, signed, v3_signature("FAKESECRET", v3_string_to_sign(canonical))


def test_v3_1_canonical_request_string_to_sign_and_signature() -> None:
    canonical, signed, signature = v3(GET_QUERY, V3_HEADERS)
    assert canonical == (
        "POST\n/\nDatasetName=test-dataset&ObjectId=Cluster-1&ProjectName=test-project\n"
        "host:imm.cn-hangzhou.aliyuncs.com\nx-acs-action:GetFigureCluster\n"
        f"x-acs-content-sha256:{EMPTY_SHA256}\nx-acs-date:2024-01-01T00:00:00Z\n"
        f"x-acs-signature-nonce:{NONCE}\nx-acs-version:2020-09-30\n\n"
        f"host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n{EMPTY_SHA256}"
    )
    assert v3_string_to_sign(canonical) == (
        "ACS3-HMAC-SHA256\n2d3f31caf379759ee0becf29e5f40a47a4a791b5c8abfad9e0c1f3e7a5dc0929"
    )
    assert signed == "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    assert signature == "33abddf3b9e40691b2d60ff13d240168e919f57bc345e6735e2a1bcbad8bb814"


def test_v3_2_non_ascii_json_parameter() -> None:
    canonical, _, signature = v3(UPDATE_QUERY, {**V3_HEADERS, "x-acs-action": "UpdateFigureCluster"})
    assert canonical.split("\n")[2] == (
        "DatasetName=test-dataset&FigureCluster=%7B%22Name%22%3A%22Alice%20%E5%BC%A0%22%2C%22ObjectId"
        "%22%3A%22Cluster-1%22%7D&ProjectName=test-project"
    )
    assert v3_string_to_sign(canonical).endswith("d54d7b87a31422f5ffaa254fe7aeaa27c69c7ab6199ca7f5508f67995f9c0aef")
    assert signature == "7ad4fec744047dff26a3db248e1822a371522c9c61045f04d9ce005c377fdf3b"


def test_v3_3_sts() -> None:
    headers = {**V3_HEADERS, "x-acs-accesskey-id": "FAKEAKID", "x-acs-security-token": "FAKE-STS-TOKEN"}
    _, signed, signature = v3(GET_QUERY, headers)
    assert signed == (
        "host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;"
        "x-acs-signature-nonce;x-acs-version"
    )
    assert signature == "23f9718e72507e5d3f2b003f0209b58dbad9239b2b4c295d46f393ac1c374d3f"


def test_v3_4_form_body() -> None:
    body_hash = "b2aef2c6bd48bfec8ffae043570f0a2ddcbf4571f1589e1ba4cd34bc00f32e64"
    headers = {
        **V3_HEADERS,
        "x-acs-content-sha256": body_hash,
        "content-type": "application/x-www-form-urlencoded",
    }
    _, _, signature = v3([], headers, body_hash)
    assert signature == "07232d07300eda1c5768853941e6235fc681c864431335bad4167630674aaf8d"


def test_v2_a_public_doc_example() -> None:
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert v2_signature("testsecret", v2_string_to_sign("GET", params.items())) == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_v2_b_get_figure_cluster_and_sts() -> None:
    sts = v2_string_to_sign("POST", V2_BASE.items())
    assert sts == (
        "POST&%2F&AccessKeyId%3DFAKEAKID%26Action%3DGetFigureCluster%26DatasetName%3Dtest-dataset%26Format"
        "%3Djson%26ObjectId%3DCluster-1%26ProjectName%3Dtest-project%26SignatureMethod%3DHMAC-SHA1%26"
        "SignatureNonce%3D0123456789abcdef0123456789abcdef%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T00"
        "%253A00%253A00Z%26Version%3D2020-09-30"
    )
    assert v2_signature("FAKESECRET", sts) == "jCIKTrzHOMv1ORsrByzywFjSuKA="
    with_token = {**V2_BASE, "SecurityToken": "FAKE-STS-TOKEN"}
    assert v2_signature("FAKESECRET", v2_string_to_sign("POST", with_token.items())) == "na/tfogee+bhX28SxeqkRXznTLU="


def test_v2_c_non_ascii_json_parameter() -> None:
    params = {k: v for k, v in V2_BASE.items() if k != "ObjectId"}
    params.update(Action="UpdateFigureCluster", FigureCluster='{"Name":"Alice 张","ObjectId":"Cluster-1"}')
    sts = v2_string_to_sign("POST", params.items())
    assert "FigureCluster%3D%257B%2522Name%2522%253A%2522Alice%2520%25E5%25BC%25A0%2522" in sts
    assert v2_signature("FAKESECRET", sts) == "uk3F3/1piCPHWFWGZkVTlZ0UzWA="


def _fixed() -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC)


def _request(action: str, query: list[tuple[str, str]]) -> httpx.Request:
    url = httpx.URL("https://imm.cn-hangzhou.aliyuncs.com/").copy_with(query=encode_query(dict(query)).encode())
    return httpx.Request("POST", url, headers={"x-acs-action": action, "x-acs-version": "2020-09-30"})


@pytest.mark.parametrize(
    ("action", "query", "token", "expected"),
    [
        (
            "GetFigureCluster",
            GET_QUERY,
            None,
            "33abddf3b9e40691b2d60ff13d240168e919f57bc345e6735e2a1bcbad8bb814",
        ),
        (
            "UpdateFigureCluster",
            UPDATE_QUERY,
            None,
            "7ad4fec744047dff26a3db248e1822a371522c9c61045f04d9ce005c377fdf3b",
        ),
        (
            "GetFigureCluster",
            GET_QUERY,
            "FAKE-STS-TOKEN",
            "23f9718e72507e5d3f2b003f0209b58dbad9239b2b4c295d46f393ac1c374d3f",
        ),
    ],
)
def test_v3_auth_flow_reproduces_vectors(
    action: str, query: list[tuple[str, str]], token: str | None, expected: str
) -> None:
    auth = AcsV3Auth(Credentials("FAKEAKID", "FAKESECRET", token), clock=_fixed, nonce=lambda: NONCE)
    signed = next(auth.auth_flow(_request(action, query)))
    assert signed.headers["Authorization"].endswith(f"Signature={expected}")
    assert signed.headers["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=FAKEAKID,SignedHeaders=host;")
    # What travels decodes to exactly what was signed.
    assert parse_qsl(signed.url.query.decode()) == query


@pytest.mark.parametrize(
    ("action", "query", "token", "expected"),
    [
        ("GetFigureCluster", GET_QUERY, None, "jCIKTrzHOMv1ORsrByzywFjSuKA="),
        ("GetFigureCluster", GET_QUERY, "FAKE-STS-TOKEN", "na/tfogee+bhX28SxeqkRXznTLU="),
        ("UpdateFigureCluster", UPDATE_QUERY, None, "uk3F3/1piCPHWFWGZkVTlZ0UzWA="),
    ],
)
def test_v2_auth_flow_reproduces_vectors(
    action: str, query: list[tuple[str, str]], token: str | None, expected: str
) -> None:
    auth = RpcV2Auth(Credentials("FAKEAKID", "FAKESECRET", token), clock=_fixed, nonce=lambda: NONCE)
    signed = next(auth.auth_flow(_request(action, query)))
    sent = dict(parse_qsl(signed.url.query.decode()))
    assert sent["Signature"] == expected
    assert sent.get("SecurityToken") == token


def test_each_attempt_gets_a_fresh_nonce() -> None:
    auth = AcsV3Auth(Credentials("AK", "SK"))
    first = next(auth.auth_flow(_request("GetFigureCluster", GET_QUERY)))
    second = next(auth.auth_flow(_request("GetFigureCluster", GET_QUERY)))
    assert first.headers["x-acs-signature-nonce"] != second.headers["x-acs-signature-nonce"]


def _v3_signed(request: httpx.Request) -> httpx.Request:
    return next(AcsV3Auth(Credentials("FAKEAKID", "FAKESECRET"), clock=_fixed, nonce=lambda: NONCE).auth_flow(request))


def _recomputed(request: httpx.Request) -> str:
    """The signature of a signed request computed afresh from what travels (as the service does)."""
    names = request.headers["Authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    signed = {n: request.headers[n] for n in names}
    query = parse_qsl(request.url.query.decode())
    canonical, _ = v3_canonical_request(
        request.method, request.url.path, query, signed, request.headers["x-acs-content-sha256"]
    )
    return v3_signature("FAKESECRET", v3_string_to_sign(canonical))


def test_v3_auth_flow_hashes_a_body() -> None:
    """A form body is covered by its SHA-256 (IMM's V3 rule), the empty body by the empty string's."""
    body = b"ObjectIds=%5B%22a%22%5D"
    with_body = _v3_signed(
        httpx.Request(
            "POST",
            "https://imm.cn-hangzhou.aliyuncs.com/",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    )
    assert with_body.headers["x-acs-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert with_body.headers["Authorization"].endswith("Signature=" + _recomputed(with_body))
    empty = _v3_signed(httpx.Request("POST", "https://imm.cn-hangzhou.aliyuncs.com/"))
    assert empty.headers["x-acs-content-sha256"] == hashlib.sha256(b"").hexdigest()


def test_v3_auth_flow_signs_the_query_that_travels_not_a_stale_one() -> None:
    """The client hands the signer its canonical query to save work; a URL changed after that is what counts."""
    request = _request("GetFigureCluster", GET_QUERY)
    request.extensions[CANONICAL_QUERY] = "ObjectId=stale"
    signed = _v3_signed(request)
    assert signed.headers["Authorization"].endswith("Signature=" + _recomputed(signed))
    fresh = _request("GetFigureCluster", GET_QUERY)
    fresh.extensions[CANONICAL_QUERY] = fresh.url.query.decode()  # what the client sets: used as it is
    assert _v3_signed(fresh).headers["Authorization"] == signed.headers["Authorization"]


def test_v3_canonical_request_keeps_the_path() -> None:
    canonical, _ = v3_canonical_request("post", "/dir/x", [], {"host": "h"}, EMPTY_SHA256)
    assert canonical.split("\n")[:2] == ["POST", "/dir/x"]
    assert v3_canonical_request("POST", "", [], {"host": "h"}, EMPTY_SHA256)[0].split("\n")[1] == "/"
