"""A SimpleQuery that asks only for aggregations reads just the fields it uses: its answer must be the one the
whole documents give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from imm_faces.emulator import query as sq
from imm_faces.emulator.service import ImmService, Jobs
from imm_faces.emulator.store import FileKey
from imm_faces.runtime.models.query import SimpleQuery, SimpleQueryAggregation
from imm_faces.runtime.operations import query as q
from tests.helpers import dataset_store

P, D = "p", "d"
FILES: list[dict[str, Any]] = [
    {
        "URI": "oss://b/1.jpg",
        "Size": 10,
        "Score": 0.30000000000000004,
        "Label": 'a\u00e9"x',
        "Figures": [{"FigureClusterId": "C1", "Age": 30}, {"FigureClusterId": None, "Age": 41.5}],
    },
    {
        "URI": "oss://b/2.jpg",
        "Size": 20,
        "Score": 2e-05,
        "Label": None,
        "Figures": [{"FigureClusterId": "C1", "Age": 31}, {"FigureClusterId": "C2"}],
    },
    {"URI": "oss://b/3.jpg", "Size": 30, 'We"ird': 1, "Figures": []},
    {"URI": "oss://b/4.jpg"},
    # shapes the emulator never writes, which a cut-down read must still answer like the whole document
    {"URI": "oss://b/5.jpg", "Figures": {"FigureClusterId": "C10", "Age": 7}},
    {"URI": "oss://b/6.jpg", "Figures": ["C1", 3, ["C2"], None, {"Age": True}, {"FigureClusterId": "C10"}]},
]


@pytest.fixture
def service(tmp_path: Path) -> ImmService:
    store = dataset_store(tmp_path / "state.db", P, D)
    with store.tx() as tx:
        for doc in FILES:
            tx.put(FileKey(P, D, doc["URI"]), doc)
            # the faces' cluster index holds what the files' Figures name, as the emulator keeps it
            named = sq.values(doc, sq.CLUSTER_FIELD)
            faces = [(f"{doc['URI']}#{i}", cid, 0.9, np.zeros(2, dtype=np.float32)) for i, cid in enumerate(named)]
            tx.put_file_faces(P, D, doc["URI"], faces)
    return ImmService(store, cast(Jobs, None))


def leaf(field: str, operation: str, value: str | None = None) -> SimpleQuery:
    return SimpleQuery.model_validate({"Field": field, "Operation": operation, "Value": value})


QUERIES: list[SimpleQuery | None] = [
    None,
    leaf("Figures.FigureClusterId", "exist"),
    leaf("Size", "gt", "15"),
    SimpleQuery.model_validate({"Operation": "not", "SubQueries": [{"Field": "Label", "Operation": "exist"}]}),
    SimpleQuery.model_validate(
        {
            "Field": "Figures",
            "Operation": "nested",
            "SubQueries": [
                {"Field": "Figures.Age", "Operation": "gte", "Value": "31"},
                {"Field": "FigureClusterId", "Operation": "exist"},
            ],
        }
    ),
    leaf('We"ird', "exist"),  # a name no JSON path can hold: whole documents are read
]
AGGREGATIONS = [
    SimpleQueryAggregation(field=field, operation=op)
    for field, op in [
        ("Figures.FigureClusterId", "group"),
        ("Score", "sum"),
        ("Figures.Age", "average"),
        ("Label", "distinct"),
        ("Size", "max"),
        ("URI", "count"),
    ]
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda x: json.dumps(x.to_wire()) if x else "none")
def test_aggregations_equal_those_over_whole_documents(service: ImmService, query: SimpleQuery | None) -> None:
    got = service.handle(
        "SimpleQuery",
        q.SimpleQueryRequest(project_name=P, dataset_name=D, query=query, aggregations=AGGREGATIONS, max_results=100),
    )
    matched = [doc for doc in FILES if sq.matches(query, doc)]
    want = q.SimpleQueryResponse(
        aggregations=[sq.aggregate(matched, spec, 100) for spec in AGGREGATIONS], total_hits=len(matched)
    )
    assert got.to_wire() == want.to_wire()  # type: ignore[union-attr]


GROUP_BY_CLUSTER = [SimpleQueryAggregation(field=sq.CLUSTER_FIELD, operation="group")]


@pytest.mark.parametrize(
    "query",
    [leaf(sq.CLUSTER_FIELD, "exist"), None, leaf(sq.CLUSTER_FIELD, "eq", "C1"), leaf("Figures.Age", "exist")],
    ids=lambda x: json.dumps(x.to_wire()) if x else "none",
)
@pytest.mark.parametrize("limit", [100, 2, 1])
def test_files_grouped_by_cluster_equal_those_over_whole_documents(
    service: ImmService, query: SimpleQuery | None, limit: int
) -> None:
    """``exist`` on the cluster field grouped by it is answered from the faces' index (verify's orphan check);
    other queries read the files. Either way: files per cluster, most first, ties by id, ``limit`` groups."""
    got = service.handle(
        "SimpleQuery",
        q.SimpleQueryRequest(
            project_name=P, dataset_name=D, query=query, aggregations=GROUP_BY_CLUSTER, max_results=limit
        ),
    )
    matched = [doc for doc in FILES if sq.matches(query, doc)]
    want = q.SimpleQueryResponse(
        aggregations=[sq.aggregate(matched, GROUP_BY_CLUSTER[0], limit)], total_hits=len(matched)
    )
    assert got.to_wire() == want.to_wire()  # type: ignore[union-attr]
    if query == leaf(sq.CLUSTER_FIELD, "exist") and limit == 100:
        assert [(g.value, g.count) for g in want.aggregations[0].groups or []] == [("C1", 2), ("C10", 2), ("C2", 1)]
