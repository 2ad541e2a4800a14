"""``imm-faces rehearse`` as it runs (:mod:`imm_faces.components.rehearse` is the command and its options): the
program and its config, the emulator's key, the sample photos, then the real engine or the mocks, with SIGTERM
handled as Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imm_faces.components.rehearsal import on_mocks, real_engine
from imm_faces.components.rehearsal.session import INTERRUPTED, Program, UsageError, say
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY, KeySourceError, load_keys
from imm_faces.emulator.sample_photos import SamplePhotosError, cache_dir, fetch_photos
from imm_faces.runtime.auth.credentials import Credentials
from imm_faces.runtime.cli.extras import missing_extras
from imm_faces.runtime.cli.main import EXIT_USAGE

PROJECT = "imm-faces"
BUCKET, PREFIX = "rehearsal-photos", "people/"


def load_program(args: argparse.Namespace) -> Program:
    """The program named by ``--program`` (or this package's), with its stack config. (No endpoint: every IMM
    resource is created against the emulator whatever the program says.)"""
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
    match = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", project_file.read_text(), re.MULTILINE)
    if not match:
        raise UsageError(f"{project_file}: no `name:`")
    return match.group(1)


def run(args: argparse.Namespace) -> int:
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
    if args.photos and not any(p.is_file() for p in Path(args.photos).rglob("*")):
        raise UsageError(
            f"--photos {args.photos}: no files in it; give a folder of photos (three or more good photos of one "
            "person form a face group)"
        )
    if args.oss_root and not Path(args.oss_root).is_dir():
        raise UsageError(f"--oss-root {args.oss_root}: not a directory")


def _emulator_key(args: argparse.Namespace) -> Credentials:
    """The key the rehearsal signs with: the first of ``--access-key``, ``--access-key-file`` and
    ``$IMM_FACES_EMULATOR_ACCESS_KEYS`` (read as ``imm-faces emulator`` reads them), else the documented default.
    A started emulator accepts exactly that key."""
    try:
        keys = load_keys(args, os.environ)
    except KeySourceError as exc:
        raise UsageError(str(exc)) from None
    return keys[0] if keys else DEFAULT_ACCESS_KEY


def _sample_photos() -> Path:
    """The cached sample photos, fetched first when this is the first run: before anything starts, so that a
    machine without PyPI (a cold cache offline) is told what failed and what works offline."""
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
