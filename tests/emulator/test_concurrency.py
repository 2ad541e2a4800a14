"""16 concurrent clients mixing reads and writes for 6 s: no 5xx, and the MetaLockVersion lock loses no update."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient, RetryPolicy
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.models.figure_cluster import FigureCluster
from imm_faces.runtime.operations import datasets, figure_clusters
from tests.conftest import CREDS
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, cluster_ids, deploy

CLIENTS, SECONDS = 16, 3.0  # here ~30 updates and ~130 stale-lock refusals among 6 writers: a lost update shows
COUNTER = "increments"


def test_sixteen_clients_at_once(emulator: Emulator, client: ImmClient, oss_root: Path) -> None:
    deploy(client, oss_root, TWO_PEOPLE)
    target = cluster_ids(client)[0]
    start_version = _get(client, target).meta_lock_version or 0

    stop = time.monotonic() + SECONDS
    increments = Counter[int]()
    calls = Counter[str]()
    failures: list[str] = []
    lock = threading.Lock()

    def writer(n: int, c: ImmClient) -> None:
        """Read-modify-write of one counter label, guarded by MetaLockVersion; retry when the lock is stale."""
        while time.monotonic() < stop:
            cluster = _get(c, target)
            value = int((cluster.custom_labels or {}).get(COUNTER, 0))
            change = {
                "ObjectId": target,
                "MetaLockVersion": cluster.meta_lock_version,
                "CustomLabels": {COUNTER: str(value + 1)},
            }
            try:
                c.call(
                    figure_clusters.UpdateFigureCluster,
                    project_name=PROJECT,
                    dataset_name=DATASET,
                    figure_cluster=change,
                )
            except ImmError as exc:
                if exc.status >= 500 or "MetaLockVersion" not in exc.message:
                    raise
                with lock:
                    calls["stale"] += 1
                continue
            with lock:
                increments[n] += 1

    def reader(n: int, c: ImmClient) -> None:
        while time.monotonic() < stop:
            _get(c, target)
            list(
                c.paginate(
                    figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=DATASET, max_results=1
                )
            )
            with lock:
                calls["reads"] += 1

    def churner(n: int, c: ImmClient) -> None:
        """Create, update and delete datasets of its own: writes to other rows of the same store."""
        i = 0
        while time.monotonic() < stop:
            name = f"churn-{n}-{i}"
            c.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=name)
            c.call(datasets.UpdateDataset, project_name=PROJECT, dataset_name=name, description="x")
            c.call(datasets.DeleteDataset, project_name=PROJECT, dataset_name=name)
            i += 1
            with lock:
                calls["churn"] += 1

    roles = [writer] * 6 + [reader] * 6 + [churner] * 4

    def run(n: int) -> None:
        # One attempt only: a 5xx must surface here, not be retried away.
        with ImmClient(endpoint=emulator.endpoint, credentials=CREDS, retry=RetryPolicy(max_attempts=1)) as c:
            try:
                roles[n](n, c)
            except Exception as exc:
                with lock:
                    failures.append(f"client {n} ({roles[n].__name__}): {exc!r}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 60)

    print(
        f"\n16 clients, {SECONDS:.0f} s: {sum(increments.values())} updates, {calls['stale']} stale-lock rejections, "
        f"{calls['reads']} read rounds, {calls['churn']} dataset create/update/delete rounds"
    )
    assert failures == []
    done = sum(increments.values())
    assert done > 0
    assert calls["reads"] > 0
    assert calls["churn"] > 0
    final = _get(client, target)
    # No lost update: every acknowledged increment is in the counter, and the version moved once per update.
    assert int((final.custom_labels or {})[COUNTER]) == done
    assert final.meta_lock_version == start_version + done
    assert [d.dataset_name for d in client.paginate(datasets.ListDatasets, project_name=PROJECT)] == [DATASET]


def _get(c: ImmClient, cluster_id: str) -> FigureCluster:
    return c.call(
        figure_clusters.GetFigureCluster, project_name=PROJECT, dataset_name=DATASET, object_id=cluster_id
    ).figure_cluster


def test_reads_do_not_wait_for_a_writer(emulator: Emulator, client: ImmClient) -> None:
    """A long write transaction (a clustering task over a big dataset, say) does not stall Get/List calls."""
    from imm_faces.runtime.operations import projects

    client.call(projects.CreateProject, project_name="busy")
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with emulator.store.tx():
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        with ImmClient(
            endpoint=emulator.endpoint, credentials=CREDS, timeout=5.0, retry=RetryPolicy(max_attempts=1)
        ) as reader:
            assert reader.call(projects.GetProject, project_name="busy").project.project_name == "busy"
            assert [p.project_name for p in reader.paginate(projects.ListProjects)] == ["busy"]
        assert not release.is_set()  # the writer still held its transaction while both reads were answered
    finally:
        release.set()
        thread.join(10)
