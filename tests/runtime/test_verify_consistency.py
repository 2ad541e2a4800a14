"""verify's consistency checks (:mod:`imm_faces.runtime.verify.consistency`) driven directly: the SimpleQuery
requests it sends (what it asks IMM for, page by page, fifty clusters at a time) and how it judges the answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.models.figure_cluster import FigureCluster
from imm_faces.runtime.models.file import File, FileFaces
from imm_faces.runtime.models.query import SimpleQuery as Query
from imm_faces.runtime.models.query import SimpleQueryAggregation
from imm_faces.runtime.operations.query import SimpleQueryFaces, SimpleQueryFileFaces, SimpleQueryRequest
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.verify.base import AccessError, ClusterRecord, VerifyReport
from imm_faces.runtime.verify.checks import Failure
from imm_faces.runtime.verify.consistency import FILES_WAIT, Consistency

OUTPUTS = StackOutputs(project_name="p", dataset_name="d", region="cn-hangzhou")
SAMPLE = json.loads((Path(__file__).parents[1] / "data" / "GetFigureCluster.sample-response.json").read_text())
FIELD = "Figures.FigureClusterId"


def cluster(object_id: str, **changes: Any) -> FigureCluster:
    doc = {**SAMPLE["FigureCluster"], "ProjectName": "p", "DatasetName": "d", "ObjectId": object_id, **changes}
    return FigureCluster.model_validate({k: v for k, v in doc.items() if v is not None})


def file(uri: str, *cluster_ids: str) -> File:
    return File.model_validate(
        {"URI": uri, "MediaType": "image", "Figures": [{"FigureClusterId": c} for c in cluster_ids]}
    )


class FakeImm:
    """verify's ``call`` for SimpleQuery: each request is validated as IMM's would be, recorded, and answered
    with the next of ``answers``; an ImmError among them is raised."""

    def __init__(self, *answers: dict[str, Any] | ImmError) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.ticks: list[tuple[str, int, int | None]] = []

    async def call(self, operation: Any, **kwargs: Any) -> SimpleQueryFaces:
        assert operation is SimpleQueryFileFaces  # SimpleQuery, each file read as what verify asks for
        SimpleQueryRequest.model_validate({"project_name": "p", **kwargs})  # what the client would send
        self.requests.append(kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, ImmError):
            raise answer
        return SimpleQueryFaces.model_validate(answer)

    def tick(self, phase: str, done: int, total: int | None) -> None:
        self.ticks.append((phase, done, total))


def checker(imm: FakeImm, report: VerifyReport | None = None) -> Consistency:
    return Consistency(imm.call, report or VerifyReport("http://imm.test/", OUTPUTS), imm.tick)


def test_the_group_query_counts_every_cluster_up_to_the_service_limit() -> None:
    groups = [{"Value": "C-1", "Count": 3}, {"Value": "C-2"}, {"Count": 4}]
    imm = FakeImm({"Aggregations": [{"Field": FIELD, "Operation": "group", "Groups": groups}]})
    files = checker(imm)
    asyncio.run(files.fetch_groups())
    assert imm.requests == [
        {
            "dataset_name": "d",
            "query": Query(field=FIELD, operation="exist"),
            "aggregations": [SimpleQueryAggregation(field=FIELD, operation="group")],
            "max_results": 2000,
        }
    ]
    assert files.groups == {"C-1": 3, "C-2": 0}  # a group without Count counts nothing; one without Value is no id


def test_sampled_clusters_are_fetched_fifty_at_a_time() -> None:
    spawned: list[Awaitable[None]] = []
    files = checker(FakeImm())
    for i in range(50):
        assert not spawned
        files.want(f"C-{i}", spawned.append)
    assert len(spawned) == 1 and files.batch == []
    files.want("C-50", spawned.append)
    files.flush(spawned.append)
    files.flush(spawned.append)  # nothing left: no empty query
    assert len(spawned) == 2 and files.batch == []
    for coroutine in spawned:
        coroutine.close()  # type: ignore[attr-defined]  # not run here


def test_a_batch_waits_for_company_at_most_files_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the listing goes on, a batch is sent once its first cluster has waited FILES_WAIT (not at every page),
    so a small sample is one query; a cluster added later does not restart its batch's clock."""
    now = [100.0]
    monkeypatch.setattr("imm_faces.runtime.verify.consistency.time", SimpleNamespace(monotonic=lambda: now[0]))
    spawned: list[Awaitable[None]] = []
    files = checker(FakeImm())
    files.want("C-1", spawned.append)
    now[0] += FILES_WAIT / 2
    files.flush(spawned.append, waited=FILES_WAIT)  # the next page: C-1 has not waited long enough
    files.want("C-2", spawned.append)
    assert not spawned and files.batch == ["C-1", "C-2"]
    now[0] += FILES_WAIT / 2
    files.flush(spawned.append, waited=FILES_WAIT)  # C-1 waited FILES_WAIT: both go in one query
    assert len(spawned) == 1 and files.batch == []
    files.want("C-3", spawned.append)
    files.flush(spawned.append, waited=FILES_WAIT)
    assert len(spawned) == 1  # a new batch, a new clock
    files.flush(spawned.append)  # the listing's end
    assert len(spawned) == 2 and files.batch == []
    for coroutine in spawned:
        coroutine.close()  # type: ignore[attr-defined]  # not run here


def test_the_files_of_sampled_clusters_are_read_page_by_page() -> None:
    one, two, three = file("oss://b/1.jpg", "C-1"), file("oss://b/2.jpg", "C-2"), file("oss://b/3.jpg", "C-1")
    imm = FakeImm(
        {"Files": [one.model_dump(by_alias=True, exclude_none=True)], "NextToken": "page-2"},
        {
            "Files": [
                two.model_dump(by_alias=True, exclude_none=True),
                three.model_dump(by_alias=True, exclude_none=True),
            ]
        },
        {"Files": []},
    )
    files = checker(imm)
    asyncio.run(files.fetch_files(["C-1", "C-2"]))
    both = Query(
        operation="or",
        sub_queries=[Query(field=FIELD, operation="eq", value="C-1"), Query(field=FIELD, operation="eq", value="C-2")],
    )
    first = {
        "dataset_name": "d",
        "query": both,
        "with_fields": ["URI", "MediaType", "Figures"],
        "max_results": 100,
        "next_token": None,
        "without_total_hits": True,
    }
    assert imm.requests == [first, {**first, "next_token": "page-2"}]
    read = [(ids, [f.model_dump() for f in found]) for ids, found in files.found]  # every page's files, in order
    assert read == [(["C-1", "C-2"], [FileFaces.model_validate(f.to_wire()).model_dump() for f in (one, two, three)])]
    assert imm.ticks == [("files", 2, None)]
    asyncio.run(files.fetch_files(["C-3"]))  # one cluster: the eq leaf alone, no `or`
    assert imm.requests[-1]["query"] == Query(field=FIELD, operation="eq", value="C-3")
    assert imm.ticks[-1] == ("files", 3, None)  # clusters whose files were read so far


def test_a_refused_query_is_an_access_error_naming_the_project() -> None:
    denied = ImmError("Forbidden.RAM", "denied", status=403, action="SimpleQuery")
    with pytest.raises(AccessError, match=r"needs imm:SimpleQuery on project p$"):
        asyncio.run(checker(FakeImm(denied)).fetch_groups())


def test_a_failed_query_fails_no_orphans_for_the_dataset() -> None:
    report = VerifyReport("http://imm.test/", OUTPUTS)
    files = checker(FakeImm(ImmError("InternalError", "try later", status=500)), report)
    asyncio.run(files.fetch_files(["C-1"]))
    files.judge({"C-1": cluster("C-1")}, complete_listing=True)
    assert report.failures == [
        Failure("consistency.no_orphans", "dataset", "SimpleQuery failed: InternalError: try later")
    ]


def test_without_groups_only_the_sample_is_judged() -> None:
    report = VerifyReport("http://imm.test/", OUTPUTS)
    checker(FakeImm(), report).judge({"C-1": cluster("C-1")}, complete_listing=True)
    assert report.passed and report.checks == {} and report.coverage.grouped_clusters is None


def test_grouped_counts_against_image_and_video_counts() -> None:
    report = VerifyReport("http://imm.test/", OUTPUTS)
    views = {
        "C-mixed": cluster("C-mixed", ImageCount=2, VideoCount=1),  # 2 + 1 files name it
        "C-videos": cluster("C-videos", ImageCount=None, VideoCount=2),
        "C-none": cluster("C-none", ImageCount=0, VideoCount=0),  # no group: no file names it, rightly
        "C-wrong": cluster("C-wrong", ImageCount=1, VideoCount=0),
    }
    groups = {"C-mixed": 3, "C-videos": 2, "C-wrong": 2, "C-ghost": 2}
    checker(FakeImm(), report).judge_groups(groups, views, complete_listing=True)
    assert report.failures == [  # in CHECKS order
        Failure("consistency.image_count", "C-wrong", "ImageCount + VideoCount is 1, but 2 file(s) name the cluster"),
        Failure("consistency.no_orphans", "C-ghost", "2 file(s) name this figure cluster, which does not exist"),
    ]
    assert (report.check("consistency.image_count").checked, report.check("consistency.no_orphans").checked) == (4, 4)
    assert report.coverage.grouped_clusters == 4 and report.notes == []


def test_cut_groups_skip_the_clusters_beyond_and_still_judge_the_rest() -> None:
    report = VerifyReport("http://imm.test/", OUTPUTS)
    groups = {f"C-{i}": 1 for i in range(2000)}
    views = {
        "C-beyond": cluster("C-beyond", ImageCount=1, VideoCount=0),  # listed first, not in the cut groups
        "C-0": cluster("C-0", ImageCount=3, VideoCount=0),
    }
    checker(FakeImm(), report).judge_groups(groups, views, complete_listing=False)
    assert [(f.check, f.subject) for f in report.failures] == [("consistency.image_count", "C-0")]
    assert report.notes == [
        (
            "consistency.no_orphans",
            "SimpleQuery returns at most 2000 groups: the clusters named by the fewest files were not compared",
        )
    ]


def test_the_sample_judged_against_its_files_and_the_failures_kept_on_the_cluster() -> None:
    report = VerifyReport("http://imm.test/", OUTPUTS)
    report.clusters["C-1"] = ClusterRecord("C-1")
    cover = SAMPLE["FigureCluster"]["Cover"]["URI"]
    files = checker(FakeImm(), report)
    c1 = [file(cover, "C-1", "C-1"), file("oss://b/2.jpg", "C-1")]
    files.found = [(["C-1", "C-2"], [*c1, file("oss://b/3.jpg", "C-2")])]
    views = {"C-1": cluster("C-1", FaceCount=3, ImageCount=3), "C-2": cluster("C-2", FaceCount=1, ImageCount=1)}
    files.judge(views, complete_listing=True)
    wrong = Failure("consistency.image_count", "C-1", "ImageCount 3, but 2 image(s) hold its faces")
    cover_c2 = Failure("consistency.cover", "C-2", f"Cover {cover!r} holds none of its faces")
    assert report.failures == [wrong, cover_c2]
    assert report.clusters["C-1"].failures == [wrong]  # C-2 has no record (not in the sample's records)
    assert (report.coverage.files_checked_clusters, report.coverage.files_examined) == (2, 3)
    assert report.check("consistency.face_count").checked == 2
