"""Alibaba's official SDK (alibabacloud-imm20200930) drives the emulator, unmodified.

Both signature versions and STS; responses must parse into the SDK's own models with no field dropped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_imm20200930.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from Tea.exceptions import TeaException

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import CATALOG
from tests.conftest import CREDS
from tests.fakes import write_photo
from tests.helpers import TWO_PEOPLE
from tests.sdk import now_rfc3339, sdk, wait_indexed

# Fields the seed shows for GetFigureCluster that SDK 5.0.3's FigureCluster model does not declare.
SDK_UNKNOWN = {"BaseImages"}


def no_field_dropped(response: Any, raw_keys: set[str] | None = None) -> None:
    """The SDK model's to_map() holds everything the body held (compared as JSON)."""
    body = response.body.to_map()
    assert body.get("RequestId")
    if raw_keys is not None:
        assert raw_keys <= set(body), raw_keys - set(body)


@pytest.mark.parametrize(("version", "sts"), [("v3", False), ("v2", False), ("v3", True), ("v2", True)])
def test_full_flow_through_the_official_sdk(emulator: Emulator, oss_root: Path, version: str, sts: bool) -> None:
    c = sdk(emulator, version, sts)
    c.create_project(
        m.CreateProjectRequest(
            project_name="p1", description="hi 张 +*~", tag=[m.CreateProjectRequestTag(key="k", value="v")]
        )
    )
    got = c.get_project(m.GetProjectRequest(project_name="p1", with_statistics=True)).body.project
    assert got.project_name == "p1" and got.description == "hi 张 +*~" and got.tags[0].tag_key == "k"
    assert [p.project_name for p in c.list_projects(m.ListProjectsRequest(max_results=10)).body.projects] == ["p1"]
    c.create_dataset(m.CreateDatasetRequest(project_name="p1", dataset_name="d1", dataset_max_file_count=1000))
    assert (
        c.get_dataset(m.GetDatasetRequest(project_name="p1", dataset_name="d1")).body.dataset.dataset_max_file_count
        == 1000
    )
    uris = [write_photo(oss_root, "bkt", key, faces) for key, faces in TWO_PEOPLE.items()]
    since = now_rfc3339()
    c.batch_index_file_meta(
        m.BatchIndexFileMetaRequest(project_name="p1", dataset_name="d1", files=[m.InputFile(uri=u) for u in uris])
    )
    wait_indexed(c, "p1", "d1", uris, since)
    task = c.create_figure_clustering_task(
        m.CreateFigureClusteringTaskRequest(project_name="p1", dataset_name="d1", tags={"t": "v"})
    ).body
    for _ in range(200):
        status = c.get_task(m.GetTaskRequest(project_name="p1", task_id=task.task_id, task_type="FaceClustering")).body
        if status.status != "Running":
            break
        time.sleep(0.05)
    assert status.status == "Succeeded" and status.tags == {"t": "v"}
    listed = c.list_tasks(m.ListTasksRequest(project_name="p1", task_types=["FaceClustering"])).body
    assert [t.task_id for t in listed.tasks] == [task.task_id]
    clusters = c.query_figure_clusters(
        m.QueryFigureClustersRequest(project_name="p1", dataset_name="d1", with_total_count=True)
    ).body
    assert clusters.total_count == 2
    one = c.get_figure_cluster(
        m.GetFigureClusterRequest(project_name="p1", dataset_name="d1", object_id=clusters.figure_clusters[0].object_id)
    )
    cluster = one.body.figure_cluster
    assert cluster.object_type == "figure-cluster" and cluster.cover.uri.startswith("oss://bkt/")
    counts = set()
    for x in clusters.figure_clusters:
        full = c.get_figure_cluster(
            m.GetFigureClusterRequest(project_name="p1", dataset_name="d1", object_id=x.object_id)
        )
        counts.add((full.body.figure_cluster.face_count, full.body.figure_cluster.image_count))
    assert counts == {(4, 4), (3, 3)}  # alice: 4 photos; bob: 3 photos
    batch = c.batch_get_figure_cluster(
        m.BatchGetFigureClusterRequest(
            project_name="p1", dataset_name="d1", object_ids=[x.object_id for x in clusters.figure_clusters]
        )
    )
    assert len(batch.body.figure_clusters) == 2
    c.update_figure_cluster(
        m.UpdateFigureClusterRequest(
            project_name="p1",
            dataset_name="d1",
            figure_cluster=m.FigureClusterForReq(object_id=cluster.object_id, name="Alice 张", meta_lock_version=0),
        )
    )
    with pytest.raises(TeaException) as stale:
        c.update_figure_cluster(
            m.UpdateFigureClusterRequest(
                project_name="p1",
                dataset_name="d1",
                figure_cluster=m.FigureClusterForReq(object_id=cluster.object_id, name="X", meta_lock_version=0),
            )
        )
    assert stale.value.code == "InvalidArgument"
    again = c.get_figure_cluster(
        m.GetFigureClusterRequest(project_name="p1", dataset_name="d1", object_id=cluster.object_id)
    ).body.figure_cluster
    assert (again.name, again.meta_lock_version) == ("Alice 张", 1)
    files = c.get_file_meta(m.GetFileMetaRequest(project_name="p1", dataset_name="d1", uri=uris[0])).body.files
    assert files[0].figures and files[0].figures[0].figure_cluster_id


def _strip(doc: Any) -> Any:
    """Drop what may legitimately differ: RequestId, fields the SDK does not model, and empty lists (the SDK's
    to_map() writes ``[]`` for every list field it holds, e.g. an unset Dataset.WorkflowParameters)."""
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in SDK_UNKNOWN and k != "RequestId" and v != []}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def test_responses_parse_into_sdk_models_with_no_field_dropped(emulator: Emulator, oss_root: Path) -> None:
    from imm_faces.runtime.client import ImmClient
    from imm_faces.runtime.operations import CATALOG
    from imm_faces.runtime.waiters import wait_for_task
    from tests.conftest import CREDS

    c = sdk(emulator)
    c.create_project(m.CreateProjectRequest(project_name="p1"))
    c.create_dataset(m.CreateDatasetRequest(project_name="p1", dataset_name="d1"))
    uris = [write_photo(oss_root, "bkt", key, faces) for key, faces in TWO_PEOPLE.items()]
    since = now_rfc3339()
    c.batch_index_file_meta(
        m.BatchIndexFileMetaRequest(project_name="p1", dataset_name="d1", files=[m.InputFile(uri=u) for u in uris])
    )
    wait_indexed(c, "p1", "d1", uris, since)
    req = m.CreateFigureClusteringTaskRequest(project_name="p1", dataset_name="d1")
    task_id = c.create_figure_clustering_task(req).body.task_id
    with ImmClient(endpoint=emulator.endpoint, credentials=CREDS) as imm:
        assert wait_for_task(imm, "p1", task_id, timeout=30, interval=0.05).status == "Succeeded"
        ids = [x.object_id for x in imm.paginate(CATALOG["QueryFigureClusters"], project_name="p1", dataset_name="d1")]
        calls: list[tuple[str, Any, str, dict[str, Any]]] = [
            (
                "get_project",
                m.GetProjectRequest(project_name="p1", with_statistics=True),
                "GetProject",
                {"project_name": "p1", "with_statistics": True},
            ),
            (
                "get_dataset",
                m.GetDatasetRequest(project_name="p1", dataset_name="d1", with_statistics=True),
                "GetDataset",
                {"project_name": "p1", "dataset_name": "d1", "with_statistics": True},
            ),
            (
                "get_task",
                m.GetTaskRequest(project_name="p1", task_id=task_id, task_type="FaceClustering"),
                "GetTask",
                {"project_name": "p1", "task_id": task_id, "task_type": "FaceClustering"},
            ),
            (
                "query_figure_clusters",
                m.QueryFigureClustersRequest(project_name="p1", dataset_name="d1"),
                "QueryFigureClusters",
                {"project_name": "p1", "dataset_name": "d1"},
            ),
            (
                "get_figure_cluster",
                m.GetFigureClusterRequest(project_name="p1", dataset_name="d1", object_id=ids[0]),
                "GetFigureCluster",
                {"project_name": "p1", "dataset_name": "d1", "object_id": ids[0]},
            ),
            (
                "get_file_meta",
                m.GetFileMetaRequest(project_name="p1", dataset_name="d1", uri=uris[0]),
                "GetFileMeta",
                {"project_name": "p1", "dataset_name": "d1", "uri": uris[0]},
            ),
        ]
        for method, sdk_request, op, params in calls:
            ours = _strip(imm.call(CATALOG[op], **params).to_wire())  # every field the emulator sent
            theirs = _strip(getattr(c, method)(sdk_request).body.to_map())  # what the SDK model kept
            assert theirs == ours, method


@pytest.mark.parametrize(
    ("mutate", "code", "status"),
    [
        (lambda cfg: setattr(cfg, "access_key_id", "unknown-id"), "InvalidAccessKeyId.NotFound", 404),
        (lambda cfg: setattr(cfg, "access_key_secret", "wrong-secret"), "SignatureDoesNotMatch", 400),
    ],
)
def test_authentication_errors(emulator: Emulator, mutate: Any, code: str, status: int) -> None:
    for version in ("v3", "v2"):
        config = open_api_models.Config(
            endpoint=emulator.endpoint.removeprefix("http://"),
            protocol="http",
            access_key_id=DEFAULT_ACCESS_KEY.access_key_id,
            access_key_secret=DEFAULT_ACCESS_KEY.access_key_secret,
            signature_algorithm="v2" if version == "v2" else None,
        )
        mutate(config)
        with pytest.raises(TeaException) as exc:
            Client(config).get_project(m.GetProjectRequest(project_name="x"))
        assert (exc.value.code, exc.value.statusCode) == (code, status), version


def test_resource_errors_as_the_service_spells_them(emulator: Emulator) -> None:
    c = sdk(emulator)
    with pytest.raises(TeaException) as exc:
        c.get_project(m.GetProjectRequest(project_name="missing"))
    assert exc.value.code == "ResourceNotFound"
    assert "The specified resource project is not found." in exc.value.message
    c.create_project(m.CreateProjectRequest(project_name="p1"))
    with pytest.raises(TeaException) as dup:
        c.create_project(m.CreateProjectRequest(project_name="p1"))
    assert dup.value.code == "ResourceAlreadyExists"
    with pytest.raises(TeaException) as bad:
        c.create_project(m.CreateProjectRequest(project_name="9-starts-with-digit"))
    assert bad.value.code == "InvalidArgument" and "ProjectName" in bad.value.message
    c.create_dataset(m.CreateDatasetRequest(project_name="p1", dataset_name="d1"))
    with pytest.raises(TeaException) as busy:
        c.delete_project(m.DeleteProjectRequest(project_name="p1"))
    assert busy.value.code == "StatusConflict"


def _invariants(emulator: Emulator, project: str, dataset: str) -> list[str]:
    from imm_faces.emulator.figures import check_invariants

    with emulator.store.snapshot() as tx:
        return check_invariants(tx, project, dataset)


def _run_task(c: Client, task_id: str, task_type: str) -> m.GetTaskResponseBody:
    for _ in range(200):
        body = c.get_task(m.GetTaskRequest(project_name="p1", task_id=task_id, task_type=task_type)).body
        if body.status != "Running":
            return body
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} still Running")


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_query_merge_search_and_delete_through_the_official_sdk(
    emulator: Emulator, oss_root: Path, version: str
) -> None:
    """SimpleQuery, SearchImageFigureCluster, CreateFigureClustersMergingTask, DeleteFileMeta and
    BatchDeleteFileMeta, sent by the SDK's own request models and read back into its response models."""
    c = sdk(emulator, version)
    c.create_project(m.CreateProjectRequest(project_name="p1"))
    c.create_dataset(m.CreateDatasetRequest(project_name="p1", dataset_name="d1"))
    uris = {key: write_photo(oss_root, "bkt", key, faces) for key, faces in TWO_PEOPLE.items()}
    since = now_rfc3339()
    c.batch_index_file_meta(
        m.BatchIndexFileMetaRequest(
            project_name="p1", dataset_name="d1", files=[m.InputFile(uri=u) for u in uris.values()]
        )
    )
    wait_indexed(c, "p1", "d1", list(uris.values()), since)
    task = c.create_figure_clustering_task(m.CreateFigureClusteringTaskRequest(project_name="p1", dataset_name="d1"))
    assert _run_task(c, task.body.task_id, "FaceClustering").status == "Succeeded"

    def cluster_of(key: str) -> str:
        meta = c.get_file_meta(m.GetFileMetaRequest(project_name="p1", dataset_name="d1", uri=uris[key])).body
        return str(meta.files[0].figures[0].figure_cluster_id)

    alice, bob = cluster_of("alice-2.png"), cluster_of("bob-2.png")
    assert alice and bob and alice != bob

    # SimpleQuery: the images of a face group (the IMM FAQ's way), sorted, paged, with chosen fields.
    in_alice = m.SimpleQuery(field="Figures.FigureClusterId", operation="eq", value=alice)
    page = {
        "project_name": "p1",
        "dataset_name": "d1",
        "query": in_alice,
        "sort": "Filename",
        "order": "asc",
        "max_results": 3,
    }
    first = c.simple_query(m.SimpleQueryRequest(**page, with_fields=["URI", "Filename"])).body
    assert first.total_hits == 4 and first.next_token
    assert [f.filename for f in first.files] == ["alice-1.png", "alice-2.png", "alice-3.png"]
    assert all(not f.figures and f.size is None for f in first.files)  # only the fields asked for
    rest = c.simple_query(m.SimpleQueryRequest(**page, next_token=first.next_token)).body
    assert [f.filename for f in rest.files] == ["both.png"] and not rest.next_token
    assert {fig.figure_cluster_id for fig in rest.files[0].figures} == {alice, bob}
    both = m.SimpleQuery(
        operation="and",
        sub_queries=[
            in_alice,
            m.SimpleQuery(
                operation="not", sub_queries=[m.SimpleQuery(field="Filename", operation="prefix", value="alice-")]
            ),
        ],
    )
    only = c.simple_query(
        m.SimpleQueryRequest(project_name="p1", dataset_name="d1", query=both, without_total_hits=True)
    ).body
    assert [f.uri for f in only.files] == [uris["both.png"]] and only.total_hits is None
    groups = c.simple_query(
        m.SimpleQueryRequest(
            project_name="p1",
            dataset_name="d1",
            aggregations=[
                m.SimpleQueryRequestAggregations(field="Figures.FigureClusterId", operation="group"),
                m.SimpleQueryRequestAggregations(field="FigureCount", operation="sum"),
            ],
        )
    ).body
    assert not groups.files
    assert {(g.value, g.count) for g in groups.aggregations[0].groups} == {(alice, 4), (bob, 3)}
    assert groups.aggregations[1].value == 7  # faces in all the photos: alice 4, bob 3
    with ImmClient(endpoint=emulator.endpoint, credentials=CREDS) as imm:  # the SDK's model kept every field
        ours = imm.call(
            CATALOG["SimpleQuery"],
            project_name="p1",
            dataset_name="d1",
            query={"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": bob},
        )
        theirs = c.simple_query(
            m.SimpleQueryRequest(
                project_name="p1",
                dataset_name="d1",
                query=m.SimpleQuery(field="Figures.FigureClusterId", operation="eq", value=bob),
            )
        )
        assert _strip(theirs.body.to_map()) == _strip(ours.to_wire())

    # SearchImageFigureCluster: the faces of a photo and the groups they belong to.
    found = c.search_image_figure_cluster(
        m.SearchImageFigureClusterRequest(project_name="p1", dataset_name="d1", source_uri=uris["both.png"])
    ).body
    assert found.request_id and {x.cluster_id for x in found.clusters} == {alice, bob}
    assert all(0 < x.similarity <= 1 and x.boundary.width > 0 for x in found.clusters)
    none = c.search_image_figure_cluster(
        m.SearchImageFigureClusterRequest(project_name="p1", dataset_name="d1", source_uri=uris["landscape.png"])
    ).body
    assert not none.clusters
    for source in ("oss://bkt/", "oss://bkt/missing.jpg", "http://bkt/a.jpg"):
        with pytest.raises(TeaException) as bad_source:
            c.search_image_figure_cluster(
                m.SearchImageFigureClusterRequest(project_name="p1", dataset_name="d1", source_uri=source)
            )
        assert bad_source.value.code == "InvalidArgument" and "SourceURI" in bad_source.value.message, source

    # CreateFigureClustersMergingTask: bob's group into alice's; a task in GetTask and ListTasks.
    for bad, code in (
        (
            m.CreateFigureClustersMergingTaskRequest(
                project_name="p1", dataset_name="d1", from_=bob, froms=[bob], to=alice
            ),
            "InvalidArgument",
        ),
        (
            m.CreateFigureClustersMergingTaskRequest(project_name="p1", dataset_name="d1", from_=alice, to=alice),
            "InvalidArgument",
        ),
        (
            m.CreateFigureClustersMergingTaskRequest(
                project_name="p1", dataset_name="d1", froms=["Cluster-none"], to=alice
            ),
            "ResourceNotFound",
        ),
        (m.CreateFigureClustersMergingTaskRequest(project_name="p1", dataset_name="d1", to=alice), "MissingParameter"),
    ):
        with pytest.raises(TeaException) as err:
            c.create_figure_clusters_merging_task(bad)
        assert err.value.code == code, bad.to_map()
    merge = c.create_figure_clusters_merging_task(
        m.CreateFigureClustersMergingTaskRequest(
            project_name="p1", dataset_name="d1", froms=[bob], to=alice, tags={"why": "same person"}
        )
    ).body
    assert merge.task_id and merge.event_id
    done = _run_task(c, merge.task_id, "FigureClustersMerging")
    assert (done.status, done.task_type, done.tags) == ("Succeeded", "FigureClustersMerging", {"why": "same person"})
    listed = c.list_tasks(m.ListTasksRequest(project_name="p1", task_types=["FigureClustersMerging"])).body.tasks
    assert [t.task_id for t in listed] == [merge.task_id]
    left = c.query_figure_clusters(m.QueryFigureClustersRequest(project_name="p1", dataset_name="d1")).body
    assert [(x.object_id, x.face_count, x.image_count) for x in left.figure_clusters] == [(alice, 7, 6)]
    moved = c.get_file_meta(m.GetFileMetaRequest(project_name="p1", dataset_name="d1", uri=uris["bob-1.png"]))
    assert moved.body.files[0].figures[0].figure_cluster_id == alice
    assert _invariants(emulator, "p1", "d1") == []

    # DeleteFileMeta and BatchDeleteFileMeta: the group shrinks, then goes with its last image.
    c.delete_file_meta(m.DeleteFileMetaRequest(project_name="p1", dataset_name="d1", uri=uris["both.png"]))
    with pytest.raises(TeaException) as gone:
        c.get_file_meta(m.GetFileMetaRequest(project_name="p1", dataset_name="d1", uri=uris["both.png"]))
    assert gone.value.code == "ResourceNotFound"
    shrunk = c.get_figure_cluster(m.GetFigureClusterRequest(project_name="p1", dataset_name="d1", object_id=alice))
    assert (shrunk.body.figure_cluster.face_count, shrunk.body.figure_cluster.image_count) == (5, 5)
    assert shrunk.body.figure_cluster.cover.uri != uris["both.png"]
    assert _invariants(emulator, "p1", "d1") == []
    c.delete_file_meta(m.DeleteFileMetaRequest(project_name="p1", dataset_name="d1", uri=uris["both.png"]))  # again
    rest_uris = [u for k, u in uris.items() if k != "both.png"]
    c.batch_delete_file_meta(m.BatchDeleteFileMetaRequest(project_name="p1", dataset_name="d1", uris=rest_uris))
    left = c.query_figure_clusters(m.QueryFigureClustersRequest(project_name="p1", dataset_name="d1")).body
    assert not left.figure_clusters
    assert c.simple_query(m.SimpleQueryRequest(project_name="p1", dataset_name="d1")).body.total_hits == 0
    with pytest.raises(TeaException) as too_many:
        too = [f"oss://bkt/{i}.png" for i in range(101)]
        c.batch_delete_file_meta(m.BatchDeleteFileMetaRequest(project_name="p1", dataset_name="d1", uris=too))
    assert too_many.value.code == "InvalidArgument" and "URIs" in too_many.value.message
