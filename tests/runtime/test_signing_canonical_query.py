"""The V3 signer takes the client's canonical query as it is only while it is still the URL's query."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from imm_faces.runtime.auth.signing import CANONICAL_QUERY, AcsV3Auth, encode_query
from imm_faces.runtime.credentials import Credentials

PARAMS = {"ProjectName": "p q", "ObjectIds": '["a","b"]', "Empty": "", "Ünï": "código"}


def _authorization(url: str, extension: str | None) -> str:
    request = httpx.Request(
        "POST", url, headers={"x-acs-action": "BatchGetFigureCluster", "accept": "application/json"}
    )
    if extension is not None:
        request.extensions[CANONICAL_QUERY] = extension
    auth = AcsV3Auth(Credentials("AK", "SK"), clock=lambda: datetime(2024, 1, 1, tzinfo=UTC), nonce=lambda: "n")
    return next(auth.auth_flow(request)).headers["Authorization"]


def test_the_canonical_query_is_taken_as_it_is_only_when_it_is_the_urls() -> None:
    query = encode_query(PARAMS)
    url = f"https://imm.cn-hangzhou.aliyuncs.com/?{query}"
    decoded = _authorization(url, None)  # the query decoded and encoded again
    assert _authorization(url, query) == decoded
    # A stale or foreign value (the URL was changed after it was set) is not trusted: the URL's query is signed.
    assert _authorization(url, encode_query({**PARAMS, "ProjectName": "other"})) == decoded
    assert _authorization(url, query + "&X=1") == decoded
    other = f"https://imm.cn-hangzhou.aliyuncs.com/?{encode_query({**PARAMS, 'Empty': 'x'})}"
    assert _authorization(other, query) == _authorization(other, None) != decoded
