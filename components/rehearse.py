"""``imm-faces rehearse``: a whole deployment, offline, in about half a minute.

On the real Pulumi engine whenever one is found and can run the program (``--engine auto``, the default; ``real``;
``mocks``): :mod:`imm_faces.components.rehearsal.real_engine` runs ``pulumi preview``, ``up`` and ``destroy``
instead of step 2's mocks, with the same emulator, photos, verify and verdict. Under the mocks:

1. starts the local IMM emulator with real face analysis (or uses a running one: ``--endpoint``);
2. runs a stack program under the Pulumi SDK's mocks: this repository's (``imm_faces.components.program``, what
   ``pulumi up`` runs here) or any other (``--program DIR``: a consumer project's ``__main__.py``, run with
   DIR first on ``sys.path`` as the language host does). Every IMM resource is checked and created by the
   SDK's real dynamic-provider host process, started in the program's directory as the engine starts it, and
   always against the emulator, whatever endpoint the program names. The RAM role and policy are recorded;
3. puts the sample photos (real people, fetched from PyPI once and cached) wherever a binding points, before
   the binding is created;
4. writes the stack outputs as ``pulumi stack output --json`` prints them, runs ``imm-faces verify`` on every
   FaceClustering in them and prints the reports;
5. unless ``--keep``, deletes what it created in reverse order and shows that nothing it made is left.

The rehearsal's credentials are the emulator's: the user's Alibaba Cloud credentials, STS token and profile
are removed from the environment of the provider host and of verify, so they never reach the emulator.
SIGTERM is handled like Ctrl-C: what was created is deleted, the provider host stopped, temporary files
removed. Not exercised under the mocks: the Pulumi engine itself (state, diffs, previews, parallelism); on
either engine, the alicloud plugin (the RAM resources). Exit codes: 0 passed, 1 a step or a verify report
failed, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from imm_faces.components.rehearsal.engine import Created, RehearsalMocks
    from imm_faces.components.rehearsal.host import DynamicProviderHost
    from imm_faces.runtime.credentials import Credentials

HELP = "rehearse `pulumi up` + `imm-faces verify` offline, against the emulator with real photos"

PROJECT, STACK = "imm-faces", "rehearsal"
KEYS_ENV = "IMM_FACES_EMULATOR_ACCESS_KEYS"  # imm_faces.emulator.cli.KEYS_ENV (not imported: --help stays light)
BUCKET, PREFIX = "rehearsal-photos", "people/"
CREDENTIAL_VARIABLES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_")
"""Prefixes of the environment variables that carry a user's Alibaba Cloud identity (never sent here)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--program", metavar="DIR",
                        help="the Pulumi project to rehearse (a directory with __main__.py and Pulumi.yaml); "
                             "default: this package's stack program")  # fmt: skip
    parser.add_argument("--stack", default=STACK, metavar="NAME",
                        help=f"the stack name the program sees (default {STACK}); default names hold it")  # fmt: skip
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="stack config for the program, e.g. region=cn-hangzhou (repeatable; a key without "
                             "namespace is the program's)")  # fmt: skip
    parser.add_argument("--endpoint", metavar="URL",
                        help="use a running emulator (`imm-faces emulator`) instead of starting one; needs "
                             "--oss-root")  # fmt: skip
    parser.add_argument("--oss-root", metavar="DIR",
                        help="that emulator's --oss-root: the photos go there, and are removed afterwards")  # fmt: skip
    parser.add_argument("--access-key-file", metavar="PATH",
                        help=f"the emulator's keys as given to `imm-faces emulator` (one ID:SECRET[:STS_TOKEN] a "
                             f"line; also ${KEYS_ENV}); the first is used (default: the documented key)")  # fmt: skip
    parser.add_argument("--access-key", action="append", metavar="ID:SECRET[:STS_TOKEN]",
                        help="the same on the command line (visible in ps: prefer --access-key-file)")  # fmt: skip
    parser.add_argument("--outputs", metavar="PATH", help="also write the stack outputs (JSON) to PATH")
    parser.add_argument("--keep", action="store_true",
                        help="keep what was created (and a started emulator running, until Ctrl-C)")  # fmt: skip
    parser.add_argument("--photos", metavar="DIR", help="use the photos in DIR instead of the sample photos")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary on stdout (steps and the verify report go to stderr)")  # fmt: skip
    parser.add_argument("--html", metavar="FILE",
                        help="also write verify's HTML report of the clusters to FILE (the first FaceClustering of "
                             "the outputs; FILE-stem.<key>.html for each further one)")  # fmt: skip
    parser.add_argument("--engine", choices=("auto", "real", "mocks"), default="auto",
                        help="what runs the program: the real Pulumi engine (scripts/pulumi-engine.sh builds it, or "
                             "a pulumi v3.139+ on PATH), the Pulumi SDK's mocks, or auto: the real one when found "
                             "(default)")  # fmt: skip
    parser.epilog = ("Exit codes: 0 passed; 1 a step or a verify report failed; 2 usage (a bad option, the emulator's "
                     "keys refused, the sample photos not fetched); 130 interrupted (Ctrl-C or SIGTERM: what was "
                     "created is deleted first).")  # fmt: skip


class UsageError(Exception):
    """A bad combination of arguments (exit 2)."""


class _Progress:
    """Step lines: on stdout, or on stderr with --json (stdout then carries only the JSON summary)."""

    stream: TextIO = sys.stdout

    def __call__(self, text: str) -> None:
        print(f"==> {text}", file=self.stream, flush=True)


_say = _Progress()


@dataclass
class Program:
    """The stack program to rehearse: its Pulumi project name, its directory, and how to run it."""

    project: str
    directory: Path | None
    main: Path | None
    config: dict[str, str] = field(default_factory=dict)

    def run(self) -> None:
        import runpy

        if self.main is None:
            from imm_faces.components import program

            program.run()
        else:
            runpy.run_path(str(self.main), run_name="__main__")


def load_program(args: argparse.Namespace) -> Program:
    """The program named by ``--program`` (or this package's), with its stack config. (No endpoint: every IMM
    resource is created against the emulator whatever the program says.)"""
    import json

    if args.program is None:
        config = {
            "region": "cn-hangzhou", "description": "imm-faces offline rehearsal",
            "ossLocations": json.dumps([f"oss://{BUCKET}/{PREFIX}"]), "clusteringTimeout": "600",
            "scanTimeout": "600",
        }  # fmt: skip
        program = Program(PROJECT, None, None)
    else:
        directory = Path(args.program).resolve()
        main = directory / "__main__.py" if directory.is_dir() else directory
        if not main.is_file():
            raise UsageError(f"--program {args.program}: no __main__.py there")
        project_file = main.parent / "Pulumi.yaml"
        if not project_file.is_file():
            raise UsageError(f"--program {args.program}: no Pulumi.yaml next to {main.name}")
        program = Program(_project_name(project_file), main.parent, main)
        config = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--config {item!r}: must be KEY=VALUE")
        config[key] = value
    program.config = {(k if ":" in k else f"{program.project}:{k}"): v for k, v in config.items()}
    return program


def _project_name(project_file: Path) -> str:
    import re

    match = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", project_file.read_text(), re.MULTILINE)
    if not match:
        raise UsageError(f"{project_file}: no `name:`")
    return match.group(1)


def run(args: argparse.Namespace) -> int:
    from imm_faces.runtime.cli.extras import missing_extras
    from imm_faces.runtime.cli.main import EXIT_USAGE

    _say.stream = sys.stderr if args.json else sys.stdout
    # A started emulator analyses the photos itself: without face analysis no group can form.
    problem = missing_extras("rehearse", "emulator", "pulumi", *(() if args.endpoint else ("vision",)))
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    try:
        _check_arguments(args)
        program = load_program(args)
        credentials = _emulator_key(args)
        if not args.photos:
            _sample_photos()
        with _sigterm_as_interrupt():
            return _on_engine(args, program, credentials)
    except UsageError as exc:
        print(f"imm-faces rehearse: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _on_engine(args: argparse.Namespace, program: Program, credentials: Credentials) -> int:
    """On the real engine when ``--engine`` allows it and the program can run there (else on the mocks)."""
    from imm_faces.components.rehearsal import real_engine

    engine = real_engine.choose(args.engine, _say)
    if engine is not None:
        try:
            return real_engine.rehearse(args, program, credentials, engine)
        except real_engine.EngineUnfitError as exc:
            if args.engine == "real":
                raise UsageError(f"--engine real: {exc}") from None
            _say(f"engine: the Pulumi SDK's mocks after all: {exc}")
    return _rehearse(args, program, credentials)


def _check_arguments(args: argparse.Namespace) -> None:
    if bool(args.endpoint) != bool(args.oss_root):
        raise UsageError("--endpoint and --oss-root go together (the photos are put in that emulator's --oss-root)")
    if args.photos and not Path(args.photos).is_dir():
        raise UsageError(f"--photos {args.photos}: not a directory")
    if args.oss_root and not Path(args.oss_root).is_dir():
        raise UsageError(f"--oss-root {args.oss_root}: not a directory")


def _emulator_key(args: argparse.Namespace) -> Credentials:
    """The key the rehearsal signs with: the first of ``--access-key``, ``--access-key-file`` and
    ``$IMM_FACES_EMULATOR_ACCESS_KEYS`` (read as ``imm-faces emulator`` reads them), else the documented default.
    A started emulator accepts exactly that key."""
    import os

    from imm_faces.emulator.cli import KeySourceError, load_keys
    from imm_faces.emulator.server import DEFAULT_ACCESS_KEY

    try:
        keys = load_keys(args, os.environ)
    except KeySourceError as exc:
        raise UsageError(str(exc)) from None
    return keys[0] if keys else DEFAULT_ACCESS_KEY


def _sample_photos() -> Path:
    """The cached sample photos, fetched first when this is the first run: before anything starts, so that a
    machine without PyPI (a cold cache offline) is told what failed and what works offline."""
    from imm_faces.emulator.sample_photos import SamplePhotosError, cache_dir, fetch_photos

    if not cache_dir().is_dir():
        _say(f"fetching the sample photos once (face_recognition 1.3.0 sdist from PyPI, 3 MB) into {cache_dir()}")
    try:
        return fetch_photos()
    except SamplePhotosError as exc:
        reason = str(exc).strip().splitlines()[-1]  # pip's last line says why (e.g. no matching distribution)
        raise UsageError(
            f"the sample photos could not be fetched from PyPI (they are downloaded on the first run, then cached "
            f"in {cache_dir()}): {reason}. Offline, rehearse with photos of your own: --photos DIR (three or "
            f"more photos of one person form a face group)."
        ) from None


INTERRUPTED = threading.Event()
"""Set by SIGTERM or Ctrl-C during a rehearsal."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI runner's cancel, `kill`) cleans up exactly as Ctrl-C (SIGINT) does."""
    import logging
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        # The SDK's event loop is left mid-task; asyncio would log that as an error on the way out.
        logging.getLogger("asyncio").disabled = True
        INTERRUPTED.set()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            # The SDK's driver (run_pulumi_func) catches BaseException from the program and then waits for every
            # outstanding registration, one of which the interrupt may have left unfinished: it would wait for
            # ever. Stopping the loop ends that wait (run_until_complete raises), and INTERRUPTED says why.
            loop.call_soon_threadsafe(loop.stop)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _emulator_environment(credentials: Credentials) -> Iterator[dict[str, str]]:
    """This process's environment without the user's Alibaba Cloud identity, with the emulator's keys; set
    for the duration (verify runs in this process) and restored afterwards. Yields it for child processes."""
    import os

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(CREDENTIAL_VARIABLES):
            del os.environ[name]
    os.environ.update(credentials.environment())
    try:
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _rehearse(args: argparse.Namespace, program: Program, credentials: Credentials) -> int:
    import tempfile
    import time

    from imm_faces.components.rehearsal.engine import RehearsalError, RehearsalMocks, run_program
    from imm_faces.components.rehearsal.host import DynamicProviderHost, ProviderCallError

    started = time.monotonic()
    print("imm-faces rehearse: an OFFLINE rehearsal. The stack program runs under the Pulumi SDK's mocks against a\n"
          "local IMM emulator. Not exercised: the Pulumi engine (state, diff, preview) and the alicloud plugin\n"
          "(the RAM role and policy are recorded, not created).\n", file=_say.stream, flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="imm-faces-rehearsal-") as tmp, contextlib.ExitStack() as stack:
        endpoint, oss_root, own = _emulator(args, stack, Path(tmp), credentials)
        photos = _Photos(args.photos, oss_root, Path(tmp) / "sample", shared=not own)
        env = stack.enter_context(_emulator_environment(credentials))
        host = stack.enter_context(DynamicProviderHost(config=_provider_config(credentials), env=env,
                                                       cwd=program.directory))  # fmt: skip
        _say(f"dynamic-provider host: `python -m pulumi.dynamic` (pid {host.pid})"
             + (f", started in {program.directory}" if program.directory else ""))  # fmt: skip
        mocks = RehearsalMocks(
            host, program.project, args.stack, endpoint=endpoint, before_create=photos.stage, on_resource=_announce
        )
        where = f"{program.main}" if program.main else "imm_faces.components.program.run"
        _say(f"running the stack program ({where}) as project {program.project}, stack {args.stack}, under "
             "the Pulumi SDK's mocks")  # fmt: skip
        code: int | None = None  # verify's exit code, once it has run
        outputs, reports = dict[str, Any](), dict[str, Any]()
        try:
            try:
                with _program_path(program.directory):
                    outputs = run_program(program.run, mocks, project=program.project, stack=args.stack,
                                          config=program.config)  # fmt: skip
            except Exception as exc:
                if INTERRUPTED.is_set():  # the loop stopped by SIGTERM/Ctrl-C (see _sigterm_as_interrupt)
                    raise KeyboardInterrupt from None
                if isinstance(exc, RehearsalError | ProviderCallError):
                    print(f"imm-faces rehearse: deployment failed: {exc}", file=sys.stderr)
                elif isinstance(exc, StagingError):  # not the program's doing: where the photos go
                    print(f"imm-faces rehearse: {exc}", file=sys.stderr)
                else:  # the program's own error (bad config, a bug), as `pulumi up` would show it
                    print(f"imm-faces rehearse: the stack program failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            else:
                out_path = Path(args.outputs) if args.outputs else Path(tmp) / "outputs.json"
                code, reports = _verify(outputs, out_path, photos, json_mode=args.json, html=args.html)
        except KeyboardInterrupt:  # BaseException: not caught above
            photos.close()  # a staging under way (on the SDK's thread) finishes first; no other starts
            _say("interrupted: deleting what the rehearsal created")
            _teardown(mocks, host, endpoint, credentials)
            photos.remove()
            raise
        created = list(mocks.created)
        left: list[str] = []
        kept: list[str] = []
        if args.keep:
            _say(f"--keep: everything stays in the emulator at {endpoint} ({_keys_to_show(credentials)}), and the "
                 f"photos in {oss_root}")  # fmt: skip
            if own:
                _say("Ctrl-C to stop it")
                _wait_for_interrupt()
        else:
            left, kept = _teardown(mocks, host, endpoint, credentials)
            left += photos.remove()
    return _verdict(args, program, time.monotonic() - started, code, created, outputs, reports, left, kept)


def _emulator(
    args: argparse.Namespace, stack: contextlib.ExitStack, tmp: Path, credentials: Credentials
) -> tuple[str, Path, bool]:
    """(endpoint, OSS root, started here): the running one of ``--endpoint``, checked, or one started in ``tmp``."""
    if args.endpoint:
        endpoint, oss_root = args.endpoint.rstrip("/"), Path(args.oss_root)
        _check_endpoint(endpoint, credentials)
        _say(f"IMM emulator at {endpoint} (already running; photos go to {oss_root})")
        return endpoint, oss_root, False
    from imm_faces.emulator.analysis import default_analyzer
    from imm_faces.emulator.server import Emulator

    analyzer = default_analyzer()
    if not analyzer.faces_available:
        _say("face analysis is unavailable (install imm-faces[vision]); clustering will report it")
    oss_root = tmp / "oss"
    oss_root.mkdir()
    emu = stack.enter_context(Emulator(db=tmp / "imm.db", oss_root=oss_root, analyzer=analyzer,
                                       access_keys=[credentials]))  # fmt: skip
    _say(f"IMM emulator at {emu.endpoint}")
    return emu.endpoint, oss_root, True


def _verdict(
    args: argparse.Namespace, program: Program, seconds: float, code: int | None, created: list[Created],
    outputs: dict[str, Any], reports: dict[str, Any], left: list[str], kept: list[str], pulumi: str | None = None,
) -> int:  # fmt: skip
    """The last line (and with --json the summary): passed when verify passed and nothing made is left.
    ``pulumi``: the real engine's version (None: the mocks ran the program)."""
    from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK

    verdict = "PASSED" if code == EXIT_OK and not left else "FAILED"
    seconds = round(seconds, 1)
    behind = "everything (--keep)" if args.keep else ", ".join(left) or "nothing"
    adopted = f"; kept as adopted: {', '.join(kept)}" if kept else ""
    checked = "verify not run" if code is None else f"verify exit {code}"
    engine = f"the real Pulumi engine {pulumi}" if pulumi else "the Pulumi SDK's mocks"
    _say(f"rehearsal {verdict} in {seconds} s ({engine}; {checked}; left behind: {behind}{adopted})")
    _how_to_reach_imm_faces()
    if args.json:
        import json

        resources = [{"type": r.type, "name": r.name, "id": r.id, "created": r.dynamic and not _adopted(r),
                      "adopted": _adopted(r)} for r in created]  # fmt: skip
        summary = {
            "passed": verdict == "PASSED", "seconds": seconds, "engine": "real" if pulumi else "mocks",
            "pulumi": pulumi, "project": program.project, "stack": args.stack,
            "outputs": outputs, "resources": resources, "verify_exit": code, "verify": reports,
            "kept": bool(args.keep), "left_behind": left, "kept_adopted": kept,
            "emulator_empty": not left and not kept and not args.keep,
        }  # fmt: skip
        print(json.dumps(summary, indent=2))
    return EXIT_OK if verdict == "PASSED" else EXIT_FAILED


def _check_endpoint(endpoint: str, credentials: Credentials) -> None:
    """A running emulator must accept the rehearsal's key before anything is created (else every step, the
    teardown included, would fail with the same refusal)."""
    from imm_faces.runtime.client import ImmClient
    from imm_faces.runtime.errors import ImmError, TransportError
    from imm_faces.runtime.operations import projects

    try:
        with ImmClient(endpoint=endpoint, credentials=credentials, timeout=10) as imm:
            imm.call(projects.ListProjects, max_results=1)
    except TransportError as exc:
        raise UsageError(f"--endpoint {endpoint}: {exc}") from None
    except ImmError as exc:
        raise UsageError(
            f"--endpoint {endpoint} refused the key {credentials.access_key_id} ({exc.code}): give the keys that "
            f"emulator was started with, --access-key-file FILE or ${KEYS_ENV} as for `imm-faces emulator`"
        ) from None


def _keys_to_show(credentials: Credentials) -> str:
    """Where the kept emulator's key comes from; the secret only when it is the documented default."""
    from imm_faces.emulator.server import DEFAULT_ACCESS_KEY

    if credentials == DEFAULT_ACCESS_KEY:
        keys = " ".join(f"{k}={v}" for k, v in credentials.environment().items())
        return f"its keys, documented defaults: {keys}"
    return f"the key {credentials.access_key_id} you gave"


def _adopted(resource: Created) -> bool:
    """An IMM object that existed before and that the stack took over (``adoptExisting``)."""
    return bool(resource.dynamic and resource.outputs.get("adopted"))


def _kept(resource: Created) -> bool:
    """What `pulumi destroy` keeps: an adopted object, unless ``deleteAdopted``."""
    return _adopted(resource) and not resource.outputs.get("delete_adopted")


def _announce(resource: Created) -> None:
    verb = "adopted " if _adopted(resource) else "created " if resource.dynamic else "recorded"
    _say(f"{verb} {resource.type} {resource.name}" + (f" -> {resource.id}" if resource.dynamic else ""))


def _provider_config(credentials: Credentials) -> dict[str, str]:
    """The provider host's Configure: the emulator's keys as stack config, which outrank the environment."""
    config = {"alicloud:accessKey": credentials.access_key_id, "alicloud:secretKey": credentials.access_key_secret}
    if credentials.security_token:
        config["alicloud:securityToken"] = credentials.security_token
    return config


def _how_to_reach_imm_faces() -> None:
    """Run as `.venv/bin/imm-faces` or by the quickstart (which puts .venv/bin on its own PATH only), say how to
    reach this command afterwards: a new shell does not find it."""
    import os
    import shutil

    here = Path(sys.executable).parent
    path = os.environ.get("IMM_FACES_CALLER_PATH", os.environ.get("PATH", ""))
    found = shutil.which("imm-faces", path=path)
    if found and Path(found).resolve().parent == here.resolve():
        return
    venv = here.parent
    shown = str(venv.absolute())
    _say(f"imm-faces is installed in {shown}, which is not on your PATH: `source {shown}/bin/activate` in each "
         f"new shell, then e.g. `imm-faces verify --help`; or run `{shown}/bin/imm-faces` directly")  # fmt: skip


@contextmanager
def _program_path(directory: Path | None) -> Iterator[None]:
    """The program's directory first on sys.path while it runs, as the language host puts it."""
    if directory is None:
        yield
        return
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))


class StagingError(Exception):
    """The photos could not be put where a binding points (the message says where and why)."""


class _Photos:
    """Puts the photos where each binding points, just before the binding is created, and takes away what it put
    there at the end; remembers how many images of each person every dataset received (to know how many face
    groups IMM can form).

    Nothing in the OSS root is overwritten: a file already there with the same bytes (another stack's rehearsal
    on a shared emulator) is left to its owner, one with other bytes stops the rehearsal. Staging runs on the
    SDK's thread: :meth:`close` waits for one under way and refuses the next (an interrupt, the teardown)."""

    def __init__(self, photos: str | None, oss_root: Path, scratch: Path, *, shared: bool) -> None:
        self.photos = photos
        self.oss_root = oss_root
        self.shared = shared
        """A running emulator's OSS root (--oss-root), not one of the rehearsal's own temporary folder."""
        self.scratch = scratch
        self.images: dict[tuple[str, str], dict[str, int]] = {}
        """(project, dataset) -> person -> images staged (empty for --photos: the people are unknown)."""
        self.staged: list[Path] = []
        """The files this rehearsal wrote into the OSS root, in order."""
        self._made: list[Path] = []  # the folders it created for them, parents first
        self._sample: tuple[dict[str, list[str]], list[str]] | None = None  # people's keys, keys with no face
        self._lock = threading.Lock()
        self._closed = False

    def stage(self, kind: str, inputs: dict[str, Any]) -> None:
        if kind != "Binding" or not isinstance(inputs.get("uri"), str):
            return
        from imm_faces.runtime.rules import split_oss_uri

        bucket, prefix = split_oss_uri(inputs["uri"])
        target = self.oss_root / bucket / prefix
        counts = self.images.setdefault((str(inputs.get("project_name")), str(inputs.get("dataset_name"))), {})
        with self._lock:
            if self._closed:
                raise StagingError("interrupted: no more photos are staged")
            if self.photos:
                _say(f"photos: {self.photos} -> {inputs['uri']}")
                self._place(Path(self.photos), target)
                return
            _say(f"sample photos -> {inputs['uri']} (face_recognition 1.3.0, from the cache)")
            people, no_face = self._sample_bucket()
            self._place(self.scratch, target)
        for person, keys in people.items():
            counts[person] = counts.get(person, 0) + len(keys)
        who = ", ".join(f"{len(k)} of {p}" for p, k in people.items())
        _say(f"{inputs['uri']}: {len(no_face) + sum(map(len, people.values()))} photos: {who}, {len(no_face)} with "
             "no face")  # fmt: skip

    def _sample_bucket(self) -> tuple[dict[str, list[str]], list[str]]:
        """The sample bucket (with its derived photos), laid out once in the scratch folder."""
        from imm_faces.emulator.sample_photos import SamplePhotosError, write_sample_bucket

        if self._sample is None:
            try:
                bucket = write_sample_bucket(self.scratch)
            except SamplePhotosError as exc:  # fetched before the rehearsal started: only if the cache went
                raise StagingError(f"the sample photos: {exc}") from None
            self._sample = bucket.people, bucket.no_face
        return self._sample

    def _place(self, source: Path, target: Path) -> None:
        import filecmp
        import shutil

        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            dest = target / path.relative_to(source)
            if dest.is_file() and filecmp.cmp(path, dest, shallow=False):
                continue  # the same photo, put there by someone else (another stack's rehearsal): theirs
            if dest.exists() or dest.is_symlink():
                raise StagingError(
                    f"staging the photos: {dest} already exists with other content; rehearse never overwrites what "
                    f"is in --oss-root: point the binding at another location"
                )
            self._make_folders(dest.parent)
            shutil.copyfile(path, dest)
            self.staged.append(dest)

    def _make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.exists() and folder != self.oss_root:
            missing.append(folder)
            folder = folder.parent
        for made in reversed(missing):
            made.mkdir()
            self._made.append(made)

    def close(self) -> None:
        """Wait for a staging under way; refuse any later one."""
        with self._lock:
            self._closed = True

    def remove(self) -> list[str]:
        """Delete what was staged (and the folders made for it); return what could not be deleted."""
        self.close()
        failed = []
        for path in reversed(self.staged):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                failed.append(path)
        for folder in reversed(self._made):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if self.staged and not failed and self.shared:
            _say(f"removed the {len(self.staged)} photos it staged under {self.oss_root}")
        self.staged = failed
        return [f"{len(failed)} staged photos under {self.oss_root}"] if failed else []

    def expected_groups(self, project: str, dataset: str) -> int | None:
        """How many face groups IMM forms from what was staged in that dataset (None: not known)."""
        counts = self.images.get((project, dataset))
        if self.photos or counts is None:
            return None
        from imm_faces.runtime.rules import FACE_GROUP_MIN_GOOD_FACES  # the sample faces are all good ones

        return sum(1 for n in counts.values() if n >= FACE_GROUP_MIN_GOOD_FACES)


def stacks_in(outputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The FaceClustering outputs in a stack's outputs: the whole (this package's program) or each top-level
    value that holds ``project_name`` (a consumer's ``pulumi.export("faces", faces.outputs)``)."""
    if "project_name" in outputs:
        return {"": dict(outputs)}
    return {k: dict(v) for k, v in outputs.items() if isinstance(v, Mapping) and "project_name" in v}


def _verify(
    outputs: dict[str, Any], out_path: Path, photos: _Photos, *, json_mode: bool, html: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Write the outputs; run `imm-faces verify` on each FaceClustering in them. (exit code, reports)."""
    import contextlib
    import io
    import json

    from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK
    from imm_faces.runtime.cli.main import main as imm_faces

    text = json.dumps(outputs, indent=2, sort_keys=True)
    _say(f"stack outputs (`pulumi stack output --json`):\n{text}")
    out_path.write_text(text + "\n")
    found = stacks_in(outputs)
    if not found:
        _say("the outputs hold no FaceClustering outputs (no `project_name`): nothing to verify")
        return EXIT_FAILED, {}
    code, reports = EXIT_OK, {}
    for index, (key, one) in enumerate(found.items()):
        path = out_path if not key else out_path.with_name(f"{out_path.stem}.{key}.json")
        if key:
            path.write_text(json.dumps(one, indent=2, sort_keys=True) + "\n")
        verify_args = ["verify", "--outputs", str(path)]
        expected = photos.expected_groups(str(one["project_name"]), str(one["dataset_name"]))
        if expected:
            verify_args += ["--min-clusters", str(expected)]
        if html:
            verify_args += ["--html", _html_path(html, key, first=index == 0)]
        _say("imm-faces " + " ".join(verify_args) + (f"   # {key}" if key else ""))
        if json_mode:
            captured = io.StringIO()
            with contextlib.redirect_stdout(captured):
                result = imm_faces([*verify_args, "--json"])
            reports[key or "outputs"] = json.loads(captured.getvalue() or "null")
        else:
            result = imm_faces(verify_args)
        code = max(code, result)
    return code, reports


def _html_path(html: str, key: str, *, first: bool) -> str:
    """Where verify writes the page of one FaceClustering: FILE for the first, FILE-stem.<key>.html after it."""
    return html if first else str(Path(html).with_suffix(f".{key}.html"))


def _wait_for_interrupt() -> None:
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _teardown(
    mocks: RehearsalMocks, host: DynamicProviderHost, endpoint: str, credentials: Credentials
) -> tuple[list[str], list[str]]:
    """Delete what the rehearsal created, as `pulumi destroy` would (an adopted object is kept, unless
    ``deleteAdopted``). Returns (what it created that is still there afterwards, what it kept as adopted)."""
    from imm_faces.components.rehearsal.host import ProviderCallError

    created = list(mocks.created)
    for resource in reversed([r for r in mocks.created if r.dynamic]):  # dependents first, as destroy does
        try:
            host.delete(resource.urn, resource.id, resource.outputs)
        except ProviderCallError as exc:
            _say(f"deleting {resource.type} {resource.name} failed: {exc}")
            continue
        what = "kept    " if _kept(resource) else "deleted "
        why = " (adopted: it existed before this stack; deleteAdopted deletes it)" if _kept(resource) else ""
        _say(f"{what}{resource.type} {resource.name}{why}")
    mocks.created = [c for c in mocks.created if not c.dynamic]
    return _left_behind(created, endpoint, credentials)


def _left_behind(created: list[Created], endpoint: str, credentials: Credentials) -> tuple[list[str], list[str]]:
    """After the teardown: (what the rehearsal created that is still in the emulator, what it kept as adopted)."""
    from imm_faces.runtime.client import ImmClient
    from imm_faces.runtime.errors import ImmFacesError
    from imm_faces.runtime.operations import datasets, projects

    objects = [r for r in created if r.dynamic and r.type.endswith((":Project", ":Dataset"))]
    made = {r.id for r in objects if not _adopted(r)}
    kept = [f"{r.type.rsplit(':', 1)[-1].lower()} {r.id}" for r in objects if _kept(r)]
    left: list[str] = []
    try:
        with ImmClient(endpoint=endpoint, credentials=credentials) as imm:
            for project in imm.paginate(projects.ListProjects):
                name = project.project_name or ""
                if name in made:
                    left.append(name)
                left += [f"{name}/{d.dataset_name}" for d in imm.paginate(datasets.ListDatasets, project_name=name)
                         if f"{name}/{d.dataset_name}" in made]  # fmt: skip
    except ImmFacesError as exc:
        _say(f"could not list what is left in the emulator: {exc}")
        return [f"unknown (listing failed: {exc})"], kept
    _say("nothing the rehearsal made is left in the emulator" if not left else f"still in the emulator: {left}")
    return left, kept
