"""Run the emulator: in-process (tests, ``imm-faces rehearse``) or as ``imm-faces emulator``."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import uvicorn

from imm_faces.emulator.analysis import Analyzer, default_analyzer
from imm_faces.emulator.auth import Authenticator
from imm_faces.emulator.jobs import JobRunner
from imm_faces.emulator.service import ImmService
from imm_faces.emulator.store import Store
from imm_faces.emulator.wire import READY_PATH, create_app
from imm_faces.runtime.credentials import Credentials

DEFAULT_ACCESS_KEY = Credentials("emulator-access-key-id", "emulator-access-key-secret")
"""Credentials every emulator accepts unless ``--access-key`` replaces them (documented in the README)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Emulator:
    """An IMM emulator bound to ``host:port`` (port 0 picks a free one). ``start()`` returns when ready."""

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
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._tmp = None if oss_root else tempfile.TemporaryDirectory(prefix="imm-oss-")
        self.oss_root = Path(oss_root or self._tmp.name)  # type: ignore[union-attr]
        self.oss_root.mkdir(parents=True, exist_ok=True)
        self.keys = {k.access_key_id: k for k in access_keys}
        self.store = Store(db)
        self.jobs = JobRunner(self.store, self.oss_root, analyzer or default_analyzer(), workers=workers)
        self.service = ImmService(self.store, self.jobs)
        self.app = create_app(self.service, Authenticator(self.keys))
        config = uvicorn.Config(self.app, host=host, port=self.port, log_level="warning", access_log=False,
                                lifespan="off")  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def serve(self) -> None:
        """Serve in the calling thread until interrupted."""
        try:
            self._server.run()
        finally:
            self.close()

    def start(self, timeout: float = 10.0) -> Emulator:
        self._thread = threading.Thread(target=self._server.run, name="imm-emulator", daemon=True)
        self._thread.start()
        wait_ready(self.endpoint, timeout)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.close()

    def close(self) -> None:
        self.jobs.close()
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
