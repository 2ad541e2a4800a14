"""IMM's behaviour: one handler per catalog operation, over the store.

Handlers take the operation's request model and return its response model (both from
``imm_faces.runtime.operations``); the wire layer does the rest. Asynchronous work (indexing, clustering) is handed
to the job runner, which the service holds as ``jobs``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from imm_faces.emulator import query as sq
from imm_faces.emulator.errors import ApiError, already_exists, invalid, not_found
from imm_faces.emulator.figures import cluster_document
from imm_faces.emulator.store import Store, Tx
from imm_faces.runtime import rules
from imm_faces.runtime.models.base import snake_name
from imm_faces.runtime.models.figure_cluster import FigureCluster
from imm_faces.runtime.models.inputs import TimeRange
from imm_faces.runtime.models.query import SimpleQuery, SimpleQueryAggregation
from imm_faces.runtime.models.resources import Binding, Dataset, Project, ResponseTag
from imm_faces.runtime.operations import CATALOG
from imm_faces.runtime.operations import bindings as b
from imm_faces.runtime.operations import datasets as d
from imm_faces.runtime.operations import figure_clusters as fc
from imm_faces.runtime.operations import files as f
from imm_faces.runtime.operations import projects as p
from imm_faces.runtime.operations import query as q
from imm_faces.runtime.operations import tasks as t
from imm_faces.runtime.operations.base import Request, Response
from imm_faces.runtime.timestamps import now_rfc3339_nano, parse_rfc3339

T = TypeVar("T")


class Jobs(Protocol):
    """What the service hands off (implemented by :class:`imm_faces.emulator.jobs.JobRunner`)."""

    def index(self, project: str, dataset: str, files: list[dict[str, Any]]) -> list[int]: ...
    def bind(self, project: str, dataset: str, uri: str) -> None: ...
    def cluster(self, project: str, dataset: str, task_id: str) -> None: ...
    def merge(self, project: str, dataset: str, task_id: str, sources: list[str], target: str) -> None: ...
    def remove_files(self, tx: Tx, project: str, dataset: str, uris: list[str]) -> None: ...
    def search_image(self, project: str, dataset: str, uri: str) -> list[fc.FigureClusterMatch]: ...


def _page_size(op: str, requested: int | None) -> int:
    maximum, default = rules.PAGE_LIMITS[op]
    return min(requested or default, maximum)


def _key_page(rows: Sequence[tuple[str, T]], token: str | None, size: int) -> tuple[list[T], str | None]:
    """A page of rows sorted by key. NextToken is the first key of the next page (IMM's List* style)."""
    if token:
        rows = [row for row in rows if row[0] >= token]
    more = rows[size][0] if len(rows) > size else None
    return [item for _, item in rows[:size]], more


def _offset_page(rows: Sequence[T], token: str | None, size: int) -> tuple[list[T], str | None]:
    """A page of rows in a computed order (sorting, filters): NextToken is an opaque offset."""
    start = 0
    if token:
        try:
            kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
            if kind != "o":
                raise ValueError(token)
            start = int(value)
            if start < 0:
                raise ValueError(token)
        except ValueError:
            raise invalid(f"The parameter NextToken is invalid: {token!r}") from None
    end = start + size
    more = base64.urlsafe_b64encode(f"o:{end}".encode()).decode() if len(rows) > end else None
    return list(rows[start:end]), more


def _event_id() -> str:
    return f"{uuid.uuid4().hex[:3].upper()}-{uuid.uuid4().hex[:24]}"


# ---------------------------------------------------------------------------------------------- cluster views

LIST_VIEW_OMITS = "BaseImages"
"""What the list views of a figure cluster (QueryFigureClusters, BatchGetFigureCluster) leave out of it; a
GetFigureCluster shows it."""


def cluster_view(doc: dict[str, Any], *, base_images: bool) -> FigureCluster:
    """A figure cluster as the API shows it: its stored document without the bookkeeping fields (names starting
    with ``_``, e.g. a pinned cover's ``_CoverFigureId``) and, in a list view, without :data:`LIST_VIEW_OMITS`."""
    out = {k: v for k, v in doc.items() if not k.startswith("_") and (k != LIST_VIEW_OMITS or base_images)}
    return FigureCluster.model_validate(out)


def _cluster_views(tx: Tx, project: str, dataset: str, ids: list[str], base_images: bool) -> list[str]:
    """The views of these clusters as JSON text, in the ids' order, leaving out the ids with no cluster.

    No document is decoded on the usual path. A cluster's stored document is written through the runtime
    model (``figures.cluster_document``: validated by ``FigureCluster``, dumped without nulls, by wire name),
    so once SQLite has dropped :data:`LIST_VIEW_OMITS` from it, a document that holds no bookkeeping field
    and no null *is* the JSON :func:`cluster_view` renders (same members and values; only their order may
    differ). A document with either (a pinned cover; a null inside free-form CustomLabels, which the model
    keeps; one written before documents were normalised) goes through :func:`cluster_view`, as every view
    did before. A string that merely contains ``"_`` or ``null`` takes that path too: slower, same answer."""
    texts = tx.get_many_text("cluster", project, dataset, ids, without=None if base_images else LIST_VIEW_OMITS)
    views: list[str] = []
    for text in texts:
        if text is not None and ('"_' in text or "null" in text):
            doc = json.loads(text)
            views.append(cluster_view(doc, base_images=base_images).model_dump_json(by_alias=True, exclude_none=True))
        elif text is not None:
            views.append(text)
    return views


def _json_array(items: list[str]) -> str:
    return f"[{','.join(items)}]"


class RenderedResponse:
    """A response whose bulky member is JSON text already: ``shell`` (the operation's response model) gives
    every other member, ``field`` names the member (by attribute; the model gives its wire name), ``text`` is
    its JSON. :meth:`render` gives the body the wire layer sends, as ``shell`` with that member set would."""

    def __init__(self, shell: Response, field: str, text: str) -> None:
        alias = type(shell).model_fields[field].alias or field
        self.shell, self.member, self.text = shell, json.dumps(alias), text

    def render(self, request_id: str) -> bytes:
        head = self.shell.model_copy(update={"request_id": request_id}).model_dump_json(
            by_alias=True, exclude_none=True
        )
        return f"{head[:-1]},{self.member}:{self.text}}}".encode()


class ImmService:
    def __init__(self, store: Store, jobs: Jobs) -> None:
        self.store = store
        self.jobs = jobs
        # One handler per catalog operation: ``GetFigureCluster`` is served by ``op_get_figure_cluster``.
        self.handlers: dict[str, Callable[[Any], Response | RenderedResponse]] = {
            name: getattr(self, f"op_{snake_name(name)}") for name in CATALOG
        }

    def handle(self, name: str, request: Request) -> Response | RenderedResponse:
        """The operation's response model, or for the figure-cluster reads a :class:`RenderedResponse`."""
        return self.handlers[name](request)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _project(tx: Tx, name: str) -> dict[str, Any]:
        doc = tx.get("project", "", "", name)
        if doc is None:
            raise not_found("project")
        return doc

    @staticmethod
    def _require_project(tx: Tx, name: str) -> None:
        """IMM's ResourceNotFound for a missing project; its document is not read."""
        if not tx.exists("project", "", "", name):
            raise not_found("project")

    def _require_dataset(self, tx: Tx, project: str, dataset: str) -> None:
        """IMM's ResourceNotFound for a missing project or dataset (the project first); no document is read."""
        self._require_project(tx, project)
        if not tx.exists("dataset", project, "", dataset):
            raise not_found("dataset")

    def _dataset(self, tx: Tx, project: str, dataset: str) -> dict[str, Any]:
        self._require_project(tx, project)
        doc = tx.get("dataset", project, "", dataset)
        if doc is None:
            raise not_found("dataset")
        return doc

    def _child(self, tx: Tx, kind: str, resource: str, project: str, dataset: str, key: str) -> dict[str, Any]:
        """A resource inside a dataset (binding, file, figure cluster), or IMM's ResourceNotFound for it."""
        self._require_dataset(tx, project, dataset)
        doc = tx.get(kind, project, dataset, key)
        if doc is None:
            raise not_found(resource)
        return doc

    @staticmethod
    def _settings(req: Request) -> dict[str, Any]:
        """The settings a Create/Update request carries: every parameter given except names and tags."""
        skip = {"ProjectName", "DatasetName", "Tag"}
        return {k: v for k, v in req.to_wire().items() if k not in skip and v is not None}

    @staticmethod
    def _file_stats(tx: Tx, project: str, dataset: str | None) -> dict[str, int]:
        files = tx.scan("file", project, dataset)
        return {"FileCount": len(files), "TotalFileSize": sum(int(doc.get("Size") or 0) for _, doc in files)}

    # ------------------------------------------------------------------ projects

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
            if tx.get("project", "", "", req.project_name) is not None:
                raise already_exists("project")
            if tx.count("project", "") >= rules.MAX_PROJECTS_PER_REGION:
                raise ApiError("LimitExceededError", detail="resource count exceeds the limit")
            tx.put("project", doc, "", "", req.project_name)
        return p.ProjectResponse(project=Project.model_validate(doc))

    def _project_view(self, tx: Tx, doc: dict[str, Any], statistics: bool) -> Project:
        out = {**doc, "DatasetCount": tx.count("dataset", doc["ProjectName"])}
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
            tx.put("project", doc, "", "", req.project_name)
            return p.ProjectResponse(project=self._project_view(tx, doc, False))

    def op_delete_project(self, req: p.DeleteProjectRequest) -> Response:
        with self.store.tx() as tx:
            self._project(tx, req.project_name)
            if tx.count("dataset", req.project_name):
                raise ApiError("StatusConflict")
            tx.delete_children(req.project_name)
            tx.delete("project", "", "", req.project_name)
        return Response()

    def op_list_projects(self, req: p.ListProjectsRequest) -> p.ListProjectsResponse:
        size = _page_size("ListProjects", req.max_results)
        wanted = {(tag.key, tag.value) for tag in req.tag or []}
        with self.store.snapshot() as tx:
            rows = tx.scan("project", "", "", prefix=req.prefix or "")
            if wanted:
                rows = [r for r in rows if wanted <= {(tag["TagKey"], tag["TagValue"]) for tag in r[1].get("Tags", [])}]
            page, more = _key_page(rows, req.next_token, size)
            return p.ListProjectsResponse(projects=[self._project_view(tx, r, False) for r in page], next_token=more)

    # ------------------------------------------------------------------ datasets

    def _dataset_view(self, tx: Tx, doc: dict[str, Any], statistics: bool) -> Dataset:
        project, dataset = doc["ProjectName"], doc["DatasetName"]
        out = {**doc, "BindCount": tx.count("binding", project, dataset)}
        if statistics:
            out.update(self._file_stats(tx, project, dataset))
        return Dataset.model_validate(out)

    def op_create_dataset(self, req: d.CreateDatasetRequest) -> d.DatasetResponse:
        now = now_rfc3339_nano()
        with self.store.tx() as tx:
            project = self._project(tx, req.project_name)
            if tx.get("dataset", req.project_name, "", req.dataset_name) is not None:
                raise already_exists("dataset")
            if tx.count("dataset", req.project_name) >= int(project["ProjectMaxDatasetCount"]):
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
            tx.put("dataset", doc, req.project_name, "", req.dataset_name)
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
            tx.put("dataset", doc, req.project_name, "", req.dataset_name)
            return d.DatasetResponse(dataset=self._dataset_view(tx, doc, False))

    def op_delete_dataset(self, req: d.DeleteDatasetRequest) -> Response:
        with self.store.tx() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            tx.delete_children(req.project_name, req.dataset_name)  # bindings, files, faces, clusters
            tx.delete("dataset", req.project_name, "", req.dataset_name)
        return Response()

    def op_list_datasets(self, req: d.ListDatasetsRequest) -> d.ListDatasetsResponse:
        size = _page_size("ListDatasets", req.max_results)
        with self.store.snapshot() as tx:
            self._require_project(tx, req.project_name)
            page, more = _key_page(tx.scan("dataset", req.project_name, "", prefix=req.prefix or ""),
                                   req.next_token, size)  # fmt: skip
            return d.ListDatasetsResponse(datasets=[self._dataset_view(tx, r, False) for r in page], next_token=more)

    # ------------------------------------------------------------------ bindings

    def op_create_binding(self, req: b.CreateBindingRequest) -> b.BindingResponse:
        now = now_rfc3339_nano()
        with self.store.tx() as tx:
            dataset = self._dataset(tx, req.project_name, req.dataset_name)
            if tx.get("binding", req.project_name, req.dataset_name, req.uri) is not None:
                raise already_exists("binding")
            if tx.count("binding", req.project_name, req.dataset_name) >= int(dataset["DatasetMaxBindCount"]):
                raise ApiError("LimitExceededError", detail="resource count exceeds the limit")
            doc = Binding(
                project_name=req.project_name, dataset_name=req.dataset_name, uri=req.uri, state="Running",
                phase="FullScanning", reason="", create_time=now, update_time=now,
            ).to_wire()  # fmt: skip
            tx.put("binding", doc, req.project_name, req.dataset_name, req.uri)
        self.jobs.bind(req.project_name, req.dataset_name, req.uri)
        return b.BindingResponse(binding=Binding.model_validate(doc))

    def op_get_binding(self, req: b.BindingRequest) -> b.BindingResponse:
        with self.store.snapshot() as tx:
            doc = self._child(tx, "binding", "binding", req.project_name, req.dataset_name, req.uri)
        return b.BindingResponse(binding=Binding.model_validate(doc))

    def op_delete_binding(self, req: b.BindingRequest) -> Response:
        with self.store.tx() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            if not tx.delete("binding", req.project_name, req.dataset_name, req.uri):
                raise not_found("binding")
        return Response()

    def op_list_bindings(self, req: b.ListBindingsRequest) -> b.ListBindingsResponse:
        size = _page_size("ListBindings", req.max_results)
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            rows = tx.scan("binding", req.project_name, req.dataset_name)
        page, more = _key_page(rows, req.next_token, size)
        return b.ListBindingsResponse(bindings=[Binding.model_validate(doc) for doc in page], next_token=more)

    # ------------------------------------------------------------------ files

    def _index(self, project: str, dataset: str, files: list[dict[str, Any]]) -> f.IndexFileMetaResponse:
        with self.store.snapshot() as tx:  # a read: the writer lock is taken once, by the queueing that follows
            self._require_dataset(tx, project, dataset)
        self.jobs.index(project, dataset, files)
        return f.IndexFileMetaResponse(event_id=_event_id())

    def op_index_file_meta(self, req: f.IndexFileMetaRequest) -> f.IndexFileMetaResponse:
        return self._index(req.project_name, req.dataset_name, [req.file.to_wire()])

    def op_batch_index_file_meta(self, req: f.BatchIndexFileMetaRequest) -> f.IndexFileMetaResponse:
        return self._index(req.project_name, req.dataset_name, [x.to_wire() for x in req.files])

    def op_get_file_meta(self, req: f.GetFileMetaRequest) -> f.GetFileMetaResponse:
        with self.store.snapshot() as tx:
            doc = self._child(tx, "file", "file", req.project_name, req.dataset_name, req.uri)
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

    def op_simple_query(self, req: q.SimpleQueryRequest) -> q.SimpleQueryResponse:
        clusters = sq.clusters_required(req.query)
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            if req.aggregations and sq.groups_clusters_only(req.query, req.aggregations):
                # answered from the faces' cluster index, as IMM answers from its metadata index: the same
                # answer as reading every file's Figures (tests/emulator/test_aggregation_reads.py), in
                # milliseconds instead of a scan of every document
                hits, counts = tx.files_per_cluster(req.project_name, req.dataset_name)
                return q.SimpleQueryResponse(
                    aggregations=[sq.group_result(spec, counts, req.max_results or rules.PAGE_LIMITS["SimpleQuery"][1])
                                  for spec in req.aggregations],
                    total_hits=None if req.without_total_hits else hits,
                )  # fmt: skip
            fields = _top_level_fields(req.query, req.aggregations) if req.aggregations else None
            if clusters is None and fields is not None:  # only the aggregations are answered: read what they use
                docs = [doc for _, doc in tx.scan_fields("file", req.project_name, req.dataset_name, fields)]
            elif clusters is None:
                docs = [doc for _, doc in tx.scan("file", req.project_name, req.dataset_name)]
            else:  # only the files with a face in those clusters can match: read just them
                uris = tx.uris_in_clusters(req.project_name, req.dataset_name, clusters)
                found = tx.get_many("file", req.project_name, req.dataset_name, uris)
                docs = [doc for doc in found if doc is not None]
        try:
            matched = [doc for doc in docs if sq.matches(req.query, doc)]
        except sq.QueryError as exc:
            raise invalid(f"The parameter Query is invalid: {exc}") from None
        total = None if req.without_total_hits else len(matched)
        if req.aggregations:  # documented: only the aggregations are returned, not the files
            groups = req.max_results or rules.PAGE_LIMITS["SimpleQuery"][1]
            return q.SimpleQueryResponse(
                aggregations=[sq.aggregate(matched, spec, groups) for spec in req.aggregations], total_hits=total
            )
        # Inferred: without Sort, files come in URI order (the docs only say pages follow NextToken).
        ordered = sq.sort_files(matched, req.sort_keys())
        page, more = _offset_page(ordered, req.next_token, _page_size("SimpleQuery", req.max_results))
        if req.with_fields:
            page = [sq.project(doc, req.with_fields) for doc in page]
        return q.SimpleQueryResponse.model_validate({"Files": page, "NextToken": more, "TotalHits": total})

    # ------------------------------------------------------------------ tasks

    def op_create_figure_clustering_task(self, req: t.CreateFigureClusteringTaskRequest) -> t.CreateTaskResponse:
        task_id = f"{t.FACE_CLUSTERING}-{uuid.uuid4()}"
        event_id = _event_id()
        with self.store.tx() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            tx.put("task", self._task_doc(req, task_id, t.FACE_CLUSTERING, event_id), req.project_name, "", task_id)
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
        event_id = _event_id()
        with self.store.tx() as tx:
            # Inferred: unknown clusters are refused when the task is created (the docs do not say when).
            for cluster_id in [req.to, *sources]:
                self._child(tx, "cluster", "FigureCluster", req.project_name, req.dataset_name, cluster_id)
            tx.put("task", self._task_doc(req, task_id, t.FIGURE_CLUSTERS_MERGING, event_id), req.project_name,
                   "", task_id)  # fmt: skip
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
            "TaskId": task_id, "TaskType": task_type, "Status": t.TASK_RUNNING,
            "StartTime": now_rfc3339_nano(), "Progress": 0, "EventId": event_id,
            "Tags": req.tags or {}, "UserData": req.user_data or "", "ProjectName": req.project_name,
            "TaskRequestDefinition": json.dumps(req.to_params(), ensure_ascii=False),
        }  # fmt: skip
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
            doc = tx.get("task", req.project_name, "", req.task_id)
        if doc is None or doc["TaskType"] != req.task_type:
            raise not_found("task")
        view = self._task_view(doc, bool(req.request_definition))
        return t.GetTaskResponse.model_validate(
            {**view, "ProjectName": req.project_name, "EventId": doc.get("EventId")}
        )

    def op_list_tasks(self, req: t.ListTasksRequest) -> t.ListTasksResponse:
        size = _page_size("ListTasks", req.max_results)
        with self.store.snapshot() as tx:
            self._require_project(tx, req.project_name)
            rows = [doc for _, doc in tx.scan("task", req.project_name, "")]
        if req.task_types:
            rows = [r for r in rows if r["TaskType"] in req.task_types]
        if req.status:
            rows = [r for r in rows if r["Status"] == req.status]
        rows = _in_windows(rows, {"StartTime": req.start_time_range, "EndTime": req.end_time_range})
        if req.tag_selector:
            rows = [r for r in rows if _labels_match(r.get("Tags") or {}, req.tag_selector)]
        sort = req.sort or "TaskId"
        rows.sort(key=lambda r: (r.get(sort) or "", r["TaskId"]), reverse=req.order == "desc")
        page, more = _offset_page(rows, req.next_token, size)
        return t.ListTasksResponse.model_validate({
            "ProjectName": req.project_name,
            "Tasks": [self._task_view(r, bool(req.request_definition)) for r in page],
            "NextToken": more,
            "MaxResults": str(size),
        })  # fmt: skip

    # ------------------------------------------------------------------ figure clusters

    def op_query_figure_clusters(self, req: fc.QueryFigureClustersRequest) -> RenderedResponse:
        size = _page_size("QueryFigureClusters", req.max_results)
        sort = req.sort or "ObjectId"
        if sort not in fc.SORT_FIELDS:
            raise invalid(f"The parameter Sort is invalid: must be one of {', '.join(fc.SORT_FIELDS[1:])}")
        if sort == "ObjectId" and not (req.create_time_range or req.update_time_range or req.custom_labels):
            return self._query_clusters_by_id(req, size)
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            rows = [doc for _, doc in tx.scan("cluster", req.project_name, req.dataset_name)]
            rows = _in_windows(rows, {"CreateTime": req.create_time_range, "UpdateTime": req.update_time_range})
            if req.custom_labels:
                rows = [r for r in rows if _labels_match(r.get("CustomLabels") or {}, req.custom_labels)]

            def order_key(r: dict[str, Any]) -> tuple[Any, str]:
                value = r.get(sort)
                if sort.endswith("Time"):
                    value = parse_rfc3339(value) if value else None
                return (value if value is not None else "", r["ObjectId"])

            rows.sort(key=order_key, reverse=req.order == "desc")
            page, more = _offset_page(rows, req.next_token, size)
            views = _cluster_views(tx, req.project_name, req.dataset_name, [r["ObjectId"] for r in page], False)
        shell = fc.QueryFigureClustersResponse(next_token=more, total_count=len(rows) if req.with_total_count else None)
        return RenderedResponse(shell, "figure_clusters", _json_array(views))

    def _query_clusters_by_id(self, req: fc.QueryFigureClustersRequest, size: int) -> RenderedResponse:
        """The default order (ObjectId) without filters: page over the keys and read only the page's documents,
        so a page costs O(page), not O(clusters). Same order and NextToken as the general path."""
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            keys = tx.keys("cluster", req.project_name, req.dataset_name)
            if req.order == "desc":
                keys.reverse()
            page_keys, more = _offset_page(keys, req.next_token, size)
            views = _cluster_views(tx, req.project_name, req.dataset_name, page_keys, False)
        shell = fc.QueryFigureClustersResponse(next_token=more, total_count=len(keys) if req.with_total_count else None)
        return RenderedResponse(shell, "figure_clusters", _json_array(views))

    def op_get_figure_cluster(self, req: fc.GetFigureClusterRequest) -> RenderedResponse:
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            views = _cluster_views(tx, req.project_name, req.dataset_name, [req.object_id], True)
        if not views:
            raise not_found("FigureCluster")
        return RenderedResponse(fc.FigureClusterResponse(), "figure_cluster", views[0])

    def op_batch_get_figure_cluster(self, req: fc.BatchGetFigureClusterRequest) -> RenderedResponse:
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
            views = _cluster_views(tx, req.project_name, req.dataset_name, req.object_ids, False)
        return RenderedResponse(fc.BatchGetFigureClusterResponse(), "figure_clusters", _json_array(views))

    def op_update_figure_cluster(self, req: fc.UpdateFigureClusterRequest) -> Response:
        change = req.figure_cluster
        with self.store.tx() as tx:
            doc = self._child(tx, "cluster", "FigureCluster", req.project_name, req.dataset_name, change.object_id)
            current = int(doc.get("MetaLockVersion", 0))
            if change.meta_lock_version is not None and change.meta_lock_version != current:
                # The service's code for a stale lock is not published; InvalidArgument is its generic 400.
                raise invalid(
                    f"MetaLockVersion mismatch: the cluster is at version {current}, "
                    f"the request expected {change.meta_lock_version}"
                )
            for attr, key in (("name", "Name"), ("custom_id", "CustomId"), ("custom_labels", "CustomLabels")):
                value = getattr(change, attr)
                if value is not None:
                    doc[key] = value
            if change.cover is not None and change.cover.figures:
                figure_id = change.cover.figures[0].figure_id
                face = next((r for r in tx.faces(req.project_name, req.dataset_name, cluster_id=change.object_id)
                             if r.figure_id == figure_id), None)  # fmt: skip
                if face is None:
                    raise invalid(f"The parameter FigureCluster.Cover.Figures.0.FigureId is invalid: "
                                  f"{figure_id!r} is not a face of {change.object_id}")  # fmt: skip
                cover = tx.get("file", req.project_name, req.dataset_name, face.uri)
                if cover is not None:
                    doc["Cover"] = cover
                    doc["_CoverFigureId"] = figure_id  # pins the cover against re-clustering (never rendered)
            doc["MetaLockVersion"] = current + 1
            doc["UpdateTime"] = now_rfc3339_nano()
            tx.put("cluster", cluster_document(doc), req.project_name, req.dataset_name, change.object_id)
        return Response()

    def op_search_image_figure_cluster(
        self, req: fc.SearchImageFigureClusterRequest
    ) -> fc.SearchImageFigureClusterResponse:
        with self.store.snapshot() as tx:
            self._require_dataset(tx, req.project_name, req.dataset_name)
        return fc.SearchImageFigureClusterResponse(
            clusters=self.jobs.search_image(req.project_name, req.dataset_name, req.source_uri)
        )


def _in_windows(rows: list[dict[str, Any]], windows: dict[str, TimeRange | None]) -> list[dict[str, Any]]:
    """Keep rows whose timestamp fields fall within the given (inclusive, open-ended) time ranges."""
    for field, window in windows.items():
        if window is None:
            continue
        try:
            start = parse_rfc3339(window.start) if window.start else None
            end = parse_rfc3339(window.end) if window.end else None
        except ValueError:
            raise invalid(f"The time range for {field} is invalid: Start and End must be RFC3339 timestamps") from None
        rows = [
            r for r in rows
            if r.get(field) and (start is None or parse_rfc3339(r[field]) >= start)
            and (end is None or parse_rfc3339(r[field]) <= end)
        ]  # fmt: skip
    return rows


def _top_level_fields(query: SimpleQuery | None, aggregations: list[SimpleQueryAggregation]) -> list[str] | None:
    """The top-level file fields a query and its aggregations can read (every field path's first name: a
    ``nested`` node's array holds its sub-queries' fields), or None when one cannot be cut out by name."""
    names = {spec.field.split(".", 1)[0] for spec in aggregations}
    pending = [query] if query is not None else []
    while pending:
        node = pending.pop()
        if node.field:
            names.add(node.field.split(".", 1)[0])
        pending.extend(node.sub_queries or [])
    if any(not name or '"' in name or "\\" in name for name in names):
        return None
    return sorted(names)


def _labels_match(labels: dict[str, Any], expression: str) -> bool:
    """A small label query: ``key=value`` terms joined by ``and`` (values may be quoted)."""
    for term in expression.replace(" AND ", " and ").split(" and "):
        key, sep, value = term.strip().partition("=")
        if not sep:
            raise invalid(f"The parameter CustomLabels is invalid: expected key=value terms; got {term!r}")
        if str(labels.get(key.strip())) != value.strip().strip("'\""):
            return False
    return True
