"""The client against httpx.MockTransport: retries, error mapping, pagination, redaction, endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qsl

import httpx
import pytest

from imm_faces.runtime.client import AsyncImmClient, ImmClient, RetryPolicy, endpoint_url
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.errors import (
    ConfigError,
    DeadlineExceededError,
    ImmError,
    ServerError,
    ThrottlingError,
    TransportError,
)
from imm_faces.runtime.operations.figure_clusters import GetFigureCluster, QueryFigureClusters
from imm_faces.runtime.operations.projects import GetProject

CREDS = Credentials("AKID", "TOPSECRET-VALUE", "STS-TOKEN-VALUE")
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)


def client(handler: httpx.MockTransport) -> ImmClient:
    return ImmClient(endpoint="http://imm.test", credentials=CREDS, retry=FAST, transport=handler)


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"RequestId": "RID-1", "HostId": "imm.test", "Code": code, "Message": f"msg {code}"}
    return httpx.Response(status, json=body, headers=headers)


def test_retries_throttling_and_5xx_with_a_fresh_nonce_each_time() -> None:
    seen: list[httpx.Request] = []
    answers = [
        error(429, "Throttling.User"),
        error(503, "ServiceUnavailable"),
        httpx.Response(200, json={"RequestId": "ok", "Project": {"ProjectName": "p"}}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    with client(httpx.MockTransport(handler)) as imm:
        assert imm.call(GetProject, project_name="p").project.project_name == "p"  # type: ignore[union-attr]
    nonces = {r.headers["x-acs-signature-nonce"] for r in seen}
    assert len(seen) == 3 and len(nonces) == 3


def test_honours_retry_after_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("imm_faces.runtime.client.time.sleep", slept.append)
    answers = iter([error(429, "Throttling", {"x-acs-retry-after": "1500"}), httpx.Response(200, json={})])
    with client(httpx.MockTransport(lambda r: next(answers))) as imm:
        imm.call(GetProject, project_name="p")
    assert slept == [1.5]


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "InvalidArgument"), (404, "InvalidAccessKeyId.NotFound"), (400, "ResourceNotFound"), (403, "Forbidden.RAM")],
)
def test_other_4xx_are_not_retried_and_map_to_typed_errors(status: int, code: str) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return error(status, code)

    with client(httpx.MockTransport(handler)) as imm, pytest.raises(ImmError) as exc:
        imm.call(GetProject, project_name="p")
    assert calls == 1
    assert (exc.value.code, exc.value.status, exc.value.request_id) == (code, status, "RID-1")
    assert exc.value.message == f"msg {code}" and exc.value.action == "GetProject"


def test_gives_up_after_max_attempts_with_the_right_error_class() -> None:
    with client(httpx.MockTransport(lambda r: error(500, "InternalError"))) as imm, pytest.raises(ServerError):
        imm.call(GetProject, project_name="p")
    with client(httpx.MockTransport(lambda r: error(429, "Throttling"))) as imm, pytest.raises(ThrottlingError):
        imm.call(GetProject, project_name="p")


def test_connection_errors_are_retried_then_reported() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("refused", request=request)

    with client(httpx.MockTransport(handler)) as imm, pytest.raises(TransportError, match="cannot reach"):
        imm.call(GetProject, project_name="p")
    assert attempts == 4


def test_pagination_walks_next_token() -> None:
    pages = {"": (["c1", "c2"], "t1"), "t1": (["c3"], "t2"), "t2": (["c4"], None)}
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = dict(parse_qsl(request.url.query.decode())).get("NextToken", "")
        tokens.append(token)
        ids, nxt = pages[token]
        body: dict[str, object] = {"FigureClusters": [{"ObjectId": i} for i in ids]}
        if nxt:
            body["NextToken"] = nxt
        return httpx.Response(200, json=body)

    with client(httpx.MockTransport(handler)) as imm:
        ids = [c.object_id for c in imm.paginate(QueryFigureClusters, project_name="p", dataset_name="d")]
    assert ids == ["c1", "c2", "c3", "c4"] and tokens == ["", "t1", "t2"]


def test_async_client_pages_and_retries_too() -> None:
    answers = iter([error(503, "ServiceUnavailable"), httpx.Response(200, json={"FigureCluster": {"ObjectId": "c"}})])

    async def go() -> str | None:
        async with AsyncImmClient(
            endpoint="http://imm.test",
            credentials=CREDS,
            retry=FAST,
            transport=httpx.MockTransport(lambda r: next(answers)),
        ) as imm:
            got = await imm.call(GetFigureCluster, project_name="p", dataset_name="d", object_id="c")
            return got.figure_cluster.object_id if got.figure_cluster else None

    assert asyncio.run(go()) == "c"


def test_secrets_never_appear_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    echo = "server string to sign is: x-acs-security-token:STS-TOKEN-VALUE key TOPSECRET-VALUE"
    answers = iter([httpx.Response(400, json={"Code": "SignatureDoesNotMatch", "Message": echo})])
    with client(httpx.MockTransport(lambda r: next(answers))) as imm:
        assert "TOPSECRET" not in repr(imm) and "STS-TOKEN" not in repr(imm)
        with pytest.raises(ImmError) as exc:
            imm.call(GetProject, project_name="p")
    text = f"{exc.value} {exc.value.message} {caplog.text} {CREDS!r} {CREDS}"
    assert "TOPSECRET-VALUE" not in text and "STS-TOKEN-VALUE" not in text
    assert "<redacted>" in exc.value.message


def test_request_is_signed_and_parameters_travel_in_the_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    with client(httpx.MockTransport(handler)) as imm:
        imm.call(GetProject, project_name="p", with_statistics=True)
    (req,) = seen
    assert req.method == "POST" and req.content == b""
    assert dict(parse_qsl(req.url.query.decode())) == {"ProjectName": "p", "WithStatistics": "true"}
    assert req.headers["x-acs-action"] == "GetProject" and req.headers["x-acs-security-token"] == "STS-TOKEN-VALUE"
    assert req.headers["Authorization"].startswith("ACS3-HMAC-SHA256 Credential=AKID,")


def test_bad_keyword_parameters_are_a_clear_config_error() -> None:
    ok = httpx.MockTransport(lambda r: httpx.Response(200, json={}))
    with client(ok) as imm, pytest.raises(ConfigError, match="The parameter ProjectName is required"):
        imm.call(GetProject)


def test_invalid_response_body_is_reported() -> None:
    bad = httpx.Response(200, content=json.dumps({"Project": "not-an-object"}).encode())
    with client(httpx.MockTransport(lambda r: bad)) as imm, pytest.raises(ImmError, match="InvalidResponse"):
        imm.call(GetProject, project_name="p")


@pytest.mark.parametrize(
    ("region", "endpoint", "network", "expected"),
    [
        ("cn-hangzhou", None, "public", "https://imm.cn-hangzhou.aliyuncs.com/"),
        ("cn-shanghai", None, "vpc", "https://imm-vpc.cn-shanghai.aliyuncs.com/"),
        (None, "127.0.0.1:8000", "public", "https://127.0.0.1:8000/"),
        ("cn-hangzhou", "http://127.0.0.1:8000", "public", "http://127.0.0.1:8000/"),
    ],
)
def test_endpoints(region: str | None, endpoint: str | None, network: str, expected: str) -> None:
    assert endpoint_url(region, endpoint, network) == expected  # type: ignore[arg-type]


def test_no_region_no_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="region"):
        endpoint_url(None, None)


def test_deadline_bounds_server_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server asking for a 600 s back-off on every answer: the call fails at once with the deadline, naming
    the last failure, instead of sleeping (sync and async alike)."""
    slept: list[float] = []
    monkeypatch.setattr("imm_faces.runtime.client.time.sleep", slept.append)

    def busy(request: httpx.Request) -> httpx.Response:
        return error(503, "ServiceUnavailable", {"x-acs-retry-after": "600000"})

    with (
        ImmClient(
            endpoint="http://imm.test", credentials=CREDS, transport=httpx.MockTransport(busy), deadline=30
        ) as imm,
        pytest.raises(DeadlineExceededError) as exc,
    ):
        imm.call(GetProject, project_name="p")
    assert slept == []
    assert "next attempt (due in 120.00 s)" in str(exc.value) and "ServiceUnavailable" in str(exc.value)
    assert isinstance(exc.value.last_failure, ImmError) and exc.value.last_failure.status == 503

    async def go() -> None:
        async with AsyncImmClient(
            endpoint="http://imm.test", credentials=CREDS, deadline=30, transport=httpx.MockTransport(busy)
        ) as imm:
            await imm.call(GetProject, project_name="p")

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        asyncio.run(go())
    assert time.monotonic() - started < 5


def test_deadline_allows_back_off_that_fits_and_cuts_each_attempt_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("imm_faces.runtime.client.time.sleep", slept.append)
    timeouts: list[dict[str, float]] = []
    answers = iter([error(429, "Throttling", {"x-acs-retry-after": "1500"}), httpx.Response(200, json={})])

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return next(answers)

    with ImmClient(
        endpoint="http://imm.test", credentials=CREDS, transport=httpx.MockTransport(handler), timeout=30.0, deadline=10
    ) as imm:
        imm.call(GetProject, project_name="p")
    assert slept == [1.5]
    assert all(0 < v <= 10 for t in timeouts for v in t.values())  # 30 s per request, cut to what is left


def test_no_attempt_starts_after_the_deadline() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json={})

    with ImmClient(
        endpoint="http://imm.test", credentials=CREDS, transport=httpx.MockTransport(handler), deadline=0.05
    ) as imm:
        imm.call(GetProject, project_name="p")
        time.sleep(0.06)
        with pytest.raises(DeadlineExceededError):
            imm.call(GetProject, project_name="p")
    assert calls == 1


def test_v2_sts_request_url_is_redacted_in_httpx_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with ImmClient(
        endpoint="http://imm.test",
        credentials=CREDS,
        signature_version="v2",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})),
    ) as imm:
        imm.call(GetProject, project_name="p")
    assert "HTTP Request" in caplog.text and "SecurityToken=" in caplog.text
    assert "STS-TOKEN-VALUE" not in caplog.text
