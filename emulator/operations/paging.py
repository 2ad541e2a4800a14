"""IMM's paging: page sizes from the one table of limits, and the two token styles (a key page, an offset page)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

from imm_faces.emulator.errors import invalid
from imm_faces.runtime import rules

T = TypeVar("T")


def page_size(op: str, requested: int | None) -> int:
    maximum, default = rules.PAGE_LIMITS[op]
    return min(requested or default, maximum)


def key_page(rows: Sequence[tuple[str, T]], token: str | None, size: int) -> tuple[list[T], str | None]:
    """A page of rows sorted by key. NextToken is the first key of the next page (IMM's List* style)."""
    if token:
        rows = [row for row in rows if row[0] >= token]
    more = rows[size][0] if len(rows) > size else None
    return [item for _, item in rows[:size]], more


def offset_page(rows: Sequence[T], token: str | None, size: int) -> tuple[list[T], str | None]:
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
