"""The emulator's asynchronous work: indexing files, scanning bindings, running clustering and merging tasks.

Indexing runs on a thread pool (one worker per core: face analysis is CPU-bound and releases the GIL in
dlib/numpy); bindings are scanned by a thread of their own and tasks run on another, so no work ever waits
for a pool it runs on (see :class:`JobRunner`). A clustering task groups the faces indexed when it runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from imm_faces.emulator.analysis import FACE_ANALYSIS_UNAVAILABLE, Analyzer, ImageAnalysis, exif_json, image_metadata
from imm_faces.emulator.clustering import DEFAULT_THRESHOLD
from imm_faces.emulator.errors import invalid, not_found
from imm_faces.emulator.figures import (
    OWNER_ID,
    cluster_pending,
    cluster_stats,
    forget_file_faces,
    merge_clusters,
    record_file_faces,
)
from imm_faces.emulator.images import ImageLimitError
from imm_faces.emulator.oss import ObjectFile, list_bucket, open_uri
from imm_faces.emulator.oss import etag as object_etag
from imm_faces.emulator.ram import AccessDeniedError
from imm_faces.emulator.store import Store, Tx
from imm_faces.runtime.models.file import Boundary
from imm_faces.runtime.models.inputs import InputFile
from imm_faces.runtime.operations.figure_clusters import FigureClusterMatch
from imm_faces.runtime.operations.tasks import (
    FIGURE_CLUSTERS_MERGING,
    TASK_FAILED,
    TASK_RUNNING,
    TASK_SUCCEEDED,
    CreateFigureClustersMergingTaskRequest,
)
from imm_faces.runtime.rules import IMG_MAX_SOURCE_BYTES, split_oss_uri
from imm_faces.runtime.timestamps import now_rfc3339_nano, rfc3339_nano

log = logging.getLogger("imm_faces.emulator")
SCAN_INTERVAL = 1.0
HEADER_BYTES = 64 * 1024  # read of an object too large to analyse: its header, for its size and type
# What an IndexFileMeta caller may set on a file (InputFile's fields), besides what indexing derives itself.
USER_FILE_FIELDS = tuple(
    info.alias or name
    for name, info in InputFile.model_fields.items()
    if name not in ("uri", "ossuri", "file_hash", "figures")
)


class JobRunner:
    """The emulator's background work, on threads that never wait for one another's pools:

    - ``imm-index`` (one worker per core): index jobs, each one file; a job never waits for anything.
    - ``imm-bindings`` (one thread): walks the bound OSS locations and queues index jobs. A binding leaves its
      ``FullScanning`` phase when every job its first scan queued is done, which the thread notices on its
      next pass: it never blocks on the index pool, so any number of bindings finish.
    - ``imm-task`` (one worker): clustering and merging tasks, one at a time. A task works on what is indexed
      when it runs; it waits neither for bindings nor for queued index jobs.
    """

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
        self.store = store
        self.oss_root = oss_root
        self.analyzer = analyzer
        self.threshold = threshold
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="imm-index")
        self._tasks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imm-task")
        # Index jobs queued or running in this process: job id -> (project, dataset, URI).
        self._inflight: dict[int, tuple[str, str, str]] = {}
        self._idle = threading.Condition()
        # Per binding: what its scans saw (key -> (FileModifiedTime, Size)), and for a binding in its first
        # full scan, the index jobs that scan queued.
        self._seen: dict[tuple[str, str, str], dict[str, tuple[str, int]]] = {}
        self._first_scan: dict[tuple[str, str, str], set[int]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._scanner = threading.Thread(target=self._scan_loop, name="imm-bindings", daemon=True)
        # RAM: IMM reads OSS as the project's service role: (project, action, uri) -> None, or AccessDeniedError
        # (emulator/ram.py, ServiceRoleReads); None reads everything.
        self.service_reads = service_reads
        self._resume()
        self._scanner.start()

    def _resume(self) -> None:
        """Pick up the work a previous process acknowledged but did not finish (it may have been killed):
        queued index jobs and Running tasks. Bindings still in their full scan are scanned again by the
        scanner (files already indexed and unchanged are not queued again; queued ones are not doubled)."""
        with self.store.tx() as tx:
            queued = tx.queued()
            running = [t for t in tx.scan_kind("task") if t.get("Status") == TASK_RUNNING]
        for job_id, project, dataset, item in queued:
            self._submit_index(project, dataset, item, job_id)
        for task in running:
            self._start_task(task)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._tasks.shutdown(wait=True, cancel_futures=True)
        self._scanner.join(timeout=5)

    # ------------------------------------------------------------------ indexing

    def read_object(self, uri: str) -> tuple[bytes, bool, ObjectFile]:
        """What indexing and searching read of an object: (its bytes, whether that is all of them, the closed
        object with its name and stat). The whole object when it is within OSS's image source limit
        (:data:`~imm_faces.runtime.rules.IMG_MAX_SOURCE_BYTES`), else only its first bytes, enough for the
        image's header: memory stays bounded whatever the object's size. Raises
        :class:`~imm_faces.emulator.oss.NotAnObjectError` for what is not an object (see
        :mod:`imm_faces.emulator.oss`: a FIFO or a device is never opened)."""
        with open_uri(self.oss_root, uri) as obj:
            data = obj.read_up_to(IMG_MAX_SOURCE_BYTES)
            if data is not None:
                return data, True, obj
            return obj.read_chunk(HEADER_BYTES), False, obj

    def index(self, project: str, dataset: str, files: list[dict[str, Any]]) -> list[int]:
        """Queue files for indexing; the queue is in the store before this returns (and the call is answered).
        Returns the jobs' ids."""
        with self.store.tx() as tx:
            job_ids = tx.enqueue(project, dataset, files)
        for item, job_id in zip(files, job_ids, strict=True):
            self._submit_index(project, dataset, item, job_id)
        return job_ids

    def _submit_index(self, project: str, dataset: str, item: dict[str, Any], job_id: int) -> None:
        with self._idle:
            self._inflight[job_id] = (project, dataset, item["URI"])
        self._pool.submit(self._index_one, project, dataset, item, job_id)

    def wait_idle(self, project: str, dataset: str, timeout: float | None = None) -> bool:
        """Wait until no index job of the dataset is queued or running (for tests and tools; no background
        work calls it)."""
        with self._idle:
            return self._idle.wait_for(
                lambda: all((p, d) != (project, dataset) for p, d, _ in self._inflight.values()), timeout
            )

    def _index_one(self, project: str, dataset: str, item: dict[str, Any], job_id: int) -> None:
        uri = item["URI"]
        indexed: tuple[dict[str, Any], list[tuple[str, Any]]] | None = None
        try:
            self._service_read(project, "oss:GetObject", uri)
            data, whole, obj = self.read_object(uri)
            # Inferred: an object over OSS's image source limits is indexed with what its header says, no faces.
            analysis = self._analyze(uri, data, obj.name) if whole else image_metadata(data, obj.name)
            info = obj.info
            indexed = _file_doc(project, dataset, item, analysis, size=info.st_size, etag=object_etag(info),
                                mtime_ns=info.st_mtime_ns)  # fmt: skip
        except FileNotFoundError:
            # IMM indexes asynchronously: a missing object is not an error of the call; the file simply
            # never appears (GetFileMeta answers ResourceNotFound) and the failure is logged.
            log.warning("IndexFileMeta %s: the object does not exist", uri)
        except AccessDeniedError as exc:  # IMM's "File access forbidden": the file is not indexed
            log.warning("IndexFileMeta %s: the service role may not read it: %s", uri, exc)
        except Exception:  # one bad file must not stop the indexer
            log.exception("IndexFileMeta %s failed", uri)
        try:
            # One transaction (one fsync): the file and the end of its job, done or failed for good. A job
            # no longer queued was cancelled by a delete of its file meanwhile: its result is dropped.
            with self.store.tx() as tx:
                if tx.finish_job(job_id) and indexed is not None:
                    _put_file(tx, project, dataset, *indexed)
        except Exception:  # the store may be closing
            log.exception("IndexFileMeta %s could not be recorded", uri)
        finally:
            with self._idle:
                self._inflight.pop(job_id, None)
                self._idle.notify_all()
            self._wake.set()  # a binding may have finished its first scan

    def _service_read(self, project: str, action: str, uri: str) -> None:
        if self.service_reads is not None:
            self.service_reads(project, action, uri)

    def _analyze(self, uri: str, data: bytes, name: str) -> ImageAnalysis:
        try:
            return self.analyzer.analyze(data, name)
        except ImageLimitError as exc:  # inferred, as for an object too large: its metadata, no faces
            log.warning("IndexFileMeta %s: faces not analysed: %s", uri, exc)
            return image_metadata(data, name)

    def remove_files(self, tx: Tx, project: str, dataset: str, uris: list[str]) -> None:
        """Files leave the dataset (DeleteFileMeta, or a binding's object is gone): their documents, their
        queued index jobs, and their faces, which leave their figure clusters (a cluster left without faces
        is deleted, as IMM documents). Runs inside the caller's transaction."""
        tx.drop_queued(project, dataset, uris)
        for uri in uris:
            forget_file_faces(tx, project, dataset, uri)
            tx.delete("file", project, dataset, uri)

    # ------------------------------------------------------------------ bindings

    def bind(self, project: str, dataset: str, uri: str) -> None:
        """A new binding: the scanner starts its full scan on its next pass, which this starts now."""
        self._wake.set()

    def _list_objects(self, bucket: str, prefix: str) -> dict[str, tuple[str, int]] | None:
        """Objects under ``oss://bucket/prefix``: key -> (modified time as GetFileMeta shows it, size); None when
        the bucket does not exist. Hidden names are skipped; nothing resolving outside the bucket is listed."""
        objects = list_bucket(self.oss_root, bucket, prefix)
        if objects is None:
            return None
        return {key: (rfc3339_nano(st.st_mtime_ns), st.st_size) for key, st in objects.items()}

    def _scan_binding(self, binding: dict[str, Any]) -> None:
        """One pass over a binding's location: queue new and changed objects, remove from the dataset the files
        that left it; a binding in its first full scan turns IncrementalScanning once its jobs are done."""
        project, dataset, uri = binding["ProjectName"], binding["DatasetName"], binding["URI"]
        ident = (project, dataset, uri)
        full = binding.get("Phase") == "FullScanning"
        if full and ident in self._first_scan:  # scanned; waiting for its index jobs
            with self._idle:
                if self._first_scan[ident] & self._inflight.keys():
                    return
            self._end_full_scan(ident, "")
            return
        try:
            self._service_read(project, "oss:ListObjects", uri)
        except AccessDeniedError as exc:
            if full:
                self._end_full_scan(ident, f"the service role may not list the location: {exc}")
            return
        bucket, prefix = split_oss_uri(uri)
        objects = self._list_objects(bucket, prefix)
        if objects is None:
            if full:
                self._end_full_scan(ident, f"bucket {bucket} does not exist under the OSS root")
            return
        base_uri = f"oss://{bucket}/"
        seen = self._seen.get(ident)
        if seen is None:  # first pass in this process: what the dataset already holds counts as seen
            with self.store.snapshot() as tx:
                docs = tx.scan("file", project, dataset, prefix=base_uri + prefix)
            seen = {
                k[len(base_uri) :]: (d.get("FileModifiedTime", ""), int(d.get("Size") or 0))
                for k, d in docs
                if not any(part.startswith(".") for part in k[len(base_uri) :].split("/"))  # never listed
            }
            self._seen[ident] = seen
        changed = [key for key, signature in objects.items() if seen.get(key) != signature]
        gone = [key for key in seen if key not in objects]
        with self._idle:
            queued = {u: job for job, (p, d, u) in self._inflight.items() if (p, d) == (project, dataset)}
        fresh = [key for key in changed if base_uri + key not in queued]
        jobs = {queued[base_uri + key] for key in changed if base_uri + key in queued}
        if fresh:
            jobs.update(self.index(project, dataset, [{"URI": base_uri + key} for key in fresh]))
        if gone:
            with self.store.tx() as tx:
                self.remove_files(tx, project, dataset, [base_uri + key for key in gone])
        for key in changed:
            seen[key] = objects[key]
        for key in gone:
            del seen[key]
        if full:
            self._first_scan[ident] = jobs
            self._wake.set()  # check for completion on the next pass

    def _end_full_scan(self, ident: tuple[str, str, str], reason: str) -> None:
        project, dataset, uri = ident
        self._first_scan.pop(ident, None)
        with self.store.tx() as tx:
            doc = tx.get("binding", project, dataset, uri)
            if doc is None or doc.get("Phase") != "FullScanning":
                return
            doc.update(Phase="IncrementalScanning", Reason=reason, UpdateTime=now_rfc3339_nano())
            if reason:
                doc["State"] = "Failed"
            tx.put("binding", doc, project, dataset, uri)

    def _scan_loop(self) -> None:
        """Scan every running binding every SCAN_INTERVAL seconds, or sooner when woken."""
        last_walk = 0.0
        while not self._stop.is_set():
            self._wake.wait(SCAN_INTERVAL)
            self._wake.clear()
            # Woken early (a new binding, an index job done), only first scans are looked at; every binding's
            # location is walked again once SCAN_INTERVAL has passed.
            walk = time.monotonic() - last_walk >= SCAN_INTERVAL
            if walk:
                last_walk = time.monotonic()
            try:
                with self.store.snapshot() as tx:
                    bindings = [b for b in tx.scan_kind("binding") if b.get("State") == "Running"]
                live = {(b["ProjectName"], b["DatasetName"], b["URI"]) for b in bindings}
                for ident in [i for i in self._seen if i not in live]:  # deleted bindings
                    self._seen.pop(ident, None)
                    self._first_scan.pop(ident, None)
                for b in bindings:
                    if self._stop.is_set():
                        return
                    if not walk and b.get("Phase") != "FullScanning":
                        continue
                    try:
                        self._scan_binding(b)
                    except Exception as exc:
                        log.exception("scanning binding %s failed", b["URI"])
                        if b.get("Phase") == "FullScanning":  # a first scan that cannot run fails the binding
                            self._fail_binding(b, f"scan failed: {exc}")
            except Exception:  # the store may be closing
                if self._stop.is_set():
                    return
                log.exception("binding scan failed")

    def _fail_binding(self, binding: dict[str, Any], reason: str) -> None:
        key = (binding["ProjectName"], binding["DatasetName"], binding["URI"])
        with self.store.tx() as tx:
            doc = tx.get("binding", *key)
            if doc is not None:
                doc.update(State="Failed", Reason=reason, UpdateTime=now_rfc3339_nano())
                tx.put("binding", doc, *key)

    # ------------------------------------------------------------------ tasks

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
                if tx.get("cluster", project, dataset, target) is None:
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

    # ------------------------------------------------------------------ searching

    def search_image(self, project: str, dataset: str, uri: str) -> list[FigureClusterMatch]:
        """SearchImageFigureCluster: the faces found in an image and, for each, the figure cluster it belongs
        to. Inferred (IMM does not publish how): a face belongs to the cluster of smallest root-mean-square
        distance to its members when that is under the clustering threshold (the rule a clustering task uses
        to let a face join a cluster); Similarity is 1 - that distance, clamped to 0-1. Faces that belong to
        no cluster are not listed."""
        try:
            self._service_read(project, "oss:GetObject", uri)
            data, whole, obj = self.read_object(uri)
        except AccessDeniedError as exc:
            raise invalid(f"The parameter SourceURI is invalid: the service role may not read it: {exc}") from None
        except (ValueError, OSError):
            raise invalid(f"The parameter SourceURI is invalid: {uri!r} is not a readable OSS object") from None
        if not self.analyzer.faces_available:
            raise invalid(FACE_ANALYSIS_UNAVAILABLE)
        if not whole:
            raise invalid(f"The parameter SourceURI is invalid: {uri!r} is larger than "
                          f"{IMG_MAX_SOURCE_BYTES // (1024 * 1024)} MB")  # fmt: skip
        try:
            faces = self.analyzer.analyze(data, obj.name).faces
        except ImageLimitError as exc:
            raise invalid(f"The parameter SourceURI is invalid: {uri!r}: {exc}") from None
        except Exception:  # an object the analyzer cannot read is the caller's input, not a server fault
            log.exception("SearchImageFigureCluster %s: analysis failed", uri)
            raise invalid(f"The parameter SourceURI is invalid: {uri!r} is not an image that can be analysed") from None
        if not faces:
            return []
        with self.store.snapshot() as tx:
            stats = cluster_stats(tx, project, dataset)  # a batch of members at a time: memory stays bounded
        if not stats.ids:
            return []
        rms = np.sqrt(stats.rms2(np.stack([np.asarray(f.embedding, np.float64) for f in faces])))
        out: list[FigureClusterMatch] = []
        for face, row in zip(faces, rms, strict=True):
            best = int(np.argmin(row))
            if row[best] < self.threshold:
                left, top, width, height = face.boundary
                out.append(FigureClusterMatch(
                    boundary=Boundary(left=left, top=top, width=width, height=height),
                    cluster_id=stats.ids[best], similarity=round(max(0.0, min(1.0, 1.0 - float(row[best]))), 4),
                ))  # fmt: skip
        return out

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
    project: str, dataset: str, item: dict[str, Any], analysis: ImageAnalysis, *, size: int, etag: str, mtime_ns: int
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A file's metadata document as GetFileMeta returns it, and its faces with their new figure ids. ``size``,
    ``etag`` and ``mtime_ns`` are the object's (its ETag as an OSS HEAD of it says)."""
    uri = item["URI"]
    now = now_rfc3339_nano()
    modified = rfc3339_nano(mtime_ns)
    faces = [(f"{uuid.uuid4()}", face) for face in analysis.faces]
    doc: dict[str, Any] = {
        "OwnerId": OWNER_ID, "ProjectName": project, "DatasetName": dataset, "ObjectType": "file",
        "ObjectId": hashlib.sha256(uri.encode()).hexdigest(), "URI": uri, "Filename": uri.rsplit("/", 1)[-1],
        "MediaType": analysis.media_type, "ContentType": analysis.content_type, "Size": size,
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
