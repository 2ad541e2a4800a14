"""Run the emulator: in-process (tests, ``imm-faces rehearse``) or as ``imm-faces emulator``.

Start-up problems (an unusable ``--db`` or ``--oss-root``, a port in use) raise :class:`StartupError`, which
names the problem and the fix, before anything is served; the listening socket is bound before the emulator
says it listens.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h11
import httpx
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from imm_faces.emulator.analysis import Analyzer, default_analyzer
from imm_faces.emulator.asgi import CLOSE, JSON_CONTENT_TYPE, ASGIApp, new_request_id, render_json
from imm_faces.emulator.auth import Authenticator, NonceLedger
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.front_door import READY_PATH, create_app
from imm_faces.emulator.images import return_freed_memory
from imm_faces.emulator.jobs import JobRunner
from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.oss_get import OssObjects
from imm_faces.emulator.ram import Ram, RamConfigError, ServiceRoleReads, principals_of_keys
from imm_faces.emulator.service import ImmService
from imm_faces.emulator.store import ProjectKey, Store
from imm_faces.emulator.sts import StsService
from imm_faces.emulator.wire import REQUEST_THREADS
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.rules import DEFAULT_SERVICE_ROLE

SQLITE_HEADER = b"SQLite format 3\x00"
OSS_READ_THREADS = 8  # ours: OSS signatures, opens and chunk reads
HEAVY_THREADS = 2  # ours: images decoded at once by requests (each within emulator/images.py's decode budget)
GRACEFUL_SECONDS = 5  # on SIGTERM, requests still running after this are dropped (their connections closed)


class StartupError(Exception):
    """The emulator cannot start: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}; {fix}")


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 picks a free port)."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise StartupError(
            f"--host {host} is not an address of this machine ({exc.strerror})",
            "give an IP address or a resolvable name, e.g. 127.0.0.1",
        ) from None
    # proto must be IPPROTO_TCP (not 0): asyncio disables Nagle (TCP_NODELAY) only on such sockets, and without
    # it every keep-alive response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(info[0], socket.SOCK_STREAM, info[2] or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fix = "stop what uses it, or choose another --port (0 picks a free one)"
            raise StartupError(f"port {port} on {host} is already in use", fix) from None
        if exc.errno == errno.EACCES:
            raise StartupError(
                f"not allowed to listen on port {port}", "choose a port above 1023 (0 picks a free one)"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}", "check --host and --port") from None
    return sock


def open_store(db: str | Path) -> Store:
    """Open (or create) the state database, or explain why it cannot be used."""
    if str(db) == ":memory:":
        return Store(db)
    path = Path(db)
    if path.is_dir():
        raise StartupError(f"--db {path} is a directory", "give the path of a file (it is created when missing)")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise StartupError(
            f"--db {path}: the directory {parent} does not exist",
            f"create it (mkdir -p {parent}) or choose another path",
        )
    if path.exists():
        if not path.is_file():
            raise StartupError(f"--db {path} is not a regular file", "give the path of a SQLite file")
        with path.open("rb") as f:
            header = f.read(len(SQLITE_HEADER))
        if header and header != SQLITE_HEADER:
            raise StartupError(
                f"--db {path} is not a SQLite database",
                "give another path, or move the file away to start with an empty state",
            )
    store: Store | None = None
    try:
        check = sqlite3.connect(path)
        try:
            row = check.execute("PRAGMA quick_check(1)").fetchone()
        finally:
            check.close()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(str(row[0] if row else "no answer"))
        store = Store(path)
        with store.tx() as tx:  # a write: a read-only file or directory fails here, not on the first request
            tx.prune_nonces(0)
    except sqlite3.Error as exc:
        if store is not None:
            store.close()
        text = " ".join(str(exc).split())  # quick_check's report spans lines
        if "readonly" in text or "read-only" in text or "unable to open" in text or "disk I/O" in text:
            raise StartupError(
                f"--db {path} cannot be written ({text})",
                f"make the file and its directory {parent} writable (SQLite writes a -wal file "
                "beside it), or choose another path",
            ) from None
        fix = "restore it from a copy, or move it away to start with an empty state"
        raise StartupError(f"--db {path} is corrupt or truncated ({text})", fix) from None
    return store


def prepare_oss_root(root: str | Path) -> Path:
    """The directory standing in for OSS: created when missing; it must be a readable directory."""
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise StartupError(
            f"--oss-root {path} is a file, not a directory", "give a directory (it is created when missing)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"--oss-root {path} cannot be created ({exc.strerror})",
            "create the directory yourself, or give one under a writable parent",
        ) from None
    if not os.access(path, os.R_OK | os.X_OK):
        raise StartupError(f"--oss-root {path} cannot be read", f"allow reading it (chmod u+rx {path})")
    return path


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, answering a request it cannot parse with an IMM error body."""

    def send_400_response(self, msg: str) -> None:
        error = ApiError("InvalidParameter.Format", detail="The HTTP request is malformed.")
        data = render_json(error.body(new_request_id(), "-"))
        headers = [(b"content-type", JSON_CONTENT_TYPE), CLOSE, (b"content-length", str(len(data)).encode())]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=data)) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()


class Emulator:
    """An IMM emulator bound to ``host:port`` (port 0 picks a free one). ``start()`` returns when ready.

    Raises :class:`StartupError` when the database, the OSS root or the port cannot be used."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str | Path = ":memory:",
        oss_root: str | Path | None = None,
        access_keys: Iterable[Credentials] = (DEFAULT_ACCESS_KEY,),
        analyzer: Analyzer | None = None,
        workers: int | None = None,
        ram: Ram | None = None,
    ) -> None:
        self.host = host
        return_freed_memory()  # a large decode's memory goes back to the system once it is done
        self.keys = {k.access_key_id: k for k in access_keys}
        self.ram = ram or Ram()  # RAM: policies, roles, OIDC providers (emulator/ram.py, --ram-config)
        try:
            principals_of_keys(self.ram, self.keys)
        except RamConfigError as exc:
            raise StartupError(f"--ram-config: {exc}", "attach policies to the keys the emulator is given") from None
        self._tmp = None if oss_root else tempfile.TemporaryDirectory(prefix="imm-oss-")
        self.oss_root = prepare_oss_root(oss_root or self._tmp.name)  # type: ignore[union-attr]
        self.store = open_store(db)
        try:
            self._socket = listen(host, port)
        except StartupError:
            self.store.close()
            raise
        self.port = int(self._socket.getsockname()[1])
        reads = ServiceRoleReads(self.ram, self._service_role).check if self.ram.roles else None
        analyzer = analyzer or default_analyzer()
        self.jobs = JobRunner(self.store, self.oss_root, analyzer, workers=workers, service_reads=reads)
        self.service = ImmService(self.store, self.jobs)
        self.auth = Authenticator(self.keys, NonceLedger(self.store), self.ram)
        self.sts = StsService(self.auth, ram=self.ram)  # STS 2015-04-01 (emulator/sts.py)
        self.app = self._front_door()
        self._server = uvicorn.Server(self._server_config())
        self._thread: threading.Thread | None = None
        self._closed = False

    def _front_door(self) -> ASGIApp:
        """The app, with its pools: IMM operations; OSS signatures, opens and reads; and heavy image work (OSS image
        processing, SearchImageFigureCluster's analysis), small so that however many heavy requests wait, the
        others are answered (STS runs on anyio's threads; indexing on the job runner's pool)."""
        self._requests = ThreadPoolExecutor(max_workers=REQUEST_THREADS, thread_name_prefix="imm-request")
        self._oss_reads = ThreadPoolExecutor(max_workers=OSS_READ_THREADS, thread_name_prefix="oss-read")
        self._heavy = ThreadPoolExecutor(max_workers=HEAVY_THREADS, thread_name_prefix="imm-heavy")
        objects = OssObjects(
            self.oss_root, self.auth.key, self.auth.authorize_object_read, reads=self._oss_reads, images=self._heavy
        )
        return create_app(self.service, self.auth, objects, self.sts, executor=self._requests, heavy=self._heavy)

    def _server_config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http=_Protocol,
            ws="none",
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )

    def _service_role(self, project: str) -> str | None:
        with self.store.snapshot() as tx:
            doc = tx.get(ProjectKey(project))
        return None if doc is None else str(doc.get("ServiceRole") or DEFAULT_SERVICE_ROLE)

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve(self) -> None:
        """Serve in the calling thread until interrupted: SIGTERM shuts down exactly as Ctrl-C does (uvicorn
        stops serving, then re-raises the signal; it ends here as KeyboardInterrupt, after the state is closed
        and its WAL checkpointed, instead of killing the process with the database still open)."""

        def interrupt(_signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, interrupt) if main else None
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.close()
            if main:
                signal.signal(signal.SIGTERM, previous)

    def start(self, timeout: float = 10.0) -> Emulator:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="imm-emulator", daemon=True
        )
        self._thread.start()
        wait_ready(self.endpoint, timeout)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._socket.close()
        # Work not started is dropped; what runs ends by itself (every read and decode is bounded).
        for pool in (self._requests, self._oss_reads, self._heavy):
            pool.shutdown(wait=True, cancel_futures=True)
        self.jobs.close()
        self.auth.nonces.close()
        self.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_ready(endpoint: str, timeout: float = 10.0) -> None:
    """Poll the readiness endpoint until it answers (raise TimeoutError otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(endpoint + READY_PATH, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the emulator at {endpoint} did not become ready within {timeout}s")
        time.sleep(0.05)
