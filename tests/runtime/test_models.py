"""The wire models against IMM's own GetFigureCluster reference sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imm_faces.runtime.models.base import wire_name
from imm_faces.runtime.models.figure_cluster import FigureCluster, FigureClusterSummary
from imm_faces.runtime.models.file import File
from imm_faces.runtime.operations import CATALOG
from imm_faces.runtime.operations.figure_clusters import FigureClusterResponse

SAMPLE = Path(__file__).parent.parent / "data" / "GetFigureCluster.sample-response.json"


def _declared_wire_names(model: type[File] | type[FigureCluster]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_seed_sample_round_trips_to_identical_json() -> None:
    raw = SAMPLE.read_text(encoding="utf-8")
    parsed = FigureClusterResponse.model_validate_json(raw)
    dumped = parsed.to_wire()
    assert json.dumps(dumped, sort_keys=True) == json.dumps(json.loads(raw), sort_keys=True)
    # Integers stay integers (AverageAge 26, FigureConfidence 1), floats stay floats.
    assert dumped["FigureCluster"]["AverageAge"] == 26 and isinstance(dumped["FigureCluster"]["AverageAge"], int)


def test_every_field_of_the_sample_is_declared_not_just_kept_as_extra() -> None:
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))["FigureCluster"]
    assert set(sample) <= _declared_wire_names(FigureCluster)
    for file in [sample["Cover"], *sample["BaseImages"]]:
        assert set(file) <= _declared_wire_names(File), set(file) - _declared_wire_names(File)


def test_parsed_sample_is_typed() -> None:
    cluster = FigureClusterResponse.model_validate_json(SAMPLE.read_text(encoding="utf-8")).figure_cluster
    assert cluster is not None and cluster.cover is not None and cluster.cover.figures
    face = cluster.cover.figures[0]
    assert face.boundary is not None and face.boundary.width == 200
    assert face.head_pose is not None and face.head_pose.pitch == pytest.approx(18.3855896)
    assert cluster.base_images and cluster.base_images[0].ossuri == "oss://examplebucket/sampleobject.jpg"


def test_unknown_fields_are_kept() -> None:
    cluster = FigureCluster.model_validate({"ObjectId": "c", "BrandNewField": {"x": 1}})
    assert cluster.to_wire() == {"ObjectId": "c", "BrandNewField": {"x": 1}}


@pytest.mark.parametrize(
    ("attribute", "wire"),
    [
        ("ossuri", "OSSURI"),
        ("age_sd", "AgeSD"),
        ("e_tag", "ETag"),
        ("oss_crc64", "OSSCRC64"),
        ("object_acl", "ObjectACL"),
        ("ocr_contents", "OCRContents"),
        ("exif", "EXIF"),
        ("uri", "URI"),
    ],
)
def test_wire_names(attribute: str, wire: str) -> None:
    assert wire_name(attribute) == wire


def test_catalog_json_parameters_match_the_sdk() -> None:
    # research §1.4: the parameters the official SDK sends as JSON strings.
    expected = {
        "CreateProject": {"Tag"},
        "UpdateProject": {"Tag"},
        "ListProjects": {"Tag"},
        "CreateDataset": {"WorkflowParameters"},
        "UpdateDataset": {"WorkflowParameters"},
        "IndexFileMeta": {"File", "Notification"},
        "BatchIndexFileMeta": {"Files", "Notification"},
        "GetFileMeta": {"WithFields"},
        "CreateFigureClusteringTask": {"Notification", "Tags"},
        "ListTasks": {"TaskTypes", "StartTimeRange", "EndTimeRange"},
        "QueryFigureClusters": {"CreateTimeRange", "UpdateTimeRange"},
        "BatchGetFigureCluster": {"ObjectIds"},
        "UpdateFigureCluster": {"FigureCluster"},
        "BatchDeleteFileMeta": {"URIs"},
        "SimpleQuery": {"Aggregations", "Query", "WithFields"},
        "CreateFigureClustersMergingTask": {"Froms", "Notification", "Tags"},
        "SearchImageFigureCluster": {"CredentialConfig"},
    }
    for name, op in CATALOG.items():
        assert op.json_params == expected.get(name, set()), name


def test_the_summary_view_reads_what_the_whole_cluster_says() -> None:
    """verify reads the list views as FigureClusterSummary: the same values as FigureCluster for every field
    they share, the Cover's URI, and nothing else kept."""
    raw = json.loads(SAMPLE.read_text(encoding="utf-8"))["FigureCluster"]
    whole = FigureCluster.model_validate(raw)
    summary = FigureClusterSummary.model_validate_json(json.dumps(raw))
    shared = set(FigureClusterSummary.model_fields) - {"cover"}
    assert shared == set(FigureCluster.model_fields) - {"cover", "base_images"}
    assert {n: getattr(summary, n) for n in shared} == {n: getattr(whole, n) for n in shared}
    assert summary.cover is not None and whole.cover is not None and summary.cover.uri == whole.cover.uri
    assert not summary.model_extra and not summary.cover.model_extra  # the rest is skipped, not kept
    assert FigureCluster.model_validate({"Unknown": 1}).model_extra == {"Unknown": 1}  # the whole model keeps it


def test_an_operation_read_as_a_view_is_the_same_operation() -> None:
    from imm_faces.runtime.operations import figure_clusters as fc

    for view, whole in [
        (fc.QueryFigureClusterSummaries, fc.QueryFigureClusters),
        (fc.BatchGetFigureClusterSummaries, fc.BatchGetFigureCluster),
    ]:
        same = ("name", "request", "page_items", "version")
        assert [getattr(view, a) for a in same] == [getattr(whole, a) for a in same]
        assert view.response is fc.FigureClusterSummaries
