"""The emulator's gateway rules, one by one, on the Authenticator itself (no server: fast and exact).

Every rule a real gateway enforces must refuse the request that breaks it with IMM's error code: replayed
nonces, clock skew, unsigned ``x-acs-*`` headers, the STS token and its AccessKeyId, the body hash, V2's
required parameters, duplicated parameters; and a request that keeps them all is accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from imm_faces.emulator.auth import (
    CLOCK_SKEW_SECONDS,
    MAX_PARAMETERS,
    Authenticator,
    IncomingRequest,
    NonceLedger,
    check_time,
    parse_params,
)
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.keys import parse_access_key
from imm_faces.emulator.store import Store
from imm_faces.runtime.auth.signing import AcsV3Auth, RpcV2Auth, encode_query
from imm_faces.runtime.credentials import Credentials

KEY = Credentials("AK", "secret")
STS = Credentials("STS.id", "sts-secret", "sts-token")
URL = "http://127.0.0.1:1/"
INCOMPLETE = "The request signature does not conform to Aliyun standards. "  # IncompleteSignature's message


def signed(
    version: str = "v3",
    creds: Credentials = KEY,
    *,
    query: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    nonce: str = "n-1",
    at: datetime | None = None,
    after: Callable[[httpx.Request], None] | None = None,
) -> IncomingRequest:
    """A request signed by the client's own auth flow, as the emulator's wire layer hands it over."""
    url = httpx.URL(URL).copy_with(query=encode_query(query or {"ProjectName": "p"}).encode())
    request = httpx.Request(
        "POST", url, data=form, headers={"x-acs-action": "GetProject", "x-acs-version": "2020-09-30"}
    )
    flow = AcsV3Auth if version == "v3" else RpcV2Auth
    clock = (lambda: at) if at else None
    request = next(flow(creds, clock=clock, nonce=lambda: nonce).auth_flow(request))
    if after:
        after(request)
    return IncomingRequest(
        method=request.method,
        path=request.url.path,
        query=parse_qsl(request.url.query.decode(), keep_blank_values=True),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=request.content,
    )


def refused(auth: Authenticator, request: IncomingRequest) -> ApiError:
    with pytest.raises(ApiError) as caught:
        auth.verify(request)
    return caught.value


@pytest.fixture
def auth() -> Authenticator:
    return Authenticator({KEY.access_key_id: KEY, STS.access_key_id: STS})


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_a_well_signed_request_is_accepted_once(auth: Authenticator, version: str) -> None:
    caller, params = auth.verify(signed(version, query={"ProjectName": "p", "Description": ""}))
    assert (caller.access_key_id, caller.signature_version) == ("AK", version)
    assert params["ProjectName"] == "p" and params["Description"] == ""
    assert refused(auth, signed(version, query={"ProjectName": "p", "Description": ""})).code == "SignatureNonceUsed"
    auth.verify(signed(version, nonce="n-2"))  # a fresh nonce is fine
    auth.verify(signed(version, STS))  # the same nonce under another key is another nonce


@pytest.mark.parametrize("version", ["v3", "v2"])
@pytest.mark.parametrize(
    ("minutes", "code"), [(-16, "InvalidTimeStamp.Expired"), (16, "InvalidTimeStamp.Expired"), (-14, None), (14, None)]
)
def test_the_request_time_must_be_within_fifteen_minutes(
    auth: Authenticator, version: str, minutes: int, code: str | None
) -> None:
    request = signed(version, at=datetime.now(UTC) + timedelta(minutes=minutes))
    if code is None:
        auth.verify(request)
    else:
        assert refused(auth, request).code == code


def test_a_nonce_is_remembered_for_the_whole_window() -> None:
    ledger = NonceLedger()
    auth = Authenticator({KEY.access_key_id: KEY}, ledger)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    auth.verify(signed(at=at))
    assert ledger._seen[("AK", "n-1")] == at.timestamp() + CLOCK_SKEW_SECONDS


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_nonces_reach_the_store_in_the_background_and_expired_ones_are_pruned(tmp_path: Path) -> None:
    store = Store(tmp_path / "imm.db")
    now = time.time()
    ledger = NonceLedger(store)
    try:
        with store.tx() as tx:
            tx.add_nonces([("AK", "stale", now - 10)])  # past its window, already in the store
        assert ledger.use("AK", "fresh", now + 600)
        assert ledger.use("AK", "old", now - 1)  # past its window, in memory

        def stored() -> set[str]:
            with store.snapshot() as tx:
                return {nonce for _, nonce, _ in tx.live_nonces(0)}

        # without flush() or close(): the ledger's own thread writes within NONCE_FLUSH_SECONDS and prunes
        assert _wait_for(lambda: stored() == {"fresh"}), stored()
        assert ("AK", "old") not in ledger._seen and ("AK", "fresh") in ledger._seen
    finally:
        ledger.close()
        store.close()


def test_a_failing_store_is_logged_and_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path / "imm.db")
    ledger = NonceLedger(store)
    store.close()  # every write now fails
    ledger.use("AK", "n", time.time() + 600)
    assert _wait_for(lambda: "recording signature nonces failed" in caplog.text)
    record = next(r for r in caplog.records if r.name == "imm_faces.emulator" and r.levelname == "ERROR")
    assert record.getMessage() == "recording signature nonces failed" and record.exc_info is not None
    ledger._stop.set()
    assert ledger._thread is not None
    ledger._thread.join(5)
    with pytest.raises(Exception):  # noqa: B017 - whatever the closed store raises
        ledger.flush()
    assert [nonce for _, nonce, _ in ledger._pending] == ["n"]  # kept for the next round, in order


def test_a_flush_that_fails_keeps_the_nonces_recorded_meanwhile_too() -> None:
    """The rows taken for a failed write go back in front of the ones recorded while it was failing."""

    class FailingStore:
        def tx(self) -> object:
            assert ledger.use("AK", "during", time.time() + 600)  # another request, between the swap and the restore
            raise OSError("disk full")

    ledger = NonceLedger()  # no thread: the test drives flush() itself
    ledger._store = FailingStore()  # type: ignore[assignment]
    assert ledger.use("AK", "first", time.time() + 600) and ledger.use("AK", "second", time.time() + 600)
    with pytest.raises(OSError, match="disk full"):
        ledger.flush()
    assert [nonce for _, nonce, _ in ledger._pending] == ["first", "second", "during"]


def test_the_ledgers_writer_is_a_daemon_thread(tmp_path: Path) -> None:
    """A ledger nobody closed must not keep the interpreter alive at exit (the writer loops until close())."""
    store = Store(tmp_path / "imm.db")
    ledger = NonceLedger(store)
    try:
        assert ledger._thread is not None and ledger._thread.daemon and ledger._thread.is_alive()
        assert ledger._thread.name == "imm-nonces"  # how it shows in thread dumps
    finally:
        ledger.close()
        store.close()
    assert not ledger._thread.is_alive()


def test_a_ledger_without_a_store_closes() -> None:
    ledger = NonceLedger()
    assert ledger.use("AK", "n", time.time() + 60) and not ledger.use("AK", "n", time.time() + 60)
    ledger.close()


def test_nonces_survive_a_restart_and_expire(tmp_path: Path) -> None:
    store = Store(tmp_path / "imm.db")
    ledger = NonceLedger(store)
    now = time.time()
    assert ledger.use("AK", "kept", now + 600)
    assert ledger.use("AK", "old", now - 1)
    ledger.close()
    again = NonceLedger(store)
    assert not again.use("AK", "kept", now + 600)  # read back from the store
    assert again.use("AK", "old", now + 600)  # past its window: forgotten
    assert again.use("other", "kept", now + 600)
    again.close()
    store.close()


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_missing_nonce_is_an_incomplete_signature(auth: Authenticator, version: str) -> None:
    error = refused(auth, signed(version, nonce=""))
    assert error.code == "IncompleteSignature" and error.message == INCOMPLETE + "The signature nonce is missing."


def test_v3_every_x_acs_header_and_host_must_be_signed(auth: Authenticator) -> None:
    def add(request: httpx.Request) -> None:
        request.headers["x-acs-extra"] = "added after signing"

    error = refused(auth, signed(after=add))
    assert error.code == "IncompleteSignature" and error.message.endswith("Headers not signed: x-acs-extra.")

    def unsign_host(request: httpx.Request) -> None:
        request.headers["Authorization"] = request.headers["Authorization"].replace(
            "SignedHeaders=host;", "SignedHeaders="
        )

    error = refused(auth, signed(after=unsign_host))
    assert error.message.endswith("Headers not signed: host.")

    def both(request: httpx.Request) -> None:
        add(request)
        unsign_host(request)

    error = refused(auth, signed(after=both))  # every unsigned header is named, sorted, comma-separated
    assert error.message == INCOMPLETE + "Headers not signed: host, x-acs-extra."


def test_v3_a_signed_header_must_be_present(auth: Authenticator) -> None:
    def drop(request: httpx.Request) -> None:
        request.headers["Authorization"] = request.headers["Authorization"].replace(
            "SignedHeaders=", "SignedHeaders=accept;"
        )

    error = refused(auth, signed(after=drop))
    assert error.code == "IncompleteSignature" and error.message.endswith("A signed header is not present.")


def test_v3_form_body_needs_its_content_type_signed(auth: Authenticator) -> None:
    _, params = auth.verify(signed(form={"Description": "from the body"}))
    assert params["Description"] == "from the body"

    def unsign(request: httpx.Request) -> None:
        request.headers["Authorization"] = request.headers["Authorization"].replace("content-type;", "")

    error = refused(auth, signed(form={"Description": "x"}, nonce="n-2", after=unsign))
    assert error.message.endswith("Headers not signed: content-type.")


def test_v3_body_must_match_its_hash(auth: Authenticator) -> None:
    request = signed(form={"Description": "x"})
    request.body = b"Description=y"
    error = refused(auth, request)
    assert error.code == "SignatureDoesNotMatch" and error.message.endswith(
        "x-acs-content-sha256 does not match the body."
    )


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_a_changed_parameter_breaks_the_signature(auth: Authenticator, version: str) -> None:
    request = signed(version)
    request.query = [(k, "other" if k == "ProjectName" else v) for k, v in request.query]
    error = refused(auth, request)
    assert error.code == "SignatureDoesNotMatch" and "server string to sign is:" in error.message


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_sts_token_must_match_the_key(auth: Authenticator, version: str) -> None:
    auth.verify(signed(version, STS))
    wrong = Credentials(STS.access_key_id, STS.access_key_secret, "another-token")
    assert refused(auth, signed(version, wrong, nonce="n-2")).code == "InvalidSecurityToken.Mismatch"
    missing = Credentials(STS.access_key_id, STS.access_key_secret)
    assert refused(auth, signed(version, missing, nonce="n-3")).code == "InvalidSecurityToken.Mismatch"
    extra = Credentials(KEY.access_key_id, KEY.access_key_secret, "a-token")
    assert refused(auth, signed(version, extra, nonce="n-4")).code == "InvalidSecurityToken.Mismatch"


def test_v3_sts_access_key_header_must_name_the_signing_key(auth: Authenticator) -> None:
    def swap(request: httpx.Request) -> None:
        request.headers["x-acs-accesskey-id"] = "AK"

    request = signed("v3", STS, after=swap)
    # the signature is over the swapped header and the token is right: only the AccessKeyId rule refuses it
    auth2 = Authenticator({"STS.id": STS, "AK": Credentials("AK", "sts-secret", "sts-token")})
    assert refused(auth2, request).code == "InvalidSecurityToken.Mismatch"


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_unknown_and_expired_keys(auth: Authenticator, version: str) -> None:
    assert refused(auth, signed(version, Credentials("nobody", "x"))).code == "InvalidAccessKeyId.NotFound"
    expired = Credentials("STS.old", "s", "t", expiration=time.time() - 1)
    auth.issue(expired)
    assert refused(auth, signed(version, expired)).code == "InvalidSecurityToken.Expired"
    fresh = Credentials("STS.new", "s", "t", expiration=time.time() + 60)
    auth.issue(fresh)
    auth.verify(signed(version, fresh))


def test_issue_forgets_keys_expired_more_than_an_hour_ago(auth: Authenticator) -> None:
    auth.issue(Credentials("STS.long-gone", "s", "t", expiration=time.time() - 3600.5))
    auth.issue(Credentials("STS.recent", "s", "t", expiration=time.time() - 3500))
    auth.issue(Credentials("STS.next", "s", "t", expiration=time.time() + 60))
    assert set(auth._keys) == {"AK", "STS.id", "STS.recent", "STS.next"}


@pytest.mark.parametrize("name", ["AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp"])
def test_v2_required_parameters(auth: Authenticator, name: str) -> None:
    request = signed("v2")
    request.query = [(k, v) for k, v in request.query if k != name]
    error = refused(auth, request)
    assert error.code == "IncompleteSignature" and error.message.endswith(f"The parameter {name} is missing.")


@pytest.mark.parametrize(("name", "value"), [("SignatureMethod", "HMAC-SHA256"), ("SignatureVersion", "2.0")])
def test_v2_only_hmac_sha1_version_1(auth: Authenticator, name: str, value: str) -> None:
    request = signed("v2")
    request.query = [(k, value if k == name else v) for k, v in request.query]
    assert refused(auth, request).code == "InvalidSignatureMethod"


def test_v2_signature_covers_the_form_body(auth: Authenticator) -> None:
    _, params = auth.verify(signed("v2", form={"Description": "body"}))
    assert params["Description"] == "body"
    request = signed("v2", form={"Description": "body"}, nonce="n-2")
    request.body = b"Description=changed"
    assert refused(auth, request).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_a_parameter_given_twice_is_refused(auth: Authenticator, version: str) -> None:
    request = signed(version, form={"ProjectName": "q"})
    error = refused(auth, request)
    assert error.code == "InvalidParameter.Format"
    assert error.message.endswith("The parameter ProjectName is given more than once.")


def test_which_signature_a_request_claims(auth: Authenticator) -> None:
    assert Authenticator.signed_by(signed("v3")) == "v3"
    assert Authenticator.signed_by(signed("v2")) == "v2"
    bare = IncomingRequest("POST", "/", [("Action", "GetProject")], {"host": "h"}, b"")
    assert Authenticator.signed_by(bare) is None
    error = refused(auth, bare)
    assert error.code == "IncompleteSignature" and error.message.endswith(
        "No Authorization header and no Signature parameter."
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("ACS3-HMAC-SHA256 Credential=AK", "IncompleteSignature"),
        ("ACS3-RSA-SHA256 Credential=AK,SignedHeaders=host,Signature=x", "InvalidSignatureMethod"),
    ],
)
def test_malformed_authorization(auth: Authenticator, value: str, code: str) -> None:
    def replace(request: httpx.Request) -> None:
        request.headers["Authorization"] = value

    error = refused(auth, signed(after=replace))
    assert error.code == code
    if code == "IncompleteSignature":
        assert error.message == INCOMPLETE + "The Authorization header is malformed."


def test_request_time_parsing() -> None:
    now = int(time.time())
    assert check_time(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))) == float(now)
    bad = [
        ("2024-13-01T00:00:00Z", "InvalidTimeStamp.Format"),
        ("2024-01-01 00:00:00", "InvalidTimeStamp.Format"),
        ("", "IncompleteSignature"),
        (None, "IncompleteSignature"),
    ]
    for text, code in bad:
        with pytest.raises(ApiError) as caught:
            check_time(text)
        assert caught.value.code == code
    with pytest.raises(ApiError) as caught:
        check_time(None)
    assert caught.value.message.endswith("The request date is missing.")


def test_access_key_option() -> None:
    assert parse_access_key("id:secret") == Credentials("id", "secret")
    token = parse_access_key(" id:secret:tok:en ")
    assert (token.access_key_id, token.access_key_secret, token.security_token) == ("id", "secret", "tok:en")
    assert parse_access_key("id:secret:").security_token is None
    for bad in ["id", "id:", ":secret", ""]:
        with pytest.raises(ValueError, match=r"^an access key must be ID:SECRET\[:STS_TOKEN\]$"):
            parse_access_key(bad)


def test_parameters_are_decoded_strictly() -> None:
    assert parse_params("a=1&b=&c=%E5%BC%A0", "query") == [("a", "1"), ("b", ""), ("c", "张")]
    with pytest.raises(ApiError) as caught:
        parse_params("a=%FF", "query")
    assert caught.value.code == "InvalidParameter.Format"
    assert caught.value.message.endswith("The query is not percent-encoded UTF-8.")
    assert len(parse_params("&".join(f"p{i}=1" for i in range(MAX_PARAMETERS)), "query")) == MAX_PARAMETERS
    with pytest.raises(ApiError) as caught:
        parse_params("&".join(f"p{i}=1" for i in range(MAX_PARAMETERS + 1)), "form body")
    assert caught.value.message.endswith(f"The form body has more than {MAX_PARAMETERS} parameters.")


def test_form_bodies() -> None:
    form = IncomingRequest(
        "POST", "/", [], {"content-type": "Application/X-WWW-Form-Urlencoded; charset=UTF-8"}, b"a=1&b=2"
    )
    assert form.is_form and form.form == [("a", "1"), ("b", "2")]
    assert IncomingRequest("POST", "/", [], {"content-type": "application/json"}, b"a=1").form == []
    assert IncomingRequest("POST", "/", [], {"content-type": "application/x-www-form-urlencoded"}, b"").form == []
    bad = IncomingRequest("POST", "/", [], {"content-type": "application/x-www-form-urlencoded"}, b"a=\xff")
    with pytest.raises(ApiError) as caught:
        _ = bad.form
    assert caught.value.message.endswith("The form body is not UTF-8.")


class Clock:
    """auth's ``time`` with a clock the test sets (``strptime`` is the real one)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def strptime(self, text: str, fmt: str) -> time.struct_time:
        return time.strptime(text, fmt)


def test_nonces_are_pruned_once_a_minute_and_kept_through_their_last_second(monkeypatch: pytest.MonkeyPatch) -> None:
    import imm_faces.emulator.auth as auth_module

    clock = Clock(1_000_000.0)
    monkeypatch.setattr(auth_module, "time", clock)
    ledger = NonceLedger()
    for nonce, expires in (("expired", 999_999.0), ("last-second", 1_000_000.0), ("later", 1_000_070.0)):
        assert ledger.use("AK", nonce, expires)
    ledger._prune()
    # a request accepted at its last instant must not be replayable: its nonce lives through that instant
    assert {n for _, n in ledger._seen} == {"last-second", "later"}
    clock.now = 1_000_059.0
    assert ledger.use("AK", "stale", 1_000_001.0)
    ledger._prune()  # 59 s after the last prune: not yet
    assert ("AK", "stale") in ledger._seen
    clock.now = 1_000_060.0
    ledger._prune()  # a minute after it
    assert {n for _, n in ledger._seen} == {"later"}


def test_time_and_expiry_boundaries(monkeypatch: pytest.MonkeyPatch, auth: Authenticator) -> None:
    import calendar

    import imm_faces.emulator.auth as auth_module

    when = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))
    clock = Clock(when + CLOCK_SKEW_SECONDS)
    monkeypatch.setattr(auth_module, "time", clock)
    assert check_time("2026-01-01T00:00:00Z") == when  # fifteen minutes exactly: still accepted
    clock.now = when - CLOCK_SKEW_SECONDS
    assert check_time("2026-01-01T00:00:00Z") == when
    clock.now = when + CLOCK_SKEW_SECONDS + 0.5
    with pytest.raises(ApiError) as caught:
        check_time("2026-01-01T00:00:00Z")
    assert caught.value.code == "InvalidTimeStamp.Expired"
    clock.now = when
    auth.issue(Credentials("STS.now", "s", "t", expiration=when))
    with pytest.raises(ApiError) as caught:
        auth.key("STS.now", "t")  # at its Expiration the key no longer works
    assert caught.value.code == "InvalidSecurityToken.Expired"
    clock.now = when - 0.5
    assert auth.key("STS.now", "t").access_key_id == "STS.now"
    clock.now = when + 3600
    auth.issue(Credentials("STS.next", "s", "t", expiration=when + 7200))  # STS.now expired an hour ago exactly
    assert set(auth._keys) == {"AK", "STS.id", "STS.next"}


def test_v3_the_signature_covers_the_path(auth: Authenticator) -> None:
    request = signed()
    request.path = "/other"
    error = refused(auth, request)
    assert error.code == "SignatureDoesNotMatch"
