"""How many GetFigureCluster requests per second the emulator sustains on this machine.

    python benchmarks/emulator_get_figure_cluster.py [--seconds 3] [--rounds 3] [--processes 2] [--threads 4]

The emulator runs as `imm-faces emulator` in its own process on a state file prepared beforehand (two people,
five photos, clustered). Load comes from client processes, each with several threads, each thread with its own
signed `ImmClient` (ACS3-HMAC-SHA256, as in production). The peer, measured in the same run against the
same server process with the same load shape, is the emulator's readiness endpoint: an unsigned GET that
touches neither authentication nor the store. The ratio is the share of the bare HTTP rate that a full
GetFigureCluster (signature check, parameter validation, SQLite read, the stored JSON sent as it is) keeps.

The two are measured alternately for ``--rounds`` rounds and each is reported by its median (the machine may
be shared). Beside the rates it prints the CPU time per request of the server process and of the load
processes: on a machine whose cores the load saturates, that is what bounds the rate.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from imm_faces.emulator.front_door import READY_PATH
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient, RetryPolicy
from imm_faces.runtime.operations import figure_clusters
from tests.fakes import SidecarAnalyzer
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, cluster_ids, deploy
from tests.processes import emulator_process, loopback_only

CREDS = DEFAULT_ACCESS_KEY


def prepare(db: Path, oss_root: Path) -> str:
    """Fill a state file with clustered photos (in-process, fake analyzer); return one cluster id."""
    with (
        Emulator(db=db, oss_root=oss_root, analyzer=SidecarAnalyzer(oss_root)) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=CREDS) as client,
    ):
        deploy(client, oss_root, TWO_PEOPLE)
        return cluster_ids(client)[0]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(kind: str, endpoint: str, cluster_id: str, seconds: float, threads: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    cpu = time.process_time()
    counts = [0] * threads
    errors = [0] * threads
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        if kind == "ready":
            with httpx.Client(trust_env=False) as http:
                while time.monotonic() < deadline:
                    ok = http.get(endpoint + READY_PATH).status_code == 200
                    counts[i] += ok
                    errors[i] += not ok
            return
        with ImmClient(endpoint=endpoint, credentials=CREDS, retry=RetryPolicy(max_attempts=1)) as client:
            while time.monotonic() < deadline:
                try:
                    client.call(
                        figure_clusters.GetFigureCluster,
                        project_name=PROJECT,
                        dataset_name=DATASET,
                        object_id=cluster_id,
                    )
                    counts[i] += 1
                except Exception:
                    errors[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((sum(counts), sum(errors), time.process_time() - cpu))


def measure(
    kind: str, endpoint: str, cluster_id: str, seconds: float, processes: int, threads: int, server: int
) -> tuple[float, int, float, float]:
    """(requests/s, errors, server CPU ms per request, load-process CPU ms per request)."""
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [
        mp.Process(target=_load, args=(kind, endpoint, cluster_id, seconds, threads, out)) for _ in range(processes)
    ]
    start = time.monotonic()
    server_cpu = _cpu_seconds(server)
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - start
    done = max(1, sum(r[0] for r in results))
    server_ms = (_cpu_seconds(server) - server_cpu) * 1000 / done
    return done / elapsed, sum(r[1] for r in results), server_ms, sum(r[2] for r in results) * 1000 / done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternate measurements of each kind")
    parser.add_argument("--processes", type=int, default=2, help="load-generating processes")
    parser.add_argument("--threads", type=int, default=4, help="client threads per process")
    args = parser.parse_args()
    loopback_only()

    with tempfile.TemporaryDirectory(prefix="imm-bench-") as tmp:
        db, oss_root = Path(tmp) / "state.db", Path(tmp) / "oss"
        cluster_id = prepare(db, oss_root)
        with emulator_process(db, oss_root) as (server, endpoint):
            print(
                f"cpus={os.cpu_count()} load={args.processes} processes x {args.threads} threads, {args.rounds} "
                f"rounds of {args.seconds:g} s per kind, server: imm-faces emulator (1 process)"
            )
            measure("get", endpoint, cluster_id, 1.0, args.processes, args.threads, server.pid)  # warm-up
            labels = {
                "ready": "peer: GET /-/ready (unsigned, no store)",
                "get": "GetFigureCluster (signed V3, SQLite read)",
            }
            runs: dict[str, list[tuple[float, int, float, float]]] = {"ready": [], "get": []}
            for _ in range(args.rounds):
                for kind, results in runs.items():
                    results.append(
                        measure(kind, endpoint, cluster_id, args.seconds, args.processes, args.threads, server.pid)
                    )
            medians = {}
            for kind, results in runs.items():
                rate, _, server_ms, client_ms = sorted(results)[len(results) // 2]
                medians[kind] = (rate, server_ms, client_ms)
                print(
                    f"{labels[kind]:45s} {rate:8.0f} req/s   errors={sum(r[1] for r in results)}   "
                    f"CPU per request: server {server_ms:.3f} ms, load processes {client_ms:.3f} ms  "
                    f"(rates: {', '.join(f'{r[0]:.0f}' for r in results)})"
                )
            (ready, ready_server, ready_client), (get, get_server, get_client) = medians["ready"], medians["get"]
            print(f"GetFigureCluster / peer ratio: {get / ready:.2f}")
            bound = (ready_server + ready_client) / (get_server + get_client)
            print(
                f"CPU-bound estimate of that ratio: {bound:.2f}; "
                f"GetFigureCluster's extra CPU: server +{get_server - ready_server:.3f} ms, "
                f"clients +{get_client - ready_client:.3f} ms per request"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
