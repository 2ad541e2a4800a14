"""The clustering engine on its own: threshold, incremental stability, chunk boundaries, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from imm_faces.emulator.clustering import CHUNK, DEFAULT_THRESHOLD, Centroids, assign


def people(n_people: int, per_person: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.9 / 16, size=(n_people, 128))  # ~0.9 apart, like different people
    truth = rng.permutation(np.arange(n_people * per_person) % n_people)
    faces = centres[truth] + rng.normal(scale=0.35 / 16, size=(len(truth), 128))  # ~0.35 apart within
    return faces.astype(np.float32), truth


def ids() -> itertools.count[int]:
    return itertools.count()


def test_each_person_one_cluster_across_chunk_boundaries() -> None:
    faces, truth = people(CHUNK // 2, 5)  # 2.5 chunks; clusters are born in every chunk
    counter = ids()
    labels = assign(faces, Centroids.from_members([], faces[:0]), lambda: f"c{next(counter)}")
    mapping = {}
    for label, person in zip(labels, truth.tolist(), strict=True):
        assert mapping.setdefault(label, person) == person  # no cluster mixes two people
    assert len(mapping) == CHUNK // 2  # and no person is split


def test_incremental_assignment_keeps_existing_ids() -> None:
    faces, _ = people(20, 4)
    counter = ids()
    centroids = Centroids.from_members([], faces[:0])
    first = assign(faces[:40], centroids, lambda: f"c{next(counter)}")
    # A later task starts from the stored members, as the emulator does.
    rebuilt = Centroids.from_members(first, faces[:40])
    second = assign(faces[40:], rebuilt, lambda: f"c{next(counter)}")
    assert set(rebuilt.ids[: len(set(first))]) == set(first)
    assert set(second) <= set(rebuilt.ids)
    together = assign(faces, Centroids.from_members([], faces[:0]), lambda: f"d{next(counter)}")
    assert len(set(first) | set(second)) == len(set(together))


def test_threshold_decides() -> None:
    a = np.zeros((1, 4), np.float32)
    near = a + np.float32(DEFAULT_THRESHOLD * 0.9 / 2)  # |near - a| = 0.9 x threshold
    far = a - np.float32(DEFAULT_THRESHOLD * 1.1 / 2)  # beyond the threshold from a, and from a+near
    counter = ids()
    labels = assign(np.vstack([a, near, far]), Centroids.from_members([], a[:0]), lambda: f"c{next(counter)}")
    assert labels == ["c0", "c0", "c1"]


def test_dimension_mismatch_is_an_error() -> None:
    centroids = Centroids.from_members(["x"], np.zeros((1, 128), np.float32))
    with pytest.raises(ValueError, match="dimension"):
        assign(np.zeros((1, 64), np.float32), centroids, lambda: "new")
