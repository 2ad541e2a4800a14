"""HTTP helpers every client of this package shares (IMM, STS, the metadata service, OSS): the TLS context and the
reading of an endpoint someone gave. A leaf: it imports nothing of this package but the error types."""

from __future__ import annotations

import functools
import ssl

import httpx

from imm_faces.runtime.errors import ConfigError


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's own default (certifi's CAs, hostname checked; ``trust_env=False`` as our clients use), made once per
    process and shared by every client: loading the CA file costs ~20 ms of CPU per client otherwise."""
    return httpx.create_ssl_context(trust_env=False)


def tls_context_for(base_url: str) -> ssl.SSLContext:
    """The TLS context of a client that talks to ``base_url`` only: :func:`tls_context` for https. A plain-http
    endpoint (the local emulator) never uses TLS, and loading the CA file is ~25 ms of a short run's start-up:
    it gets a context that trusts no certificate at all, through which a TLS connection would fail, never pass
    unverified."""
    return _trusts_nothing() if base_url.startswith("http://") else tls_context()


@functools.cache
def _trusts_nothing() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verification required, hostnames checked, no CA loaded


def explicit_base_url(endpoint: str, what: str) -> str:
    """An endpoint someone gave (``https://`` added when it names no scheme) as a base URL; ``what`` names the
    setting in the error."""
    url = endpoint if "://" in endpoint else f"https://{endpoint}"
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{what}: must be host[:port] or http(s)://host[:port]; got {endpoint!r}")
    return str(parsed.copy_with(path="/", query=None))
