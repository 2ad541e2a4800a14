"""Property: nothing a client sends makes the emulator answer 5xx, and every answer that is not 2xx is IMM's
error body with a Code. Generated over the catalog's operations and parameters (signed V3 and V2), over signed
requests with arbitrary bodies, and over raw requests (methods, paths, headers, bodies)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.auth.signing import FORM_CONTENT_TYPE
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import CATALOG, datasets, projects
from tests.conftest import CREDS
from tests.emulator.signing_kit import v2, v3
from tests.fakes import SidecarAnalyzer

FAST = settings(max_examples=120, deadline=None, database=None)
PROJECT, DATASET = "fz", "fd"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    tmp = tmp_path_factory.mktemp("fuzz")
    emu = Emulator(oss_root=tmp / "oss", analyzer=SidecarAnalyzer(tmp)).start()  # state in memory: no fsync
    try:
        with ImmClient(endpoint=emu.endpoint, credentials=CREDS) as c:  # so that some requests reach real state
            c.call(projects.CreateProject, project_name=PROJECT)
            c.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as c:
        yield c


def _wire_names(action: str) -> list[str]:
    return [info.alias or name for name, info in CATALOG[action].request.model_fields.items()]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**70), 2**70).map(str),
    JSON.map(json.dumps),
    st.sampled_from(
        [
            PROJECT,
            DATASET,
            "",
            "oss://bucket/a.jpg",
            "oss://bucket/../../etc",
            "true",
            "1e309",
            "NaN",
            "b2E6LTU=",
            '{"a":' * 40,
            "[" * 40,
        ]
    ),
    st.integers(0, 400).map(lambda d: "[" * d + "]" * d),
)


def _assert_imm_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 300 and response.request.method != "HEAD":
        body: dict[str, Any] = response.json()
        assert body.get("Code") and body.get("RequestId"), body


@FAST
@given(action=st.sampled_from(sorted(CATALOG)), data=st.data(), signer=st.sampled_from(["v3", "v2"]))
def test_signed_catalog_requests_never_fail_the_server(
    fuzzed: Emulator, http: httpx.Client, action: str, data: st.DataObject, signer: str
) -> None:
    names = [*_wire_names(action), "Action", "Version", "NextToken", "Unknown"]
    params = data.draw(st.dictionaries(st.sampled_from(names), VALUES, max_size=6))
    params.setdefault("ProjectName", PROJECT)
    request = v3(fuzzed.endpoint, action, params) if signer == "v3" else v2(fuzzed.endpoint, action, params)
    _assert_imm_answer(http.send(request))


@FAST
@given(
    action=st.sampled_from([*sorted(CATALOG), "Nope", ""]),
    body=st.binary(max_size=3000),
    content_type=st.sampled_from([None, FORM_CONTENT_TYPE, "application/json", "text/plain; charset=latin-1"]),
    signer=st.sampled_from(["v3", "v2"]),
)
def test_signed_requests_with_any_body_never_fail_the_server(
    fuzzed: Emulator, http: httpx.Client, action: str, body: bytes, content_type: str | None, signer: str
) -> None:
    if signer == "v3":
        request = v3(fuzzed.endpoint, action, {"ProjectName": PROJECT}, body=body, content_type=content_type)
    else:
        request = v2(fuzzed.endpoint, action, {"ProjectName": PROJECT})
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        if content_type:
            headers["content-type"] = content_type
        request = httpx.Request("POST", request.url, headers=headers, content=body)
    _assert_imm_answer(http.send(request))


@FAST
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO"]),
    path=st.sampled_from(["/", "/-/ready", "/x", "//", "/%2e%2e/", "/%ff"])
    | st.from_regex(r"/[A-Za-z0-9._~%-]{0,16}", fullmatch=True),
    query=st.lists(
        st.tuples(st.sampled_from(["Action", "Signature", "AccessKeyId", "Timestamp", "x"]), st.text(max_size=20)),
        max_size=5,
    ),
    authorization=st.sampled_from(
        [
            None,
            "ACS3-HMAC-SHA256 Credential=emulator-access-key-id,SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 junk",
            "ACS3-X",
            "Bearer x",
        ]
    ),
    content_type=st.sampled_from([None, FORM_CONTENT_TYPE, "application/json"]),
    body=st.binary(max_size=2000),
)
def test_raw_requests_never_fail_the_server(
    fuzzed: Emulator,
    http: httpx.Client,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    authorization: str | None,
    content_type: str | None,
    body: bytes,
) -> None:
    headers = {k: v for k, v in (("authorization", authorization), ("content-type", content_type)) if v}
    url = httpx.URL(fuzzed.endpoint + path, params=query)
    _assert_imm_answer(http.request(method, url, headers=headers, content=body))
