"""IMM operations on tasks: the figure clustering and merging tasks, GetTask, ListTasks."""

from __future__ import annotations

import json
import uuid
from typing import Any

from imm_faces.emulator.errors import ApiError, invalid, not_found
from imm_faces.emulator.operations.base import (
    OperationsBase,
    in_windows,
    labels_match,
    new_event_id,
)
from imm_faces.emulator.operations.paging import offset_page, page_size
from imm_faces.emulator.store import ClusterKey, TaskKey, Tasks
from imm_faces.runtime.operations import tasks as t
from imm_faces.runtime.timestamps import now_rfc3339_nano


class TaskOperations(OperationsBase):
    def op_create_figure_clustering_task(self, req: t.CreateFigureClusteringTaskRequest) -> t.CreateTaskResponse:
        task_id = f"{t.FACE_CLUSTERING}-{uuid.uuid4()}"
        event_id = new_event_id()
        with self.store.tx() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            tx.put(TaskKey(req.project_name, task_id), self._task_doc(req, task_id, t.FACE_CLUSTERING, event_id))
        self.jobs.cluster(req.project_name, req.dataset_name, task_id)
        return t.CreateTaskResponse(task_id=task_id, event_id=event_id)

    def op_create_figure_clusters_merging_task(
        self, req: t.CreateFigureClustersMergingTaskRequest
    ) -> t.CreateTaskResponse:
        sources = req.sources()
        if not sources:
            raise ApiError("MissingParameter", detail="The parameter From or Froms is required but not provided.")
        if req.to in sources:
            raise invalid(f"The parameter To is invalid: {req.to!r} is also a source (From/Froms)")
        task_id = f"{t.FIGURE_CLUSTERS_MERGING}-{uuid.uuid4()}"
        event_id = new_event_id()
        with self.store.tx() as tx:
            # Inferred: unknown clusters are refused when the task is created (the docs do not say when).
            for cluster_id in [req.to, *sources]:
                self._child(tx, ClusterKey(req.project_name, req.dataset_name, cluster_id), "FigureCluster")
            task = self._task_doc(req, task_id, t.FIGURE_CLUSTERS_MERGING, event_id)
            tx.put(TaskKey(req.project_name, task_id), task)
        self.jobs.merge(req.project_name, req.dataset_name, task_id, sources, req.to)
        return t.CreateTaskResponse(task_id=task_id, event_id=event_id)

    @staticmethod
    def _task_doc(
        req: t.CreateFigureClusteringTaskRequest | t.CreateFigureClustersMergingTaskRequest,
        task_id: str,
        task_type: str,
        event_id: str,
    ) -> dict[str, Any]:
        doc = {
            "TaskId": task_id,
            "TaskType": task_type,
            "Status": t.TASK_RUNNING,
            "StartTime": now_rfc3339_nano(),
            "Progress": 0,
            "EventId": event_id,
            "Tags": req.tags or {},
            "UserData": req.user_data or "",
            "ProjectName": req.project_name,
            "TaskRequestDefinition": json.dumps(req.to_params(), ensure_ascii=False),
        }
        if not req.tags:
            doc.pop("Tags")
        return doc

    @staticmethod
    def _task_view(doc: dict[str, Any], definition: bool) -> dict[str, Any]:
        out = {k: v for k, v in doc.items() if k not in ("EventId", "ProjectName", "TaskRequestDefinition")}
        if definition:
            out["TaskRequestDefinition"] = doc.get("TaskRequestDefinition")
        return out

    def op_get_task(self, req: t.GetTaskRequest) -> t.GetTaskResponse:
        with self.store.snapshot() as tx:
            self._require_project(tx, req.project_name)
            doc = tx.get(TaskKey(req.project_name, req.task_id))
        if doc is None or doc["TaskType"] != req.task_type:
            raise not_found("task")
        view = self._task_view(doc, bool(req.request_definition))
        return t.GetTaskResponse.model_validate(
            {**view, "ProjectName": req.project_name, "EventId": doc.get("EventId")}
        )

    def op_list_tasks(self, req: t.ListTasksRequest) -> t.ListTasksResponse:
        size = page_size("ListTasks", req.max_results)
        with self.store.snapshot() as tx:
            self._require_project(tx, req.project_name)
            rows = [doc for _, doc in tx.scan(Tasks(req.project_name))]
        if req.task_types:
            rows = [r for r in rows if r["TaskType"] in req.task_types]
        if req.status:
            rows = [r for r in rows if r["Status"] == req.status]
        rows = in_windows(rows, {"StartTime": req.start_time_range, "EndTime": req.end_time_range})
        if req.tag_selector:
            rows = [r for r in rows if labels_match(r.get("Tags") or {}, req.tag_selector)]
        sort = req.sort or "TaskId"
        rows.sort(key=lambda r: (r.get(sort) or "", r["TaskId"]), reverse=req.order == "desc")
        page, more = offset_page(rows, req.next_token, size)
        return t.ListTasksResponse.model_validate(
            {
                "ProjectName": req.project_name,
                "Tasks": [self._task_view(r, bool(req.request_definition)) for r in page],
                "NextToken": more,
                "MaxResults": str(size),
            }
        )
