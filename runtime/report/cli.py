"""The report's options on ``imm-faces verify`` (and ``imm-faces rehearse``): argument declarations only, so that
``imm-faces verify --help`` imports nothing heavy (the page is made by :mod:`.write`).
"""

from __future__ import annotations

import argparse

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
        "--embed",
        dest="embed",
        action="store_true",
        default=None,
        help="embed thumbnails in the page, made by OSS's image processing (the default)",
    )
    pictures.add_argument(
        "--links",
        dest="embed",
        action="store_false",
        help="link the photos with OSS presigned URLs instead (the page then works until they expire)",
    )
    group.add_argument(
        "--link-expiry",
        type=_count,
        default=DEFAULT_LINK_EXPIRY,
        metavar="SECONDS",
        help=f"how long presigned links work (default {DEFAULT_LINK_EXPIRY}, at most 604800: OSS's limit)",
    )
    group.add_argument(
        "--photos-per-cluster",
        type=_count,
        default=DEFAULT_PHOTOS,
        metavar="N",
        help=f"member photos shown per cluster (default {DEFAULT_PHOTOS})",
    )
    group.add_argument(
        "--html-max-clusters",
        type=_count,
        default=DEFAULT_MAX_CLUSTERS,
        metavar="N",
        help=f"clusters shown, failed ones first, then the largest (default {DEFAULT_MAX_CLUSTERS})",
    )
    group.add_argument(
        "--oss-endpoint",
        metavar="URL",
        help="read photos path-style from this OSS-compatible endpoint (default: the region's OSS endpoint, or "
        "the IMM endpoint when it is not Alibaba Cloud's, e.g. the emulator)",
    )
