"""The face-group rule and face matching, at their boundaries.

IMM starts a face group only from "good" faces (both sides over 75 px, every HeadPose angle under 30 degrees,
FaceQuality over 0.8; strict inequalities, runtime.rules). A re-indexed file keeps a face's FigureId when the
new analysis finds the same face: embeddings within SAME_FACE_DISTANCE, or boxes overlapping (IoU >= 0.5)
with embeddings within the clustering threshold; each old face is matched once, closest first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from imm_faces.emulator.clustering import CHUNK, DEFAULT_THRESHOLD, ClusterStats, assign
from imm_faces.emulator.figures import SAME_BOX_IOU, SAME_FACE_DISTANCE, figure_is_good, iou, match_faces

GOOD: dict[str, Any] = {
    "Boundary": {"Left": 0, "Top": 0, "Width": 76, "Height": 76},
    "HeadPose": {"Pitch": 29.9, "Roll": -29.9, "Yaw": 29.9},
    "FaceQuality": 0.81,
}


def test_a_face_just_inside_every_limit_is_good() -> None:
    assert figure_is_good(GOOD)
    assert figure_is_good({**GOOD, "HeadPose": {"Yaw": 5}})  # angles not given are 0


@pytest.mark.parametrize(
    "changes",
    [
        {"Boundary": {"Width": 75, "Height": 76}},
        {"Boundary": {"Width": 76, "Height": 75}},
        {"Boundary": {"Width": None, "Height": 76}},
        {"Boundary": None},
        {"HeadPose": {"Pitch": 30, "Roll": 0, "Yaw": 0}},
        {"HeadPose": {"Pitch": 0, "Roll": -30, "Yaw": 0}},
        {"HeadPose": {"Pitch": 0, "Roll": 0, "Yaw": -30.5}},
        {"HeadPose": None},
        {"HeadPose": {}},
        {"FaceQuality": 0.8},
        {"FaceQuality": None},
    ],
)
def test_a_face_on_or_past_one_limit_is_not_good(changes: dict[str, Any]) -> None:
    assert not figure_is_good({**GOOD, **changes})


def box(left: float, top: float, width: float, height: float) -> dict[str, float]:
    return {"Left": left, "Top": top, "Width": width, "Height": height}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (box(0, 0, 10, 10), box(0, 0, 10, 10), 1.0),
        (box(0, 0, 10, 10), box(5, 0, 10, 10), 50 / 150),
        (box(0, 0, 10, 10), box(0, 5, 10, 10), 50 / 150),
        (box(0, 0, 10, 10), box(2, 3, 4, 5), 20 / 100),
        (box(2, 3, 4, 5), box(0, 0, 10, 10), 20 / 100),
        (box(0, 0, 10, 10), box(10, 0, 10, 10), 0.0),
        (box(0, 0, 10, 10), box(20, 20, 5, 5), 0.0),
        (box(0, 0, 0, 0), box(0, 0, 0, 0), 0.0),
        ({}, box(0, 0, 10, 10), 0.0),
        ({"Left": None, "Top": 0, "Width": 10, "Height": 10}, box(0, 0, 10, 10), 1.0),
    ],
)
def test_box_overlap(a: dict[str, Any], b: dict[str, Any], expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)


Face = tuple[npt.NDArray[np.float32], dict[str, Any]]


def vec(*values: float) -> npt.NDArray[np.float32]:
    out = np.zeros(128, dtype=np.float32)
    out[: len(values)] = values
    return out


def test_the_same_face_matches_by_embedding_alone() -> None:
    far = box(500, 500, 10, 10)
    assert match_faces([(vec(0.0), box(0, 0, 10, 10))], [(vec(SAME_FACE_DISTANCE * 0.9), far)]) == {0: 0}
    assert match_faces([(vec(0.0), box(0, 0, 10, 10))], [(vec(SAME_FACE_DISTANCE * 1.1), far)]) == {}


def test_a_moved_embedding_matches_only_with_an_overlapping_box() -> None:
    d = (SAME_FACE_DISTANCE + DEFAULT_THRESHOLD) / 2
    here = box(0, 0, 100, 100)
    assert match_faces([(vec(0.0), here)], [(vec(d), box(10, 0, 100, 100))]) == {0: 0}  # IoU 0.82
    assert match_faces([(vec(0.0), here)], [(vec(d), box(60, 0, 100, 100))]) == {}  # IoU 0.25
    assert match_faces([(vec(0.0), here)], [(vec(DEFAULT_THRESHOLD * 1.05), here)]) == {}  # too far apart
    exactly = box(0, 0, 100, 100 * SAME_BOX_IOU)  # IoU exactly 0.5 counts
    assert match_faces([(vec(0.0), here)], [(vec(d), exactly)]) == {0: 0}


def test_each_old_face_is_matched_once_closest_first() -> None:
    old: list[Face] = [(vec(0.0), {}), (vec(1.0), {})]
    new: list[Face] = [(vec(0.95), {}), (vec(0.05), {}), (vec(0.9), {})]
    assert match_faces(old, new) == {1: 0, 0: 1}
    assert match_faces([], new) == {} and match_faces(old, []) == {}
    assert match_faces(old, new, threshold=0.0) == {1: 0, 0: 1}  # SAME_FACE_DISTANCE does not need the threshold


def _empty() -> ClusterStats:
    return ClusterStats.from_members([], np.zeros((0, 128), np.float32))


def _namer() -> Callable[[], str]:
    counter = iter(range(100))
    return lambda: f"c{next(counter)}"


def test_a_new_group_takes_the_waiting_faces_at_once_and_grows_towards_later_ones() -> None:
    # a (not good) waits; three good faces start a group (mean 2.0), which takes a at once (rms 0.457, under the
    # limit during the task, 0.497); the group, grown by a, then takes f (rms 0.491), which the three alone would
    # not take even at the end of the task (0.556 > 0.53)
    faces = np.stack([vec(2.45), vec(2.0), vec(2.1), vec(1.9), vec(2.55)])
    stats = _empty()
    labels = assign(faces, stats, _namer(), good=np.array([False, True, True, True, False]))
    assert labels == ["c0"] * 5
    mean, _ = stats.mean_and_spread(0)
    assert mean[0] == pytest.approx((2.45 + 2.0 + 2.1 + 1.9 + 2.55) / 5)


def test_a_group_needs_its_good_faces_close_to_each_other_not_only_to_one() -> None:
    # 0.45 is within the seed distance (0.5) of 0, not of 1.0, and 0 and 1.0 are 1.0 apart: no group, during
    # the task or at its end (over the late seed distance, 0.6)
    faces = np.stack([vec(0.0), vec(1.0), vec(0.45)])
    assert assign(faces, _empty(), _namer()) == [None, None, None]
    assert assign(np.stack([vec(0.0), vec(0.3), vec(0.45)]), _empty(), _namer()) == ["c0"] * 3


def test_the_end_of_task_sweep_adds_each_waiting_face_once() -> None:
    # p waits in the first chunk (a's rms 0.6), after 255 far-apart faces; q joins a in the second chunk (0.45),
    # and the sweep then gives p to the grown cluster (0.525), once
    fillers = [np.eye(128, dtype=np.float32)[1 + k % 127] * (10 + k) for k in range(CHUNK - 1)]
    faces = np.stack([*fillers, vec(0.6), vec(0.45)])
    stats = ClusterStats.from_members(["a"] * 3, np.stack([vec(0.0)] * 3))
    labels = assign(faces, stats, _namer(), good=np.zeros(len(faces), dtype=bool))
    assert labels[-2:] == ["a", "a"] and set(labels[:-2]) == {None}
    mean, _ = stats.mean_and_spread(0)
    assert mean[0] == pytest.approx((0.6 + 0.45) / 5)
