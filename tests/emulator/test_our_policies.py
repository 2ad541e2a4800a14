"""Our own RAM policies, proved by the emulator's RAM: ``imm-faces verify`` (and ``--html``) passes under exactly
the component's checker policy and fails, naming the action, without any one of its statements; IMM's service
role policy (the component's) lets the emulator's indexing read the bound location and nothing else."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from imm_faces.components.policies import checker_policy, service_policy, to_json, trust_policy
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.ram import EMULATOR_ACCOUNT_ID, Ram, ram_from_document
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.cli.main import main
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import bindings, datasets, files, projects, query
from tests.fakes import SidecarAnalyzer, write_photo
from tests.helpers import BUCKET, DATASET, PROJECT, TWO_PEOPLE, deploy, outputs_file

CHECKER = Credentials("checker-key", "checker-secret")
REGION = "cn-hangzhou"


def checker_document() -> dict[str, Any]:
    """The component's ``checker_policy_document`` for the deployment, whose photos are under oss://photos/
    (FaceClustering exports exactly this text)."""
    return json.loads(to_json(checker_policy(PROJECT, DATASET, REGION, locations=[f"oss://{BUCKET}/"])))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Two people clustered (with the owner's key), in a state file that each test serves again."""
    tmp = tmp_path_factory.mktemp("checker")
    (tmp / "oss").mkdir()
    with (
        Emulator(oss_root=tmp / "oss", db=tmp / "imm.db", analyzer=SidecarAnalyzer(tmp / "oss")) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm,
    ):
        task_id = deploy(imm, tmp / "oss", TWO_PEOPLE)
    return tmp, task_id


@contextmanager
def checker_outputs(deployed: tuple[Path, str], document: dict[str, Any]) -> Iterator[str]:
    """The deployment served with the checker's key holding exactly ``document``; its stack outputs file."""
    tmp, task_id = deployed
    ram = ram_from_document({"access_keys": {CHECKER.access_key_id: {"policies": [document]}}}, tmp)
    with Emulator(
        oss_root=tmp / "oss",
        db=tmp / "imm.db",
        analyzer=SidecarAnalyzer(tmp / "oss"),
        ram=ram,
        access_keys=[DEFAULT_ACCESS_KEY, CHECKER],
    ) as emu:
        yield str(outputs_file(tmp, emu.endpoint, task_id))


@pytest.fixture
def as_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CHECKER.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CHECKER.access_key_secret)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def test_verify_and_its_report_pass_under_exactly_the_checker_policy(
    deployed: tuple[Path, str], as_checker: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "clusters.html"
    with checker_outputs(deployed, checker_document()) as outputs:
        assert main(["verify", "--outputs", outputs, "--quiet"]) == 0, capsys.readouterr().err
        assert main(["verify", "--outputs", outputs, "--quiet", "--html", str(page)]) == 0, capsys.readouterr().err
    html = page.read_text()
    assert "data:image/jpeg;base64," in html
    assert "AccessDenied" not in html and "no thumbnail" not in html


def test_verify_fails_naming_the_action_without_any_one_statement(
    deployed: tuple[Path, str], as_checker: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without an ``imm:`` statement verify cannot run (exit 2, the refused action named); without the OSS one
    the report's pictures cannot be read, and each says so, naming oss:GetObject (the exit code stays
    verify's, as the report documents)."""
    document = checker_document()
    page = tmp_path / "clusters.html"
    for index, statement in enumerate(document["Statement"]):
        fewer = copy.deepcopy(document)
        del fewer["Statement"][index]
        with checker_outputs(deployed, fewer) as outputs:
            code = main(["verify", "--outputs", outputs, "--quiet", "--html", str(page)])
        err = capsys.readouterr().err
        if statement["Action"] == ["oss:GetObject"]:
            assert code == 0 and "data:image/jpeg;base64," not in page.read_text()
            assert page.read_text().count("You are not authorized to operate oss:GetObject on acs:oss:") >= 2
            continue
        named = [a for a in statement["Action"] if a in err]
        assert code == 2 and named and "Forbidden.RAM" in err, (index, code, err)


# ------------------------------------------------------------------------------------------------ the service role

ROLE_NAME = "imm-faces-service-role"
ROLE_ARN = f"acs:ram::{EMULATOR_ACCOUNT_ID}:role/{ROLE_NAME}"
LOCATION = "oss://photos/in/"


def service_ram(document: dict[str, Any], trust: dict[str, Any] | None = None) -> Ram:
    role = {"arn": ROLE_ARN, "trust_policy": trust or trust_policy(), "policies": [document]}
    return ram_from_document({"roles": [role]}, Path())


def index_through_a_binding(tmp: Path, ram: Ram, service_role: str = ROLE_NAME) -> tuple[int, dict[str, Any]]:
    """Bind ``LOCATION`` (two photos in it, one outside), also IndexFileMeta the one outside; return how many files
    were indexed once the binding's first scan ended, and the binding."""
    oss = tmp / "oss"
    for key in ("in/a.png", "in/sub/b.png", "out/c.png"):
        write_photo(oss, "photos", key, [])
    with (
        Emulator(oss_root=oss, analyzer=SidecarAnalyzer(oss), ram=ram) as emu,
        ImmClient(endpoint=emu.endpoint, credentials=DEFAULT_ACCESS_KEY) as imm,
    ):
        imm.call(projects.CreateProject, project_name="p", service_role=service_role)
        imm.call(datasets.CreateDataset, project_name="p", dataset_name="d")
        imm.call(files.IndexFileMeta, project_name="p", dataset_name="d", file={"URI": "oss://photos/out/c.png"})
        imm.call(bindings.CreateBinding, project_name="p", dataset_name="d", uri=LOCATION)
        deadline = time.monotonic() + 30
        while True:
            binding = imm.call(bindings.GetBinding, project_name="p", dataset_name="d", uri=LOCATION).binding
            if binding.phase != "FullScanning" or binding.state == "Failed":
                break
            assert time.monotonic() < deadline, "the binding's first scan did not end"
            time.sleep(0.05)
        emu.jobs.wait_idle("p", "d", timeout=30)
        hits = imm.call(query.SimpleQuery, project_name="p", dataset_name="d").total_hits or 0
        return hits, binding.model_dump(by_alias=True)


def statements_without(document: dict[str, Any], action: str) -> dict[str, Any]:
    kept = [s for s in document["Statement"] if action not in s["Action"]]
    assert len(kept) < len(document["Statement"])
    return {**document, "Statement": kept}


def test_the_service_role_policy_covers_what_indexing_reads(tmp_path: Path) -> None:
    document = service_policy([LOCATION], None, REGION)
    hits, binding = index_through_a_binding(tmp_path, service_ram(document))
    assert hits == 4, binding  # in/a.png, in/sub/b.png and their .faces.json; not out/c.png, outside the role's reach
    assert binding["State"] == "Running"


def test_without_its_get_statement_nothing_is_indexed(tmp_path: Path) -> None:
    document = statements_without(service_policy([LOCATION], None, REGION), "oss:GetObject")
    hits, binding = index_through_a_binding(tmp_path, service_ram(document))
    assert hits == 0 and binding["State"] == "Running"  # listed, and every read refused


def test_without_its_list_statement_the_binding_fails_naming_the_action(tmp_path: Path) -> None:
    document = statements_without(service_policy([LOCATION], None, REGION), "oss:ListObjects")
    hits, binding = index_through_a_binding(tmp_path, service_ram(document))
    assert binding["State"] == "Failed" and "oss:ListObjects" in binding["Reason"], binding
    assert hits == 0


def test_a_role_that_does_not_trust_imm_reads_nothing(tmp_path: Path) -> None:
    other = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": ["ecs.aliyuncs.com"]}}],
    }
    hits, binding = index_through_a_binding(tmp_path, service_ram(service_policy([LOCATION], None, REGION), other))
    assert binding["State"] == "Failed" and "does not trust imm.aliyuncs.com" in binding["Reason"]
    assert hits == 0


def test_a_service_role_the_emulator_does_not_know_reads_everything(tmp_path: Path) -> None:
    hits, _ = index_through_a_binding(
        tmp_path, service_ram(service_policy([LOCATION], None, REGION)), service_role="AliyunIMMDefaultRole"
    )
    assert hits == 5  # the four under in/, and out/c.png
