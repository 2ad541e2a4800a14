"""``imm-faces rehearse`` on the real Pulumi engine: ``pulumi preview``, ``up`` and ``destroy`` of the stack program
against the emulator, fully offline.

Where the engine comes from (:func:`locate`), first found wins:

1. ``$IMM_FACES_PULUMI_ENGINE``: a folder holding ``pulumi`` and its Python language host (what CI exports);
2. in a checkout of this repository, what ``scripts/pulumi-engine.sh`` has built (asked with ``--check``: nothing
   is built here, that takes minutes and Go);
3. a ``pulumi`` v3.139.0 or later on PATH with its Python language host and the dynamic-provider launcher
   ``pulumi-resource-pulumi-python`` beside it: the user's own install.

The engine tests find it the same way (``tests/engine/pulumi_engine.py`` imports :func:`locate`).

It runs in a folder of its own: a ``file://`` backend, ``PULUMI_HOME`` and the stack's config file
(``--config-file``, so nothing is written into the program's directory), the passphrase secrets provider, no
update check and no plugin download. The user's Pulumi settings (``PULUMI_*``: an access token, a backend) and
Alibaba Cloud identity never reach it. The steps: ``stack init``; the config (the program's, the emulator's
endpoint, the emulator's key as ``alicloud:accessKey``/``alicloud:secretKey``, the secret from stdin);
``preview --json``, which creates nothing and tells where each binding points (the photos are staged there) and
where every IMM resource goes (the emulator, or the rehearsal stops before ``up``); ``up``; ``stack output
--json``; ``stack export`` (what was created); ``destroy``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imm_faces.components.rehearsal import session
from imm_faces.components.rehearsal.session import DYNAMIC_PREFIX, IMM_TYPE_PREFIX, Created
from imm_faces.runtime.rules import DEFAULT_SERVICE_ROLE

if TYPE_CHECKING:  # the module imports light (the engine tests find the engine with it): pulumi's SDK only when run
    import argparse

    from imm_faces.runtime.credentials import Credentials

ENGINE_VARIABLE = "IMM_FACES_PULUMI_ENGINE"
ENGINE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pulumi-engine.sh"
"""Present in a checkout of this repository only (the installed package has no scripts)."""
MIN_VERSION = (3, 139, 0)
"""The first CLI that passes the stack's config to dynamic providers (pulumi PR #17673)."""
PYTHON_TOOLS = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python")
"""What a Python program with dynamic providers needs, side by side (the host runs the exec script beside it)."""
PASSPHRASE = "imm-faces-rehearsal"  # noqa: S105 - not a secret (below)
"""Encrypts the secrets of a throwaway state (the emulator's key): no user secret is behind it."""
DROPPED_VARIABLES = re.compile(r"^PULUMI_")
"""The user's own Pulumi settings (a token, a backend, a virtualenv) never reach the rehearsal's engine."""
MISSING_PLUGIN = re.compile(r"no resource plugin '([^']+)' found")


@dataclass(frozen=True)
class Engine:
    """A real Pulumi CLI (``pulumi version``: ``version``) with its Python language host, in ``bin_dir``."""

    bin_dir: Path
    version: str
    source: str
    """Where it was found, said to the user."""

    @property
    def pulumi(self) -> Path:
        return self.bin_dir / "pulumi"


class EngineUnfitError(Exception):
    """The program cannot be rehearsed on this engine (found before anything is created): the mocks can."""


class EngineError(Exception):
    """A Pulumi command failed; the message holds what it printed (its diagnostics)."""


def _version(pulumi: Path) -> tuple[str, tuple[int, ...]] | str:
    try:
        out = subprocess.run(  # noqa: S603 - our own engine's binary, arguments of ours
            [str(pulumi), "version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`{pulumi} version` failed ({exc})"
    text = out.stdout.strip()
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        return f"`{pulumi} version` printed {text!r}"
    return text, tuple(int(part) for part in match.groups())


def _engine_in(folder: Path, source: str) -> Engine | str:
    missing = [tool for tool in PYTHON_TOOLS if not os.access(folder / tool, os.X_OK)]
    if missing:
        return f"{source} {folder} lacks {', '.join(missing)}"
    version = _version(folder / "pulumi")
    if isinstance(version, str):
        return version
    text, parts = version
    if parts < MIN_VERSION:
        return f"{source} {folder}: pulumi {text} is older than v{'.'.join(map(str, MIN_VERSION))}"
    return Engine(folder, text, f"{source} {folder}")


def _from_script() -> Engine | str:
    bash = shutil.which("bash")
    if not ENGINE_SCRIPT.is_file() or bash is None:
        return ""  # an installed package: no script to ask
    proc = subprocess.run(  # noqa: S603 - our own engine's binary, arguments of ours
        [bash, str(ENGINE_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return "scripts/pulumi-engine.sh has not built one"
    return _engine_in(Path(proc.stdout.strip().splitlines()[-1]), "built by scripts/pulumi-engine.sh:")


def _from_path() -> Engine | str:
    """A Pulumi install on PATH: the official one keeps the language hosts and their helpers beside the CLI."""
    found = shutil.which("pulumi")
    if found is None:
        return "no pulumi on PATH"
    return _engine_in(Path(found).resolve().parent, "on PATH:")


@functools.cache
def locate() -> Engine | str:
    """The real engine (see the module's docstring), or why there is none."""
    override = os.environ.get(ENGINE_VARIABLE)
    if override:
        return _engine_in(Path(override), f"${ENGINE_VARIABLE}:")
    reasons = []
    for find in (_from_script, _from_path):
        found = find()
        if isinstance(found, Engine):
            return found
        reasons.append(found)
    return "; ".join(reason for reason in reasons if reason)


def offline_environment(engine: Engine, root: Path, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the rehearsal's environment, where the emulator's key has replaced the user's Alibaba Cloud
    identity) without the user's Pulumi settings, plus an offline Pulumi in ``root``; the program and the
    dynamic-provider host run on this interpreter (which has imm_faces installed)."""
    env = {k: v for k, v in base.items() if not DROPPED_VARIABLES.match(k)}
    env.update(
        {
            "PATH": os.pathsep.join([str(engine.bin_dir), str(Path(sys.executable).parent), base.get("PATH", "")]),
            "PULUMI_HOME": str(root / "home"),
            "PULUMI_BACKEND_URL": (root / "state").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            # A language host older than the CLI (scripts/pulumi-engine.sh builds sdk v3.79.0's) does not get
            # Pulumi.yaml's runtime options and would run `python3`; the dynamic-provider launcher reads it too.
            "PULUMI_PYTHON_CMD": sys.executable,
        }
    )
    return env


@dataclass
class Planned:
    """One resource ``pulumi preview`` would create."""

    type: str
    name: str
    inputs: dict[str, Any]


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


class EngineStack:
    """One stack of the program's project in an offline Pulumi under ``root`` (see :func:`offline_environment`).

    ``project_dir`` holds the program's ``Pulumi.yaml``; the stack's config lives in ``root/stack.yaml``."""

    def __init__(self, engine: Engine, root: Path, project_dir: Path, stack: str, env: Mapping[str, str]) -> None:
        self.engine, self.root, self.project_dir, self.stack = engine, root, project_dir, stack
        for folder in ("home", "state"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.env = offline_environment(engine, root, env)
        self.config_file = root / "stack.yaml"
        self.holding = False
        """Set for the cleanup: a Ctrl-C/SIGTERM during a command is then ignored instead of raised after it."""

    def command(self, *args: str) -> list[str]:
        """``pulumi ARGS`` on this stack, in the program's folder, with the config file (a command that takes it)."""
        config = ("--config-file", str(self.config_file)) if args[0] != "stack" else ()
        return [
            str(self.engine.pulumi),
            *args,
            "--stack",
            self.stack,
            "--non-interactive",
            "--cwd",
            str(self.project_dir),
            *config,
        ]

    def start(self, *args: str, stdin: int, stderr: int) -> subprocess.Popen[str]:
        """``pulumi ARGS`` in a session of its own: a terminal's Ctrl-C reaches it once, passed on by us."""
        return subprocess.Popen(  # noqa: S603 - our own engine's binary, arguments of ours
            self.command(*args),
            cwd=self.project_dir,
            env=self.env,
            text=True,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )

    def run(self, *args: str, stdin: str | None = None) -> str:
        """``pulumi ARGS`` to its end, its stdout. A Ctrl-C/SIGTERM meanwhile waits for that end (the command may be
        writing state), then goes on as KeyboardInterrupt (unless :attr:`holding`)."""
        proc = self.start(*args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err, interrupted = _finish(proc, stdin)
        if interrupted and not self.holding:
            raise KeyboardInterrupt
        if proc.returncode != 0:
            raise EngineError(_diagnostics(out, err) or f"pulumi {args[0]} exited {proc.returncode}")
        return out

    def create(self, config: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        """``stack init`` and its config. ``stack init`` writes the secrets salt into ``Pulumi.<stack>.yaml``
        beside the ``Pulumi.yaml`` it runs with: run on a copy of that file, so the program's folder is untouched."""
        scratch = self.root / "init"
        scratch.mkdir(exist_ok=True)
        shutil.copyfile(self.project_dir / "Pulumi.yaml", scratch / "Pulumi.yaml")
        init = [
            str(self.engine.pulumi),
            "stack",
            "init",
            self.stack,
            "--secrets-provider",
            "passphrase",
            "--non-interactive",
        ]
        proc = subprocess.run(init, cwd=scratch, env=self.env, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise EngineError(_diagnostics(proc.stdout, proc.stderr) or f"pulumi stack init exited {proc.returncode}")
        shutil.move(scratch / f"Pulumi.{self.stack}.yaml", self.config_file)
        values = {key: config_entry(value) for key, value in config.items()}
        self.run("config", "set-all", "--json", json.dumps(values))
        for key, value in secrets.items():  # on stdin: never on a command line
            self.run("config", "set", "--secret", key, stdin=value)

    def preview(self) -> list[Planned]:
        """What ``up`` would create, with the inputs the engine knows (nothing is created)."""
        document = json.loads(self.run("preview", "--json"))
        return [
            Planned(step["newState"]["type"], _name(step["urn"]), dict(step["newState"].get("inputs") or {}))
            for step in document.get("steps", [])
            if step.get("op") == "create" and (step.get("newState") or {}).get("custom")
        ]

    def up(self, echo: Callable[[str], None]) -> None:
        """``pulumi up`` (no second preview), its progress lines echoed as they come. Ctrl-C/SIGTERM (here a
        KeyboardInterrupt) is passed on as SIGINT, which the engine answers by finishing the resource operations
        under way, recording them in the state and exiting; then the KeyboardInterrupt goes on."""
        self._stream(echo, "up", "--yes", "--skip-preview")

    def destroy(self, echo: Callable[[str], None]) -> None:
        """``pulumi destroy`` (the cleanup runs it :attr:`holding`: to its end whatever signal comes meanwhile)."""
        self._stream(echo, "destroy", "--yes", "--skip-preview")

    def _stream(self, echo: Callable[[str], None], *args: str) -> None:
        proc = self.start(*args, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        lines: list[str] = []
        interrupted = in_outputs = False  # the outputs: printed next, as `stack output --json` gives them
        while True:
            try:
                line = proc.stdout.readline()
            except KeyboardInterrupt:
                if not self.holding and not interrupted and proc.poll() is None:
                    os.kill(proc.pid, signal.SIGINT)
                interrupted = True
                continue
            if not line:
                break
            lines.append(line)
            if line.startswith(("Outputs:", "Resources:")):
                in_outputs = line.startswith("Outputs:")
            if line.strip() and not in_outputs and not line.startswith(HIDDEN):
                echo(line.rstrip())
        interrupted = _finish(proc, None)[2] or interrupted
        if interrupted and not self.holding:
            raise KeyboardInterrupt
        if proc.returncode != 0:
            raise EngineError(_diagnostics("".join(lines), "") or f"pulumi {args[0]} exited {proc.returncode}")

    def outputs(self) -> dict[str, Any]:
        """``pulumi stack output --json``: what verify reads from a deployed stack."""
        return dict(json.loads(self.run("stack", "output", "--json")))

    def resources(self) -> list[Created]:
        """The custom resources in the state (``pulumi stack export``), in the engine's order."""
        deployment = json.loads(self.run("stack", "export"))["deployment"]
        return [
            Created(
                r["type"],
                _name(r["urn"]),
                r["urn"],
                r.get("id", ""),
                dict(r.get("outputs") or {}),
                r["type"].startswith(DYNAMIC_PREFIX),
                dict(r.get("inputs") or {}),
            )
            for r in deployment.get("resources") or []
            if r.get("custom") and not r["type"].startswith("pulumi:providers:")
        ]


HIDDEN = ("@ ", "The resources in the stack", "If you want to remove the stack")
"""Lines of ``up``/``destroy`` not echoed: the heartbeat ("@ updating...."), the hint to ``pulumi stack rm`` a stack
that is thrown away anyway."""


def config_entry(value: Any) -> dict[str, Any]:
    """One value of ``config set-all --json`` (``pulumi config --json``'s shape): a JSON list or object given as
    text becomes structured config, as the program's ``get_object`` and a typed ``Pulumi.yaml`` expect."""
    text = value if isinstance(value, str) else json.dumps(value)
    entry: dict[str, Any] = {"value": text, "secret": False}
    if text.lstrip().startswith(("[", "{")):
        with contextlib.suppress(ValueError):
            entry["objectValue"] = json.loads(text)
    return entry


def _finish(proc: subprocess.Popen[str], stdin: str | None) -> tuple[str, str, bool]:
    """Wait for ``proc`` to end: (its stdout, its stderr, whether a Ctrl-C/SIGTERM came meanwhile)."""
    interrupted = False
    while True:
        try:
            out, err = proc.communicate(stdin)
            return out or "", err or "", interrupted
        except KeyboardInterrupt:
            interrupted = True
            stdin = None  # communicate() resumes where it was; the input is already on its way


def _diagnostics(stdout: str, stderr: str) -> str:
    """What a failed Pulumi command said, one line per error: the error diagnostics of a ``--json`` document (a
    program's traceback as its last line), else the lines that hold ``error:``."""
    try:
        document = json.loads(stdout)
    except ValueError:
        document = None
    if isinstance(document, dict):
        errors = [str(d.get("message", "")) for d in document.get("diagnostics") or [] if d.get("severity") == "error"]
    else:
        errors = [line for line in f"{stdout}\n{stderr}".splitlines() if "error:" in line]
    return "\n".join(_last_line(text) for text in errors)


def _last_line(text: str) -> str:
    """A traceback's last line (the exception), else the text on one line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        return lines[-1]
    return " ".join(lines)


def choose(mode: str, say: Callable[[str], None]) -> Engine | None:
    """The engine ``--engine MODE`` asks for: the real one (auto, when found; real, or a usage error saying why
    not) or None for the mocks; says which and why."""
    if mode == "mocks":
        say("engine: the Pulumi SDK's mocks (--engine mocks)")
        return None
    found = locate()
    if isinstance(found, Engine):
        say(f"engine: the real Pulumi engine, pulumi {found.version} ({found.source})")
        return found
    if mode == "real":
        raise session.UsageError(f"--engine real: no real Pulumi engine: {found}")
    say(
        f"engine: the Pulumi SDK's mocks, as there is no real Pulumi engine here ({found}); scripts/pulumi-engine.sh "
        "of a checkout builds one (needs Go), or install the Pulumi CLI v3.139.0 or later"
    )
    return None


PROGRAM = "from imm_faces.components.program import run\n\nrun()\n"
"""This package's stack program, as the repository's ``__main__.py`` runs it."""


def _default_project(root: Path, project: str) -> Path:
    """A project folder for this package's program (an installed package has no ``Pulumi.yaml``)."""
    folder = root / "program"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text(f"name: {project}\nruntime: python\n")
    (folder / "__main__.py").write_text(PROGRAM)
    return folder


def stack_config(project: str, config: Mapping[str, str], endpoint: str, *, default_program: bool) -> dict[str, str]:
    """The program's config, with the emulator's endpoint as the program's ``endpoint`` (which this package's
    program and the README's consumer programs pass to FaceClustering) unless given; this package's program
    gets an existing service role unless given: its RAM role and policy need the alicloud plugin, which the
    engine here lacks."""
    values = dict(config)
    values.setdefault(f"{project}:endpoint", endpoint)
    if default_program:
        values.setdefault(f"{project}:serviceRole", DEFAULT_SERVICE_ROLE)
    return values


def check_targets(planned: list[Planned], endpoint: str) -> None:
    """Every IMM resource must go to the emulator (rehearse never reaches anything else): else EngineUnfitError."""
    for resource in planned:
        if not resource.type.startswith(IMM_TYPE_PREFIX):
            continue
        target = resource.inputs.get("endpoint")
        if not isinstance(target, str) or target.rstrip("/") != endpoint.rstrip("/"):
            where = f"endpoint {target!r}" if target else "the cloud (no endpoint)"
            raise EngineUnfitError(
                f"{resource.name} ({resource.type}) would go to {where}, not the emulator: on the real engine the "
                f"program decides where its resources go, and this one does not pass the stack config `endpoint` "
                f"(set to {endpoint}) to FaceClusteringArgs(endpoint=...)"
            )


def missing_plugin(error: EngineError) -> str | None:
    """The provider plugin a failed preview lacked (e.g. pulumi-resource-alicloud), if that is why it failed."""
    match = MISSING_PLUGIN.search(str(error))
    return match.group(1) if match else None


def rehearse(args: argparse.Namespace, program: session.Program, credentials: Credentials, engine: Engine) -> int:
    """The rehearsal of :mod:`imm_faces.components.rehearse` with the real engine doing the deployment: preview,
    photos staged where the preview says the bindings point, up, verify on ``pulumi stack output --json``,
    destroy, and the check that nothing it made is left. Raises :class:`EngineUnfitError` before anything is
    created when the program cannot run here (a provider plugin missing, an IMM resource not aimed at the
    emulator)."""
    started = time.monotonic()
    print(
        f"imm-faces rehearse: a rehearsal on the REAL Pulumi engine (pulumi {engine.version}), offline, against a\n"
        "local IMM emulator: preview, up, verify, destroy, with the state in a temporary file:// backend. Not\n"
        + (
            "exercised: the alicloud plugin (this package's program is given an existing service role instead of\n"
            "creating the RAM role and policy).\n"
            if program.main is None
            else "exercised: the alicloud plugin (a program that needs it is rehearsed on the SDK's mocks instead).\n"
        ),
        file=session.say.stream,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="imm-faces-rehearsal-") as tmp, contextlib.ExitStack() as stack:
        endpoint, oss_root, own = session.use_emulator(args, stack, Path(tmp), credentials)
        photos = session.Photos(args.photos, oss_root, Path(tmp) / "sample", shared=not own)
        env = stack.enter_context(session.emulator_environment(credentials))
        root = Path(tempfile.mkdtemp(prefix="imm-faces-rehearsal-state-")) if args.keep else Path(tmp) / "engine"
        pulumi = EngineStack(
            engine, root, program.directory or _default_project(root, program.project), args.stack, env
        )
        try:
            code, outputs, reports = _deploy(args, program, pulumi, endpoint, credentials, photos, Path(tmp))
        except KeyboardInterrupt:
            session.say("interrupted: the engine finished the operations under way and recorded them; deleting")
            teardown(pulumi, endpoint, credentials, photos)
            raise
        if args.keep:
            created, left, kept = _resources(pulumi), list[str](), list[str]()
            session.say(
                f"--keep: everything stays in the emulator at {endpoint} ({session.keys_to_show(credentials)}), the "
                f"photos in {oss_root}, the stack in {root}: to delete it, {_destroy_command(pulumi)}"
            )
            if own:
                session.say("Ctrl-C to stop the emulator")
                session.wait_for_interrupt()
        else:
            created, left, kept = teardown(pulumi, endpoint, credentials, photos)
    seconds = time.monotonic() - started
    return session.conclude(args, program, seconds, code, created, outputs, reports, left, kept, engine.version)


def _deploy(
    args: argparse.Namespace,
    program: session.Program,
    pulumi: EngineStack,
    endpoint: str,
    credentials: Credentials,
    photos: session.Photos,
    tmp: Path,
) -> tuple[int | None, dict[str, Any], dict[str, Any]]:
    """The stack and its config, preview, photos, up, verify: (verify's exit code or None, outputs, reports)."""

    config = stack_config(program.project, program.config, endpoint, default_program=program.directory is None)
    provider = session.provider_config(credentials)
    try:
        pulumi.create({**config, "alicloud:accessKey": provider.pop("alicloud:accessKey")}, provider)
        session.say(f"stack {pulumi.stack} of project {program.project} ({pulumi.project_dir}), state in {pulumi.root}")
        _preview(pulumi, endpoint, photos)
        session.say("pulumi up")
        try:
            pulumi.up(_echo)
        except EngineError as exc:
            raise EngineError(f"deployment failed (pulumi up): {exc}") from None
        outputs = pulumi.outputs()
    except (EngineError, session.StagingError) as exc:
        print(f"imm-faces rehearse: {exc}", file=sys.stderr)
        return None, {}, {}
    out_path = Path(args.outputs) if args.outputs else tmp / "outputs.json"
    code, reports = session.verify_outputs(outputs, out_path, photos, json_mode=args.json, html=args.html)
    return code, outputs, reports


def teardown(
    pulumi: EngineStack, endpoint: str, credentials: Credentials, photos: session.Photos
) -> tuple[list[Created], list[str], list[str]]:
    """``pulumi destroy``, then (what was created, what of it is left, what was kept as adopted)."""

    photos.close()  # none staged from now on
    pulumi.holding = True  # the cleanup runs to its end
    created = _resources(pulumi)
    session.say("pulumi destroy")
    try:
        pulumi.destroy(_echo)
    except EngineError as exc:  # what is left is then found and reported by the check that follows
        session.say(f"pulumi destroy failed: {exc}")
    left, kept = session.left_behind(created, endpoint, credentials)
    return created, left + photos.remove(), kept


def _resources(pulumi: EngineStack) -> list[Created]:
    try:
        return pulumi.resources()
    except EngineError:  # no stack (its creation failed): nothing in it
        return []


def _preview(pulumi: EngineStack, endpoint: str, photos: session.Photos) -> None:
    """``pulumi preview``; stops the rehearsal (EngineUnfitError) when the program cannot run here; stages the photos
    where each binding will point."""
    session.say("pulumi preview (creates nothing)")
    try:
        planned = pulumi.preview()
    except EngineError as exc:
        plugin = missing_plugin(exc)
        if plugin:
            raise EngineUnfitError(f"the program needs the provider plugin {plugin}, which this engine lacks") from None
        raise EngineError(f"the stack program failed (pulumi preview): {exc}") from None
    check_targets(planned, endpoint)
    kinds = ", ".join(f"{p.type.rsplit(':', 1)[-1]} {p.name}" for p in planned)
    session.say(f"pulumi preview: {len(planned)} to create ({kinds}), each IMM resource at the emulator")
    for resource in planned:
        if resource.type == f"{IMM_TYPE_PREFIX}Binding":
            photos.stage("Binding", resource.inputs)


def _echo(line: str) -> None:

    print(f"    {line}", file=session.say.stream, flush=True)


def _destroy_command(pulumi: EngineStack) -> str:
    names = (
        "PULUMI_HOME",
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_PYTHON_CMD",
        "PULUMI_SKIP_UPDATE_CHECK",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
    )
    env = " ".join(f"{k}={shlex.quote(pulumi.env[k])}" for k in names)
    command = " ".join(shlex.quote(arg) for arg in pulumi.command("destroy", "--yes")[1:])
    return f"PATH={shlex.quote(str(pulumi.engine.bin_dir))}:$PATH {env} pulumi {command}"
