"""IMM operations on file metadata: (Batch)IndexFileMeta, GetFileMeta, (Batch)DeleteFileMeta."""

from __future__ import annotations

from typing import Any

from imm_faces.emulator import query as sq
from imm_faces.emulator.operations.base import (
    OperationsBase,
    new_event_id,
)
from imm_faces.emulator.store import FileKey
from imm_faces.runtime.operations import files as f
from imm_faces.runtime.operations.base import Response


class FileOperations(OperationsBase):
    def _index(self, project: str, dataset: str, files: list[dict[str, Any]]) -> f.IndexFileMetaResponse:
        with self.store.snapshot() as tx:  # a read: the writer lock is taken once, by the queueing that follows
            self._require_dataset(tx, project, dataset)
        self.jobs.index(project, dataset, files)
        return f.IndexFileMetaResponse(event_id=new_event_id())

    def op_index_file_meta(self, req: f.IndexFileMetaRequest) -> f.IndexFileMetaResponse:
        return self._index(req.project_name, req.dataset_name, [req.file.to_wire()])

    def op_batch_index_file_meta(self, req: f.BatchIndexFileMetaRequest) -> f.IndexFileMetaResponse:
        return self._index(req.project_name, req.dataset_name, [x.to_wire() for x in req.files])

    def op_get_file_meta(self, req: f.GetFileMetaRequest) -> f.GetFileMetaResponse:
        with self.store.snapshot() as tx:
            doc = self._child(tx, FileKey(req.project_name, req.dataset_name, req.uri), "file")
        if req.with_fields:  # the fields kept as SimpleQuery keeps them (dotted paths reach inside)
            doc = sq.project(doc, req.with_fields)
        return f.GetFileMetaResponse.model_validate({"Files": [doc]})

    def _delete(self, project: str, dataset: str, uris: list[str]) -> Response:
        # Inferred: deleting a file the dataset does not hold succeeds (the docs do not say; a delete is
        # idempotent, and a batch is not failed by one URI that is already gone).
        with self.store.tx() as tx:
            self._require_dataset(tx, project, dataset)
            self.jobs.remove_files(tx, project, dataset, list(dict.fromkeys(uris)))
        return Response()

    def op_delete_file_meta(self, req: f.DeleteFileMetaRequest) -> Response:
        return self._delete(req.project_name, req.dataset_name, [req.uri])

    def op_batch_delete_file_meta(self, req: f.BatchDeleteFileMetaRequest) -> Response:
        return self._delete(req.project_name, req.dataset_name, req.uris)
