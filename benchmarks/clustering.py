"""Face clustering quality, time and memory on realistic embeddings: the emulator's engine against dlib's
chinese whispers and HDBSCAN, measured in the same run.

    pip install -e '.[dev,bench]'          # dlib comes with the vision extra; HDBSCAN with scikit-learn (bench)
    python benchmarks/clustering.py [--sizes 2000 20000] [--shuffles 5] [--skip-peers-above N]

The embeddings are synthetic but shaped like dlib's 128-d face descriptors (how, below; the script prints
the distance quantiles it produced, so the claim can be checked):

- people: photo counts drawn from a Zipf law (exponent 2, capped at 200), so most people are seen once or
  twice and a few hundreds of times, until the total is reached;
- a person is a centre drawn from an anisotropic Gaussian (per-dimension scales from 1.6 down to 0.4), so
  distances between people vary as dlib's do (different people ~0.66-0.96 apart);
- a photo is its person's centre plus isotropic noise; each person has their own spread (log-normal,
  sd 0.12) and each photo its own (log-normal, sd 0.1); faces that are not "good" by IMM's rule (30% of
  them, at random) are 25% noisier, as blurred or turned faces embed worse. Same person: ~0.27-0.59 apart;
- look-alikes: 5% of people get a "twin" whose centre is 0.37 from theirs, so their photos are ~0.55 apart,
  inside the same-person range: no threshold separates them all;
- faces arrive shuffled (and, for order sensitivity, in several other shuffles).

Scores against the true identities, every face counted (a face left out of every cluster, pending or noise,
is a cluster of its own): BCubed F1 (per-face precision and recall, averaged), pairwise F1 (over pairs of
faces placed together), clusters per person (over people with at least one clustered face: how many clusters
their faces are split into), and the share of clustered faces whose cluster's majority is another person.

Measured: the emulator's engine (``imm_faces.emulator.clustering.assign``) with IMM's three-good-faces rule
as the emulator runs it, in one task and in ten incremental tasks (stored members rebuilt between tasks, ids
checked stable), and over several shuffles; the same engine with every face counted as good (the rule off,
to separate the rule's effect from the algorithm's); dlib's chinese whispers (``dlib.chinese_whispers_
clustering``, threshold 0.5 as in dlib's example); HDBSCAN (``sklearn.cluster.HDBSCAN``, min_cluster_size 2,
min_samples 1, Euclidean). Time is wall-clock; peak memory is the rise of the process's resident set
(VmHWM, reset before each method, each method in a forked child so one's memory does not hide another's).
CPU time is the child's, all threads. The ratio "faster" is wall-clock, measured in the same run.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imm_faces.emulator.clustering import DEFAULT_THRESHOLD, ClusterStats, assign
from imm_faces.runtime.rules import FACE_GROUP_MIN_GOOD_FACES

DIM = 128
ZIPF_EXPONENT, MAX_PHOTOS = 2.0, 200
GOOD_RATE, NOT_GOOD_NOISE = 0.7, 1.25
CENTRE_SCALE, SPREAD = 0.68, 0.37
LOOKALIKE_RATE, LOOKALIKE_GAP = 0.05, 0.37
CW_THRESHOLD = 0.5
INCREMENTAL_TASKS = 10
ENGINE, ENGINE_OFF = "engine, IMM rule, one task", "engine, rule off (all good, 2 start one)"
CW, HDBSCAN, RULED = "dlib chinese whispers", "HDBSCAN (sklearn)", " + IMM rule"

Labels = npt.NDArray[np.int64]  # -1: in no cluster


# ---------------------------------------------------------------------------------------------- data


class Faces:
    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        sizes: list[int] = []
        while sum(sizes) < n:
            sizes.append(int(min(rng.zipf(ZIPF_EXPONENT), MAX_PHOTOS)))
        sizes[-1] -= sum(sizes) - n
        counts = np.array([s for s in sizes if s > 0])
        people = len(counts)
        scales = np.linspace(1.6, 0.4, DIM)
        scales /= np.sqrt((scales**2).mean())
        centres = rng.normal(size=(people, DIM)) * scales * CENTRE_SCALE / np.sqrt(2 * DIM)
        self.twins: list[tuple[int, int]] = []
        for k in np.flatnonzero(rng.random(people) < LOOKALIKE_RATE):
            twin = (int(k) + 1) % people
            offset = rng.normal(size=DIM)
            centres[twin] = centres[k] + LOOKALIKE_GAP * offset / np.linalg.norm(offset)
            self.twins.append((int(k), twin))
        spread = SPREAD * np.exp(rng.normal(scale=0.12, size=people))
        truth = np.repeat(np.arange(people), counts)
        good = rng.random(n) < GOOD_RATE
        noise = np.where(good, 1.0, NOT_GOOD_NOISE) * np.exp(rng.normal(scale=0.1, size=n)) * spread[truth]
        faces = centres[truth] + rng.normal(size=(n, DIM)) * noise[:, None] / np.sqrt(2 * DIM)
        order = rng.permutation(n)
        self.embeddings = faces[order].astype(np.float32)
        self.truth = truth[order]
        self.good = good[order]
        self.sizes = counts

    def quantiles(self, seed: int = 0) -> dict[str, npt.NDArray[np.float64]]:
        rng = np.random.default_rng(seed)
        n, qs = len(self.truth), [0.01, 0.05, 0.5, 0.95, 0.99]
        i, j = rng.integers(0, n, 200_000), rng.integers(0, n, 200_000)
        keep = self.truth[i] != self.truth[j]
        different = np.linalg.norm(self.embeddings[i[keep]] - self.embeddings[j[keep]], axis=1)
        members: dict[int, list[int]] = {}
        for k, person in enumerate(self.truth.tolist()):
            members.setdefault(person, []).append(k)
        same: list[float] = []
        for rows in members.values():
            for a, b in itertools.islice(itertools.combinations(rows, 2), 30):
                same.append(float(np.linalg.norm(self.embeddings[a] - self.embeddings[b])))
        twins = [float(np.linalg.norm(self.embeddings[a] - self.embeddings[b]))
                 for p, q in self.twins for a in members[p][:5] for b in members[q][:5]]  # fmt: skip
        return {name: np.quantile(values, qs) for name, values in
                (("same person", same), ("different people", different), ("look-alike pairs", twins))}  # fmt: skip


# ---------------------------------------------------------------------------------------------- scores


def scores(labels: Labels, truth: Labels) -> dict[str, float]:
    """BCubed F1, pairwise F1, clusters per person, share of clustered faces in another person's cluster."""
    labels = labels.copy()
    alone = labels < 0
    labels[alone] = labels.max(initial=0) + 1 + np.arange(int(alone.sum()))  # each left-out face on its own
    _, cluster = np.unique(labels, return_inverse=True)
    _, person = np.unique(truth, return_inverse=True)
    pair = cluster.astype(np.int64) * (person.max() + 1) + person
    pairs, inverse, together = np.unique(pair, return_inverse=True, return_counts=True)
    cluster_size, person_size = np.bincount(cluster), np.bincount(person)
    both = together[inverse]
    precision = float((both / cluster_size[cluster]).mean())
    recall = float((both / person_size[person]).mean())
    tp = float((together * (together - 1) / 2).sum())
    predicted = float((cluster_size * (cluster_size - 1) / 2).sum())
    actual = float((person_size * (person_size - 1) / 2).sum())
    pair_p, pair_r = tp / predicted if predicted else 1.0, tp / actual if actual else 1.0
    clustered = ~alone
    per_person = [len(set(cluster[clustered & (person == p)].tolist())) for p in np.unique(person[clustered])]
    majority = np.zeros(len(cluster_size), np.int64)
    np.maximum.at(majority, pairs // (person.max() + 1), together)
    wrong = float((cluster_size - majority)[np.unique(cluster[clustered])].sum() / max(1, clustered.sum()))
    return {
        "bcubed": 2 * precision * recall / (precision + recall),
        "pairwise": 2 * pair_p * pair_r / (pair_p + pair_r) if tp else 0.0,
        "per_person": float(np.mean(per_person)) if per_person else 0.0,
        "foreign": wrong,
        "clusters": float(len(np.unique(cluster[clustered]))),
    }


# ---------------------------------------------------------------------------------------------- methods


def _as_labels(ids: list[str | None]) -> Labels:
    index: dict[str, int] = {}
    return np.array([-1 if x is None else index.setdefault(x, len(index)) for x in ids], dtype=np.int64)


def engine(faces: Faces, order: npt.NDArray[np.intp] | None = None, rule: bool = True) -> Labels:
    """The engine over all faces in one task; ``rule=False``: every face good and two faces start a cluster."""
    counter = itertools.count()
    rows = np.arange(len(faces.truth)) if order is None else order
    stats = ClusterStats.from_members([], np.zeros((0, DIM), np.float32))
    if rule:
        ids = assign(faces.embeddings[rows], stats, lambda: f"c{next(counter)}", good=faces.good[rows])
    else:
        ids = assign(faces.embeddings[rows], stats, lambda: f"c{next(counter)}", min_good=2)
    out = np.full(len(rows), -1, np.int64)
    out[rows] = _as_labels(ids)
    return out


def engine_incremental(faces: Faces) -> Labels:
    """Ten tasks, as the emulator runs them: stats rebuilt from the stored members, pending faces offered
    again before the new ones; every existing cluster id must survive each task with its members."""
    counter = itertools.count()
    assigned: dict[int, str] = {}
    pending: list[int] = []
    for part in np.array_split(np.arange(len(faces.truth)), INCREMENTAL_TASKS):
        members = sorted(assigned)
        stats = ClusterStats.from_members([assigned[i] for i in members], faces.embeddings[members])
        before = dict(assigned)
        rows = pending + part.tolist()
        ids = assign(faces.embeddings[rows], stats, lambda: f"c{next(counter)}", good=faces.good[rows])
        pending = [r for r, cid in zip(rows, ids, strict=True) if cid is None]
        assigned.update({r: cid for r, cid in zip(rows, ids, strict=True) if cid is not None})
        if any(assigned[i] != cid for i, cid in before.items()):
            raise AssertionError("an incremental task moved a face that already had a cluster")
    return _as_labels([assigned.get(i) for i in range(len(faces.truth))])


def chinese_whispers(faces: Faces) -> Labels:
    import dlib

    vectors = [dlib.vector(row.astype(np.float64).tolist()) for row in faces.embeddings]
    return np.array(dlib.chinese_whispers_clustering(vectors, CW_THRESHOLD), dtype=np.int64)


def hdbscan(faces: Faces) -> Labels:
    from sklearn import cluster

    clusterer = cluster.HDBSCAN(min_cluster_size=2, min_samples=1, copy=True)
    return np.asarray(clusterer.fit_predict(faces.embeddings), dtype=np.int64)


def imm_rule(labels: Labels, good: npt.NDArray[np.bool_]) -> Labels:
    """A peer's clusters under IMM's rule: a cluster without three good faces is no group (its faces alone)."""
    out = labels.copy()
    clustered = labels >= 0
    good_count = np.bincount(labels[clustered], weights=good[clustered].astype(float))
    out[clustered & (good_count[np.maximum(labels, 0)] < FACE_GROUP_MIN_GOOD_FACES)] = -1
    return out


def ideal(faces: Faces) -> Labels:
    """The best any clustering can do under IMM's rule: one group per person with three good faces."""
    good_count = np.bincount(faces.truth, weights=faces.good.astype(float))
    return np.where(good_count[faces.truth] >= FACE_GROUP_MIN_GOOD_FACES, faces.truth, -1)


def _peak_rss_reset() -> int:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return _status("VmRSS")
    except OSError:
        return 0


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _child(fn: Callable[[], Labels], conn: Any) -> None:
    base = _peak_rss_reset()
    start, cpu = time.perf_counter(), time.process_time()
    try:
        labels = fn()
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        conn.send((labels, elapsed, used, max(0, _status("VmHWM") - base), None))
    except Exception as exc:  # reported by the parent
        conn.send((None, 0.0, 0.0, 0, f"{type(exc).__name__}: {exc}"))


def measure(fn: Callable[[], Labels]) -> tuple[Labels, float, float, int]:
    """(labels, wall-clock seconds, CPU seconds of all the child's threads, peak memory rise in bytes)."""
    parent, child = mp.get_context("fork").Pipe(duplex=False)
    proc = mp.get_context("fork").Process(target=_child, args=(fn, child))
    proc.start()
    labels, elapsed, used, peak, error = parent.recv()
    proc.join()
    if error:
        raise RuntimeError(error)
    return labels, elapsed, used, peak


def line(name: str, s: dict[str, float], timing: tuple[float, float, int] | None = None) -> None:
    shown = f"{timing[0]:7.2f} s {timing[1]:7.2f} s {timing[2] / 2**20:5.0f} MiB" if timing else " " * 28
    print(f"  {name:40s} {shown}  BCubed F1 {s['bcubed']:.4f}  pairwise F1 {s['pairwise']:.4f}  "
          f"clusters/person {s['per_person']:.3f}  foreign {s['foreign']:.4f}  clusters {s['clusters']:.0f}",
          flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--shuffles", type=int, default=5, help="extra arrival orders for order sensitivity")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-peers-above", type=int, default=10**9, help="skip the peers above this many faces")
    args = parser.parse_args()
    print(
        f"engine: rms threshold {DEFAULT_THRESHOLD}; chinese whispers threshold {CW_THRESHOLD}; {os.cpu_count()} cores"
    )
    for n in args.sizes:
        faces = Faces(n, args.seed)
        sizes = np.bincount(faces.sizes)
        good_people = len({p for p, g in zip(faces.truth.tolist(), faces.good.tolist(), strict=True) if g})
        print(f"\n{n} faces of {len(faces.sizes)} people (seen once: {sizes[1]}, twice: {sizes[2]}, "
              f"3-9 times: {sizes[3:10].sum()}, 10+: {sizes[10:].sum()}, most: {faces.sizes.max()}); "
              f"{len(faces.twins)} look-alike pairs; {faces.good.mean():.0%} good faces; "
              f"{good_people} people with a good face")  # fmt: skip
        for name, q in faces.quantiles().items():
            print(f"  distances, {name:17s} 1/5/50/95/99%: {' '.join(f'{v:.3f}' for v in q)}")
        rng = np.random.default_rng(args.seed + n)
        print(f"  {'':40s} {'wall':>9s} {'CPU':>9s} {'peak':>9s}")
        line("ideal under IMM's rule (upper bound)", scores(ideal(faces), faces.truth))
        got: dict[str, tuple[dict[str, float], float, float]] = {}
        runs: list[tuple[str, Callable[[], Labels]]] = [
            (ENGINE, partial(engine, faces)),
            (f"engine, IMM rule, {INCREMENTAL_TASKS} incremental tasks", partial(engine_incremental, faces)),
            (ENGINE_OFF, partial(engine, faces, rule=False)),
        ]
        if n <= args.skip_peers_above:
            runs += [(CW, partial(chinese_whispers, faces)), (HDBSCAN, partial(hdbscan, faces))]
        for name, fn in runs:
            labels, elapsed, used, peak = measure(fn)
            got[name] = (scores(labels, faces.truth), elapsed, used)
            line(name, got[name][0], (elapsed, used, peak))
            if name in (CW, HDBSCAN):
                got[name + RULED] = (scores(imm_rule(labels, faces.good), faces.truth), elapsed, used)
                line(name + RULED, got[name + RULED][0])
        spread = [scores(engine(faces, rng.permutation(n)), faces.truth) for _ in range(args.shuffles)]
        for key in ("bcubed", "pairwise") if spread else ():
            values = [s[key] for s in spread]
            print(f"  engine, IMM rule, {args.shuffles} other orders: {key} F1 {min(values):.4f}-{max(values):.4f}")
        if HDBSCAN in got:
            (ours, t_ours, cpu_ours), (peer, t_peer, cpu_peer) = got[ENGINE], got[HDBSCAN + RULED]
            print(
                f"  engine vs HDBSCAN, both under IMM's rule: BCubed F1 {ours['bcubed'] - peer['bcubed']:+.4f}, "
                f"pairwise F1 {ours['pairwise'] - peer['pairwise']:+.4f}; {t_peer / t_ours:.1f}x faster "
                f"(wall-clock), {cpu_peer / max(cpu_ours, 1e-9):.1f}x less CPU"
            )
            off, raw = got[ENGINE_OFF][0], got[HDBSCAN][0]
            print(
                f"  engine vs HDBSCAN, rule off: BCubed F1 {off['bcubed'] - raw['bcubed']:+.4f}, "
                f"pairwise F1 {off['pairwise'] - raw['pairwise']:+.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
