"""Time and peak memory of the emulator's face clustering at 10,000 and 100,000 faces.

    python benchmarks/clustering.py [--sizes 10000 100000] [--faces-per-person 10]

Embeddings are synthetic but shaped like dlib's: 128-d, people about 0.9 apart, photos of one person about
0.35 apart (what the sample photos measure). Faces arrive shuffled. ``imm_faces.emulator.clustering.assign`` runs
twice per size: all faces in one task, then the same faces split over ten incremental tasks (ids must stay
stable). The peer, measured in the same run at the sizes where it fits in memory, is the textbook approach
the emulator avoids: the full faces x faces distance matrix, thresholded, then connected components.
Peak memory is numpy's allocations as tracemalloc sees them.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imm_faces.emulator.clustering import DEFAULT_THRESHOLD, Centroids, assign

DIM = 128
PEER_MAX_FACES = 20_000  # 20k x 20k float32 is 1.6 GB; 100k x 100k would be 40 GB


def synthetic_faces(n: int, per_person: int, seed: int = 7) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    people = max(1, n // per_person)
    centres = rng.normal(scale=0.9 / np.sqrt(2 * DIM), size=(people, DIM))
    truth = rng.permutation(np.arange(n) % people)
    faces = centres[truth] + rng.normal(scale=0.35 / np.sqrt(2 * DIM), size=(n, DIM))
    return faces.astype(np.float32), truth


def ours(faces: npt.NDArray[np.float32], batches: int = 1) -> list[str]:
    counter = itertools.count()
    centroids = Centroids.from_members([], np.zeros((0, DIM), np.float32))
    labels: list[str] = []
    for part in np.array_split(faces, batches):
        before = list(centroids.ids)
        labels += assign(part, centroids, lambda: f"c{next(counter)}", DEFAULT_THRESHOLD)
        assert centroids.ids[: len(before)] == before, "existing cluster ids changed"
    return labels


def peer(faces: npt.NDArray[np.float32]) -> list[str]:
    """All pairs: an n x n matrix, thresholded, then union-find over the close pairs."""
    sq = (faces**2).sum(1)
    d2 = sq[:, None] - 2 * faces @ faces.T + sq[None, :]
    rows, cols = np.nonzero(d2 < DEFAULT_THRESHOLD**2)
    parent = np.arange(len(faces))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [f"c{find(i)}" for i in range(len(faces))]


def quality(labels: list[str], truth: npt.NDArray[np.int64]) -> tuple[float, float]:
    """(purity: faces in a cluster whose majority is their person; clusters per person)."""
    by_cluster: dict[str, Counter[int]] = {}
    for label, person in zip(labels, truth.tolist(), strict=True):
        by_cluster.setdefault(label, Counter())[person] += 1
    majority = sum(c.most_common(1)[0][1] for c in by_cluster.values())
    return majority / len(labels), len(by_cluster) / len(set(truth.tolist()))


def run(name: str, fn: Callable[[], list[str]], truth: npt.NDArray[np.int64]) -> float:
    tracemalloc.start()
    start = time.perf_counter()
    labels = fn()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    purity, split = quality(labels, truth)
    print(f"  {name:34s} {elapsed:8.2f} s  peak {peak / 2**20:8.1f} MiB  purity {purity:.4f}  "
          f"clusters/person {split:.3f}")  # fmt: skip
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--faces-per-person", type=int, default=10)
    args = parser.parse_args()
    print(f"threshold {DEFAULT_THRESHOLD}, {args.faces_per_person} faces per person, {DIM}-d embeddings")
    for n in args.sizes:
        faces, truth = synthetic_faces(n, args.faces_per_person)
        print(f"{n} faces, {len(set(truth.tolist()))} people")
        t_ours = run("emulator (one task)", lambda f=faces: ours(f), truth)
        run("emulator (10 incremental tasks)", lambda f=faces: ours(f, 10), truth)
        if n <= PEER_MAX_FACES:
            t_peer = run("peer: all-pairs matrix + components", lambda f=faces: peer(f), truth)
            print(f"  time ratio emulator/peer: {t_ours / t_peer:.2f}")
        else:
            print(f"  peer skipped: its {n} x {n} float32 matrix alone would take {n * n * 4 / 2**30:.0f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
