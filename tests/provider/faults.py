"""A loopback HTTP proxy in front of the emulator: it counts IMM requests by action (the ``x-acs-action``
header) and fails the actions a test chooses, with an HTTP 500 or by closing the connection unanswered (what a
network failure looks like to the client). One request per connection (it answers ``Connection: close``)."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections import Counter
from typing import Literal
from urllib.parse import urlsplit

Fault = Literal["500", "drop"]
SERVER_ERROR = b'{"Code":"InternalError","Message":"injected by the test proxy","RequestId":"proxy-500"}'


def _read_request(sock: socket.socket) -> tuple[bytes, dict[str, str]] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body, headers


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.counts: Counter[str] = Counter()
        self.faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, client: socket.socket) -> None:
        read = _read_request(client)
        if read is None:
            return
        request, headers = read
        action = headers.get("x-acs-action", "")
        with self._lock:
            self.counts[action] += 1
            fault = self.faults.get(action)
        if fault == "drop":
            client.close()  # no answer at all: the client sees the connection closed
            return
        if fault == "500":
            head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nConnection: close\r\n"
            client.sendall(head + b"Content-Length: %d\r\n\r\n%s" % (len(SERVER_ERROR), SERVER_ERROR))
            return
        with socket.create_connection(self.upstream, timeout=60) as upstream:
            upstream.sendall(request)
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
