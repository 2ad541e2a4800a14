"""`imm-faces rehearse` on the real Pulumi engine (``--engine real``/``auto``): preview, up, verify, destroy of this
repository's program and of a consumer's, the state kept and destroyed later by the command it prints, SIGTERM,
what it refuses to run there, and the choice of engine (the mocks on a machine without one).

The rehearsals share one `imm-faces emulator` started with a random key: finding that secret in any output or in
the kept state would be a leak."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imm_faces.components.rehearsal import real_engine
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import bindings, projects
from imm_faces.runtime.rules import DEFAULT_SERVICE_ROLE
from tests.components.test_rehearsal import CLI, USER_IDENTITY, rehearse
from tests.processes import emulator_process, without_pulumi_engine

USER_PULUMI = {
    "PULUMI_ACCESS_TOKEN": "pul-user-own-token",
    "PULUMI_BACKEND_URL": "s3://user-own-state-bucket",
    "PULUMI_RUNTIME_VIRTUALENV": "/nonexistent/user-venv",
}
"""The user's own Pulumi settings: a rehearsal uses none of them (that virtualenv would stop the providers)."""


@pytest.fixture(scope="module")
def keys() -> Credentials:
    return Credentials(f"rehearse-{secrets.token_hex(4)}", f"rehearse-secret-{secrets.token_hex(16)}")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, keys: Credentials) -> Iterator[tuple[str, Path, list[str]]]:
    """(endpoint, OSS root, the rehearse options that use it) of one emulator accepting only ``keys``."""
    folder = tmp_path_factory.mktemp("engine-emulator")
    oss_root = folder / "oss"
    oss_root.mkdir()
    key_file = folder / "keys"
    key_file.write_text(f"{keys.access_key_id}:{keys.access_key_secret}\n")
    env = {"IMM_FACES_EMULATOR_ACCESS_KEYS": f"{keys.access_key_id}:{keys.access_key_secret}"}
    with emulator_process(folder / "imm.db", oss_root, env=env) as (_, endpoint):
        yield (
            endpoint,
            oss_root,
            ["--endpoint", endpoint, "--oss-root", str(oss_root), "--access-key-file", str(key_file)],
        )


def project_names(endpoint: str, keys: Credentials) -> set[str]:
    with ImmClient(endpoint=endpoint, credentials=keys) as imm:
        return {p.project_name or "" for p in imm.paginate(projects.ListProjects)}


def sigterm_rehearsal(
    args: list[str], cwd: Path, line: str, ready: Callable[[int], bool], env: dict[str, str] | None = None
) -> tuple[int, str]:
    """``imm-faces rehearse ARGS`` sent SIGTERM once it has printed ``line`` and ``ready(its pid)`` holds: (its exit
    code, all it printed)."""
    command = [*CLI, "rehearse", "--engine", "real", *args]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env={**os.environ, **(env or {})}
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 300
    for printed in proc.stdout:
        lines.append(printed)
        if line in printed or time.monotonic() > deadline:
            break
    assert line in lines[-1], "".join(lines)[-3000:]
    while not ready(proc.pid):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)[-3000:]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    rest, _ = proc.communicate(timeout=300)
    return proc.returncode, "".join(lines) + rest


def children(pid: int, word: str) -> list[int]:
    """The processes ``pid`` started whose command line holds ``word`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and word.encode() in command:
            found.append(int(entry.name))
    return found


def files_in(folder: Path) -> list[str]:
    """What a folder holds, Python's byte-code caches aside (running a program writes those)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts)


@pytest.mark.engine
def test_this_programs_rehearsal_on_the_real_engine_kept_then_destroyed_by_the_command_it_prints(
    tmp_path: Path, shared: tuple[str, Path, list[str]], keys: Credentials, three_photos: Path
) -> None:
    endpoint, _, where = shared
    outputs, page = tmp_path / "outputs.json", tmp_path / "page.html"
    args = ["--stack", "kept", "--photos", str(three_photos), "--json", "--keep", "--outputs", str(outputs)]
    proc = rehearse(
        *where, *args, "--html", str(page), cwd=tmp_path, env={**USER_IDENTITY, **USER_PULUMI}, engine="real"
    )
    steps = proc.stderr
    assert proc.returncode == 0, proc.stdout[-3000:] + steps[-3000:]
    assert re.search(r"engine: the real Pulumi engine, pulumi v3\.\d+\.\d+ \(", steps)
    assert "a rehearsal on the REAL Pulumi engine" in steps and "OFFLINE rehearsal" not in steps
    assert (
        "pulumi preview: 4 to create (Project faces-project, Dataset faces-dataset, Binding faces-binding-0, "
        "FigureClusteringTask faces-clustering), each IMM resource at the emulator" in steps
    )
    assert steps.index("pulumi preview:") < steps.index("photos: ") < steps.index("Updating (kept)")
    assert "+  pulumi-python:dynamic/imm:Binding faces-binding-0 created" in steps  # the engine's own progress
    summary = json.loads(proc.stdout)
    assert summary["engine"] == "real" and summary["pulumi"].startswith("v3.") and summary["passed"]
    assert summary["verify"]["outputs"]["passed"] and summary["verify"]["outputs"]["total_clusters"] == 1
    assert summary["outputs"] == json.loads(outputs.read_text())  # `pulumi stack output --json`, what verify read
    assert summary["outputs"]["endpoint"] == endpoint and summary["outputs"]["service_role"] == DEFAULT_SERVICE_ROLE
    assert [r["type"].rsplit(":", 1)[-1] for r in summary["resources"]] == [
        "Project",
        "Dataset",
        "Binding",
        "FigureClusteringTask",
    ]
    assert '<article class="card' in page.read_text()
    assert "imm-faces-kept-faces-project" in project_names(endpoint, keys)  # --keep
    everything = proc.stdout + steps + outputs.read_text() + page.read_text()
    assert keys.access_key_secret not in everything
    assert not any(value in everything for value in {**USER_IDENTITY, **USER_PULUMI}.values())

    match = re.search(r"the stack in (\S+): to delete it, (.+)$", steps, re.MULTILINE)
    assert match, steps[-2000:]
    state = Path(match.group(1))
    stored = "".join(p.read_text(errors="replace") for p in state.rglob("*") if p.is_file() and p.suffix != ".py")
    assert keys.access_key_id in stored and keys.access_key_secret not in stored  # the secret only encrypted
    destroyed = subprocess.run(
        ["bash", "-c", match.group(2)], capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path
    )
    assert destroyed.returncode == 0, destroyed.stdout[-2000:] + destroyed.stderr[-2000:]
    assert "imm-faces-kept-faces-project" not in project_names(endpoint, keys)


CONSUMER_PROGRAM = """
import pulumi
from imm_faces.components import FaceClustering, FaceClusteringArgs

import components  # the consumer's own package of the same name
import runtime  # and module

config = pulumi.Config()
faces = FaceClustering(components.PREFIX, FaceClusteringArgs(
    region="cn-hangzhou", oss_locations=[config.require("photos")], endpoint=config.get("endpoint"),
    service_role=config.get("serviceRole"),
))
pulumi.export("faces", faces.outputs)
pulumi.export("runtime", runtime.NAME)
"""


def write_consumer(root: Path, program: str = CONSUMER_PROGRAM) -> Path:
    """A consumer's project with its own `components/` package and `runtime.py` (which must not shadow ours),
    and a stack config of its own that a rehearsal must neither read nor touch."""
    (root / "components").mkdir(parents=True)
    (root / "components" / "__init__.py").write_text('PREFIX = "photos"\n')
    (root / "runtime.py").write_text('NAME = "consumer runtime"\n')
    (root / "Pulumi.yaml").write_text("name: consumer-photos\nruntime: python\n")
    (root / "Pulumi.staging.yaml").write_text("config:\n  consumer-photos:photos: oss://production-bucket/\n")
    (root / "__main__.py").write_text(program)
    return root


@pytest.mark.engine
def test_a_consumer_program_on_the_real_engine_in_its_own_folder_which_stays_as_it_was(
    tmp_path: Path, shared: tuple[str, Path, list[str]], keys: Credentials, three_photos: Path
) -> None:
    """The engine starts the program and its provider host in the consumer's folder (its `components/` beside
    ours); the stack's config lives in the rehearsal's own folder, so nothing there is written or read."""
    endpoint, oss_root, where = shared
    consumer = write_consumer(tmp_path / "consumer")
    before = {name: (consumer / name).read_bytes() for name in files_in(consumer) if (consumer / name).is_file()}
    program = ["--program", str(consumer), "--stack", "staging", "--photos", str(three_photos)]
    config = ["--config", "photos=oss://consumer-photos/2026/", "--config", "serviceRole=ConsumerImmRole"]
    proc = rehearse(*where, *program, *config, "--json", cwd=tmp_path, engine="real")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "this package's program is given" not in proc.stderr  # the banner speaks of the program it runs
    summary = json.loads(proc.stdout)
    assert summary["engine"] == "real" and summary["outputs"]["runtime"] == "consumer runtime"
    faces = summary["outputs"]["faces"]
    assert faces["project_name"] == "consumer-photos-staging-photos-project" and faces["endpoint"] == endpoint
    assert faces["binding_uris"] == ["oss://consumer-photos/2026/"]  # --config, not their Pulumi.staging.yaml
    assert faces["service_role"] == "ConsumerImmRole" and summary["verify"]["faces"]["passed"]
    assert summary["emulator_empty"] and not (oss_root / "consumer-photos").exists()
    after = {name: (consumer / name).read_bytes() for name in files_in(consumer) if (consumer / name).is_file()}
    assert after == before


@pytest.mark.engine
def test_sigterm_on_the_real_engine_lets_it_finish_the_step_then_destroys(
    tmp_path: Path, shared: tuple[str, Path, list[str]], keys: Credentials, three_photos: Path
) -> None:
    endpoint, oss_root, where = shared
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    args = [
        *where,
        "--stack",
        "sigterm",
        "--photos",
        str(three_photos),
        "--config",
        'ossLocations=["oss://sigterm-photos/people/"]',
    ]
    project, dataset = "imm-faces-sigterm-faces-project", "imm-faces-sigterm-faces-faces"
    with ImmClient(endpoint=endpoint, credentials=keys) as imm:
        # once the engine says the binding (which waits for IMM's first scan) is being created and its provider
        # has asked IMM for it
        code, out = sigterm_rehearsal(
            args,
            tmp_path,
            "Binding faces-binding-0 creating",
            lambda _: bool(imm.call(bindings.ListBindings, project_name=project, dataset_name=dataset).bindings),
            env={"TMPDIR": str(scratch)},
        )
    assert code == 130, out[-3000:]
    assert "interrupted: the engine finished the operations under way and recorded them; deleting" in out
    assert "Binding faces-binding-0 created" in out  # finished, recorded, then destroyed
    assert "FigureClusteringTask faces-clustering creating" not in out  # and nothing started after it
    assert "-  pulumi-python:dynamic/imm:Binding faces-binding-0 deleted" in out
    assert "nothing the rehearsal made is left in the emulator" in out and "Traceback" not in out
    assert "imm-faces-sigterm-faces-project" not in project_names(endpoint, keys)
    assert not (oss_root / "sigterm-photos").exists() and list(scratch.iterdir()) == []


@pytest.mark.engine
def test_sigterm_during_the_preview_stops_before_up(
    tmp_path: Path, shared: tuple[str, Path, list[str]], keys: Credentials, three_photos: Path
) -> None:
    """A signal while a Pulumi command runs waits for its end (it may write state), then stops the rehearsal."""
    endpoint, oss_root, where = shared
    args = [*where, "--stack", "early", "--photos", str(three_photos), "--config", 'ossLocations=["oss://early/"]']

    def while_preview_runs(pid: int) -> bool:
        return bool(children(pid, "preview"))

    code, out = sigterm_rehearsal(args, tmp_path, "pulumi preview (creates nothing)", while_preview_runs)
    assert code == 130, out[-3000:]
    assert "==> pulumi up" not in out and "Updating (early)" not in out and "Traceback" not in out
    assert "imm-faces-early-faces-project" not in project_names(endpoint, keys)
    assert not (oss_root / "early").exists()


HARD_CODED_ENDPOINT = CONSUMER_PROGRAM.replace('endpoint=config.get("endpoint")', 'endpoint="https://imm.example.com"')


@pytest.mark.engine
@pytest.mark.parametrize(
    ("program", "config", "code", "message"),
    [
        (
            HARD_CODED_ENDPOINT,
            ["serviceRole=R"],
            2,
            "error: --engine real: photos-project "
            "(pulumi-python:dynamic/imm:Project) would go to endpoint 'https://imm.example.com', not the emulator",
        ),
        (
            CONSUMER_PROGRAM,
            [],
            2,
            "error: --engine real: the program needs the provider plugin "
            "pulumi-resource-alicloud, which this engine lacks",
        ),
        (
            CONSUMER_PROGRAM,
            ["serviceRole=not a role"],
            1,
            "imm-faces rehearse: the stack program failed (pulumi "
            "preview): imm_faces.components.args.ArgsError: FaceClusteringArgs.service_role: must be",
        ),
    ],
    ids=["endpoint-elsewhere", "alicloud-plugin-missing", "bad-config"],
)
def test_what_the_real_engine_does_not_run_is_refused_before_anything_is_created(
    tmp_path: Path,
    shared: tuple[str, Path, list[str]],
    keys: Credentials,
    three_photos: Path,
    program: str,
    config: list[str],
    code: int,
    message: str,
) -> None:
    endpoint, oss_root, where = shared
    consumer = write_consumer(tmp_path / "consumer", program)
    settings = [item for pair in (("--config", c) for c in ["photos=oss://refused-photos/", *config]) for item in pair]
    proc = rehearse(
        *where,
        "--program",
        str(consumer),
        "--stack",
        "refused",
        "--photos",
        str(three_photos),
        *settings,
        cwd=tmp_path,
        engine="real",
    )
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert "pulumi up" not in proc.stdout and not (oss_root / "refused-photos").exists()
    assert "consumer-photos-refused-photos-project" not in project_names(endpoint, keys)


def test_engine_real_without_an_engine_is_a_usage_error_saying_why(
    tmp_path: Path, three_photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMM_FACES_PULUMI_ENGINE", raising=False)  # rehearse() adds os.environ back (CI exports it)
    env = without_pulumi_engine(dict(os.environ), tmp_path / "no-engine")
    proc = rehearse("--photos", str(three_photos), cwd=tmp_path, env=env, engine="real")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "imm-faces rehearse: error: --engine real: no real Pulumi engine: "
        "scripts/pulumi-engine.sh has not built one; no pulumi on PATH"
    )
    assert "IMM emulator at" not in proc.stdout


def test_the_engine_is_chosen_as_engine_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    assert real_engine.choose("mocks", said.append) is None and said == [
        "engine: the Pulumi SDK's mocks (--engine mocks)"
    ]
    for key, value in without_pulumi_engine(dict(os.environ), tmp_path / "no-engine").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(real_engine.ENGINE_VARIABLE, raising=False)
    real_engine.locate.cache_clear()
    try:
        said.clear()
        assert real_engine.choose("auto", said.append) is None
        assert said[0].startswith("engine: the Pulumi SDK's mocks, as there is no real Pulumi engine here (")
        found = tmp_path / "engine"
        found.mkdir()
        monkeypatch.setenv(real_engine.ENGINE_VARIABLE, str(found))
        real_engine.locate.cache_clear()
        assert f"lacks {', '.join(real_engine.PYTHON_TOOLS)}" in str(real_engine.locate())
        for tool in real_engine.PYTHON_TOOLS:  # an engine too old for the stack config to reach the providers
            (found / tool).write_text("#!/bin/sh\necho v3.138.0\n")
            (found / tool).chmod(0o755)
        real_engine.locate.cache_clear()
        assert str(real_engine.locate()).endswith("pulumi v3.138.0 is older than v3.139.0")
        (found / "pulumi").write_text("#!/bin/sh\necho v3.139.0\n")
        real_engine.locate.cache_clear()
        said.clear()
        engine = real_engine.choose("auto", said.append)
        assert engine is not None and engine.version == "v3.139.0" and engine.bin_dir == found
        assert said == [f"engine: the real Pulumi engine, pulumi v3.139.0 (${real_engine.ENGINE_VARIABLE}: {found})"]
    finally:
        real_engine.locate.cache_clear()


def test_the_program_gets_the_emulator_and_structured_config() -> None:
    config = real_engine.stack_config(
        "imm-faces", {"imm-faces:region": "cn-hangzhou"}, "http://127.0.0.1:9", default_program=True
    )
    assert config == {
        "imm-faces:region": "cn-hangzhou",
        "imm-faces:endpoint": "http://127.0.0.1:9",
        "imm-faces:serviceRole": DEFAULT_SERVICE_ROLE,
    }
    mine = real_engine.stack_config(
        "c", {"c:endpoint": "http://x", "c:serviceRole": "R"}, "http://e", default_program=True
    )
    assert mine == {"c:endpoint": "http://x", "c:serviceRole": "R"}  # given: kept (and checked after the preview)
    assert "c:serviceRole" not in real_engine.stack_config("c", {}, "http://e", default_program=False)
    assert real_engine.config_entry('["oss://a/"]') == {
        "value": '["oss://a/"]',
        "secret": False,
        "objectValue": ["oss://a/"],
    }
    assert real_engine.config_entry("[not json") == {"value": "[not json", "secret": False}
    assert real_engine.config_entry("600") == {"value": "600", "secret": False}
