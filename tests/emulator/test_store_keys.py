"""Typed store keys name the rows existing state files hold: each key reads a document written as
(kind, project, dataset, name) by SQL, so a state file from before the keys opens unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imm_faces.emulator.store import (
    BindingKey,
    Bindings,
    ClusterKey,
    Clusters,
    DatasetKey,
    Datasets,
    FileKey,
    Files,
    Key,
    ProjectKey,
    Projects,
    Scope,
    Store,
    TaskKey,
    Tasks,
)

ROWS: list[tuple[Key, tuple[str, str, str, str]]] = [
    (ProjectKey("p"), ("project", "", "", "p")),
    (DatasetKey("p", "d"), ("dataset", "p", "", "d")),
    (BindingKey("p", "d", "oss://b/x/"), ("binding", "p", "d", "oss://b/x/")),
    (FileKey("p", "d", "oss://b/x/a.jpg"), ("file", "p", "d", "oss://b/x/a.jpg")),
    (TaskKey("p", "t-1"), ("task", "p", "", "t-1")),
    (ClusterKey("p", "d", "c-1"), ("cluster", "p", "d", "c-1")),
]


@pytest.mark.parametrize(("key", "row"), ROWS, ids=[type(k).__name__ for k, _ in ROWS])
def test_a_typed_key_reads_the_row_an_older_state_file_holds(tmp_path: Path, key: Key, row: tuple[str, ...]) -> None:
    db = tmp_path / "state.db"
    Store(db).close()  # the schema
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO resources (kind, project, dataset, key, doc) VALUES (?,?,?,?,?)", (*row, '{"v":1}'))
    store = Store(db)
    try:
        with store.tx() as tx:
            assert tx.get(key) == {"v": 1}
            assert tx.exists(key)
            tx.put(key, {"v": 2})
            assert tx.get(Key(*row)) == {"v": 2}  # the same row, spelled out
            assert tx.delete(key) and not tx.exists(key)
    finally:
        store.close()


SCOPES: list[tuple[Scope, tuple[str, str, str]]] = [
    (Projects(), ("project", "", "")),
    (Datasets("p"), ("dataset", "p", "")),
    (Bindings("p", "d"), ("binding", "p", "d")),
    (Files("p", "d"), ("file", "p", "d")),
    (Tasks("p"), ("task", "p", "")),
    (Clusters("p", "d"), ("cluster", "p", "d")),
]


@pytest.mark.parametrize(("scope", "parent"), SCOPES, ids=[type(s).__name__ for s, _ in SCOPES])
def test_a_scope_lists_the_rows_under_its_parent(tmp_path: Path, scope: Scope, parent: tuple[str, str, str]) -> None:
    db = tmp_path / "state.db"
    Store(db).close()
    kind, project, dataset = parent
    rows = [(kind, project, dataset, "b"), (kind, project, dataset, "a"), (kind, "other", dataset, "c")]
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO resources VALUES (?,?,?,?,?)", [(*r, f'{{"k":"{r[3]}"}}') for r in rows])
    store = Store(db)
    try:
        with store.snapshot() as tx:
            assert tx.keys(scope) == ["a", "b"] and tx.count(scope) == 2
            assert [k for k, _ in tx.scan(scope)] == ["a", "b"]
            assert tx.get_many(scope, ["b", "c"]) == [{"k": "b"}, None]
            assert tx.scan_fields(scope, ["k"]) == [("a", {"k": "a"}), ("b", {"k": "b"})]
    finally:
        store.close()


def test_files_of_every_dataset_are_one_scan(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        with store.tx() as tx:
            for dataset, uri in [("d1", "oss://b/2"), ("d2", "oss://b/1"), ("d1", "oss://b/3")]:
                tx.put(FileKey("p", dataset, uri), {"URI": uri})
            assert [k for k, _ in tx.scan(Files("p", None))] == ["oss://b/1", "oss://b/2", "oss://b/3"]
            with pytest.raises(ValueError, match="spans datasets"):
                tx.count(Files("p", None))
    finally:
        store.close()
