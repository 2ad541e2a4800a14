"""The emulator's paging rules: page sizes (IMM's defaults and maxima), key pages and offset pages, NextToken.

A listing walked page by page returns every row once, in order, and the last page carries no NextToken, also
when the rows fill it exactly; a bad token is an InvalidArgument naming NextToken, never a 5xx.
"""

from __future__ import annotations

import base64

import pytest

from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.operations.paging import key_page, offset_page, page_size
from imm_faces.runtime import rules
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import datasets, projects


@pytest.mark.parametrize("op", sorted(rules.PAGE_LIMITS))
def test_page_size_defaults_and_caps(op: str) -> None:
    maximum, default = rules.PAGE_LIMITS[op]
    assert page_size(op, None) == default
    assert page_size(op, 0) == default  # MaxResults 0 means "not set", as the SDK sends it
    assert page_size(op, 7) == 7
    assert page_size(op, maximum) == maximum
    assert page_size(op, maximum + 1) == maximum


def test_page_size_limits_are_imms() -> None:
    assert rules.PAGE_LIMITS["ListDatasets"] == (200, 100)
    assert rules.PAGE_LIMITS["QueryFigureClusters"] == (100, 100)


def walk(pager: object, rows: list[object], size: int) -> tuple[list[list[object]], list[str | None]]:
    pages, tokens, token = [], [], None
    for _ in range(len(rows) + 2):
        page, token = pager(rows, token, size)  # type: ignore[operator]
        pages.append(page)
        tokens.append(token)
        if token is None:
            break
    return pages, tokens


@pytest.mark.parametrize("count", [0, 1, 4, 5, 6])
def test_key_pages_cover_every_row_once_and_end_without_a_token(count: int) -> None:
    keys = [f"k{i}" for i in range(count)]
    rows: list[object] = [(k, k.upper()) for k in keys]
    pages, tokens = walk(key_page, rows, 2)
    assert [item for page in pages for item in page] == [k.upper() for k in keys]
    assert all(len(page) == 2 for page in pages[:-1]) and len(pages[-1]) <= 2
    assert tokens[-1] is None
    assert tokens[:-1] == keys[2::2][: len(tokens) - 1]  # the next page's first key (IMM's List* style)
    assert len(pages) == max(1, -(-count // 2))  # no empty page after a full one


def test_key_page_resumes_at_the_token_inclusive() -> None:
    rows = [("a", 1), ("b", 2), ("c", 3)]
    assert key_page(rows, "b", 5) == ([2, 3], None)
    assert key_page(rows, "bb", 5) == ([3], None)  # a token between keys resumes at the next one
    assert key_page(rows, "", 2) == ([1, 2], "c")


@pytest.mark.parametrize("count", [0, 1, 4, 5, 6])
def test_offset_pages_cover_every_row_once_and_end_without_a_token(count: int) -> None:
    rows: list[object] = list(range(count))
    pages, tokens = walk(offset_page, rows, 2)
    assert [item for page in pages for item in page] == rows
    assert all(len(page) == 2 for page in pages[:-1])
    assert tokens[-1] is None  # the last page, even a full one, says there is no more
    assert len(pages) == max(1, -(-count // 2))


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_offset_token_is_opaque_but_resumes_where_the_last_page_ended() -> None:
    rows = list(range(7))
    page, token = offset_page(rows, None, 3)
    assert (page, token) == ([0, 1, 2], _token("o:3"))
    assert offset_page(rows, token, 3) == ([3, 4, 5], _token("o:6"))
    assert offset_page(rows, _token("o:0"), 3) == ([0, 1, 2], _token("o:3"))
    assert offset_page(rows, _token("o:6"), 3) == ([6], None)


@pytest.mark.parametrize("token", ["not-a-token!", _token("x:3"), _token("o:-1"), _token("o:three"), _token("o")])
def test_a_bad_offset_token_is_invalid_argument_naming_next_token(token: str) -> None:
    with pytest.raises(ApiError) as caught:
        offset_page([1, 2, 3], token, 2)
    assert caught.value.code == "InvalidArgument"
    assert caught.value.status == 400
    assert "NextToken" in caught.value.message and repr(token) in caught.value.message


def test_listing_through_the_api_ends_on_a_full_last_page(client: ImmClient) -> None:
    client.call(projects.CreateProject, project_name="paged")
    names = [f"ds-{i}" for i in range(4)]
    for name in names:
        client.call(datasets.CreateDataset, project_name="paged", dataset_name=name)
    first = client.call(datasets.ListDatasets, project_name="paged", max_results=2)
    assert [d.dataset_name for d in first.datasets or []] == names[:2] and first.next_token
    second = client.call(datasets.ListDatasets, project_name="paged", max_results=2, next_token=first.next_token)
    assert [d.dataset_name for d in second.datasets or []] == names[2:] and not second.next_token
