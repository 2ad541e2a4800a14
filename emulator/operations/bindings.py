"""IMM operations on bindings (a dataset bound to an OSS location): Create, Get, Delete, List."""

from __future__ import annotations

from imm_faces.emulator.errors import ApiError, already_exists, not_found
from imm_faces.emulator.operations.base import (
    OperationsBase,
)
from imm_faces.emulator.operations.paging import key_page, page_size
from imm_faces.emulator.store import BindingKey, Bindings
from imm_faces.runtime.models.resources import Binding
from imm_faces.runtime.operations import bindings as b
from imm_faces.runtime.operations.base import Response
from imm_faces.runtime.timestamps import now_rfc3339_nano


class BindingOperations(OperationsBase):
    def op_create_binding(self, req: b.CreateBindingRequest) -> b.BindingResponse:
        now = now_rfc3339_nano()
        with self.store.tx() as tx:
            dataset = self._dataset(tx, req.project_name, req.dataset_name)
            if tx.get(BindingKey(req.project_name, req.dataset_name, req.uri)) is not None:
                raise already_exists("binding")
            if tx.count(Bindings(req.project_name, req.dataset_name)) >= int(dataset["DatasetMaxBindCount"]):
                raise ApiError("LimitExceededError", detail="resource count exceeds the limit")
            doc = Binding(
                project_name=req.project_name,
                dataset_name=req.dataset_name,
                uri=req.uri,
                state="Running",
                phase="FullScanning",
                reason="",
                create_time=now,
                update_time=now,
            ).to_wire()
            tx.put(BindingKey(req.project_name, req.dataset_name, req.uri), doc)
        self.jobs.bind(req.project_name, req.dataset_name, req.uri)
        return b.BindingResponse(binding=Binding.model_validate(doc))

    def op_get_binding(self, req: b.BindingRequest) -> b.BindingResponse:
        with self.store.snapshot() as tx:
            doc = self._child(tx, BindingKey(req.project_name, req.dataset_name, req.uri), "binding")
        return b.BindingResponse(binding=Binding.model_validate(doc))

    def op_delete_binding(self, req: b.BindingRequest) -> Response:
        with self.store.tx() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            if not tx.delete(BindingKey(req.project_name, req.dataset_name, req.uri)):
                raise not_found("binding")
        return Response()

    def op_list_bindings(self, req: b.ListBindingsRequest) -> b.ListBindingsResponse:
        size = page_size("ListBindings", req.max_results)
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            rows = tx.scan(Bindings(req.project_name, req.dataset_name))
        page, more = key_page(rows, req.next_token, size)
        return b.ListBindingsResponse(bindings=[Binding.model_validate(doc) for doc in page], next_token=more)
