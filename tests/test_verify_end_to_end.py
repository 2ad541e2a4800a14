"""`imm-faces verify` against a running emulator: every rule fails on the tampering it exists for, the healthy
deployment passes, and the CI outputs (JSON, JUnit, GitHub) carry the same check ids."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from xml.etree import ElementTree as ET

import httpx
import pytest

from imm_faces.emulator.server import Emulator
from imm_faces.emulator.store import ClusterKey, Clusters, Files, Key, TaskKey, Tasks
from imm_faces.runtime.cli.main import main
from imm_faces.runtime.client import AsyncImmClient, ImmClient
from imm_faces.runtime.operations import datasets, figure_clusters
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.verify.run import verify_deployment
from tests.conftest import CREDS
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, cluster_ids, deploy, outputs_file


class Deployment(NamedTuple):
    task_id: str
    outputs: Path


TAMPERED = (Clusters(PROJECT, DATASET), Files(PROJECT, DATASET), Tasks(PROJECT))  # what tests tamper with


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, str, Path]]:
    """One emulator with two people clustered, for the whole module (each test restores what it changed)."""
    from tests.fakes import SidecarAnalyzer

    tmp = tmp_path_factory.mktemp("verify")
    oss = tmp / "oss"
    oss.mkdir()
    with Emulator(oss_root=oss, db=tmp / "imm.db", analyzer=SidecarAnalyzer(oss), access_keys=[CREDS]) as emu:
        with ImmClient(endpoint=emu.endpoint, credentials=CREDS) as imm:
            task_id = deploy(imm, oss, TWO_PEOPLE)
        yield emu, task_id, oss


@pytest.fixture
def emulator(shared: tuple[Emulator, str, Path]) -> Iterator[Emulator]:
    """The shared emulator; the documents a test may tamper with are put back afterwards."""
    emu = shared[0]
    with emu.store.tx() as tx:
        saved = {scope: tx.scan(scope) for scope in TAMPERED}
    yield emu
    with emu.store.tx() as tx:
        for scope in TAMPERED:
            for name, _ in tx.scan(scope):
                tx.delete(scope.key(name))
            for name, doc in saved[scope]:
                tx.put(scope.key(name), doc)


@pytest.fixture
def client(emulator: Emulator) -> Iterator[ImmClient]:
    with ImmClient(endpoint=emulator.endpoint, credentials=CREDS) as imm:
        yield imm


@pytest.fixture
def deployment(
    shared: tuple[Emulator, str, Path], emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Deployment:
    """Two people clustered in the emulator, their stack outputs on disk, credentials in the environment."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-access-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "emulator-access-key-secret")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return Deployment(shared[1], outputs_file(tmp_path, emulator.endpoint, shared[1]))


def tamper(emulator: Emulator, key: Key, **changes: Any) -> dict[str, Any]:
    """Change a stored document behind the API's back (a value of None removes the field)."""
    with emulator.store.tx() as tx:
        doc = tx.get(key)
        assert doc is not None
        doc.update(changes)
        doc = {k: v for k, v in doc.items() if v is not None}
        tx.put(key, doc)
        return doc


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["verify", *args, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["checks"]}


def failed(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["check"], f["subject"]) for f in report["failures"]}


def test_healthy_deployment_passes_with_few_requests(
    client: ImmClient, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_json(capsys, "--outputs", str(deployment.outputs), "--min-clusters", "2")
    assert code == 0 and report["passed"] and report["schema_version"] == 1
    assert report["total_clusters"] == 2 and set(report["failures"]) == set()
    assert {s for s in statuses(report).values()} == {"passed"}
    ids = set(cluster_ids(client))
    assert {c["object_id"] for c in report["clusters"]} == ids
    cov = report["coverage"]
    assert (cov["listed"], cov["bulk_checked"], cov["get_checked"], cov["files_checked_clusters"]) == (2, 2, 2, 2)
    assert cov["requests"]["BatchGetFigureCluster"] == 1 and cov["requests"]["QueryFigureClusters"] == 1
    # the consistency checks ran and compared real things
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["consistency.face_count"]["checked"] == 2 and by_id["consistency.no_orphans"]["checked"] == 2


def test_sample_bounds_the_per_cluster_requests(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, "--outputs", str(deployment.outputs), "--sample", "1")
    assert code == 0
    cov = report["coverage"]
    assert cov["sample"] == 1 and cov["get_checked"] == 1 and cov["requests"]["GetFigureCluster"] == 1
    assert cov["files_checked_clusters"] == 1 and cov["bulk_checked"] == 2  # every cluster still in bulk
    assert "1 fetched with GetFigureCluster (sample 1, suspects 0)" in _text(deployment, "--sample", "1", capsys=capsys)


def _text(deployment: Deployment, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    main(["verify", "--outputs", str(deployment.outputs), "--quiet", *args])
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"FaceCount": 0}, "cluster.face_count"),
        ({"ImageCount": 0}, "cluster.image_count"),
        ({"ObjectType": "file"}, "cluster.object_type"),
        ({"ProjectName": "elsewhere"}, "cluster.project"),
        ({"DatasetName": "elsewhere"}, "cluster.dataset"),
        ({"Cover": None}, "cluster.cover"),
        ({"CreateTime": "last tuesday"}, "cluster.timestamps"),
        ({"MinAge": 99.0}, "cluster.ages"),
    ],
)
def test_each_tampered_field_fails_its_check(
    emulator: Emulator,
    client: ImmClient,
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, Any],
    check: str,
) -> None:
    victim = cluster_ids(client)[0]
    tamper(emulator, ClusterKey(PROJECT, DATASET, victim), **changes)
    code, report = run_json(capsys, "--outputs", str(deployment.outputs))
    assert code == 1 and not report["passed"]
    assert (check, victim) in failed(report) and statuses(report)[check] == "failed"
    detail = next(f["detail"] for f in report["failures"] if f["check"] == check)
    assert "QueryFigureClusters" in detail and "GetFigureCluster" in detail  # every view that shows it


def test_json_report_is_what_json_dumps_writes(
    emulator: Emulator, client: ImmClient, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json's text is ``json.dumps(report, indent=2)``'s: indented, and ASCII whatever the names hold (escaped),
    so a terminal or a CI log in any locale shows it and any JSON reader reads it back."""
    named = cluster_ids(client)[0]
    tamper(emulator, ClusterKey(PROJECT, DATASET, named), Name='张三 "quoted"')
    code = main(["verify", "--outputs", str(deployment.outputs), "--json", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and out.isascii()
    report = json.loads(out)
    assert out == json.dumps(report, indent=2) + "\n"
    assert {c["object_id"]: c["name"] for c in report["clusters"]}[named] == '张三 "quoted"'


def test_counts_that_disagree_with_the_files(
    emulator: Emulator, client: ImmClient, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """FaceCount and ImageCount of 5 pass the >= 1 rules; the files say otherwise."""
    victim = cluster_ids(client)[0]
    tamper(emulator, ClusterKey(PROJECT, DATASET, victim), FaceCount=5, ImageCount=5)
    code, report = run_json(capsys, "--outputs", str(deployment.outputs))
    assert code == 1
    assert failed(report) == {("consistency.face_count", victim), ("consistency.image_count", victim)}
    details = [f["detail"] for f in report["failures"]]
    assert any("ImageCount + VideoCount is 5, but" in d for d in details)  # the whole-dataset aggregation
    assert any(d.startswith("FaceCount 5, but") for d in details)  # the sample's files


def test_a_cover_that_is_not_one_of_its_faces(
    emulator: Emulator, client: ImmClient, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = cluster_ids(client)
    with emulator.store.tx() as tx:
        others = tx.get(ClusterKey(PROJECT, DATASET, second))
    assert others is not None
    got = client.call(figure_clusters.GetFigureCluster, project_name=PROJECT, dataset_name=DATASET, object_id=first)
    own = {f.uri for f in (got.figure_cluster.base_images or [])} if got.figure_cluster else set()
    foreign = next(b for b in others["BaseImages"] if b["URI"] not in own)
    tamper(emulator, ClusterKey(PROJECT, DATASET, first), Cover=foreign)
    code, report = run_json(capsys, "--outputs", str(deployment.outputs))
    assert code == 1 and failed(report) == {("consistency.cover", first)}


def test_files_naming_a_missing_cluster(
    emulator: Emulator, client: ImmClient, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    ghost = cluster_ids(client)[0]
    with emulator.store.tx() as tx:
        assert tx.delete(ClusterKey(PROJECT, DATASET, ghost))
    code, report = run_json(capsys, "--outputs", str(deployment.outputs))
    assert code == 1 and ("consistency.no_orphans", ghost) in failed(report)
    assert report["total_clusters"] == 1


def test_empty_dataset_fails_unless_allowed(
    emulator: Emulator,
    client: ImmClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="empty-dataset")
    try:
        outputs = tmp_path / "empty.json"
        outputs.write_text(
            json.dumps(
                {
                    "project_name": PROJECT,
                    "dataset_name": "empty-dataset",
                    "region": "cn-hangzhou",
                    "endpoint": emulator.endpoint,
                }
            )
        )
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CREDS.access_key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CREDS.access_key_secret)
        code, report = run_json(capsys, "--outputs", str(outputs))
        assert code == 1 and failed(report) == {("clusters.not_empty", "dataset")}
        code, report = run_json(capsys, "--outputs", str(outputs), "--allow-empty")
        note = {"check": "clusters.not_empty", "note": "the dataset has no figure cluster (allowed by --allow-empty)"}
        assert code == 0 and note in report["notes"]
    finally:
        client.call(datasets.DeleteDataset, project_name=PROJECT, dataset_name="empty-dataset")


def test_task_record_past_retention_is_a_note(
    emulator: Emulator, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    with emulator.store.tx() as tx:
        assert tx.delete(TaskKey(PROJECT, deployment.task_id))
    code, report = run_json(capsys, "--outputs", str(deployment.outputs))
    assert code == 0 and statuses(report)["task.succeeded"] == "passed"
    (note,) = [n["note"] for n in report["notes"] if n["check"] == "task.succeeded"]
    assert deployment.task_id in note and "7 days" in note


def test_a_failed_task_fails(emulator: Emulator, deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    tamper(emulator, TaskKey(PROJECT, deployment.task_id), Status="Failed", Code="InternalError", Message="boom")
    assert main(["verify", "--outputs", str(deployment.outputs), "--quiet"]) == 1
    assert "status Failed (InternalError: boom)" in capsys.readouterr().out


def test_too_few_clusters_and_unknown_cluster_ids(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, "--outputs", str(deployment.outputs), "--min-clusters", "3")
    assert code == 1 and failed(report) == {("clusters.min_count", "dataset")}
    code, report = run_json(capsys, "--outputs", str(deployment.outputs), "--cluster-id", "Cluster-nope")
    assert code == 1 and failed(report) == {("cluster.exists", "Cluster-nope")}
    assert next(f["detail"] for f in report["failures"]).startswith("GetFigureCluster: ResourceNotFound")


class _BulkLies(httpx.AsyncBaseTransport):
    """Forwards to the emulator; one operation's answer is altered for one cluster (BatchGetFigureCluster's by
    default)."""

    def __init__(self, victim: str, action: str = "BatchGetFigureCluster", **changes: Any) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.victim, self.action, self.changes = victim, action, changes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if request.headers.get("x-acs-action") == self.action:
            doc = json.loads(body)
            clusters = doc.get("FigureClusters") or [doc.get("FigureCluster") or {}]
            for cluster in clusters:
                if cluster.get("ObjectId") == self.victim:
                    cluster.update(self.changes)
            body = json.dumps(doc).encode()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=body)


def verify_through(emulator: Emulator, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> Any:
    outputs = StackOutputs(project_name=PROJECT, dataset_name=DATASET, region="cn-hangzhou")

    async def go() -> Any:
        async with AsyncImmClient(endpoint=emulator.endpoint, credentials=CREDS, transport=transport) as imm:
            return await verify_deployment(imm, outputs, **kwargs)

    return asyncio.run(go())


def test_a_bulk_view_that_disagrees_is_fetched_with_the_seed_api(
    emulator: Emulator, client: ImmClient, deployment: Deployment
) -> None:
    ids = cluster_ids(client)
    victim = ids[1]  # not in a sample of 1 (the first position)
    report = verify_through(emulator, _BulkLies(victim, FaceCount=99), sample=1)
    assert report.coverage.sample == 1 and report.coverage.suspects == 1
    assert report.coverage.requests["GetFigureCluster"] == 2
    (failure,) = report.failures
    assert (failure.check, failure.subject) == ("cluster.views_agree", victim)
    assert failure.detail.startswith("BatchGetFigureCluster vs GetFigureCluster: face_count: 99 !=")


@pytest.mark.parametrize("action", ["BatchGetFigureCluster", "GetFigureCluster"])
def test_an_answer_for_another_cluster_fails_object_id(
    emulator: Emulator, client: ImmClient, deployment: Deployment, action: str
) -> None:
    victim = cluster_ids(client)[0]
    report = verify_through(emulator, _BulkLies(victim, action, ObjectId="Cluster-impostor"))
    assert "cluster.object_id" in {f.check for f in report.failures}
    assert report.check("cluster.object_id").status == "failed"


def test_a_cluster_changing_during_the_check_is_a_note(
    emulator: Emulator, client: ImmClient, deployment: Deployment
) -> None:
    victim = cluster_ids(client)[0]
    report = verify_through(emulator, _BulkLies(victim, FaceCount=99, UpdateTime="2030-01-01T00:00:00Z"))
    assert report.passed
    assert any(check == "cluster.views_agree" and victim in note for check, note in report.notes)


def test_bulk_absent_cluster_is_a_suspect(emulator: Emulator, client: ImmClient, deployment: Deployment) -> None:
    class Drops(_BulkLies):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await super().handle_async_request(request)
            if request.headers.get("x-acs-action") != "BatchGetFigureCluster":
                return response
            doc = json.loads(response.content)
            doc["FigureClusters"] = [c for c in doc["FigureClusters"] if c["ObjectId"] != self.victim]
            return httpx.Response(200, json=doc)

    victim = cluster_ids(client)[1]
    report = verify_through(emulator, Drops(victim), sample=1)
    assert report.passed and report.coverage.suspects == 1 and report.coverage.get_checked == 2


def test_nested_outputs_of_reusing_stacks(
    emulator: Emulator, deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = json.loads(deployment.outputs.read_text())
    reuse = tmp_path / "reuse.json"  # the README's reuse example: pulumi.export("faces", faces.outputs)
    reuse.write_text(json.dumps({"faces": contract, "bucket": "photos"}))
    assert main(["verify", "--outputs", str(reuse), "--quiet"]) == 0
    two = tmp_path / "two.json"  # examples/two-datasets: family and events
    two.write_text(json.dumps({"family": contract, "events": {**contract, "dataset_name": "events"}}))
    assert main(["verify", "--outputs", str(two), "--quiet"]) == 2
    assert "choose one with --output-key" in capsys.readouterr().err
    assert main(["verify", "--outputs", str(two), "--output-key", "family", "--quiet"]) == 0
    assert main(["verify", "--outputs", str(two), "--output-key", "events", "--quiet"]) == 1  # no such dataset
    capsys.readouterr()


def test_junit_xml_and_github_actions(
    emulator: Emulator,
    client: ImmClient,
    deployment: Deployment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    victim = cluster_ids(client)[0]
    tamper(emulator, ClusterKey(PROJECT, DATASET, victim), FaceCount=0)
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["verify", "--outputs", str(deployment.outputs), "--junit-xml", str(junit), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"::error title=imm-faces verify cluster.face_count::{victim}: got 0" in err
    assert "| ❌ | `cluster.face_count` |" in summary.read_text()
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["cluster.face_count"].find("failure") is not None
    assert cases["project.exists"].find("failure") is None


def test_progress_lines_on_a_non_tty(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("imm_faces.runtime.cli.verify_run.PROGRESS_INTERVAL", 0.0)
    assert main(["verify", "--outputs", str(deployment.outputs)]) == 0
    assert "verify: listing 2/2" in capsys.readouterr().err
    assert main(["verify", "--outputs", str(deployment.outputs), "--quiet"]) == 0
    assert "verify:" not in capsys.readouterr().err


@pytest.fixture
def always_busy() -> Iterator[str]:
    """A server answering every request 503 with x-acs-retry-after: 600000 (ten minutes)."""

    class Busy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))  # the request, read before answering
            body = json.dumps({"RequestId": "R", "Code": "ServiceUnavailable", "Message": "busy"}).encode()
            self.send_response(503)
            self.send_header("x-acs-retry-after", "600000")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up at its deadline
                super().handle_error(request, client_address)  # type: ignore[arg-type]

    server = Server(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_deadline_bounds_server_back_off(
    always_busy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "busy-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "busy-0123456789")
    outputs = outputs_file(tmp_path, always_busy, None)
    started = time.monotonic()
    code, report = run_json(capsys, "--outputs", str(outputs), "--deadline", "3")
    assert time.monotonic() - started < 10
    assert code == 1 and statuses(report)["verify.deadline"] == "failed"
    assert "ServiceUnavailable" in next(f["detail"] for f in report["failures"] if f["check"] == "verify.deadline")


def test_usage_errors_name_the_flag_and_rule_with_verifys_usage(capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
        (["--sample", "abc"], "argument --sample: must be a whole number of at least 1; got 'abc'"),
        (["--sample", "0"], "argument --sample: must be at least 1; got 0"),
        (["--deadline", "-1"], "argument --deadline: must be a number of seconds greater than 0"),
        (["--concurrency", "x"], "argument --concurrency: must be a whole number"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ):
        with pytest.raises(SystemExit) as usage:
            main(["verify", *args])
        err = capsys.readouterr().err
        assert usage.value.code == 2 and message in err and "usage: imm-faces verify" in err, args


def test_config_and_credential_errors_exit_2(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = outputs_file(tmp_path, emulator.endpoint, None)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-access-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret-value")
    assert main(["verify", "--outputs", str(outputs)]) == 2
    err = capsys.readouterr().err
    assert "SignatureDoesNotMatch" in err and "wrong-secret-value" not in err and "Traceback" not in err
    assert "the identity needs imm:GetProject" in err or "imm:GetDataset" in err
    assert main(["verify", "--outputs", str(tmp_path / "missing.json")]) == 2
    assert "no such outputs file" in capsys.readouterr().err


def test_help_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    heavy = "{'httpx', 'pydantic', 'pulumi', 'anyio'}"
    code = (
        "import sys; from imm_faces.runtime.cli.main import main\n"
        "try:\n    main(['verify', '--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


STS_SECRET = "sts+Secret/Value=Of&30%chars"
STS_TOKEN = "CAIS+sts/Token==With%2BEvery&Char"


def every_encoding(secret: str) -> list[str]:
    import base64
    import re
    from urllib.parse import quote, quote_plus

    once = quote(secret, safe="")
    lower = re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), once)
    raw = secret.encode()
    return [
        secret,
        once,
        quote(once, safe=""),
        quote_plus(secret),
        quote(quote_plus(secret), safe=""),
        lower,
        quote(lower, safe=""),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        json.dumps(secret)[1:-1],
    ]


def test_no_secret_in_any_output_in_any_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """V2 signature + STS token (the token travels in the query): stdout, stderr with every library at DEBUG,
    the JSON, JUnit and step-summary reports, an IMM error echoing the string to sign, and a traceback with
    locals, all grepped for the secret and the token in every encoding."""
    from imm_faces.runtime.credentials import Credentials
    from tests.conftest import CREDS as DEFAULT
    from tests.fakes import SidecarAnalyzer

    sts = Credentials("STS.verify-key-id", STS_SECRET, STS_TOKEN)
    oss_root = tmp_path / "oss"
    oss_root.mkdir()
    emu = Emulator(
        oss_root=oss_root, db=tmp_path / "imm.db", analyzer=SidecarAnalyzer(oss_root), access_keys=[DEFAULT, sts]
    )
    emu.start()
    try:
        with ImmClient(endpoint=emu.endpoint, credentials=sts, signature_version="v2") as imm:
            task_id = deploy(imm, oss_root, TWO_PEOPLE)
            victim = cluster_ids(imm)[0]
        tamper(emu, ClusterKey(PROJECT, DATASET, victim), FaceCount=0)  # failures in every report
        outputs = outputs_file(tmp_path, emu.endpoint, task_id)
        junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", sts.access_key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS_TOKEN)
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        base = ["verify", "--outputs", str(outputs), "--signature-version", "v2", "--debug"]
        texts: list[str] = []

        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", STS_SECRET)
        assert main([*base, "--json", "--junit-xml", str(junit)]) == 1
        out = capsys.readouterr()
        assert "HTTP Request: POST" in out.err and "SecurityToken=" in out.err  # httpx logged each URL
        texts += [out.out, out.err]
        assert main(base) == 1
        texts += list(capsys.readouterr())

        # a wrong secret: the emulator answers SignatureDoesNotMatch with the string it signed, which holds the
        # token percent-encoded twice
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", STS_SECRET + "-wrong")
        assert main(base) == 2
        out = capsys.readouterr()
        assert "SignatureDoesNotMatch" in out.err
        texts += [out.out, out.err]

        # a bug inside verify, with --debug: the traceback and its locals (requests, credentials) are printed
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", STS_SECRET)

        def broken(self: Any, object_id: str) -> None:
            request = httpx.Request("POST", f"{emu.endpoint}/?SecurityToken={STS_TOKEN}")
            secret = STS_SECRET
            raise RuntimeError(f"boom {request.url} {secret}")

        monkeypatch.setattr("imm_faces.runtime.verify.run._Run.judge_views", broken)
        assert main(base) == 2
        out = capsys.readouterr()
        assert "internal error" in out.err and "Traceback" in out.err and "request =" in out.err
        texts += [out.out, out.err, junit.read_text(), summary.read_text()]
    finally:
        emu.stop()
    everything = "\n".join(texts)
    for secret in (STS_SECRET, STS_TOKEN):
        for form in every_encoding(secret):
            assert form not in everything, form
    assert "<redacted>" in everything


@pytest.mark.parametrize("order", [None, "asc", "desc"])
def test_cluster_pages_in_the_default_order_match_the_general_path(
    client: ImmClient, deployment: Deployment, order: str | None
) -> None:
    """The emulator pages the default order by key (what verify lists with); a time window takes the general
    path. Same clusters, same order, same paging, with and without the total count."""

    def listing(**extra: Any) -> tuple[list[str | None], list[int | None]]:
        ids: list[str | None] = []
        totals: list[int | None] = []
        token: str | None = None
        while True:
            page = client.call(
                figure_clusters.QueryFigureClusters,
                project_name=PROJECT,
                dataset_name=DATASET,
                max_results=1,
                next_token=token,
                order=order,
                with_total_count=True,
                **extra,
            )
            ids += [c.object_id for c in page.figure_clusters or []]
            totals.append(page.total_count)
            token = page.next_token
            if not token:
                return ids, totals

    everything = {"create_time_range": {"Start": "2000-01-01T00:00:00Z"}}
    fast, general = listing(), listing(**everything)
    assert fast == general and len(fast[0]) == 2 and fast[1] == [2, 2]
    assert fast[0] == sorted(fast[0], key=str, reverse=order == "desc")


def test_stack_outputs_and_credentials_from_the_stack_config(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pulumi up` had its keys in the stack config only (`pulumi config set --secret alicloud:secretKey`):
    verify reads the outputs without --show-secrets, and the secret key alone with `pulumi config get`."""
    import sys

    contract = json.loads(deployment.outputs.read_text())
    answers = {
        "stack output": {"faces": contract, "db_password": "[secret]"},
        "config": {
            "alicloud:accessKey": {"value": CREDS.access_key_id, "secret": False},
            "alicloud:secretKey": {"secret": True},
            "db:password": {"secret": True},
        },
        "config get alicloud:secretKey": CREDS.access_key_secret,
    }
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    fake = bin_dir / "pulumi"
    fake.write_text(f"""#!{sys.executable}
import json, sys
args = [a for a in sys.argv[1:] if a not in ("--json", "--non-interactive")]
open({str(calls)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
key = " ".join(args[: args.index("--stack")] if "--stack" in args else args)
value = json.load(open({str(tmp_path / "answers.json")!r})).get(key)
if value is None:
    sys.exit("error: " + key)
print(value if isinstance(value, str) else json.dumps(value))
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALICLOUD_ACCESS_KEY",
        "ALICLOUD_SECRET_KEY",
        "ALIBABA_CLOUD_PROFILE",
        "GITHUB_ACTIONS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_CONFIG_FILE", str(tmp_path / "no-aliyun-config.json"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["verify", "--stack", "dev", "--quiet"]) == 0, capsys.readouterr()
    assert "PASSED" in capsys.readouterr().out
    made = calls.read_text()
    assert "--show-secrets" not in made and "config get alicloud:secretKey" in made and "db:password" not in made


@pytest.mark.parametrize(
    ("key", "failing"),
    [("dataset_name", {"dataset.exists"}), ("project_name", {"project.exists", "dataset.exists"})],
)
def test_a_missing_project_or_dataset_fails_and_skips_the_rest(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, failing: set[str]
) -> None:
    doc = json.loads(deployment.outputs.read_text())
    doc[key] = "not-there"
    del doc["clustering_task_id"]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(doc))
    code, report = run_json(capsys, "--outputs", str(wrong))
    assert code == 1 and {c for c, _ in failed(report)} == failing
    status = statuses(report)
    assert status["task.succeeded"] == "skipped" and status["cluster.face_count"] == "skipped"
    assert report["coverage"]["requests"].keys() == {"GetProject", "GetDataset"}


def test_json_carries_the_exit_code_on_every_outcome(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """CI reads one field for the verdict: a pass, a failed check and a page that could not be written alike."""
    passed = run_json(capsys, "--outputs", str(deployment.outputs))
    failed_run = run_json(capsys, "--outputs", str(deployment.outputs), "--min-clusters", "3")
    no_page = run_json(capsys, "--outputs", str(deployment.outputs), "--html", str(tmp_path / "missing" / "x.html"))
    assert [(code, report["exit_code"]) for code, report in (passed, failed_run, no_page)] == [(0, 0), (1, 1), (2, 2)]
    assert list(passed[1])[:3] == ["schema_version", "passed", "exit_code"] and passed[1]["schema_version"] == 1
    assert no_page[1]["passed"] and "missing" in no_page[1]["error"]["message"] and "error" not in passed[1]


def test_counts_of_one_read_as_one(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    from imm_faces.runtime.verify.base import VerifyReport
    from imm_faces.runtime.verify.report import coverage_line

    assert main(["verify", "--outputs", str(deployment.outputs), "--quiet"]) == 0
    assert "Coverage: 2 clusters listed" in capsys.readouterr().out
    report = VerifyReport("http://imm", StackOutputs(project_name="p", dataset_name="d", region="cn-hangzhou"))
    report.coverage.listed, report.coverage.files_examined, report.coverage.requests = 1, 1, {"GetProject": 1}
    line = coverage_line(report)
    assert "1 cluster listed" in line and "against 1 file;" in line and "1 request in" in line, line


def test_top_level_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 ok, 1 a check failed, 2 usage/configuration/credential error, 130 interrupted" in text
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    assert "130 interrupted" in " ".join(capsys.readouterr().out.split())
