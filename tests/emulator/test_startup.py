"""``imm-faces emulator`` as a process: start-up failures name the problem and the fix (exit 2, no traceback,
never "listening"), keys come from a file or the environment, and a nonce survives a hard kill."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from imm_faces.emulator.cli import KEYS_ENV
from imm_faces.runtime.cli.main import main
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import datasets, projects
from tests.conftest import CREDS
from tests.emulator.signing_kit import send, v3
from tests.processes import free_port

COMMAND = [sys.executable, "-m", "imm_faces.runtime.cli.main", "emulator"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KEYS_ENV}
    return {**env, **extra}


def _sqlite_file(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * 2000)
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _cases(tmp_path: Path, port_in_use: int) -> dict[str, tuple[list[str], dict[str, str], list[str]]]:
    """name -> (arguments, environment, phrases the one-line error must contain)."""
    (tmp_path / "adir").mkdir()
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("these are my notes, not a database\n" * 20)
    truncated = _sqlite_file(tmp_path / "truncated.db")
    with truncated.open("r+b") as f:
        f.truncate(truncated.stat().st_size // 2)
    corrupt = _sqlite_file(tmp_path / "corrupt.db")
    with corrupt.open("r+b") as f:
        f.seek(8192)
        f.write(b"\x5a" * 12288)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    keys = tmp_path / "keys"
    keys.write_text("# accepted keys\nid-1:secret-1\nTOP-SECRET-WITHOUT-A-COLON\n")
    db = ["--db", str(tmp_path / "ok.db")]
    return {
        "db is a directory": (["--db", str(tmp_path / "adir")], {}, ["is a directory", "path of a file"]),
        "db directory missing": (["--db", str(tmp_path / "no" / "x.db")], {}, ["does not exist", "mkdir -p"]),
        "db is not SQLite": (["--db", str(not_sqlite)], {}, ["is not a SQLite database", "move the file away"]),
        "db truncated": (["--db", str(truncated)], {}, ["corrupt or truncated", "restore it"]),
        "db corrupt": (["--db", str(corrupt)], {}, ["corrupt or truncated", "restore it"]),
        "oss root is a file": (
            [*db, "--oss-root", str(a_file)],
            {},
            ["is a file, not a directory", "give a directory"],
        ),
        "oss root cannot be created": ([*db, "--oss-root", str(a_file / "sub")], {}, ["cannot be created"]),
        "port in use": ([*db, "--port", str(port_in_use)], {}, ["already in use", "choose another --port"]),
        "bad port": ([*db, "--port", "70000"], {}, ["not a port number"]),
        "key file line": ([*db, "--access-key-file", str(keys)], {}, [f"{keys}, line 3", "ID:SECRET"]),
        "key file missing": ([*db, "--access-key-file", str(tmp_path / "nokeys")], {}, ["cannot be read"]),
        "key in the environment": (db, {KEYS_ENV: "ok-id:ok-secret TOP-SECRET-WITHOUT-A-COLON"}, ["key #2"]),
    }


def _check(name: str, code: int, out: str, err: str, phrases: list[str]) -> None:
    assert code == 2, (name, out, err)
    assert "Traceback" not in err and "listening" not in out, (name, out, err)
    assert err.startswith("imm-faces emulator: error: ") and err.count("\n") == 1, (name, err)
    for phrase in phrases:
        assert phrase in err, (name, err)
    assert "TOP-SECRET" not in out + err, name  # a malformed key is never echoed


def test_start_up_failures_name_the_problem_and_the_fix(
    tmp_path: Path, port_in_use: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, (args, env, phrases) in _cases(tmp_path, port_in_use).items():
        monkeypatch.delenv(KEYS_ENV, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code = main(["emulator", *args])
        out, err = capsys.readouterr()
        _check(name, code, out, err, phrases)


def test_start_up_failures_of_the_command(tmp_path: Path, port_in_use: int) -> None:
    """The same through ``python -m imm_faces.runtime.cli.main emulator`` (a few cases: each is an interpreter)."""
    cases = _cases(tmp_path, port_in_use)
    chosen = ("db corrupt", "port in use")
    # All at once: each is a fresh interpreter, and they fail before serving.
    procs = {
        name: subprocess.Popen(
            [*COMMAND, *cases[name][0]],
            env=_env(**cases[name][1]),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in chosen
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        _check(name, proc.returncode, out, err, cases[name][2])


def test_a_read_only_db_is_a_start_up_error(tmp_path: Path) -> None:
    db = _sqlite_file(tmp_path / "ro.db")
    # We run as root, whom file modes do not stop: make the file immutable instead.
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        result = subprocess.run(
            [*COMMAND, "--db", str(db)], env=_env(), capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "cannot be written" in result.stderr and "writable" in result.stderr, result.stderr
    assert "listening" not in result.stdout


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``imm-faces emulator ARGS`` until the block ends; yields the process and its endpoint (from "listening")."""
    proc = subprocess.Popen(
        [*COMMAND, *args], env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on" in first, (first, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        endpoint = first.rsplit(" ", 1)[1].strip()
        # No retrying: "listening" is printed once the port is bound, so this connects at once (and is answered
        # as soon as the server loop runs).
        assert httpx.get(endpoint + "/-/ready", trust_env=False, timeout=30).status_code == 200
        yield proc, endpoint
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def test_keys_from_a_file_and_the_environment(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# the team's emulator keys\nfile-id:file-secret-0123\n\nsts-id:sts-secret-4567:sts-token\n")
    env = _env(**{KEYS_ENV: "env-id:env-secret-89ab, env-id-2:env-secret-cdef"})
    with running("--access-key-file", str(keys), env=env) as (proc, endpoint):
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        accepted = [
            Credentials("file-id", "file-secret-0123"),
            Credentials("sts-id", "sts-secret-4567", "sts-token"),
            Credentials("env-id", "env-secret-89ab"),
            Credentials("env-id-2", "env-secret-cdef"),
        ]
        for creds in accepted:
            assert creds.access_key_secret.encode() not in cmdline
            with ImmClient(endpoint=endpoint, credentials=creds) as imm:
                assert imm.call(projects.ListProjects).projects is not None
        with ImmClient(endpoint=endpoint, credentials=CREDS) as imm, pytest.raises(ImmError) as exc:
            imm.call(projects.ListProjects)  # the default key is replaced by those given
        assert exc.value.code == "InvalidAccessKeyId.NotFound"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert not [c for c in accepted if c.access_key_secret in out]  # the banner names the keys, never their secrets


def test_a_write_is_never_replayed_after_a_hard_kill(tmp_path: Path) -> None:
    db, port = str(tmp_path / "imm.db"), str(free_port())
    with running("--db", db, "--port", port) as (proc, endpoint):
        with ImmClient(endpoint=endpoint, credentials=CREDS) as imm:
            imm.call(projects.CreateProject, project_name="kill")
            create = v3(endpoint, "CreateDataset", {"ProjectName": "kill", "DatasetName": "once"})
            assert send(create)[0] == 200
            imm.call(datasets.DeleteDataset, project_name="kill", dataset_name="once")
        proc.kill()  # SIGKILL: no clean shutdown, nothing flushed on the way out
        proc.wait(10)
    with running("--db", db, "--port", port) as (_, endpoint):
        assert send(create)[1].get("Code") == "SignatureNonceUsed"
        with ImmClient(endpoint=endpoint, credentials=CREDS) as imm:
            assert (imm.call(datasets.ListDatasets, project_name="kill").datasets or []) == []
