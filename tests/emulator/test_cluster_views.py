"""The figure-cluster reads pass stored JSON through without decoding it: what they send must be exactly what
rendering the document through the ``FigureCluster`` model sends (the behaviour before that shortcut)."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import pytest

from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.figures import cluster_document
from imm_faces.emulator.operations.figure_clusters import cluster_view
from imm_faces.emulator.service import ImmService, Jobs
from imm_faces.emulator.store import ClusterKey
from imm_faces.runtime.errors import RESOURCE_NOT_FOUND
from imm_faces.runtime.operations import figure_clusters as fc
from tests.helpers import dataset_store

P, D = "p", "d"


def _file(uri: str, cluster: str | None) -> dict[str, Any]:
    return {
        "URI": uri,
        "ObjectType": "file",
        "Size": 140,
        "ImageWidth": 64,
        "FigureCount": 2,
        "Figures": [
            {
                "FigureId": "f1",
                "FigureClusterId": cluster,
                "Age": 30,
                "AgeSD": 3,
                "FigureConfidence": 1.0,
                "Boundary": {"Left": 10, "Top": 5, "Width": 100, "Height": 100},
                "HeadPose": {"Pitch": 0.0},
            },
            {"FigureId": "f2", "FigureClusterId": None, "FaceQuality": 0.25},  # a pending face: null until clustered
        ],
    }


def _cluster(cid: str, **extra: Any) -> dict[str, Any]:
    return {
        "OwnerId": "1",
        "ProjectName": P,
        "DatasetName": D,
        "ObjectType": "figure-cluster",
        "ObjectId": cid,
        "CreateTime": "2026-01-01T00:00:00.000000001Z",
        "FaceCount": 3,
        "ImageCount": 3,
        "VideoCount": 0,
        "MetaLockVersion": 0,
        "MinAge": 30.0,
        "MaxAge": 31.5,
        "AverageAge": 30.7,
        "Name": 'Ann \u00e9 "q"',
        "Cover": _file(f"oss://b/{cid}-0.jpg", cid),
        "BaseImages": [_file(f"oss://b/{cid}-{i}.jpg", cid) for i in range(3)],
        **extra,
    }


def _typed(text: str) -> Any:
    """JSON parsed so that 1 and 1.0 differ (a plain == would call them equal)."""
    return json.loads(text, parse_float=lambda x: ("float", float(x)), parse_int=lambda x: ("int", int(x)))


def _expected(doc: dict[str, Any], base_images: bool) -> Any:
    return _typed(cluster_view(doc, base_images=base_images).model_dump_json(by_alias=True, exclude_none=True))


@pytest.fixture
def service(tmp_path: Any) -> ImmService:
    return ImmService(dataset_store(tmp_path / "state.db", P, D), cast(Jobs, None))


CASES: dict[str, dict[str, Any]] = {
    "normalised": cluster_document(_cluster("Cluster-a")),
    "pinned cover": cluster_document(_cluster("Cluster-b", _CoverFigureId="f1")),
    "null in free-form labels": cluster_document(_cluster("Cluster-c", CustomLabels={"k": None, "n": 1})),
    "written before normalisation": _cluster("Cluster-d"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_get_batch_and_query_send_what_the_model_renders(service: ImmService, case: str) -> None:
    doc = CASES[case]
    cid = doc["ObjectId"]
    with service.store.tx() as tx:
        tx.put(ClusterKey(P, D, cid), doc)

    got = _typed(
        service.handle("GetFigureCluster", fc.GetFigureClusterRequest(project_name=P, dataset_name=D, object_id=cid))
        .render("rid")
        .decode()
    )  # type: ignore[union-attr]
    assert got == {"RequestId": "rid", "FigureCluster": _expected(doc, True)}
    assert got["FigureCluster"]["BaseImages"] and not any(k.startswith("_") for k in got["FigureCluster"])

    batch = service.handle(
        "BatchGetFigureCluster",
        fc.BatchGetFigureClusterRequest(project_name=P, dataset_name=D, object_ids=[cid, "Cluster-missing", cid]),
    )
    got = _typed(batch.render("rid").decode())  # type: ignore[union-attr]
    assert got == {"RequestId": "rid", "FigureClusters": [_expected(doc, False)] * 2}
    assert "BaseImages" not in got["FigureClusters"][0]

    for extra in ({}, {"sort": "CreateTime"}):  # the key-paged path and the general one
        page = service.handle(
            "QueryFigureClusters",
            fc.QueryFigureClustersRequest(project_name=P, dataset_name=D, with_total_count=True, **extra),
        )
        got = _typed(page.render("rid").decode())  # type: ignore[union-attr]
        assert got == {"RequestId": "rid", "FigureClusters": [_expected(doc, False)], "TotalCount": ("int", 1)}


def test_stored_documents_are_the_models_json_without_nulls() -> None:
    raw = _cluster("Cluster-a", _CoverFigureId="f1")
    doc = cluster_document(copy.deepcopy(raw))
    assert doc["_CoverFigureId"] == "f1"
    assert "null" not in json.dumps(doc)
    public = {k: v for k, v in raw.items() if not k.startswith("_")}
    assert _typed(json.dumps({k: v for k, v in doc.items() if not k.startswith("_")})) == _expected(public, True)


def test_missing_cluster_dataset_and_project_keep_their_errors(service: ImmService) -> None:
    for project, dataset, resource in ((P, D, "FigureCluster"), (P, "nope", "dataset"), ("nope", D, "project")):
        with pytest.raises(ApiError) as err:
            service.handle(
                "GetFigureCluster",
                fc.GetFigureClusterRequest(project_name=project, dataset_name=dataset, object_id="Cluster-x"),
            )
        assert err.value.code == RESOURCE_NOT_FOUND and resource in err.value.body("rid", "h")["Message"]
