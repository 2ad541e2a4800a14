"""The emulator's asynchronous work: indexing files, scanning bindings, running clustering tasks.

Indexing runs on a thread pool (one worker per core: face analysis is CPU-bound and releases the GIL in
dlib/numpy). A clustering task first waits until every file submitted to its dataset before it has been
indexed, then assigns the new faces incrementally and rewrites the affected figure clusters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imm_faces.emulator.analysis import FACE_ANALYSIS_UNAVAILABLE, Analyzer, ImageAnalysis, exif_json
from imm_faces.emulator.clustering import DEFAULT_THRESHOLD
from imm_faces.emulator.errors import not_found
from imm_faces.emulator.figures import OWNER_ID, cluster_pending, record_file_faces
from imm_faces.emulator.oss import list_bucket, object_path
from imm_faces.emulator.store import Store, Tx
from imm_faces.runtime.models.inputs import InputFile
from imm_faces.runtime.operations.tasks import TASK_FAILED, TASK_RUNNING, TASK_SUCCEEDED
from imm_faces.runtime.rules import split_oss_uri
from imm_faces.runtime.timestamps import now_rfc3339_nano, rfc3339_nano

log = logging.getLogger("imm_faces.emulator")
SCAN_INTERVAL = 1.0
SCAN_POLL = 0.05
# What an IndexFileMeta caller may set on a file (InputFile's fields), besides what indexing derives itself.
USER_FILE_FIELDS = tuple(
    info.alias or name
    for name, info in InputFile.model_fields.items()
    if name not in ("uri", "ossuri", "file_hash", "figures")
)


class JobRunner:
    def __init__(
        self,
        store: Store,
        oss_root: Path,
        analyzer: Analyzer,
        *,
        workers: int | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.store = store
        self.oss_root = oss_root
        self.analyzer = analyzer
        self.threshold = threshold
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="imm-index")
        self._tasks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imm-task")
        self._pending: dict[tuple[str, str], int] = defaultdict(int)
        self._idle = threading.Condition()
        self._seen: dict[tuple[str, str, str], dict[str, tuple[int, int]]] = {}
        self._seen_lock = threading.Lock()
        self._stop = threading.Event()
        self._scanner = threading.Thread(target=self._scan_loop, name="imm-bindings", daemon=True)
        self._resume()
        self._scanner.start()

    def _resume(self) -> None:
        """Pick up the work a previous process acknowledged but did not finish (it may have been killed):
        queued index jobs, bindings still in their full scan, clustering tasks still Running."""
        with self.store.tx() as tx:
            queued = tx.queued()
            full_scans = [b for b in tx.scan_kind("binding") if b.get("Phase") == "FullScanning"]
            running = [t for t in tx.scan_kind("task") if t.get("Status") == TASK_RUNNING]
        for job_id, project, dataset, item in queued:
            self._submit_index(project, dataset, item, job_id)
        for b in full_scans:
            self.bind(b["ProjectName"], b["DatasetName"], b["URI"])
        for task in running:
            dataset = json.loads(task.get("TaskRequestDefinition") or "{}").get("DatasetName", "")
            self.cluster(task["ProjectName"], dataset, task["TaskId"])

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._tasks.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ indexing

    def path_of(self, uri: str) -> Path:
        """``oss://bucket/key`` -> ``<oss-root>/bucket/key`` (never outside the root)."""
        return object_path(self.oss_root, uri)

    def index(self, project: str, dataset: str, files: list[dict[str, Any]]) -> None:
        """Queue files for indexing; the queue is in the store before this returns (and the call is answered)."""
        with self.store.tx() as tx:
            job_ids = tx.enqueue(project, dataset, files)
        for item, job_id in zip(files, job_ids, strict=True):
            self._submit_index(project, dataset, item, job_id)

    def _submit_index(self, project: str, dataset: str, item: dict[str, Any], job_id: int) -> None:
        with self._idle:
            self._pending[(project, dataset)] += 1
        self._pool.submit(self._index_one, project, dataset, item, job_id)

    def wait_idle(self, project: str, dataset: str, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending[(project, dataset)] == 0, timeout)

    def _index_one(self, project: str, dataset: str, item: dict[str, Any], job_id: int) -> None:
        uri = item["URI"]
        indexed: tuple[dict[str, Any], list[tuple[str, Any]]] | None = None
        try:
            path = self.path_of(uri)
            data = path.read_bytes()
            analysis = self.analyzer.analyze(data, path.name)
            indexed = _file_doc(project, dataset, item, data, analysis, path.stat().st_mtime_ns)
        except FileNotFoundError:
            # IMM indexes asynchronously: a missing object is not an error of the call; the file simply
            # never appears (GetFileMeta answers ResourceNotFound) and the failure is logged.
            log.warning("IndexFileMeta %s: the object does not exist", uri)
        except Exception:  # one bad file must not stop the indexer
            log.exception("IndexFileMeta %s failed", uri)
        try:
            # One transaction (one fsync): the file and the end of its job, done or failed for good.
            with self.store.tx() as tx:
                if indexed is not None:
                    _put_file(tx, project, dataset, *indexed)
                tx.dequeue(job_id)
        except Exception:  # the store may be closing
            log.exception("IndexFileMeta %s could not be recorded", uri)
        finally:
            with self._idle:
                self._pending[(project, dataset)] -= 1
                self._idle.notify_all()

    # ------------------------------------------------------------------ bindings

    def bind(self, project: str, dataset: str, uri: str) -> None:
        self._pool.submit(self._scan_binding, project, dataset, uri, True)

    def _scan_binding(self, project: str, dataset: str, uri: str, full: bool) -> None:
        try:
            bucket, prefix = split_oss_uri(uri)
            changed: list[dict[str, Any]] = []
            with self._seen_lock:  # the first full scan (pool) and the periodic scan (scanner) may overlap
                seen = self._seen.setdefault((project, dataset, uri), {})
                for key, stat in sorted((list_bucket(self.oss_root, bucket, prefix) or {}).items()):
                    signature = (stat.st_mtime_ns, stat.st_size)
                    if seen.get(key) != signature:
                        seen[key] = signature
                        changed.append({"URI": f"oss://{bucket}/{key}"})
            if changed:
                self.index(project, dataset, changed)
            if full:
                self.wait_idle(project, dataset)
                with self.store.tx() as tx:
                    doc = tx.get("binding", project, dataset, uri)
                    if doc is not None:
                        exists = list_bucket(self.oss_root, bucket, prefix) is not None
                        reason = "" if exists else f"bucket {bucket} does not exist under the OSS root"
                        doc.update(Phase="IncrementalScanning", Reason=reason, UpdateTime=now_rfc3339_nano())
                        if reason:
                            doc["State"] = "Failed"
                        tx.put("binding", doc, project, dataset, uri)
        except Exception as exc:
            log.exception("scanning binding %s failed", uri)
            if full:  # a binding whose first scan failed must not keep clustering tasks waiting for it
                with self.store.tx() as tx:
                    doc = tx.get("binding", project, dataset, uri)
                    if doc is not None:
                        doc.update(State="Failed", Reason=f"scan failed: {exc}", UpdateTime=now_rfc3339_nano())
                        tx.put("binding", doc, project, dataset, uri)

    def _scan_loop(self) -> None:
        while not self._stop.wait(SCAN_INTERVAL):
            try:
                with self.store.snapshot() as tx:
                    active = [b for b in tx.scan_kind("binding")
                              if b.get("Phase") == "IncrementalScanning" and b.get("State") == "Running"]  # fmt: skip
                for b in active:
                    self._scan_binding(b["ProjectName"], b["DatasetName"], b["URI"], False)
            except Exception:  # the store may be closing
                if self._stop.is_set():
                    return
                log.exception("binding scan failed")

    # ------------------------------------------------------------------ clustering tasks

    def cluster(self, project: str, dataset: str, task_id: str) -> None:
        self._tasks.submit(self._run_clustering, project, dataset, task_id)

    def _full_scans_done(self, project: str, dataset: str) -> None:
        """Wait while a binding of the dataset is still in its first full scan (its files belong to the task)."""
        while not self._stop.is_set():
            with self.store.snapshot() as tx:  # polled: a read must not take the write lock
                scanning = [b for _, b in tx.scan("binding", project, dataset)
                            if b.get("Phase") == "FullScanning" and b.get("State") != "Failed"]  # fmt: skip
                if not scanning:
                    return
            self._stop.wait(SCAN_POLL)

    def _run_clustering(self, project: str, dataset: str, task_id: str) -> None:
        try:
            self._full_scans_done(project, dataset)
            self.wait_idle(project, dataset)
            with self.store.tx() as tx:
                if tx.get("dataset", project, "", dataset) is None:
                    gone = not_found("dataset")
                    self._finish_in(tx, project, task_id, TASK_FAILED, gone.code, gone.message)
                    return
                files = tx.scan("file", project, dataset)
                images = [doc for _, doc in files if doc.get("MediaType") == "image"]
                if images and not self.analyzer.faces_available:
                    self._finish_in(tx, project, task_id, TASK_FAILED, "FaceAnalysisUnavailable",
                                    FACE_ANALYSIS_UNAVAILABLE)  # fmt: skip
                    return
                self._cluster_in(tx, project, dataset)
                self._finish_in(tx, project, task_id, TASK_SUCCEEDED)
        except Exception as exc:
            log.exception("clustering task %s failed", task_id)
            with self.store.tx() as tx:
                self._finish_in(tx, project, task_id, TASK_FAILED, "InternalError", f"clustering failed: {exc}")

    @staticmethod
    def _finish_in(tx: Tx, project: str, task_id: str, status: str, code: str = "", message: str = "") -> None:
        doc = tx.get("task", project, "", task_id)
        if doc is None:
            return
        doc.update(Status=status, EndTime=now_rfc3339_nano(), Progress=100)
        if code:
            doc.update(Code=code, Message=message)
        tx.put("task", doc, project, "", task_id)

    def _cluster_in(self, tx: Tx, project: str, dataset: str) -> None:
        cluster_pending(tx, project, dataset, self.threshold)


def _file_doc(
    project: str, dataset: str, item: dict[str, Any], data: bytes, analysis: ImageAnalysis, mtime_ns: int
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A file's metadata document as GetFileMeta returns it, and its faces with their new figure ids."""
    uri = item["URI"]
    now = now_rfc3339_nano()
    modified = rfc3339_nano(mtime_ns)
    etag = f'"{hashlib.md5(data).hexdigest().upper()}"'  # noqa: S324 - OSS's ETag is an MD5, not security
    faces = [(f"{uuid.uuid4()}", face) for face in analysis.faces]
    doc: dict[str, Any] = {
        "OwnerId": OWNER_ID, "ProjectName": project, "DatasetName": dataset, "ObjectType": "file",
        "ObjectId": hashlib.sha256(uri.encode()).hexdigest(), "URI": uri, "Filename": uri.rsplit("/", 1)[-1],
        "MediaType": analysis.media_type, "ContentType": analysis.content_type, "Size": len(data),
        "FileHash": etag, "ETag": etag,
        "FileModifiedTime": modified, "ProduceTime": modified, "CreateTime": now, "UpdateTime": now,
        "OSSObjectType": "Normal", "OSSStorageClass": "Standard",
    }  # fmt: skip
    if analysis.width:
        doc.update(ImageWidth=analysis.width, ImageHeight=analysis.height, Orientation=analysis.orientation or 1)
    if analysis.exif:
        doc["EXIF"] = exif_json(analysis.exif)
    if analysis.media_type == "image":
        doc["FigureCount"] = len(faces)
        doc["Figures"] = [_figure(fid, face) for fid, face in faces]
    for key in USER_FILE_FIELDS:
        if item.get(key):
            doc[key] = item[key]
    return doc, faces


def _put_file(tx: Tx, project: str, dataset: str, doc: dict[str, Any], faces: list[tuple[str, Any]]) -> None:
    if tx.get("dataset", project, "", dataset) is None:
        return  # the dataset was deleted meanwhile
    uri = doc["URI"]
    old = tx.get("file", project, dataset, uri)
    if old is not None:
        doc["CreateTime"] = old.get("CreateTime", doc["CreateTime"])
    record_file_faces(tx, project, dataset, doc, [face.embedding for _, face in faces])


def _figure(figure_id: str, face: Any) -> dict[str, Any]:
    left, top, width, height = face.boundary
    out: dict[str, Any] = {
        "FigureId": figure_id, "FigureType": "face", "FigureConfidence": round(face.confidence, 4),
        "Boundary": {"Left": left, "Top": top, "Width": width, "Height": height},
        "FaceQuality": round(face.quality, 4), "Sharpness": round(face.sharpness, 4),
    }  # fmt: skip
    if face.age is not None:
        out["Age"] = round(face.age)
    if face.age_sd is not None:
        out["AgeSD"] = round(face.age_sd, 2)
    if face.gender:
        out["Gender"] = face.gender
        out["GenderConfidence"] = round(face.gender_confidence or 0.0, 4)
    if face.head_pose is not None:
        out["HeadPose"] = dict(zip(("Pitch", "Roll", "Yaw"), (round(v, 2) for v in face.head_pose), strict=True))
    return out
