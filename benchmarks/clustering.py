"""Face clustering quality and cost on synthetic dlib-like embeddings: the emulator's engine against HDBSCAN (and
dlib's chinese whispers), measured in the same run, in process and end to end through the emulator.

    pip install -e '.[dev,bench]'          # dlib comes with the vision extra; HDBSCAN with scikit-learn (bench)
    python benchmarks/clustering.py [--population crowded zipf] [--sizes 2000 20000] [--shuffles 5]
                                    [--skip-peers-above N] [--no-chinese-whispers] [--end-to-end]

Two populations of 128-d faces, each in random arrival order (its own seeded generator; the script prints the
distance quantiles it produced, so the claims below can be checked):

- ``crowded`` (issue 23: what real photo libraries have and the first benchmark lacked). One photo per face,
  every face good by IMM's rule (so the rule removes only people seen fewer than three times).
  - heavy people: one per 2,000 faces with 150-200 photos each, their photos 1.2x more spread than others';
  - a Zipf middle: of the other people 23% are seen once, 11.5% twice, the rest 2 + Zipf(1.95) times (capped
    at 100), so many are seen 3-5 times;
  - crowded demographics: a person's centre is one of 8 subgroup centres (unequal shares, 30% to 5%) plus a
    personal offset (anisotropic, per-dimension scales 1.6 down to 0.4), so strangers of one subgroup sit
    closer to each other (their photos ~0.6-0.85 apart) than to the rest (~0.75-1.0);
  - look-alikes: each heavy person gets one or two, and 4% of the others one, a stranger whose centre is
    0.5-0.6 from theirs (dlib's own same-person threshold is 0.6);
  - a photo is its person's centre plus isotropic noise: each person has a spread (log-normal, median 0.27,
    sd 0.12) and each photo its own noise scale (log-normal, sd 0.15), so photos of one person are ~0.25-0.6
    apart, a heavy person's up to ~0.7.
  Its parameters reproduce what issue 23 measured on its population (at 9f1a754, 20,000 faces): the engine of
  that commit got BCubed P 0.917 and R 0.922 here (the issue: 0.932 and 0.929), with 426 groups holding
  several people (about 330); HDBSCAN P 0.996, R 0.964 (0.998, 0.965).
- ``zipf`` (the first benchmark's, unchanged): photo counts from a Zipf law (exponent 2, capped at 200); centres
  from one anisotropic Gaussian; per-person (sd 0.12) and per-photo (sd 0.1) log-normal spread; 30% of faces
  not good (and 25% noisier); 5% of people get a "twin" 0.37 away.

Scores against the true identities, every face counted (a face in no group is a group of its own): BCubed
precision and recall (per face: the share of its group that is its person, the share of its person in its
group) and their F1, pairwise precision, recall and F1 (over pairs of faces placed together), groups holding
several people, people split over several groups (among people with a grouped face), and the unclustered share.

Measured: the emulator's engine (``imm_faces.emulator.clustering.assign``) with IMM's three-good-faces rule as
the emulator runs it, in one task and in ten incremental tasks (stored members rebuilt between tasks, ids
checked stable), and over several other arrival orders; with ``--end-to-end`` also through the emulator itself
(an ``Emulator`` in a child process whose analyzer hands out the population's faces by file name): the files
indexed with ``BatchIndexFileMeta``, one ``CreateFigureClusteringTask`` (or ten, a tenth of the files indexed
before each), the memberships read back with ``GetFileMeta``. Peers: HDBSCAN (``sklearn.cluster.HDBSCAN``,
min_cluster_size 2, min_samples 1, Euclidean) and dlib's chinese whispers (threshold 0.5, as in dlib's example),
each also under IMM's rule (a group without three good faces is no group). Time: wall-clock and CPU (every
thread of the process that did the work: a forked child per method; the emulator's process for an end-to-end
task); the machine is shared, so compare CPU. Peak memory: the rise of the child's resident set (VmHWM).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imm_faces.emulator.analysis import FaceRecord, ImageAnalysis
from imm_faces.emulator.clustering import ClusterStats, assign
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import datasets, files, projects, query
from imm_faces.runtime.operations import tasks as task_ops
from imm_faces.runtime.rules import BATCH_INDEX_MAX_FILES, FACE_GROUP_MIN_GOOD_FACES
from imm_faces.runtime.waiters import wait_for_task

DIM = 128
CW_THRESHOLD = 0.5
INCREMENTAL_TASKS = 10
ENGINE, ENGINE_TEN = "engine, one task", f"engine, {INCREMENTAL_TASKS} incremental tasks"
CW, HDBSCAN, RULED = "dlib chinese whispers", "HDBSCAN (sklearn)", " + IMM rule"

Labels = npt.NDArray[np.int64]  # -1: in no group
F64 = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------------------------- populations


@dataclass
class Population:
    name: str
    embeddings: npt.NDArray[np.float32]  # in arrival order
    truth: Labels  # person of each face
    good: npt.NDArray[np.bool_]  # good by IMM's rule
    sizes: npt.NDArray[np.int64]  # photos per person
    twins: list[tuple[int, int]]  # look-alike pairs of people
    heavy: int = 0  # people 0..heavy-1 are the heavy ones

    def describe(self) -> str:
        s = self.sizes
        return (
            f"{len(self.truth)} faces of {len(s)} people (seen once: {(s == 1).sum()}, twice: {(s == 2).sum()}, "
            f"3-5 times: {((s >= 3) & (s <= 5)).sum()}, 6-99: {((s >= 6) & (s < 100)).sum()}, 100+: "
            f"{(s >= 100).sum()}, most: {s.max()}); {(s >= 3).sum()} people with 3+ photos; {len(self.twins)} "
            f"look-alike pairs; {self.good.mean():.0%} good faces"
        )

    def quantiles(self, seed: int = 0) -> dict[str, F64]:
        rng = np.random.default_rng(seed)
        n, qs = len(self.truth), [0.01, 0.05, 0.5, 0.95, 0.99]
        i, j = rng.integers(0, n, 200_000), rng.integers(0, n, 200_000)
        keep = self.truth[i] != self.truth[j]
        different = np.linalg.norm(self.embeddings[i[keep]] - self.embeddings[j[keep]], axis=1)
        members: dict[int, list[int]] = {}
        for k, person in enumerate(self.truth.tolist()):
            members.setdefault(person, []).append(k)
        same = [
            float(np.linalg.norm(self.embeddings[a] - self.embeddings[b]))
            for rows in members.values()
            for a, b in itertools.islice(itertools.combinations(rows, 2), 30)
        ]
        twins = [
            float(np.linalg.norm(self.embeddings[a] - self.embeddings[b]))
            for p, q in self.twins
            for a in members[p][:5]
            for b in members[q][:5]
        ]
        return {
            name: np.quantile(values, qs)
            for name, values in (("same person", same), ("different people", different), ("look-alike pairs", twins))
        }


def _anisotropic() -> F64:
    scales = np.linspace(1.6, 0.4, DIM)
    return scales / np.sqrt((scales**2).mean())  # type: ignore[no-any-return]


def _arrive(
    name: str,
    rng: np.random.Generator,
    faces: F64,
    truth: Labels,
    good: npt.NDArray[np.bool_],
    sizes: npt.NDArray[np.int64],
    twins: list[tuple[int, int]],
    heavy: int = 0,
) -> Population:
    order = rng.permutation(len(truth))
    return Population(name, faces[order].astype(np.float32), truth[order], good[order], sizes, twins, heavy)


def crowded(n: int, seed: int) -> Population:
    """Issue 23's population (see the module docstring)."""
    rng = np.random.default_rng(seed)
    heavy = max(1, round(n / 2000))
    counts = list(rng.integers(150, 201, heavy))
    while sum(counts) < n:
        u = rng.random()
        counts.append(1 if u < 0.23 else 2 if u < 0.345 else int(min(2 + rng.zipf(1.95), 100)))
    counts[-1] -= sum(counts) - n
    sizes = np.array([c for c in counts if c > 0])
    people = len(sizes)
    weights = np.array([0.3, 0.2, 0.14, 0.1, 0.09, 0.07, 0.05, 0.05])
    subgroups = rng.normal(size=(len(weights), DIM)) * 0.32 / np.sqrt(DIM)
    centres = subgroups[rng.choice(len(weights), size=people, p=weights / weights.sum())]
    centres += rng.normal(size=(people, DIM)) * _anisotropic() * 0.40 / np.sqrt(DIM)
    twins: list[tuple[int, int]] = []
    taken = set(range(heavy))

    def lookalike(person: int) -> None:
        while (other := int(rng.integers(heavy, people))) in taken:
            pass
        taken.add(other)
        direction = rng.normal(size=DIM)
        centres[other] = centres[person] + rng.uniform(0.5, 0.6) * direction / np.linalg.norm(direction)
        twins.append((person, other))

    for person in range(heavy):
        for _ in range(int(rng.integers(1, 3))):
            lookalike(person)
    for person in np.flatnonzero(rng.random(people) < 0.04).tolist():
        if person not in taken:
            taken.add(person)
            lookalike(person)
    spread = 0.27 * np.exp(rng.normal(scale=0.12, size=people))
    spread[:heavy] *= 1.2
    truth = np.repeat(np.arange(people), sizes)
    noise = spread[truth] * np.exp(rng.normal(scale=0.15, size=n))
    faces = centres[truth] + rng.normal(size=(n, DIM)) * noise[:, None] / np.sqrt(DIM)
    return _arrive("crowded", rng, faces, truth, np.ones(n, dtype=bool), sizes, twins, heavy)


def zipf(n: int, seed: int) -> Population:
    """The first benchmark's population (see the module docstring)."""
    rng = np.random.default_rng(seed)
    sizes_list: list[int] = []
    while sum(sizes_list) < n:
        sizes_list.append(int(min(rng.zipf(2.0), 200)))
    sizes_list[-1] -= sum(sizes_list) - n
    sizes = np.array([s for s in sizes_list if s > 0])
    people = len(sizes)
    centres = rng.normal(size=(people, DIM)) * _anisotropic() * 0.68 / np.sqrt(2 * DIM)
    twins: list[tuple[int, int]] = []
    for k in np.flatnonzero(rng.random(people) < 0.05):
        twin = (int(k) + 1) % people
        offset = rng.normal(size=DIM)
        centres[twin] = centres[k] + 0.37 * offset / np.linalg.norm(offset)
        twins.append((int(k), twin))
    spread = 0.37 * np.exp(rng.normal(scale=0.12, size=people))
    truth = np.repeat(np.arange(people), sizes)
    good = rng.random(n) < 0.7
    noise = np.where(good, 1.0, 1.25) * np.exp(rng.normal(scale=0.1, size=n)) * spread[truth]
    faces = centres[truth] + rng.normal(size=(n, DIM)) * noise[:, None] / np.sqrt(2 * DIM)
    return _arrive("zipf", rng, faces, truth, good, sizes, twins)


POPULATIONS: dict[str, Callable[[int, int], Population]] = {"crowded": crowded, "zipf": zipf}


# ---------------------------------------------------------------------------------------------- scores


@dataclass
class Score:
    precision: float  # BCubed
    recall: float
    f1: float
    pair_precision: float
    pair_recall: float
    pair_f1: float
    groups: int
    mixed_groups: int  # groups holding faces of several people
    split_people: int  # people whose grouped faces are in several groups
    unclustered: float  # share of faces in no group

    def line(self) -> str:
        return (
            f"BCubed P {self.precision:.4f} R {self.recall:.4f} F1 {self.f1:.4f}  pairwise P {self.pair_precision:.4f} "
            f"R {self.pair_recall:.4f} F1 {self.pair_f1:.4f}  groups {self.groups} (several people: "
            f"{self.mixed_groups}; people split: {self.split_people})  unclustered {self.unclustered:.1%}"
        )


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score(labels: Labels, truth: Labels) -> Score:
    grouped = labels >= 0
    filled = labels.copy()
    filled[~grouped] = labels.max(initial=0) + 1 + np.arange(int((~grouped).sum()))  # a face in no group: alone
    group = np.unique(filled, return_inverse=True)[1]
    person = np.unique(truth, return_inverse=True)[1]
    width = int(person.max()) + 1
    pair = group.astype(np.int64) * width + person
    _, inverse, together = np.unique(pair, return_inverse=True, return_counts=True)
    group_size, person_size = np.bincount(group), np.bincount(person)
    both = together[inverse]
    precision = float((both / group_size[group]).mean())
    recall = float((both / person_size[person]).mean())
    tp = float((together * (together - 1) / 2).sum())
    predicted = float((group_size * (group_size - 1) / 2).sum())
    actual = float((person_size * (person_size - 1) / 2).sum())
    pair_p, pair_r = tp / predicted if predicted else 1.0, tp / actual if actual else 1.0
    seen = np.unique(pair[grouped])  # (group, person) pairs among grouped faces
    people_in_group = np.bincount(seen // width)
    groups_of_person = np.bincount(seen % width)
    return Score(
        precision,
        recall,
        _f1(precision, recall),
        pair_p,
        pair_r,
        _f1(pair_p, pair_r),
        len(np.unique(group[grouped])),
        int((people_in_group > 1).sum()),
        int((groups_of_person > 1).sum()),
        float((~grouped).mean()),
    )


# ---------------------------------------------------------------------------------------------- methods


def _as_labels(ids: list[str | None]) -> Labels:
    index: dict[str, int] = {}
    return np.array([-1 if x is None else index.setdefault(x, len(index)) for x in ids], dtype=np.int64)


def engine(pop: Population, order: npt.NDArray[np.intp] | None = None) -> Labels:
    """The engine over all faces in one task (in ``order`` when given)."""
    counter = itertools.count()
    rows = np.arange(len(pop.truth)) if order is None else order
    stats = ClusterStats.from_members([], np.zeros((0, DIM), np.float32))
    ids = assign(pop.embeddings[rows], stats, lambda: f"c{next(counter)}", good=pop.good[rows])
    out = np.full(len(rows), -1, np.int64)
    out[rows] = _as_labels(ids)
    return out


def engine_incremental(pop: Population) -> Labels:
    """Ten tasks, as the emulator runs them: stats rebuilt from the stored members, pending faces offered
    again before the new ones; every existing group id must survive each task with its members."""
    counter = itertools.count()
    assigned: dict[int, str] = {}
    pending: list[int] = []
    for part in np.array_split(np.arange(len(pop.truth)), INCREMENTAL_TASKS):
        members = sorted(assigned)
        stats = ClusterStats.from_members([assigned[i] for i in members], pop.embeddings[members])
        before = dict(assigned)
        rows = pending + part.tolist()
        ids = assign(pop.embeddings[rows], stats, lambda: f"c{next(counter)}", good=pop.good[rows])
        pending = [r for r, cid in zip(rows, ids, strict=True) if cid is None]
        assigned.update({r: cid for r, cid in zip(rows, ids, strict=True) if cid is not None})
        if any(assigned[i] != cid for i, cid in before.items()):
            raise AssertionError("an incremental task moved a face that already had a group")
    return _as_labels([assigned.get(i) for i in range(len(pop.truth))])


def chinese_whispers(pop: Population) -> Labels:
    import dlib

    vectors = [dlib.vector(row.astype(np.float64).tolist()) for row in pop.embeddings]
    return np.array(dlib.chinese_whispers_clustering(vectors, CW_THRESHOLD), dtype=np.int64)


def hdbscan(pop: Population) -> Labels:
    from sklearn import cluster

    clusterer = cluster.HDBSCAN(min_cluster_size=2, min_samples=1, copy=True)
    return np.asarray(clusterer.fit_predict(pop.embeddings), dtype=np.int64)


def imm_rule(labels: Labels, good: npt.NDArray[np.bool_]) -> Labels:
    """A peer's clusters under IMM's rule: a cluster without three good faces is no group (its faces alone)."""
    out = labels.copy()
    clustered = labels >= 0
    good_count = np.bincount(labels[clustered], weights=good[clustered].astype(float))
    out[clustered & (good_count[np.maximum(labels, 0)] < FACE_GROUP_MIN_GOOD_FACES)] = -1
    return out


def ideal(pop: Population) -> Labels:
    """The best any clustering can do under IMM's rule: one group per person with three good faces."""
    good_count = np.bincount(pop.truth, weights=pop.good.astype(float))
    return np.where(good_count[pop.truth] >= FACE_GROUP_MIN_GOOD_FACES, pop.truth, -1)


# ---------------------------------------------------------------------------------------------- in a child


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


# ---------------------------------------------------------------------------------------------- end to end


class PlantedFaces:
    """An analyzer that hands out the population's faces: file ``<k>.jpg`` holds face ``k`` (100 x 100 px,
    frontal; FaceQuality 0.95 when good by IMM's rule, else 0.5)."""

    faces_available = True

    def __init__(self, pop: Population) -> None:
        self.pop = pop

    def analyze(self, data: bytes, filename: str) -> ImageAnalysis:
        k = int(filename.split(".", maxsplit=1)[0])
        face = FaceRecord(
            embedding=self.pop.embeddings[k],
            boundary=(10, 10, 100, 100),
            quality=0.95 if self.pop.good[k] else 0.5,
            head_pose=(0.0, 0.0, 0.0),
        )
        return ImageAnalysis("image", "image/jpeg", 640, 480, 1, {}, [face])


def _serve(pop: Population, oss_root: str, conn: Any) -> None:
    with Emulator(oss_root=oss_root, analyzer=PlantedFaces(pop)) as emu:
        conn.send(emu.endpoint)
        conn.recv()  # until the parent is done


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class EndToEnd:
    labels: Labels
    task_cpu: list[float]  # the emulator's CPU seconds during each clustering task
    task_wall: list[float]
    read_wall: float  # reading every file's groups back


def end_to_end(pop: Population, tasks: int = 1) -> EndToEnd:
    """Index the population through a running emulator, cluster in ``tasks`` tasks (a share of the files indexed
    before each), then read each file's FigureClusterId with GetFileMeta."""
    n = len(pop.truth)
    with tempfile.TemporaryDirectory(prefix="imm-bench-") as root:
        (Path(root) / "faces").mkdir()
        for k in range(n):
            (Path(root) / "faces" / f"{k}.jpg").write_bytes(b"face")
        ctx = mp.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(pop, root, child))
        proc.start()
        endpoint = parent.recv()
        task_cpu, task_wall = [], []
        try:
            with ImmClient(endpoint=endpoint, credentials=DEFAULT_ACCESS_KEY, timeout=120) as client:
                client.call(projects.CreateProject, project_name="bench")
                client.call(datasets.CreateDataset, project_name="bench", dataset_name="faces")
                indexed = 0
                for part in np.array_split(np.arange(n), tasks):
                    for batch in np.array_split(part, max(1, -(-len(part) // BATCH_INDEX_MAX_FILES))):
                        client.call(
                            files.BatchIndexFileMeta,
                            project_name="bench",
                            dataset_name="faces",
                            files=[{"URI": f"oss://faces/{k}.jpg"} for k in batch.tolist()],
                        )
                    indexed += len(part)
                    while (
                        client.call(query.SimpleQuery, project_name="bench", dataset_name="faces").total_hits or 0
                    ) < indexed:
                        time.sleep(0.2)
                    cpu, start = _cpu_seconds(proc.pid or 0), time.perf_counter()
                    task = client.call(task_ops.CreateFigureClusteringTask, project_name="bench", dataset_name="faces")
                    state = wait_for_task(client, "bench", task.task_id or "", timeout=3600, interval=0.5)
                    task_wall.append(time.perf_counter() - start)
                    task_cpu.append(_cpu_seconds(proc.pid or 0) - cpu)
                    if state.status != task_ops.TASK_SUCCEEDED:
                        raise RuntimeError(f"clustering task {state.status}: {state.code} {state.message}")
                start = time.perf_counter()
                ids: list[str | None] = []
                for k in range(n):
                    got = client.call(
                        files.GetFileMeta,
                        project_name="bench",
                        dataset_name="faces",
                        uri=f"oss://faces/{k}.jpg",
                        with_fields=["Figures"],
                    )
                    figures = (got.files or [])[0].figures or []
                    ids.append(figures[0].figure_cluster_id if figures else None)
                read_wall = time.perf_counter() - start
        finally:
            parent.send("stop")
            proc.join()
    return EndToEnd(_as_labels(ids), task_cpu, task_wall, read_wall)


# ---------------------------------------------------------------------------------------------- the run


def show(name: str, s: Score, timing: tuple[float, float, int] | None = None) -> None:
    shown = f"{timing[0]:7.2f} s {timing[1]:7.2f} s {timing[2] / 2**20:5.0f} MiB" if timing else " " * 28
    print(f"  {name:42s} {shown}  {s.line()}", flush=True)


def run(pop: Population, args: argparse.Namespace) -> None:
    n = len(pop.truth)
    print(f"\n{pop.name}: {pop.describe()}")
    for name, q in pop.quantiles().items():
        print(f"  distances, {name:17s} 1/5/50/95/99%: {' '.join(f'{v:.3f}' for v in q)}")
    print(f"  {'':42s} {'wall':>9s} {'CPU':>9s} {'peak':>9s}")
    show("ideal under IMM's rule (upper bound)", score(ideal(pop), pop.truth))
    got: dict[str, tuple[Score, float]] = {}
    runs: list[tuple[str, Callable[[], Labels]]] = [
        (ENGINE, partial(engine, pop)),
        (ENGINE_TEN, partial(engine_incremental, pop)),
    ]
    if n <= args.skip_peers_above:
        runs += [] if args.no_chinese_whispers else [(CW, partial(chinese_whispers, pop))]
        runs += [(HDBSCAN, partial(hdbscan, pop))]
    for name, fn in runs:
        labels, elapsed, used, peak = measure(fn)
        got[name] = (score(labels, pop.truth), used)
        show(name, got[name][0], (elapsed, used, peak))
        if name in (CW, HDBSCAN):
            got[name + RULED] = (score(imm_rule(labels, pop.good), pop.truth), used)
            show(name + RULED, got[name + RULED][0])
    rng = np.random.default_rng(args.seed + n)
    spread = [score(engine(pop, rng.permutation(n)), pop.truth) for _ in range(args.shuffles)]
    if spread:
        f1s, pairs, ps = ([getattr(s, key) for s in spread] for key in ("f1", "pair_f1", "precision"))
        print(
            f"  engine, {args.shuffles} other orders: BCubed F1 {min(f1s):.4f}-{max(f1s):.4f}, pairwise F1 "
            f"{min(pairs):.4f}-{max(pairs):.4f}, BCubed P {min(ps):.4f}-{max(ps):.4f}"
        )
    one, ten = got[ENGINE][0], got[ENGINE_TEN][0]
    print(
        f"  {INCREMENTAL_TASKS} incremental tasks vs one: BCubed F1 {ten.f1 - one.f1:+.4f}, pairwise F1 "
        f"{ten.pair_f1 - one.pair_f1:+.4f}"
    )
    if HDBSCAN in got:
        (ours, cpu_ours), (peer, cpu_peer) = got[ENGINE], got[HDBSCAN + RULED]
        print(
            f"  engine vs HDBSCAN, both under IMM's rule: BCubed F1 {ours.f1 - peer.f1:+.4f}, pairwise F1 "
            f"{ours.pair_f1 - peer.pair_f1:+.4f}; CPU {cpu_ours:.2f} s vs {cpu_peer:.2f} s: "
            f"{cpu_ours / max(cpu_peer, 1e-9):.3f} of HDBSCAN's"
        )
    if args.end_to_end:
        for tasks in (1, INCREMENTAL_TASKS):
            start = time.perf_counter()
            e2e = end_to_end(pop, tasks)
            label = f"through the emulator, {tasks} task{'s' if tasks > 1 else ''}"
            show(label, score(e2e.labels, pop.truth))
            print(
                f"  {'':42s} task CPU (emulator process) {sum(e2e.task_cpu):.2f} s, task wall "
                f"{sum(e2e.task_wall):.2f} s; GetFileMeta x {n}: {e2e.read_wall:.1f} s; in all "
                f"{time.perf_counter() - start:.0f} s",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", nargs="+", choices=sorted(POPULATIONS), default=["crowded", "zipf"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--shuffles", type=int, default=5, help="extra arrival orders for order sensitivity")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-peers-above", type=int, default=10**9, help="skip the peers above this many faces")
    parser.add_argument("--no-chinese-whispers", action="store_true", help="HDBSCAN only (chinese whispers is slow)")
    parser.add_argument("--end-to-end", action="store_true", help="also cluster through the emulator")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    for n in args.sizes:
        for name in args.population:
            run(POPULATIONS[name](n, args.seed), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
