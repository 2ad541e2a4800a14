"""The indexer: IndexFileMeta's queue and the workers that analyse each file and record it with its faces.

Index jobs run on a thread pool (one worker per core: face analysis is CPU-bound and releases the GIL in
dlib/numpy); a job never waits for anything. The queue is in the store before a call is answered, so a job a
killed process acknowledged is picked up again (:meth:`Indexer.resume`). IMM reads objects as the project's
service role (:class:`ObjectReads`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imm_faces.emulator.analysis import Analyzer, ImageAnalysis, exif_json, image_metadata
from imm_faces.emulator.figures import OWNER_ID, forget_file_faces, record_file_faces
from imm_faces.emulator.images import ImageLimitError
from imm_faces.emulator.oss import ObjectFile, list_bucket, open_uri
from imm_faces.emulator.oss import etag as object_etag
from imm_faces.emulator.ram import AccessDeniedError
from imm_faces.emulator.store import DatasetKey, FileKey, Store, Tx
from imm_faces.runtime.models.inputs import InputFile
from imm_faces.runtime.rules import IMG_MAX_SOURCE_BYTES
from imm_faces.runtime.timestamps import now_rfc3339_nano, rfc3339_nano

log = logging.getLogger("imm_faces.emulator")
HEADER_BYTES = 64 * 1024  # read of an object too large to analyse: its header, for its size and type
# What an IndexFileMeta caller may set on a file (InputFile's fields), besides what indexing derives itself.
USER_FILE_FIELDS = tuple(
    info.alias or name
    for name, info in InputFile.model_fields.items()
    if name not in ("uri", "ossuri", "file_hash", "figures")
)


class ObjectReads:
    """Objects under ``oss_root`` as IMM reads them: as the project's service role. ``service_reads`` (RAM,
    emulator/ram.py's ServiceRoleReads): (project, action, uri) -> None, or AccessDeniedError; None reads
    everything."""

    def __init__(self, oss_root: Path, service_reads: Callable[[str, str, str], None] | None) -> None:
        self.oss_root = oss_root
        self.service_reads = service_reads

    def check(self, project: str, action: str, uri: str) -> None:
        if self.service_reads is not None:
            self.service_reads(project, action, uri)

    def read(self, uri: str) -> tuple[bytes, bool, ObjectFile]:
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

    def list(self, bucket: str, prefix: str) -> dict[str, tuple[str, int]] | None:
        """Objects under ``oss://bucket/prefix``: key -> (modified time as GetFileMeta shows it, size); None when
        the bucket does not exist. Hidden names are skipped; nothing resolving outside the bucket is listed."""
        objects = list_bucket(self.oss_root, bucket, prefix)
        if objects is None:
            return None
        return {key: (rfc3339_nano(st.st_mtime_ns), st.st_size) for key, st in objects.items()}


class Indexer:
    """Index jobs, each one file, on ``workers`` threads (one per core by default); ``on_done`` is called after
    each job (the binding scanner waits for the jobs of a first scan)."""

    def __init__(
        self,
        store: Store,
        objects: ObjectReads,
        analyzer: Analyzer,
        *,
        workers: int | None = None,
        on_done: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.objects = objects
        self.analyzer = analyzer
        self.on_done = on_done
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="imm-index")
        # Index jobs queued or running in this process: job id -> (project, dataset, URI).
        self._inflight: dict[int, tuple[str, str, str]] = {}
        self._idle = threading.Condition()

    def resume(self) -> None:
        """Queue again the index jobs a previous process acknowledged but did not finish."""
        with self.store.tx() as tx:
            queued = tx.queued()
        for job_id, project, dataset, item in queued:
            self._submit_index(project, dataset, item, job_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

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

    def queued_in(self, project: str, dataset: str) -> dict[str, int]:
        """The dataset's index jobs queued or running in this process: URI -> job id."""
        with self._idle:
            return {u: job for job, (p, d, u) in self._inflight.items() if (p, d) == (project, dataset)}

    def any_running(self, job_ids: set[int]) -> bool:
        """Whether any of these index jobs is still queued or running."""
        with self._idle:
            return bool(job_ids & self._inflight.keys())

    def _index_one(self, project: str, dataset: str, item: dict[str, Any], job_id: int) -> None:
        uri = item["URI"]
        indexed: tuple[dict[str, Any], list[tuple[str, Any]]] | None = None
        try:
            self.objects.check(project, "oss:GetObject", uri)
            data, whole, obj = self.objects.read(uri)
            # Inferred: an object over OSS's image source limits is indexed with what its header says, no faces.
            analysis = self._analyze(uri, data, obj.name) if whole else image_metadata(data, obj.name)
            info = obj.info
            indexed = file_doc(
                project, dataset, item, analysis, size=info.st_size, etag=object_etag(info), mtime_ns=info.st_mtime_ns
            )
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
                    put_file(tx, project, dataset, *indexed)
        except Exception:  # the store may be closing
            log.exception("IndexFileMeta %s could not be recorded", uri)
        finally:
            with self._idle:
                self._inflight.pop(job_id, None)
                self._idle.notify_all()
            self.on_done()  # a binding may have finished its first scan

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
            tx.delete(FileKey(project, dataset, uri))


def file_doc(
    project: str, dataset: str, item: dict[str, Any], analysis: ImageAnalysis, *, size: int, etag: str, mtime_ns: int
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A file's metadata document as GetFileMeta returns it, and its faces with their new figure ids. ``size``,
    ``etag`` and ``mtime_ns`` are the object's (its ETag as an OSS HEAD of it says)."""
    uri = item["URI"]
    now = now_rfc3339_nano()
    modified = rfc3339_nano(mtime_ns)
    faces = [(f"{uuid.uuid4()}", face) for face in analysis.faces]
    doc: dict[str, Any] = {
        "OwnerId": OWNER_ID,
        "ProjectName": project,
        "DatasetName": dataset,
        "ObjectType": "file",
        "ObjectId": hashlib.sha256(uri.encode()).hexdigest(),
        "URI": uri,
        "Filename": uri.rsplit("/", 1)[-1],
        "MediaType": analysis.media_type,
        "ContentType": analysis.content_type,
        "Size": size,
        "FileHash": etag,
        "ETag": etag,
        "FileModifiedTime": modified,
        "ProduceTime": modified,
        "CreateTime": now,
        "UpdateTime": now,
        "OSSObjectType": "Normal",
        "OSSStorageClass": "Standard",
    }
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


def put_file(tx: Tx, project: str, dataset: str, doc: dict[str, Any], faces: list[tuple[str, Any]]) -> None:
    if tx.get(DatasetKey(project, dataset)) is None:
        return  # the dataset was deleted meanwhile
    uri = doc["URI"]
    old = tx.get(FileKey(project, dataset, uri))
    if old is not None:
        doc["CreateTime"] = old.get("CreateTime", doc["CreateTime"])
    record_file_faces(tx, project, dataset, doc, [face.embedding for _, face in faces])


def _figure(figure_id: str, face: Any) -> dict[str, Any]:
    left, top, width, height = face.boundary
    out: dict[str, Any] = {
        "FigureId": figure_id,
        "FigureType": "face",
        "FigureConfidence": round(face.confidence, 4),
        "Boundary": {"Left": left, "Top": top, "Width": width, "Height": height},
        "FaceQuality": round(face.quality, 4),
        "Sharpness": round(face.sharpness, 4),
    }
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
