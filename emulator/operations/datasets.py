"""IMM operations on datasets: Create, Get, Update, Delete, List."""

from __future__ import annotations

from typing import Any

from imm_faces.emulator.errors import ApiError, already_exists
from imm_faces.emulator.operations.base import (
    OperationsBase,
)
from imm_faces.emulator.operations.paging import key_page, page_size
from imm_faces.emulator.store import Bindings, DatasetKey, Datasets, Tx
from imm_faces.runtime import rules
from imm_faces.runtime.models.resources import Dataset
from imm_faces.runtime.operations import datasets as d
from imm_faces.runtime.operations.base import Response
from imm_faces.runtime.timestamps import now_rfc3339_nano


class DatasetOperations(OperationsBase):
    def _dataset_view(self, tx: Tx, doc: dict[str, Any], statistics: bool) -> Dataset:
        project, dataset = doc["ProjectName"], doc["DatasetName"]
        out = {**doc, "BindCount": tx.count(Bindings(project, dataset))}
        if statistics:
            out.update(self._file_stats(tx, project, dataset))
        return Dataset.model_validate(out)

    def op_create_dataset(self, req: d.CreateDatasetRequest) -> d.DatasetResponse:
        now = now_rfc3339_nano()
        with self.store.tx() as tx:
            project = self._project(tx, req.project_name)
            if tx.get(DatasetKey(req.project_name, req.dataset_name)) is not None:
                raise already_exists("dataset")
            if tx.count(Datasets(req.project_name)) >= int(project["ProjectMaxDatasetCount"]):
                raise ApiError("LimitExceededError", detail="resource count exceeds the limit")
            doc: dict[str, Any] = {
                "ProjectName": req.project_name,
                "DatasetName": req.dataset_name,
                "Description": "",
                "TemplateId": project.get("TemplateId", ""),
                **{q: project[q] for q in rules.QUOTAS if q.startswith("Dataset")},
                **self._settings(req),
                "CreateTime": now,
                "UpdateTime": now,
            }
            tx.put(DatasetKey(req.project_name, req.dataset_name), doc)
            return d.DatasetResponse(dataset=self._dataset_view(tx, doc, False))

    def op_get_dataset(self, req: d.GetDatasetRequest) -> d.DatasetResponse:
        with self.store.snapshot() as tx:
            doc = self._dataset(tx, req.project_name, req.dataset_name)
            return d.DatasetResponse(dataset=self._dataset_view(tx, doc, bool(req.with_statistics)))

    def op_update_dataset(self, req: d.UpdateDatasetRequest) -> d.DatasetResponse:
        with self.store.tx() as tx:
            doc = self._dataset(tx, req.project_name, req.dataset_name)
            doc.update(self._settings(req))
            doc["UpdateTime"] = now_rfc3339_nano()
            tx.put(DatasetKey(req.project_name, req.dataset_name), doc)
            return d.DatasetResponse(dataset=self._dataset_view(tx, doc, False))

    def op_delete_dataset(self, req: d.DeleteDatasetRequest) -> Response:
        with self.store.tx() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            tx.delete_children(req.project_name, req.dataset_name)  # bindings, files, faces, clusters
            tx.delete(DatasetKey(req.project_name, req.dataset_name))
        return Response()

    def op_list_datasets(self, req: d.ListDatasetsRequest) -> d.ListDatasetsResponse:
        size = page_size("ListDatasets", req.max_results)
        with self.store.snapshot() as tx:
            self._require_project(tx, req.project_name)
            page, more = key_page(tx.scan(Datasets(req.project_name), prefix=req.prefix or ""), req.next_token, size)
            return d.ListDatasetsResponse(datasets=[self._dataset_view(tx, r, False) for r in page], next_token=more)
