"""What every group of IMM operations shares: the store and the job runner (:class:`OperationsBase`, with the
lookups that answer IMM's ResourceNotFound), event ids, time-window and label filters, and
:class:`RenderedResponse`."""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol

from imm_faces.emulator.errors import invalid, not_found
from imm_faces.emulator.store import DatasetKey, Files, Key, ProjectKey, Store, Tx
from imm_faces.runtime.models.inputs import TimeRange
from imm_faces.runtime.operations import figure_clusters as fc
from imm_faces.runtime.operations.base import Request, Response
from imm_faces.runtime.timestamps import parse_rfc3339


class Jobs(Protocol):
    """What the service hands off (implemented by :class:`imm_faces.emulator.jobs.JobRunner`)."""

    def index(self, project: str, dataset: str, files: list[dict[str, Any]]) -> list[int]: ...
    def bind(self, project: str, dataset: str, uri: str) -> None: ...
    def cluster(self, project: str, dataset: str, task_id: str) -> None: ...
    def merge(self, project: str, dataset: str, task_id: str, sources: list[str], target: str) -> None: ...
    def remove_files(self, tx: Tx, project: str, dataset: str, uris: list[str]) -> None: ...
    def search_image(self, project: str, dataset: str, uri: str) -> list[fc.FigureClusterMatch]: ...


def new_event_id() -> str:
    return f"{uuid.uuid4().hex[:3].upper()}-{uuid.uuid4().hex[:24]}"


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


class OperationsBase:
    """The state every operation group works on."""

    def __init__(self, store: Store, jobs: Jobs) -> None:
        self.store = store
        self.jobs = jobs

    @staticmethod
    def _project(tx: Tx, name: str) -> dict[str, Any]:
        doc = tx.get(ProjectKey(name))
        if doc is None:
            raise not_found("project")
        return doc

    @staticmethod
    def _require_project(tx: Tx, name: str) -> None:
        """IMM's ResourceNotFound for a missing project; its document is not read."""
        if not tx.exists(ProjectKey(name)):
            raise not_found("project")

    def _require_dataset(self, tx: Tx, project: str, dataset: str) -> None:
        """IMM's ResourceNotFound for a missing project or dataset (the project first); no document is read."""
        self._require_project(tx, project)
        if not tx.exists(DatasetKey(project, dataset)):
            raise not_found("dataset")

    def _dataset(self, tx: Tx, project: str, dataset: str) -> dict[str, Any]:
        self._require_project(tx, project)
        doc = tx.get(DatasetKey(project, dataset))
        if doc is None:
            raise not_found("dataset")
        return doc

    def _child(self, tx: Tx, key: Key, resource: str) -> dict[str, Any]:
        """A resource inside a dataset (binding, file, figure cluster), or IMM's ResourceNotFound for it."""
        self._require_dataset(tx, key.project, key.dataset)
        doc = tx.get(key)
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
        files = tx.scan(Files(project, dataset))
        return {"FileCount": len(files), "TotalFileSize": sum(int(doc.get("Size") or 0) for _, doc in files)}


def in_windows(rows: list[dict[str, Any]], windows: dict[str, TimeRange | None]) -> list[dict[str, Any]]:
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
            r
            for r in rows
            if r.get(field)
            and (start is None or parse_rfc3339(r[field]) >= start)
            and (end is None or parse_rfc3339(r[field]) <= end)
        ]
    return rows


def labels_match(labels: dict[str, Any], expression: str) -> bool:
    """A small label query: ``key=value`` terms joined by ``and`` (values may be quoted)."""
    for term in expression.replace(" AND ", " and ").split(" and "):
        key, sep, value = term.strip().partition("=")
        if not sep:
            raise invalid(f"The parameter CustomLabels is invalid: expected key=value terms; got {term!r}")
        if str(labels.get(key.strip())) != value.strip().strip("'\""):
            return False
    return True
