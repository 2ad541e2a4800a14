"""The emulator's work behind the service (its ``Jobs``), each part in a module of its own:

- :mod:`~imm_faces.emulator.indexer` (``imm-index``, one worker per core): index jobs, each one file; a job
  never waits for anything.
- :mod:`~imm_faces.emulator.binding_scanner` (``imm-bindings``, one thread): walks the bound OSS locations and
  queues index jobs; it never blocks on the index pool, so any number of bindings finish.
- :mod:`~imm_faces.emulator.task_runner` (``imm-task``, one worker): clustering and merging tasks, one at a
  time, on what is indexed when they run.
- :mod:`~imm_faces.emulator.image_search`: SearchImageFigureCluster, on the request's thread.

No work ever waits for a pool it runs on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imm_faces.emulator.analysis import Analyzer
from imm_faces.emulator.binding_scanner import BindingScanner
from imm_faces.emulator.clustering import DEFAULT_THRESHOLD
from imm_faces.emulator.image_search import ImageSearch
from imm_faces.emulator.indexer import Indexer, ObjectReads
from imm_faces.emulator.store import Store, Tx
from imm_faces.emulator.task_runner import TaskRunner
from imm_faces.runtime.operations.figure_clusters import FigureClusterMatch


class JobRunner:
    """The indexer, the binding scanner, the task runner and the image search over one store and OSS root.
    ``service_reads`` (RAM): IMM reads OSS as the project's service role (see :class:`ObjectReads`)."""

    def __init__(
        self,
        store: Store,
        oss_root: Path,
        analyzer: Analyzer,
        *,
        workers: int | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        service_reads: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.analyzer = analyzer
        objects = ObjectReads(oss_root, service_reads)
        wake = threading.Event()
        self.indexer = Indexer(store, objects, analyzer, workers=workers, on_done=wake.set)
        self.scanner = BindingScanner(store, self.indexer, wake)
        self.tasks = TaskRunner(store, analyzer, threshold)
        self.searcher = ImageSearch(store, objects, analyzer, threshold)
        # Work a previous process acknowledged but did not finish (it may have been killed). Bindings still in
        # their full scan are scanned again (files indexed and unchanged are not queued again).
        self.indexer.resume()
        self.tasks.resume()
        self.scanner.start()

    def close(self) -> None:
        self.scanner.close()
        self.indexer.close()
        self.tasks.close()
        self.scanner.join()

    def index(self, project: str, dataset: str, files: list[dict[str, Any]]) -> list[int]:
        return self.indexer.index(project, dataset, files)

    def wait_idle(self, project: str, dataset: str, timeout: float | None = None) -> bool:
        return self.indexer.wait_idle(project, dataset, timeout)

    def remove_files(self, tx: Tx, project: str, dataset: str, uris: list[str]) -> None:
        self.indexer.remove_files(tx, project, dataset, uris)

    def bind(self, project: str, dataset: str, uri: str) -> None:
        self.scanner.bind()

    def cluster(self, project: str, dataset: str, task_id: str) -> None:
        self.tasks.cluster(project, dataset, task_id)

    def merge(self, project: str, dataset: str, task_id: str, sources: list[str], target: str) -> None:
        self.tasks.merge(project, dataset, task_id, sources, target)

    def search_image(self, project: str, dataset: str, uri: str) -> list[FigureClusterMatch]:
        return self.searcher.search(project, dataset, uri)
