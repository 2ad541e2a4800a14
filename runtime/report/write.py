"""Writing ``imm-faces verify --html FILE``: gather (:mod:`.collect`), render (:mod:`.html`), write the file whole
(a partial file is renamed into place)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imm_faces.runtime.auth.credentials import CredentialSource
from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.report.collect import Progress, ReportError, ReportOptions, collect
from imm_faces.runtime.report.html import render
from imm_faces.runtime.report.images import oss_endpoint_for
from imm_faces.runtime.verify.base import VerifyReport
from imm_faces.runtime.verify.report import counted


async def write_report(
    args: argparse.Namespace,
    client: AsyncImmClient,
    verify: VerifyReport,
    credentials: CredentialSource,
    region: str,
    imm_endpoint: str | None,
    progress: Progress | None = None,
) -> str | None:
    """Make the page for ``verify`` and write it to ``args.html``. Returns None, or why the page could not be made
    as asked or written (the caller reports it after verify's own report: exit 2)."""
    try:
        oss_endpoint = args.oss_endpoint.rstrip("/") if args.oss_endpoint else oss_endpoint_for(imm_endpoint)
        options = ReportOptions(
            embed=args.embed is not False,  # thumbnails made by OSS unless --links
            link_expiry=args.link_expiry,
            photos_per_cluster=args.photos_per_cluster,
            max_clusters=args.html_max_clusters,
        )
        data = await collect(
            client,
            verify,
            options,
            credentials=credentials,
            region=region,
            oss_endpoint=oss_endpoint,
            progress=progress,
        )
        page = render(data)
        target = Path(args.html)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(page, encoding="utf-8")
        partial.replace(target)
    except ReportError as exc:
        return str(exc)
    except OSError as exc:
        return f"--html {args.html}: {exc.strerror or exc}"
    if progress is not None and hasattr(progress, "close"):
        progress.close()
    size = f"{counted(len(data.cards), 'cluster')}, {len(page) // 1024} KiB"
    print(f"imm-faces verify: wrote {target} ({size})", file=sys.stderr)
    return None
