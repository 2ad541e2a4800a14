"""SimpleQuery: the query tree over file metadata, sorting, fields, aggregations, and its parameter errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imm_faces.emulator import query as sq
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.models.query import SimpleQuery, SimpleQueryAggregation
from imm_faces.runtime.operations import ParameterError, datasets, files, projects, query
from tests.fakes import write_photo
from tests.helpers import wait_indexed

DOCS: list[dict[str, Any]] = [
    {
        "URI": "oss://b/a.jpg",
        "Filename": "a.jpg",
        "Size": 300,
        "MediaType": "image",
        "CreateTime": "2026-01-02T00:00:00.000000000Z",
        "Figures": [
            {"FigureClusterId": "Cluster-1", "Age": 30, "Gender": "female"},
            {"FigureClusterId": "Cluster-2", "Age": 60, "Gender": "male"},
        ],
    },
    {
        "URI": "oss://b/b.jpg",
        "Filename": "b.jpg",
        "Size": 100,
        "MediaType": "image",
        "CreateTime": "2026-01-01T00:00:00.000000000Z",
        "Figures": [{"FigureClusterId": "Cluster-1", "Age": 61, "Gender": "female"}],
    },
    {
        "URI": "oss://b/c.txt",
        "Filename": "c.txt",
        "Size": 100,
        "MediaType": "document",
        "CreateTime": "2026-01-03T00:00:00.000000000Z",
    },
]


def q(**node: Any) -> SimpleQuery:
    return SimpleQuery.model_validate(node)


def uris(query_: SimpleQuery) -> list[str]:
    return [d["URI"].rsplit("/", 1)[1] for d in DOCS if sq.matches(query_, d)]


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"}, ["a.jpg", "b.jpg"]),
        ({"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-2"}, ["a.jpg"]),
        ({"Field": "Filename", "Operation": "prefix", "Value": "c."}, ["c.txt"]),
        ({"Field": "Size", "Operation": "gt", "Value": "100"}, ["a.jpg"]),
        ({"Field": "Size", "Operation": "gte", "Value": "100"}, ["a.jpg", "b.jpg", "c.txt"]),
        ({"Field": "Size", "Operation": "lt", "Value": "300"}, ["b.jpg", "c.txt"]),
        ({"Field": "Size", "Operation": "lte", "Value": "99.5"}, []),
        # Times compare as instants, whatever the fraction digits.
        ({"Field": "CreateTime", "Operation": "gte", "Value": "2026-01-02T00:00:00Z"}, ["a.jpg", "c.txt"]),
        ({"Field": "Figures", "Operation": "exist"}, ["a.jpg", "b.jpg"]),
        ({"Field": "Filename", "Operation": "match-phrase", "Value": "B.JP"}, ["b.jpg"]),
        (
            {
                "Operation": "and",
                "SubQueries": [
                    {"Field": "MediaType", "Operation": "eq", "Value": "image"},
                    {"Field": "Size", "Operation": "lt", "Value": "200"},
                ],
            },
            ["b.jpg"],
        ),
        (
            {
                "Operation": "or",
                "SubQueries": [
                    {"Field": "Size", "Operation": "gt", "Value": "200"},
                    {"Field": "MediaType", "Operation": "eq", "Value": "document"},
                ],
            },
            ["a.jpg", "c.txt"],
        ),
        (
            {
                "Operation": "not",
                "SubQueries": [{"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-2"}],
            },
            ["b.jpg", "c.txt"],
        ),
        # Without nested, the two conditions may hold for different faces of a.jpg (Cluster-1 aged 30 and
        # someone over 50); with nested they must hold for the same face: Cluster-1 and over 50 is b.jpg only.
        (
            {
                "Operation": "and",
                "SubQueries": [
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"},
                    {"Field": "Figures.Age", "Operation": "gt", "Value": "50"},
                ],
            },
            ["a.jpg", "b.jpg"],
        ),
        (
            {
                "Field": "Figures",
                "Operation": "nested",
                "SubQueries": [
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"},
                    {"Field": "Figures.Age", "Operation": "gt", "Value": "50"},
                ],
            },
            ["b.jpg"],
        ),
    ],
)
def test_operators(node: dict[str, Any], expected: list[str]) -> None:
    assert uris(q(**node)) == expected


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-2"}, {"Cluster-2"}),
        (
            {
                "Operation": "or",
                "SubQueries": [
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"},
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-2"},
                ],
            },
            {"Cluster-1", "Cluster-2"},
        ),
        # Both must hold (for any faces): a.jpg has one face in each, so the candidates are one cluster's files
        # (not the files of clusters in both sets, which is none).
        (
            {
                "Operation": "and",
                "SubQueries": [
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"},
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-2"},
                ],
            },
            {"Cluster-1"},
        ),
        (
            {
                "Operation": "and",
                "SubQueries": [
                    {"Field": "Size", "Operation": "gt", "Value": "1"},
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"},
                ],
            },
            {"Cluster-1"},
        ),
        (
            {
                "Operation": "or",
                "SubQueries": [
                    {"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"},
                    {"Field": "Size", "Operation": "gt", "Value": "1"},
                ],
            },
            None,
        ),
        (
            {
                "Operation": "not",
                "SubQueries": [{"Field": "Figures.FigureClusterId", "Operation": "eq", "Value": "Cluster-1"}],
            },
            None,
        ),
        ({"Field": "Figures.FigureClusterId", "Operation": "prefix", "Value": "Cluster-"}, None),
    ],
)
def test_cluster_constraints_select_candidate_files_without_losing_matches(
    node: dict[str, Any], expected: set[str] | None
) -> None:
    query_ = q(**node)
    assert sq.clusters_required(query_) == expected
    if expected is not None:  # every file the query matches holds a face of one of the candidate clusters
        for doc in DOCS:
            if sq.matches(query_, doc):
                assert expected & set(sq.values(doc, "Figures.FigureClusterId"))


def test_sorting_puts_missing_fields_last_and_breaks_ties_by_uri() -> None:
    by_size = sq.sort_files(DOCS, [("Size", True), ("Filename", False)])
    assert [d["Filename"] for d in by_size] == ["a.jpg", "b.jpg", "c.txt"]
    by_size_asc = sq.sort_files(DOCS, [("Size", False), ("Filename", True)])
    assert [d["Filename"] for d in by_size_asc] == ["c.txt", "b.jpg", "a.jpg"]
    with_figures_first = sq.sort_files(DOCS, [("Figures.Age", False)])
    assert [d["Filename"] for d in with_figures_first] == ["a.jpg", "b.jpg", "c.txt"]


def test_with_fields_keeps_only_the_named_paths() -> None:
    kept = sq.project(DOCS[0], ["Size", "Figures.FigureClusterId"])
    assert kept == {
        "URI": "oss://b/a.jpg",
        "Size": 300,
        "Figures": [{"FigureClusterId": "Cluster-1"}, {"FigureClusterId": "Cluster-2"}],
    }
    assert sq.project(DOCS[0], ["Figures", "Figures.Age"])["Figures"] == DOCS[0]["Figures"]


def test_aggregations() -> None:
    def agg(field: str, op: str, groups: int = 100) -> Any:
        return sq.aggregate(DOCS, SimpleQueryAggregation(field=field, operation=op), groups)  # type: ignore[arg-type]

    grouped = agg("Figures.FigureClusterId", "group")
    assert [(g.value, g.count) for g in grouped.groups or []] == [("Cluster-1", 2), ("Cluster-2", 1)]
    assert [(g.value, g.count) for g in agg("Size", "group", groups=1).groups or []] == [("100", 2)]
    assert agg("Size", "sum").value == 500
    assert agg("Size", "average").value == pytest.approx(500 / 3)
    assert (agg("Figures.Age", "min").value, agg("Figures.Age", "max").value) == (30, 61)
    assert agg("Figures.FigureClusterId", "count").value == 3
    assert agg("Figures.FigureClusterId", "distinct").value == 2
    assert agg("Title", "max").value is None and agg("Title", "sum").value == 0


@pytest.mark.parametrize(
    ("params", "wire_name", "rule"),
    [
        ({"Query": '{"Field":"Size","Operation":"between","Value":"1"}'}, "Query", "Operation"),
        ({"Query": '{"Operation":"and"}'}, "Query", "needs SubQueries"),
        ({"Query": '{"Field":"Size","Operation":"eq"}'}, "Query", "needs a Value"),
        ({"Query": '{"Operation":"or","SubQueries":[{"Field":"Size","Operation":"gt"}]}'}, "Query", "needs a Value"),
        ({"MaxResults": "101"}, "MaxResults", "without Aggregations"),
        ({"Sort": "Size", "Order": "asc,desc"}, "Order", "more orders than Sort fields"),
        ({"Sort": "a,b,c,d,e,f"}, "Sort", "at most 5"),
    ],
)
def test_bad_parameters_name_the_parameter_and_the_rule(params: dict[str, str], wire_name: str, rule: str) -> None:
    with pytest.raises(ParameterError) as err:
        query.SimpleQueryRequest.from_params({"ProjectName": "p", "DatasetName": "d", **params})
    assert err.value.code == "InvalidArgument" and err.value.parameter == wire_name and rule in err.value.message
    # 2000 groups are allowed with Aggregations.
    query.SimpleQueryRequest.from_params(
        {
            "ProjectName": "p",
            "DatasetName": "d",
            "MaxResults": "2000",
            "Aggregations": '[{"Field":"Size","Operation":"group"}]',
        }
    )


def test_service_errors_and_paging(client: ImmClient, oss_root: Path) -> None:
    client.call(projects.CreateProject, project_name="p")
    client.call(datasets.CreateDataset, project_name="p", dataset_name="d")
    empty = client.call(query.SimpleQuery, project_name="p", dataset_name="d")
    assert (empty.files, empty.total_hits, empty.next_token) == ([], 0, None)
    uris = [write_photo(oss_root, "bkt", f"{i}.png", []) for i in range(3)]
    client.call(files.BatchIndexFileMeta, project_name="p", dataset_name="d", files=[{"URI": u} for u in uris])
    wait_indexed(client, "p", "d", 3)
    pages = list(
        client.paginate(
            query.SimpleQuery, project_name="p", dataset_name="d", max_results=2, sort="Filename", order="desc"
        )
    )
    assert [f.uri for f in pages] == uris[::-1]
    meta = client.call(
        files.GetFileMeta,
        project_name="p",
        dataset_name="d",
        uri=uris[0],
        with_fields=["Filename", "Figures.FigureClusterId"],
    ).files
    assert meta and meta[0].to_wire() == {"URI": uris[0], "Filename": "0.png", "Figures": []}  # as SimpleQuery
    with pytest.raises(ImmError) as bad_value:  # a number field compared with text
        client.call(
            query.SimpleQuery,
            project_name="p",
            dataset_name="d",
            query={"Field": "Size", "Operation": "gt", "Value": "big"},
        )
    assert bad_value.value.code == "InvalidArgument" and "Size" in bad_value.value.message
    with pytest.raises(ImmError) as forged:
        client.call(query.SimpleQuery, project_name="p", dataset_name="d", next_token="bzotNQ==")  # "o:-5"
    assert forged.value.code == "InvalidArgument" and "NextToken" in forged.value.message
    with pytest.raises(ImmError) as missing:
        client.call(query.SimpleQuery, project_name="p", dataset_name="nope")
    assert missing.value.code == "ResourceNotFound"
