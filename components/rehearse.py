"""``imm-faces rehearse``: a whole deployment, offline, in about half a minute.

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
removed. Not exercised: the Pulumi engine itself (state, diffs, previews, parallelism) and the alicloud
plugin (the RAM resources). Exit codes: 0 passed, 1 a step or a verify report failed, 2 bad usage,
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
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
    parser.add_argument("--oss-root", metavar="DIR", help="that emulator's --oss-root, where the photos go")
    parser.add_argument("--outputs", metavar="PATH", help="also write the stack outputs (JSON) to PATH")
    parser.add_argument("--keep", action="store_true",
                        help="keep what was created (and a started emulator running, until Ctrl-C)")  # fmt: skip
    parser.add_argument("--photos", metavar="DIR", help="use the photos in DIR instead of the sample photos")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary on stdout (steps and the verify report go to stderr)")  # fmt: skip
    parser.add_argument("--html", metavar="FILE",
                        help="also write verify's HTML report of the clusters to FILE (FILE.<key>.html for each "
                             "further FaceClustering)")  # fmt: skip


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
    if bool(args.endpoint) != bool(args.oss_root):
        print("imm-faces rehearse: error: --endpoint and --oss-root go together (the photos are put in that "
              "emulator's --oss-root)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    if args.photos and not Path(args.photos).is_dir():
        print(f"imm-faces rehearse: error: --photos {args.photos}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    if args.oss_root and not Path(args.oss_root).is_dir():
        print(f"imm-faces rehearse: error: --oss-root {args.oss_root}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    with _sigterm_as_interrupt():
        try:
            return _rehearse(args, load_program(args))
        except UsageError as exc:
            print(f"imm-faces rehearse: error: {exc}", file=sys.stderr)
            return EXIT_USAGE


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


def _rehearse(args: argparse.Namespace, program: Program) -> int:  # noqa: PLR0915 - the steps, in order
    import contextlib
    import tempfile
    import time

    from imm_faces.components.rehearsal.engine import RehearsalError, RehearsalMocks, run_program
    from imm_faces.components.rehearsal.host import DynamicProviderHost, ProviderCallError
    from imm_faces.emulator.server import DEFAULT_ACCESS_KEY
    from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK

    started = time.monotonic()
    print("imm-faces rehearse: an OFFLINE rehearsal. The stack program runs under the Pulumi SDK's mocks against a\n"
          "local IMM emulator. Not exercised: the Pulumi engine (state, diff, preview) and the alicloud plugin\n"
          "(the RAM role and policy are recorded, not created).\n", file=_say.stream, flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="imm-faces-rehearsal-") as tmp, contextlib.ExitStack() as stack:
        if args.endpoint:
            endpoint, oss_root, own = args.endpoint.rstrip("/"), Path(args.oss_root), False
            _say(f"IMM emulator at {endpoint} (already running; photos go to {oss_root})")
        else:
            from imm_faces.emulator.analysis import default_analyzer
            from imm_faces.emulator.server import Emulator

            analyzer = default_analyzer()
            if not analyzer.faces_available:
                _say("face analysis is unavailable (install imm-faces[vision]); clustering will report it")
            oss_root = Path(tmp) / "oss"
            oss_root.mkdir()
            emu = stack.enter_context(Emulator(db=Path(tmp) / "imm.db", oss_root=oss_root, analyzer=analyzer))
            endpoint, own = emu.endpoint, True
            _say(f"IMM emulator at {endpoint}")
        photos = _Photos(args.photos, oss_root)
        env = stack.enter_context(_emulator_environment(DEFAULT_ACCESS_KEY))
        host = stack.enter_context(DynamicProviderHost(config=_provider_config(DEFAULT_ACCESS_KEY), env=env,
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
            except (RehearsalError, ProviderCallError) as exc:
                print(f"imm-faces rehearse: deployment failed: {exc}", file=sys.stderr)
            except Exception as exc:  # the program's own error (bad config, a bug), as `pulumi up` would show it
                if INTERRUPTED.is_set():  # the loop stopped by SIGTERM/Ctrl-C (see _sigterm_as_interrupt)
                    raise KeyboardInterrupt from None
                print(f"imm-faces rehearse: the stack program failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            else:
                out_path = Path(args.outputs) if args.outputs else Path(tmp) / "outputs.json"
                code, reports = _verify(outputs, out_path, photos, json_mode=args.json, html=args.html)
        except KeyboardInterrupt:  # BaseException: not caught above
            _say("interrupted: deleting what the rehearsal created")
            _teardown(mocks, host, endpoint, DEFAULT_ACCESS_KEY)
            raise
        created = list(mocks.created)
        if args.keep:
            keys = " ".join(f"{k}={v}" for k, v in DEFAULT_ACCESS_KEY.environment().items())
            _say(f"--keep: everything stays in the emulator at {endpoint} (its keys, documented defaults: {keys})")
            if own:
                _say("Ctrl-C to stop it")
                _wait_for_interrupt()
            left = []
        else:
            left = _teardown(mocks, host, endpoint, DEFAULT_ACCESS_KEY)
    verdict = "PASSED" if code == EXIT_OK and not left else "FAILED"
    seconds = round(time.monotonic() - started, 1)
    kept = "everything (--keep)" if args.keep else ", ".join(left) or "nothing"
    checked = "verify not run" if code is None else f"verify exit {code}"
    _say(f"rehearsal {verdict} in {seconds} s ({checked}; left behind: {kept})")
    if args.json:
        import json

        resources = [{"type": r.type, "name": r.name, "id": r.id, "created": r.dynamic} for r in created]
        summary = {
            "passed": verdict == "PASSED", "seconds": seconds, "project": program.project, "stack": args.stack,
            "outputs": outputs, "resources": resources, "verify_exit": code, "verify": reports,
            "kept": bool(args.keep), "left_behind": left, "emulator_empty": not left and not args.keep,
        }  # fmt: skip
        print(json.dumps(summary, indent=2))
    return EXIT_OK if verdict == "PASSED" else EXIT_FAILED


def _announce(resource: Created) -> None:
    verb = "created " if resource.dynamic else "recorded"
    _say(f"{verb} {resource.type} {resource.name}" + (f" -> {resource.id}" if resource.dynamic else ""))


def _provider_config(credentials: Credentials) -> dict[str, str]:
    """The provider host's Configure: the emulator's keys as stack config, which outrank the environment."""
    return {"alicloud:accessKey": credentials.access_key_id, "alicloud:secretKey": credentials.access_key_secret}


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


class _Photos:
    """Puts the photos where each binding points, just before the binding is created; remembers how many
    images of each person every dataset received (to know how many face groups IMM can form)."""

    def __init__(self, photos: str | None, oss_root: Path) -> None:
        self.photos = photos
        self.oss_root = oss_root
        self.images: dict[tuple[str, str], dict[str, int]] = {}
        """(project, dataset) -> person -> images staged (empty for --photos: the people are unknown)."""

    def stage(self, kind: str, inputs: dict[str, Any]) -> None:
        if kind != "Binding" or not isinstance(inputs.get("uri"), str):
            return
        import shutil

        from imm_faces.emulator.sample_photos import SamplePhotosError, write_sample_bucket
        from imm_faces.runtime.rules import split_oss_uri

        bucket, prefix = split_oss_uri(inputs["uri"])
        counts = self.images.setdefault((str(inputs.get("project_name")), str(inputs.get("dataset_name"))), {})
        if self.photos:
            shutil.copytree(self.photos, self.oss_root / bucket / prefix, dirs_exist_ok=True)
            _say(f"photos: {self.photos} -> {inputs['uri']}")
            return
        _say(f"sample photos -> {inputs['uri']} (face_recognition 1.3.0 sdist from PyPI; cached after the first run)")
        try:
            sample = write_sample_bucket(self.oss_root / bucket, prefix)
        except SamplePhotosError as exc:
            raise UsageError(str(exc)) from None
        for person, keys in sample.people.items():
            counts[person] = counts.get(person, 0) + len(keys)
        who = ", ".join(f"{len(k)} of {p}" for p, k in sample.people.items())
        _say(f"{inputs['uri']}: {len(sample.keys)} photos: {who}, {len(sample.no_face)} with no face")

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
    for key, one in found.items():
        path = out_path if not key else out_path.with_name(f"{out_path.stem}.{key}.json")
        if key:
            path.write_text(json.dumps(one, indent=2, sort_keys=True) + "\n")
        verify_args = ["verify", "--outputs", str(path)]
        expected = photos.expected_groups(str(one["project_name"]), str(one["dataset_name"]))
        if expected:
            verify_args += ["--min-clusters", str(expected)]
        if html:
            verify_args += ["--html", html if not key else str(Path(html).with_suffix(f".{key}.html"))]
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


def _wait_for_interrupt() -> None:
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _teardown(mocks: RehearsalMocks, host: DynamicProviderHost, endpoint: str, credentials: Credentials) -> list[str]:
    """Delete what the rehearsal created; return what of it is still there afterwards (empty: clean)."""
    from imm_faces.components.rehearsal.engine import destroy
    from imm_faces.runtime.client import ImmClient
    from imm_faces.runtime.operations import projects

    made = {r.id for r in mocks.created if r.dynamic and r.type.endswith((":Project", ":Dataset"))}
    destroy(mocks, host, lambda r: _say(f"deleted {r.type} {r.name}"))
    with ImmClient(endpoint=endpoint, credentials=credentials) as imm:
        from imm_faces.runtime.operations import datasets

        left: list[str] = []
        for project in imm.paginate(projects.ListProjects):
            name = project.project_name or ""
            if name in made:
                left.append(name)
            left += [f"{name}/{d.dataset_name}" for d in imm.paginate(datasets.ListDatasets, project_name=name)
                     if f"{name}/{d.dataset_name}" in made]  # fmt: skip
    _say("nothing the rehearsal made is left in the emulator" if not left else f"still in the emulator: {left}")
    return left
