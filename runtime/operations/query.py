"""Metadata queries: SimpleQuery (the files of a dataset that match a query tree, or statistics over them)."""

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from imm_faces.runtime.models import query as q
from imm_faces.runtime.models.file import File, FileFaces
from imm_faces.runtime.operations.base import JSON_STRING, Operation, Request, Response
from imm_faces.runtime.rules import PAGE_LIMITS, SIMPLE_QUERY_MAX_GROUPS, SIMPLE_QUERY_MAX_SORT_FIELDS

ORDERS = ("asc", "desc")


class SimpleQueryRequest(Request):
    """The SDK's ``SimpleQueryRequest``. ``Sort`` and ``Order`` are comma-separated lists (``Size,Filename`` /
    ``asc,desc``); an order not given is ``desc`` (documented). MaxResults is 0-100 for files, 0-2000 for
    aggregation groups; 0 or absent means 100."""

    project_name: str
    dataset_name: str
    aggregations: Annotated[list[q.SimpleQueryAggregation] | None, JSON_STRING] = None
    max_results: Annotated[int | None, Field(ge=0, le=SIMPLE_QUERY_MAX_GROUPS)] = None
    next_token: str | None = None
    query: Annotated[q.SimpleQuery | None, JSON_STRING] = None
    sort: str | None = None
    order: str | None = None
    with_fields: Annotated[list[str] | None, JSON_STRING] = None
    without_total_hits: bool | None = None

    @field_validator("max_results")
    @classmethod
    def _page(cls, value: int | None, info: ValidationInfo) -> int | None:
        limit = PAGE_LIMITS["SimpleQuery"][0]
        if value is not None and value > limit and not info.data.get("aggregations"):
            raise ValueError(f"must be 0-{limit} without Aggregations (0-{SIMPLE_QUERY_MAX_GROUPS} with them)")
        return value

    @field_validator("sort")
    @classmethod
    def _sort(cls, value: str | None) -> str | None:
        if value is not None and len(value.split(",")) > SIMPLE_QUERY_MAX_SORT_FIELDS:
            raise ValueError(f"at most {SIMPLE_QUERY_MAX_SORT_FIELDS} comma-separated fields")
        return value

    @field_validator("order")
    @classmethod
    def _order(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        orders = [o.strip() for o in value.split(",")]
        if any(o not in ORDERS for o in orders):
            raise ValueError("a comma-separated list of asc and desc")
        if len(orders) > len((info.data.get("sort") or "").split(",")):
            raise ValueError("more orders than Sort fields")
        return value

    def sort_keys(self) -> list[tuple[str, bool]]:
        """(field, descending) for each Sort field; an order not given is desc, as documented."""
        fields = [s.strip() for s in (self.sort or "").split(",") if s.strip()]
        orders = [o.strip() for o in (self.order or "").split(",") if o.strip()]
        return [(name, (orders[i] if i < len(orders) else "desc") == "desc") for i, name in enumerate(fields)]


class _SimpleQueryAnswer(Response):
    """What every reading of SimpleQuery's answer holds besides its files."""

    aggregations: list[q.AggregationResult] | None = None
    next_token: str | None = None
    total_hits: int | None = None


class SimpleQueryResponse(_SimpleQueryAnswer):
    files: list[File] | None = None


SimpleQuery = Operation(
    "SimpleQuery",
    SimpleQueryRequest,
    SimpleQueryResponse,
    "Find a dataset's files by a query on their metadata (e.g. Figures.FigureClusterId), or aggregate them.",
    page_items="files",
)


class SimpleQueryFaces(_SimpleQueryAnswer):
    """SimpleQuery's answer with each file read as :class:`~imm_faces.runtime.models.file.FileFaces`."""

    files: list[FileFaces] | None = None


SimpleQueryFileFaces = SimpleQuery.reading(SimpleQueryFaces)
"""SimpleQuery, each file read as :class:`~imm_faces.runtime.models.file.FileFaces` (URI, MediaType, and the
cluster each face names)."""
