"""The README's official-SDK example runs as written against the emulator (only the endpoint and names change)."""

from __future__ import annotations

from pathlib import Path

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from tests.helpers import DATASET, PROJECT, TWO_PEOPLE, deploy

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def sdk_example() -> str:
    start = README.index("from alibabacloud_imm20200930 import models")
    return README[start : README.index("```", start)]


def test_the_readme_sdk_example_runs(emulator: Emulator, client: ImmClient, oss_root: Path) -> None:
    deploy(client, oss_root, TWO_PEOPLE)
    code = (sdk_example().replace("127.0.0.1:8000", emulator.endpoint.removeprefix("http://"))
            .replace('project_name="p"', f'project_name="{PROJECT}"')
            .replace('dataset_name="d"', f'dataset_name="{DATASET}"'))  # fmt: skip
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["cluster_id"] and [f.uri for f in namespace["photos"].body.files]  # type: ignore[attr-defined]
