"""``imm-faces verify``'s run (its arguments are :mod:`.verify`'s): read the outputs, choose the credentials, check,
write the reports, and end with the exit code of the first way the run ended.

The ways it ends: the checks ran (0 passed, 1 a check failed, 2 the page could not be written); a usage,
configuration or credential error (2); a service error outside any single check (1); a bug in verify (2, never a
raw traceback: its locals could hold a secret). Each says why on stderr and, when verify's own report was not
written, writes the error where the report would have gone (``--json`` on stdout, ``--junit-xml``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from pydantic_core import to_json

from imm_faces.runtime.auth.credentials import CredentialSource
from imm_faces.runtime.auth.redaction import REDACTOR, RedactingFilter
from imm_faces.runtime.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, rarer_collections
from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.credentials import CredentialSettings, resolve_provider
from imm_faces.runtime.errors import ConfigError, ImmError, ImmFacesError, TransportError
from imm_faces.runtime.outputs import PulumiCli, StackOutputs, read_outputs_file
from imm_faces.runtime.verify.base import VerifyReport
from imm_faces.runtime.verify.checks import Failure
from imm_faces.runtime.verify.report import (
    error_json,
    github_annotations,
    github_summary,
    render_junit,
    render_junit_error,
    render_text,
)
from imm_faces.runtime.verify.run import verify_deployment

PROGRESS_INTERVAL = 5.0
ENDS_AT_ONCE = True
"""Once :func:`run` returns, every report is written and closed and nothing is left running: the installed command
ends the process without the interpreter's teardown (:func:`imm_faces.runtime.cli.main.console`)."""


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


def run(args: argparse.Namespace) -> int:
    """The whole run, and every way it can end, as an exit code."""
    progress = None if args.quiet else Progress(sys.stderr, PROGRESS_INTERVAL)
    ending = _Ending(args, progress)
    try:
        with _logging(args.debug), rarer_collections():
            return asyncio.run(_verify(args, progress, ending))
    except (ConfigError, TransportError) as exc:
        return ending.error("error", str(exc), EXIT_USAGE)
    except ImmError as exc:  # an unexpected service error outside any single check
        return ending.error("IMM error", str(exc), EXIT_FAILED)
    except ImmFacesError as exc:
        return ending.error("error", str(exc), EXIT_FAILED)
    except OSError as exc:  # e.g. the --junit-xml file cannot be written
        return ending.error("error", f"{exc.filename or ''}: {exc.strerror or exc}", EXIT_USAGE)
    except Exception as exc:  # a bug in verify: never a raw traceback (its locals could hold a secret)
        return ending.error("internal error (please report it)", _internal(exc, args.debug), EXIT_USAGE)


async def _verify(args: argparse.Namespace, progress: Progress | None, ending: _Ending) -> int:
    """Read the outputs, check the deployment, make the page when asked; then write verify's report."""
    outputs, pulumi = _outputs(args)
    creds = _credentials(args, pulumi)
    endpoint = args.endpoint or outputs.endpoint
    async with AsyncImmClient(
        region=outputs.region,
        endpoint=endpoint,
        credentials=creds,
        signature_version=args.signature_version,
        timeout=args.timeout,
        deadline=args.deadline,
    ) as client:
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
        html_problem = await _page(args, client, report, creds, outputs, progress) if args.html else None
    return ending.report(report, html_problem)


def _outputs(args: argparse.Namespace) -> tuple[StackOutputs, PulumiCli | None]:
    """The stack outputs from ``--outputs`` (a file or stdin), else from the Pulumi CLI (which is returned too)."""
    if args.outputs:
        return read_outputs_file(args.outputs, args.output_key), None
    pulumi = PulumiCli(args.stack, args.cwd)
    return pulumi.outputs(args.output_key), pulumi


def _credentials(args: argparse.Namespace, pulumi: PulumiCli | None) -> CredentialSource:
    """The one credential chain (:mod:`imm_faces.runtime.credentials`), in its documented order; when reading a
    stack, with the stack's ``alicloud:*`` settings first, as its providers get them under ``pulumi up``: verify
    then signs as the deployment did (same account, same assumed role)."""
    settings = None
    if pulumi is not None:
        settings = CredentialSettings.from_config(pulumi.alicloud_config().get, f"{pulumi.label} config")
    return resolve_provider(profile=args.profile, settings=settings)


async def _page(
    args: argparse.Namespace,
    client: AsyncImmClient,
    report: VerifyReport,
    creds: CredentialSource,
    outputs: StackOutputs,
    progress: Progress | None,
) -> str | None:
    """Make the page in the time left of the deadline: it reads the service and OSS too. When the time runs out,
    the page is not written and the report fails ``verify.deadline`` saying so (exit 1, as for any deadline).
    Returns why the page could not be made, if it could not."""
    # The one import made here: the page's modules (models, thumbnails, the template) only when a page is asked.
    from imm_faces.runtime.report.write import write_report

    endpoint = args.endpoint or outputs.endpoint
    page = write_report(args, client, report, creds, outputs.region, endpoint, progress)
    left = client.time_left()
    try:
        async with asyncio.timeout(None if left is None else max(0.0, left)):
            return await page
    except TimeoutError:
        report.fail(Failure("verify.deadline", "verify --html", f"the deadline passed before {args.html} was written"))
        return None


class _Ending:
    """How the run ends: verify's report (once), or the error that stopped it."""

    def __init__(self, args: argparse.Namespace, progress: Progress | None) -> None:
        self.args = args
        self.progress = progress
        self.written = False  # verify's own report went out (then an error after it must not write a second one)

    def report(self, report: VerifyReport, html_problem: str | None) -> int:
        """Write verify's report. With an HTML problem the checks ran but the page could not be made: usage (exit
        2), said after the report."""
        if self.progress:
            self.progress.close()
        self.written = True
        code = EXIT_USAGE if html_problem else EXIT_OK if report.passed else EXIT_FAILED
        _write_outputs(self.args, report, code, html_problem)
        if html_problem:
            return self.error("error", html_problem, code, reported=True)
        return code

    def error(self, kind: str, text: str, code: int, *, reported: bool = False) -> int:
        """Say why the run ended; when verify's own report was not written, write the error where it would
        have gone (``--json`` on stdout, ``--junit-xml``), so CI shows the reason instead of nothing."""
        if self.progress:
            self.progress.close()
        message = REDACTOR(text)
        print(f"imm-faces verify: {kind}: {message}", file=sys.stderr)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::error title=imm-faces verify::{message.replace(chr(10), '%0A')}", file=sys.stderr)
        if not (reported or self.written):
            _write_error(self.args, kind, message, code)
        return code


def _internal(exc: Exception, debug: bool) -> str:
    detail = f"{exc.__class__.__name__}: {exc}"
    if debug:
        detail += "\n" + "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    return detail


@contextmanager
def _logging(debug: bool) -> Iterator[None]:
    """Log to stderr through a redacting handler (every library's records pass it) while verify runs."""
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


def _write_outputs(args: argparse.Namespace, report: VerifyReport, code: int, problem: str | None) -> None:
    """verify's report: text or ``--json`` (with the run's ``exit_code``, and the ``error`` that set it when the
    checks ran but something after them failed, as :func:`_write_error` has it), JUnit, GitHub's annotations."""
    if args.json:
        envelope = {"schema_version": None, "passed": None, "exit_code": code}  # these first, as in error_json
        error = {"error": error_json("error", problem, code)["error"]} if problem else {}
        _print_json(envelope | report.to_json() | error)
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


def _print_json(document: dict[str, Any]) -> None:
    """``--json``'s document on stdout, written by pydantic-core's encoder: ~6x faster than the standard library's
    indenting one on a 1,000-cluster report (8 -> 1.3 ms), and the same text ``json.dumps(document, indent=2)``
    gives (non-ASCII escaped; the two spell floats alike down to 1e-4, and the only float here is ``seconds``,
    rounded to the millisecond)."""
    print(to_json(document, indent=2, ensure_ascii=True).decode())


def _write_error(args: argparse.Namespace, kind: str, message: str, code: int) -> None:
    if getattr(args, "json", False):
        _print_json(error_json(kind, message, code))
    if getattr(args, "junit_xml", None):
        with contextlib.suppress(OSError), open(args.junit_xml, "w", encoding="utf-8") as f:  # noqa: PTH123
            f.write(render_junit_error(kind, message, code))
