"""Incremental face clustering: average linkage from running sums, one rule for joining a group, and IMM's rule
for starting one.

Faces are 128-d embeddings compared by Euclidean distance. A group keeps three running figures: the sum ``S``
of its members, their count ``n`` and the sum ``Q`` of their squared norms. From them the root-mean-square
distance of a face ``x`` to all the members is exact and O(d):

    rms(x)^2 = mean_j |x - y_j|^2 = |x|^2 - 2 x.S/n + Q/n = |x - mean|^2 + variance

**Joining a group** (:class:`Linkage`; every step below applies it, and its one comparison is :func:`within`):

- a group *takes* a face whose rms to its members is under the group's limit. An ordinary group's limit is
  :data:`DEFAULT_THRESHOLD`. The rms, unlike a distance to the mean, grows with the group's spread, so a group
  that has absorbed a stranger or two does not become a magnet for its neighbours;
- a *wide* group, one with many members and a variance over a person's usual one, has a wider limit, growing
  with the excess up to a ceiling: a much photographed person is photographed in more ways, and their rms
  would otherwise push their own photos out. A small group never widens: a handful of members, a stranger
  among them, would pull in their neighbours one after another;
- a face joins the group it is nearest to relative to the limits (rms^2 / limit^2) if that group takes it,
  unless a waiting good face is nearer to it than :attr:`Linkage.compete` times its rms to the group: then
  the face may be that one's person, not the group's, and it waits;
- during a task the limits are a fraction (:attr:`Linkage.early`) of what they are at its end: a face near a
  limit is decided once every face of the task has arrived, with its neighbours in view.

**Starting a group** follows IMM's documented rule (``runtime.rules``): only from ``FACE_GROUP_MIN_GOOD_FACES``
waiting *good* faces of one person; faces that are not good never start a group but may join one. Three faces
are weak evidence (in a crowded population two strangers are often as close as two photos of one person), so:

- during the task, a good face that no group takes starts a group at once only with waiting good faces all
  pairwise under the *seed* distance, tighter than the limits (nearest first, the earlier among equals);
- at the end of the task, a waiting good face and its nearest waiting good neighbours (two, for groups of three)
  start a group when they are one another's nearest, all pairwise under the *late seed* distance, and each is
  nearer the new group than any existing group (in rms).

A group started during the task takes the waiting faces, good or not, under its limit, nearest first, each
checked against the group as it has grown. At the end of the task, after the late seeds, the faces still waiting
are offered to the groups as they ended up, at the full limits; a face that stays waiting is returned as
``None`` and is offered again to the next task. Existing groups keep their ids and members; only waiting faces
are assigned, so a task is incremental.

Work is done a chunk of faces at a time: one product of the chunk with the groups (as they were when it began:
the faces a group takes join at once) and one with the faces waiting when it began and the chunk's own (for
the waiting faces' distances: rivals and seeds); the chunk's other faces, in order, are compared with the
groups changed in the chunk (kept current). The end of a task compares the waiting good faces with one another
a block at a time. Memory is O(chunk x (groups + waiting)), never faces x faces; the cost of a new face is
O(d x (groups + waiting)) multiply-adds, plus, for the few that start a group, its neighbourhood.

IMM documents the rule for starting a group, not its algorithm: the rule's form and numbers are ours
(``benchmarks/clustering.py`` measures them, against HDBSCAN, on a crowded population with look-alikes and
heavily photographed people and on the first benchmark's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from imm_faces.runtime.rules import FACE_GROUP_MIN_GOOD_FACES

DEFAULT_THRESHOLD = 0.53
"""Root-mean-square distance under which a face belongs with an ordinary group's members (at the end of a task;
during it, :attr:`Linkage.early` of that). dlib puts photos of one person ~0.27-0.59 apart and different people
~0.66-0.96 (the sample photos: at most 0.43 and at least 0.79); the rms of a face to its own person's photos is
about their typical distance. ``benchmarks/clustering.py`` shows the trade-off on 20,000 faces."""

CHUNK = 256
BLOCK = 1024

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
Floats = npt.NDArray[np.floating[Any]]
Rows = npt.NDArray[np.intp]
Bools = npt.NDArray[np.bool_]


def within(d2: Any, limit2: Any) -> Any:
    """The comparison every rule here makes: a squared distance is inside a squared limit when strictly under it
    (numbers or arrays)."""
    return d2 < limit2


def distances2(a: F64, b: npt.NDArray[np.float32], b_norms: F64) -> F32:
    """Squared Euclidean distances between the rows of ``a`` and of ``b`` (``b_norms``: their squared norms), in
    float32 (twice as fast; its rounding, ~1e-7, is far below any distance that matters)."""
    out = a.astype(np.float32) @ b.T
    out *= -2
    out += (a**2).sum(1).astype(np.float32)[:, None]
    out += b_norms.astype(np.float32)[None, :]
    np.maximum(out, 0, out=out)
    return out


@dataclass(frozen=True)
class Linkage:
    """When a face joins a group, and when waiting good faces start one (the module docstring says why).

    Distances are Euclidean between embeddings; a group's variance is the mean squared distance of its members
    to their mean."""

    join: float = DEFAULT_THRESHOLD
    """An ordinary group takes a face whose rms distance to its members is under this."""
    early: float = 0.9375
    """Before the end of a task, the limits are this fraction of what they are at its end."""
    compete: float = 0.9
    """A face waits while a waiting good face is nearer to it than this fraction of its rms to the group."""
    seed: float = 0.50
    """During a task, waiting good faces all pairwise closer than this start a group."""
    late_seed: float = 0.60
    """At the end of a task, mutually nearest waiting good faces all pairwise closer than this start a group."""
    wide_members: int = 10
    """A group with at least this many members..."""
    wide_variance: float = 0.09
    """... and a variance over this (a person's photos are typically ~0.27 from their mean: 0.07)..."""
    widening: float = 3.0
    """... has its squared limit widened by this many times the excess variance..."""
    ceiling: float = 0.60
    """... up to this limit."""

    @classmethod
    def scaled(cls, join: float) -> Linkage:
        """The default rule with every distance scaled so that the ordinary limit is ``join``."""
        k = join / DEFAULT_THRESHOLD
        d = cls()
        return replace(
            d,
            join=join,
            seed=d.seed * k,
            late_seed=d.late_seed * k,
            wide_variance=d.wide_variance * k * k,
            ceiling=d.ceiling * k,
        )

    def during_task(self) -> Linkage:
        """The rule before the end of a task: the same, with the limits shrunk by :attr:`early`."""
        return replace(self, join=self.join * self.early, ceiling=self.ceiling * self.early)

    def limits2(self, counts: Any, variances: Any) -> Any:
        """Squared limits of groups from their member counts and variances (arrays, or one group's numbers)."""
        extra = self.widening * np.maximum(variances - self.wide_variance, 0.0) * (counts >= self.wide_members)
        return np.minimum(self.join**2 + extra, self.ceiling**2)

    def choose(self, rms2: Floats, limits2: Floats, rivals2: Floats) -> tuple[Rows, Bools]:
        """For each face (row of ``rms2``, faces x groups): the group it is nearest to relative to the groups'
        limits, and whether it joins that group: inside its limit, and no waiting good face nearer to it
        (``rivals2``: squared distance to the nearest one) than :attr:`compete` times its rms to the group."""
        best = (rms2 / limits2[None, :]).argmin(1)
        own2 = rms2[np.arange(len(rms2)), best]
        return best, within(own2, limits2[best]) & ~within(rivals2, self.compete**2 * own2)


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

    def _means(self) -> F64:
        n = len(self.ids)
        means: F64 = self._sums[:n] / self._counts[:n, None]
        return means

    def variances(self) -> F64:
        """Each cluster's mean squared distance of its members to their mean."""
        n = len(self.ids)
        out: F64 = np.maximum(self._squares[:n] / self._counts[:n] - (self._means() ** 2).sum(1), 0.0)
        return out

    def rms2(self, x: F64) -> F32:
        """Mean squared distance of each row of ``x`` to the members of each cluster (rows x clusters)."""
        if not self.ids:  # (the storage of stats read from no members has no width)
            return np.zeros((len(x), 0), np.float32)
        means = self._means()
        out = distances2(x, means.astype(np.float32), (means**2).sum(1))
        out += self.variances().astype(np.float32)[None, :]
        return out

    def limits2(self, rule: Linkage) -> F64:
        """Every cluster's squared limit under ``rule``."""
        return rule.limits2(self._counts[: len(self.ids)], self.variances())  # type: ignore[no-any-return]

    def limit2(self, rule: Linkage, index: int) -> float:
        """One cluster's squared limit under ``rule``."""
        mean, spread = self.mean_and_spread(index)
        return float(rule.limits2(int(self._counts[index]), spread - float(mean @ mean)))

    def mean_and_spread(self, index: int) -> tuple[F64, float]:
        """A cluster's mean and the mean squared norm of its members (rms2(x) = |x|^2 - 2 x.mean + spread)."""
        n = float(self._counts[index])
        return self._sums[index] / n, float(self._squares[index]) / n

    def add_many(self, indices: Rows, vecs: F64) -> None:
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

    def _resize(self, rows: Rows, capacity: int) -> None:
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
        self.vecs[k], self.norms[k], self.good[k], self.alive[k] = vec, vec @ vec, good, True
        self.position[k] = position
        self.size += 1
        return k

    def waiting(self, good_only: bool = False) -> Rows:
        """The rows still waiting (the good ones only)."""
        alive = self.alive[: self.size]
        return np.flatnonzero(alive & self.good[: self.size] if good_only else alive)


def assign(
    embeddings: npt.NDArray[np.float32],
    stats: ClusterStats,
    new_id: Callable[[], str],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    good: npt.NDArray[np.bool_] | None = None,
    min_good: int = FACE_GROUP_MIN_GOOD_FACES,
    linkage: Linkage | None = None,
) -> list[str | None]:
    """Assign each face (rows of ``embeddings``, in arrival order) a cluster id, or ``None`` while pending.

    ``good[i]`` says whether face ``i`` may count towards starting a cluster (all faces when omitted).
    ``linkage`` is the rule (default: :meth:`Linkage.scaled` of ``threshold``). ``stats`` is updated in place:
    existing clusters keep their index and id; new ones are appended."""
    n = len(embeddings)
    if n and len(stats) and stats.dim != embeddings.shape[1]:
        raise ValueError("embedding dimension differs from the existing clusters'")
    good_flags = np.ones(n, dtype=bool) if good is None else np.asarray(good, dtype=bool)
    if len(good_flags) != n:
        raise ValueError("good must have one flag per embedding")
    # The products here are small: a second BLAS thread only spins, and stalls when the cores are busy.
    with threadpool_limits(limits=1, user_api="blas"):
        return _Task(embeddings, stats, new_id, linkage or Linkage.scaled(threshold), good_flags, min_good).run()


class _Task:
    """One call of :func:`assign`: the faces in arrival order a chunk at a time, then the end of the task."""

    def __init__(
        self,
        embeddings: npt.NDArray[np.float32],
        stats: ClusterStats,
        new_id: Callable[[], str],
        rule: Linkage,
        good: Bools,
        min_good: int,
    ) -> None:
        self.embeddings, self.stats, self.new_id, self.good, self.min_good = embeddings, stats, new_id, good, min_good
        self.rule, self.early = rule, rule.during_task()
        self.labels: list[int | None] = [None] * len(embeddings)
        self.dim = embeddings.shape[1] if embeddings.ndim == 2 else 0
        self.pending = _Pending(self.dim)

    def run(self) -> list[str | None]:
        for begin in range(0, len(self.embeddings), CHUNK):
            self._chunk(begin, self.embeddings[begin : begin + CHUNK].astype(np.float64))
        self._late_seeds()
        self._sweep()
        ids = self.stats.ids
        return [None if label is None else ids[label] for label in self.labels]

    def _chunk(self, begin: int, chunk: F64) -> None:
        stats, pending, rule = self.stats, self.pending, self.early
        pending.compact()
        # Every face's squared distance to the faces waiting when the chunk began (``old``) and to the chunk's own
        # (which wait from when they arrive); ``rows``: the waiting row of each column, -1 for none (yet).
        old = pending.waiting()
        k = len(chunk)
        vecs32 = chunk.astype(np.float32)
        d2 = distances2(
            chunk, np.concatenate([pending.vecs[old], vecs32]), np.concatenate([pending.norms[old], (chunk**2).sum(1)])
        )
        rows = np.concatenate([old, np.full(k, -1)])
        live = np.concatenate([np.ones(len(old), dtype=bool), np.zeros(k, dtype=bool)])  # still waiting
        good = np.concatenate([pending.good[old], self.good[begin : begin + k]])
        touched = _Touched(self.dim, 2 * k)  # clusters changed (or born) in this chunk, kept current
        joins = np.zeros(k, dtype=bool)
        if len(stats):
            # Faces that a cluster takes as the clusters were when the chunk began join it all at once.
            rivals2 = np.where(good[: len(old)], d2[:, : len(old)], np.inf).min(1, initial=np.inf)
            nearest, joins = rule.choose(stats.rms2(chunk), stats.limits2(rule), rivals2)
            taken = np.flatnonzero(joins)
            stats.add_many(nearest[taken], chunk[taken])
            for row in taken.tolist():
                self.labels[begin + row] = int(nearest[row])
            for index in np.unique(nearest[taken]).tolist():
                touched.update(stats, rule, index)
        # The others, in order: they can only join a cluster changed since (the rest did not take them), or wait,
        # or with other waiting good faces start one.
        for i in np.flatnonzero(~joins).tolist():
            vec, position, row2, col = chunk[i], begin + i, d2[i], len(old) + i
            waiting_good = live & good
            target = touched.taker(vec, float(row2[waiting_good].min(initial=np.inf)), rule)
            if target >= 0:
                stats.add(target, vec)
                self.labels[position] = target
                touched.update(stats, rule, target)
                continue
            rows[col] = pending.add(vec, bool(good[col]), position)
            close = waiting_good & within(row2, self.rule.seed**2)
            live[col] = True
            if good[col] and close.sum() >= self.min_good - 1:
                group = _seed_group(pending, int(rows[col]), rows[close], row2[close], self.rule.seed**2, self.min_good)
                if group is not None:
                    index = self._start(group)
                    live &= pending.alive[rows]
                    _absorb(pending, stats, rule, index, vec, rows, row2, live, self.labels)
                    live &= pending.alive[rows]
                    touched.update(stats, rule, index)

    def _start(self, rows: Rows) -> int:
        index = self.stats.start(self.new_id(), self.pending.vecs[rows].astype(np.float64))
        self.pending.alive[rows] = False
        for k in rows.tolist():
            self.labels[int(self.pending.position[k])] = index
        return index

    def _late_seeds(self) -> None:
        """Among the good faces still waiting: each face and its nearest waiting good neighbours start a group
        when they are one another's nearest, all pairwise within the late seed distance, and each is nearer the
        new group than any existing group (in rms)."""
        pending, size = self.pending, self.min_good
        rows = pending.waiting(good_only=True)
        if len(rows) < size:
            return
        vecs, norms = pending.vecs[rows], pending.norms[rows]
        near = np.empty((len(rows), size - 1), np.intp)
        for begin in range(0, len(rows), BLOCK):
            d2 = distances2(vecs[begin : begin + BLOCK].astype(np.float64), vecs, norms)
            every = np.arange(len(d2))
            d2[every, every + begin] = np.inf  # not itself
            for j in range(size - 1):  # the nearest, then the next nearest...
                near[begin + every, j] = nearest = d2.argmin(1)
                d2[every, nearest] = np.inf
        groups = np.unique(np.sort(np.column_stack([np.arange(len(rows)), near]), axis=1), axis=0)
        mutual = (near[groups][..., None] == groups[:, None, None, :]).any(3).all((1, 2))
        groups = groups[mutual]
        members = vecs[groups].astype(np.float64)  # groups x size x dim
        widest = ((members[:, :, None, :] - members[:, None, :, :]) ** 2).sum(3).max((1, 2))
        inside2 = ((members - members.mean(1, keepdims=True)) ** 2).sum(2)
        own2 = inside2 + inside2.mean(1, keepdims=True)  # each member's rms^2 to its group
        keep = within(widest, self.rule.late_seed**2)
        elsewhere = self.stats.rms2(members.reshape(-1, self.dim)).min(1, initial=np.inf).reshape(own2.shape)
        keep &= within(own2, elsewhere).all(1)
        for group in groups[keep]:  # one another's nearest: no face is in two groups
            self._start(rows[group])

    def _sweep(self) -> None:
        """Offer the faces still waiting to the clusters as they ended up, under the rule at its full limits (a
        cluster that grew after a face arrived may take it now), a chunk at a time."""
        pending, stats = self.pending, self.stats
        waiting = pending.waiting()
        if not len(stats):
            return
        for begin in range(0, len(waiting), CHUNK):
            rows = waiting[begin : begin + CHUNK]
            vecs = pending.vecs[rows].astype(np.float64)
            good = pending.waiting(good_only=True)
            near2 = distances2(vecs, pending.vecs[good], pending.norms[good])
            near2[rows[:, None] == good[None, :]] = np.inf  # not itself
            nearest, joins = self.rule.choose(stats.rms2(vecs), stats.limits2(self.rule), near2.min(1, initial=np.inf))
            taken = np.flatnonzero(joins)
            stats.add_many(nearest[taken], vecs[taken])
            for k in taken.tolist():
                pending.alive[rows[k]] = False
                self.labels[int(pending.position[rows[k]])] = int(nearest[k])


class _Touched:
    """The clusters changed in the current chunk (each face changes at most one), with their means, spreads
    and limits kept current, so a face's rms to them is one small product."""

    def __init__(self, dim: int, capacity: int) -> None:
        self.row: dict[int, int] = {}
        self.index: list[int] = []
        self.means = np.zeros((capacity, dim))
        self.spreads = np.zeros(capacity)
        self.limits2 = np.zeros(capacity)

    def update(self, stats: ClusterStats, rule: Linkage, index: int) -> None:
        r = self.row.setdefault(index, len(self.index))
        if r == len(self.index):
            self.index.append(index)
        self.means[r], self.spreads[r] = stats.mean_and_spread(index)
        self.limits2[r] = stats.limit2(rule, index)

    def taker(self, vec: F64, rival2: float, rule: Linkage) -> int:
        """The touched cluster ``vec`` joins under ``rule`` (``rival2``: its squared distance to the nearest
        waiting good face), or -1."""
        t = len(self.index)
        if not t:
            return -1
        rms2 = float(vec @ vec) - 2 * (self.means[:t] @ vec) + self.spreads[:t]
        best, joins = rule.choose(rms2[None, :], self.limits2[:t], np.array([rival2]))
        return self.index[int(best[0])] if joins[0] else -1


def _seed_group(pending: _Pending, slot: int, rows: Rows, d2: F32, limit2: float, min_good: int) -> Rows | None:
    """The faces that start a cluster with face ``slot``, from the waiting good ``rows`` within the seed distance
    of it (``d2``: their squared distances to it): nearest first (the earlier among equals), each within the seed
    distance of every face chosen before it; ``None`` when fewer than ``min_good``."""
    chosen = [slot]
    for k in rows[np.argsort(d2, kind="stable")].tolist():
        others = pending.vecs[chosen].astype(np.float64) - pending.vecs[k].astype(np.float64)
        if within((others**2).sum(1), limit2).all():
            chosen.append(k)
    return np.array(chosen) if len(chosen) >= min_good else None


def _absorb(
    pending: _Pending,
    stats: ClusterStats,
    rule: Linkage,
    index: int,
    seed: F64,
    rows: Rows,
    d2: F32,
    live: Bools,
    labels: list[int | None],
) -> None:
    """A new cluster takes the waiting faces (good or not) inside its limit, nearest first, each checked against
    the cluster as it has grown. ``d2`` holds the squared distances from the face that seeded it to the ``rows``
    (those still waiting: ``live``): a face inside the limit L has |x - mean| < L, so |x - seed| < L + |mean -
    seed|: only the faces within that radius are examined."""
    mean, spread = stats.mean_and_spread(index)
    limit2 = stats.limit2(rule, index)
    radius = np.sqrt(limit2) + float(np.linalg.norm(mean - seed))
    near = rows[live & within(d2, radius**2)]
    rms2 = pending.norms[near] - 2 * (pending.vecs[near] @ mean) + spread
    order = np.argsort(rms2, kind="stable")
    for k in near[order][within(rms2[order], limit2)].tolist():
        x = pending.vecs[k].astype(np.float64)
        mean, spread = stats.mean_and_spread(index)
        if within(float(x @ x) - 2 * float(x @ mean) + spread, stats.limit2(rule, index)):
            stats.add(index, x)
            pending.alive[k] = False
            labels[int(pending.position[k])] = index
