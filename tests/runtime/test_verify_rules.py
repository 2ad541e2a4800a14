"""verify's rules, one by one (each test fails when its rule is removed or flipped), and the report formats."""

from __future__ import annotations

import functools
import io
import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from imm_faces.runtime.models.figure_cluster import FigureCluster
from imm_faces.runtime.models.file import File, FileFaces
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.verify.base import SCHEMA_VERSION, ClusterRecord, VerifyReport
from imm_faces.runtime.verify.checks import (
    CHECKS,
    VIEW_RULES,
    Failure,
    FileView,
    check_against_files,
    check_cluster,
    disagreements,
    sample_positions,
)
from imm_faces.runtime.verify.report import github_annotations, github_summary, render_junit, render_text

OUTPUTS = StackOutputs(project_name="p", dataset_name="d", region="cn-hangzhou")
CID = "Cluster-1"
SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "GetFigureCluster.sample-response.json").read_text())


def cluster(**changes: Any) -> FigureCluster:
    doc = {**SAMPLE["FigureCluster"], "ProjectName": "p", "DatasetName": "d", "ObjectId": CID, **changes}
    return FigureCluster.model_validate({k: v for k, v in doc.items() if v is not None})


def test_a_good_cluster_breaks_no_rule() -> None:
    assert check_cluster(cluster(), CID, OUTPUTS) == []


@pytest.mark.parametrize(
    ("changes", "check", "detail"),
    [
        ({"ObjectType": "file"}, "cluster.object_type", "got 'file'"),
        ({"ObjectId": "Cluster-2"}, "cluster.object_id", "got 'Cluster-2'"),
        ({"ProjectName": "other"}, "cluster.project", "expected 'p', got 'other'"),
        ({"DatasetName": "other"}, "cluster.dataset", "expected 'd', got 'other'"),
        ({"FaceCount": 0}, "cluster.face_count", "got 0"),
        ({"FaceCount": None}, "cluster.face_count", "got None"),
        ({"ImageCount": 0}, "cluster.image_count", "got 0"),
        ({"Cover": None}, "cluster.cover", "no Cover"),
        ({"Cover": {"URI": ""}}, "cluster.cover", "Cover.URI is empty"),
        ({"CreateTime": "yesterday"}, "cluster.timestamps", "CreateTime: got 'yesterday'"),
        ({"UpdateTime": None}, "cluster.timestamps", "UpdateTime: got None"),
        ({"MinAge": 50}, "cluster.ages", "got 50 / 26 / 44"),
        ({"MaxAge": 20}, "cluster.ages", "got 12 / 26 / 20"),
    ],
)
def test_each_rule_fails_alone(changes: dict[str, Any], check: str, detail: str) -> None:
    assert check_cluster(cluster(**changes), CID, OUTPUTS) == [Failure(check, CID, detail)]
    assert check in VIEW_RULES


def test_boundaries_that_hold() -> None:
    assert check_cluster(cluster(FaceCount=1, ImageCount=1, MinAge=26, MaxAge=26), CID, OUTPUTS) == []
    assert check_cluster(cluster(MinAge=None), CID, OUTPUTS) == []  # ages are checked only when all are present


def test_every_check_id_is_stable_and_described() -> None:
    assert all(re.fullmatch(r"[a-z]+\.[a-z_]+", c) and CHECKS[c] for c in CHECKS)
    assert set(VIEW_RULES) <= set(CHECKS)


def test_disagreements_name_the_fields() -> None:
    assert disagreements(cluster(), cluster()) == []
    assert disagreements(cluster(), cluster(FaceCount=4)) == ["face_count: 3 != 4"]
    other_cover = {**SAMPLE["FigureCluster"]["Cover"], "URI": "oss://b/other.jpg"}
    assert disagreements(cluster(), cluster(Cover=other_cover)) == [
        "Cover.URI: 'oss://examplebucket/sampleobject.jpg' != 'oss://b/other.jpg'"
    ]
    # BaseImages is only in GetFigureCluster's answer: its absence elsewhere is no disagreement
    assert disagreements(cluster(BaseImages=None), cluster()) == []


def _image(uri: str, *cluster_ids: str | None, media: str = "image", reading: type[FileView] = File) -> FileView:
    """A file as SimpleQuery sends it, read whole (File) or as verify reads it (FileFaces)."""
    figures = [{"FigureId": f"f{i}", "FigureClusterId": c} for i, c in enumerate(cluster_ids)]
    return reading.model_validate({"URI": uri, "MediaType": media, "Figures": figures})


COVER = "oss://examplebucket/sampleobject.jpg"


@pytest.mark.parametrize("reading", [File, FileFaces])
def test_counts_and_cover_against_files(reading: type[FileView]) -> None:
    image = functools.partial(_image, reading=reading)
    files = [image(COVER, CID, "Cluster-x"), image("oss://b/2.jpg", CID, CID), image("oss://b/3.jpg", "Cluster-x")]
    good = cluster(FaceCount=3, ImageCount=2)
    assert check_against_files(good, files, CID) == []
    assert [f.check for f in check_against_files(cluster(FaceCount=4, ImageCount=2), files, CID)] == [
        "consistency.face_count"
    ]
    assert [f.check for f in check_against_files(cluster(FaceCount=3, ImageCount=3), files, CID)] == [
        "consistency.image_count"
    ]
    elsewhere = {**SAMPLE["FigureCluster"]["Cover"], "URI": "oss://b/3.jpg"}  # holds only another cluster's face
    failures = check_against_files(cluster(FaceCount=3, ImageCount=2, Cover=elsewhere), files, CID)
    expected = ("consistency.cover", "Cover 'oss://b/3.jpg' holds none of its faces")
    assert [(f.check, f.detail) for f in failures] == [expected]
    # a video naming the cluster counts its faces, not as an image
    with_video = [*files, image("oss://b/v.mp4", CID, media="video")]
    assert [f.check for f in check_against_files(cluster(FaceCount=4, ImageCount=2), with_video, CID)] == []


def test_sample_positions_spread_and_bounds() -> None:
    assert sample_positions(10, 5) == {0, 2, 4, 6, 8}
    assert sample_positions(3, 25) == {0, 1, 2} and sample_positions(3, None) == {0, 1, 2}
    assert sample_positions(1000, 25) == {i * 40 for i in range(25)}
    assert sample_positions(0, 5) == set() and sample_positions(5, 0) == set()


def report_with_failures() -> VerifyReport:
    report = VerifyReport("http://imm.test/", OUTPUTS)
    report.passed_one("project.exists", "dataset.exists")
    report.fail(Failure("cluster.face_count", "Cluster-a", "got 0 (in QueryFigureClusters)"))
    report.fail(Failure("consistency.cover", "Cluster-b", "Cover 'oss://b/1,2:3.jpg' holds none\nof its faces 100%"))
    report.note("task.succeeded", "task t has no record any more")
    report.passed_one("task.succeeded")
    report.skip(["clusters.min_count"], "--min-clusters not given")
    report.clusters["Cluster-a"] = ClusterRecord("Cluster-a", failures=[report.failures[0]])
    return report


def test_json_has_schema_version_and_stable_check_ids_in_catalog_order() -> None:
    doc = report_with_failures().to_json()
    assert doc["schema_version"] == SCHEMA_VERSION and doc["passed"] is False
    ids = [c["id"] for c in doc["checks"]]
    assert ids == [c for c in CHECKS if c in ids]  # catalog order, whatever order they ran in
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id["cluster.face_count"]["status"] == "failed" and by_id["project.exists"]["status"] == "passed"
    assert by_id["clusters.min_count"] == {
        **by_id["clusters.min_count"],
        "status": "skipped",
        "skipped": "--min-clusters not given",
    }
    assert doc["notes"] == [{"check": "task.succeeded", "note": "task t has no record any more"}]
    assert {"check": "cluster.face_count", "subject": "Cluster-a", "detail": "got 0 (in QueryFigureClusters)"} in (
        doc["failures"]
    )


def test_junit_xml_one_case_per_check() -> None:
    root = ET.fromstring(render_junit(report_with_failures()))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "2" and suite.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {
        "project.exists",
        "dataset.exists",
        "task.succeeded",
        "clusters.min_count",
        "cluster.face_count",
        "consistency.cover",
    }
    failure = cases["cluster.face_count"].find("failure")
    assert failure is not None and "Cluster-a: got 0" in (failure.get("message") or "")
    assert cases["project.exists"].find("failure") is None
    assert cases["clusters.min_count"].find("skipped") is not None
    assert "note: task t has no record" in (cases["task.succeeded"].findtext("system-out") or "")


def test_github_annotations_escape_and_cap() -> None:
    lines = github_annotations(report_with_failures())
    assert lines[0] == "::error title=imm-faces verify cluster.face_count::Cluster-a: got 0 (in QueryFigureClusters)"
    assert lines[1] == (
        "::error title=imm-faces verify consistency.cover::Cluster-b: Cover 'oss://b/1,2:3.jpg' "
        "holds none%0Aof its faces 100%25"
    )
    assert lines[2] == "::notice title=imm-faces verify task.succeeded::task t has no record any more"
    many = VerifyReport("http://imm.test/", OUTPUTS)
    for i in range(60):
        many.fail(Failure("cluster.cover", f"C{i}", "no Cover"))
    errors = [line for line in github_annotations(many) if line.startswith("::error")]
    assert len(errors) == 51 and "10 more failures" in errors[-1]


def test_step_summary_and_text_name_checks_and_failures() -> None:
    report = report_with_failures()
    summary = github_summary(report)
    assert "imm-faces verify FAILED" in summary and "| ❌ | `cluster.face_count` |" in summary
    assert "| ✅ | `project.exists` |" in summary and "Cluster-a: got 0" in summary
    text = render_text(report)
    assert "FAIL  cluster.face_count" in text and "PASS  project.exists" in text and "SKIP  clusters.min_count" in text
    assert "note: task t has no record any more" in text and text.rstrip().endswith("of its faces 100%")
    passed = VerifyReport("http://imm.test/", OUTPUTS)
    passed.passed_one("project.exists")
    assert "PASSED" in render_text(passed) and "imm-faces verify passed" in github_summary(passed)


def test_progress_lines_on_a_non_tty_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from imm_faces.runtime.cli import verify_run as cli

    clock = iter([0.0, 1.0, 6.0, 7.0, 12.0])
    monkeypatch.setattr("imm_faces.runtime.cli.verify_run.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    progress = cli.Progress(out, interval=5.0)  # created at t=0
    for done in (1, 2, 3, 4):  # at t=1, 6, 7, 12
        progress("listing", done * 100, 1000)
    assert out.getvalue().splitlines() == ["verify: listing 200/1000", "verify: listing 400/1000"]


def test_progress_on_a_tty_rewrites_one_line() -> None:
    from imm_faces.runtime.cli import verify_run as cli

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = cli.Progress(out)
    progress("get", 3, None)
    progress.close()
    assert out.getvalue() == "\rverify: get 3\x1b[K\r\x1b[K"


def fake_imm(
    pages: list[list[str]],
    *,
    query_error: bool = False,
    fail: str | None = None,
    empty_get: bool = False,
    files: list[dict[str, Any]] | None = None,
) -> Any:
    """A MockTransport IMM with clusters served on the given pages (ids may repeat across pages); ``fail`` names
    an operation answered with a non-retryable error."""
    import httpx

    def view(object_id: str) -> dict[str, Any]:
        return {**SAMPLE["FigureCluster"], "ProjectName": "p", "DatasetName": "d", "ObjectId": object_id}

    def handler(request: httpx.Request) -> httpx.Response:  # noqa: PLR0911 - one answer per operation
        action = request.headers["x-acs-action"]
        params = dict(request.url.params)
        if action == fail or (action == "QueryFigureClusters" and query_error):
            return httpx.Response(400, json={"Code": "InvalidArgument", "Message": "no listing today"})
        if action == "GetProject":
            return httpx.Response(200, json={"Project": {"ProjectName": "p"}})
        if action == "GetDataset":
            return httpx.Response(200, json={"Dataset": {"ProjectName": "p", "DatasetName": "d"}})
        if action == "QueryFigureClusters":
            index = int(params.get("NextToken") or 0)
            body: dict[str, Any] = {"FigureClusters": [view(i) for i in pages[index]]}
            if index + 1 < len(pages):
                body["NextToken"] = str(index + 1)
            return httpx.Response(200, json=body)
        if action == "BatchGetFigureCluster":
            return httpx.Response(200, json={"FigureClusters": [view(i) for i in json.loads(params["ObjectIds"])]})
        if action == "GetFigureCluster":
            return httpx.Response(200, json={} if empty_get else {"FigureCluster": view(params["ObjectId"])})
        if action == "SimpleQuery":
            if "Aggregations" in params:
                counts: dict[str, int] = {}
                for f in files or []:
                    for cid in {fig["FigureClusterId"] for fig in f["Figures"]}:
                        counts[cid] = counts.get(cid, 0) + 1
                groups = [{"Value": k, "Count": n} for k, n in counts.items()]
                return httpx.Response(200, json={"Aggregations": [{"Operation": "group", "Groups": groups}]})
            return httpx.Response(200, json={"Files": files or []})
        raise AssertionError(action)

    return httpx.MockTransport(handler)


def verify_fake(transport: Any, **kwargs: Any) -> VerifyReport:
    import asyncio

    from imm_faces.runtime.client import AsyncImmClient
    from imm_faces.runtime.credentials import Credentials
    from imm_faces.runtime.verify.run import verify_deployment

    async def go() -> VerifyReport:
        async with AsyncImmClient(
            endpoint="http://imm.test", credentials=Credentials("AK", "SK-0123456789"), transport=transport
        ) as imm:
            return await verify_deployment(imm, OUTPUTS, **{"consistency": False, **kwargs})

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def test_listing_every_page_once() -> None:
    report = verify_fake(fake_imm([["Cluster-1", "Cluster-2"], ["Cluster-3"]]))
    assert report.passed and report.total_clusters == 3 and report.coverage.requests["QueryFigureClusters"] == 2
    assert report.check("clusters.listable").status == "passed"


def test_a_cluster_listed_twice_fails_listable() -> None:
    report = verify_fake(fake_imm([["Cluster-1", "Cluster-2"], ["Cluster-2", "Cluster-3"]]))
    assert [(f.check, f.subject) for f in report.failures] == [("clusters.listable", "Cluster-2")]
    assert report.total_clusters == 3


def test_a_listing_error_fails_listable_and_skips_the_cluster_checks() -> None:
    report = verify_fake(fake_imm([], query_error=True))
    expected = ("clusters.listable", "InvalidArgument: no listing today")
    assert [(f.check, f.detail) for f in report.failures] == [expected]
    assert report.check("cluster.face_count").status == "skipped"
    assert report.check("clusters.not_empty").status == "skipped"


def test_a_failed_bulk_request_makes_every_cluster_a_suspect() -> None:
    report = verify_fake(fake_imm([["Cluster-1", "Cluster-2", "Cluster-3"]], fail="BatchGetFigureCluster"), sample=1)
    assert report.passed and report.coverage.suspects == 2 and report.coverage.get_checked == 3
    assert all("bulk failed" in c.views for c in report.clusters.values())


def test_get_without_a_cluster_fails_exists() -> None:
    report = verify_fake(fake_imm([["Cluster-1"]], empty_get=True))
    assert [(f.check, f.detail) for f in report.failures] == [
        ("cluster.exists", "GetFigureCluster returned no FigureCluster")
    ]


@pytest.mark.parametrize(
    "code",
    [
        "InvalidAccessKeyId.NotFound",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidSecurityToken.Expired",
        "InvalidTimeStamp.Expired",
        "Forbidden.RAM",
        "NoPermission",
    ],
)
def test_access_errors_name_the_action(code: str) -> None:
    from imm_faces.runtime.errors import ImmError
    from imm_faces.runtime.verify.base import AccessError, raise_if_access

    with pytest.raises(AccessError, match=r"the identity needs imm:GetDataset on project p"):
        raise_if_access(ImmError(code, "denied", status=403, action="GetDataset"), "p")
    raise_if_access(ImmError("ResourceNotFound", "gone", status=404, action="GetDataset"), "p")  # not access


def test_a_failing_simple_query_fails_consistency() -> None:
    report = verify_fake(fake_imm([["Cluster-1"]], fail="SimpleQuery"), consistency=True)
    assert [(f.check, f.detail) for f in report.failures] == [
        ("consistency.no_orphans", "SimpleQuery failed: InvalidArgument: no listing today")
    ]


def test_consistency_through_a_mock_service() -> None:
    cover = SAMPLE["FigureCluster"]["Cover"]["URI"]
    one, ghost = [{"FigureClusterId": "Cluster-1"}], [{"FigureClusterId": "Cluster-ghost"}]
    files = [
        {"URI": cover, "MediaType": "image", "Figures": one * 3},
        *({"URI": f"oss://b/{i}.jpg", "MediaType": "image", "Figures": one} for i in (2, 3, 4)),
        {"URI": "oss://b/5.jpg", "MediaType": "image", "Figures": ghost},
    ]
    report = verify_fake(fake_imm([["Cluster-1"]], files=files), consistency=True)
    # the sample's FaceCount is 3 in the sample document: the files hold 6 faces; VideoCount 3 + ImageCount 5 = 8
    # files expected by the aggregation, 4 found; and a file names a cluster that does not exist
    assert {(f.check, f.subject) for f in report.failures} == {
        ("consistency.face_count", "Cluster-1"),
        ("consistency.image_count", "Cluster-1"),
        ("consistency.no_orphans", "Cluster-ghost"),
    }
    assert report.coverage.grouped_clusters == 2 and report.coverage.files_examined == 4


def test_grouped_counts_cut_at_the_service_limit_are_a_note() -> None:
    from imm_faces.runtime.rules import SIMPLE_QUERY_MAX_GROUPS
    from imm_faces.runtime.verify.consistency import Consistency

    report = VerifyReport("http://imm.test/", OUTPUTS)
    checker = Consistency(lambda *a, **k: None, report, lambda *a: None)  # type: ignore[arg-type]
    groups = {f"Cluster-{i}": 1 for i in range(SIMPLE_QUERY_MAX_GROUPS)}
    views = {
        "Cluster-0": cluster(ObjectId="Cluster-0", ImageCount=1, VideoCount=0),
        "Cluster-beyond": cluster(ObjectId="Cluster-beyond", ImageCount=1, VideoCount=0),
    }
    checker.judge_groups(groups, views, complete_listing=False)
    assert report.passed  # Cluster-beyond is not in the cut list: not compared
    assert any("at most 2000 groups" in note for _, note in report.notes)
    fewer = VerifyReport("http://imm.test/", OUTPUTS)
    Consistency(lambda *a, **k: None, fewer, lambda *a: None).judge_groups(  # type: ignore[arg-type]
        dict(list(groups.items())[:5]), views, complete_listing=False
    )
    assert [(f.check, f.subject) for f in fewer.failures] == [("consistency.image_count", "Cluster-beyond")]
    assert fewer.notes == []
