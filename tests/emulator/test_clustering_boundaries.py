"""The clustering engine against a plain reference of its documented rule, and at its exact edges.

The reference below is the module docstring of ``emulator.clustering`` written as simply as possible (member
lists, float64, no chunks, pre-filters or running sums): random small data sets must get the same labels. The
edge tests use distances that are exact in binary (coordinates in halves, quarters and eighths, limits such as
0.5), so "under a limit" can be told from "at it"."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_info

from imm_faces.emulator import clustering, figures
from imm_faces.emulator.clustering import CHUNK, DEFAULT_THRESHOLD, ClusterStats, Linkage, assign
from imm_faces.emulator.figures import figure_is_good, iou, match_faces

F64 = npt.NDArray[np.float64]
INF = float("inf")

# Limits in binary-exact numbers: an ordinary group takes a face under rms 0.5 at the end of a task and under
# 0.375 during it; a group of four or more with a variance over 1/16 is widened twice the excess (in squares), up
# to 0.75; waiting good faces pairwise under 0.5 start a group at once, under 0.75 (mutually nearest) at the end.
EDGE = Linkage(
    join=0.5,
    early=0.75,
    compete=0.75,
    seed=0.5,
    late_seed=0.75,
    wide_members=4,
    wide_variance=0.0625,
    widening=2.0,
    ceiling=0.75,
)
NO_LATE = replace(EDGE, late_seed=0.0)

# A rule whose every step the small random data sets below reach: groups of four and more widen, waiting faces
# compete, seeds start groups during and at the end of a task.
RULE = replace(EDGE, seed=0.45, late_seed=0.6, wide_variance=0.03, ceiling=0.65)


def namer(prefix: str = "c") -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


def point(*coords: float, dim: int = 8) -> npt.NDArray[np.float32]:
    out = np.zeros(dim, np.float32)
    out[: len(coords)] = coords
    return out


def faces(*points: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.stack(points)


def empty(dim: int = 8) -> ClusterStats:
    return ClusterStats.from_members([], np.zeros((0, dim), np.float32))


# ---------------------------------------------------------------------------------------------- the reference


def _d2(a: F64, b: F64) -> float:
    return float(((a - b) ** 2).sum())


def _rms2(x: F64, members: list[F64]) -> float:
    return float(np.mean([_d2(x, m) for m in members]))


def _limit2(members: list[F64], rule: Linkage) -> float:
    mean = np.mean(members, axis=0)
    variance = float(np.mean([_d2(m, mean) for m in members]))
    return float(rule.limits2(len(members), variance))


class Reference:
    """One task of the documented rule over ``vecs`` (arrival order); ``clusters`` (member lists) grows in place."""

    def __init__(self, vecs: F64, good: list[bool], clusters: list[list[F64]], rule: Linkage, min_good: int = 3):
        self.vecs, self.good, self.clusters, self.rule, self.min_good = vecs, good, clusters, rule, min_good
        self.labels: list[int | None] = [None] * len(vecs)
        self.waiting: list[int] = []

    def rival2(self, i: int) -> float:
        """Squared distance from face ``i`` to the nearest other waiting good face."""
        return min((_d2(self.vecs[i], self.vecs[k]) for k in self.waiting if k != i and self.good[k]), default=INF)

    def choice(self, i: int, candidates: list[int], rule: Linkage, rival2: float) -> int | None:
        """The group among ``candidates`` face ``i`` is nearest to relative to the limits, if it joins it."""
        if not candidates:
            return None
        scores = [(_rms2(self.vecs[i], self.clusters[c]), _limit2(self.clusters[c], rule)) for c in candidates]
        j = min(range(len(scores)), key=lambda j: scores[j][0] / scores[j][1])
        rms2, limit2 = scores[j]
        return candidates[j] if rms2 < limit2 and not rival2 < rule.compete**2 * rms2 else None

    def join(self, i: int, c: int) -> None:
        self.clusters[c].append(self.vecs[i])
        self.labels[i] = c
        if i in self.waiting:
            self.waiting.remove(i)

    def start(self, chosen: list[int]) -> int:
        self.clusters.append([self.vecs[k] for k in chosen])
        for k in chosen:
            self.labels[k] = len(self.clusters) - 1
            self.waiting.remove(k)
        return len(self.clusters) - 1

    def run(self, chunk: int = CHUNK) -> list[int | None]:
        for begin in range(0, len(self.vecs), chunk):
            self.chunk(range(begin, min(begin + chunk, len(self.vecs))))
        self.late_seeds()
        waiting = list(self.waiting)
        for begin in range(0, len(waiting), chunk):  # what waits, offered a chunk at a time
            rows = waiting[begin : begin + chunk]
            late = [(k, self.choice(k, list(range(len(self.clusters))), self.rule, self.rival2(k))) for k in rows]
            for k, c in late:
                if c is not None:
                    self.join(k, c)
        return self.labels

    def chunk(self, faces: range) -> None:
        early, vecs = self.rule.during_task(), self.vecs
        # as the groups were when the chunk began: the faces a group takes join it
        first = {i: self.choice(i, list(range(len(self.clusters))), early, self.rival2(i)) for i in faces}
        for i, c in first.items():
            if c is not None:
                self.join(i, c)
        touched = sorted({c for c in first.values() if c is not None})
        for i in faces:
            if self.labels[i] is not None:
                continue
            c = self.choice(i, touched, early, self.rival2(i))  # only a group changed since can take it now
            if c is not None:
                self.join(i, c)
                touched += [] if c in touched else [c]
                continue
            self.waiting.append(i)
            if not self.good[i]:
                continue
            seed2 = self.rule.seed**2
            close = sorted(
                (k for k in self.waiting if k != i and self.good[k] and _d2(vecs[i], vecs[k]) < seed2),
                key=lambda k: (_d2(vecs[i], vecs[k]), self.waiting.index(k)),
            )
            chosen = [i]
            for k in close:
                if all(_d2(vecs[k], vecs[c]) < seed2 for c in chosen):
                    chosen.append(k)
            if len(chosen) < self.min_good:
                continue
            new = self.start(chosen)
            touched.append(new)
            members = self.clusters[new]
            at_birth, limit2 = {k: _rms2(vecs[k], members) for k in self.waiting}, _limit2(members, early)
            order = sorted(
                (k for k in self.waiting if at_birth[k] < limit2), key=lambda k: (at_birth[k], self.waiting.index(k))
            )
            for k in order:
                if _rms2(vecs[k], members) < _limit2(members, early):  # against the group as it has grown
                    self.join(k, new)

    def late_seeds(self) -> None:
        vecs, size = self.vecs, self.min_good
        pool = [k for k in self.waiting if self.good[k]]
        if len(pool) < size:
            return
        nearest = {
            a: sorted((b for b in pool if b != a), key=lambda b: (_d2(vecs[a], vecs[b]), pool.index(b)))[: size - 1]
            for a in pool
        }
        groups = sorted(
            {tuple(sorted([a, *nearest[a]], key=pool.index)) for a in pool}, key=lambda g: [pool.index(k) for k in g]
        )
        found = []
        for g in groups:
            if not all(set(nearest[m]) <= set(g) for m in g):
                continue
            widest = max(_d2(vecs[a], vecs[b]) for a in g for b in g)
            members = [vecs[k] for k in g]
            inside = [_rms2(vecs[k], members) for k in g]
            elsewhere = [min((_rms2(vecs[k], c) for c in self.clusters), default=INF) for k in g]
            if widest < self.rule.late_seed**2 and all(o < e for o, e in zip(inside, elsewhere, strict=True)):
                found.append(g)
        for g in found:
            self.start(list(g))


def _data(seed: int) -> tuple[npt.NDArray[np.float32], list[bool]]:
    """Forty faces of a few overlapping people in 4-d: many faces near the limits of several groups."""
    rng = np.random.default_rng(seed)
    people = rng.normal(scale=0.45, size=(int(rng.integers(2, 6)), 4))
    which = rng.integers(0, len(people), size=40)
    vecs = (people[which] + rng.normal(scale=0.22, size=(40, 4))).astype(np.float32)
    return vecs, (rng.random(40) < 0.75).tolist()


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("chunk", [CHUNK, 7])
def test_assign_follows_the_documented_rule(seed: int, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clustering, "CHUNK", chunk)  # several chunks: faces wait across them
    monkeypatch.setattr(clustering, "BLOCK", 5)  # the end of a task compares the waiting faces a block at a time
    vecs, good = _data(seed)
    # two tasks: the faces left waiting by the first are offered again, first, with the new ones
    stats = empty(4)
    first = assign(vecs[:25], stats, namer(), good=np.array(good[:25]), linkage=RULE)
    clusters: list[list[F64]] = []
    want = Reference(vecs[:25].astype(np.float64), good[:25], clusters, RULE).run(chunk)
    assert [None if label is None else f"c{label}" for label in want] == first
    again = [i for i, label in enumerate(first) if label is None] + list(range(25, 40))
    second = assign(vecs[again], stats, namer("d"), good=np.array([good[i] for i in again]), linkage=RULE)
    ids = list(stats.ids)
    want = Reference(vecs[again].astype(np.float64), [good[i] for i in again], clusters, RULE).run(chunk)
    assert [None if label is None else ids[label] for label in want] == second
    for k, members in enumerate(clusters):  # and the running figures are the members'
        mean, spread = stats.mean_and_spread(k)
        assert np.allclose(mean, np.mean(members, axis=0), atol=1e-6)
        assert spread == pytest.approx(float(np.mean([(m**2).sum() for m in members])), abs=1e-6)


# ---------------------------------------------------------------------------------------------- exact edges


def at(stats_members: dict[str, list[npt.NDArray[np.float32]]]) -> ClusterStats:
    ids = [cid for cid, members in stats_members.items() for _ in members]
    return ClusterStats.from_members(ids, np.stack([m for members in stats_members.values() for m in members]))


def square(centre: float, half: float, axes: tuple[int, int] = (2, 3)) -> list[npt.NDArray[np.float32]]:
    """Four members around (centre, 0, ...) at (+-half, +-half) on ``axes``: variance 2 half^2."""
    out = []
    for a, b in ((half, half), (-half, -half), (half, -half), (-half, half)):
        x = point(centre)
        x[axes[0]], x[axes[1]] = a, b
        out.append(x)
    return out


def test_the_limits_of_ordinary_wide_and_capped_groups() -> None:
    counts, variances = np.array([3, 4, 4, 4, 4]), np.array([0.5, 0.0625, 0.125, 0.25, 1.0])
    assert EDGE.limits2(counts, variances).tolist() == [0.25, 0.25, 0.375, 0.5625, 0.5625]
    assert EDGE.limits2(3, 0.5) == 0.25 and EDGE.limits2(4, 0.125) == 0.375  # one group's numbers
    early = EDGE.during_task()
    assert (early.join, early.ceiling, early.seed, early.late_seed) == (0.375, 0.5625, 0.5, 0.75)
    assert early.limits2(4, 0.125) == 0.375**2 + 0.125 and early.limits2(4, 1.0) == 0.5625**2
    half = Linkage.scaled(DEFAULT_THRESHOLD / 2)
    base = Linkage()
    assert (half.join, half.seed, half.late_seed, half.ceiling) == pytest.approx(
        (base.join / 2, base.seed / 2, base.late_seed / 2, base.ceiling / 2)
    )
    assert half.wide_variance == pytest.approx(base.wide_variance / 4)
    assert (half.early, half.compete, half.widening, half.wide_members) == (
        base.early,
        base.compete,
        base.widening,
        base.wide_members,
    )


def test_a_face_exactly_at_a_limit_does_not_join() -> None:
    one = {"a": [point(0.0)]}  # an ordinary group: limit 0.5, during the task 0.375
    assert assign(faces(point(0.5)), at(one), namer(), linkage=EDGE) == [None]
    assert assign(faces(point(0.4375)), at(one), namer(), linkage=EDGE) == ["a"]
    # x is exactly at the limit during the task: it waits, and joins at the end, when the group is still {0}; had
    # it joined during the task, y (rms 0.625 to {0}, but 0.476 to {0, x}) would have joined too
    x, y = point(0.375), point(0.625)
    assert assign(faces(x, y), at(one), namer(), good=np.array([False, False]), linkage=EDGE) == ["a", None]
    assert assign(faces(point(0.34375), y), at(one), namer(), good=np.array([False, False]), linkage=EDGE) == ["a", "a"]


def test_a_face_joins_the_group_it_is_nearest_to_relative_to_the_limits() -> None:
    # x is nearer the ordinary group a (rms^2 0.238 of 0.25) than the wide group b (0.301 of 0.375), but nearer b
    # relative to their limits; equal groups: the first takes it
    b = [point(0.0, 0.5, 0.25 * s, 0.25 * t) for s, t in ((1, 1), (-1, -1), (1, -1), (-1, 1))]
    x = point(-0.375, 0.3125)
    assert assign(faces(x), at({"a": [point(0.0)], "b": b}), namer(), good=np.array([False]), linkage=EDGE) == ["b"]
    twins = at({"a": [point(0.0)], "b": [point(0.0)]})
    assert assign(faces(point(0.25)), twins, namer(), linkage=EDGE) == ["a"]


def test_a_face_waits_while_a_waiting_good_face_is_nearer_than_the_group() -> None:
    # x (not good) is inside g's limit (rms^2 3/16); r (good, waiting) is 0.75 x rms away from it exactly: x joins;
    # a little nearer, x waits; the same r not good is no rival
    x = point(0.25, 0.25, 0.25)
    exactly, nearer = x + point(0, 0, 0, 0.1875, 0.1875, 0.1875), x + point(0, 0, 0, 0.1875, 0.1875, 0.125)
    g = {"g": [point(0.0)]}
    for r, good, want in ((exactly, True, "g"), (nearer, True, None), (nearer, False, "g")):
        assert assign(faces(r, x), at(g), namer(), good=np.array([good, False]), linkage=EDGE) == [None, want]


def test_a_wide_group_stretches_to_its_ceiling_and_no_further() -> None:
    # four members with variance 1/8: limit^2 1/4 + 2 (1/8 - 1/16) = 3/8; x is at rms^2 5/16
    wide = {"w": square(0.0, 0.25)}
    x = point(0.25, 0.25, 0, 0, 0.25)
    assert assign(faces(x), at(wide), namer(), linkage=EDGE) == ["w"]
    assert assign(faces(x), at(wide), namer(), linkage=replace(EDGE, wide_members=5)) == [None]  # too few members
    assert assign(faces(x), at(wide), namer(), linkage=replace(EDGE, wide_variance=0.125)) == [None]  # not wide
    # variance 1/4: 1/4 + 2 (1/4 - 1/16) = 5/8 is over the ceiling (0.75^2 = 9/16): a face at rms^2 9/16 stays out
    wider = {"w": [point(0, 0, 0.5), point(0, 0, -0.5), point(0, 0, 0, 0.5), point(0, 0, 0, -0.5)]}
    assert assign(faces(point(0.375, 0.375)), at(wider), namer(), linkage=EDGE) == ["w"]  # 17/32
    assert assign(faces(point(0.5, 0.25)), at(wider), namer(), linkage=EDGE) == [None]  # 9/16


def test_good_faces_start_a_group_during_the_task_only_all_pairwise_under_the_seed_distance() -> None:
    assert assign(faces(point(0.0), point(0.25), point(0.5)), empty(), namer(), linkage=NO_LATE) == [None] * 3
    assert assign(faces(point(0.0), point(0.25), point(0.4375)), empty(), namer(), linkage=NO_LATE) == ["c0"] * 3
    # both are under 0.5 from s, the last, but exactly 0.5 apart
    assert assign(faces(point(-0.25), point(0.25), point(0.0)), empty(), namer(), linkage=NO_LATE) == [None] * 3
    assert assign(faces(point(-0.25), point(0.1875), point(0.0)), empty(), namer(), linkage=NO_LATE) == ["c0"] * 3
    assert assign(faces(point(0.0), point(0.25)), empty(), namer(), min_good=2, linkage=NO_LATE) == ["c0"] * 2


def test_equally_near_good_faces_start_a_group_in_arrival_order() -> None:
    # from s all four are at d^2 5/32; b1 and b2 are close, a1 and a2 too, an a and a b 0.77 apart: nearest first,
    # the earlier among equals, so b1, then b2 (a1 and a2 are too far from b1)
    a1, a2 = point(0.375, 0.125), point(0.375, 0, 0.125)
    b1, b2 = point(-0.375, 0, 0, 0.125), point(-0.375, 0, 0, 0, 0.125)
    assert assign(faces(b1, a1, a2, b2, point(0.0)), empty(), namer(), linkage=EDGE) == ["c0", None, None, "c0", "c0"]
    assert assign(faces(a1, b1, a2, b2, point(0.0)), empty(), namer(), linkage=EDGE) == ["c0", None, "c0", None, "c0"]


def test_a_new_group_takes_waiting_faces_nearest_first_against_the_group_as_it_grows() -> None:
    # u and v (not good) wait at rms^2 0.19 from three faces at 0; the group they start takes the earlier, after
    # which the other is at rms^2 0.335: it stays out
    rule = replace(EDGE, early=1.0)
    u, v, zero = point(0.4375), point(-0.4375), point(0.0)
    good = np.array([False, False, True, True, True])
    assert assign(faces(u, v, zero, zero, zero), empty(), namer(), good=good, linkage=rule) == ["c0", None] + ["c0"] * 3
    assert assign(faces(v, u, zero, zero, zero), empty(), namer(), good=good, linkage=rule) == ["c0", None] + ["c0"] * 3


def test_at_the_end_of_a_task_mutually_nearest_good_faces_start_a_group() -> None:
    a, b, c = point(0.5), point(0, 0.5), point(0, 0, 0.5)  # pairwise 0.71: over the seed distance, under the late
    assert assign(faces(a, b, c), empty(), namer(), linkage=EDGE) == ["c0"] * 3
    assert assign(faces(a, b, c), empty(), namer(), linkage=NO_LATE) == [None] * 3
    at_limit = [point(0.375, 0.375), point(0, 0, 0.375, 0.375), point(0, 0, 0, 0, 0.375, 0.375)]  # 0.75 apart
    assert assign(faces(*at_limit), empty(), namer(), linkage=EDGE) == [None] * 3
    # d, close to c, is c's nearest: a, b and c are not one another's nearest any more (and c, d and a neither)
    d = point(0, 0, 0.5, 0.125)
    assert assign(faces(a, b, c, d), empty(), namer(), linkage=EDGE) == [None] * 4
    # c is nearer an existing group (rms^2 1/4, at its limit, so it does not join it) than to a, b, c (1/3)
    g = {"g": [point(0, 0, 0.5, 0, 0, 0.5)]}
    assert assign(faces(a, b, c), at(g), namer(), linkage=EDGE) == [None] * 3
    far = {"g": [point(0, 0, 0.5, 0, 0, 0.625)]}
    assert assign(faces(a, b, c), at(far), namer(), linkage=EDGE) == ["c0"] * 3
    # two such groups at once
    other = [x + point(0, 0, 0, 0, 0, 0, 0, 4.0) for x in (a, b, c)]
    assert assign(faces(a, *other, b, c), empty(), namer(), linkage=EDGE) == ["c0", "c1", "c1", "c1", "c0", "c0"]


def test_a_new_group_does_not_change_the_other_clusters() -> None:
    stats = ClusterStats.from_members(["e"] * 3, faces(point(0.0), point(0.1), point(-0.1)))
    far = [point(5.0), point(5.1), point(4.9)]
    labels = assign(
        faces(point(5.2), *far, point(0.05)), stats, namer(), good=np.array([False] + [True] * 4), linkage=EDGE
    )
    assert labels == ["c0", "c0", "c0", "c0", "e"]
    mean, spread = stats.mean_and_spread(0)
    assert mean[0] == pytest.approx(0.05 / 4) and spread == pytest.approx((0.01 + 0.01 + 0.0025) / 4)
    mean, _ = stats.mean_and_spread(1)
    assert mean[0] == pytest.approx(5.05)


def test_faces_waiting_across_chunks_are_kept_when_the_waiting_list_shrinks() -> None:
    # First chunk: 60 people seen three times (grouped at once) and 76 people seen once (waiting), in between
    # the 120 filler faces that wait too; the second chunk sees the 76 twice more: each must end in a group.
    dim = 8
    rng = np.random.default_rng(5)
    people = rng.normal(scale=30.0, size=(136, dim))
    first = [people[p] for p in range(60) for _ in range(3)] + [people[60 + p] for p in range(76)]
    assert len(first) == CHUNK
    second = [people[60 + p] + 0.01 * k for k in (1, 2) for p in range(76)]
    vecs = np.array(first + second, np.float32)
    labels = assign(vecs, empty(dim), namer())
    assert None not in labels
    singles = labels[180:CHUNK]
    assert len(set(singles)) == 76 and labels[CHUNK:] == singles + singles
    assert assign(vecs, empty(dim), namer(), good=[1] * len(vecs)) == labels  # type: ignore[arg-type]


def test_assign_takes_no_faces_and_flags_of_any_truthy_type() -> None:
    stats = empty()
    assert assign(np.array([], np.float32), stats, namer()) == [] and len(stats) == 0
    assert ClusterStats.from_members([], np.array([], np.float32)).dim == 0
    trio = faces(point(0.0), point(0.1), point(0.2))
    assert assign(trio, empty(), namer(), good=[1, 1, 1]) == ["c0"] * 3  # type: ignore[arg-type]
    assert assign(trio, empty(), namer(), good=[1, 0, 1]) == [None] * 3  # type: ignore[arg-type]


def test_assign_errors_say_what_is_wrong() -> None:
    stats = ClusterStats.from_members(["x"], faces(point(0.0)))
    with pytest.raises(ValueError, match=r"^embedding dimension differs from the existing clusters'$"):
        assign(np.zeros((1, 4), np.float32), stats, namer())
    with pytest.raises(ValueError, match=r"^good must have one flag per embedding$"):
        assign(np.zeros((2, 8), np.float32), stats, namer(), good=np.array([True]))


def test_assign_runs_its_products_on_one_blas_thread() -> None:
    seen: list[int] = []

    def new_id() -> str:
        seen.extend(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
        return f"c{len(seen)}"

    assert assign(faces(point(0.0), point(0.1), point(0.2)), empty(), new_id) == ["c1"] * 3 or seen == []
    assert seen and set(seen) == {1}


# ---------------------------------------------------------------------------------------------- figures.py's rules


def test_a_head_pose_may_omit_any_angle() -> None:
    good = {"Boundary": {"Width": 76, "Height": 76}, "FaceQuality": 0.81}
    for pose in ({"Pitch": 5}, {"Roll": 5}, {"Yaw": 5}, {"Pitch": 29, "Roll": 29}):
        assert figure_is_good({**good, "HeadPose": pose})


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ({"Left": 5, "Top": 0, "Width": 10, "Height": 10}, {"Left": 0, "Top": 0, "Width": 10, "Height": 10}, 50 / 150),
        ({"Left": 0, "Top": 5, "Width": 10, "Height": 10}, {"Left": 0, "Top": 0, "Width": 10, "Height": 10}, 50 / 150),
        ({"Left": 0, "Top": 0, "Width": 10, "Height": 10}, {"Left": 0, "Top": 20, "Width": 10, "Height": 10}, 0.0),
        ({"Left": 0, "Top": 0, "Width": 10, "Height": 10}, {"Left": 20, "Top": 0, "Width": 10, "Height": 10}, 0.0),
        ({"Left": 3, "Top": 3, "Width": 1, "Height": 1}, {"Left": 3, "Top": 3, "Width": 1, "Height": 1}, 1.0),
    ],
)
def test_box_overlap_by_each_side(a: dict[str, float], b: dict[str, float], expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)


def test_matching_distances_are_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    here, far = {"Left": 0, "Top": 0, "Width": 100, "Height": 100}, {"Left": 500, "Top": 0, "Width": 10, "Height": 10}
    old = [(point(0.0), here)]
    assert match_faces(old, [(point(0.5), here)], threshold=0.5) == {}  # exactly the threshold: another face
    assert match_faces(old, [(point(0.375), here)], threshold=0.5) == {0: 0}
    monkeypatch.setattr(figures, "SAME_FACE_DISTANCE", 0.25)
    assert match_faces(old, [(point(0.25), far)], threshold=0.5) == {}
    assert match_faces(old, [(point(0.125), far)], threshold=0.5) == {0: 0}


# A rule with the same limits during a task and at its end, and no widening: what a new group takes at its start
# is then the only difference between its steps.
FLAT = replace(EDGE, early=1.0, wide_members=1000)


def test_a_new_group_takes_the_nearest_waiting_face_first_not_the_earliest() -> None:
    # u (rms^2 0.19 to three faces at 0) waited before v (0.14): v goes in first, after which u is at 0.31; u
    # first would have left v out (0.27). The same far from the origin (the group's mean then weighs in).
    u, v, zero = point(0.4375), point(-0.375), point(0.0)
    good = np.array([False, False, True, True, True])
    for shift in (point(0.0), point(2.0)):
        scene = faces(u, v, zero, zero, zero) + shift
        assert assign(scene, empty(), namer(), good=good, linkage=FLAT) == [None] + ["c0"] * 4


def test_equally_near_waiting_faces_join_a_new_group_in_arrival_order() -> None:
    # forty waiting faces (not good) 0.375 from the three that start a group, each on an axis of its own: nearest
    # first, the earlier among equals, each against the group as it has grown: the first eleven
    spokes = [0.375 * np.eye(64, dtype=np.float32)[k] for k in range(1, 41)]
    zero = np.zeros(64, np.float32)
    good = np.array([False] * 40 + [True] * 3)
    labels = assign(np.stack([*spokes, zero, zero, zero]), empty(64), namer(), good=good, linkage=FLAT)
    assert labels == ["c0"] * 11 + [None] * 29 + ["c0"] * 3


def test_a_new_group_looks_for_waiting_faces_around_its_mean_not_only_around_its_seed() -> None:
    # a and b wait; s starts a group with them, whose mean lies on the other side of the origin from s; u (not
    # good) is 0.72 from s but inside the group's limit (rms^2 0.246): taken at once, the group then takes w
    # (0.214; without u, 0.262: w would stay out)
    a, u, s, w = point(0.125, 0.1875), point(0.375, 0.3125), point(-0.25, -0.125), point(0.1875, 0.5)
    good = np.array([True, True, False, True, False])
    assert assign(faces(a, a, u, s, w), empty(), namer(), good=good, linkage=FLAT) == ["c0"] * 5


def test_a_late_group_is_weighed_against_existing_groups_with_its_own_spread() -> None:
    # two late groups, a tight one (pairwise 0.71: each member's rms^2 to it 1/3) and a wider one (0.735): c, in
    # the tight one, is at rms^2 0.3369 from an existing group, nearer than to the wider group's members' mean
    # spread would make it (0.340), farther than to its own group's (1/3): the tight group starts
    def axis(k: int, value: float, far: float = 0.0) -> npt.NDArray[np.float32]:
        x = np.zeros(16, np.float32)
        x[k], x[15] = value, far
        return x

    tight = [axis(0, 0.5), axis(1, 0.5), axis(2, 0.5)]
    wide = [axis(6, 0.52, 2.0), axis(7, 0.52, 2.0), axis(8, 0.52, 2.0)]
    near = {"g": [tight[2] + axis(5, float(np.sqrt(0.3369)))]}
    labels = assign(np.stack([*tight, *wide]), at(near), namer(), linkage=EDGE)
    assert labels == ["c0"] * 3 + ["c1"] * 3
