"""Per-image face analysis time, the gain from using both cores, and the distances that set the threshold.

    python benchmarks/face_analysis.py [--rounds 3]

Runs ``imm_faces.emulator.vision.DlibAnalyzer`` over the sample photos (``imm_faces.emulator.sample_photos``:
fetched from PyPI and cached). The peer for the two-core figure is the same analyzer on one thread in the same run. Then
prints every same-person and different-person embedding distance, against the clustering threshold.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imm_faces.emulator.clustering import DEFAULT_THRESHOLD
from imm_faces.emulator.sample_photos import write_sample_bucket
from imm_faces.emulator.vision import DlibAnalyzer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the photos for the throughput figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sample = write_sample_bucket(Path(tmp))
        photos = {key: (Path(tmp) / key).read_bytes() for key in sample.keys}
        analyzer = DlibAnalyzer()
        analyzer.analyze(photos[sample.keys[0]], sample.keys[0])  # warm-up: lazy model sessions

        print(f"{'photo':28s} {'pixels':>10s} {'faces':>5s} {'ms':>7s}")
        results = {}
        for key, data in photos.items():
            start = time.perf_counter()
            results[key] = analyzer.analyze(data, key)
            ms = (time.perf_counter() - start) * 1000
            r = results[key]
            print(f"{key:28s} {(r.width or 0) * (r.height or 0):10d} {len(r.faces):5d} {ms:7.0f}")

        work = list(photos.items()) * args.rounds
        rates = []
        for workers in (1, 2):
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda kv: analyzer.analyze(kv[1], kv[0]), work[:workers]))  # per-thread models
                start = time.perf_counter()
                list(pool.map(lambda kv: analyzer.analyze(kv[1], kv[0]), work))
                rates.append(len(work) / (time.perf_counter() - start))
            print(f"{workers} thread(s): {rates[-1]:.2f} images/s ({1000 / rates[-1]:.0f} ms per image)")
        print(f"two threads / one thread (peer): {rates[1] / rates[0]:.2f}x")

        faces = {p: [results[k].faces[0].embedding for k in keys] for p, keys in sample.people.items()}
        same = [float(np.linalg.norm(a - b)) for g in faces.values() for i, a in enumerate(g) for b in g[i + 1 :]]
        people = list(faces)
        different = [
            float(np.linalg.norm(a - b))
            for i, p in enumerate(people)
            for q in people[i + 1 :]
            for a in faces[p]
            for b in faces[q]
        ]
        print(f"same person:      {len(same):3d} pairs, distance {min(same):.3f} .. {max(same):.3f}")
        print(f"different people: {len(different):3d} pairs, distance {min(different):.3f} .. {max(different):.3f}")
        print(
            f"threshold {DEFAULT_THRESHOLD}: margin {DEFAULT_THRESHOLD - max(same):.3f} below, "
            f"{min(different) - DEFAULT_THRESHOLD:.3f} above"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
