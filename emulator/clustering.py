"""Incremental face clustering: average linkage from running sums, and IMM's rule for starting a group.

Faces are 128-d embeddings compared by Euclidean distance. A cluster keeps three running figures: the sum
``S`` of its members, their count ``n`` and the sum ``Q`` of their squared norms. From them, the
root-mean-square distance of a face ``x`` to all the members is exact and O(d):

    rms(x)^2 = mean_j |x - y_j|^2 = |x|^2 - 2 x.S/n + Q/n = |x - mean|^2 + variance

A face joins the cluster with the smallest rms when that is under the threshold (average linkage, without
keeping the members). Unlike a centroid test, a cluster that has absorbed a few strangers does not become a
magnet for everyone near the population mean: its variance grows and raises every rms to it.

Starting a cluster follows IMM's documented rule (``runtime.rules``): a face no cluster accepts is pending;
a new cluster starts only when at least ``FACE_GROUP_MIN_GOOD_FACES`` pending *good* faces are mutually close
(each within the threshold, in rms, of the ones chosen before it, nearest first). The new cluster then takes
the pending faces, good or not, whose rms to it is under the threshold. Faces that are not good never start a
cluster but may join one. At the end of a task, the faces still pending are offered once more to the
clusters as they ended up; a face that stays pending is returned as ``None`` and is offered again to the
next task.

Existing clusters keep their ids and members; only pending faces are assigned, so a task is incremental.
Work is done a chunk of faces at a time: one (chunk x clusters) product against the clusters as they were
when the chunk began, and the faces it puts under the threshold join at once; the others, in order, are
compared with the clusters changed in the chunk (kept current) and, when good and still unplaced, with the
pending faces (one product per chunk). Memory is O(chunk x (clusters + pending)), never faces x faces.

IMM documents the rule for starting a group, not its algorithm: the rms test and the threshold are ours
(``benchmarks/clustering.py`` measures them against chinese whispers and HDBSCAN).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from imm_faces.runtime.rules import FACE_GROUP_MIN_GOOD_FACES

DEFAULT_THRESHOLD = 0.55
"""Root-mean-square distance under which a face belongs with a cluster's members. dlib puts photos of one
person ~0.27-0.59 apart and different people ~0.66-0.96 (the sample photos: at most 0.43 and at least 0.79);
the rms of a face to its own person's photos is about their typical distance, so 0.55 takes nearly all of a
person's photos and no stranger's. ``benchmarks/clustering.py`` shows the trade-off on 20,000 faces."""

CHUNK = 256

F64 = npt.NDArray[np.float64]


class ClusterStats:
    """Per cluster ``ids[i]``: sum of member embeddings, member count, sum of members' squared norms.

    Storage grows by doubling, so starting a cluster is amortised O(d), not a copy of every cluster."""

    def __init__(self, ids: list[str], sums: F64, counts: npt.NDArray[np.int64], squares: F64) -> None:
        self.ids = ids
        self._sums = sums
        self._counts = counts
        self._squares = squares

    @classmethod
    def from_members(cls, cluster_ids: list[str], embeddings: npt.NDArray[np.float32]) -> ClusterStats:
        ids = sorted(set(cluster_ids))
        index = {cid: i for i, cid in enumerate(ids)}
        dim = embeddings.shape[1] if embeddings.ndim == 2 else 0
        sums = np.zeros((len(ids), dim))
        counts = np.zeros(len(ids), dtype=np.int64)
        squares = np.zeros(len(ids))
        if ids:
            rows = np.array([index[c] for c in cluster_ids])
            vecs = embeddings.astype(np.float64)
            np.add.at(sums, rows, vecs)
            np.add.at(counts, rows, 1)
            np.add.at(squares, rows, (vecs**2).sum(1))
        return cls(ids, sums, counts, squares)

    @classmethod
    def from_batches(cls, batches: Iterable[tuple[list[str], npt.NDArray[np.float32]]]) -> ClusterStats:
        """The same figures from (cluster ids, embeddings) batches of members, read one batch at a time."""
        stats = cls([], np.zeros((0, 0)), np.zeros(0, np.int64), np.zeros(0))
        index: dict[str, int] = {}
        for cluster_ids, embeddings in batches:
            for cid in cluster_ids:
                if cid not in index:
                    index[cid] = stats.start(cid, np.zeros((0, embeddings.shape[1])))
            stats.add_many(np.array([index[c] for c in cluster_ids]), embeddings.astype(np.float64))
        return stats

    @property
    def dim(self) -> int:
        return int(self._sums.shape[1]) if self.ids else 0

    def __len__(self) -> int:
        return len(self.ids)

    def rms2(self, x: F64, which: npt.NDArray[np.intp] | slice | None = None) -> F64:
        """Mean squared distance of each row of ``x`` to the members of each cluster (rows x clusters)."""
        sel = slice(0, len(self.ids)) if which is None else which
        n = self._counts[sel].astype(np.float64)
        means = (self._sums[sel] / n[:, None]).astype(np.float32)
        # The product in float32 (twice as fast; its rounding, ~1e-7, is far below any distance that matters).
        cross = (x.astype(np.float32) @ means.T).astype(np.float64)
        out: F64 = (x**2).sum(1)[:, None] - 2 * cross + (self._squares[sel] / n)[None, :]
        return np.maximum(out, 0.0)

    def mean_and_spread(self, index: int) -> tuple[F64, float]:
        """A cluster's mean and the mean squared norm of its members (rms2(x) = |x|^2 - 2 x.mean + spread)."""
        n = float(self._counts[index])
        return self._sums[index] / n, float(self._squares[index]) / n

    def add_many(self, indices: npt.NDArray[np.intp], vecs: F64) -> None:
        np.add.at(self._sums, indices, vecs)
        np.add.at(self._counts, indices, 1)
        np.add.at(self._squares, indices, (vecs**2).sum(1))

    def add(self, index: int, vec: F64) -> None:
        self._sums[index] += vec
        self._counts[index] += 1
        self._squares[index] += float(vec @ vec)

    def start(self, cluster_id: str, vecs: F64) -> int:
        """A new cluster of the given members; returns its index."""
        n = len(self.ids)
        if n == len(self._counts) or self._sums.shape[1] != vecs.shape[1]:
            capacity = max(16, 2 * n)
            sums, counts, squares = (
                np.zeros((capacity, vecs.shape[1])),
                np.zeros(capacity, np.int64),
                np.zeros(capacity),
            )
            if n:
                sums[:n], counts[:n], squares[:n] = self._sums[:n], self._counts[:n], self._squares[:n]
            self._sums, self._counts, self._squares = sums, counts, squares
        self._sums[n], self._counts[n], self._squares[n] = vecs.sum(0), len(vecs), float((vecs**2).sum())
        self.ids.append(cluster_id)
        return n


class _Pending:
    """Faces waiting for a cluster: embeddings (float32) and squared norms, whether each is good and still
    waiting, and its position in the input. Rows keep their index until :meth:`compact` (between chunks)."""

    def __init__(self, dim: int) -> None:
        self.vecs = np.zeros((64, dim), np.float32)
        self.norms = np.zeros(64)
        self.good = np.zeros(64, dtype=bool)
        self.alive = np.zeros(64, dtype=bool)
        self.position = np.zeros(64, dtype=np.int64)
        self.size = 0

    def _resize(self, rows: npt.NDArray[np.intp], capacity: int) -> None:
        n = len(rows)
        for name in ("vecs", "norms", "good", "alive", "position"):
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), old.dtype)
            new[:n] = old[rows]
            setattr(self, name, new)
        self.size = n

    def compact(self) -> None:
        """Drop the faces that found a cluster (row indices change)."""
        if self.size and self.alive[: self.size].sum() < self.size // 2:
            keep = np.flatnonzero(self.alive[: self.size])
            self._resize(keep, max(64, 2 * len(keep)))

    def add(self, vec: F64, good: bool, position: int) -> int:
        if self.size == len(self.alive):
            self._resize(np.arange(self.size), 2 * self.size)
        k = self.size
        self.vecs[k], self.norms[k], self.good[k], self.alive[k], self.position[k] = (
            vec,
            vec @ vec,
            good,
            True,
            position,
        )
        self.size += 1
        return k

    def d2(self, vec: F64, dots: npt.NDArray[np.floating[Any]] | None, upto: int) -> F64:
        """Squared distances from ``vec`` to every row; ``dots`` (rows @ vec) is precomputed up to ``upto``."""
        out = np.empty(self.size)
        if upto:
            assert dots is not None
            out[:upto] = dots[:upto]
        if self.size > upto:
            out[upto:] = self.vecs[upto : self.size] @ vec.astype(np.float32)
        return np.maximum(self.norms[: self.size] - 2 * out + float(vec @ vec), 0.0)


def assign(
    embeddings: npt.NDArray[np.float32],
    stats: ClusterStats,
    new_id: Callable[[], str],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    good: npt.NDArray[np.bool_] | None = None,
    min_good: int = FACE_GROUP_MIN_GOOD_FACES,
) -> list[str | None]:
    """Assign each face (rows of ``embeddings``, in arrival order) a cluster id, or ``None`` while pending.

    ``good[i]`` says whether face ``i`` may count towards starting a cluster (all faces when omitted).
    ``stats`` is updated in place: existing clusters keep their index and id; new ones are appended."""
    n = len(embeddings)
    if n and len(stats) and stats.dim != embeddings.shape[1]:
        raise ValueError("embedding dimension differs from the existing clusters'")
    good_flags = np.ones(n, dtype=bool) if good is None else np.asarray(good, dtype=bool)
    if len(good_flags) != n:
        raise ValueError("good must have one flag per embedding")
    # The products here are small: a second BLAS thread only spins, and stalls when the cores are busy.
    with threadpool_limits(limits=1, user_api="blas"):
        return _assign(embeddings, stats, new_id, threshold**2, good_flags, min_good)


def _assign(
    embeddings: npt.NDArray[np.float32],
    stats: ClusterStats,
    new_id: Callable[[], str],
    limit: float,
    good_flags: npt.NDArray[np.bool_],
    min_good: int,
) -> list[str | None]:
    n = len(embeddings)
    labels: list[int | None] = [None] * n
    dim = embeddings.shape[1] if embeddings.ndim == 2 else 0
    pending = _Pending(dim)
    for begin in range(0, n, CHUNK):
        chunk = embeddings[begin : begin + CHUNK].astype(np.float64)
        touched = _Touched(dim, 2 * len(chunk))  # clusters changed (or born) in this chunk, kept current
        joins = np.zeros(len(chunk), dtype=bool)
        if len(stats):
            # Faces that a cluster takes as the clusters were when the chunk began join it all at once.
            rms2 = stats.rms2(chunk)
            nearest = rms2.argmin(1)
            joins = rms2[np.arange(len(chunk)), nearest] < limit
            rows = np.flatnonzero(joins)
            stats.add_many(nearest[rows], chunk[rows])
            for row in rows.tolist():
                labels[begin + row] = int(nearest[row])
            for index in np.unique(nearest[rows]).tolist():
                touched.update(stats, index)
        # The others, in order: they can only join a cluster changed since (the rest were over the threshold),
        # or wait, or with other waiting good faces start one. Their distances to the faces already waiting
        # come from one product (good faces only: only they look for partners).
        pending.compact()
        waiting = pending.size
        seeking = good_flags[begin : begin + CHUNK] & ~joins
        column = np.cumsum(seeking) - 1
        dots = pending.vecs[:waiting] @ chunk[seeking].astype(np.float32).T if waiting and seeking.any() else None
        for i in np.flatnonzero(~joins).tolist():
            vec, position = chunk[i], begin + i
            target, rms = touched.nearest(vec)
            if rms < limit:
                stats.add(target, vec)
                labels[position] = target
                touched.update(stats, target)
                continue
            slot = pending.add(vec, bool(good_flags[position]), position)
            if not seeking[i]:
                continue
            d2 = pending.d2(vec, None if dots is None else dots[:, column[i]], waiting)
            group = _seed_group(pending, slot, d2, limit, min_good)
            if group is not None:
                index = stats.start(new_id(), pending.vecs[group].astype(np.float64))
                pending.alive[group] = False
                for k in group:
                    labels[int(pending.position[k])] = index
                _absorb(pending, stats, index, vec, d2, limit, labels)
                touched.update(stats, index)
    _sweep(pending, stats, limit, labels)
    ids = stats.ids
    return [None if label is None else ids[label] for label in labels]


def _sweep(pending: _Pending, stats: ClusterStats, limit: float, labels: list[int | None]) -> None:
    """Offer the faces still pending to the clusters as they ended up (a cluster that grew after a face
    arrived may take it now), a chunk at a time."""
    waiting = np.flatnonzero(pending.alive[: pending.size])
    if not len(waiting) or not len(stats):
        return
    for begin in range(0, len(waiting), CHUNK):
        rows = waiting[begin : begin + CHUNK]
        vecs = pending.vecs[rows].astype(np.float64)
        rms2 = stats.rms2(vecs)
        nearest = rms2.argmin(1)
        joins = np.flatnonzero(rms2[np.arange(len(rows)), nearest] < limit)
        stats.add_many(nearest[joins], vecs[joins])
        for k in joins.tolist():
            pending.alive[rows[k]] = False
            labels[int(pending.position[rows[k]])] = int(nearest[k])


class _Touched:
    """The clusters changed in the current chunk (each face changes at most one), with their means and
    spreads kept current, so the rms of a face to them is one small product."""

    def __init__(self, dim: int, capacity: int) -> None:
        self.row: dict[int, int] = {}
        self.index: list[int] = []
        self.means = np.zeros((capacity, dim))
        self.spreads = np.zeros(capacity)

    def update(self, stats: ClusterStats, index: int) -> None:
        r = self.row.setdefault(index, len(self.index))
        if r == len(self.index):
            self.index.append(index)
        self.means[r], self.spreads[r] = stats.mean_and_spread(index)

    def nearest(self, vec: F64) -> tuple[int, float]:
        """(cluster index, squared rms) of the touched cluster nearest to ``vec``; (-1, inf) when none."""
        t = len(self.index)
        if not t:
            return -1, float("inf")
        rms2 = float(vec @ vec) - 2 * (self.means[:t] @ vec) + self.spreads[:t]
        j = int(rms2.argmin())
        return self.index[j], float(rms2[j])


def _seed_group(pending: _Pending, slot: int, d2: F64, limit: float, min_good: int) -> npt.NDArray[np.intp] | None:
    """Pending good faces that can start a cluster with face ``slot`` (``d2``: its squared distance to every
    pending row): nearest first, each within the threshold (in rms) of those chosen before it; ``None`` when
    fewer than ``min_good``."""
    near = np.flatnonzero((d2 < limit) & pending.alive[: pending.size] & pending.good[: pending.size])
    if len(near) < min_good:  # includes the face itself
        return None
    near = near[np.argsort(d2[near], kind="stable")]
    vec = pending.vecs[slot].astype(np.float64)
    chosen = [slot]
    total, squares = vec.copy(), float(vec @ vec)
    for k in near:
        if k == slot:
            continue
        x = pending.vecs[k].astype(np.float64)
        size = len(chosen)
        if float(x @ x) - 2 * float(x @ total) / size + squares / size < limit:
            chosen.append(int(k))
            total += x
            squares += float(x @ x)
    return np.array(chosen) if len(chosen) >= min_good else None


def _absorb(
    pending: _Pending, stats: ClusterStats, index: int, seed: F64, d2: F64, limit: float, labels: list[int | None]
) -> None:
    """A new cluster takes the pending faces (good or not) whose rms to it is under the threshold, nearest
    first, each checked against the cluster as it has grown. ``d2`` holds the squared distances from the
    face that seeded it: rms(x)^2 = |x - mean|^2 + variance < T^2 implies |x - seed| < T + |mean - seed|,
    so only the faces within that radius are examined."""
    mean, spread = stats.mean_and_spread(index)
    radius = np.sqrt(limit) + float(np.linalg.norm(mean - seed))
    near = np.flatnonzero((d2 < radius**2) & pending.alive[: len(d2)])
    if not len(near):
        return
    rms2 = pending.norms[near] - 2 * (pending.vecs[near] @ mean) + spread
    order = np.argsort(rms2, kind="stable")
    for k in near[order][rms2[order] < limit]:
        x = pending.vecs[k].astype(np.float64)
        mean, spread = stats.mean_and_spread(index)
        if float(x @ x) - 2 * float(x @ mean) + spread < limit:
            stats.add(index, x)
            pending.alive[k] = False
            labels[int(pending.position[k])] = index
