"""Secrets are removed in every encoding they take, from messages, errors and every library's log records."""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import quote, quote_plus

import pytest

from imm_faces.runtime.auth.redaction import MASK, RedactingFilter, Redactor, secret_forms
from imm_faces.runtime.errors import ImmError, TransportError

SECRET = "Ab+/c=d e&f%g"  # characters that every encoding changes


def encodings(secret: str) -> list[str]:
    once = quote(secret, safe="")
    lower = re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), once)
    return [
        secret,
        once,
        quote(once, safe=""),
        quote_plus(secret, safe=""),
        lower,
        quote(lower, safe=""),
        base64.b64encode(secret.encode()).decode(),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
    ]


@pytest.mark.parametrize("form", encodings(SECRET))
def test_every_encoding_is_redacted(form: str) -> None:
    redact = Redactor()
    redact.add([SECRET])
    out = redact(f"before {form} after")
    assert out == f"before {MASK} after"
    assert form in secret_forms(SECRET)


def test_security_token_parameter_is_blanked_even_when_unknown() -> None:
    redact = Redactor()
    url = "POST http://h/?AccessKeyId=AK&SecurityToken=CAIS%2Btok%3D&Signature=x"
    assert redact(url) == f"POST http://h/?AccessKeyId=AK&SecurityToken={MASK}&Signature=x"
    twice = "GET&%2F&AccessKeyId%3DAK%26SecurityToken%3DCAIS%252Btok%26Timestamp%3D1"
    assert redact(twice) == f"GET&%2F&AccessKeyId%3DAK%26SecurityToken%3D{MASK}%26Timestamp%3D1"
    header = "(b'x-acs-security-token', b'CAIStok')"
    assert "CAIStok" not in redact(header)


def test_short_values_are_not_treated_as_secrets() -> None:
    redact = Redactor()
    redact.add(["b", "secret", "a-real-secret-value"])
    assert redact("a bob keeps a secret, not a-real-secret-value") == f"a bob keeps a secret, not {MASK}"


def test_errors_are_redacted_when_made() -> None:
    from imm_faces.runtime.auth.redaction import REDACTOR

    REDACTOR.add(["process-wide-secret-1"])
    err = ImmError("SignatureDoesNotMatch", "expected process-wide-secret-1", status=400)
    assert "process-wide-secret-1" not in str(err) and "process-wide-secret-1" not in err.message
    assert "process-wide-secret-1" not in repr(TransportError("x process-wide-secret-1"))


def test_filter_redacts_message_arguments_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    redact = Redactor()
    redact.add(["log-secret-value"])
    logger = logging.getLogger("tests.redaction")
    handler_filter = RedactingFilter(redact)
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.DEBUG, logger="tests.redaction"):
            logger.debug("url %s", "http://h/?x=log-secret-value")
            try:
                raise ValueError("boom log-secret-value")
            except ValueError:
                logger.exception("failed")
    finally:
        caplog.handler.removeFilter(handler_filter)
    assert "log-secret-value" not in caplog.text
    assert caplog.text.count(MASK) >= 2 and "ValueError" in caplog.text
