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
cluster but may join one. A face that stays pending is returned as ``None`` and is offered again to the
next task.

Existing clusters keep their ids; only pending faces are assigned, so a task is incremental. Work is done a
chunk of faces at a time: one (chunk x clusters) matrix against the clusters as they were when the chunk
began, then exact rms for the clusters changed inside the chunk. Memory is O(chunk x clusters + pending),
never faces x faces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from imm_faces.runtime.rules import FACE_GROUP_MIN_GOOD_FACES

DEFAULT_THRESHOLD = 0.5
"""Root-mean-square distance under which a face belongs with a cluster's members."""

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

    @property
    def dim(self) -> int:
        return int(self._sums.shape[1]) if self.ids else 0

    def __len__(self) -> int:
        return len(self.ids)

    def counts(self) -> npt.NDArray[np.int64]:
        return self._counts[: len(self.ids)].copy()

    def rms2(self, x: F64, which: npt.NDArray[np.intp] | slice | None = None) -> F64:
        """Mean squared distance of each row of ``x`` to the members of each cluster (rows x clusters)."""
        sel = slice(0, len(self.ids)) if which is None else which
        n = self._counts[sel].astype(np.float64)
        means = self._sums[sel] / n[:, None]
        out: F64 = (x**2).sum(1)[:, None] - 2 * x @ means.T + (self._squares[sel] / n)[None, :]
        return np.maximum(out, 0.0)

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
    """Faces waiting for a cluster: their embeddings, whether they are good, their position in the input."""

    def __init__(self, dim: int) -> None:
        self.vecs = np.zeros((64, dim))
        self.good = np.zeros(64, dtype=bool)
        self.alive = np.zeros(64, dtype=bool)
        self.position = np.zeros(64, dtype=np.int64)
        self.size = 0

    def add(self, vec: F64, good: bool, position: int) -> int:
        if self.size == len(self.alive):  # compact the dead, then grow if still full
            keep = np.flatnonzero(self.alive[: self.size])
            capacity = max(64, 2 * len(keep))
            vecs, flags, alive, pos = np.zeros((capacity, self.vecs.shape[1])), np.zeros(capacity, bool), \
                np.zeros(capacity, bool), np.zeros(capacity, np.int64)  # fmt: skip
            vecs[: len(keep)], flags[: len(keep)], pos[: len(keep)] = (
                self.vecs[keep],
                self.good[keep],
                self.position[keep],
            )
            alive[: len(keep)] = True
            self.vecs, self.good, self.alive, self.position, self.size = vecs, flags, alive, pos, len(keep)
        k = self.size
        self.vecs[k], self.good[k], self.alive[k], self.position[k] = vec, good, True, position
        self.size += 1
        return k


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
    limit = threshold**2
    labels: list[int | None] = [None] * n
    pending = _Pending(embeddings.shape[1] if embeddings.ndim == 2 else 0)
    for begin in range(0, n, CHUNK):
        chunk = embeddings[begin : begin + CHUNK].astype(np.float64)
        known = len(stats)
        stale = stats.rms2(chunk) if known else np.zeros((len(chunk), 0))
        touched: list[int] = []  # clusters changed (or born) in this chunk: their stale column is void
        for i, vec in enumerate(chunk):
            position = begin + i
            target = _best(stats, vec, stale[i], touched, limit)
            if target >= 0:
                stats.add(target, vec)
                labels[position] = target
                if target < known and target not in touched:
                    touched.append(target)
                    stale[i + 1 :, target] = np.inf
                continue
            slot = pending.add(vec, bool(good_flags[position]), position)
            if good_flags[position]:
                born = _start_group(pending, slot, stats, new_id, limit, min_good, labels)
                if born >= 0:
                    touched.append(born)
    ids = stats.ids
    return [None if label is None else ids[label] for label in labels]


def _best(stats: ClusterStats, vec: F64, stale: F64, touched: list[int], limit: float) -> int:
    """The cluster with the smallest rms to ``vec`` if under the limit, else -1. ``stale`` holds the squared
    rms to the clusters as they were when the chunk began (void for ``touched``, which are computed afresh)."""
    target, best = -1, limit
    if len(stale):
        j = int(stale.argmin())
        if stale[j] < best:
            target, best = j, float(stale[j])
    if touched:
        fresh = stats.rms2(vec[None, :], np.array(touched))[0]
        j = int(fresh.argmin())
        if fresh[j] < best:
            target = touched[j]
    return target


def _start_group(
    pending: _Pending,
    slot: int,
    stats: ClusterStats,
    new_id: Callable[[], str],
    limit: float,
    min_good: int,
    labels: list[int | None],
) -> int:
    """Start a cluster from pending good face ``slot`` and its close pending good faces when there are
    enough; it then absorbs the pending faces close to it. Returns the new cluster's index, or -1."""
    group = _seed_group(pending, slot, limit, min_good)
    if group is None:
        return -1
    index = stats.start(new_id(), pending.vecs[group])
    pending.alive[group] = False
    for k in group:
        labels[int(pending.position[k])] = index
    _absorb(pending, stats, index, limit, labels)
    return index


def _seed_group(pending: _Pending, slot: int, limit: float, min_good: int) -> npt.NDArray[np.intp] | None:
    """Pending good faces that can start a cluster with face ``slot``: nearest first, each within the
    threshold (in rms) of those chosen before it; ``None`` when fewer than ``min_good``."""
    candidates = np.flatnonzero(pending.alive[: pending.size] & pending.good[: pending.size])
    if len(candidates) < min_good:
        return None
    vec = pending.vecs[slot]
    d2 = ((pending.vecs[candidates] - vec) ** 2).sum(1)
    near = candidates[d2 < limit]
    if len(near) < min_good:  # includes the face itself
        return None
    near = near[np.argsort(((pending.vecs[near] - vec) ** 2).sum(1), kind="stable")]
    chosen = [slot]
    total, squares = vec.copy(), float(vec @ vec)
    for k in near:
        if k == slot:
            continue
        x = pending.vecs[k]
        size = len(chosen)
        rms2 = float(x @ x) - 2 * float(x @ total) / size + squares / size
        if rms2 < limit:
            chosen.append(int(k))
            total += x
            squares += float(x @ x)
    return np.array(chosen) if len(chosen) >= min_good else None


def _absorb(pending: _Pending, stats: ClusterStats, index: int, limit: float, labels: list[int | None]) -> None:
    """A new cluster takes the pending faces (good or not) whose rms to it is under the threshold, nearest first."""
    alive = np.flatnonzero(pending.alive[: pending.size])
    if not len(alive):
        return
    which = np.array([index])
    d2 = stats.rms2(pending.vecs[alive], which)[:, 0]
    for k in alive[np.argsort(d2, kind="stable")][np.sort(d2) < limit]:
        x = pending.vecs[k]
        if stats.rms2(x[None, :], which)[0, 0] < limit:
            stats.add(index, x)
            pending.alive[k] = False
            labels[int(pending.position[k])] = index
