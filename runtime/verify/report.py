"""The verify report in every form: text for people, JUnit XML for CI, GitHub Actions annotations and step
summary. The JSON form is :meth:`VerifyReport.to_json`. Each names checks by their stable ids."""

from __future__ import annotations

from typing import Any

from imm_faces.runtime.verify.base import SCHEMA_VERSION, VerifyReport
from imm_faces.runtime.verify.checks import CHECKS

RUN_ERROR_ID = "verify.run"
"""The stable id a run that could not check anything reports under (JUnit test case, ``--json`` error)."""

_MAX_ROWS = 50
MAX_ANNOTATIONS = 50
_STATUS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def _cell(value: object, width: int) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def counted(count: int, noun: str) -> str:
    """``1 cluster``, ``2 clusters``, ``0 clusters`` (every noun here takes an s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def coverage_line(report: VerifyReport) -> str:
    c = report.coverage
    calls = sum(c.requests.values())
    grouped = "" if c.grouped_clusters is None else f"; file groups compared for {c.grouped_clusters}"
    return (
        f"Coverage: {counted(c.listed, 'cluster')} listed, {c.bulk_checked} cross-checked in bulk, {c.get_checked} "
        f"fetched with GetFigureCluster (sample {c.sample}, suspects {c.suspects}), {c.files_checked_clusters} "
        f"checked against {counted(c.files_examined, 'file')}{grouped}; {counted(calls, 'request')} in "
        f"{report.seconds:.2f} s."
    )


def render_text(report: VerifyReport) -> str:
    lines = [
        f"imm-faces verify: {report.outputs.project_name}/{report.outputs.dataset_name} at {report.endpoint}",
        "",
    ]
    for record in report.checks.values():
        status = _STATUS[record.status]
        extra = f" ({record.checked} checked" + (f", {len(record.failures)} failed)" if record.failures else ")")
        if record.status == "skipped":
            extra = f" (skipped: {record.skipped})"
        lines.append(f"  {status}  {record.id:<26} {CHECKS[record.id]}{extra}")
        lines += [f"        note: {n}" for n in record.notes]
    failed = [c for c in report.clusters.values() if not c.passed]
    if failed:
        lines += ["", f"  {'cluster':<48} {'name':<16} {'faces':>5} {'images':>6}  failed checks"]
        for c in sorted(failed, key=lambda c: c.object_id)[:_MAX_ROWS]:
            checks = ", ".join(dict.fromkeys(f.check for f in c.failures))
            lines.append(
                f"  {_cell(c.object_id, 48):<48} {_cell(c.name, 16):<16} {_cell(c.face_count, 5):>5} "
                f"{_cell(c.image_count, 6):>6}  {checks}"
            )
        if len(failed) > _MAX_ROWS:
            lines.append(f"  … {len(failed) - _MAX_ROWS} more failed clusters (use --json for all)")
    lines += [
        "",
        f"Figure clusters: {report.total_clusters} found, {len(report.clusters)} checked, {len(failed)} failed.",
        coverage_line(report),
    ]
    if report.failures:
        lines.append(f"FAILED: {len(report.failures)} check(s) failed:")
        lines += [f"  - {f}" for f in report.failures[:_MAX_ROWS]]
        if len(report.failures) > _MAX_ROWS:
            lines.append(f"  … {len(report.failures) - _MAX_ROWS} more (use --json for all)")
    else:
        lines.append("PASSED: the deployment answers and every check holds.")
    return "\n".join(lines)


def render_junit_error(kind: str, message: str, exit_code: int) -> str:
    """JUnit XML for a run that could not check anything (bad outputs, no credentials, an unreachable endpoint):
    one ``verify.run`` test case in error, so a CI test reporter shows why instead of nothing."""
    from xml.etree import ElementTree as ET  # XML only for --junit-xml: not part of every run's start-up

    suites = ET.Element("testsuites", name="imm-faces verify")
    suite = ET.SubElement(
        suites, "testsuite", name="imm-faces verify", tests="1", failures="0", errors="1", skipped="0", time="0.000"
    )
    case = ET.SubElement(suite, "testcase", classname="imm-faces.verify", name=RUN_ERROR_ID)
    ET.SubElement(case, "error", type=kind, message=message).text = f"exit code {exit_code}: {message}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def error_json(kind: str, message: str, exit_code: int) -> dict[str, Any]:
    """``--json`` for a run that could not check anything: the same envelope, no checks, the error."""
    return {
        "schema_version": SCHEMA_VERSION,
        "passed": False,
        "exit_code": exit_code,
        "error": {"id": RUN_ERROR_ID, "kind": kind, "message": message},
    }


def render_junit(report: VerifyReport) -> str:
    """JUnit XML: one test case per check id (its subjects counted in the message), in one suite."""
    from xml.etree import ElementTree as ET  # as in render_junit_error

    suite_name = f"imm-faces verify {report.outputs.project_name}/{report.outputs.dataset_name}"
    records = list(report.checks.values())
    suites = ET.Element("testsuites", name="imm-faces verify")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=suite_name,
        tests=str(len(records)),
        failures=str(sum(r.status == "failed" for r in records)),
        errors="0",
        skipped=str(sum(r.status == "skipped" for r in records)),
        time=f"{report.seconds:.3f}",
    )
    for record in records:
        case = ET.SubElement(suite, "testcase", classname="imm-faces.verify", name=record.id)
        if record.status == "failed":
            first = record.failures[0]
            failure = ET.SubElement(
                case,
                "failure",
                type=record.id,
                message=f"{len(record.failures)} of {record.checked} failed: {first.subject}: {first.detail}",
            )
            failure.text = "\n".join(f"{f.subject}: {f.detail}" for f in record.failures)
        elif record.status == "skipped":
            ET.SubElement(case, "skipped", message=record.skipped or "")
        out = [CHECKS[record.id], f"checked: {record.checked}", *(f"note: {n}" for n in record.notes)]
        ET.SubElement(case, "system-out").text = "\n".join(out)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: VerifyReport) -> list[str]:
    """Workflow commands: one ``::error`` per failure (capped), one ``::notice`` per note."""
    lines = []
    for f in report.failures[:MAX_ANNOTATIONS]:
        title = _escape_property(f"imm-faces verify {f.check}")
        lines.append(f"::error title={title}::{_escape_data(f'{f.subject}: {f.detail}')}")
    if len(report.failures) > MAX_ANNOTATIONS:
        more = len(report.failures) - MAX_ANNOTATIONS
        lines.append(f"::error title=imm-faces verify::{more} more failures (see the step summary or --json)")
    for check, note in report.notes:
        lines.append(f"::notice title={_escape_property(f'imm-faces verify {check}')}::{_escape_data(note)}")
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def github_summary(report: VerifyReport) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    verdict = "passed" if report.passed else "FAILED"
    icon = {"passed": "✅", "failed": "❌", "skipped": "⏭️"}
    lines = [
        f"### imm-faces verify {verdict}: `{report.outputs.project_name}/{report.outputs.dataset_name}`",
        "",
        "| | check | rule | checked | failed |",
        "|---|---|---|---:|---:|",
    ]
    for r in report.checks.values():
        lines.append(f"| {icon[r.status]} | `{r.id}` | {_md(CHECKS[r.id])} | {r.checked} | {len(r.failures)} |")
    lines += ["", coverage_line(report), ""]
    if report.failures:
        lines += ["<details><summary>failures</summary>", ""]
        lines += [f"- `{f.check}` {_md(f.subject)}: {_md(f.detail)}" for f in report.failures[:200]]
        lines += ["", "</details>", ""]
    for check, note in report.notes:
        lines.append(f"> note (`{check}`): {_md(note)}")
    return "\n".join(lines) + "\n"
