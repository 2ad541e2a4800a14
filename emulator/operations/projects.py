"""IMM operations on projects: Create, Get, Update, Delete, List."""

from __future__ import annotations

from typing import Any

from imm_faces.emulator.errors import ApiError, already_exists
from imm_faces.emulator.operations.base import (
    OperationsBase,
)
from imm_faces.emulator.operations.paging import key_page, page_size
from imm_faces.emulator.store import Datasets, ProjectKey, Projects, Tx
from imm_faces.runtime import rules
from imm_faces.runtime.models.resources import Project, ResponseTag
from imm_faces.runtime.operations import projects as p
from imm_faces.runtime.operations.base import Response
from imm_faces.runtime.timestamps import now_rfc3339_nano


class ProjectOperations(OperationsBase):
    def op_create_project(self, req: p.CreateProjectRequest) -> p.ProjectResponse:
        now = now_rfc3339_nano()
        doc: dict[str, Any] = {
            "ProjectName": req.project_name,
            "ServiceRole": rules.DEFAULT_SERVICE_ROLE,
            "TemplateId": "",
            "Description": "",
            "ProjectQueriesPerSecond": rules.PROJECT_QUERIES_PER_SECOND,
            "EngineConcurrency": rules.ENGINE_CONCURRENCY,
            **{name: default for name, (_, _, default) in rules.QUOTAS.items()},
            **self._settings(req),
            "Tags": [ResponseTag(tag_key=tag.key, tag_value=tag.value).to_wire() for tag in req.tag or []],
            "CreateTime": now,
            "UpdateTime": now,
        }
        with self.store.tx() as tx:
            if tx.get(ProjectKey(req.project_name)) is not None:
                raise already_exists("project")
            if tx.count(Projects()) >= rules.MAX_PROJECTS_PER_REGION:
                raise ApiError("LimitExceededError", detail="resource count exceeds the limit")
            tx.put(ProjectKey(req.project_name), doc)
        return p.ProjectResponse(project=Project.model_validate(doc))

    def _project_view(self, tx: Tx, doc: dict[str, Any], statistics: bool) -> Project:
        out = {**doc, "DatasetCount": tx.count(Datasets(doc["ProjectName"]))}
        if statistics:
            out.update(self._file_stats(tx, doc["ProjectName"], None))
        return Project.model_validate(out)

    def op_get_project(self, req: p.GetProjectRequest) -> p.ProjectResponse:
        with self.store.snapshot() as tx:
            doc = self._project(tx, req.project_name)
            return p.ProjectResponse(project=self._project_view(tx, doc, bool(req.with_statistics)))

    def op_update_project(self, req: p.UpdateProjectRequest) -> p.ProjectResponse:
        with self.store.tx() as tx:
            doc = self._project(tx, req.project_name)
            doc.update(self._settings(req))
            if req.tag is not None:
                doc["Tags"] = [ResponseTag(tag_key=tag.key, tag_value=tag.value).to_wire() for tag in req.tag]
            doc["UpdateTime"] = now_rfc3339_nano()
            tx.put(ProjectKey(req.project_name), doc)
            return p.ProjectResponse(project=self._project_view(tx, doc, False))

    def op_delete_project(self, req: p.DeleteProjectRequest) -> Response:
        with self.store.tx() as tx:
            self._project(tx, req.project_name)
            if tx.count(Datasets(req.project_name)):
                raise ApiError("StatusConflict")
            tx.delete_children(req.project_name)
            tx.delete(ProjectKey(req.project_name))
        return Response()

    def op_list_projects(self, req: p.ListProjectsRequest) -> p.ListProjectsResponse:
        size = page_size("ListProjects", req.max_results)
        wanted = {(tag.key, tag.value) for tag in req.tag or []}
        with self.store.snapshot() as tx:
            rows = tx.scan(Projects(), prefix=req.prefix or "")
            if wanted:
                rows = [r for r in rows if wanted <= {(tag["TagKey"], tag["TagValue"]) for tag in r[1].get("Tags", [])}]
            page, more = key_page(rows, req.next_token, size)
            return p.ListProjectsResponse(projects=[self._project_view(tx, r, False) for r in page], next_token=more)
