"""Hostile objects under an OSS root and a load made of them (issue 25's cases): a 12,000 x 12,000 RGB PNG of
half a megabyte, a 2 GiB sparse object, a FIFO, a link to a hidden file; 40 heavy requests on them (thumbnails,
a process with no resize, streamed GETs, HEADs, indexing, SearchImageFigureCluster) while IMM, STS and small
OSS reads are timed, and the emulator's memory read from /proc. Used by tests/emulator/test_heavy_requests.py
and benchmarks/hostile.py."""

from __future__ import annotations

import io
import os
import statistics
import struct
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
from PIL import Image

from imm_faces.runtime.auth.oss_signing import presign_url
from imm_faces.runtime.auth.sts import GET_CALLER_IDENTITY, StsClient
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import datasets, figure_clusters, files, projects

PROJECT, DATASET, BUCKET = "hostile", "hostile", "photos"
THUMBNAIL = "image/resize,m_fixed,w_112,h_112,limit_0/quality,q_70/format,jpg"
NO_RESIZE = "image/quality,q_70"


def write_png(path: Path, width: int, height: int) -> None:
    """An RGB PNG of one colour, written a row at a time (the test's own memory stays small): 12,000 x 12,000
    is about half a megabyte, and 576 MB once Pillow decodes it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes([90, 140, 200]) * width
    packer = zlib.compressobj(9)
    with path.open("wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        for _ in range(height):
            data = packer.compress(row)
            if data:
                f.write(chunk(b"IDAT", data))
        f.write(chunk(b"IDAT", packer.flush()) + chunk(b"IEND", b""))


def hostile_root(root: Path, sparse_bytes: int = 2 << 30) -> None:
    bucket = root / BUCKET
    bucket.mkdir(parents=True, exist_ok=True)
    small = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 80, 40)).save(small, format="JPEG")
    (bucket / "small.jpg").write_bytes(small.getvalue())
    write_png(bucket / "huge.png", 12_000, 12_000)
    with (bucket / "sparse.bin").open("wb") as f:
        f.truncate(sparse_bytes)
    os.mkfifo(bucket / "pipe.jpg")
    (bucket / ".hidden.jpg").write_bytes(small.getvalue())
    (bucket / "peek.jpg").symlink_to(".hidden.jpg")


def release_fifo(root: Path) -> None:
    """Give readers of the FIFO, if any, an end of file."""
    for _ in range(50):
        try:
            os.close(os.open(root / BUCKET / "pipe.jpg", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return
        time.sleep(0.01)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in KiB (Linux)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


@dataclass
class Measured:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    heavy: dict[str, int] = field(default_factory=dict)  # outcome -> count
    heavy_seconds: float = 0.0
    peak_rss_kib: int = 0
    rss_after_kib: int = 0

    def summary(self) -> dict[str, object]:
        light = {
            k: {"n": len(v), "median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3)}
            for k, v in self.latencies.items()
        }
        return {
            "light": light,
            "heavy": self.heavy,
            "heavy_seconds": round(self.heavy_seconds, 1),
            "peak_rss_mib": self.peak_rss_kib // 1024,
            "rss_after_mib": self.rss_after_kib // 1024,
        }


def _url(endpoint: str, key: str, creds: Credentials, method: str = "GET", process: str | None = None) -> str:
    query = [("x-oss-process", process)] if process else []
    return presign_url(
        f"{endpoint}/{BUCKET}/{quote(key)}",
        creds,
        bucket=BUCKET,
        key=key,
        region="cn-hangzhou",
        expires=3600,
        method=method,
        query=query,
    )


Work = Callable[[httpx.Client, ImmClient], str]


def heavy_requests(
    endpoint: str, creds: Credentials, thumbnails: int = 12, streamed_gets: int = 2
) -> list[tuple[str, Work]]:
    """40 heavy requests: (label, what to do), what to do taking an httpx client and an IMM client and giving an
    outcome. ``thumbnails`` of them make a thumbnail of the 12,000 x 12,000 PNG (4 s of CPU each), and
    ``streamed_gets`` read the whole sparse object; HEADs of it make up the 40."""

    def oss(method: str, key: str, process: str | None = None) -> Work:
        url = _url(endpoint, key, creds, method, process)

        def run(http: httpx.Client, imm: ImmClient) -> str:
            with http.stream(method, url) as response:
                for _ in response.iter_bytes(1 << 20):
                    pass
                return f"{method} {response.status_code} {response.headers.get('x-oss-ec', '')}".strip()

        return run

    def index(key: str) -> Work:
        def run(http: httpx.Client, imm: ImmClient) -> str:
            imm.call(
                files.IndexFileMeta, project_name=PROJECT, dataset_name=DATASET, file={"URI": f"oss://{BUCKET}/{key}"}
            )
            return "IndexFileMeta accepted"

        return run

    def search(key: str) -> Work:
        def run(http: httpx.Client, imm: ImmClient) -> str:
            try:
                imm.call(
                    figure_clusters.SearchImageFigureCluster,
                    project_name=PROJECT,
                    dataset_name=DATASET,
                    source_uri=f"oss://{BUCKET}/{key}",
                )
            except ImmError as exc:
                return f"Search {exc.status} {exc.code}"
            return "Search 200"

        return run

    work: list[tuple[str, Work]] = []
    work += [("thumbnail of huge.png", oss("GET", "huge.png", THUMBNAIL)) for _ in range(thumbnails)]
    work += [("quality,q_70 of huge.png", oss("GET", "huge.png", NO_RESIZE)) for _ in range(4)]
    work += [("GET sparse.bin", oss("GET", "sparse.bin")) for _ in range(streamed_gets)]
    work += [("GET pipe.jpg", oss("GET", "pipe.jpg")) for _ in range(4)]
    work += [("IndexFileMeta huge.png", index("huge.png")) for _ in range(2)]
    work += [("IndexFileMeta sparse.bin", index("sparse.bin")) for _ in range(2)]
    work += [("IndexFileMeta pipe.jpg", index("pipe.jpg")) for _ in range(2)]
    work += [("SearchImageFigureCluster huge.png", search("huge.png")) for _ in range(8)]
    work += [("HEAD sparse.bin", oss("HEAD", "sparse.bin")) for _ in range(max(0, 40 - len(work)))]
    return work


def measure(endpoint: str, pid: int, creds: Credentials, thumbnails: int = 12, streamed_gets: int = 2) -> Measured:
    """Run the 40 heavy requests at once; meanwhile time ListProjects (IMM), GetCallerIdentity (STS) and a small
    OSS GET one after another, and sample the emulator's memory."""
    result = Measured()
    with ImmClient(endpoint=endpoint, credentials=creds, timeout=300) as imm:
        try:
            imm.call(projects.CreateProject, project_name=PROJECT)
            imm.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
        except ImmError as exc:
            if "AlreadyExists" not in exc.code:
                raise
        work = heavy_requests(endpoint, creds, thumbnails, streamed_gets)
        done = threading.Event()
        outcomes: list[str] = []
        lock = threading.Lock()

        def one(item: tuple[str, Work]) -> None:
            label, run = item
            with httpx.Client(trust_env=False, timeout=300) as http:
                try:
                    outcome = run(http, imm)
                except httpx.HTTPError as exc:
                    outcome = f"{label}: {exc.__class__.__name__}"
            with lock:
                outcomes.append(f"{label}: {outcome}")

        started = time.monotonic()
        pool = ThreadPoolExecutor(len(work))
        futures = [pool.submit(one, item) for item in work]
        threading.Thread(target=lambda: ([f.result() for f in futures], done.set()), daemon=True).start()
        light = _light(endpoint, creds)
        while not done.is_set() or not result.latencies:
            for kind, call in light.items():
                t0 = time.monotonic()
                call()
                result.latencies.setdefault(kind, []).append(time.monotonic() - t0)
            result.peak_rss_kib = max(result.peak_rss_kib, memory_kib(pid)["VmHWM"])
            time.sleep(0.05)
        result.heavy_seconds = time.monotonic() - started
        pool.shutdown()
        for text in outcomes:
            result.heavy[text] = result.heavy.get(text, 0) + 1
    mem = memory_kib(pid)
    result.peak_rss_kib, result.rss_after_kib = max(result.peak_rss_kib, mem["VmHWM"]), mem["VmRSS"]
    return result


def _light(endpoint: str, creds: Credentials) -> dict[str, Callable[[], object]]:
    http = httpx.Client(trust_env=False, timeout=60)
    imm = ImmClient(endpoint=endpoint, credentials=creds, timeout=60)
    sts = StsClient(endpoint + "/")
    small = _url(endpoint, "small.jpg", creds)

    def oss() -> None:
        assert http.get(small).status_code == 200

    return {
        "IMM ListProjects": lambda: imm.call(projects.ListProjects),
        "STS GetCallerIdentity": lambda: sts.call(GET_CALLER_IDENTITY, GET_CALLER_IDENTITY.request(), creds),
        "OSS GET small.jpg": oss,
    }
