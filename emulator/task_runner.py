"""The task runner: clustering and merging tasks, one at a time, on the ``imm-task`` thread.

A clustering task groups the faces of the files indexed when it runs: IMM's docs say to index first and that
each task processes the dataset incrementally, so it waits neither for bindings nor for queued index jobs.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from imm_faces.emulator.analysis import FACE_ANALYSIS_UNAVAILABLE, Analyzer
from imm_faces.emulator.errors import not_found
from imm_faces.emulator.figures import cluster_pending, merge_clusters
from imm_faces.emulator.store import TASK, ClusterKey, DatasetKey, Files, Store, TaskKey, Tx
from imm_faces.runtime.operations.tasks import (
    FIGURE_CLUSTERS_MERGING,
    TASK_FAILED,
    TASK_RUNNING,
    TASK_SUCCEEDED,
    CreateFigureClustersMergingTaskRequest,
)
from imm_faces.runtime.timestamps import now_rfc3339_nano

log = logging.getLogger("imm_faces.emulator")


class TaskRunner:
    def __init__(self, store: Store, analyzer: Analyzer, threshold: float) -> None:
        self.store = store
        self.analyzer = analyzer
        self.threshold = threshold
        self._tasks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imm-task")

    def resume(self) -> None:
        """Run again the tasks a previous process left Running (it may have been killed)."""
        with self.store.tx() as tx:
            running = [t for t in tx.scan_kind(TASK) if t.get("Status") == TASK_RUNNING]
        for task in running:
            self._start_task(task)

    def close(self) -> None:
        self._tasks.shutdown(wait=True, cancel_futures=True)

    def _start_task(self, task: dict[str, Any]) -> None:
        """Run (again) a Running task from its stored request."""
        params = json.loads(task.get("TaskRequestDefinition") or "{}")
        project, task_id = task["ProjectName"], task["TaskId"]
        if task.get("TaskType") == FIGURE_CLUSTERS_MERGING:
            req = CreateFigureClustersMergingTaskRequest.from_params(params)
            self.merge(project, req.dataset_name, task_id, req.sources(), req.to)
        else:
            self.cluster(project, params.get("DatasetName", ""), task_id)

    def cluster(self, project: str, dataset: str, task_id: str) -> None:
        """Queue a clustering task. It clusters the faces of the files indexed when it runs: IMM's docs say to
        index first and that each task processes the dataset incrementally, so files still being indexed
        (from a binding or IndexFileMeta) are left for the next task; nothing waits for them."""
        self._tasks.submit(self._run_clustering, project, dataset, task_id)

    def merge(self, project: str, dataset: str, task_id: str, sources: list[str], target: str) -> None:
        """Queue a merging task (CreateFigureClustersMergingTask): the faces of ``sources`` join ``target``."""
        self._tasks.submit(self._run_merge, project, dataset, task_id, sources, target)

    def _run_merge(self, project: str, dataset: str, task_id: str, sources: list[str], target: str) -> None:
        try:
            with self.store.tx() as tx:
                if tx.get(ClusterKey(project, dataset, target)) is None:
                    # Inferred: the target was deleted (its faces all went) after the task was accepted.
                    gone = not_found("FigureCluster")
                    self._finish_in(tx, project, task_id, TASK_FAILED, gone.code, f"{gone.message} ({target})")
                    return
                for source in sources:  # a source that has gone meanwhile has nothing left to merge
                    merge_clusters(tx, project, dataset, source, target)
                self._finish_in(tx, project, task_id, TASK_SUCCEEDED)
        except Exception as exc:
            log.exception("merging task %s failed", task_id)
            with self.store.tx() as tx:
                self._finish_in(tx, project, task_id, TASK_FAILED, "InternalError", f"merging failed: {exc}")

    def _run_clustering(self, project: str, dataset: str, task_id: str) -> None:
        try:
            with self.store.tx() as tx:
                if tx.get(DatasetKey(project, dataset)) is None:
                    gone = not_found("dataset")
                    self._finish_in(tx, project, task_id, TASK_FAILED, gone.code, gone.message)
                    return
                files = tx.scan(Files(project, dataset))
                images = [doc for _, doc in files if doc.get("MediaType") == "image"]
                if images and not self.analyzer.faces_available:
                    self._finish_in(
                        tx, project, task_id, TASK_FAILED, "FaceAnalysisUnavailable", FACE_ANALYSIS_UNAVAILABLE
                    )
                    return
                self._cluster_in(tx, project, dataset)
                self._finish_in(tx, project, task_id, TASK_SUCCEEDED)
        except Exception as exc:
            log.exception("clustering task %s failed", task_id)
            with self.store.tx() as tx:
                self._finish_in(tx, project, task_id, TASK_FAILED, "InternalError", f"clustering failed: {exc}")

    @staticmethod
    def _finish_in(tx: Tx, project: str, task_id: str, status: str, code: str = "", message: str = "") -> None:
        doc = tx.get(TaskKey(project, task_id))
        if doc is None:
            return
        doc.update(Status=status, EndTime=now_rfc3339_nano(), Progress=100)
        if code:
            doc.update(Code=code, Message=message)
        tx.put(TaskKey(project, task_id), doc)

    def _cluster_in(self, tx: Tx, project: str, dataset: str) -> None:
        cluster_pending(tx, project, dataset, self.threshold)
