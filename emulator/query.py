"""SimpleQuery over file documents: matching a query tree, sorting, projecting fields, aggregating.

A field is a dotted path into a file's metadata (``Size``, ``Figures.FigureClusterId``); a path through an
array reaches every element, and a leaf condition holds when any value it reaches satisfies it (as in the
search engine behind IMM's metadata index). ``nested`` instead requires all its sub-conditions to hold for the
same array element. Values arrive as strings: they are compared as numbers with numeric fields, as instants
with RFC3339 times (fields named ``...Time``), and as text otherwise.

Inferred where IMM's documentation is silent: ``match-phrase`` is a case-insensitive substring test (the
service runs a tokenised phrase match); ``not`` holds when none of its SubQueries does; a file without the
field never satisfies a comparison; sorting puts files without the field last, then orders by URI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from imm_faces.runtime.models.query import AggregationGroup, AggregationResult, SimpleQuery, SimpleQueryAggregation
from imm_faces.runtime.timestamps import parse_rfc3339


class QueryError(ValueError):
    """A query that cannot be evaluated (e.g. a non-numeric Value for a numeric field)."""


def values(doc: Any, path: str) -> list[Any]:
    """Every value a dotted path reaches in a document (arrays are walked element by element)."""
    current: list[Any] = [doc]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in current:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict) and element.get(part) is not None:
                    nxt.append(element[part])
        current = nxt
    return [v for item in current for v in (item if isinstance(item, list) else [item])]


def _as_time(value: str) -> datetime | None:
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _comparable(field: str, have: Any, want: str) -> tuple[Any, Any] | None:
    """(stored, wanted) as values of one type, or None when they cannot be compared."""
    if isinstance(have, bool):
        return have, want.strip().lower() == "true"
    if isinstance(have, int | float):
        try:
            return have, float(want)
        except ValueError:
            raise QueryError(f"Value {want!r} of {field} is not a number") from None
    if isinstance(have, str):
        if field.rsplit(".", 1)[-1].endswith("Time"):
            stored, wanted = _as_time(have), _as_time(want)
            if wanted is None:
                raise QueryError(f"Value {want!r} of {field} is not an RFC3339 time")
            return (stored, wanted) if stored is not None else None
        return have, want
    return None


def _leaf(query: SimpleQuery, doc: Any, field: str) -> bool:
    found = values(doc, field)
    op, want = query.operation, query.value or ""
    if op == "exist":
        return bool(found)
    for have in found:
        if op == "prefix":
            if isinstance(have, str) and have.startswith(want):
                return True
            continue
        if op == "match-phrase":
            if isinstance(have, str) and want.lower() in have.lower():
                return True
            continue
        pair = _comparable(field, have, want)
        if pair is None:
            continue
        a, b = pair
        if (
            (op == "eq" and a == b)
            or (op == "gt" and a > b)
            or (op == "gte" and a >= b)
            or (op == "lt" and a < b)
            or (op == "lte" and a <= b)
        ):
            return True
    return False


def matches(query: SimpleQuery | None, doc: Any, scope: str = "") -> bool:
    """Whether a document satisfies a query; ``scope`` is the array path a ``nested`` query descended into."""
    if query is None:
        return True
    subs = query.sub_queries or []
    if query.operation == "and":
        return all(matches(s, doc, scope) for s in subs)
    if query.operation == "or":
        return any(matches(s, doc, scope) for s in subs)
    if query.operation == "not":
        return not any(matches(s, doc, scope) for s in subs)
    field = _relative(query.field or "", scope)
    if query.operation == "nested":
        inner = f"{scope}.{field}" if scope else field
        return any(all(matches(s, element, inner) for s in subs) for element in _elements(doc, field))
    return _leaf(query, doc, field)


CLUSTER_FIELD = "Figures.FigureClusterId"


def clusters_required(query: SimpleQuery | None) -> set[str] | None:
    """The FigureClusterIds of which a matching file must hold at least one, when the query says so (an ``eq``
    on ``Figures.FigureClusterId``, under ``and`` or an ``or`` of such); None when it does not restrict them.
    Lets the service read only those files (through the faces' cluster index) instead of every file."""
    if query is None:
        return None
    if query.operation == "eq" and query.field == CLUSTER_FIELD:
        return {query.value or ""}
    subs = [clusters_required(s) for s in query.sub_queries or []]
    if query.operation == "and":  # each known constraint holds; the narrowest one selects the candidates
        known = [s for s in subs if s is not None]
        return min(known, key=len) if known else None
    if query.operation == "or" and subs and all(s is not None for s in subs):
        return set().union(*[s for s in subs if s is not None])
    return None


def _relative(field: str, scope: str) -> str:
    """Inside ``nested`` on ``Figures``, ``Figures.Age`` names the element's ``Age``."""
    if scope and field.startswith(scope + "."):
        return field[len(scope) + 1 :]
    return field


def _elements(doc: Any, path: str) -> Iterator[Any]:
    for value in values(doc, path):
        if isinstance(value, dict):
            yield value


def sort_files(docs: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Order files by (field, descending) keys; files lacking a field go last; ties by URI."""
    out = sorted(docs, key=lambda d: str(d.get("URI", "")))
    for field, descending in reversed(keys):
        present = [d for d in out if values(d, field)]
        missing = [d for d in out if not values(d, field)]
        present.sort(key=lambda d: _sort_value(values(d, field)[0]), reverse=descending)
        out = present + missing
    return out


def _sort_value(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool | int | float):
        return (0, float(value))
    return (1, str(value))


def project(doc: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Keep only the given fields (dotted paths keep those keys inside objects and arrays) and the URI."""
    tree: dict[str, Any] = {}
    for path in fields:
        node: Any = tree
        *parents, last = path.split(".")
        for part in parents:
            if node.get(part) is True:
                break  # the whole object is kept already
            node = node.setdefault(part, {})
        else:
            node[last] = True
    tree["URI"] = True
    out: dict[str, Any] = _cut(doc, tree)
    return out


def _cut(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_cut(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: (v if sub is True else _cut(v, sub)) for k, v in value.items() if (sub := tree.get(k)) is not None}


def groups_clusters_only(query: SimpleQuery | None, aggregations: list[SimpleQueryAggregation] | None) -> bool:
    """Whether a SimpleQuery asks only for files grouped by their faces' clusters: ``exist`` on
    ``Figures.FigureClusterId`` and nothing but ``group`` aggregations of it (what ``imm-faces verify`` asks to
    find files naming a missing cluster), which the faces' cluster index answers without reading any file."""
    return (
        query is not None
        and query.operation == "exist"
        and query.field == CLUSTER_FIELD
        and bool(aggregations)
        and all(a.field == CLUSTER_FIELD and a.operation == "group" for a in aggregations or [])
    )


def group_result(spec: SimpleQueryAggregation, counts: list[tuple[str, int]], groups: int) -> AggregationResult:
    """A ``group`` aggregation from (value, files) counts ordered most files first, then by value."""
    return AggregationResult(
        field=spec.field,
        operation=spec.operation,
        groups=[AggregationGroup(count=n, value=v) for v, n in counts[:groups]],
    )


def aggregate(docs: list[dict[str, Any]], spec: SimpleQueryAggregation, groups: int) -> AggregationResult:
    """One statistic over the matched files. ``count`` counts values, ``distinct`` distinct values,
    ``group`` counts files per value (most frequent first, at most ``groups``); the numeric ones need
    numbers (inferred: non-numeric values are skipped)."""
    field, op = spec.field, spec.operation
    if op == "group":
        counter: Counter[str] = Counter()
        for doc in docs:
            counter.update({_text(v) for v in values(doc, field)})
        return group_result(spec, sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])), groups)
    found = [v for doc in docs for v in values(doc, field)]
    if op == "count":
        return AggregationResult(field=field, operation=op, value=len(found))
    if op == "distinct":
        return AggregationResult(field=field, operation=op, value=len({_text(v) for v in found}))
    numbers = [float(v) for v in found if isinstance(v, int | float) and not isinstance(v, bool)]
    result: float | None = 0.0 if op == "sum" else None
    if numbers:
        stats = {"sum": sum(numbers), "max": max(numbers), "min": min(numbers)}
        result = stats.get(op, stats["sum"] / len(numbers))  # average
    return AggregationResult(field=field, operation=op, value=result)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
