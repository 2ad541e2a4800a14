"""SimpleQuery's query tree and aggregations (the SDK's ``SimpleQuery`` and ``SimpleQueryRequestAggregations``).

A query is a tree: a leaf compares one metadata field (``Figures.FigureClusterId``, ``Size``...) with a value;
``and``/``or``/``not`` combine ``SubQueries``; ``nested`` applies its ``SubQueries`` to one element at a time of
an array field (``Figures``), so two conditions must hold for the same face. Values always travel as strings
(the SDK declares ``Value: str``); numbers and times are compared as such by the service.
"""

from typing import Literal, Self

from pydantic import model_validator

from imm_faces.runtime.models.base import Number, WireModel

QueryOperation = Literal[
    "eq", "prefix", "gt", "gte", "lt", "lte", "match-phrase", "exist", "and", "or", "not", "nested"
]
AggregationOperation = Literal["count", "sum", "average", "max", "min", "distinct", "group"]


class SimpleQuery(WireModel):
    """One node of a SimpleQuery ``Query``."""

    field: str | None = None
    operation: QueryOperation
    value: str | None = None
    sub_queries: list["SimpleQuery"] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        # The SDK's comments: Field and Operation are required; SubQueries only with and/or/not/nested;
        # Value is ignored for those. ``exist`` needs no Value (inferred: it tests presence).
        if self.operation in ("and", "or", "not", "nested"):
            if not self.sub_queries:
                raise ValueError(f"Operation {self.operation} needs SubQueries")
            if self.operation == "nested" and not self.field:
                raise ValueError("Operation nested needs the Field of an array (e.g. Figures)")
        else:
            if not self.field:
                raise ValueError(f"Operation {self.operation} needs a Field")
            if self.value is None and self.operation != "exist":
                raise ValueError(f"Operation {self.operation} needs a Value")
            if self.sub_queries:
                raise ValueError(f"SubQueries are allowed only with and, or, not, nested (not {self.operation})")
        return self


class SimpleQueryAggregation(WireModel):
    """One entry of SimpleQuery's ``Aggregations``: a statistic of a field over the matched files."""

    field: str
    operation: AggregationOperation


class AggregationGroup(WireModel):
    count: int | None = None
    value: str | None = None


class AggregationResult(WireModel):
    """One entry of SimpleQuery's response ``Aggregations``."""

    field: str | None = None
    operation: str | None = None
    value: Number | None = None
    groups: list[AggregationGroup] | None = None
