"""Typed store keys name the rows existing state files hold: each key reads a document written as
(kind, project, dataset, name) by SQL, so a state file from before the keys opens unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from imm_faces.emulator.store import (
    BindingKey,
    ClusterKey,
    DatasetKey,
    FileKey,
    Key,
    ProjectKey,
    Store,
    TaskKey,
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
            assert tx.get(*row[:1], *row[1:]) == {"v": 2}  # the same row, spelled out
            assert tx.delete(key) and not tx.exists(key)
    finally:
        store.close()
