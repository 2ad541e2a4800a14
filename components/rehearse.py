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
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imm_faces.runtime.credentials import Credentials

from imm_faces.components.rehearsal import on_mocks
from imm_faces.components.rehearsal.session import (
    INTERRUPTED,
    KEYS_ENV,
    Program,
    UsageError,
    say,
)

HELP = "rehearse `pulumi up` + `imm-faces verify` offline, against the emulator with real photos"


PROJECT, STACK = "imm-faces", "rehearsal"


BUCKET, PREFIX = "rehearsal-photos", "people/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _program_arguments(parser)
    _emulator_arguments(parser)
    _report_arguments(parser)
    parser.epilog = (
        "Exit codes: 0 passed; 1 a step or a verify report failed; 2 usage (a bad option, the emulator's "
        "keys refused, the sample photos not fetched); 130 interrupted (Ctrl-C or SIGTERM: what was "
        "created is deleted first)."
    )


def _program_arguments(parser: argparse.ArgumentParser) -> None:
    """What runs: the program, its stack and config, and the engine."""
    parser.add_argument(
        "--program",
        metavar="DIR",
        help="the Pulumi project to rehearse (a directory with __main__.py and Pulumi.yaml); "
        "default: this package's stack program",
    )
    parser.add_argument(
        "--stack",
        default=STACK,
        metavar="NAME",
        help=f"the stack name the program sees (default {STACK}); default names hold it",
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="stack config for the program, e.g. region=cn-hangzhou (repeatable; a key without "
        "namespace is the program's)",
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "real", "mocks"),
        default="auto",
        help="what runs the program: the real Pulumi engine (scripts/pulumi-engine.sh builds it, or "
        "a pulumi v3.139+ on PATH), the Pulumi SDK's mocks, or auto: the real one when found "
        "(default)",
    )


def _emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Which emulator, its keys and the photos put in it."""
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="use a running emulator (`imm-faces emulator`) instead of starting one; needs --oss-root",
    )
    parser.add_argument(
        "--oss-root", metavar="DIR", help="that emulator's --oss-root: the photos go there, and are removed afterwards"
    )
    parser.add_argument(
        "--access-key-file",
        metavar="PATH",
        help=f"the emulator's keys as given to `imm-faces emulator` (one ID:SECRET[:STS_TOKEN] a "
        f"line; also ${KEYS_ENV}); the first is used (default: the documented key)",
    )
    parser.add_argument(
        "--access-key",
        action="append",
        metavar="ID:SECRET[:STS_TOKEN]",
        help="the same on the command line (visible in ps: prefer --access-key-file)",
    )
    parser.add_argument("--photos", metavar="DIR", help="use the photos in DIR instead of the sample photos")
    parser.add_argument(
        "--keep", action="store_true", help="keep what was created (and a started emulator running, until Ctrl-C)"
    )


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    """What the rehearsal writes."""
    parser.add_argument("--outputs", metavar="PATH", help="also write the stack outputs (JSON) to PATH")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON summary on stdout (steps and the verify report go to stderr)"
    )
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="also write verify's HTML report of the clusters to FILE (the first FaceClustering of "
        "the outputs; FILE-stem.<key>.html for each further one)",
    )


def load_program(args: argparse.Namespace) -> Program:
    """The program named by ``--program`` (or this package's), with its stack config. (No endpoint: every IMM
    resource is created against the emulator whatever the program says.)"""
    import json

    if args.program is None:
        config = {
            "region": "cn-hangzhou",
            "description": "imm-faces offline rehearsal",
            "ossLocations": json.dumps([f"oss://{BUCKET}/{PREFIX}"]),
            "clusteringTimeout": "600",
            "scanTimeout": "600",
        }
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

    say.stream = sys.stderr if args.json else sys.stdout
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
        with sigterm_as_interrupt():
            return _on_engine(args, program, credentials)
    except UsageError as exc:
        print(f"imm-faces rehearse: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _on_engine(args: argparse.Namespace, program: Program, credentials: Credentials) -> int:
    """On the real engine when ``--engine`` allows it and the program can run there (else on the mocks)."""
    from imm_faces.components.rehearsal import real_engine

    engine = real_engine.choose(args.engine, say)
    if engine is not None:
        try:
            return real_engine.rehearse(args, program, credentials, engine)
        except real_engine.EngineUnfitError as exc:
            if args.engine == "real":
                raise UsageError(f"--engine real: {exc}") from None
            say(f"engine: the Pulumi SDK's mocks after all: {exc}")
    return on_mocks.rehearse(args, program, credentials)


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
        say(f"fetching the sample photos once (face_recognition 1.3.0 sdist from PyPI, 3 MB) into {cache_dir()}")
    try:
        return fetch_photos()
    except SamplePhotosError as exc:
        reason = str(exc).strip().splitlines()[-1]  # pip's last line says why (e.g. no matching distribution)
        raise UsageError(
            f"the sample photos could not be fetched from PyPI (they are downloaded on the first run, then cached "
            f"in {cache_dir()}): {reason}. Offline, rehearse with photos of your own: --photos DIR (three or "
            f"more photos of one person form a face group)."
        ) from None


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
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
