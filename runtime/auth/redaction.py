"""Keeping secrets out of every text this project or its libraries write.

:data:`REDACTOR` knows every secret the process's clients were given (a client registers its credentials)
in every form it can take on the wire or in a message: raw, percent-encoded once or twice (the legacy RPC
signature's string-to-sign encodes the query a second time, and services echo it back), base64 and
JSON-escaped. It also blanks any ``SecurityToken=`` query value whatever its encoding, known or not.

:class:`RedactingFilter` applies it to log records. The client attaches one to the loggers of the libraries
it drives (httpx logs each request URL, which carries ``SecurityToken=`` under the RPC signature), and
``imm-faces`` attaches one to its log handler, which covers every library's records.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "<redacted>"
MIN_SECRET_LENGTH = 8
"""Shorter values are not registered: blanking every "b" of every message would make errors unreadable, and
real secrets are long (an AccessKey secret has 30 characters, an STS token hundreds)."""
_LOWER_HEX = re.compile(r"%[0-9A-F]{2}")
# A SecurityToken query parameter, its '=' raw or percent-encoded once or twice, up to the next separator.
_TOKEN_PARAM = re.compile(r"(SecurityToken(?:=|%3D|%253D))(?:(?!%26|%2526)[^&\s\"'<>,;)\]])+", re.IGNORECASE)
_TOKEN_HEADER = re.compile(r"(x-acs-security-token['\"]?\s*[:=,]\s*b?['\"]?)[^'\"\s,)]+", re.IGNORECASE)


def secret_forms(secret: str) -> set[str]:
    """Every way ``secret`` can appear in text: raw, percent-encoded once or twice (RFC 3986 and form style,
    upper- or lower-case hex), base64 (standard and URL-safe, padded or not) and JSON-escaped."""
    forms = {secret}
    for _ in range(2):
        for form in list(forms):
            forms |= {quote(form, safe=""), quote(form, safe="-_.~"), quote_plus(form, safe="")}
        forms |= {_LOWER_HEX.sub(lambda m: m.group(0).lower(), f) for f in list(forms)}
    raw = secret.encode()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms |= {text, text.rstrip("=")}
    forms.add(json.dumps(secret)[1:-1])
    return {f for f in forms if f}


class Redactor:
    """Replaces known secrets (in all their forms) and any SecurityToken value with :data:`MASK`."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._forms: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH} - self._secrets
        if not new:
            return
        with self._lock:
            self._secrets |= new
            forms = set(self._forms)
            for secret in new:
                forms |= secret_forms(secret)
            self._forms = tuple(sorted(forms, key=len, reverse=True))  # longest first: no partial leftovers

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        if "ecurity" in text or "ECURITY" in text:
            text = _TOKEN_PARAM.sub(rf"\1{MASK}", text)
            text = _TOKEN_HEADER.sub(rf"\1{MASK}", text)
        return text


REDACTOR = Redactor()
"""The process-wide redactor: every client adds its credentials' secrets."""


class RedactingFilter(logging.Filter):
    """Redact a record's message and its traceback text before any handler formats it."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record with bad arguments: keep its template only
            message = str(record.msg)
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


LIBRARY_LOGGERS = (
    "httpx",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.connection",
    "httpcore.proxy",
    "imm_faces.client",
)
_installed = False


def install_library_filters() -> None:
    """Attach a :class:`RedactingFilter` to the loggers of the libraries the client drives (once)."""
    global _installed  # noqa: PLW0603 - one process-wide installation
    if _installed:
        return
    shared = RedactingFilter()
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(shared)
    _installed = True
