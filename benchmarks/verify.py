"""`imm-faces verify` on 1,000 figure clusters against the loop a user would write with Alibaba's SDK.

    python benchmarks/verify.py [--clusters 1000] [--rounds 3] [--process-rounds 5] [--threads 8]

The emulator runs as `imm-faces emulator` in its own process, on a state file written beforehand: a project and
dataset made through the API, then N clusters of three photos each (one face per photo) written straight into
the store, cloned from a cluster and files the emulator produced itself (so documents have their real size).

Contenders, measured in this process in alternating rounds (wall time and this process's CPU time, which
counts every thread; the server's CPU is not counted for anyone):

* ``sdk sequential``: alibabacloud-imm20200930's client paging QueryFigureClusters (100 per page), then
  GetFigureCluster for every cluster, one at a time (the naive loop);
* ``sdk threaded``: the same, GetFigureCluster from as many threads as verify keeps requests in flight
  (``--threads``, default verify's 8; a client per thread);
* ``verify``: ``verify_deployment`` as the CLI runs it (default sample 25, file consistency included), which
  checks strictly more than both loops; and once more without the SimpleQuery consistency checks
  (``--no-consistency``), which is what the loops check, plus the bulk cross-check.

Then the same comparison as whole processes, what CI runs and pays (interpreter start-up and imports included):
``imm-faces verify --outputs FILE --json --quiet`` against ``python benchmarks/sdk_loop.py`` (the sequential
loop as a script importing only the SDK), alternating ``--process-rounds`` times after a warm-up each; wall time,
the process's CPU (user + system) and the server's. Bytecode is cached for both (``PYTHONDONTWRITEBYTECODE`` is
dropped for them: an installed package has its ``.pyc`` files). Last, the start-up of ``imm-faces verify --help``
with ``python -X importtime``. On a machine shared with other work, compare the CPU columns: wall times there
measure the queue for the cores as much as the programs.

Where the time goes (2026-12-07, the whole ``imm-faces verify`` process on this state, ``valgrind --tool=callgrind``
for instruction counts, py-spy for shares): about half is start-up, importing what verify runs (pydantic with
pydantic-core, httpx with httpcore, asyncio, then anyio at the first request; this package's ~100 model classes),
the other half the run: 49 requests at ~1 ms of client CPU each (httpx, httpcore, anyio, h11, signing), parsing
2,000 cluster summaries, 25 whole clusters and the sample's files, the first use of 13 models (~10 ms), judging
(~11 ms). The emulator spends ~0.11 s of CPU. The SDK loop pays ~1.4 ms of client CPU and ~0.9 ms of the
server's per cluster, one after the other. On a machine with idle cores verify also overlaps client and server
work, which a sequential loop cannot; on a loaded machine the wall-time ratio falls back to the CPU ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sdk_loop
from planted import plant_clusters

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.verify.run import DEFAULT_CONCURRENCY, verify_deployment
from tests.helpers import DATASET, PROJECT
from tests.processes import emulator_process, loopback_only, process_cpu

CREDS = DEFAULT_ACCESS_KEY


def prepare(db: Path, oss_root: Path, clusters: int) -> None:
    """``clusters`` clusters of 3 files, 1 face each (no objects on disk: verify reads documents only)."""
    plant_clusters(db, oss_root, clusters)


def sdk_client(endpoint: str) -> Any:
    return sdk_loop.client_for(endpoint, CREDS.access_key_id, CREDS.access_key_secret)


def sdk_list(client: Any) -> list[str]:
    return sdk_loop.cluster_ids(client, PROJECT, DATASET)


def sdk_get(client: Any, object_id: str) -> bool:
    return sdk_loop.cluster_ok(client, PROJECT, DATASET, object_id)


def sdk_sequential(endpoint: str, _threads: int) -> int:
    client = sdk_client(endpoint)
    return sum(sdk_get(client, i) for i in sdk_list(client))


def sdk_threaded(endpoint: str, threads: int) -> int:
    local = threading.local()

    def get(object_id: str) -> bool:
        if not hasattr(local, "client"):
            local.client = sdk_client(endpoint)
        return sdk_get(local.client, object_id)

    ids = sdk_list(sdk_client(endpoint))
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(get, ids))


def run_verify(endpoint: str, threads: int, consistency: bool = True) -> int:
    outputs = StackOutputs(project_name=PROJECT, dataset_name=DATASET, region="cn-hangzhou", endpoint=endpoint)

    async def go() -> int:
        async with AsyncImmClient(endpoint=endpoint, credentials=CREDS, deadline=600) as client:
            report = await verify_deployment(client, outputs, concurrency=threads, consistency=consistency)
        assert report.passed, [str(f) for f in report.failures[:5]]
        REQUESTS[consistency] = sum(report.coverage.requests.values())
        return report.total_clusters

    return asyncio.run(go())


REQUESTS: dict[bool, int] = {}  # requests verify made, with and without consistency checks (shown at the end)


def measure(fn: Callable[[str, int], int], endpoint: str, threads: int, server: int) -> tuple[float, float, float, int]:
    wall, cpu, served = time.perf_counter(), time.process_time(), process_cpu(server)
    count = fn(endpoint, threads)
    return time.perf_counter() - wall, time.process_time() - cpu, process_cpu(server) - served, count


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


PROCESS_ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "ALIBABA_CLOUD_ACCESS_KEY_ID": CREDS.access_key_id,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CREDS.access_key_secret,
}
"""The environment of the whole-process runs: the emulator's keys, and bytecode cached as for an installed package."""


def imm_faces_command() -> list[str]:
    """The `imm-faces` console script next to this Python (what CI runs), else the same entry point with -m."""
    script = Path(sys.executable).with_name("imm-faces")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "imm_faces.runtime.cli.main"]


def cli(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    before, wall = children_cpu(), time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=PROCESS_ENV, check=False)  # noqa: S603
    return time.perf_counter() - wall, children_cpu() - before, proc


def whole_processes(endpoint: str, outputs: Path, server: int, rounds: int, clusters: int) -> None:
    """`imm-faces verify` and the SDK's sequential loop as processes, alternating; medians of wall, CPU, server."""
    commands = {
        "imm-faces verify": [*imm_faces_command(), "verify", "--outputs", str(outputs), "--json", "--quiet"],
        "sdk loop script": [sys.executable, str(Path(__file__).with_name("sdk_loop.py")), endpoint, PROJECT, DATASET],
    }
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for command in commands.values():  # warm-up: bytecode written, server caches
        cli(command)
    for _ in range(rounds):
        for name, command in commands.items():
            served = process_cpu(server)
            wall, cpu, proc = cli(command)
            assert proc.returncode == 0, f"{name}: exit {proc.returncode}: {proc.stderr[-500:]}"
            if name == "imm-faces verify":
                assert json.loads(proc.stdout)["total_clusters"] == clusters
            runs[name].append((wall, cpu, process_cpu(server) - served))
    medians = {n: tuple(statistics.median(x[i] for x in r) for i in range(3)) for n, r in runs.items()}
    (v_wall, v_cpu, v_srv), (s_wall, s_cpu, s_srv) = medians["imm-faces verify"], medians["sdk loop script"]
    print(f"whole processes (start-up included), load {os.getloadavg()[0]:.1f}, {rounds} rounds (medians):")
    for name, (wall, cpu, served) in medians.items():
        print(f"  {name:26s} {wall:6.3f} s wall, CPU {cpu:6.3f} s process + {served:6.3f} s server")
    print(
        f"  verify / sdk loop: {v_wall / s_wall:.3f} of the wall time ({s_wall / v_wall:.1f}x faster), "
        f"{v_cpu / s_cpu:.3f} of the process CPU, {(v_cpu + v_srv) / (s_cpu + s_srv):.3f} of the CPU in all"
    )
    # Each round's two runs are seconds apart: their ratio is the least disturbed by a shared machine's drift.
    ratios = sorted(v[0] / s[0] for v, s in zip(runs["imm-faces verify"], runs["sdk loop script"], strict=True))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    print(
        f"  per round, verify's wall / the sdk loop's: median {quartiles[1]:.3f} "
        f"(quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}, {ratios[0]:.3f}-{ratios[-1]:.3f} in all)"
    )


def startup() -> None:
    wall, _, _ = cli([*imm_faces_command(), "verify", "--help"])
    cmd = [sys.executable, "-X", "importtime", "-m", "imm_faces.runtime.cli.main", "verify", "--help"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)  # noqa: S603
    rows = [line.split("|") for line in proc.stderr.splitlines() if line.startswith("import time:")][1:]
    modules = [r[2].strip() for r in rows]
    total_us = sum(int(r[0].split(":")[1]) for r in rows)
    heavy = [m for m in modules if m.split(".")[0] in ("pulumi", "httpx", "pydantic", "numpy", "starlette")]
    print(
        f"imm-faces verify --help: {wall * 1000:.0f} ms wall; -X importtime: {len(modules)} modules, "
        f"{total_us / 1000:.1f} ms self time; heavy modules imported: {heavy or 'none'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--process-rounds", type=int, default=5, help="rounds of the whole-process comparison")
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="verify's concurrency and the threaded SDK loop's threads",
    )
    args = parser.parse_args()
    loopback_only()

    with tempfile.TemporaryDirectory(prefix="imm-bench-") as tmp:
        db, oss_root = Path(tmp) / "state.db", Path(tmp) / "oss"
        oss_root.mkdir()
        started = time.perf_counter()
        prepare(db, oss_root, args.clusters)
        print(f"prepared {args.clusters} clusters ({3 * args.clusters} files) in {time.perf_counter() - started:.1f} s")
        with emulator_process(db, oss_root) as (server, endpoint):
            contenders: dict[str, Callable[[str, int], int]] = {
                "sdk sequential": sdk_sequential,
                f"sdk threaded ({args.threads})": sdk_threaded,
                f"verify (concurrency {args.threads})": run_verify,
                "verify --no-consistency": lambda e, t: run_verify(e, t, consistency=False),
            }
            for fn in contenders.values():  # warm-up: imports, connections, server caches
                fn(endpoint, args.threads)
            results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
            for _ in range(args.rounds):
                for name, fn in contenders.items():
                    wall, cpu, served, count = measure(fn, endpoint, args.threads, server.pid)
                    assert count == args.clusters, f"{name} saw {count} clusters"
                    results[name].append((wall, cpu, served))
            load = os.getloadavg()[0]
            print(f"cpus={os.cpu_count()} load={load:.1f} clusters={args.clusters} rounds={args.rounds} (medians)")
            medians = {n: tuple(statistics.median(x[i] for x in r) for i in range(3)) for n, r in results.items()}
            base_wall, base_cpu, base_served = medians["sdk sequential"]
            for name, (wall, cpu, served) in medians.items():
                print(
                    f"  {name:26s} {wall:5.2f} s wall, CPU {cpu:5.2f} s client + {served:5.2f} s server; vs the "
                    f"sequential loop: {base_wall / wall:4.1f}x faster, {base_cpu / cpu:4.1f}x less client CPU, "
                    f"{(base_cpu + base_served) / (cpu + served):4.1f}x less CPU in all"
                )
            print(
                f"  verify made {REQUESTS[True]} requests ({REQUESTS[False]} without consistency checks); each SDK "
                f"loop {args.clusters + -(-args.clusters // 100)}"
            )

            out = Path(tmp) / "outputs.json"
            out.write_text(
                json.dumps(
                    {"project_name": PROJECT, "dataset_name": DATASET, "region": "cn-hangzhou", "endpoint": endpoint}
                )
            )
            whole_processes(endpoint, out, server.pid, args.process_rounds, args.clusters)
            startup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
