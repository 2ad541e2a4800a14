"""``imm-faces verify``: the post-deploy smoke check.

Reads a stack's outputs (from the Pulumi CLI, a file, or stdin), then checks that the project and dataset
exist, that the clustering task succeeded, that every figure cluster is well formed (list and bulk views, the
seed API on a sample and on suspects) and that the clusters agree with the files that name them.

This module only declares the arguments (``imm-faces verify --help`` imports nothing heavy); the run is
:data:`RUNNER`'s, which ``imm-faces`` imports once the arguments are read.
"""

from __future__ import annotations

import argparse

from imm_faces.runtime.report.cli import add_arguments as add_report_arguments  # argparse only
from imm_faces.runtime.verify import DEFAULT_CONCURRENCY, DEFAULT_SAMPLE  # a light package: no import behind it

HELP = "check a deployed stack: project, dataset, clustering task, every figure cluster and its files"
EPILOG = (
    "Exit codes: 0 every check passed; 1 a check failed (or the deadline passed); 2 usage, configuration or "
    "credential error; 130 interrupted (Ctrl-C). --json always carries it as exit_code. With GITHUB_ACTIONS=true, "
    "failures become annotations and a step summary is written."
)
RUNNER = "imm_faces.runtime.cli.verify_run"
"""The module whose ``run(args)`` runs the check."""
DEFAULT_DEADLINE = 600.0


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}; got {value}")
    return value


def positive(text: str) -> int:
    return _whole(text, 1)


def count(text: str) -> int:
    return _whole(text, 0)


def sample_size(text: str) -> int | None:
    """A positive whole number, or ``all`` (None: every cluster)."""
    return None if text.strip().lower() == "all" else _whole(text, 1)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds greater than 0; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds greater than 0; got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    source = parser.add_argument_group("where the stack outputs come from (default: the current Pulumi stack)")
    source.add_argument("--stack", help="Pulumi stack to read (`pulumi stack output --stack NAME`)")
    source.add_argument("--cwd", help="Pulumi project directory (`pulumi --cwd DIR`)")
    source.add_argument(
        "--outputs",
        metavar="FILE",
        help="read outputs from FILE ('-' for stdin), in `pulumi stack output --json` format",
    )
    source.add_argument(
        "--output-key",
        metavar="PATH",
        help="the outputs are nested under this key (dotted path, e.g. faces or prod.faces); "
        "default: the top level, or its only nested deployment",
    )
    conn = parser.add_argument_group("connection")
    conn.add_argument("--endpoint", help="IMM endpoint URL, overriding the stack's `endpoint` output")
    conn.add_argument("--profile", help="aliyun CLI profile in ~/.aliyun/config.json (default: ALIBABA_CLOUD_PROFILE)")
    conn.add_argument("--signature-version", choices=("v3", "v2"), default="v3", help="request signature (default v3)")
    conn.add_argument("--timeout", type=seconds, default=30.0, metavar="SECONDS", help="per request (default 30)")
    conn.add_argument(
        "--deadline",
        type=seconds,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"total time for the whole check, retries and server back-off included (default {DEFAULT_DEADLINE:.0f})",
    )
    what = parser.add_argument_group("what to check")
    what.add_argument(
        "--sample",
        type=sample_size,
        default=DEFAULT_SAMPLE,
        metavar="N|all",
        help=f"clusters fetched one by one and checked against their files (default {DEFAULT_SAMPLE}); every "
        "cluster is always checked in the list and bulk views",
    )
    what.add_argument(
        "--cluster-id", action="append", dest="cluster_ids", metavar="ID", help="check this cluster (repeatable)"
    )
    what.add_argument(
        "--min-clusters", type=count, default=0, metavar="N", help="fail when fewer than N clusters exist"
    )
    what.add_argument("--allow-empty", action="store_true", help="pass when the dataset has no figure cluster")
    what.add_argument(
        "--no-consistency", dest="consistency", action="store_false", help="skip the checks against files (SimpleQuery)"
    )
    what.add_argument(
        "--concurrency",
        type=positive,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    out.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report (one test case per check id)")
    out.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    out.add_argument("--debug", action="store_true", help="log every library at DEBUG on stderr (secrets redacted)")
    add_report_arguments(parser)  # --html FILE and its options (runtime/report/cli.py)
