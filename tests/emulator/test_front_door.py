"""The emulator's front door: the operation executed is the one the signature covers, a nonce is accepted once
(across restarts), and every answer that is not 2xx is an IMM error body, whatever the client sends."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from imm_faces.emulator.asgi import MAX_BODY_BYTES
from imm_faces.emulator.auth import NonceLedger
from imm_faces.emulator.server import Emulator
from imm_faces.emulator.store import Store
from imm_faces.runtime.auth.signing import FORM_CONTENT_TYPE, encode_query
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import datasets, projects, tasks
from tests.conftest import CREDS, STS_KEY
from tests.emulator.signing_kit import send, v2, v3, with_body, with_query
from tests.fakes import SidecarAnalyzer

PROJECT, DATASET = "door", "d"
TARGET = {"ProjectName": PROJECT, "DatasetName": DATASET}


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One emulator for the tests that leave its state as they found it (the project and dataset below)."""
    tmp = tmp_path_factory.mktemp("door")
    keys = [CREDS, STS_KEY]
    with Emulator(db=tmp / "imm.db", oss_root=tmp / "oss", access_keys=keys, analyzer=SidecarAnalyzer(tmp)) as emu:
        with ImmClient(endpoint=emu.endpoint, credentials=CREDS) as c:
            c.call(projects.CreateProject, project_name=PROJECT)
            c.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
        yield emu


@pytest.fixture
def client(door: Emulator) -> Iterator[ImmClient]:
    with ImmClient(endpoint=door.endpoint, credentials=CREDS) as c:
        yield c


def exists(client: ImmClient, name: str = DATASET) -> bool:
    try:
        client.call(datasets.GetDataset, project_name=PROJECT, dataset_name=name)
    except ImmError as exc:
        assert exc.resource_not_found, exc
        return False
    return True


def code_of(result: tuple[int, dict[str, object]]) -> tuple[int, object]:
    return result[0], result[1].get("Code")


# ------------------------------------------------------------------------------------------------ bypasses


def test_v2_an_unsigned_action_header_cannot_change_the_operation(door: Emulator, client: ImmClient) -> None:
    # The measured bypass: V2-signed GetDataset, x-acs-action swapped to DeleteDataset, answered 200 and deleted.
    swapped = v2(door.endpoint, "GetDataset", TARGET, header_action="DeleteDataset")
    assert code_of(send(swapped)) == (400, "SignatureDoesNotMatch")
    assert exists(client)
    # What the official SDK sends (the header repeating the signed Action) and no header at all both work.
    assert send(v2(door.endpoint, "GetDataset", TARGET, header_action="GetDataset"))[0] == 200
    status, body = send(v2(door.endpoint, "GetDataset", TARGET))
    assert status == 200 and body["Dataset"]["DatasetName"] == DATASET


def test_v3_the_action_header_must_be_signed(door: Emulator, client: ImmClient) -> None:
    unsigned = v3(door.endpoint, "DeleteDataset", TARGET, unsigned=["x-acs-action"])
    assert code_of(send(unsigned)) == (400, "IncompleteSignature")
    assert exists(client)


def _get(endpoint: str, signer: str) -> httpx.Request:
    return v3(endpoint, "GetDataset", TARGET) if signer == "v3" else v2(endpoint, "GetDataset", TARGET)


def _form(endpoint: str, **form: str) -> httpx.Request:
    return v3(endpoint, "GetDataset", {}, body=encode_query(form).encode(), content_type=FORM_CONTENT_TYPE)


def _set_header(request: httpx.Request, name: str, value: str) -> httpx.Request:
    request.headers[name] = value
    return request


def _method(request: httpx.Request, method: str) -> httpx.Request:
    return httpx.Request(method, request.url, headers=request.headers)


PAST, FUTURE = timedelta(minutes=-16), timedelta(minutes=16)
Build = Callable[[str, bool], httpx.Request]
# Each case builds the same request pristine (tamper=False: it must succeed) or tampered (it must be refused).
TAMPERING: dict[str, tuple[Build, str]] = {
    "v3 action header swapped": (
        lambda ep, t: _set_header(_get(ep, "v3"), "x-acs-action", "DeleteDataset") if t else _get(ep, "v3"),
        "SignatureDoesNotMatch",
    ),
    "v3 body changed": (
        lambda ep, t: with_body(_get(ep, "v3"), b"x") if t else _get(ep, "v3"),
        "SignatureDoesNotMatch",
    ),
    "v3 form body changed": (
        lambda ep, t: (
            with_body(_form(ep, **TARGET), encode_query({**TARGET, "DatasetName": "zz"}).encode())
            if t
            else _form(ep, **TARGET)
        ),
        "SignatureDoesNotMatch",
    ),
    "v3 form body with an unsigned content-type": (
        lambda ep, t: v3(
            ep,
            "GetDataset",
            {},
            body=encode_query(TARGET).encode(),
            content_type=FORM_CONTENT_TYPE,
            unsigned=["content-type"] if t else [],
        ),
        "IncompleteSignature",
    ),
    "v3 query changed": (
        lambda ep, t: with_query(_get(ep, "v3"), DatasetName="zz") if t else _get(ep, "v3"),
        "SignatureDoesNotMatch",
    ),
    "v3 signed header changed": (
        lambda ep, t: _set_header(_get(ep, "v3"), "accept", "text/xml") if t else _get(ep, "v3"),
        "SignatureDoesNotMatch",
    ),
    "v3 version header changed": (
        lambda ep, t: _set_header(_get(ep, "v3"), "x-acs-version", "2017-09-06") if t else _get(ep, "v3"),
        "SignatureDoesNotMatch",
    ),
    "v3 unsigned x-acs-* header added": (
        lambda ep, t: _set_header(_get(ep, "v3"), "x-acs-extra", "1") if t else _get(ep, "v3"),
        "IncompleteSignature",
    ),
    "v3 method changed": (
        lambda ep, t: _method(_get(ep, "v3"), "GET") if t else _get(ep, "v3"),
        "SignatureDoesNotMatch",
    ),
    "v3 signed Action parameter contradicts the header": (
        lambda ep, t: v3(ep, "GetDataset", {**TARGET, "Action": "DeleteDataset"} if t else TARGET),
        "SignatureDoesNotMatch",
    ),
    "v3 STS token swapped": (
        lambda ep, t: (
            _set_header(v3(ep, "GetDataset", TARGET, creds=STS_KEY), "x-acs-security-token", "other")
            if t
            else v3(ep, "GetDataset", TARGET, creds=STS_KEY)
        ),
        "InvalidSecurityToken.Mismatch",
    ),
    "v3 clock 16 minutes behind": (
        lambda ep, t: v3(ep, "GetDataset", TARGET, when=datetime.now(UTC) + (PAST if t else timedelta())),
        "InvalidTimeStamp.Expired",
    ),
    "v3 clock 16 minutes ahead": (
        lambda ep, t: v3(ep, "GetDataset", TARGET, when=datetime.now(UTC) + (FUTURE if t else timedelta())),
        "InvalidTimeStamp.Expired",
    ),
    "v2 Action parameter changed": (
        lambda ep, t: with_query(_get(ep, "v2"), Action="DeleteDataset") if t else _get(ep, "v2"),
        "SignatureDoesNotMatch",
    ),
    "v2 unsigned action header differs": (
        lambda ep, t: v2(ep, "GetDataset", TARGET, header_action="DeleteDataset" if t else "GetDataset"),
        "SignatureDoesNotMatch",
    ),
    "v2 unsigned version header differs": (
        lambda ep, t: _set_header(_get(ep, "v2"), "x-acs-version", "2017-09-06") if t else _get(ep, "v2"),
        "SignatureDoesNotMatch",
    ),
    "v2 query changed": (
        lambda ep, t: with_query(_get(ep, "v2"), DatasetName="zz") if t else _get(ep, "v2"),
        "SignatureDoesNotMatch",
    ),
    "v2 form parameters added": (
        lambda ep, t: (
            _set_header(with_body(_get(ep, "v2"), b"DatasetName=zz"), "content-type", FORM_CONTENT_TYPE)
            if t
            else _get(ep, "v2")
        ),
        "InvalidParameter.Format",  # DatasetName twice (query and form): ambiguous, refused before the signature
    ),
    "v2 method changed": (
        lambda ep, t: _method(_get(ep, "v2"), "GET") if t else _get(ep, "v2"),
        "SignatureDoesNotMatch",
    ),
    "v2 STS token swapped": (
        lambda ep, t: (
            with_query(v2(ep, "GetDataset", TARGET, creds=STS_KEY), SecurityToken="other")
            if t
            else v2(ep, "GetDataset", TARGET, creds=STS_KEY)
        ),
        "InvalidSecurityToken.Mismatch",
    ),
    "v2 clock 16 minutes behind": (
        lambda ep, t: v2(ep, "GetDataset", TARGET, when=datetime.now(UTC) + (PAST if t else timedelta())),
        "InvalidTimeStamp.Expired",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_refused(door: Emulator, client: ImmClient, case: str) -> None:
    build, code = TAMPERING[case]
    status, body = send(build(door.endpoint, False))
    assert status == 200, (case, body)  # the harness signs correctly: only the tampering is refused
    assert code_of(send(build(door.endpoint, True))) == (400, code)
    assert exists(client)


def test_a_nonce_is_accepted_once_even_across_restarts(oss_root: Path, tmp_path: Path) -> None:
    db = tmp_path / "replay.db"
    emu = Emulator(db=db, oss_root=oss_root, analyzer=SidecarAnalyzer(oss_root)).start()
    port = emu.port
    try:
        with ImmClient(endpoint=emu.endpoint, credentials=CREDS) as imm:
            imm.call(projects.CreateProject, project_name=PROJECT)
            created = v3(emu.endpoint, "CreateDataset", {"ProjectName": PROJECT, "DatasetName": "again"})
            legacy = v2(emu.endpoint, "CreateDataset", {"ProjectName": PROJECT, "DatasetName": "legacy"})
            read = v3(emu.endpoint, "GetProject", {"ProjectName": PROJECT})
            for request in (created, legacy, read):
                assert send(request)[0] == 200
                assert code_of(send(request)) == (400, "SignatureNonceUsed")
            # Were the nonces forgotten, replaying the creates would create the datasets again.
            for name in ("again", "legacy"):
                imm.call(datasets.DeleteDataset, project_name=PROJECT, dataset_name=name)
    finally:
        emu.stop()
    emu = Emulator(db=db, oss_root=oss_root, port=port, analyzer=SidecarAnalyzer(oss_root))
    emu.start()  # same port: V3 signs the host
    try:
        for request in (created, legacy, read):
            assert code_of(send(request)) == (400, "SignatureNonceUsed")
        with ImmClient(endpoint=emu.endpoint, credentials=CREDS) as imm:
            found = imm.call(datasets.ListDatasets, project_name=PROJECT).datasets or []
            assert [d.dataset_name for d in found] == []
    finally:
        emu.stop()


def test_nonces_past_their_window_are_pruned(tmp_path: Path) -> None:
    store = Store(tmp_path / "n.db")
    now = time.time()
    ledger = NonceLedger(store)
    assert ledger.use("k", "live", now + 900) and ledger.use("k", "old", now - 1)
    assert not ledger.use("k", "live", now + 900)
    ledger.close()
    reopened = NonceLedger(store)  # loads the live ones, prunes the rest
    with store.tx() as tx:
        assert [(k, n) for k, n, _ in tx.live_nonces(0)] == [("k", "live")]
    assert not reopened.use("k", "live", now + 900)
    reopened.close()
    store.close()


# ------------------------------------------------------------------------------------------------ error bodies


def _raw(endpoint: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes; return what the server answers until it closes (or the timeout)."""
    host, port = httpx.URL(endpoint).host, httpx.URL(endpoint).port
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and b'"Code"' in out and out.rstrip().endswith(b"}"):
                break
    return out


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
def test_other_methods_get_an_imm_error(door: Emulator, method: str) -> None:
    response = httpx.request(method, door.endpoint + "/", trust_env=False)
    assert response.status_code == 405 and response.json()["Code"] == "UnsupportedHTTPMethod"
    assert response.headers["allow"] == "GET, POST" and response.json()["RequestId"]


def test_head_and_unknown_paths(door: Emulator) -> None:
    head = httpx.head(door.endpoint + "/", trust_env=False)
    assert head.status_code == 405 and head.headers["allow"] == "GET, POST"  # HEAD has no body, by HTTP
    for method, path in (("GET", "/nope"), ("POST", "/a/b"), ("GET", "//"), ("POST", "/-/ready/x")):
        response = httpx.request(method, door.endpoint + path, trust_env=False)
        assert response.status_code == 404 and response.json()["Code"] == "InvalidAction.NotFound", path
    ready = httpx.post(door.endpoint + "/-/ready", trust_env=False)
    assert ready.status_code == 405 and ready.json()["Code"] == "UnsupportedHTTPMethod"


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    ],
    ids=["not-http", "huge-header", "bad-content-length"],
)
def test_malformed_http_gets_an_imm_error(door: Emulator, raw: bytes) -> None:
    answer = _raw(door.endpoint, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"Code":"' in body and b'"RequestId":"' in body


def test_encoding_errors_are_imm_errors(door: Emulator) -> None:
    ep = door.endpoint
    # Unsigned: refused before the body is even read.
    unsigned = httpx.post(ep + "/", content=b"\xff", headers={"content-type": FORM_CONTENT_TYPE}, trust_env=False)
    assert unsigned.status_code == 400 and unsigned.json()["Code"] == "IncompleteSignature"
    signed_v3 = v3(ep, "GetDataset", TARGET, body=b"\xff", content_type=FORM_CONTENT_TYPE)
    assert code_of(send(signed_v3)) == (400, "InvalidParameter.Format")
    signed_v2 = _set_header(with_body(_get(ep, "v2"), b"A=%ff"), "content-type", FORM_CONTENT_TYPE)
    assert code_of(send(signed_v2)) == (400, "InvalidParameter.Format")
    bad_query = httpx.post(ep + "/?Signature=x&A=%ff%fe", trust_env=False)
    assert bad_query.status_code == 400 and bad_query.json()["Code"] == "InvalidParameter.Format"


@pytest.mark.parametrize(("depth", "where"), [(33, "query"), (300, "query"), (1000, "query"), (100_000, "form")])
def test_deep_json_is_an_imm_error(door: Emulator, depth: int, where: str) -> None:
    params = {"ProjectName": "deep", "Tag": "[" * depth + "]" * depth}
    if where == "query":
        request = v3(door.endpoint, "CreateProject", params)
    else:  # a body over 64 KiB: verified and parsed on a worker thread
        request = v3(
            door.endpoint, "CreateProject", {}, body=encode_query(params).encode(), content_type=FORM_CONTENT_TYPE
        )
    status, body = send(request)
    assert (status, body["Code"]) == (400, "InvalidJSON")
    assert "nests deeper" in str(body["Message"])


def test_deeply_nested_labels_are_an_imm_error(door: Emulator) -> None:
    # What measured a 500: a File whose CustomLabels nest 300 deep passes validation, then pydantic cannot
    # serialise it ("Maximum serialization depth exceeded").
    labels = '{"a":' * 300 + '"x"' + "}" * 300
    file = f'{{"URI":"oss://bucket/a.jpg","CustomLabels":{labels}}}'
    params = {**TARGET, "File": file}
    request = v3(door.endpoint, "IndexFileMeta", {}, body=encode_query(params).encode(), content_type=FORM_CONTENT_TYPE)
    assert code_of(send(request)) == (400, "InvalidJSON")


def test_json_within_the_depth_limit_is_decoded(door: Emulator) -> None:
    ok = "[" * 32 + "]" * 32  # decoded, then refused by the parameter's own rule, not by the depth limit
    status, body = send(v3(door.endpoint, "CreateProject", {"ProjectName": "deep", "Tag": ok}))
    assert status == 400 and "nests deeper" not in str(body["Message"])


def test_a_forged_next_token_is_refused(door: Emulator) -> None:
    forged = base64.urlsafe_b64encode(b"o:-5").decode()
    status, body = send(v3(door.endpoint, "ListTasks", {"ProjectName": PROJECT, "NextToken": forged}))
    assert (status, body["Code"]) == (400, "InvalidArgument")


def test_duplicate_parameters_are_refused(door: Emulator) -> None:
    request = _get(door.endpoint, "v2")
    request.url = httpx.URL(str(request.url) + "&DatasetName=zz")
    assert code_of(send(request)) == (400, "InvalidParameter.Format")


# ------------------------------------------------------------------------------------------------ size, stalls


def test_the_body_limit_is_enforced(door: Emulator) -> None:
    at_limit = v3(
        door.endpoint, "GetDataset", TARGET, body=b"x" * MAX_BODY_BYTES, content_type="application/octet-stream"
    )
    assert send(at_limit)[0] == 200
    over = v3(
        door.endpoint, "GetDataset", TARGET, body=b"x" * (MAX_BODY_BYTES + 1), content_type="application/octet-stream"
    )
    assert code_of(send(over)) == (413, "RequestEntityTooLarge")
    # A declared length over the limit is refused at once, before any of the body is sent.
    started = time.monotonic()
    answer = _raw(
        door.endpoint,
        b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: ACS3-HMAC-SHA256 x\r\nContent-Length: 52428800\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413") and b'"Code":"RequestEntityTooLarge"' in answer
    assert time.monotonic() - started < 2


def _hostile_upload(endpoint: str, total: int, results: list[tuple[int, bytes]]) -> None:
    """Stream ``total`` bytes of form body (chunked: no declared length) claiming a V3 signature; record how much
    was sent before the server closed the connection, and its answer (a reset may swallow it)."""
    url = httpx.URL(endpoint)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,"
            b"Signature=0\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a=" + b"%41" * 21_000
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        try:
            while sent < total:
                sock.sendall(frame)
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed the connection
        try:
            results.append((sent, sock.recv(65536)))
        except OSError:
            results.append((sent, b""))


def test_a_large_hostile_body_does_not_stall_other_clients(door: Emulator, client: ImmClient) -> None:
    results: list[tuple[int, bytes]] = []
    hostile = [threading.Thread(target=_hostile_upload, args=(door.endpoint, 50 << 20, results))]
    # And four clients sending bodies just under the limit, again and again, each one read, hashed and refused.
    stop = time.monotonic() + 3.0

    def near_limit() -> None:
        with httpx.Client(trust_env=False, timeout=10) as http:
            while time.monotonic() < stop:
                http.post(
                    door.endpoint + "/",
                    content=b"a=" + b"b" * (MAX_BODY_BYTES - 2),
                    headers={
                        "authorization": "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=0",
                        "content-type": FORM_CONTENT_TYPE,
                    },
                )

    hostile += [threading.Thread(target=near_limit) for _ in range(4)]
    for t in hostile:
        t.start()
    latencies: list[float] = []
    while any(t.is_alive() for t in hostile) and len(latencies) < 2000:
        started = time.monotonic()
        client.call(projects.ListProjects)
        latencies.append(time.monotonic() - started)
        time.sleep(0.01)
    for t in hostile:
        t.join(30)
    assert len(latencies) >= 10
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
    # The server stopped reading at the limit: far less than the 50 MiB was taken in (socket buffers hold a few MiB).
    ((sent, answer),) = results
    assert sent < 20 << 20, sent
    assert not answer or (answer.startswith(b"HTTP/1.1 413") and b"RequestEntityTooLarge" in answer), answer


def test_a_task_listing_still_works_after_all_this(door: Emulator, client: ImmClient) -> None:
    """The ordinary path through the new front door: a signed write, a signed read, through our client."""
    task = client.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name=DATASET)
    listed = client.call(tasks.ListTasks, project_name=PROJECT).tasks or []
    assert task.task_id in [t.task_id for t in listed]
