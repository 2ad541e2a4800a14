"""Issue 25's hostile objects against `imm-faces emulator` (a child process): 40 heavy requests at once (thumbnails
of a 12,000 x 12,000 PNG, a process with no resize, streamed GETs and HEADs of a 2 GiB sparse object, GETs of a
FIFO, indexing, SearchImageFigureCluster) while IMM, STS and small OSS reads are timed; prints the latencies,
the heavy requests' outcomes and the emulator's peak and final RSS (VmHWM, VmRSS).

    python benchmarks/hostile.py [--thumbnails N] [--streamed-gets N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from tests.emulator.hostile import hostile_root, measure, memory_kib, release_fifo
from tests.processes import emulator_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thumbnails", type=int, default=12, help="thumbnails of the 144 MP PNG (default 12)")
    parser.add_argument("--streamed-gets", type=int, default=2, help="full GETs of the 2 GiB object (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imm-hostile-") as tmp:
        root = Path(tmp) / "oss"
        hostile_root(root)
        try:
            with emulator_process(Path(tmp) / "imm.db", root) as (proc, endpoint):
                idle = memory_kib(proc.pid)
                result = measure(endpoint, proc.pid, DEFAULT_ACCESS_KEY, args.thumbnails, args.streamed_gets)
        finally:
            release_fifo(root)
    print(json.dumps({"rss_idle_mib": idle["VmRSS"] // 1024, **result.summary()}, indent=2))


if __name__ == "__main__":
    main()
