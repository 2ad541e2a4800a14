"""SearchImageFigureCluster finds the cluster a clustering task would let a face join: the same rule
(:class:`Linkage`), each cluster's own limit, not one fixed distance."""

from __future__ import annotations

import numpy as np

from imm_faces.emulator.clustering import DEFAULT_THRESHOLD, ClusterStats, Linkage
from imm_faces.emulator.image_search import matches

DIM = 128


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM)
    v[i] = 1.0
    return v


def wide_person(members: int = 12, spread: float = 0.35) -> np.ndarray:
    """A heavily photographed person: many photos, far from their mean (variance over the widening bar)."""
    return np.stack([unit(0) + spread * unit(1 + k) for k in range(members)])


def test_a_face_inside_a_wide_clusters_own_limit_is_found_beyond_the_ordinary_threshold() -> None:
    people = wide_person()
    stats = ClusterStats.from_members(["heavy"] * len(people), people.astype(np.float32))
    rule = Linkage.scaled(DEFAULT_THRESHOLD)
    limit = float(np.sqrt(stats.limits2(rule)[0]))
    mean, variance = people.mean(0), float(stats.variances()[0])
    target = (DEFAULT_THRESHOLD + limit) / 2  # between the ordinary threshold and this cluster's widened limit
    face = mean + np.sqrt(target**2 - variance) * unit(100)
    assert DEFAULT_THRESHOLD < target < limit
    found = matches(stats, face[None, :], DEFAULT_THRESHOLD)
    assert [(i, cid) for i, cid, _ in found] == [(0, "heavy")]
    assert abs(found[0][2] - target) < 1e-4


def test_search_and_a_task_choose_alike_on_random_clusters() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    ids, members = [], []
    for c, centre in enumerate(centres):
        for _ in range(int(rng.integers(3, 20))):
            ids.append(f"c{c}")
            members.append(centre + rng.normal(scale=rng.uniform(0.02, 0.05), size=DIM))
    stats = ClusterStats.from_members(ids, np.asarray(members, np.float32))
    scales = rng.uniform(0.01, 0.06, size=(200, 1))  # some faces near their person, some too far to join
    faces = centres[rng.integers(0, 6, 200)] + rng.normal(size=(200, DIM)) * scales
    rule = Linkage.scaled(DEFAULT_THRESHOLD)
    best, joins = rule.choose(stats.rms2(faces), stats.limits2(rule), np.full(len(faces), np.inf))
    expected = [(int(i), stats.ids[int(best[i])]) for i in np.flatnonzero(joins)]
    assert 0 < len(expected) < len(faces)  # some faces join, some are too far: the test tells them apart
    assert [(i, cid) for i, cid, _ in matches(stats, faces, DEFAULT_THRESHOLD)] == expected
