"""`imm-faces rehearse` end to end (its own emulator, a shared one, a consumer's program, SIGTERM, the user's
credentials), and the examples/ program run the same way (mocks + the real dynamic-provider host + the
emulator)."""

from __future__ import annotations

import io
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imm_faces.components.rehearsal.engine import RehearsalMocks, destroy, run_program
from imm_faces.components.rehearsal.host import DynamicProviderHost
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.cli import extras
from imm_faces.runtime.cli.main import main as imm_faces
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import datasets, projects
from imm_faces.runtime.outputs import parse_outputs
from tests.fakes import write_photo
from tests.processes import emulator_process, free_port

ROOT = Path(__file__).resolve().parents[2]
ENV = DEFAULT_ACCESS_KEY.environment()
CLI = [sys.executable, "-m", "imm_faces.runtime.cli.main"]
USER_IDENTITY = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-user-own-key",
    "ALICLOUD_PROFILE": "prod",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "user-own-secret",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "user-sts-token",
}


def rehearse(
    *args: str, cwd: Path, env: dict[str, str] | None = None, engine: str = "mocks"
) -> subprocess.CompletedProcess[str]:
    """``imm-faces rehearse`` (on the mocks unless ``engine`` says otherwise: tests/components/test_rehearse_engine.py
    runs it on the real engine)."""
    return subprocess.run(
        [*CLI, "rehearse", "--engine", engine, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_rehearse_passes_and_leaves_the_emulator_empty(tmp_path: Path) -> None:
    """With the user's own Alibaba Cloud identity in the environment: it must never reach the emulator."""
    outputs = tmp_path / "stack-outputs.json"
    proc = rehearse("--outputs", str(outputs), "--json", cwd=tmp_path, env=USER_IDENTITY)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = proc.stderr  # with --json the steps go to stderr and stdout holds only the summary
    assert "OFFLINE rehearsal" in steps and "Not exercised: the Pulumi engine" in steps
    assert "engine: the Pulumi SDK's mocks (--engine mocks)" in steps
    for kind in ("Project", "Dataset", "Binding", "FigureClusteringTask"):
        assert f"created  pulumi-python:dynamic/imm:{kind}" in steps
        assert f"deleted pulumi-python:dynamic/imm:{kind}" in steps
    assert "recorded alicloud:ram/role:Role" in steps
    assert "nothing the rehearsal made is left" in steps and "rehearsal PASSED" in steps
    summary = json.loads(proc.stdout)
    assert summary["passed"] and summary["emulator_empty"] and summary["verify_exit"] == 0
    report = summary["verify"]["outputs"]
    assert report["passed"] and report["total_clusters"] >= 1
    assert "--min-clusters 1" in steps  # obama: 7 photos; biden: 2, fewer than IMM's three for a group
    created = {r["type"].rsplit(":", 1)[-1]: r["created"] for r in summary["resources"]}
    assert created == {
        "Role": False,
        "Policy": False,
        "RolePolicyAttachment": False,
        "Project": True,
        "Dataset": True,
        "Binding": True,
        "FigureClusteringTask": True,
    }
    stack = parse_outputs(json.loads(outputs.read_text()), str(outputs))
    assert stack.project_name == "imm-faces-rehearsal-faces-project" and stack.clustering_task_id
    assert stack.service_role == "imm-faces-rehearsal-faces-imm-role"
    assert summary["outputs"] == json.loads(outputs.read_text())
    everything = proc.stdout + proc.stderr + outputs.read_text()
    assert "emulator-access-key-secret" not in everything
    assert not any(value in everything for value in USER_IDENTITY.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--photos", "/nonexistent"], "not a directory"),
        (["--photos", "{empty}"], "no files in it; give a folder of photos"),
        (["--endpoint", "http://127.0.0.1:1"], "--endpoint and --oss-root go together"),
        (["--program", "/nonexistent"], "no __main__.py there"),
        (["--config", "novalue"], "must be KEY=VALUE"),
    ],
)
def test_rehearse_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty" / "only-a-folder").mkdir(parents=True)
    proc = rehearse(*(a.format(empty=tmp_path / "empty") for a in args), cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "IMM emulator at" not in proc.stdout  # refused before any work


def test_a_failing_program_is_reported_and_what_it_made_is_deleted(
    tmp_path: Path, shared_emulator: tuple[str, Path], three_photos: Path
) -> None:
    """The program raises after its resources exist (a bug in its last line): one clear line, no traceback,
    and the shared emulator keeps nothing of it. A bad config value is reported the same way."""
    endpoint, oss_root = shared_emulator
    consumer = write_consumer(tmp_path / "late")
    main = consumer / "__main__.py"
    main.write_text(main.read_text() + "faces.outputs.apply(print)  # a dict: AttributeError\n")
    shared = [
        "--endpoint",
        endpoint,
        "--oss-root",
        str(oss_root),
        "--json",
        "--config",
        "photos=oss://late/x/",
        "--photos",
        str(three_photos),
    ]
    proc = rehearse("--program", str(consumer), "--stack", "late", *shared, cwd=consumer)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "the stack program failed: AttributeError: 'dict' object has no attribute 'apply'" in proc.stderr
    assert "Traceback" not in proc.stderr and "nothing the rehearsal made is left" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["verify_exit"] is None and "verify not run" in proc.stderr and summary["left_behind"] == []
    with ImmClient(endpoint=endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
        assert "consumer-photos-late-photos-project" not in {
            p.project_name for p in imm.paginate(projects.ListProjects)
        }
    bad = rehearse("--stack", "mars", "--config", "region=mars-1", *shared, cwd=tmp_path)
    assert bad.returncode == 1 and "the stack program failed: ArgsError: FaceClusteringArgs.region" in bad.stderr
    assert "Traceback" not in bad.stderr and json.loads(bad.stdout)["passed"] is False


def test_missing_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = extras.metadata.version

    def version(name: str) -> str:
        if name in ("numpy", "uvicorn"):
            raise extras.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(extras.metadata, "version", version)
    assert imm_faces(["rehearse"]) == 2
    err = capsys.readouterr().err
    assert "missing: numpy, uvicorn" in err and "pip install 'imm-faces[emulator,pulumi,vision]'" in err
    assert imm_faces(["emulator"]) == 2
    assert "pip install 'imm-faces[emulator]'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One `imm-faces emulator` process for the rehearsals below (each uses its own stack, so its own names)."""
    folder = tmp_path_factory.mktemp("shared-emulator")
    oss_root = folder / "oss"
    oss_root.mkdir()
    with emulator_process(folder / "shared.db", oss_root) as (_, endpoint):
        yield endpoint, oss_root


def test_two_stacks_share_an_emulator_and_never_touch_each_other(
    tmp_path: Path, shared_emulator: tuple[str, Path], three_photos: Path
) -> None:
    """Default config, stacks dev and prod, one emulator: no collision. A third stack pointed at dev's project
    fails, naming the opt-in, and leaves dev's project as it was."""
    endpoint, oss_root = shared_emulator
    shared = ["--endpoint", endpoint, "--oss-root", str(oss_root), "--keep", "--photos", str(three_photos)]
    page = tmp_path / "dev.html"
    for stack in ("dev", "prod"):
        html = ["--html", str(page)] if stack == "dev" else []  # rehearse --html: verify's page of the clusters
        proc = rehearse(*shared, "--stack", stack, "--json", *html, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout)
        assert summary["outputs"]["project_name"] == f"imm-faces-{stack}-faces-project"
        assert summary["verify"]["outputs"]["total_clusters"] == 1
    text = page.read_text()
    assert text.count('<article class="card') == 1 and "imm-faces-dev-faces-project" in text
    thumbnails = re.findall(r'<img src="(data:image/jpeg;base64,[^"]+)"', text)  # made by the emulator's OSS
    assert len(thumbnails) == 4 and "x-oss-signature" not in text  # the cover and the three photos
    assert "emulator-access-key-secret" not in text
    intruder = rehearse(
        *shared,
        "--stack",
        "intruder",
        "--config",
        "projectName=imm-faces-dev-faces-project",
        "--config",
        "description=taken over",
        cwd=tmp_path,
    )
    assert intruder.returncode == 1
    refusal = "project imm-faces-dev-faces-project already exists and this stack did not create it"
    assert f"deployment failed: faces-project (pulumi-python:dynamic/imm:Project): {refusal}" in intruder.stderr
    assert "adopt_existing=True" in intruder.stderr and "ProviderError" not in intruder.stderr
    assert "stack config" not in intruder.stderr  # a consumer's program reads no config key of ours
    with ImmClient(endpoint=endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
        names = sorted(p.project_name or "" for p in imm.paginate(projects.ListProjects))
        assert [n for n in names if n.startswith("imm-faces-")] == [
            "imm-faces-dev-faces-project",
            "imm-faces-prod-faces-project",
        ]
        dev = imm.call(projects.GetProject, project_name="imm-faces-dev-faces-project").project
        assert dev.description == "imm-faces offline rehearsal"  # not rewritten by the intruder
        roles = {p.project_name: p.service_role for p in imm.paginate(projects.ListProjects)}
        assert roles["imm-faces-dev-faces-project"] != roles["imm-faces-prod-faces-project"]  # each its own role


CONSUMER_PROGRAM = """
import pulumi
from imm_faces.components import FaceClustering, FaceClusteringArgs

import components  # the consumer's own package of the same name
import runtime  # and module

config = pulumi.Config()
faces = FaceClustering(components.PREFIX, FaceClusteringArgs(
    region="cn-hangzhou", oss_locations=[config.require("photos")],
    endpoint="https://imm.cn-hangzhou.aliyuncs.com",  # a rehearsal never goes there
))
pulumi.export("faces", faces.outputs)
pulumi.export("runtime", runtime.NAME)
"""


def write_consumer(root: Path) -> Path:
    """A consumer's Pulumi project with its own `components/` package, `runtime.py` and `emulator/`, the most
    common layout of Pulumi repositories: none of them may shadow imm-faces."""
    (root / "components").mkdir(parents=True)
    (root / "components" / "__init__.py").write_text('PREFIX = "photos"\n')
    (root / "emulator").mkdir()
    (root / "emulator" / "__init__.py").write_text('raise ImportError("the consumer\'s own emulator package")\n')
    (root / "runtime.py").write_text('NAME = "consumer runtime"\n')
    (root / "Pulumi.yaml").write_text("name: consumer-photos\nruntime: python\n")
    (root / "__main__.py").write_text(CONSUMER_PROGRAM)
    return root


def test_rehearse_a_consumer_program_next_to_its_own_components_folder(
    tmp_path: Path, three_photos: Path, shared_emulator: tuple[str, Path]
) -> None:
    consumer = write_consumer(tmp_path / "consumer")
    endpoint, oss_root = shared_emulator
    (oss_root / "family-photos").mkdir()
    (oss_root / "family-photos" / "theirs.jpg").write_bytes(b"someone else's photo, beside the location")
    page = tmp_path / "consumer-report.html"
    program = ["--program", str(consumer), "--stack", "staging", "--config", "photos=oss://family-photos/2026/"]
    where = ["--photos", str(three_photos), "--endpoint", endpoint, "--oss-root", str(oss_root)]
    proc = rehearse(*program, *where, "--json", "--html", str(page), cwd=consumer, engine="auto")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # --engine auto: where there is a real engine, the preview finds what it lacks (the program creates a RAM role)
    # before anything is created, and the mocks run the program instead, saying why
    from imm_faces.components.rehearsal.real_engine import Engine, locate

    assert (
        "engine: the Pulumi SDK's mocks after all: the program needs the provider plugin pulumi-resource-alicloud"
        in proc.stderr
    ) == isinstance(locate(), Engine)
    assert "OFFLINE rehearsal" in proc.stderr and json.loads(proc.stdout)["engine"] == "mocks"
    assert page.is_file() and not list(tmp_path.glob("consumer-report.*.html"))  # where asked: the first (only) one
    # what it staged in the shared --oss-root is gone again, and nothing else was touched
    assert sorted(p.name for p in (oss_root / "family-photos").rglob("*")) == ["theirs.jpg"]
    assert "removed the 3 photos it staged" in proc.stderr and "left behind: nothing)" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["project"] == "consumer-photos" and summary["outputs"]["runtime"] == "consumer runtime"
    faces = summary["outputs"]["faces"]
    assert faces["project_name"] == "consumer-photos-staging-photos-project"
    assert faces["endpoint"] == endpoint  # the emulator, not the program's endpoint
    assert summary["verify"]["faces"]["passed"] and summary["emulator_empty"]
    assert f"started in {consumer}" in proc.stderr


def test_sigterm_cleans_up_like_ctrl_c(tmp_path: Path, shared_emulator: tuple[str, Path], three_photos: Path) -> None:
    """Killed mid-deployment: what it created is deleted, its provider host is gone, its temporary files too."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    endpoint, oss_root = shared_emulator
    args = ["rehearse", "--engine", "mocks", "--stack", "sigterm", "--endpoint", endpoint, "--oss-root", str(oss_root)]
    args += ["--photos", str(three_photos), "--config", 'ossLocations=["oss://sigterm-photos/people/"]']
    proc = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert proc.stdout is not None
    host_pid, lines = None, []
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # until the deployment is under way
        lines.append(line)
        if match := re.search(r"dynamic-provider host: .*\(pid (\d+)", line):
            host_pid = int(match.group(1))
        if "-> oss://sigterm-photos/people/" in line or time.monotonic() > deadline:  # staging has begun
            break
    assert host_pid is not None, "".join(lines)
    assert list(scratch.glob("imm-faces-rehearsal-*"))  # the rehearsal's temporary directory
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: deleting what the rehearsal created" in out + err
    assert "Traceback" not in err
    assert not (oss_root / "sigterm-photos").exists()  # the photos it had staged are gone
    with pytest.raises(ProcessLookupError):
        os.kill(host_pid, 0)  # the provider host is gone
    assert list(scratch.glob("imm-faces-rehearsal-*")) == []  # and so is the temporary directory
    with ImmClient(endpoint=endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:  # and what it had created
        assert "imm-faces-sigterm-faces-project" not in {p.project_name for p in imm.paginate(projects.ListProjects)}


def test_the_two_datasets_example(
    emulator: Emulator, client: ImmClient, oss_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_photo(oss_root, "family", "a.png", [{"person": 1}])
    write_photo(oss_root, "events", "b.png", [{"person": 2}])
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    config = {
        "faces-two-datasets:endpoint": emulator.endpoint,
        "faces-two-datasets:familyLocations": json.dumps(["oss://family"]),
        "faces-two-datasets:eventLocations": json.dumps(["oss://events"]),
    }
    with DynamicProviderHost(env={**os.environ, **ENV}) as host:
        mocks = RehearsalMocks(host, "faces-two-datasets", "test")
        outputs = run_program(
            lambda: runpy.run_path(str(ROOT / "examples" / "two-datasets" / "__main__.py")),
            mocks,
            project="faces-two-datasets",
            stack="test",
            config=config,
        )
        project = "faces-two-datasets-test-family-project"
        assert outputs["family"]["project_name"] == outputs["events"]["project_name"] == project
        assert (outputs["family"]["dataset_name"], outputs["events"]["dataset_name"]) == ("family", "events")
        assert outputs["events"]["service_role"] is None and outputs["family"]["service_role"]
        assert [p.project_name for p in client.paginate(projects.ListProjects)] == [project]
        names = sorted(d.dataset_name for d in client.paginate(datasets.ListDatasets, project_name=project))
        assert names == ["events", "family"]
        policy = next(c for c in mocks.created if c.type == "alicloud:ram/policy:Policy")
        assert "acs:oss:*:*:events/*" in policy.inputs["policyDocument"]  # the role may read both datasets
        destroy(mocks, host, lambda _: None)
    assert list(client.paginate(projects.ListProjects)) == []


def test_the_plugin_without_the_pulumi_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imm_faces.components import plugin_entry

    real = extras.metadata.version

    def version(name: str) -> str:
        if name == "pulumi":
            raise extras.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(extras.metadata, "version", version)
    with pytest.raises(SystemExit) as exited:
        plugin_entry.main([])
    assert exited.value.code == 2 and "pip install 'imm-faces[pulumi]'" in capsys.readouterr().err


def test_an_interrupt_the_sdk_swallows_still_ends_the_wait() -> None:
    """Pulumi's driver (run_pulumi_func) catches BaseException from the program, then waits for every outstanding
    registration; one the interrupt left unfinished never completes. SIGTERM must still end the wait, and say it
    was an interrupt. Run in a child process: a regression hangs there, not here."""
    code = """
import asyncio, os, signal
from imm_faces.components.rehearsal.session import INTERRUPTED
from imm_faces.components.rehearsal.runner import sigterm_as_interrupt

async def driver():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.1)
    except BaseException:
        pass  # as run_pulumi_func does
    await asyncio.get_running_loop().create_future()  # a registration that never finishes

loop = asyncio.new_event_loop()
with sigterm_as_interrupt():
    try:
        loop.run_until_complete(driver())
    except RuntimeError as exc:
        print("stopped:", exc, "interrupted:", INTERRUPTED.is_set())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False)
    assert proc.stdout.strip() == "stopped: Event loop stopped before Future completed. interrupted: True", (
        proc.stdout + proc.stderr
    )


def dataset_state(endpoint: str, project: str, dataset: str) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """(file URIs, figure cluster id -> (FaceCount, ImageCount)) of a dataset."""
    from imm_faces.runtime.operations import figure_clusters, query

    with ImmClient(endpoint=endpoint, credentials=DEFAULT_ACCESS_KEY) as imm:
        where = {"project_name": project, "dataset_name": dataset}
        uris = sorted(f.uri or "" for f in imm.paginate(query.SimpleQuery, **where))
        groups = {
            c.object_id or "": (c.face_count or 0, c.image_count or 0)
            for c in imm.paginate(figure_clusters.QueryFigureClusters, **where)
        }
    return uris, groups


def test_a_stack_that_adopted_a_dataset_gives_it_back_as_it_was(
    tmp_path: Path, shared_emulator: tuple[str, Path], three_photos: Path
) -> None:
    """The opt-in path end to end: stack `adopter` takes over stack `owner`'s project and dataset (adoptExisting,
    owner's service role), binds its own photos of the same person (its faces join owner's group), and is
    destroyed. The log says adopted and kept, the verdict counts the kept objects as kept, and owner's dataset
    holds exactly its own files and groups again: the files adopter's binding indexed went with the binding."""
    endpoint, oss_root = shared_emulator
    shared = ["--endpoint", endpoint, "--oss-root", str(oss_root), "--photos", str(three_photos)]
    owner = rehearse(
        *shared, "--stack", "owner", "--keep", "--config", 'ossLocations=["oss://owner-photos/"]', cwd=tmp_path
    )
    assert owner.returncode == 0, owner.stderr[-3000:]
    project, dataset = "imm-faces-owner-faces-project", "imm-faces-owner-faces-faces"
    before = dataset_state(endpoint, project, dataset)
    assert len(before[0]) == 3 and [counts for counts in before[1].values()] == [(3, 3)]
    adopt = ["--config", f"projectName={project}", "--config", f"datasetName={dataset}"]
    adopt += ["--config", "serviceRole=imm-faces-owner-faces-imm-role", "--config", "adoptExisting=true"]
    adopt += ["--config", 'ossLocations=["oss://adopter-photos/"]']
    adopter = rehearse(
        *shared, "--stack", "adopter", "--json", *adopt, cwd=tmp_path, env={"IMM_FACES_CALLER_PATH": "/usr/bin:/bin"}
    )
    assert adopter.returncode == 0, adopter.stderr[-3000:]
    steps = adopter.stderr
    for kind in ("Project", "Dataset"):
        assert f"adopted  pulumi-python:dynamic/imm:{kind}" in steps
        assert f"kept    pulumi-python:dynamic/imm:{kind} faces-{kind.lower()} (adopted" in steps
        assert f"deleted pulumi-python:dynamic/imm:{kind}" not in steps
    assert "created  pulumi-python:dynamic/imm:Binding" in steps
    assert "deleted pulumi-python:dynamic/imm:Binding" in steps
    assert f"left behind: nothing; kept as adopted: project {project}, dataset {project}/{dataset})" in steps
    summary = json.loads(adopter.stdout)
    assert summary["passed"] and summary["left_behind"] == [] and summary["verify_exit"] == 0
    assert summary["kept_adopted"] == [f"project {project}", f"dataset {project}/{dataset}"]
    dynamic = [r for r in summary["resources"] if r["type"].startswith("pulumi")]
    adopted = {r["type"].rsplit(":", 1)[-1]: r["adopted"] for r in dynamic}
    assert adopted == {"Project": True, "Dataset": True, "Binding": False, "FigureClusteringTask": False}
    assert summary["verify"]["outputs"]["total_clusters"] == 1  # adopter's three faces joined owner's group
    assert dataset_state(endpoint, project, dataset) == before  # the same files, the same group and counts
    assert not (oss_root / "adopter-photos").exists()
    venv = Path(sys.executable).parent.parent.absolute()
    assert f"imm-faces is installed in {venv}, which is not on your PATH: `source {venv}/bin/activate`" in steps


def test_rehearse_uses_the_keys_a_running_emulator_was_started_with(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, three_photos: Path
) -> None:
    folder = tmp_path_factory.mktemp("keyed-emulator")
    (folder / "oss").mkdir()
    keys = {"IMM_FACES_EMULATOR_ACCESS_KEYS": "team-key-id:team-key-secret"}
    with emulator_process(folder / "keyed.db", folder / "oss", env=keys) as (_, endpoint):
        where = ["--endpoint", endpoint, "--oss-root", str(folder / "oss"), "--photos", str(three_photos)]
        refused = rehearse(*where, cwd=tmp_path)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
        assert refused.stderr.strip().splitlines()[-1] == (
            f"imm-faces rehearse: error: --endpoint {endpoint} refused the key emulator-access-key-id "
            "(InvalidAccessKeyId.NotFound): give the keys that emulator was started with, --access-key-file FILE or "
            "$IMM_FACES_EMULATOR_ACCESS_KEYS as for `imm-faces emulator`"
        )
        assert "dynamic-provider host" not in refused.stdout  # refused before anything started
        key_file = tmp_path / "keys"
        key_file.write_text("# the team's emulator\nteam-key-id:team-key-secret\n")
        accepted = rehearse(*where, "--access-key-file", str(key_file), "--stack", "keyed", "--keep", cwd=tmp_path)
        assert accepted.returncode == 0, accepted.stdout[-2000:] + accepted.stderr[-2000:]
        assert "the key team-key-id you gave" in accepted.stdout and "team-key-secret" not in accepted.stdout


def test_a_cold_cache_offline_says_the_photos_failed_and_what_works_offline(tmp_path: Path) -> None:
    offline = {
        "IMM_FACES_CACHE": str(tmp_path / "empty-cache"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/simple",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PIP_NO_CACHE_DIR": "1",
    }
    proc = rehearse(cwd=tmp_path, env=offline)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("imm-faces rehearse: error: the sample photos could not be fetched from PyPI"), last
    assert "--photos DIR" in last and "stack program" not in proc.stderr and "Traceback" not in proc.stderr
    assert "IMM emulator at" not in proc.stdout  # nothing was started


def test_the_way_to_reach_imm_faces_is_said_only_when_the_shell_cannot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imm_faces.components.rehearsal import session as module

    bin_dir = str(Path(sys.executable).parent)
    if not (Path(bin_dir) / "imm-faces").is_file():
        pytest.skip("imm-faces is not installed as a script next to this Python")
    monkeypatch.setattr(module.say, "stream", sys.stdout)
    monkeypatch.setenv("IMM_FACES_CALLER_PATH", f"/usr/bin:{bin_dir}")
    module.how_to_reach_imm_faces()
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("IMM_FACES_CALLER_PATH", "/usr/bin:/bin")
    module.how_to_reach_imm_faces()
    assert "bin/activate" in capsys.readouterr().out


class Writes(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_a_progress_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines said from several threads at once (the SDK's) cannot run into each other: each is one write."""
    from imm_faces.components.rehearsal import session

    stream = Writes()
    monkeypatch.setattr(session.say, "stream", stream)
    threads = [threading.Thread(target=session.say, args=(f"line {i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(stream.writes) == sorted(f"==> line {i}\n" for i in range(20))


@pytest.mark.parametrize(("verify_exit", "photos", "hinted"), [(1, "mine", True), (0, "mine", False), (1, None, False)])
def test_a_failed_verify_on_your_own_photos_says_how_many_make_a_group(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verify_exit: int, photos: str | None, hinted: bool
) -> None:
    """verify's own advice (--allow-empty) is not an option of rehearse: with --photos, the rehearsal says IMM's
    rule instead."""
    from imm_faces.components.rehearsal import session

    stream = Writes()
    monkeypatch.setattr(session.say, "stream", stream)
    monkeypatch.setattr(session, "imm_faces", lambda argv: verify_exit)
    staged = session.Photos(photos, tmp_path / "oss", tmp_path / "scratch", shared=False)
    outputs = {"project_name": "p", "dataset_name": "d", "region": "cn-hangzhou"}
    code, _ = session.verify_outputs(outputs, tmp_path / "outputs.json", staged, json_mode=False)
    assert code == verify_exit
    said = "".join(stream.writes)
    assert ("a face group forms only from 3 or more good photos of one person" in said) is hinted, said
