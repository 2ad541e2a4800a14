"""The human-readable verify report: checks, a table of clusters, a summary."""

from __future__ import annotations

from imm_faces.runtime.verify.run import VerifyReport

_MAX_ROWS = 50


def _cell(value: object, width: int) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(report: VerifyReport) -> str:
    lines = [
        f"imm-faces verify: {report.outputs.project_name}/{report.outputs.dataset_name} at {report.endpoint}",
        "",
    ]
    for name, failure in report.checks:
        lines.append(f"  {'PASS' if failure is None else 'FAIL'}  {name}" + (f": {failure.detail}" if failure else ""))
    if report.clusters:
        lines += ["", f"  {'cluster':<48} {'name':<16} {'faces':>5} {'images':>6}  result"]
        shown = sorted(report.clusters, key=lambda c: (c.passed, c.object_id))[:_MAX_ROWS]
        for c in shown:
            verdict = "ok" if c.passed else "; ".join(f.rule for f in c.failures)
            lines.append(
                f"  {_cell(c.object_id, 48):<48} {_cell(c.name, 16):<16} {_cell(c.face_count, 5):>5} "
                f"{_cell(c.image_count, 6):>6}  {verdict}"
            )
        if len(report.clusters) > _MAX_ROWS:
            lines.append(f"  … {len(report.clusters) - _MAX_ROWS} more (use --json for all)")
    failed = [c for c in report.clusters if not c.passed]
    lines += [
        "",
        f"Figure clusters: {report.total_clusters} found, {len(report.clusters)} checked, {len(failed)} failed.",
    ]
    if report.failures:
        lines.append(f"FAILED: {len(report.failures)} check(s) failed:")
        lines += [f"  - {f}" for f in report.failures]
    else:
        lines.append("PASSED: the deployment answers and every check holds.")
    return "\n".join(lines)
