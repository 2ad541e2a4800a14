"""The emulator's OSS-style object reads: signed (V4) like OSS, contained in --oss-root, OSS's XML errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.auth.oss_signing import authorization_headers, presign_url
from imm_faces.runtime.credentials import Credentials
from tests.conftest import CREDS, STS_KEY

DATA = b"\x89PNG fake bytes \x00\xff" * 100


@pytest.fixture
def bucket(oss_root: Path) -> Path:
    folder = oss_root / "photos" / "dir"
    folder.mkdir(parents=True)
    (folder / "a b+ä.png").write_bytes(DATA)
    (folder / ".hidden.png").write_bytes(DATA)
    (oss_root.parent / "secret.txt").write_text("outside")
    (folder / "link.png").symlink_to(oss_root.parent / "secret.txt")
    return folder


def url(emulator: Emulator, key: str, creds: Credentials = CREDS, bucket: str = "photos", **kw: object) -> str:
    base = f"{emulator.endpoint}/{bucket}/" + quote(key, safe="/").replace("..", "%2E%2E")  # no client-side ..
    return presign_url(base, creds, bucket=bucket, key=key, region="cn-hangzhou", **{"expires": 60, **kw})  # type: ignore[arg-type]


def code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/xml", response.text
    return response.text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def test_presigned_get_and_head_serve_the_object(emulator: Emulator, bucket: Path) -> None:
    got = httpx.get(url(emulator, "dir/a b+ä.png"), trust_env=False)
    assert got.status_code == 200 and got.content == DATA
    assert got.headers["content-type"] == "image/png" and got.headers["etag"].startswith('"')
    head = httpx.head(url(emulator, "dir/a b+ä.png", creds=STS_KEY, method="HEAD"), trust_env=False)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(DATA))


def test_header_signed_get_serves_the_object(emulator: Emulator, bucket: Path) -> None:
    headers = authorization_headers(CREDS, method="GET", bucket="photos", key="dir/a b+ä.png", region="r", headers={})
    got = httpx.get(f"{emulator.endpoint}/photos/dir/a%20b%2B%C3%A4.png", headers=headers, trust_env=False)
    assert got.status_code == 200 and got.content == DATA


def test_refusals(emulator: Emulator, bucket: Path) -> None:
    key = "dir/a b+ä.png"
    good = url(emulator, key)
    cases = {
        "SignatureDoesNotMatch": [
            url(emulator, key, creds=Credentials(CREDS.access_key_id, "wrong-secret")),
            good.replace("a%20b", "a%20c"),  # another object than the one signed
            good.replace("x-oss-expires=60", "x-oss-expires=61"),
            good.replace("/photos/", "/Photos/"),
        ],
        "AccessDenied": [url(emulator, key, now=datetime.now(UTC) - timedelta(seconds=120))],  # expired
        "RequestTimeTooSkewed": [url(emulator, key, now=datetime.now(UTC) + timedelta(hours=1))],
        "InvalidAccessKeyId": [url(emulator, key, creds=Credentials("nobody", "x"))],
        "InvalidSecurityToken": [
            url(emulator, key, creds=Credentials(STS_KEY.access_key_id, STS_KEY.access_key_secret)),
            url(emulator, key, creds=Credentials(STS_KEY.access_key_id, STS_KEY.access_key_secret, "other")),
        ],
        "NoSuchKey": [
            url(emulator, "dir/missing.png"),
            url(emulator, "dir/.hidden.png"),
            url(emulator, "dir/link.png"),
            url(emulator, "dir/../../../secret.txt"),
        ],
        "NoSuchBucket": [url(emulator, "x.png", bucket="nobucket")],
    }
    for expected, urls in cases.items():
        for u in urls:
            response = httpx.get(u, trust_env=False)
            assert code(response) == expected, (u, response.text)
            assert response.status_code in (400, 403, 404)
            assert "emulator-access-key-secret" not in response.text
    as_head = httpx.head(good, trust_env=False)  # signed for GET
    assert as_head.status_code == 403 and as_head.headers["x-oss-ec"] == "SignatureDoesNotMatch"
    put = httpx.put(good, content=b"x", trust_env=False)
    assert put.status_code == 405 and code(put) == "MethodNotAllowed"


def test_unsigned_reads_are_not_served(emulator: Emulator, bucket: Path) -> None:
    """No public-read: without an OSS signature the path is not an object, it is IMM's unknown path."""
    response = httpx.get(f"{emulator.endpoint}/photos/dir/a%20b%2B%C3%A4.png", trust_env=False)
    assert response.status_code == 404 and response.json()["Code"] == "InvalidAction.NotFound"
    assert DATA not in response.content


def test_a_presigned_url_works_until_it_expires(emulator: Emulator, bucket: Path) -> None:
    """Valid from its x-oss-date for x-oss-expires seconds, then refused (dates in the past: no clock race)."""
    now = datetime.now(UTC)
    fresh = url(emulator, "dir/a b+ä.png", expires=60, now=now - timedelta(seconds=50))
    assert httpx.get(fresh, trust_env=False).status_code == 200
    stale = url(emulator, "dir/a b+ä.png", expires=60, now=now - timedelta(seconds=70))
    refused = httpx.get(stale, trust_env=False)
    assert refused.status_code == 403 and "Request has expired" in refused.text


def test_sts_keys_the_emulator_issued_read_objects_until_they_expire(emulator: Emulator, bucket: Path) -> None:
    """OSS reads accept the same keys IMM does, looked up live: an issued STS key works, then expires."""
    issued = Credentials("STS.issued-id", "issued-secret", "issued-token", expiration=time.time() + 600)
    emulator.auth.issue(issued)
    assert httpx.get(url(emulator, "dir/a b+ä.png", creds=issued), trust_env=False).status_code == 200
    wrong = Credentials("STS.issued-id", "issued-secret", "another-token")
    assert code(httpx.get(url(emulator, "dir/a b+ä.png", creds=wrong), trust_env=False)) == "InvalidSecurityToken"
    expired = Credentials("STS.old-id", "old-secret", "old-token", expiration=time.time() - 1)
    emulator.auth.issue(expired)
    refused = httpx.get(url(emulator, "dir/a b+ä.png", creds=expired), trust_env=False)
    assert refused.status_code == 403 and code(refused) == "InvalidSecurityToken"
