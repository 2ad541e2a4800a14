"""SimpleQuery over a dataset's file metadata (evaluated by :mod:`imm_faces.emulator.query`)."""

from __future__ import annotations

from imm_faces.emulator import query as sq
from imm_faces.emulator.errors import invalid
from imm_faces.emulator.operations.base import (
    OperationsBase,
)
from imm_faces.emulator.operations.paging import offset_page, page_size
from imm_faces.emulator.store import Files
from imm_faces.runtime import rules
from imm_faces.runtime.models.query import SimpleQuery, SimpleQueryAggregation
from imm_faces.runtime.operations import query as q


class QueryOperations(OperationsBase):
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
                    aggregations=[
                        sq.group_result(spec, counts, req.max_results or rules.PAGE_LIMITS["SimpleQuery"][1])
                        for spec in req.aggregations
                    ],
                    total_hits=None if req.without_total_hits else hits,
                )
            fields = _top_level_fields(req.query, req.aggregations) if req.aggregations else None
            if clusters is None and fields is not None:  # only the aggregations are answered: read what they use
                docs = [doc for _, doc in tx.scan_fields(Files(req.project_name, req.dataset_name), fields)]
            elif clusters is None:
                docs = [doc for _, doc in tx.scan(Files(req.project_name, req.dataset_name))]
            else:  # only the files with a face in those clusters can match: read just them
                uris = tx.uris_in_clusters(req.project_name, req.dataset_name, clusters)
                found = tx.get_many(Files(req.project_name, req.dataset_name), uris)
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
        page, more = offset_page(ordered, req.next_token, page_size("SimpleQuery", req.max_results))
        if req.with_fields:
            page = [sq.project(doc, req.with_fields) for doc in page]
        return q.SimpleQueryResponse.model_validate({"Files": page, "NextToken": more, "TotalHits": total})


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
