"""The clustering engine against a plain reference of its documented rule, and at its exact edges.

The reference below is the module docstring of ``emulator.clustering`` written as simply as possible (member
lists, float64, no chunks, pre-filters or running sums): random small data sets must get the same labels. The
edge tests use distances that are exact in binary (threshold 0.5, coordinates in halves and quarters), so
"under the threshold" can be told from "at it"."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import threadpool_info

from imm_faces.emulator import figures
from imm_faces.emulator.clustering import CHUNK, ClusterStats, assign
from imm_faces.emulator.figures import _iou, figure_is_good, match_faces

F64 = npt.NDArray[np.float64]


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


def _rms2(x: F64, members: list[F64]) -> float:
    return float(np.mean([((x - m) ** 2).sum() for m in members]))


def _taker(x: F64, clusters: list[list[F64]], limit: float) -> int | None:
    """The cluster with the smallest rms to ``x`` when that is under the threshold."""
    if not clusters:
        return None
    r = [_rms2(x, c) for c in clusters]
    best = int(np.argmin(r))
    return best if r[best] < limit else None


def _group(vecs: F64, i: int, candidates: list[int], limit: float) -> list[int]:
    """From face ``i``: the good waiting faces under the threshold from it, nearest first (arrival order among
    equals), each taken when its rms to those taken before it is under the threshold."""
    d2 = {k: float(((vecs[k] - vecs[i]) ** 2).sum()) for k in candidates}
    chosen = [i]
    for k in sorted((k for k in candidates if d2[k] < limit), key=lambda k: d2[k]):
        if k != i and _rms2(vecs[k], [vecs[c] for c in chosen]) < limit:
            chosen.append(k)
    return chosen


def reference(
    vecs: F64, good: list[bool], clusters: list[list[F64]], limit: float, min_good: int = 3
) -> tuple[list[int | None], list[list[F64]]]:
    """Labels (cluster positions) by the documented rule; ``clusters`` (member lists) is updated in place."""
    labels: list[int | None] = [None] * len(vecs)
    # faces a cluster takes as the clusters were at the start join them first (one chunk here)
    first = [(i, _taker(x, clusters, limit)) for i, x in enumerate(vecs)]
    pending: list[int] = []  # waiting faces, in arrival order
    for i, best in first:
        if best is not None:
            clusters[best].append(vecs[i])
            labels[i] = best
    for i in range(len(vecs)):
        if labels[i] is not None:
            continue
        best = _taker(vecs[i], clusters, limit)
        if best is not None:
            clusters[best].append(vecs[i])
            labels[i] = best
            continue
        pending.append(i)
        chosen = _group(vecs, i, [k for k in pending if good[k]], limit) if good[i] else []
        if len(chosen) < min_good:
            continue
        members = [vecs[c] for c in chosen]
        clusters.append(members)
        pending = [k for k in pending if k not in chosen]
        at_birth = {k: _rms2(vecs[k], members) for k in pending}
        for k in sorted((k for k in pending if at_birth[k] < limit), key=lambda k: at_birth[k]):
            if _rms2(vecs[k], members) < limit:  # against the cluster as it has grown
                members.append(vecs[k])
                pending.remove(k)
        for c in chosen + [k for k in at_birth if k not in pending]:
            labels[c] = len(clusters) - 1
    # the faces still waiting are offered to the clusters as they ended up
    late = [(k, _taker(vecs[k], clusters, limit)) for k in pending]
    for k, best in late:
        if best is not None:
            clusters[best].append(vecs[k])
            labels[k] = best
    return labels, clusters


def _data(seed: int) -> tuple[npt.NDArray[np.float32], list[bool]]:
    """Forty faces of a few overlapping people in 4-d: many faces near the threshold of several groups."""
    rng = np.random.default_rng(seed)
    people = rng.normal(scale=0.45, size=(int(rng.integers(2, 6)), 4))
    which = rng.integers(0, len(people), size=40)
    vecs = (people[which] + rng.normal(scale=0.22, size=(40, 4))).astype(np.float32)
    return vecs, (rng.random(40) < 0.75).tolist()


@pytest.mark.parametrize("seed", range(40))
def test_assign_follows_the_documented_rule(seed: int) -> None:
    vecs, good = _data(seed)
    threshold = 0.5
    # two tasks: the faces left waiting by the first are offered again, first, with the new ones
    stats = empty(4)
    first = assign(vecs[:25], stats, namer(), threshold, good=np.array(good[:25]))
    want, clusters = reference(vecs[:25].astype(np.float64), good[:25], [], threshold**2)
    assert [None if label is None else f"c{label}" for label in want] == first
    again = [i for i, label in enumerate(first) if label is None] + list(range(25, 40))
    second = assign(vecs[again], stats, namer("d"), threshold, good=np.array([good[i] for i in again]))
    ids = list(stats.ids)
    want, clusters = reference(vecs[again].astype(np.float64), [good[i] for i in again], clusters, threshold**2)
    assert [None if label is None else ids[label] for label in want] == second
    for k, members in enumerate(clusters):  # and the running figures are the members'
        mean, spread = stats.mean_and_spread(k)
        assert np.allclose(mean, np.mean(members, axis=0), atol=1e-6)
        assert spread == pytest.approx(float(np.mean([(m**2).sum() for m in members])), abs=1e-6)


# ---------------------------------------------------------------------------------------------- exact edges


def test_a_face_exactly_at_the_threshold_does_not_join() -> None:
    # one member at 0; faces at 0 (joins, the cluster is now two members at 0) and at 0.5: rms exactly 0.5
    stats = ClusterStats.from_members(["a"], faces(point(0.0)))
    assert assign(faces(point(0.0), point(0.5)), stats, namer(), 0.5) == ["a", None]
    assert assign(faces(point(0.0, 0.5)), stats, namer(), 0.5) == [None]  # offered again: still exactly 0.5
    assert assign(faces(point(0.0, 0.375)), stats, namer(), 0.5) == ["a"]


def test_a_group_needs_its_good_faces_under_the_threshold_not_at_it() -> None:
    # 0.5 is exactly 0.5 from 0: without it no three faces are within 0.5 of the last one
    assert assign(faces(point(0.0), point(0.25), point(0.5)), empty(), namer(), 0.5) == [None] * 3
    assert assign(faces(point(0.0), point(0.25), point(0.4375)), empty(), namer(), 0.5) == ["c0"] * 3


def test_a_group_member_must_be_under_the_threshold_in_rms_to_those_chosen_before_it() -> None:
    # the last face s chooses b (0.25 away), then c: rms to {s, b} exactly 0.5 (0.125 and 0.375 squared)
    s, b = point(0.0), point(0.25)
    c = point(-0.25, 0.25)  # |c - s|^2 = 0.125, |c - b|^2 = 0.3125: mean 0.21875, under 0.25
    assert assign(faces(b, c, s), empty(), namer(), 0.5) == ["c0"] * 3
    c = point(-0.25, 0.125, 0.125, 0.25)  # |c - s|^2 = 0.15625, |c - b|^2 = 0.34375: mean exactly 0.25
    assert assign(faces(b, c, s), empty(), namer(), 0.5) == [None] * 3


def test_a_face_that_is_not_good_does_not_start_a_group_even_between_three_good_ones() -> None:
    # three good faces 0.6 apart (no two form a pair) and, in their middle, a face that is not good: from it,
    # all three are near, and two of them are close enough to it in rms; it must not start the group
    r = 0.6 / np.sqrt(3)
    corners = [point(r * np.cos(a), r * np.sin(a)) for a in (0.0, 2 * np.pi / 3, 4 * np.pi / 3)]
    middle = point(0.0)
    labels = assign(faces(*corners, middle), empty(), namer(), 0.5, good=np.array([True, True, True, False]))
    assert labels == [None] * 4
    assert assign(faces(*corners, middle), empty(), namer(), 0.5) == ["c0", "c0", None, "c0"]  # all good: it may


def test_a_new_group_takes_a_waiting_face_at_once_and_later_faces_see_it() -> None:
    # x waits (not good); a, b, s start a group (rms of x to it 0.456) which takes x at once, though x is 0.58
    # from s; y (rms 0.525 to a, b, s) then joins the group grown by x (0.456). Were x only taken by the
    # end-of-task sweep, y would stay out.
    x, a, b, s, y = point(-0.48), point(-0.1, 0.0), point(-0.1, 0.0), point(0.1), point(-0.55)
    good = np.array([False, True, True, True, False])
    assert assign(faces(x, a, b, s, y), empty(), namer(), 0.5, good=good) == ["c0"] * 5


def test_a_waiting_face_is_checked_against_the_group_as_it_has_grown() -> None:
    # a, b, s start a group (mean 0); u (rms 0.20) goes in first, then v: rms 0.479 to a, b, s, but exactly 0.5
    # to a, b, s, u. v waits, and stays out at the end (still exactly 0.5).
    u, v = point(-0.125, 0.0, 0.125), point(0.375, 0.25, 0.125)
    a, b, s = point(-0.125), point(0.125), point(0.0)
    good = np.array([False, False, True, True, True])
    assert assign(faces(u, v, a, b, s), empty(), namer(), 0.5, good=good) == ["c0", None, "c0", "c0", "c0"]


def test_a_new_group_takes_only_the_waiting_faces_under_the_threshold_at_its_start() -> None:
    # a, b, s start a group (mean 0, rms^2 = |x|^2 + 1/32); u (rms^2 15/64) goes in, w (exactly 1/4) does not,
    # though it would be under the threshold once u is in: it waits for the end of the task. y arrives when
    # the group is a, b, s, u (rms^2 0.26) and waits too; it would have joined a, b, s, u, w (0.24).
    e = 0.125
    u, w, y = point(-3 * e, -2 * e), point(-3 * e, -2 * e, -e), point(-4 * e, -2 * e, -e)
    a, b, s = point(e, e, e), point(-e, -e, -e), point(0.0)
    good = np.array([False, False, True, True, True, False])
    labels = assign(faces(u, w, a, b, s, y), empty(), namer(), 0.5, good=good)
    assert labels == ["c0"] * 5 + [None]


def test_a_new_group_takes_the_nearest_waiting_face_first() -> None:
    # The group a, b, s (mean 0) could take u (+0.45) or v (-0.45), not both: the nearer, u (0.43 vs 0.47 in rms
    # by the other axis), goes first; with u in, v is over the threshold, and stays out to the end.
    u, v = point(0.45, 0.0), point(-0.45, 0.15)
    a, b, s = point(0.0, 0.1), point(0.0, -0.1), point(0.0)
    good = np.array([False, False, True, True, True])
    labels = assign(faces(v, u, a, b, s), empty(), namer(), 0.5, good=good)
    assert labels == [None, "c0", "c0", "c0", "c0"]


def _spread_out(coords: tuple[float, ...], count: int, first_axis: int) -> list[npt.NDArray[np.float32]]:
    """``count`` faces at the same distance from 0, each on axes of its own (so pairwise orthogonal)."""
    out = []
    for k in range(count):
        x = np.zeros(128, np.float32)
        start = first_axis + k * len(coords)
        x[start : start + len(coords)] = coords
        out.append(x)
    return out


def test_equally_near_good_faces_start_a_group_in_arrival_order() -> None:
    # From s (at 0): 20 good faces at distance^2 0.1875 and then 20 at 0.15625, all orthogonal. The group
    # takes s, then the nearer ones one by one while the rms stays under 0.5: two of them (the third would
    # be at rms^2 0.26). Among equals, the earlier: the first two of the nearer twenty.
    far = _spread_out((0.25, 0.25, 0.25), 20, 0)
    near = _spread_out((0.375, 0.125), 20, 60)
    labels = assign(np.stack([*far, *near, np.zeros(128, np.float32)]), empty(128), namer(), 0.5)
    assert labels == [None] * 20 + ["c0", "c0"] + [None] * 18 + ["c0"]


def test_equally_near_waiting_faces_join_a_new_group_in_arrival_order() -> None:
    # 20 waiting faces at distance^2 0.21875 from 0, then 20 at 0.1875 (orthogonal, not good), then three
    # good faces at 0: the new group takes the nearer ones while each is under the threshold against it as it
    # grows: two (a third would be at rms^2 0.2625). Among equals, the earlier ones.
    far = _spread_out((0.375, 0.25, 0.125), 20, 0)
    near = _spread_out((0.25, 0.25, 0.25), 20, 60)
    zero = np.zeros(128, np.float32)
    good = np.array([False] * 40 + [True] * 3)
    labels = assign(np.stack([*far, *near, zero, zero, zero]), empty(128), namer(), 0.5, good=good)
    assert labels == [None] * 20 + ["c0", "c0"] + [None] * 18 + ["c0"] * 3


def test_a_new_group_does_not_change_the_other_clusters() -> None:
    stats = ClusterStats.from_members(["e"] * 3, faces(point(0.0), point(0.1), point(-0.1)))
    far = [point(5.0), point(5.1), point(4.9)]
    labels = assign(faces(point(5.2), *far, point(0.05)), stats, namer(), 0.5, good=np.array([False] + [True] * 4))
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
    ("a", "b", "iou"),
    [({"Left": 5, "Top": 0, "Width": 10, "Height": 10}, {"Left": 0, "Top": 0, "Width": 10, "Height": 10}, 50 / 150),
     ({"Left": 0, "Top": 5, "Width": 10, "Height": 10}, {"Left": 0, "Top": 0, "Width": 10, "Height": 10}, 50 / 150),
     ({"Left": 0, "Top": 0, "Width": 10, "Height": 10}, {"Left": 0, "Top": 20, "Width": 10, "Height": 10}, 0.0),
     ({"Left": 0, "Top": 0, "Width": 10, "Height": 10}, {"Left": 20, "Top": 0, "Width": 10, "Height": 10}, 0.0),
     ({"Left": 3, "Top": 3, "Width": 1, "Height": 1}, {"Left": 3, "Top": 3, "Width": 1, "Height": 1}, 1.0)],
)  # fmt: skip
def test_box_overlap_by_each_side(a: dict[str, float], b: dict[str, float], iou: float) -> None:
    assert _iou(a, b) == pytest.approx(iou)


def test_matching_distances_are_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    here, far = {"Left": 0, "Top": 0, "Width": 100, "Height": 100}, {"Left": 500, "Top": 0, "Width": 10, "Height": 10}
    old = [(point(0.0), here)]
    assert match_faces(old, [(point(0.5), here)], threshold=0.5) == {}  # exactly the threshold: another face
    assert match_faces(old, [(point(0.375), here)], threshold=0.5) == {0: 0}
    monkeypatch.setattr(figures, "SAME_FACE_DISTANCE", 0.25)
    assert match_faces(old, [(point(0.25), far)], threshold=0.5) == {}
    assert match_faces(old, [(point(0.125), far)], threshold=0.5) == {0: 0}
