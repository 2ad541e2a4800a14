"""Endpoints someone gives (IMM's and STS's): one rule, the setting named in the error."""

from __future__ import annotations

import pytest

from imm_faces.runtime.auth.sts import sts_endpoint
from imm_faces.runtime.client import endpoint_url
from imm_faces.runtime.errors import ConfigError


@pytest.mark.parametrize("make", [lambda e: endpoint_url(endpoint=e), lambda e: sts_endpoint(endpoint=e)])
def test_explicit_endpoints_become_base_urls(make: object) -> None:
    assert make("127.0.0.1:8000") == "https://127.0.0.1:8000/"  # type: ignore[operator]
    assert make("http://127.0.0.1:8000/some/path?x=1") == "http://127.0.0.1:8000/"  # type: ignore[operator]


@pytest.mark.parametrize(
    ("make", "what"),
    [(lambda e: endpoint_url(endpoint=e), "endpoint: "), (lambda e: sts_endpoint(endpoint=e), "STS endpoint: ")],
)
@pytest.mark.parametrize("bad", ["ftp://host", "http://", "https:///path"])
def test_bad_endpoints_name_the_setting(make: object, what: str, bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        make(bad)  # type: ignore[operator]
    assert str(err.value).startswith(what) and "must be host[:port] or http(s)://host[:port]" in str(err.value)


def test_without_an_endpoint_the_region_decides() -> None:
    assert endpoint_url(region="cn-hangzhou") == "https://imm.cn-hangzhou.aliyuncs.com/"
    assert sts_endpoint(region="cn-hangzhou") == "https://sts.cn-hangzhou.aliyuncs.com/"
    assert sts_endpoint() == "https://sts.aliyuncs.com/"
