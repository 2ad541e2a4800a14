"""OSS V4 signing against the official SDK's test vectors.

The vectors are the expected signatures of ``alibabacloud-oss-v2``'s ``tests/unit/signer/test_v4.py``
(github.com/aliyun/alibabacloud-oss-python-sdk-v2): same key pair, object, headers, parameters and times.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.oss_signing import (
    MAX_EXPIRES_SECONDS,
    OssSigningError,
    authorization_headers,
    canonical_request,
    presign_query,
    presign_url,
    signature,
    split_query,
)

BUCKET, KEY = "bucket", "1234+-/123/1.txt"
PARAMS = [("param1", "value1"), ("+param1", "value3"), ("|param1", "value4"), ("+param2", ""), ("|param2", ""),
          ("param2", "")]  # fmt: skip
HEADERS = {"x-oss-head1": "value", "abc": "value", "ZAbc": "value", "XYZ": "value"}


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@pytest.mark.parametrize(
    ("token", "epoch", "additional", "region", "product", "expected"),
    [
        (None, 1702743657, (), "cn-hangzhou", "oss",
         "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
         "Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"),
        ("token", 1702784856, (), "cn-hangzhou", "oss",
         "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,"
         "Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"),
        (None, 1702747512, ("ZAbc", "abc"), "cn-hangzhou", "oss",
         "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=abc;zabc,"
         "Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"),
        # default-signed and absent names among the additional headers are dropped
        (None, 1702747512, ("x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"), "cn-hangzhou", "oss",
         "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=abc;zabc,"
         "Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"),
        (None, 1702743657, (), "cb-123", "oss-cloudbox",
         "OSS4-HMAC-SHA256 Credential=ak/20231216/cb-123/oss-cloudbox/aliyun_v4_request,"
         "Signature=94ce1f12c17d148ea681030275a94449d3357f5b5b21133996eec80af3e08a43"),
    ],
)  # fmt: skip
def test_authorization_header_vectors(
    token: str | None, epoch: int, additional: tuple[str, ...], region: str, product: str, expected: str
) -> None:
    headers = {**HEADERS, "content-type": "text/plain", "x-oss-content-sha256": "UNSIGNED-PAYLOAD"}
    signed = authorization_headers(Credentials("ak", "sk", token), method="PUT", bucket=BUCKET, key=KEY,
                                   region=region, headers=headers, query=PARAMS, additional=additional,
                                   now=at(epoch), product=product)  # fmt: skip
    assert signed["Authorization"] == expected
    assert signed.get("x-oss-security-token") == token


@pytest.mark.parametrize(
    ("token", "epoch", "expires", "additional", "region", "product", "expected"),
    [
        (None, 1702781677, 599, (), "cn-hangzhou", "oss",
         "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"),
        ("token", 1702785388, 599, (), "cn-hangzhou", "oss",
         "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5"),
        (None, 1702783809, 599, ("ZAbc", "abc"), "cn-hangzhou", "oss",
         "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"),
        (None, 1702783809, 599, ("x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"), "cn-hangzhou", "oss",
         "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"),
        (None, 1702781677, 5 * 24 * 3600, (), "cn-hangzhou", "oss",
         "31029123dc7732d2d2cfd4006ea4fdb6cf86da6478f813e2bf8f87877c7b9fec"),
        (None, 1702781677, 599, ("ZAbc", "abc"), "cb-123", "oss-cloudbox",
         "07284191b9b4978ac3520cd39ee2dea2747eda454089359371ff463a6c7ba20f"),
        (None, 1702783809, 599, ("x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"), "cb-123", "oss-cloudbox",
         "16782cc8a7a554523db055eb804b508522e7e370073108ad88ee2f47496701dd"),
    ],
)  # fmt: skip
def test_presigned_query_vectors(
    token: str | None, epoch: int, expires: int, additional: tuple[str, ...], region: str, product: str,
    expected: str,
) -> None:  # fmt: skip
    headers = {**HEADERS, "content-type": "application/octet-stream"}
    pairs = presign_query(Credentials("ak", "sk", token), method="PUT", bucket=BUCKET, key=KEY, region=region,
                          expires=expires, now=at(epoch), query=PARAMS, headers=headers, additional=additional,
                          product=product)  # fmt: skip
    got = dict(pairs)
    assert got["x-oss-signature"] == expected
    assert got["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    assert got["x-oss-expires"] == str(expires)
    assert (
        got["x-oss-credential"]
        == f"ak/{datetime.fromtimestamp(epoch, UTC):%Y%m%d}/{region}/{product}/aliyun_v4_request"
    )
    assert got.get("x-oss-security-token") == token
    assert got.get("x-oss-additional-headers") == ("abc;zabc" if additional else None)


def test_presigned_url_round_trips_through_its_own_query() -> None:
    """What a server decodes from the URL re-derives the same signature (the emulator's check)."""
    creds = Credentials("ak", "s/k+e y", "tok en/+")
    url = presign_url("http://127.0.0.1:1/b/k", creds, bucket="b", key="dir/ä ö+x.jpg", region="cn-hangzhou",
                      expires=60, now=at(1702781677))  # fmt: skip
    pairs = split_query(url.split("?", 1)[1])
    given = dict(pairs)["x-oss-signature"]
    rest = [(k, v) for k, v in pairs if k != "x-oss-signature"]
    canonical = canonical_request("GET", "b", "dir/ä ö+x.jpg", rest, {})
    assert signature("s/k+e y", "20231217T025437Z", "cn-hangzhou", canonical) == given
    assert "tok%20en%2F%2B" in url and "+" not in url.split("?", 1)[1]
    assert "s/k+e y" not in url and "s%2Fk" not in url  # the secret never travels


@pytest.mark.parametrize("expires", [0, -1, MAX_EXPIRES_SECONDS + 1])
def test_expiry_outside_osss_limit_is_refused(expires: int) -> None:
    with pytest.raises(OssSigningError, match="expires: must be 1-604800"):
        presign_query(Credentials("ak", "sk"), bucket="b", key="k", region="r", expires=expires)
