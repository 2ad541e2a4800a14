"""Property: nothing sent to the emulator's OSS reads makes a 5xx. Generated over the presigned URL's query
parameters, ``x-oss-process`` strings (signed, so that they reach image processing) and the bytes of bucket
names and keys; every answer is a success or an OSS-coded 4xx (``x-oss-ec`` and an XML ``<Code>``)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import quote, unquote

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from imm_faces.emulator.server import Emulator
from imm_faces.runtime import oss_process
from imm_faces.runtime.auth.oss_signing import presign_query, presign_url
from tests.conftest import CREDS

FAST = settings(max_examples=150, deadline=None, database=None)
ODD = ["²", "١", "0" * 5000 + "1", "9" * 5000, "-1", "+1", " 1", "1e3", "0x10", "", "\x00", "%", "½", "𝟙"]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    root = tmp_path_factory.mktemp("ossfuzz") / "oss"
    (root / "photos" / "dir").mkdir(parents=True)
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buf, format="JPEG")
    (root / "photos" / "a.jpg").write_bytes(buf.getvalue())
    (root / "photos" / "dir" / "b.txt").write_text("text")
    with Emulator(oss_root=root) as e:
        yield e


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as c:
        yield c


def check(response: httpx.Response, head: bool = False) -> None:
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        assert response.headers.get("x-oss-ec"), response.headers
        if not head:
            assert response.headers["content-type"] == "application/xml" and "<Code>" in response.text


NUMBER = st.one_of(st.sampled_from(ODD), st.integers(-10, 20_000).map(str), st.text(max_size=6))
STEP = st.one_of(
    st.tuples(
        st.sampled_from(["resize"]),
        st.sampled_from(["m_lfit", "m_fixed", "m_pad", "m_x"]),
        NUMBER,
        NUMBER,
        st.sampled_from(["", ",limit_0", ",limit_1", ",limit_²"]),
    ).map(lambda t: f"resize,{t[1]},w_{t[2]},h_{t[3]}{t[4]}"),
    st.tuples(NUMBER, NUMBER, NUMBER, NUMBER).map(lambda t: f"crop,x_{t[0]},y_{t[1]},w_{t[2]},h_{t[3]}"),
    NUMBER.map(lambda q: f"quality,q_{q}"),
    st.sampled_from(["auto-orient,1", "auto-orient,0", "auto-orient,²", "format,jpg", "format,png", "info", ""]),
    st.text(max_size=20),
)
PROCESS = st.one_of(
    st.lists(STEP, min_size=1, max_size=5).map(lambda steps: "image/" + "/".join(steps)),
    st.text(max_size=40),
)


@FAST
@given(process=PROCESS, key=st.sampled_from(["a.jpg", "dir/b.txt", "missing.jpg"]), head=st.booleans())
@example(process="image/resize,w_²,h_10", key="a.jpg", head=False)
@example(process="image/crop,x_²,y_0,w_10,h_10", key="a.jpg", head=False)
@example(process="image/quality,q_²", key="a.jpg", head=False)
@example(process="image/resize,m_fixed,w_4097,h_4096,limit_0", key="a.jpg", head=False)
def test_signed_process_strings(emu: Emulator, http: httpx.Client, process: str, key: str, head: bool) -> None:
    method = "HEAD" if head else "GET"
    url = presign_url(
        f"{emu.endpoint}/photos/{quote(key)}",
        CREDS,
        bucket="photos",
        key=key,
        region="cn-hangzhou",
        expires=60,
        method=method,
        query=[(oss_process.PARAMETER, process)],
    )
    check(http.request(method, url), head)


QUERY_NAMES = st.sampled_from(
    [
        "x-oss-expires",
        "x-oss-date",
        "x-oss-credential",
        "x-oss-signature",
        "x-oss-signature-version",
        "x-oss-additional-headers",
        "x-oss-security-token",
        "x-oss-process",
        "other",
    ]
)
QUERY_VALUES = st.one_of(st.sampled_from(ODD), st.text(max_size=40), st.binary(max_size=20).map(lambda b: b.hex()))


@FAST
@given(changes=st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=4), raw=st.binary(max_size=30))
@example(changes=[("x-oss-expires", "²")], raw=b"")
@example(changes=[("x-oss-expires", "0" * 5000 + "1")], raw=b"")
def test_presigned_query_parameters(
    emu: Emulator, http: httpx.Client, changes: list[tuple[str, str]], raw: bytes
) -> None:
    """The presigned parameters, each replaced or added (unsigned now, so mostly refused), and raw query bytes."""
    pairs = dict(presign_query(CREDS, bucket="photos", key="a.jpg", region="cn-hangzhou", expires=60))
    for name, value in changes:
        pairs[name] = value
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs.items())
    query += "&" + "".join(f"%{b:02X}" if b > 0x7E or b < 0x21 or b in b"#%" else chr(b) for b in raw)
    check(http.get(f"{emu.endpoint}/photos/a.jpg?{query}"))


@FAST
@given(bucket=st.binary(max_size=70), key=st.binary(max_size=80))
@example(bucket=b"pho\x00tos", key=b"a.jpg")
@example(bucket=b"photos", key=b"a\x00.jpg")
@example(bucket=b"photos", key=b"../../etc/passwd")
@example(bucket=b"photos", key=b"\xff\xfe.jpg")
@example(bucket=b"photos", key=b"x" * 1100)
def test_bucket_and_key_bytes(emu: Emulator, http: httpx.Client, bucket: bytes, key: bytes) -> None:
    """Any bytes for a bucket and a key, signed for what the server will decode them to."""
    path_b = "".join(f"%{b:02X}" for b in bucket)
    path_k = "".join("/" if b == 0x2F else f"%{b:02X}" for b in key)
    seen_bucket, seen_key = unquote(path_b, errors="replace"), unquote(path_k, errors="replace")
    pairs = presign_query(CREDS, bucket=seen_bucket, key=seen_key, region="cn-hangzhou", expires=60)
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    check(http.get(f"{emu.endpoint}/{path_b}/{path_k}?{query}"))
