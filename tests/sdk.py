"""Alibaba's official SDK (alibabacloud-imm20200930) pointed at an emulator, for the tests that drive it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from alibabacloud_imm20200930 import models as m
from alibabacloud_imm20200930.client import Client
from alibabacloud_tea_openapi import models as open_api_models

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from tests.conftest import STS_KEY


def sdk(emulator: Emulator, version: str = "v3", sts: bool = False) -> Client:
    key = STS_KEY if sts else DEFAULT_ACCESS_KEY
    config = open_api_models.Config(
        endpoint=emulator.endpoint.removeprefix("http://"),
        protocol="http",
        access_key_id=key.access_key_id,
        access_key_secret=key.access_key_secret,
        security_token=key.security_token,
        signature_algorithm="v2" if version == "v2" else None,
    )
    return Client(config)


def wait_indexed(c: Client, project: str, dataset: str, uris: list[str], since: str, timeout: float = 120) -> None:
    """Poll SimpleQuery (through the SDK) until each of ``uris`` is indexed at ``since`` (RFC3339) or later:
    indexing is asynchronous, and a clustering task, as IMM's, clusters what is indexed when it runs."""
    deadline = time.monotonic() + timeout
    query = m.SimpleQuery(
        operation="and",
        sub_queries=[
            m.SimpleQuery(
                operation="or", sub_queries=[m.SimpleQuery(field="URI", operation="eq", value=u) for u in uris]
            ),
            m.SimpleQuery(field="UpdateTime", operation="gte", value=since),
        ],
    )
    req = m.SimpleQueryRequest(project_name=project, dataset_name=dataset, query=query, max_results=1)
    while (c.simple_query(req).body.total_hits or 0) < len(set(uris)):
        assert time.monotonic() < deadline, f"{project}/{dataset}: {uris} not all indexed after {timeout:g}s"
        time.sleep(0.05)


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
