"""OSS signature V4 (``OSS4-HMAC-SHA256``): signed request headers and presigned URLs for OSS objects.

Follows Alibaba Cloud's "Signature Version 4" for OSS, as the official SDKs implement it
(``alibabacloud-oss-v2``'s ``SignerV4``; its unit-test vectors are in ``tests/report/test_oss_signing.py``):

- Canonical request: ``METHOD\\n/bucket/key\\ncanonical query\\ncanonical headers\\nadditional headers\\n
  payload hash``. The URI always names the bucket (for virtual-hosted and path-style URLs alike) and is
  percent-encoded except ``/``; the query pairs are percent-encoded (RFC 3986 unreserved characters kept),
  sorted, ``key=value`` or ``key`` when the value is empty; the signed headers are ``content-type``,
  ``content-md5``, every ``x-oss-*`` header and the named additional headers, lower-cased and sorted; the payload
  hash is the ``x-oss-content-sha256`` header, ``UNSIGNED-PAYLOAD`` when absent.
- String to sign: ``OSS4-HMAC-SHA256\\n<yyyymmddThhmmssZ>\\n<scope>\\nhex(sha256(canonical request))`` where the
  scope is ``<yyyymmdd>/<region>/oss/aliyun_v4_request``.
- Key: HMAC-SHA256 chained over the date, region, product and ``aliyun_v4_request``, starting from
  ``"aliyun_v4" + AccessKeySecret``.

A presigned URL carries the signature in its query (``x-oss-signature-version``, ``x-oss-credential``,
``x-oss-date``, ``x-oss-expires``, ``x-oss-signature``, and ``x-oss-security-token`` with STS credentials), so
whoever holds it may GET the object until it expires, without the bucket being public. The emulator verifies
these with the same functions (``emulator/oss_get.py``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from imm_faces.runtime.auth.credentials import Credentials
from imm_faces.runtime.auth.signing import percent_encode

ALGORITHM = "OSS4-HMAC-SHA256"
PRODUCT = "oss"
TERMINATOR = "aliyun_v4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
"""OSS's limit for a V4 presigned URL's ``x-oss-expires`` (seven days)."""
TIME_FORMAT = "%Y%m%dT%H%M%SZ"

# The query parameters of a presigned URL.
Q_VERSION = "x-oss-signature-version"
Q_CREDENTIAL = "x-oss-credential"
Q_DATE = "x-oss-date"
Q_EXPIRES = "x-oss-expires"
Q_SIGNATURE = "x-oss-signature"
Q_TOKEN = "x-oss-security-token"  # noqa: S105 - a parameter name
Q_ADDITIONAL = "x-oss-additional-headers"


class OssSigningError(ValueError):
    """A request that cannot be signed as asked (e.g. an expiry beyond OSS's limit)."""


def timestamp(when: datetime) -> str:
    """``yyyymmddThhmmssZ`` in UTC (a naive ``when`` is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """The inverse of :func:`timestamp`; raises ValueError on any other form."""
    if len(text) != 16:
        raise ValueError(f"not a {TIME_FORMAT} time: {text!r}")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def scope(date: str, region: str, product: str = PRODUCT) -> str:
    return f"{date}/{region}/{product}/{TERMINATOR}"


def is_signed_header(name: str, additional: Iterable[str] = ()) -> bool:
    lower = name.lower()
    return lower.startswith("x-oss-") or lower in ("content-type", "content-md5") or lower in additional


def additional_headers(names: Iterable[str], headers: Mapping[str, str]) -> list[str]:
    """The additional headers actually signed: lower-cased, sorted, present with a value, and not already
    signed by default (as the SDK does)."""
    present = {k.lower(): v for k, v in headers.items()}
    chosen = {n.lower() for n in names if not is_signed_header(n) and present.get(n.lower())}
    return sorted(chosen)


def canonical_uri(bucket: str | None, key: str | None) -> str:
    uri = "/" + (f"{bucket}/" if bucket else "") + (key or "")
    return quote(uri, safe="/")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Decoded ``(name, value)`` pairs -> the sorted, encoded canonical query."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" if v else k for k, v in encoded)


def canonical_request(
    method: str,
    bucket: str | None,
    key: str | None,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    additional: Sequence[str] = (),
) -> str:
    """The canonical request; ``query`` holds decoded pairs (``x-oss-signature`` must not be among them)."""
    signed = sorted((k.lower(), v) for k, v in headers.items() if is_signed_header(k, additional))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in signed)
    payload = next((v for k, v in headers.items() if k.lower() == "x-oss-content-sha256"), UNSIGNED_PAYLOAD)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(bucket, key),
            canonical_query(query),
            canonical_headers,
            ";".join(additional),
            payload,
        ]
    )


def string_to_sign(when: str, credential_scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, when, credential_scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signing_key(secret: str, date: str, region: str, product: str = PRODUCT) -> bytes:
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, product, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret: str, when: str, region: str, canonical: str, product: str = PRODUCT) -> str:
    """Hex HMAC-SHA256 of the string to sign, for the ``yyyymmddThhmmssZ`` time ``when``."""
    date = when[:8]
    text = string_to_sign(when, scope(date, region, product), canonical)
    return hmac.new(signing_key(secret, date, region, product), text.encode(), hashlib.sha256).hexdigest()


def presign_query(
    credentials: Credentials,
    *,
    method: str = "GET",
    bucket: str,
    key: str,
    region: str,
    expires: int | timedelta,
    now: datetime | None = None,
    query: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    additional: Iterable[str] = (),
    product: str = PRODUCT,
) -> list[tuple[str, str]]:
    """The decoded query pairs of a presigned request (the given ``query`` plus the signature's), in order.

    ``headers`` are those the request will carry (signed when :func:`is_signed_header`); a plain GET has none.
    ``expires`` is in seconds, 1 to :data:`MAX_EXPIRES_SECONDS`."""
    seconds = int(expires.total_seconds()) if isinstance(expires, timedelta) else int(expires)
    if not 1 <= seconds <= MAX_EXPIRES_SECONDS:
        raise OssSigningError(f"expires: must be 1-{MAX_EXPIRES_SECONDS} seconds (OSS's limit); got {seconds}")
    headers = dict(headers or {})
    when = timestamp(now or datetime.now(UTC))
    extra = additional_headers(additional, headers)
    reserved = (Q_SIGNATURE, Q_TOKEN, Q_ADDITIONAL, Q_VERSION, Q_DATE, Q_EXPIRES, Q_CREDENTIAL)
    pairs = [(k, v) for k, v in query if k not in reserved]
    pairs += [
        (Q_VERSION, ALGORITHM),
        (Q_DATE, when),
        (Q_EXPIRES, str(seconds)),
        (Q_CREDENTIAL, f"{credentials.access_key_id}/{scope(when[:8], region, product)}"),
    ]
    if credentials.security_token:
        pairs.append((Q_TOKEN, credentials.security_token))
    if extra:
        pairs.append((Q_ADDITIONAL, ";".join(extra)))
    canonical = canonical_request(method, bucket, key, pairs, headers, extra)
    pairs.append((Q_SIGNATURE, signature(credentials.access_key_secret, when, region, canonical, product)))
    return pairs


def presign_url(
    base_url: str,
    credentials: Credentials,
    *,
    bucket: str,
    key: str,
    region: str,
    expires: int | timedelta,
    method: str = "GET",
    now: datetime | None = None,
    query: Iterable[tuple[str, str]] = (),
    product: str = PRODUCT,
) -> str:
    """A presigned URL for ``base_url`` (the object's URL without a query, e.g.
    ``https://bucket.oss-cn-hangzhou.aliyuncs.com/key`` or, path-style, ``http://127.0.0.1:8000/bucket/key``)."""
    pairs = presign_query(
        credentials,
        method=method,
        bucket=bucket,
        key=key,
        region=region,
        expires=expires,
        now=now,
        query=query,
        product=product,
    )
    return (
        base_url
        + "?"
        + "&".join(f"{percent_encode(k)}={percent_encode(v)}" if v else percent_encode(k) for k, v in pairs)
    )


def authorization_headers(
    credentials: Credentials,
    *,
    method: str,
    bucket: str | None,
    key: str | None,
    region: str,
    headers: Mapping[str, str],
    query: Iterable[tuple[str, str]] = (),
    additional: Iterable[str] = (),
    now: datetime | None = None,
    product: str = PRODUCT,
) -> dict[str, str]:
    """``headers`` plus ``x-oss-date``, ``x-oss-content-sha256`` (unless given), the STS token and
    ``Authorization``: a request signed in its headers."""
    out = dict(headers)
    when = timestamp(now or datetime.now(UTC))
    out["x-oss-date"] = when
    if credentials.security_token:
        out["x-oss-security-token"] = credentials.security_token
    if not any(k.lower() == "x-oss-content-sha256" for k in out):
        out["x-oss-content-sha256"] = UNSIGNED_PAYLOAD
    extra = additional_headers(additional, out)
    canonical = canonical_request(method, bucket, key, list(query), out, extra)
    value = f"{ALGORITHM} Credential={credentials.access_key_id}/{scope(when[:8], region, product)}"
    if extra:
        value += f",AdditionalHeaders={';'.join(extra)}"
    out["Authorization"] = (
        value + f",Signature={signature(credentials.access_key_secret, when, region, canonical, product)}"
    )
    return out


def split_query(raw: str) -> list[tuple[str, str]]:
    """A raw URL query -> decoded pairs (``+`` stays a plus: OSS's signer never encodes a space as ``+``)."""
    pairs = []
    for part in raw.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name, errors="strict"), unquote(value, errors="strict")))
    return pairs
