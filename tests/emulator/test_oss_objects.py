"""Only regular files inside ``--oss-root``, reached through visible names, are objects, and only they are ever
opened: a FIFO, a socket or a link through a hidden name answers NoSuchKey at once, for every reader (OSS GET
and HEAD, IndexFileMeta, the binding scanner, SearchImageFigureCluster), and nothing stalls behind it. An object
swapped between the check and the open is refused; GET streams, HEAD never reads; SIGTERM stops the emulator
with requests pending."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from imm_faces.emulator import oss
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.auth.oss_signing import presign_url
from imm_faces.runtime.auth.sts import GET_CALLER_IDENTITY, StsClient
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import bindings, datasets, figure_clusters, files, projects, query
from tests.conftest import CREDS
from tests.fakes import write_photo
from tests.processes import emulator_process

PROJECT, DATASET = "objects", "objects"
PHOTO = "oss://photos/a.png"


def presigned(
    endpoint: str,
    bucket: str,
    key: str,
    method: str = "GET",
    query: list[tuple[str, str]] | None = None,
    creds: Credentials = CREDS,
) -> str:
    return presign_url(
        f"{endpoint}/{bucket}/{quote(key, safe='/')}",
        creds,
        bucket=bucket,
        key=key,
        region="cn-hangzhou",
        expires=600,
        method=method,
        query=query or [],
    )


def release(fifo: Path) -> None:
    """Give a FIFO's readers, if any, an end of file (so that a server that did open it can be stopped)."""
    for _ in range(50):
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return  # no reader
        time.sleep(0.01)


@pytest.fixture
def tree(oss_root: Path) -> Iterator[Path]:
    """photos/{a.png, pipe.jpg (FIFO), sock.jpg (a socket), .hidden.jpg, peek.jpg -> .hidden.jpg,
    sub/.git/config, config.jpg -> sub/.git/config, gitdir -> sub/.git, up.jpg -> ../photos/.hidden.jpg}."""
    write_photo(oss_root, "photos", "a.png", [{"person": 1}])
    bucket = oss_root / "photos"
    os.mkfifo(bucket / "pipe.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(bucket / "sock.jpg"))
    (bucket / ".hidden.jpg").write_bytes((bucket / "a.png").read_bytes())
    (bucket / "peek.jpg").symlink_to(".hidden.jpg")
    (bucket / "sub" / ".git").mkdir(parents=True)
    (bucket / "sub" / ".git" / "config").write_text("[core]\n")
    (bucket / "config.jpg").symlink_to(bucket / "sub" / ".git" / "config")
    (bucket / "gitdir").symlink_to("sub/.git", target_is_directory=True)
    (bucket / "up.jpg").symlink_to("../photos/.hidden.jpg")
    try:
        yield bucket
    finally:
        server.close()
        release(bucket / "pipe.jpg")


REFUSED = [
    "pipe.jpg",
    "sock.jpg",
    ".hidden.jpg",
    "peek.jpg",
    "config.jpg",
    "gitdir/config",
    "up.jpg",
    "sub/.git/config",
]


def test_only_regular_files_through_visible_names_are_objects(oss_root: Path, tree: Path) -> None:
    assert sorted(k for k in oss.list_bucket(oss_root, "photos") or {} if not k.endswith(".json")) == ["a.png"]
    for key in REFUSED:
        with pytest.raises(oss.NotAnObjectError):
            oss.open_object(oss_root, "photos", key)
    with oss.open_object(oss_root, "photos", "a.png") as obj:
        assert obj.read_up_to(10**6) == (tree / "a.png").read_bytes()


def test_non_objects_answer_at_once_and_stall_nothing(emulator: Emulator, client: ImmClient, tree: Path) -> None:
    """41 GETs and HEADs of a FIFO (and of the other non-objects) are each a quick NoSuchKey, while STS and the
    IMM API answer; indexing it twice leaves the indexer free; searching with it is a 400."""
    reads = [("GET", presigned(emulator.endpoint, "photos", "pipe.jpg")) for _ in range(41)]
    reads += [(m, presigned(emulator.endpoint, "photos", k, method=m)) for k in REFUSED for m in ("GET", "HEAD")]
    with ThreadPoolExecutor(16) as pool, httpx.Client(trust_env=False, timeout=5) as http:
        answers = list(pool.map(lambda read: http.request(*read), reads))
        assert {(a.status_code, a.headers["x-oss-ec"]) for a in answers} == {(404, "NoSuchKey")}
        sts = StsClient(emulator.endpoint + "/").call(GET_CALLER_IDENTITY, GET_CALLER_IDENTITY.request(), CREDS)
        assert sts.arn
    client.call(projects.CreateProject, project_name=PROJECT)
    client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
    for key in ("pipe.jpg", "pipe.jpg", "peek.jpg"):  # as many FIFOs as the indexer has workers, and more
        client.call(
            files.IndexFileMeta, project_name=PROJECT, dataset_name=DATASET, file={"URI": f"oss://photos/{key}"}
        )
    client.call(files.IndexFileMeta, project_name=PROJECT, dataset_name=DATASET, file={"URI": PHOTO})
    assert emulator.jobs.wait_idle(PROJECT, DATASET, timeout=10), "indexing stalled"
    (got,) = client.call(files.GetFileMeta, project_name=PROJECT, dataset_name=DATASET, uri=PHOTO).files or []
    assert got.e_tag and got.size == (tree / "a.png").stat().st_size
    for key in ("pipe.jpg", "peek.jpg"):
        with pytest.raises(ImmError) as refused:
            client.call(files.GetFileMeta, project_name=PROJECT, dataset_name=DATASET, uri=f"oss://photos/{key}")
        assert refused.value.resource_not_found
        with pytest.raises(ImmError) as bad:
            client.call(
                figure_clusters.SearchImageFigureCluster,
                project_name=PROJECT,
                dataset_name=DATASET,
                source_uri=f"oss://photos/{key}",
            )
        assert bad.value.status == 400 and "not a readable OSS object" in bad.value.message


def test_the_binding_scanner_indexes_objects_only(emulator: Emulator, client: ImmClient, tree: Path) -> None:
    client.call(projects.CreateProject, project_name=PROJECT)
    client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=DATASET)
    client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name=DATASET, uri="oss://photos/")
    deadline = time.monotonic() + 20
    while True:
        binding = client.call(
            bindings.GetBinding, project_name=PROJECT, dataset_name=DATASET, uri="oss://photos/"
        ).binding
        if binding is not None and binding.phase != "FullScanning":
            break
        assert time.monotonic() < deadline, "the first scan did not end"
        time.sleep(0.1)
    listed = client.call(query.SimpleQuery, project_name=PROJECT, dataset_name=DATASET, max_results=100).files or []
    assert sorted(f.uri or "" for f in listed) == ["oss://photos/a.png", "oss://photos/a.png.faces.json"]


def test_an_object_swapped_between_check_and_open_is_refused(
    oss_root: Path, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names resolved to a regular file in visible folders; before the open, the file becomes a FIFO or a
    link to a hidden file, or its folder a link to outside: the open refuses each (it would otherwise block, or
    serve what was never checked)."""
    resolve = oss.resolve
    folder = tree / "in"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "swap.jpg").write_bytes(b"outside the root")

    def swap(make: str) -> None:
        victim = folder / "swap.jpg"
        if make == "fifo":
            victim.unlink()
            os.mkfifo(victim)
        elif make == "link":
            victim.unlink()
            victim.symlink_to("../.hidden.jpg")
        else:
            folder.rename(tree / "in-moved")
            folder.symlink_to(outside, target_is_directory=True)

    for make in ("fifo", "link", "folder"):
        if folder.is_symlink():
            folder.unlink()
        folder.mkdir(exist_ok=True)
        for leftover in folder.iterdir():
            leftover.unlink()
        (folder / "swap.jpg").write_bytes(b"checked")

        def racing(root: Path, names: list[str], make: str = make) -> tuple[list[str], os.stat_result]:
            found = resolve(root, names)
            swap(make)
            return found

        monkeypatch.setattr(oss, "resolve", racing)
        started = time.monotonic()
        with pytest.raises(oss.NotAnObjectError):
            oss.open_object(oss_root, "photos", "in/swap.jpg").close()
        assert time.monotonic() - started < 2, make
        monkeypatch.setattr(oss, "resolve", resolve)
        release(folder / "swap.jpg")


def test_get_streams_and_head_does_not_read(emulator: Emulator, tree: Path) -> None:
    """A GET is the object, sent in chunks (several here); a HEAD is its stat (size, time and identity)."""
    big = tree / "big.bin"
    with big.open("wb") as f:
        for i in range(40):
            f.write(bytes([i]) * 100_000)
    with httpx.Client(trust_env=False, timeout=10) as http:
        got = http.get(presigned(emulator.endpoint, "photos", "big.bin"))
        assert got.status_code == 200 and got.content == big.read_bytes()
        head = http.head(presigned(emulator.endpoint, "photos", "big.bin", method="HEAD"))
        assert head.status_code == 200 and head.headers["content-length"] == str(big.stat().st_size)
        assert head.headers["etag"] == got.headers["etag"]
        big.write_bytes(b"changed")  # another size: another ETag
        again = http.head(presigned(emulator.endpoint, "photos", "big.bin", method="HEAD"))
        assert again.headers["etag"] != head.headers["etag"] and again.headers["content-length"] == "7"


def test_sigterm_stops_the_emulator_with_requests_pending(tmp_path: Path) -> None:
    """Reads of a FIFO and image work in flight and queued: SIGTERM still ends the process in seconds."""
    from PIL import Image

    root = tmp_path / "oss"
    (root / "photos").mkdir(parents=True)
    os.mkfifo(root / "photos" / "pipe.jpg")
    Image.new("L", (6000, 6000), 128).save(root / "photos" / "big.png")
    try:
        with emulator_process(tmp_path / "imm.db", root) as (proc, endpoint):
            process = [("x-oss-process", "image/resize,m_fixed,w_4000,h_4000,limit_0")]
            urls = [presigned(endpoint, "photos", "pipe.jpg") for _ in range(10)]
            urls += [presigned(endpoint, "photos", "big.png", query=process) for _ in range(30)]

            def get(url: str) -> None:
                with contextlib.suppress(httpx.HTTPError):  # the server went away: expected
                    httpx.get(url, trust_env=False, timeout=60)

            threads = [threading.Thread(target=get, args=(u,), daemon=True) for u in urls]
            for t in threads:
                t.start()
            time.sleep(1.0)
            os.kill(proc.pid, signal.SIGTERM)
            started = time.monotonic()
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                pytest.fail("the emulator did not stop within 30 s of SIGTERM")
            assert time.monotonic() - started < 20 and code in (0, 130, -signal.SIGTERM, 128 + signal.SIGTERM)
    finally:
        release(root / "photos" / "pipe.jpg")
