"""``--deadline`` is a wall-clock bound whatever a server does, and the credential chain's answers are bounded in
time and size: a server that drips its answer a byte at a time (which beats every per-read timeout) or sends
200 MiB cannot hold ``imm-faces verify`` past its deadline or fill its memory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from imm_faces.runtime import bounded
from imm_faces.runtime.auth import sources
from imm_faces.runtime.auth.sts import StsError
from imm_faces.runtime.cli.main import main as imm_faces
from imm_faces.runtime.credentials import resolve_provider

DRIP_SECONDS = 1.0  # one byte a second: far under every per-read timeout used here
GIVE_UP_SECONDS = 45  # a drip server stops by itself after this (so that a test of a broken bound ends)
CREDENTIAL_ENV = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALICLOUD_ACCESS_KEY",
    "ALICLOUD_SECRET_KEY",
    "ALICLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_ECS_METADATA",
    "ALICLOUD_ECS_ROLE_NAME",
    "ALIBABA_CLOUD_PROFILE",
)


@contextmanager
def server(answer: str) -> Iterator[str]:
    """A loopback HTTP server answering every request after reading its head: ``drip`` sends a response one byte
    a second (never finishing within GIVE_UP_SECONDS), ``huge`` sends 200 MiB of body with no length."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                if answer == "drip":
                    started = time.monotonic()
                    for byte in b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" * 100:
                        if stop.is_set() or time.monotonic() - started > GIVE_UP_SECONDS:
                            return
                        conn.sendall(bytes([byte]))
                        time.sleep(DRIP_SECONDS)
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n")
                    zeros = b"0" * (1 << 20)
                    for _ in range(200):
                        conn.sendall(zeros)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def outputs(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps({"project_name": "p", "dataset_name": "d", "region": "cn-hangzhou", "endpoint": endpoint})
    )
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_CONFIG_FILE", str(tmp_path / "no-aliyun-config.json"))
    return monkeypatch


def run_verify(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, float, dict[str, object]]:
    started = time.monotonic()
    code = imm_faces(["verify", *args, "--json", "--quiet"])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    return code, elapsed, json.loads(out) if out.strip() else {}


def deadline_failed(report: dict[str, object]) -> bool:
    checks = report.get("checks")
    assert isinstance(checks, list), report
    return any(c["id"] == "verify.deadline" and c["failures"] for c in checks)


def test_a_dripping_imm_endpoint_does_not_outlast_the_deadline(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "id")
    clean_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "a-secret-of-some-length")
    with server("drip") as endpoint:
        code, elapsed, report = run_verify(
            ["--outputs", str(outputs(tmp_path, endpoint)), "--deadline", "6", "--timeout", "3"], capsys
        )
    assert elapsed < 6 + 4, elapsed
    assert code == 1 and deadline_failed(report), report


def test_a_dripping_credentials_uri_does_not_outlast_the_deadline(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with server("drip") as uri:
        clean_env.setenv("ALIBABA_CLOUD_CREDENTIALS_URI", uri)
        code, elapsed, report = run_verify(
            ["--outputs", str(outputs(tmp_path, "http://127.0.0.1:9")), "--deadline", "6", "--timeout", "3"], capsys
        )
    assert elapsed < 6 + 4, elapsed
    assert code == 1 and deadline_failed(report), report


def test_a_credentials_fetch_alone_is_bounded_in_wall_clock_time() -> None:
    """Without a deadline, the credentials URI has CREDENTIALS_URI_SECONDS and the metadata service
    METADATA_SECONDS per exchange; under a deadline, what is left of it."""
    with server("drip") as uri:
        for env, limit in (
            ({"ALIBABA_CLOUD_CREDENTIALS_URI": uri}, sources.CREDENTIALS_URI_SECONDS),
            ({"ALIBABA_CLOUD_ECS_METADATA": "role"}, 3 * sources.METADATA_SECONDS),
        ):
            source = resolve_provider(env=env, metadata_url=uri, cli_config=Path("/nonexistent"))
            started = time.monotonic()
            with pytest.raises(StsError, match="WallClockTimeout"):
                source.get()
            assert time.monotonic() - started < limit + 2
            with bounded.deadline(time.monotonic() + 2):
                started = time.monotonic()
                with pytest.raises(StsError, match="WallClockTimeout"):
                    resolve_provider(env=env, metadata_url=uri, cli_config=Path("/nonexistent")).get()
                assert time.monotonic() - started < 2 + bounded.GRACE_SECONDS + 1.5


def test_a_huge_answer_is_refused_unread() -> None:
    """200 MiB from a credentials URI: refused past MAX_ANSWER_BYTES, in a fraction of the time reading it takes."""
    with server("huge") as uri:
        started = time.monotonic()
        with pytest.raises(StsError, match="TooLargeError"):
            resolve_provider(env={"ALIBABA_CLOUD_CREDENTIALS_URI": uri}, cli_config=Path("/nonexistent")).get()
        assert time.monotonic() - started < 5
        with httpx.Client(trust_env=False) as http, pytest.raises(bounded.TooLargeError):
            bounded.send(http, http.build_request("GET", uri), seconds=10, max_bytes=sources.MAX_ANSWER_BYTES)


PEAK_AT_EXIT = """
import atexit, sys
from pathlib import Path
atexit.register(lambda: sys.stderr.write(next(l for l in Path("/proc/self/status").read_text().splitlines()
                                              if l.startswith("VmHWM")) + "\\n"))
from imm_faces.runtime.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_verify_against_a_huge_credentials_answer_stays_small(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """The whole `imm-faces verify` process: its peak RSS (VmHWM, which it reports as it exits: a child's
    ru_maxrss would count the parent it was forked from) stays far below the 200 MiB sent."""
    with server("huge") as uri:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_ENV}
        env.update(ALIBABA_CLOUD_CREDENTIALS_URI=uri, ALIBABA_CLOUD_CONFIG_FILE=str(tmp_path / "none.json"))
        outputs_file = outputs(tmp_path, "http://127.0.0.1:9")
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_AT_EXIT,
                "verify",
                "--outputs",
                str(outputs_file),
                "--deadline",
                "20",
                "--quiet",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2 and "TooLargeError" in done.stderr, done.stderr
    peak_kib = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
    assert peak_kib < 150 * 1024, f"peak RSS {peak_kib // 1024} MiB"


def test_a_dripping_sts_is_bounded_too() -> None:
    from imm_faces.runtime.auth.sts import GET_CALLER_IDENTITY, StsClient
    from imm_faces.runtime.credentials import Credentials

    with server("drip") as endpoint, bounded.deadline(time.monotonic() + 2):
        started = time.monotonic()
        with pytest.raises(StsError, match="WallClockTimeout"):
            StsClient(endpoint + "/").call(GET_CALLER_IDENTITY, GET_CALLER_IDENTITY.request(), Credentials("i", "s"))
        assert time.monotonic() - started < 2 + bounded.GRACE_SECONDS + 1.5
