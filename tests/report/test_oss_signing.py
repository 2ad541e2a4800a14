"""OSS V4 signing against the official OSS SDK (``alibabacloud-oss-v2`` from PyPI, a dev dependency): for each
case, the signature its ``SignerV4`` computes for the same key pair, object, headers, parameters and time is the
one expected (header signing and presigned URLs, STS, additional headers, long expiry, another product)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from imm_faces.runtime.auth.oss_signing import (
    MAX_EXPIRES_SECONDS,
    OssSigningError,
    authorization_headers,
    canonical_request,
    presign_query,
    presign_url,
    signature,
    split_query,
)
from imm_faces.runtime.credentials import Credentials

BUCKET, KEY = "bucket", "1234+-/123/1.txt"
PARAMS = [
    ("param1", "value1"),
    ("+param1", "value3"),
    ("|param1", "value4"),
    ("+param2", ""),
    ("|param2", ""),
    ("param2", ""),
]
HEADERS = {"x-oss-head1": "value", "abc": "value", "ZAbc": "value", "XYZ": "value"}


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def official(
    method: str,
    headers: dict[str, str],
    token: str | None,
    epoch: int,
    additional: tuple[str, ...],
    region: str,
    product: str,
    *,
    expires: int | None = None,
) -> dict[str, str]:
    """What the official OSS SDK's V4 signer makes of the same request: its headers, or (``expires``) the
    presigned URL's query parameters."""
    from alibabacloud_oss_v2.signer.v4 import SignerV4
    from alibabacloud_oss_v2.types import Credentials as OssCredentials
    from alibabacloud_oss_v2.types import HttpRequest, SigningContext

    query = "&".join(quote(k, safe="") + (f"={quote(v, safe='')}" if v else "") for k, v in PARAMS)
    request = HttpRequest(method, f"http://{BUCKET}.oss-{region}.aliyuncs.com/object?{query}", headers=dict(headers))
    context = SigningContext(
        product=product,
        region=region,
        bucket=BUCKET,
        key=KEY,
        request=request,
        credentials=OssCredentials("ak", "sk", token),
        signing_time=at(epoch),
        additional_headers=set(additional) or None,
    )
    if expires is not None:
        context.auth_method_query = True
        context.expiration_time = at(epoch) + timedelta(seconds=expires)
    SignerV4().sign(context)
    if expires is None:
        return dict(request.headers)
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query, keep_blank_values=True).items()}


@pytest.mark.parametrize(
    ("token", "epoch", "additional", "region", "product"),
    [
        (None, 1702743657, (), "cn-hangzhou", "oss"),
        ("token", 1702784856, (), "cn-hangzhou", "oss"),
        (None, 1702747512, ("ZAbc", "abc"), "cn-hangzhou", "oss"),
        # default-signed and absent names among the additional headers are dropped
        (None, 1702747512, ("x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"), "cn-hangzhou", "oss"),
        (None, 1702743657, (), "cb-123", "oss-cloudbox"),
    ],
)
def test_authorization_header_vectors(
    token: str | None, epoch: int, additional: tuple[str, ...], region: str, product: str
) -> None:
    headers = {**HEADERS, "content-type": "text/plain", "x-oss-content-sha256": "UNSIGNED-PAYLOAD"}
    expected = official("PUT", headers, token, epoch, additional, region, product)["Authorization"]
    signed = authorization_headers(
        Credentials("ak", "sk", token),
        method="PUT",
        bucket=BUCKET,
        key=KEY,
        region=region,
        headers=headers,
        query=PARAMS,
        additional=additional,
        now=at(epoch),
        product=product,
    )
    assert signed["Authorization"] == expected
    assert signed.get("x-oss-security-token") == token


@pytest.mark.parametrize(
    ("token", "epoch", "expires", "additional", "region", "product"),
    [
        (None, 1702781677, 599, (), "cn-hangzhou", "oss"),
        ("token", 1702785388, 599, (), "cn-hangzhou", "oss"),
        (None, 1702783809, 599, ("ZAbc", "abc"), "cn-hangzhou", "oss"),
        (None, 1702783809, 599, ("x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"), "cn-hangzhou", "oss"),
        (None, 1702781677, 5 * 24 * 3600, (), "cn-hangzhou", "oss"),
        (None, 1702781677, 599, ("ZAbc", "abc"), "cb-123", "oss-cloudbox"),
        (None, 1702783809, 599, ("x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"), "cb-123", "oss-cloudbox"),
    ],
)
def test_presigned_query_vectors(
    token: str | None, epoch: int, expires: int, additional: tuple[str, ...], region: str, product: str
) -> None:
    headers = {**HEADERS, "content-type": "application/octet-stream"}
    expected = official("PUT", headers, token, epoch, additional, region, product, expires=expires)["x-oss-signature"]
    pairs = presign_query(
        Credentials("ak", "sk", token),
        method="PUT",
        bucket=BUCKET,
        key=KEY,
        region=region,
        expires=expires,
        now=at(epoch),
        query=PARAMS,
        headers=headers,
        additional=additional,
        product=product,
    )
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
    url = presign_url(
        "http://127.0.0.1:1/b/k",
        creds,
        bucket="b",
        key="dir/ä ö+x.jpg",
        region="cn-hangzhou",
        expires=60,
        now=at(1702781677),
    )
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
