"""``imm-faces``: one entry point, sub-commands looked up by name.

Exit codes (every sub-command): 0 ok, 1 a check failed, 2 usage, configuration or credential error,
130 interrupted. Sub-command modules only declare arguments at import time, so that ``--help`` stays fast; one that
names a ``RUNNER`` module has its ``run`` there, imported once the arguments are read (the others import what
they need inside ``run``). ``runtime`` does not depend on the emulator or the components: their
sub-commands are found by module path and are available when those packages are installed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, NoReturn, Protocol, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

from imm_faces.runtime import __version__


class _HttpxCliStandIn:
    """``import httpx`` imports httpx's own command-line client (``httpx._main``: click, pygments and rich)
    whenever they are installed: tens of milliseconds of start-up for a module imm-faces never uses. In this
    process that one import gets a stand-in, whose ``main`` loads the real module if anything ever calls it (the
    ``httpx`` command is a process of its own and never imports this). A finder, so nothing is imported or
    registered before httpx itself is."""

    NAME = "httpx._main"

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        return ModuleSpec(name, cast("Loader", self)) if name == self.NAME else None

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        module.main = _real_httpx_main  # type: ignore[attr-defined]  # a function: httpx sets its __module__


def _real_httpx_main() -> None:
    """httpx's command-line client, loaded for real."""
    for finder in [f for f in sys.meta_path if isinstance(f, _HttpxCliStandIn)]:
        sys.meta_path.remove(finder)
    sys.modules.pop(_HttpxCliStandIn.NAME, None)
    importlib.import_module(_HttpxCliStandIn.NAME).main()


if "httpx" not in sys.modules:
    sys.meta_path.insert(0, _HttpxCliStandIn())

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = (
    f"Exit codes: {EXIT_OK} ok, {EXIT_FAILED} a check failed, {EXIT_USAGE} usage/configuration/credential error, "
    f"{EXIT_INTERRUPTED} interrupted (Ctrl-C; SIGTERM too for rehearse)."
)

# name -> module providing `HELP`, `add_arguments(parser)`, and `run(args) -> int` (or `RUNNER`, the module that does).
COMMANDS = {
    "verify": "imm_faces.runtime.cli.verify",
    "emulator": "imm_faces.emulator.cli",
    "rehearse": "imm_faces.components.rehearse",
}


class _Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...


class _Runner(Protocol):
    def run(self, args: argparse.Namespace) -> int: ...


def _runner(module: _Command) -> _Runner:
    """The module that runs a command: the one its ``RUNNER`` names, else its own."""
    name = getattr(module, "RUNNER", None)
    if not name:
        return cast("_Runner", module)
    if name in sys.modules:
        return cast("_Runner", sys.modules[name])
    return cast("_Runner", _import_frozen(name))


def _import_frozen(name: str) -> types.ModuleType:
    """Import a runner module (most of a command's start-up) with the cyclic garbage collector paused, then move
    what the imports made to the collector's permanent generation (:func:`gc.freeze`): classes, functions and
    module dictionaries live as long as the process, and tracing them again at every collection of a short run
    cost ``imm-faces verify`` ~10% of its CPU (0.57 -> 0.48 s of CPU, 1,000 clusters, medians of 12 runs; see
    docs/benchmarks.md). Done once per process (the first import); the collector runs as before afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        module = importlib.import_module(name)
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
    return module


SHORT_RUN_YOUNG_THRESHOLD = 20_000
"""Allocations between two collections of the youngest generation while a short command runs (CPython's
default is 700)."""


@contextmanager
def rarer_collections() -> Iterator[None]:
    """Run a short command with the cyclic collector's youngest generation collected ~30x less often.

    A run such as ``imm-faces verify`` keeps what it reads (every cluster's views) until it judges them at the end,
    so nearly everything it allocates survives, and the collector traced those objects again at every promotion:
    1% of verify's instructions on 1,000 clusters (``valgrind --tool=callgrind``, 2,058 -> 2,037 M; 200,000 saves
    no more). Garbage cycles are still collected, only later: at most this many container objects wait. The
    previous thresholds are restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(SHORT_RUN_YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _load(name: str) -> _Command | None:
    try:
        return importlib.import_module(COMMANDS[name])
    except ModuleNotFoundError:
        return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imm-faces",
        description="Face clustering on Alibaba Cloud IMM: smoke checks, an offline rehearsal and a local emulator.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"imm-faces {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only and name != only:
            continue  # building only the chosen command keeps start-up small
        module = _load(name)
        if module is None:
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module, _parser=cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (``argv`` without the program name; the process's arguments by default); its exit code."""
    return _dispatch(argv)[0]


def console() -> NoReturn:
    """``imm-faces`` as installed (``[project.scripts]``, and ``python -m``): :func:`main`, then the process ends.

    After a command whose runner module sets ``ENDS_AT_ONCE = True`` (``verify``: everything it writes is written
    and closed, it holds no thread, server or child process), the process ends as soon as stdout and stderr are
    flushed, without the interpreter's teardown (:func:`os._exit`: no module or object is freed one by one, no
    ``atexit`` callback runs): ~14 ms of the 0.45 s ``imm-faces verify`` takes on 1,000 clusters (medians of 30
    alternating runs). The other commands stop servers and children and remove temporary files on the way out:
    they end as usual, and so does every command under a tracer or profiler (coverage, cProfile), which saves what
    it gathered on the way out. In-process callers of :func:`main` (tests, ``rehearse`` running verify) are not
    affected."""
    code, runner = _dispatch(None)
    if getattr(runner, "ENDS_AT_ONCE", False) and sys.gettrace() is None and sys.getprofile() is None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can be said
                stream.flush()
        os._exit(code)
    sys.exit(code)


def _dispatch(argv: Sequence[str] | None) -> tuple[int, _Runner | None]:
    """Parse, import the command's runner and run it: the exit code, and the runner (None when none ran)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args, unknown = parser.parse_known_args(args_list)
    if unknown:  # reported by the sub-command, with its own usage (argparse would show the top level's)
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    module = getattr(args, "_module", None)
    if module is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE, None
    runner: _Runner | None = None
    try:
        runner = _runner(module)
        return int(runner.run(args)), runner
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED, runner


if __name__ == "__main__":
    console()
