"""Request authentication, as Alibaba Cloud's API gateway does it.

ACS3-HMAC-SHA256 (``Authorization`` header) and the legacy RPC signature (``Signature`` parameter) are
both verified with the same functions the client signs with (:mod:`imm_faces.runtime.auth.signing`). STS tokens must
match the key's token; the request time must be within 15 minutes; a nonce is accepted once within that
window, across restarts (:class:`NonceLedger` keeps them in the SQLite store).

What the signature covers is what the wire layer executes: V3 signs the method, path, query, every ``x-acs-*``
header (``x-acs-action`` and ``x-acs-version`` included), ``host``, the body's SHA-256, and here also the
``content-type`` when the body is read as a form; V2 signs the query and form parameters (``Action`` and
``Version`` among them), never a header.

Authorization follows authentication: each key has a RAM principal (:class:`~imm_faces.emulator.ram.Principal`:
the account's owner unless the RAM config attaches policies to the key; an assumed role, with its policies and
session policy, for the credentials STS issued), and :meth:`Authenticator.authorize` decides an action on a
resource with it (``Forbidden.RAM``, 403, naming both, when RAM would refuse).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qsl

from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.ram import AccessDeniedError, Context, Principal, Ram, principals_of_keys
from imm_faces.emulator.store import Store
from imm_faces.runtime.auth.signing import (
    FORM_CONTENT_TYPE,
    parse_v3_authorization,
    v2_signature,
    v2_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_string_to_sign,
)
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.timestamps import parse_utc_seconds

log = logging.getLogger("imm_faces.emulator")
CLOCK_SKEW_SECONDS = 15 * 60
# Ours, not IMM's: at most this many parameters in a query or a form body (the SDK sends a dozen or two).
MAX_PARAMETERS = 256
NONCE_FLUSH_SECONDS = 0.2


def parse_params(text: str, where: str) -> list[tuple[str, str]]:
    """Decode ``a=1&b=2`` (percent-encoded UTF-8) strictly: bad encoding is IMM's format error, not a crash."""
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMETERS)
    except UnicodeDecodeError:
        raise ApiError("InvalidParameter.Format", detail=f"The {where} is not percent-encoded UTF-8.") from None
    except ValueError:
        raise ApiError(
            "InvalidParameter.Format", detail=f"The {where} has more than {MAX_PARAMETERS} parameters."
        ) from None


@dataclass
class IncomingRequest:
    """What authentication looks at. ``query`` is the decoded URL query; header names are lower-case."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes

    @property
    def is_form(self) -> bool:
        return self.headers.get("content-type", "").lower().startswith(FORM_CONTENT_TYPE)

    @cached_property
    def form(self) -> list[tuple[str, str]]:
        """Parameters of an ``application/x-www-form-urlencoded`` body (none for other bodies)."""
        if not self.is_form or not self.body:
            return []
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("InvalidParameter.Format", detail="The form body is not UTF-8.") from None
        return parse_params(text, "form body")


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    signature_version: str


class NonceLedger:
    """Nonces seen within their window, kept in memory (the check) and in the store (across restarts).

    A nonce is checked and recorded in memory at once; rows reach SQLite in batches every
    :data:`NONCE_FLUSH_SECONDS` from a thread of its own, so a read never waits for the store's writer (a long
    clustering transaction may hold it). :meth:`flush` writes them synchronously: the wire layer calls it before
    any operation that changes state, so a write request can never run twice, even across a hard kill. Only a
    read accepted in the last fraction of a second before a kill (never a clean stop) could be accepted again.
    """

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._seen: dict[tuple[str, str], float] = {}
        self._pending: list[tuple[str, str, float]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_prune = 0.0
        self._thread: threading.Thread | None = None
        if store is not None:
            now = time.time()
            with store.tx() as tx:
                tx.prune_nonces(now)
                live = tx.live_nonces(now)
            self._seen = {(key_id, nonce): expires for key_id, nonce, expires in live}
            self._thread = threading.Thread(target=self._run, name="imm-nonces", daemon=True)
            self._thread.start()

    def use(self, key_id: str, nonce: str, expires: float) -> bool:
        """Record a nonce valid until ``expires`` (epoch seconds); False when it was used already."""
        key = (key_id, nonce)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = expires
            self._pending.append((key_id, nonce, expires))
            return True

    def flush(self) -> None:
        """Write the nonces recorded so far to the store (one transaction)."""
        if self._store is None:
            return
        with self._flush_lock:  # batches reach the store in order, and never twice
            with self._lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                with self._store.tx() as tx:
                    tx.add_nonces(rows)
            except BaseException:
                with self._lock:
                    self._pending[:0] = rows
                raise

    def _prune(self) -> None:
        now = time.time()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if t >= now}
        if self._store is not None:
            with self._store.tx() as tx:
                tx.prune_nonces(now)

    def _run(self) -> None:
        while not self._stop.wait(NONCE_FLUSH_SECONDS):
            try:
                self.flush()
                self._prune()
            except Exception:  # the store may be closing; the next round retries
                if self._stop.is_set():
                    return
                log.exception("recording signature nonces failed")

    def close(self) -> None:
        """Stop the background writer and write what is pending (call before closing the store)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()


def check_time(text: str | None) -> float:
    """The request time (epoch seconds), which must be within the skew window."""
    if not text:
        raise ApiError("IncompleteSignature", detail="The request date is missing.")
    try:
        when = parse_utc_seconds(text)
    except (ValueError, OverflowError):
        raise ApiError("InvalidTimeStamp.Format") from None
    if abs(time.time() - when) > CLOCK_SKEW_SECONDS:
        raise ApiError("InvalidTimeStamp.Expired")
    return float(when)


def _unique(pairs: Iterable[tuple[str, str]], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise ApiError("InvalidParameter.Format", detail=f"The {what} {key} is given more than once.")
        out[key] = value
    return out


class Authenticator:
    def __init__(
        self, keys: Mapping[str, Credentials], nonces: NonceLedger | None = None, ram: Ram | None = None
    ) -> None:
        self._keys = dict(keys)
        self.nonces = nonces or NonceLedger()
        self.ram = ram or Ram()
        self._principals = principals_of_keys(self.ram, self._keys)  # raises RamConfigError for an unknown key
        self._issue_lock = threading.Lock()

    def issue(self, key: Credentials, principal: Principal | None = None) -> None:
        """Accept temporary credentials (issued by the emulator's STS) until their ``expiration``, acting as
        ``principal`` (the account's owner when None)."""
        with self._issue_lock:
            now = time.time()
            kept = {k: v for k, v in self._keys.items() if v.expiration is None or v.expiration > now - 3600}
            kept[key.access_key_id] = key
            principals = {k: v for k, v in self._principals.items() if k in kept}
            principals[key.access_key_id] = principal or self.ram.principal_of_key(key.access_key_id)
            # One assignment each, the principal first: a reader that finds the key finds its principal.
            self._principals = principals
            self._keys = kept

    def principal(self, key_id: str) -> Principal:
        """Who ``key_id`` (an authenticated key) acts as; a key it has no principal for may do nothing."""
        found = self._principals.get(key_id)
        return found if found is not None else Principal(f"acs:ram::{self.ram.account_id}:unknown", "", ())

    def authorize(self, key_id: str, action: str, resource: str, context: Context = {}) -> None:  # noqa: B006
        """Return when RAM lets ``key_id`` do ``action`` on ``resource``; ``Forbidden.RAM`` (403) otherwise."""
        try:
            self.principal(key_id).authorize(action, resource, context)
        except AccessDeniedError as exc:
            raise ApiError("Forbidden.RAM", detail=f"You are not authorized to operate {exc}.") from None

    def authorize_object_read(self, key_id: str, bucket: str, key: str) -> None:
        """OSS GetObject (and HEAD, and image processing, which OSS authorizes as GetObject) of ``bucket/key``."""
        try:
            self.principal(key_id).authorize("oss:GetObject", self.ram.oss_resource(bucket, key))
        except AccessDeniedError as exc:
            raise ApiError("Forbidden.RAM", f"You are not authorized to operate {exc}.") from None

    def key(self, key_id: str, token: str | None) -> Credentials:
        """The credentials of ``key_id`` if ``token`` is theirs and they have not expired (issued STS keys
        included); IMM's error otherwise. One lookup for every door: IMM, STS, OSS reads."""
        key = self._keys.get(key_id)
        if key is None:
            raise ApiError("InvalidAccessKeyId.NotFound")
        if not hmac.compare_digest((key.security_token or "").encode(), (token or "").encode()):
            raise ApiError("InvalidSecurityToken.Mismatch")
        if key.expiration is not None and time.time() >= key.expiration:
            raise ApiError("InvalidSecurityToken.Expired")
        return key

    def _nonce(self, key_id: str, nonce: str | None, when: float) -> None:
        if not nonce:
            raise ApiError("IncompleteSignature", detail="The signature nonce is missing.")
        # A request dated ``when`` is accepted until ``when + skew``: the nonce must be remembered that long.
        if not self.nonces.use(key_id, nonce, when + CLOCK_SKEW_SECONDS):
            raise ApiError("SignatureNonceUsed")

    @staticmethod
    def signed_by(request: IncomingRequest) -> str | None:
        """Which signature the request claims (``v3``, ``v2``), or None: it can be rejected before its body is read."""
        if request.headers.get("authorization", "").startswith("ACS3-"):
            return "v3"
        if any(k == "Signature" for k, _ in request.query):
            return "v2"
        return None

    def verify(self, request: IncomingRequest) -> tuple[Caller, dict[str, str]]:
        """Authenticate a request as the gateway would (raise :class:`ApiError`); return the caller and the
        request's parameters (query and form), every one of them covered by the signature."""
        version = self.signed_by(request)
        if version == "v3":
            return self._verify_v3(request, request.headers["authorization"])
        if version == "v2":
            return self._verify_v2(request)
        raise ApiError("IncompleteSignature", detail="No Authorization header and no Signature parameter.")

    def _verify_v3(self, request: IncomingRequest, authorization: str) -> tuple[Caller, dict[str, str]]:
        headers = request.headers
        parsed = parse_v3_authorization(authorization)
        if parsed is None:
            if not authorization.startswith("ACS3-HMAC-SHA256 "):
                raise ApiError("InvalidSignatureMethod")
            raise ApiError("IncompleteSignature", detail="The Authorization header is malformed.")
        key_id, signed_names, signature = parsed
        required = {"host"} | {name for name in headers if name.startswith("x-acs-")}
        if request.body and request.is_form:
            required.add("content-type")  # it decides whether the body's bytes are parameters
        if missing := sorted(required - set(signed_names)):
            raise ApiError("IncompleteSignature", detail=f"Headers not signed: {', '.join(missing)}.")
        if any(name not in headers for name in signed_names):
            raise ApiError("IncompleteSignature", detail="A signed header is not present.")
        key = self.key(key_id, headers.get("x-acs-security-token"))
        if headers.get("x-acs-security-token") and headers.get("x-acs-accesskey-id") != key_id:
            raise ApiError("InvalidSecurityToken.Mismatch")
        payload_hash = headers.get("x-acs-content-sha256", "")
        if payload_hash != hashlib.sha256(request.body).hexdigest():
            raise ApiError("SignatureDoesNotMatch", detail="x-acs-content-sha256 does not match the body.")
        canonical, _ = v3_canonical_request(
            request.method, request.path, request.query, {name: headers[name] for name in signed_names}, payload_hash
        )
        string_to_sign = v3_string_to_sign(canonical)
        if not hmac.compare_digest(v3_signature(key.access_key_secret, string_to_sign).encode(), signature.encode()):
            raise ApiError("SignatureDoesNotMatch", detail=f"server string to sign is:{string_to_sign}")
        when = check_time(headers.get("x-acs-date"))
        params = _unique(request.query + request.form, "parameter")
        self._nonce(key_id, headers.get("x-acs-signature-nonce"), when)
        return Caller(key_id, "v3"), params

    def _verify_v2(self, request: IncomingRequest) -> tuple[Caller, dict[str, str]]:
        params = _unique(request.query + request.form, "parameter")
        for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp"):
            if not params.get(name):
                raise ApiError("IncompleteSignature", detail=f"The parameter {name} is missing.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise ApiError("InvalidSignatureMethod")
        key = self.key(params["AccessKeyId"], params.get("SecurityToken"))
        signed = [(k, v) for k, v in params.items() if k != "Signature"]
        string_to_sign = v2_string_to_sign(request.method, signed)
        expected = v2_signature(key.access_key_secret, string_to_sign).encode()
        if not hmac.compare_digest(expected, params["Signature"].encode()):
            raise ApiError("SignatureDoesNotMatch", detail=f"server string to sign is:{string_to_sign}")
        when = check_time(params["Timestamp"])
        self._nonce(key.access_key_id, params.get("SignatureNonce"), when)
        return Caller(key.access_key_id, "v2"), params
