"""The report's options on ``imm-faces verify`` (and ``imm-faces rehearse``), and writing the page.

Only argument declarations run at import time; everything else is imported when a report is made.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from imm_faces.runtime.report import DEFAULT_LINK_EXPIRY, DEFAULT_MAX_CLUSTERS, DEFAULT_PHOTOS


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("HTML report of the clusters")
    group.add_argument("--html", metavar="FILE", help="write a self-contained HTML page of the checked clusters")
    pictures = group.add_mutually_exclusive_group()
    pictures.add_argument(
        "--embed", dest="embed", action="store_true", default=None,
        help="embed thumbnails in the page, made by OSS's image processing (the default)",
    )  # fmt: skip
    pictures.add_argument(
        "--links", dest="embed", action="store_false",
        help="link the photos with OSS presigned URLs instead (the page then works until they expire)",
    )  # fmt: skip
    group.add_argument(
        "--link-expiry", type=_count, default=DEFAULT_LINK_EXPIRY, metavar="SECONDS",
        help=f"how long presigned links work (default {DEFAULT_LINK_EXPIRY}, at most 604800: OSS's limit)",
    )  # fmt: skip
    group.add_argument(
        "--photos-per-cluster", type=_count, default=DEFAULT_PHOTOS, metavar="N",
        help=f"member photos shown per cluster (default {DEFAULT_PHOTOS})",
    )  # fmt: skip
    group.add_argument(
        "--html-max-clusters", type=_count, default=DEFAULT_MAX_CLUSTERS, metavar="N",
        help=f"clusters shown, failed ones first, then the largest (default {DEFAULT_MAX_CLUSTERS})",
    )  # fmt: skip
    group.add_argument(
        "--oss-endpoint", metavar="URL",
        help="read photos path-style from this OSS-compatible endpoint (default: the region's OSS endpoint, or "
        "the IMM endpoint when it is not Alibaba Cloud's, e.g. the emulator)",
    )  # fmt: skip


async def write_report(
    args: argparse.Namespace,
    client: Any,
    verify: Any,
    credentials: Any,
    region: str,
    imm_endpoint: str | None,
    progress: Any = None,
) -> str | None:
    """Make the page for ``verify`` (a VerifyReport) and write it to ``args.html``. Returns None, or why the page
    could not be made as asked or written (the caller reports it after verify's own report: exit 2)."""
    from imm_faces.runtime.report.collect import ReportError

    try:
        await _write(args, client, verify, credentials, region, imm_endpoint, progress)
    except ReportError as exc:
        return str(exc)
    except OSError as exc:
        return f"--html {args.html}: {exc.strerror or exc}"
    return None


async def _write(
    args: argparse.Namespace, client: Any, verify: Any, credentials: Any, region: str, imm_endpoint: str | None,
    progress: Any,
) -> None:  # fmt: skip
    from pathlib import Path

    from imm_faces.runtime.report.collect import ReportOptions, collect
    from imm_faces.runtime.report.html import render
    from imm_faces.runtime.report.images import oss_endpoint_for
    from imm_faces.runtime.verify.report import counted

    oss_endpoint = args.oss_endpoint.rstrip("/") if args.oss_endpoint else oss_endpoint_for(imm_endpoint)
    embed = args.embed is not False  # thumbnails made by OSS unless --links
    options = ReportOptions(embed=embed, link_expiry=args.link_expiry, photos_per_cluster=args.photos_per_cluster,
                            max_clusters=args.html_max_clusters)  # fmt: skip
    data = await collect(client, verify, options, credentials=credentials, region=region, oss_endpoint=oss_endpoint,
                         progress=progress)  # fmt: skip
    page = render(data)
    target = Path(args.html)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    if progress is not None and hasattr(progress, "close"):
        progress.close()
    size = f"{counted(len(data.cards), 'cluster')}, {len(page) // 1024} KiB"
    print(f"imm-faces verify: wrote {target} ({size})", file=sys.stderr)
