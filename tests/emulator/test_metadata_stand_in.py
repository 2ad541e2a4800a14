"""The ECS metadata stand-in the credential tests use: a malformed token request is a 400, never a dropped
connection, and the tokens it hands out do not pile up."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from imm_faces.emulator.metadata import MetadataStandIn
from imm_faces.emulator.server import Emulator

TTL_HEADER = b"X-aliyun-ecs-metadata-token-ttl-seconds"


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetadataStandIn]:
    root = tmp_path_factory.mktemp("metadata")
    with Emulator(db=":memory:", oss_root=root / "oss") as emu, MetadataStandIn(emu.sts) as md:
        yield md


def raw_put(md: MetadataStandIn, ttl: bytes) -> bytes:
    """A token PUT whose TTL header carries these exact bytes (httpx would refuse to send some of them)."""
    host, port = md.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n"
            + TTL_HEADER
            + b": "
            + ttl
            + b"\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


@pytest.mark.parametrize("ttl", [b"\xb2", b"1\xb2", b"\xd9\xa1", b"0", b"21601", b"9" * 5000, b"-5", b""])
def test_a_malformed_ttl_is_a_400(stand_in: MetadataStandIn, ttl: bytes) -> None:
    answer = raw_put(stand_in, ttl)
    assert answer.startswith(b"HTTP/1.0 400 ") or answer.startswith(b"HTTP/1.1 400 "), answer[:80]


def test_a_good_ttl_gives_a_token_that_reads_credentials(stand_in: MetadataStandIn) -> None:
    answer = raw_put(stand_in, b"21600")
    assert b" 200 " in answer.split(b"\r\n", 1)[0]
    token = answer.split(b"\r\n\r\n", 1)[1].decode()
    got = httpx.get(
        stand_in.url + "/latest/meta-data/ram/security-credentials/",
        headers={"X-aliyun-ecs-metadata-token": token},
        trust_env=False,
    )
    assert got.status_code == 200 and got.text == stand_in.role_name


def test_tokens_are_pruned(stand_in: MetadataStandIn) -> None:
    """Half as many token requests again as MAX_TOKENS leave at most MAX_TOKENS (the newest); the newest works."""
    with httpx.Client(base_url=stand_in.url, trust_env=False) as http:
        for _ in range(MetadataStandIn.MAX_TOKENS * 3 // 2):
            last = http.put("/latest/api/token", headers={TTL_HEADER.decode(): "21600"})
            assert last.status_code == 200
        assert stand_in.tokens_held <= MetadataStandIn.MAX_TOKENS
        check = http.get(
            "/latest/meta-data/ram/security-credentials/", headers={"X-aliyun-ecs-metadata-token": last.text}
        )
        assert check.status_code == 200
