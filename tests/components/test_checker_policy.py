"""The checker's RAM policy is exactly what `imm-faces verify` calls: taken from a real run, not a list."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from imm_faces.components.policies import checker_policy, to_json
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import AsyncImmClient, ImmClient
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.verify.run import verify_deployment
from tests.conftest import CREDS
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, deploy


def test_checker_policy_is_read_only_and_scoped() -> None:
    doc = checker_policy("proj", "data", "cn-hangzhou", "123")
    assert doc["Version"] == "1"
    by_resource = {s["Resource"][0]: s["Action"] for s in doc["Statement"]}
    assert by_resource == {
        "acs:imm:cn-hangzhou:123:project/proj": ["imm:GetProject", "imm:GetTask"],
        "acs:imm:cn-hangzhou:123:project/proj/dataset/data": [
            "imm:BatchGetFigureCluster",
            "imm:GetDataset",
            "imm:GetFigureCluster",
            "imm:QueryFigureClusters",
            "imm:SimpleQuery",
        ],
    }
    assert all(s["Effect"] == "Allow" and "*" not in "".join(s["Action"]) for s in doc["Statement"])
    assert json.loads(to_json(doc)) == doc and " " not in to_json(doc)  # the exported text is this document


def test_checker_policy_covers_every_call_of_a_real_run(emulator: Emulator, client: ImmClient, oss_root: Path) -> None:
    task_id = deploy(client, oss_root, TWO_PEOPLE)
    outputs = StackOutputs(project_name=PROJECT, dataset_name=DATASET, region="cn-hangzhou", clustering_task_id=task_id)

    async def go() -> set[str]:
        async with AsyncImmClient(endpoint=emulator.endpoint, credentials=CREDS) as imm:
            report = await verify_deployment(imm, outputs)
        assert report.passed
        return {f"imm:{name}" for name in report.coverage.requests}

    loop = asyncio.new_event_loop()  # not asyncio.run: it unsets the main thread's loop, which pulumi's mocks use
    try:
        called = loop.run_until_complete(go())
    finally:
        loop.close()
    allowed = {a for s in checker_policy(PROJECT, DATASET, "cn-hangzhou")["Statement"] for a in s["Action"]}
    assert called == allowed
