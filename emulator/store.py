"""The emulator's state in SQLite (WAL, synchronous=FULL: an acknowledged write survives a hard kill).

Resources are stored as their wire documents (the JSON a Get returns), keyed by kind, their parent
(project, dataset; empty where there is none) and their own name, so rendering a response is reading a row.
Code names a document by its typed key (:class:`ProjectKey`, :class:`DatasetKey`, :class:`BindingKey`,
:class:`FileKey`, :class:`TaskKey`, :class:`ClusterKey`; the documents under one parent by a :class:`Scope`
such as :class:`Files`), which are those rows' primary keys: a project is
("project", "", "", name), a dataset ("dataset", project, "", name), a binding or file ("binding"/"file",
project, dataset, URI), a task ("task", project, "", id), a figure cluster ("cluster", project, dataset, id).
Faces, which the clustering engine scans in bulk, have a table of their own with the embedding as a float32
blob.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, project TEXT NOT NULL, dataset TEXT NOT NULL, key TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, project, dataset, key)
);
CREATE TABLE IF NOT EXISTS faces (
    project TEXT NOT NULL, dataset TEXT NOT NULL, figure_id TEXT NOT NULL,
    uri TEXT NOT NULL, cluster_id TEXT, quality REAL NOT NULL, embedding BLOB NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (project, dataset, figure_id)
);
CREATE INDEX IF NOT EXISTS faces_by_uri ON faces (project, dataset, uri);
CREATE INDEX IF NOT EXISTS faces_by_cluster ON faces (project, dataset, cluster_id);
CREATE TABLE IF NOT EXISTS index_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, dataset TEXT NOT NULL, item TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    key_id TEXT NOT NULL, nonce TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
"""


PROJECT, DATASET, BINDING, FILE, TASK, CLUSTER = "project", "dataset", "binding", "file", "task", "cluster"
"""The kinds of document: the resources table's ``kind`` column, as existing state files hold it."""


@dataclass(frozen=True)
class Key:
    """Where one resource document is stored: the resources table's primary key (kind, project, dataset,
    name). Built by the typed keys below, whose rows are the format existing state files hold."""

    kind: str
    project: str
    dataset: str
    name: str

    def row(self) -> tuple[str, str, str, str]:
        """The primary key's columns, in the table's order."""
        return self.kind, self.project, self.dataset, self.name


class ProjectKey(Key):
    def __init__(self, name: str) -> None:
        super().__init__(PROJECT, "", "", name)


class DatasetKey(Key):
    def __init__(self, project: str, name: str) -> None:
        super().__init__(DATASET, project, "", name)


class BindingKey(Key):
    def __init__(self, project: str, dataset: str, uri: str) -> None:
        super().__init__(BINDING, project, dataset, uri)


class FileKey(Key):
    def __init__(self, project: str, dataset: str, uri: str) -> None:
        super().__init__(FILE, project, dataset, uri)


class TaskKey(Key):
    def __init__(self, project: str, task_id: str) -> None:
        super().__init__(TASK, project, "", task_id)


class ClusterKey(Key):
    def __init__(self, project: str, dataset: str, cluster_id: str) -> None:
        super().__init__(CLUSTER, project, dataset, cluster_id)


@dataclass(frozen=True)
class Scope:
    """The documents of one kind under one parent (project, dataset; empty where there is none). A
    :class:`Files` scope with ``dataset=None`` spans every dataset of the project (:meth:`Tx.scan` only)."""

    kind: str
    project: str
    dataset: str | None

    def key(self, name: str) -> Key:
        """The key of the document ``name`` in this scope (of one dataset, or of none)."""
        return Key(*_parent(self), name)


class Projects(Scope):
    def __init__(self) -> None:
        super().__init__(PROJECT, "", "")


class Datasets(Scope):
    def __init__(self, project: str) -> None:
        super().__init__(DATASET, project, "")


class Bindings(Scope):
    def __init__(self, project: str, dataset: str) -> None:
        super().__init__(BINDING, project, dataset)


class Files(Scope):
    def __init__(self, project: str, dataset: str | None) -> None:
        super().__init__(FILE, project, dataset)


class Tasks(Scope):
    def __init__(self, project: str) -> None:
        super().__init__(TASK, project, "")


class Clusters(Scope):
    def __init__(self, project: str, dataset: str) -> None:
        super().__init__(CLUSTER, project, dataset)


def _parent(scope: Scope) -> tuple[str, str, str]:
    """A scope within one dataset (or none): the kind, project and dataset columns."""
    if scope.dataset is None:
        raise ValueError(f"{scope!r} spans datasets: only a scan can read it")
    return scope.kind, scope.project, scope.dataset


@dataclass(frozen=True)
class FaceRow:
    figure_id: str
    uri: str
    cluster_id: str | None
    quality: float


class Tx:
    """Operations inside one transaction (see :meth:`Store.tx`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def get(self, key: Key) -> dict[str, Any] | None:
        text = self.get_text(key)
        return None if text is None else json.loads(text)

    def get_text(self, key: Key) -> str | None:
        """A document as its stored JSON text (not decoded), or None."""
        row = self._c.execute(
            "SELECT doc FROM resources WHERE kind=? AND project=? AND dataset=? AND key=?",
            key.row(),
        ).fetchone()
        return row[0] if row else None

    def exists(self, key: Key) -> bool:
        """Whether a document exists (nothing is read but the primary key)."""
        row = self._c.execute(
            "SELECT 1 FROM resources WHERE kind=? AND project=? AND dataset=? AND key=?",
            key.row(),
        ).fetchone()
        return row is not None

    def put(self, key: Key, doc: dict[str, Any]) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO resources (kind, project, dataset, key, doc) VALUES (?,?,?,?,?)",
            (*key.row(), json.dumps(doc, ensure_ascii=False)),
        )

    def delete(self, key: Key) -> bool:
        cur = self._c.execute(
            "DELETE FROM resources WHERE kind=? AND project=? AND dataset=? AND key=?",
            key.row(),
        )
        return cur.rowcount > 0

    def delete_children(self, project: str, dataset: str | None = None) -> None:
        """Remove everything under a project (or one of its datasets), faces included."""
        if dataset is None:
            self._c.execute("DELETE FROM resources WHERE project=?", (project,))
            self._c.execute("DELETE FROM faces WHERE project=?", (project,))
        else:
            self._c.execute("DELETE FROM resources WHERE project=? AND dataset=?", (project, dataset))
            self._c.execute("DELETE FROM faces WHERE project=? AND dataset=?", (project, dataset))

    def scan(self, scope: Scope, *, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        """(key, doc) of one kind under a parent, ordered by key; a scope with ``dataset=None`` spans a project's
        datasets."""
        sql = "SELECT key, doc FROM resources WHERE kind=? AND project=?"
        args: list[Any] = [scope.kind, scope.project]
        if scope.dataset is not None:
            sql += " AND dataset=?"
            args.append(scope.dataset)
        if prefix:
            sql += " AND substr(key, 1, ?) = ?"
            args += [len(prefix), prefix]
        return [(k, json.loads(d)) for k, d in self._c.execute(sql + " ORDER BY key, dataset", args)]

    def scan_fields(self, scope: Scope, names: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """(key, doc) as :meth:`scan` gives them, each doc holding only these top-level fields (the absent ones
        left out): SQLite cuts them out of the stored text as it was written, so Python decodes only what the
        caller reads (a SimpleQuery aggregation reads a field or two of every file). A name must not contain
        ``"`` or ``\\`` (it is quoted into a JSON path, which is bound as a parameter)."""
        if any('"' in name or "\\" in name for name in names):
            raise ValueError(f"field names not usable in a JSON path: {names!r}")
        columns = ", ".join("doc -> ?" for _ in names)
        rows = self._c.execute(
            f"SELECT key, {columns} FROM resources WHERE kind=? AND project=? AND dataset=? ORDER BY key",  # noqa: S608
            [*(f'$."{name}"' for name in names), *_parent(scope)],
        )
        return [
            (row[0], {n: json.loads(v) for n, v in zip(names, row[1:], strict=True) if v is not None}) for row in rows
        ]

    def get_many(self, scope: Scope, keys: list[str], *, without: str | None = None) -> list[dict[str, Any] | None]:
        """Documents by key, in the keys' order (None where absent), in one query (see :meth:`get_many_text`)."""
        texts = self.get_many_text(scope, keys, without=without)
        return [None if text is None else json.loads(text) for text in texts]

    def get_many_text(self, scope: Scope, keys: list[str], *, without: str | None = None) -> list[str | None]:
        """Documents by key as JSON text, in the keys' order (None where absent), in one query. ``without`` names a
        top-level field SQLite drops from the text (a list view leaves out a cluster's BaseImages); the rest of the
        text is kept as stored (SQLite re-renders it compactly, numbers and strings as they were written)."""
        if not keys:
            return []
        column = "json_remove(doc, ?)" if without else "doc"
        marks = ",".join("?" * len(keys))
        args: list[Any] = [f"$.{without}"] if without else []
        rows = self._c.execute(
            f"SELECT key, {column} FROM resources WHERE kind=? AND project=? AND dataset=? AND key IN ({marks})",  # noqa: S608
            [*args, *_parent(scope), *keys],
        )
        found: dict[str, str] = dict(rows.fetchall())
        return [found.get(k) for k in keys]

    def keys(self, scope: Scope) -> list[str]:
        """The keys of one kind under a parent, ordered (no document is decoded)."""
        rows = self._c.execute(
            "SELECT key FROM resources WHERE kind=? AND project=? AND dataset=? ORDER BY key", _parent(scope)
        )
        return [r[0] for r in rows]

    def scan_kind(self, kind: str) -> list[dict[str, Any]]:
        """Every document of a kind (:data:`BINDING`, :data:`TASK`...), whatever its parent."""
        rows = self._c.execute("SELECT doc FROM resources WHERE kind=? ORDER BY project, dataset, key", (kind,))
        return [json.loads(r[0]) for r in rows]

    def count(self, scope: Scope) -> int:
        row = self._c.execute("SELECT count(*) FROM resources WHERE kind=? AND project=? AND dataset=?", _parent(scope))
        return int(row.fetchone()[0])

    # -- faces

    def faces(self, project: str, dataset: str, *, cluster_id: str | None = None) -> list[FaceRow]:
        sql = "SELECT figure_id, uri, cluster_id, quality FROM faces WHERE project=? AND dataset=?"
        args: list[Any] = [project, dataset]
        if cluster_id is not None:
            sql += " AND cluster_id=?"
            args.append(cluster_id)
        return [FaceRow(*row) for row in self._c.execute(sql + " ORDER BY seq", args)]

    def embeddings(
        self, project: str, dataset: str, *, assigned: bool
    ) -> tuple[list[str], list[str | None], npt.NDArray[np.float32]]:
        """(figure ids, cluster ids, n x d matrix) of assigned or unassigned faces, in arrival order."""
        cond = "cluster_id IS NOT NULL" if assigned else "cluster_id IS NULL"
        rows = self._c.execute(
            f"SELECT figure_id, cluster_id, embedding FROM faces WHERE project=? AND dataset=? AND {cond}"  # noqa: S608
            " ORDER BY seq",
            (project, dataset),
        ).fetchall()
        if not rows:
            return [], [], np.zeros((0, 0), dtype=np.float32)
        matrix = np.stack([np.frombuffer(r[2], dtype=np.float32) for r in rows])
        return [r[0] for r in rows], [r[1] for r in rows], matrix

    def files_per_cluster(self, project: str, dataset: str) -> tuple[int, list[tuple[str, int]]]:
        """From the faces' cluster index: (files holding a face that names a cluster, [(cluster id, files holding
        its faces)] most files first, then by id). The index holds exactly the files' ``Figures.FigureClusterId``
        (:func:`~imm_faces.emulator.figures.check_invariants` asserts it after every change in the tests)."""
        where = "FROM faces WHERE project=? AND dataset=? AND cluster_id IS NOT NULL"
        total = self._c.execute(f"SELECT count(DISTINCT uri) {where}", (project, dataset)).fetchone()[0]
        rows = self._c.execute(
            f"SELECT cluster_id, count(DISTINCT uri) AS n {where} GROUP BY cluster_id ORDER BY n DESC, cluster_id",
            (project, dataset),
        ).fetchall()
        return int(total), [(str(r[0]), int(r[1])) for r in rows]

    def member_batches(
        self, project: str, dataset: str, size: int = 4096
    ) -> Iterator[tuple[list[str], npt.NDArray[np.float32]]]:
        """(cluster ids, n x d matrix) of the faces in clusters, ``size`` at a time (memory stays bounded)."""
        cur = self._c.execute(
            "SELECT cluster_id, embedding FROM faces WHERE project=? AND dataset=? AND cluster_id IS NOT NULL",
            (project, dataset),
        )
        while rows := cur.fetchmany(size):
            yield [r[0] for r in rows], np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])

    def enqueue(self, project: str, dataset: str, items: list[dict[str, Any]]) -> list[int]:
        """Record files to index (an acknowledged IndexFileMeta survives a crash); returns their job ids."""
        sql = "INSERT INTO index_queue (project, dataset, item) VALUES (?,?,?)"
        return [int(self._c.execute(sql, (project, dataset, json.dumps(item))).lastrowid or 0) for item in items]

    def uris_in_clusters(self, project: str, dataset: str, cluster_ids: set[str]) -> list[str]:
        """The files holding a face of any of these clusters (by the faces' cluster index), in URI order."""
        if not cluster_ids:
            return []
        marks = ",".join("?" * len(cluster_ids))
        rows = self._c.execute(
            f"SELECT DISTINCT uri FROM faces WHERE project=? AND dataset=? AND cluster_id IN ({marks}) ORDER BY uri",  # noqa: S608 - only placeholders are formatted in
            (project, dataset, *sorted(cluster_ids)),
        )
        return [r[0] for r in rows]

    def finish_job(self, job_id: int) -> bool:
        """End an index job; False when it was no longer queued (cancelled by a delete of its file)."""
        return self._c.execute("DELETE FROM index_queue WHERE id=?", (job_id,)).rowcount > 0

    def drop_queued(self, project: str, dataset: str, uris: list[str]) -> None:
        """Cancel the queued index jobs of these files (their files were deleted from the dataset)."""
        self._c.executemany(
            "DELETE FROM index_queue WHERE project=? AND dataset=? AND json_extract(item, '$.URI')=?",
            [(project, dataset, uri) for uri in uris],
        )

    def queued(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        """Index jobs not yet done, oldest first: (job id, project, dataset, item)."""
        rows = self._c.execute("SELECT id, project, dataset, item FROM index_queue ORDER BY id")
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def file_faces(self, project: str, dataset: str, uri: str) -> list[tuple[FaceRow, npt.NDArray[np.float32]]]:
        """The faces stored for one file, with their embeddings, in arrival order."""
        rows = self._c.execute(
            "SELECT figure_id, uri, cluster_id, quality, embedding FROM faces"
            " WHERE project=? AND dataset=? AND uri=? ORDER BY seq",
            (project, dataset, uri),
        ).fetchall()
        return [(FaceRow(*r[:4]), np.frombuffer(r[4], dtype=np.float32)) for r in rows]

    def put_file_faces(
        self,
        project: str,
        dataset: str,
        uri: str,
        faces: list[tuple[str, str | None, float, npt.NDArray[np.float32]]],
    ) -> None:
        """Replace the faces of one file by (figure id, cluster id or None, quality, embedding) rows."""
        self._c.execute("DELETE FROM faces WHERE project=? AND dataset=? AND uri=?", (project, dataset, uri))
        seq = self._c.execute("SELECT coalesce(max(seq), 0) FROM faces").fetchone()[0]
        self._c.executemany(
            "INSERT INTO faces (project, dataset, figure_id, uri, cluster_id, quality, embedding, seq)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [
                (project, dataset, fid, uri, cid, float(q), np.asarray(e, dtype=np.float32).tobytes(), seq + i + 1)
                for i, (fid, cid, q, e) in enumerate(faces)
            ],
        )

    def assign_faces(self, project: str, dataset: str, assignments: dict[str, str]) -> None:
        self._c.executemany(
            "UPDATE faces SET cluster_id=? WHERE project=? AND dataset=? AND figure_id=?",
            [(cid, project, dataset, fid) for fid, cid in assignments.items()],
        )

    # -- signature nonces (the gateway accepts a nonce once within the clock-skew window, across restarts)

    def add_nonces(self, rows: list[tuple[str, str, float]]) -> None:
        """Record used (key id, nonce, expiry as epoch seconds) rows."""
        self._c.executemany("INSERT OR IGNORE INTO nonces (key_id, nonce, expires) VALUES (?,?,?)", rows)

    def live_nonces(self, now: float) -> list[tuple[str, str, float]]:
        """The nonces still within their window at ``now`` (epoch seconds)."""
        return list(self._c.execute("SELECT key_id, nonce, expires FROM nonces WHERE expires >= ?", (now,)))

    def prune_nonces(self, now: float) -> None:
        """Forget nonces whose window has passed (their requests are rejected by their timestamp anyway)."""
        self._c.execute("DELETE FROM nonces WHERE expires < ?", (now,))


class Store:
    """Thread-safe access to the database; ``path`` may be ``:memory:``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A read-only, consistent view that does not wait for writers: WAL lets each thread read on a
        connection of its own while a writer (a clustering task, say) holds the write lock. An in-memory
        database has one connection only, so there this is :meth:`tx`."""
        if self.path == ":memory:":
            with self.tx() as tx:
                yield tx
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:  # not self._lock: a writer holds that for its whole transaction
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            yield Tx(conn)
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One serialisable transaction: committed on success, rolled back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock, self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._conn.close()
