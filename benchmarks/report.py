"""`imm-faces verify --html` on 1,000 figure clusters: time, page size, and the browser's load, against peers.

    python benchmarks/report.py [--clusters 1000] [--photos-per-cluster 3] [--local-clusters 50]

The emulator runs as `imm-faces emulator` in its own process, on a state file written beforehand: a project and
dataset made through the API, then N clusters of P photos each written straight into the store. Every photo is
a 12 MP JPEG (4032 x 3024 upright, stored turned a quarter with EXIF Orientation 6, noise added so it weighs
what a camera's does), hard-linked P x N times under --oss-root, with one face per photo.

Measured, in this process, and the emulator's CPU beside it:

* the report with thumbnails made by OSS's image processing (``x-oss-process``; here the emulator does OSS's
  work): ``collect`` + ``render`` as ``verify --html`` runs them after verify (2N IMM requests, up to N x (P + 1)
  signed OSS GETs, each answering a few KB), wall and CPU of both processes, page size, bytes read;
* its peer, the report reading every photo whole and thumbnailing it here (its fallback, and how it worked
  before OSS made the thumbnails), on ``--local-clusters`` clusters (it takes about 0.1 s a photo);
* the same with ``--links`` (no object read);
* one photo's thumbnails made the plain way (full decode, then orientation, crop and resize) against
  ``make_thumbnails`` (JPEG decoded at the smallest scale that keeps the thumbnails sharp);
* the page-size peer: the same page with the original photos embedded (computed, not built);
* the browser: headless Chromium (when installed) loading the page from disk until every thumbnail decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from planted import plant_clusters

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.runtime.client import AsyncImmClient
from imm_faces.runtime.outputs import StackOutputs
from imm_faces.runtime.report.collect import ReportOptions, collect
from imm_faces.runtime.report.html import render
from imm_faces.runtime.report.images import COVER_PX, PHOTO_HEIGHT_PX, PHOTO_MAX_WIDTH_PX, cover_crop, make_thumbnails
from imm_faces.runtime.verify.run import verify_deployment
from tests.helpers import DATASET, PROJECT
from tests.processes import emulator_process, loopback_only, process_cpu
from tests.report.browser import Browser, find_chromium

CREDS = DEFAULT_ACCESS_KEY
UPRIGHT = (4032, 3024)
FACE = (1700, 800, 640, 720)  # left, top, width, height in the upright photo


def make_photo(path: Path) -> None:
    img = Image.new("RGB", UPRIGHT, (90, 130, 170))
    pen = ImageDraw.Draw(img)
    pen.rectangle((0, 2200, UPRIGHT[0], UPRIGHT[1]), fill=(70, 120, 70))
    left, top, w, h = FACE
    pen.ellipse((left, top, left + w, top + h), fill=(235, 190, 150))
    rng = np.random.default_rng(7)
    noise = rng.integers(-18, 18, size=(UPRIGHT[1], UPRIGHT[0], 3), dtype=np.int16)
    img = Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(path, format="JPEG", quality=88, exif=exif)


def prepare(db: Path, oss_root: Path, clusters: int, per_cluster: int, photo: Path) -> None:
    """``clusters`` clusters of ``per_cluster`` files whose objects are hard links to ``photo`` (a 12 MP JPEG
    stored turned a quarter, EXIF orientation 6), the face where :data:`FACE` says in the upright photo."""
    left, top, w, h = FACE
    plant_clusters(
        db,
        oss_root,
        clusters,
        per_cluster,
        suffix=".jpg",
        file_fields={
            "ImageWidth": UPRIGHT[0],
            "ImageHeight": UPRIGHT[1],
            "Orientation": 6,
            "ContentType": "image/jpeg",
        },
        figure_fields={"Boundary": {"Left": left, "Top": top, "Width": w, "Height": h}},
        write_object=lambda path: os.link(photo, path),
    )


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plain_thumbnails(data: bytes, face: tuple[float, float, float, float]) -> int:
    """The peer: decode at full size, then orient, crop the cover and resize the photo."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))) or Image.open(io.BytesIO(data))
    width, height = img.size
    crop = img.crop(cover_crop(face, width, height)).resize((COVER_PX, COVER_PX), Image.Resampling.LANCZOS)
    thumb = img.copy()
    thumb.thumbnail((PHOTO_MAX_WIDTH_PX, PHOTO_HEIGHT_PX), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=70)
    thumb.save(out, format="JPEG", quality=70)
    return len(out.getvalue())


def per_photo(data: bytes, rounds: int) -> tuple[float, float]:
    face = tuple(float(v) for v in FACE)
    assert len(face) == 4
    ours, plain = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        make_thumbnails(data, face, True)  # type: ignore[arg-type]
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        plain_thumbnails(data, face)  # type: ignore[arg-type]
        plain.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(plain)


async def report(
    endpoint: str, outputs: StackOutputs, options: ReportOptions, *, local: bool = False
) -> tuple[float, float, float, str, Any]:
    """(collect + render wall, CPU, render alone wall, page, data); ``local``: OSS makes no thumbnail, so each
    photo is read whole and thumbnailed here (the report's fallback, and how it worked before)."""
    from imm_faces.runtime.report import images

    async def refused(*_: object) -> images.Thumbnails:
        raise images.ObjectReadError("OSS image processing not used (benchmark peer)")

    made_by_oss = images.processed_thumbnails
    if local:
        images.processed_thumbnails = refused  # type: ignore[assignment]
    try:
        return await _report(endpoint, outputs, options)
    finally:
        images.processed_thumbnails = made_by_oss


async def _report(endpoint: str, outputs: StackOutputs, options: ReportOptions) -> tuple[float, float, float, str, Any]:
    async with AsyncImmClient(endpoint=endpoint, credentials=CREDS, deadline=1800) as client:
        verified = await verify_deployment(client, outputs)
        wall0, cpu0 = time.perf_counter(), cpu()
        data = await collect(client, verified, options, credentials=CREDS, region="cn-hangzhou", oss_endpoint=endpoint)
        render0 = time.perf_counter()
        page = render(data)
        done = time.perf_counter()
        return done - wall0, cpu() - cpu0, done - render0, page, data


def browse(page: Path, expected: int) -> str:
    chromium = find_chromium()
    if chromium is None:
        return "browser: skipped (no Chromium; Debian: apt-get install -y chromium)"
    with Browser(chromium, timeout=120) as browser:
        started = time.perf_counter()
        browser.open(page.as_uri())
        loaded = time.perf_counter() - started
        decoded = browser.evaluate(
            "Promise.all([...document.images].map(i => i.decode().then(() => i.naturalWidth > 0, () => false)))"
        )
        done = time.perf_counter() - started
        cards = browser.evaluate("document.querySelectorAll('article.card').length")
    assert cards == expected and all(decoded), (cards, decoded.count(False))
    return (
        f"browser (headless Chromium, from disk): load event {loaded:.2f} s, all {len(decoded)} thumbnails "
        f"decoded {done:.2f} s, {cards} cards"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--photos-per-cluster", type=int, default=3)
    parser.add_argument(
        "--local-clusters",
        type=int,
        default=50,
        help="clusters for the peer that reads every "
        "photo whole and thumbnails it here (about 0.1 s a photo on 2 cores)",
    )
    args = parser.parse_args()
    loopback_only()
    with tempfile.TemporaryDirectory(prefix="imm-bench-report-") as tmp:
        db, oss_root, photo = Path(tmp) / "state.db", Path(tmp) / "oss", Path(tmp) / "photo.jpg"
        oss_root.mkdir()
        make_photo(photo)
        size = photo.stat().st_size
        started = time.perf_counter()
        prepare(db, oss_root, args.clusters, args.photos_per_cluster, photo)
        files = args.clusters * args.photos_per_cluster
        print(
            f"prepared {args.clusters} clusters, {files} photos of {UPRIGHT[0]}x{UPRIGHT[1]} "
            f"({size / 1e6:.1f} MB JPEG, EXIF-rotated) in {time.perf_counter() - started:.1f} s"
        )
        data = photo.read_bytes()
        ours, plain = per_photo(data, 7)
        print(
            f"one photo's thumbnails (cover + strip): {ours * 1000:.0f} ms with make_thumbnails; plain full "
            f"decode {plain * 1000:.0f} ms ({plain / ours:.1f}x slower)"
        )
        with emulator_process(db, oss_root) as (server, endpoint):
            outputs = StackOutputs(project_name=PROJECT, dataset_name=DATASET, region="cn-hangzhou", endpoint=endpoint)
            peer = min(args.clusters, args.local_clusters)
            runs = [
                ("embedded, thumbnails made by OSS (here the emulator)", True, False, args.clusters),
                (
                    f"embedded, thumbnails made here (the peer: every photo read whole; {peer} clusters)",
                    True,
                    True,
                    peer,
                ),
                ("links (presigned URLs, nothing read)", False, False, args.clusters),
            ]
            for mode, embed, local, clusters in runs:
                options = ReportOptions(embed=embed, photos_per_cluster=args.photos_per_cluster, max_clusters=clusters)
                served = process_cpu(server.pid)
                wall, used, rendering, page, made = asyncio.run(report(endpoint, outputs, options, local=local))
                served = process_cpu(server.pid) - served
                pictures = page.count("<img ")
                path = Path(tmp) / f"report-{len(made.cards)}-{embed}-{local}.html"
                path.write_text(page)
                print(
                    f"report, {mode}: {len(made.cards)} clusters, {pictures} pictures, {wall:.2f} s wall "
                    f"({wall / len(made.cards) * 1000:.1f} ms a cluster), CPU {used:.2f} s this process + "
                    f"{served:.2f} s emulator, page {len(page) / 1e6:.1f} MB "
                    f"({len(page) / max(1, pictures) / 1024:.1f} KiB per picture); HTML rendering alone "
                    f"{rendering * 1000:.0f} ms"
                )
                if embed and not local:
                    originals = files * len(base64.b64encode(data))
                    print(
                        f"  peer page with the original photos embedded: {originals / 1e9:.2f} GB "
                        f"({originals / len(page):.0f}x larger); bytes read: {len(page) / 1e6:.1f} MB of "
                        f"thumbnails instead of {files * size / 1e9:.1f} GB of photos"
                    )
                    print("  " + browse(path, len(made.cards)))
    print(f"cpus={os.cpu_count()}; " + json.dumps({"clusters": args.clusters, "photos": files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
