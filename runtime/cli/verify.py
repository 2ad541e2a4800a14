"""``imm-faces verify``: the post-deploy smoke check.

Reads a stack's outputs (from the Pulumi CLI, a file, or stdin), then checks that the project and dataset
exist, that the clustering task succeeded, that every figure cluster is well formed (list and bulk views, the
seed API on a sample and on suspects) and that the clusters agree with the files that name them.

Only argument declarations run at import time: ``imm-faces verify --help`` imports nothing heavy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from imm_faces.runtime.verify import DEFAULT_CONCURRENCY, DEFAULT_SAMPLE  # a light package: no import behind it

HELP = "check a deployed stack: project, dataset, clustering task, every figure cluster and its files"
EPILOG = (
    "Exit codes: 0 every check passed; 1 a check failed (or the deadline passed); 2 usage, configuration or "
    "credential error; 130 interrupted (Ctrl-C). --json always carries it as exit_code. With GITHUB_ACTIONS=true, "
    "failures become annotations and a step summary is written."
)
DEFAULT_DEADLINE = 600.0
PROGRESS_INTERVAL = 5.0


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
        "--concurrency", type=positive, default=DEFAULT_CONCURRENCY, metavar="N",
        help=f"requests in flight (default {DEFAULT_CONCURRENCY})",
    )  # fmt: skip
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    out.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report (one test case per check id)")
    out.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    out.add_argument("--debug", action="store_true", help="log every library at DEBUG on stderr (secrets redacted)")
    from imm_faces.runtime.report.cli import add_arguments as add_report_arguments  # argparse only

    add_report_arguments(parser)  # --html FILE and its options (runtime/report/cli.py)


class Progress:
    """On a terminal, one line rewritten in place; elsewhere (CI logs), a line every few seconds."""

    def __init__(self, stream: TextIO, interval: float = PROGRESS_INTERVAL) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval
        self.last = time.monotonic()
        self.shown = False

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        text = f"verify: {phase} {done}" + (f"/{total}" if total else "")
        if self.tty:
            self.stream.write(f"\r{text}\033[K")
            self.shown = True
        else:
            now = time.monotonic()
            if now - self.last < self.interval:
                return
            self.last = now
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


@contextmanager
def _logging(debug: bool) -> Iterator[None]:
    """Log to stderr through a redacting handler (every library's records pass it) while verify runs."""
    import logging

    from imm_faces.runtime.auth.redaction import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _credentials(args: argparse.Namespace, pulumi: Any) -> Any:
    """The one credential chain (:mod:`imm_faces.runtime.credentials`), in its documented order; when reading a
    stack, with the stack's ``alicloud:*`` settings first, as its providers get them under ``pulumi up``: verify
    then signs as the deployment did (same account, same assumed role)."""
    from imm_faces.runtime.credentials import CredentialSettings, resolve_provider

    settings = None
    if pulumi is not None:
        settings = CredentialSettings.from_config(pulumi.alicloud_config().get, f"{pulumi.label} config")
    return resolve_provider(profile=args.profile, settings=settings)


def _write_outputs(args: argparse.Namespace, report: Any, code: int, problem: str | None) -> None:
    """verify's report: text or ``--json`` (with the run's ``exit_code``, and the ``error`` that set it when the
    checks ran but something after them failed, as :func:`_write_error` has it), JUnit, GitHub's annotations."""
    import json

    from imm_faces.runtime.verify.report import (
        error_json,
        github_annotations,
        github_summary,
        render_junit,
        render_text,
    )

    if args.json:
        envelope = {"schema_version": None, "passed": None, "exit_code": code}  # these first, as in error_json
        error = {"error": error_json("error", problem, code)["error"]} if problem else {}
        print(json.dumps(envelope | report.to_json() | error, indent=2))
    else:
        print(render_text(report))
    if args.junit_xml:
        with open(args.junit_xml, "w", encoding="utf-8") as f:  # noqa: PTH123 - a user path, written once
            f.write(render_junit(report))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(report):
            print(line, file=sys.stderr)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as f:  # noqa: PTH123
                f.write(github_summary(report))


def _write_error(args: argparse.Namespace, kind: str, message: str, code: int) -> None:
    import contextlib
    import json

    from imm_faces.runtime.verify.report import error_json, render_junit_error

    if getattr(args, "json", False):
        print(json.dumps(error_json(kind, message, code), indent=2))
    if getattr(args, "junit_xml", None):
        with contextlib.suppress(OSError), open(args.junit_xml, "w", encoding="utf-8") as f:  # noqa: PTH123
            f.write(render_junit_error(kind, message, code))


async def _within_deadline(page: Any, left: float | None, report: Any, html: str) -> str | None:
    """Make the page in the time left of the deadline: it reads the service and OSS too. When the time runs out,
    the page is not written and the report fails ``verify.deadline`` saying so (exit 1, as for any deadline)."""
    import asyncio

    from imm_faces.runtime.verify.checks import Failure

    try:
        async with asyncio.timeout(None if left is None else max(0.0, left)):
            problem: str | None = await page
            return problem
    except TimeoutError:
        report.fail(Failure("verify.deadline", "verify --html", f"the deadline passed before {html} was written"))
        return None


def run(args: argparse.Namespace) -> int:  # noqa: PLR0915 - the run and every way it can end, in one place
    import asyncio

    from imm_faces.runtime.auth.redaction import REDACTOR
    from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE
    from imm_faces.runtime.errors import ConfigError, ImmError, ImmFacesError, TransportError

    progress = None if args.quiet else Progress(sys.stderr, PROGRESS_INTERVAL)
    written = False  # verify's own report went out (then an error after it must not write a second one)

    def error(kind: str, text: str, code: int, *, reported: bool = False) -> int:
        """Say why the run ended; when verify's own report was not written, write the error where it would
        have gone (``--json`` on stdout, ``--junit-xml``), so CI shows the reason instead of nothing."""
        if progress:
            progress.close()
        message = REDACTOR(text)
        print(f"imm-faces verify: {kind}: {message}", file=sys.stderr)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::error title=imm-faces verify::{message.replace(chr(10), '%0A')}", file=sys.stderr)
        if not (reported or written):
            _write_error(args, kind, message, code)
        return code

    async def go() -> int:
        from imm_faces.runtime.client import AsyncImmClient
        from imm_faces.runtime.outputs import PulumiCli, read_outputs_file
        from imm_faces.runtime.verify.run import verify_deployment

        pulumi = None
        if args.outputs:
            outputs = read_outputs_file(args.outputs, args.output_key)
        else:
            pulumi = PulumiCli(args.stack, args.cwd)
            outputs = pulumi.outputs(args.output_key)
        creds = _credentials(args, pulumi)
        async with AsyncImmClient(
            region=outputs.region, endpoint=args.endpoint or outputs.endpoint, credentials=creds,
            signature_version=args.signature_version, timeout=args.timeout, deadline=args.deadline,
        ) as client:  # fmt: skip
            report = await verify_deployment(
                client,
                outputs,
                cluster_ids=args.cluster_ids,
                sample=args.sample,
                concurrency=args.concurrency,
                min_clusters=args.min_clusters,
                allow_empty=args.allow_empty,
                consistency=args.consistency,
                progress=progress,
            )
            html_problem = None
            if args.html:
                from imm_faces.runtime.report.cli import write_report

                page = write_report(args, client, report, creds, outputs.region, args.endpoint or outputs.endpoint,
                                    progress)  # fmt: skip
                html_problem = await _within_deadline(page, client.time_left(), report, args.html)
        nonlocal written
        if progress:
            progress.close()
        written = True
        # With an HTML problem the checks ran but the page could not be made: usage (exit 2), said after the report.
        code = EXIT_USAGE if html_problem else EXIT_OK if report.passed else EXIT_FAILED
        _write_outputs(args, report, code, html_problem)
        if html_problem:
            return error("error", html_problem, code, reported=True)
        return code

    try:
        with _logging(args.debug):
            return asyncio.run(go())
    except (ConfigError, TransportError) as exc:
        return error("error", str(exc), EXIT_USAGE)
    except ImmError as exc:  # an unexpected service error outside any single check
        return error("IMM error", str(exc), EXIT_FAILED)
    except ImmFacesError as exc:
        return error("error", str(exc), EXIT_FAILED)
    except OSError as exc:  # e.g. the --junit-xml file cannot be written
        return error("error", f"{exc.filename or ''}: {exc.strerror or exc}", EXIT_USAGE)
    except Exception as exc:  # a bug in verify: never a raw traceback (its locals could hold a secret)
        import traceback

        detail = f"{exc.__class__.__name__}: {exc}"
        if args.debug:
            detail += "\n" + "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
        return error("internal error (please report it)", detail, EXIT_USAGE)
