"""OSS-style reads of the objects under ``--oss-root``: ``GET /<bucket>/<key>`` (path-style), signed with OSS
signature V4 and checked as OSS checks it, so that code reading photos (``imm-faces verify --html``) is the same
for the emulator and the cloud.

What is served: GET and HEAD of one object, for a request signed with the emulator's keys, either presigned
(``x-oss-signature-version=OSS4-HMAC-SHA256`` and the other ``x-oss-*`` query parameters) or in the
``Authorization: OSS4-HMAC-SHA256 ...`` header. The signature is computed with the runtime's functions
(:mod:`imm_faces.runtime.auth.oss_signing`); a presigned URL is refused after its ``x-oss-expires``, a header-signed
request outside a 15-minute clock skew; an STS key needs its token. Nothing is served without a signature
(no public-read), nothing outside the root (:func:`imm_faces.emulator.oss.object_path`), no hidden name.
Errors are OSS's XML bodies (``Code``, ``Message``, ``RequestId``, ``HostId``) with OSS's codes and statuses.

An ``x-oss-process=image/...`` parameter (signed, like every query parameter) answers the processed image
(:mod:`imm_faces.emulator.oss_img`).

Not served (inferred scope, not OSS's): listing, writes, ranges, conditional requests, V1 signatures.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import mimetypes
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from imm_faces.emulator import oss_img
from imm_faces.emulator.asgi import Exchange
from imm_faces.emulator.errors import ApiError
from imm_faces.emulator.oss import CHUNK_BYTES, NotAnObjectError, ObjectFile, bucket_exists, etag, open_object
from imm_faces.runtime import oss_process
from imm_faces.runtime.auth.oss_signing import (
    ALGORITHM,
    MAX_EXPIRES_SECONDS,
    PRODUCT,
    Q_ADDITIONAL,
    Q_CREDENTIAL,
    Q_DATE,
    Q_EXPIRES,
    Q_SIGNATURE,
    Q_TOKEN,
    Q_VERSION,
    TERMINATOR,
    canonical_request,
    parse_timestamp,
    signature,
    split_query,
)
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.rules import IMG_MAX_SOURCE_BYTES, whole_number

CLOCK_SKEW_SECONDS = 15 * 60
# OSS's naming rules: a bucket is 3-63 lowercase letters, digits and '-', starting and ending with a letter or
# digit; a key is at most 1,023 bytes of UTF-8.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]\Z")
MAX_KEY_BYTES = 1023

# OSS's error codes, statuses and messages for what this route can refuse.
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "AccessDenied"),
    "InvalidAccessKeyId": (403, "The OSS Access Key Id you provided does not exist in our records."),
    "InvalidSecurityToken": (403, "The security token you provided is invalid."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time is too large."),
    "InvalidArgument": (400, "Invalid argument."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidObjectName": (400, "The specified object is not valid."),
    "NoSuchKey": (404, "The specified key does not exist."),
}


class OssError(Exception):
    def __init__(self, code: str, detail: str | None = None) -> None:
        self.code = code
        self.status, message = ERRORS[code]
        self.message = detail or message
        super().__init__(f"{code}: {self.message}")


@dataclass
class Answer:
    """What to send: ``body``, or the object itself (``stream``, read in chunks), or, for ``process``, the image
    that :meth:`OssObjects.finish` makes on the image pool."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    stream: ObjectFile | None = None
    process: tuple[ObjectFile, list[oss_process.Step]] | None = None

    def close(self) -> None:
        for held in (self.stream, self.process[0] if self.process else None):
            if held is not None:
                held.close()


def claims(query_string: str, headers: Mapping[str, str]) -> bool:
    """Whether a request is OSS-signed (V4): the wire layer routes it here rather than to IMM."""
    return Q_VERSION in query_string.lower() or headers.get("authorization", "").startswith(ALGORITHM + " ")


def _error(exc: OssError, request_id: str, host: str, head: bool) -> Answer:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{escape(exc.code)}</Code>\n  <Message>{escape(exc.message)}</Message>\n"
        f"  <RequestId>{escape(request_id)}</RequestId>\n  <HostId>{escape(host)}</HostId>\n</Error>\n"
    ).encode()
    headers = [
        (b"content-type", b"application/xml"),
        (b"content-length", str(len(body)).encode()),
        (b"x-oss-request-id", request_id.encode()),
        (b"x-oss-ec", exc.code.encode()),
    ]
    if exc.code == "MethodNotAllowed":
        headers.append((b"allow", b"GET, HEAD"))
    return Answer(exc.status, headers, b"" if head else body)


def _parse_authorization(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in value[len(ALGORITHM) :].split(","):
        name, sep, text = part.strip().partition("=")
        if not sep or name in fields:
            raise OssError("InvalidArgument", "The Authorization header is malformed.")
        fields[name] = text
    if "Credential" not in fields or "Signature" not in fields:
        raise OssError("InvalidArgument", "The Authorization header needs Credential and Signature.")
    return fields


@dataclass
class _Signed:
    """What a request says about its signature, from the query (presigned) or the Authorization header."""

    credential: str
    when: str
    signature: str
    additional: list[str]
    token: str | None
    pairs: list[tuple[str, str]]  # the decoded query pairs the signature covers
    expires: str | None  # presigned only


def _signed_parts(query_string: str, headers: Mapping[str, str]) -> _Signed:
    try:
        pairs = split_query(query_string)
    except UnicodeDecodeError:
        raise OssError("InvalidArgument", "The query string is not percent-encoded UTF-8.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name.lower().startswith("x-oss-") and name in params:
            raise OssError("InvalidArgument", f"The parameter {name} is given twice.")
        params[name] = value
    if Q_VERSION not in params:
        fields = _parse_authorization(headers.get("authorization", ""))
        additional = [h for h in fields.get("AdditionalHeaders", "").split(";") if h]
        return _Signed(
            fields["Credential"],
            headers.get("x-oss-date", ""),
            fields["Signature"],
            additional,
            headers.get("x-oss-security-token"),
            pairs,
            None,
        )
    if params[Q_VERSION] != ALGORITHM:
        raise OssError("InvalidArgument", f"{Q_VERSION} must be {ALGORITHM}.")
    missing = [q for q in (Q_CREDENTIAL, Q_DATE, Q_EXPIRES, Q_SIGNATURE) if not params.get(q)]
    if missing:
        raise OssError("AccessDenied", f"The presigned URL lacks {', '.join(missing)}.")
    additional = [h for h in params.get(Q_ADDITIONAL, "").split(";") if h]
    covered = [(k, v) for k, v in pairs if k != Q_SIGNATURE]
    return _Signed(
        params[Q_CREDENTIAL],
        params[Q_DATE],
        params[Q_SIGNATURE],
        additional,
        params.get(Q_TOKEN),
        covered,
        params[Q_EXPIRES],
    )


def _check_time(expires_text: str | None, signed_at: float, now: float) -> None:
    """A presigned URL is good from its x-oss-date (give or take the skew) for x-oss-expires seconds; a
    header-signed request within the skew of now."""
    if expires_text is None:
        if abs(now - signed_at) > CLOCK_SKEW_SECONDS:
            raise OssError("RequestTimeTooSkewed")
        return
    expires = whole_number(expires_text, MAX_EXPIRES_SECONDS)
    if expires is None or expires < 1:
        raise OssError("InvalidArgument", f"{Q_EXPIRES} must be 1-{MAX_EXPIRES_SECONDS} seconds.")
    if now > signed_at + expires:
        raise OssError("AccessDenied", "Request has expired.")
    if signed_at > now + CLOCK_SKEW_SECONDS:
        raise OssError("RequestTimeTooSkewed")


class OssObjects:
    """Serves ``root``'s objects to requests signed with a key ``key_of`` knows (the emulator's authenticator:
    its configured keys and the STS keys it issued, until they expire)."""

    # IMM's answer for a key it refuses -> OSS's code for the same refusal.
    KEY_ERRORS: ClassVar[dict[str, str]] = {
        "InvalidAccessKeyId.NotFound": "InvalidAccessKeyId",
        "InvalidSecurityToken.Mismatch": "InvalidSecurityToken",
        "InvalidSecurityToken.Expired": "InvalidSecurityToken",
    }

    def __init__(
        self,
        root: Path,
        key_of: Callable[[str, str | None], Credentials],
        authorize: Callable[[str, str, str], None] | None = None,
        *,
        reads: Executor,
        images: Executor,
    ) -> None:
        self.root = root
        self.key_of = key_of
        self.authorize = authorize  # RAM: (key id, bucket, key) -> None, or ApiError (Forbidden.RAM)
        self.decoded = oss_img.DecodedSources()
        self.reads = reads  # the caller's pools (it shuts them down): see route()
        self.images = images

    def answer(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        request_id: str,
        host: str,
        now: float | None = None,
    ) -> Answer:
        """Authenticate and open the object (quick: a signature and a few system calls); an image to process is
        left to :meth:`finish`, the object's bytes to the caller (``stream``)."""
        head = method == "HEAD"
        try:
            if method not in ("GET", "HEAD"):
                raise OssError("MethodNotAllowed")
            bucket, _, key = path.lstrip("/").partition("/")
            signed = self._authenticate(method, bucket, key, query_string, headers, time.time() if now is None else now)
            process = next((v for k, v in signed if k == oss_process.PARAMETER), None)
            steps = None
            if process is not None:
                try:
                    steps = oss_process.read(process)
                except oss_process.ProcessError as exc:
                    raise OssError("InvalidArgument", str(exc)) from None
            return self._object(bucket, key, request_id, head, steps)
        except OssError as exc:
            return _error(exc, request_id, host, head)

    def finish(self, answer: Answer, request_id: str, host: str) -> Answer:
        """The processed image of ``answer.process`` (heavy: run it on the image pool). The object is closed."""
        if answer.process is None:
            return answer
        obj, steps = answer.process
        try:
            with obj:
                data = obj.read_up_to(IMG_MAX_SOURCE_BYTES)
                if data is None:
                    raise OssError(
                        "InvalidArgument", f"the source image is larger than {IMG_MAX_SOURCE_BYTES // (1024 * 1024)} MB"
                    )
                info = obj.info
                source = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
                try:
                    image = oss_img.process(data, steps, source=source, cache=self.decoded)
                except oss_process.ProcessError as exc:
                    raise OssError("InvalidArgument", str(exc)) from None
        except OssError as exc:
            return _error(exc, request_id, host, False)
        headers = [
            (b"content-type", b"image/jpeg"),
            (b"content-length", str(len(image)).encode()),
            (b"etag", _md5_etag(image).encode()),
            *answer.headers,
        ]
        return Answer(200, headers, image)

    def claims(self, exchange: Exchange) -> bool:
        """Whether a request for ``/<bucket>/<key>`` is OSS-signed (an unsigned one stays IMM's: an unknown path)."""
        return claims(exchange.query_string, exchange.headers)

    async def serve(self, exchange: Exchange) -> None:
        """Answer an OSS-signed request for ``/<bucket>/<key>``.

        Signatures, opening and reading run on ``reads`` (a pool of their own: a slow disk or many clients
        never take the threads STS and IMM answer on); image processing on ``images`` (small: it decides how
        many images are decoded at once). A GET sends the object in chunks as the client takes them."""
        rid, host, send = exchange.request_id, exchange.host, exchange.send
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            self.reads, self.answer, exchange.method, exchange.path, exchange.query_string, exchange.headers, rid, host
        )
        if answer.process is not None:  # finish() closes the object, whatever becomes of this request
            answer = await loop.run_in_executor(self.images, self.finish, answer, rid, host)
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
            if answer.stream is None:
                await send({"type": "http.response.body", "body": answer.body})
            else:
                await self._send_object(answer.stream, exchange.receive, send)
        finally:
            answer.close()

    async def _send_object(self, obj: ObjectFile, receive: Any, send: Any) -> None:
        """The object's bytes, a chunk at a time (read on the reads pool), as long as the client is there; never
        more than the size announced (the file may grow while it is sent)."""
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            left = obj.size
            while left > 0 and not gone.is_set():
                chunk = await loop.run_in_executor(self.reads, obj.read_chunk, min(CHUNK_BYTES, left))
                if not chunk:
                    break  # the file shrank: the client sees a short body, as from a truncated object
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if left > 0 and not gone.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    def _authenticate(
        self, method: str, bucket: str, key: str, query_string: str, headers: Mapping[str, str], now: float
    ) -> list[tuple[str, str]]:
        """Check the request's signature; returns the decoded query pairs it covers."""
        signed = _signed_parts(query_string, headers)
        parts = signed.credential.split("/")
        if len(parts) != 5 or parts[3] != PRODUCT or parts[4] != TERMINATOR or not parts[2]:
            raise OssError("InvalidArgument", f"The credential must be <AccessKeyId>/<date>/<region>/oss/{TERMINATOR}.")
        key_id, date, region = parts[0], parts[1], parts[2]
        try:
            signed_at = parse_timestamp(signed.when).timestamp()
        except ValueError:
            raise OssError("InvalidArgument", "x-oss-date must be a yyyymmddThhmmssZ time.") from None
        if date != signed.when[:8]:
            raise OssError("InvalidArgument", "The credential's date is not the date of x-oss-date.")
        _check_time(signed.expires, signed_at, now)
        try:
            creds = self.key_of(key_id, signed.token)
        except ApiError as exc:
            raise OssError(self.KEY_ERRORS.get(exc.code, "AccessDenied")) from None
        canonical = canonical_request(method, bucket or None, key or None, signed.pairs, headers, signed.additional)
        expected = signature(creds.access_key_secret, signed.when, region, canonical)
        if not hmac.compare_digest(expected.encode(), signed.signature.encode("utf-8", "replace")):
            raise OssError("SignatureDoesNotMatch")
        if self.authorize is not None:
            try:
                self.authorize(key_id, bucket, key)
            except ApiError as exc:
                raise OssError("AccessDenied", exc.message) from None
        return signed.pairs

    def _object(
        self, bucket: str, key: str, request_id: str, head: bool, steps: list[oss_process.Step] | None = None
    ) -> Answer:
        if not bucket or not key or key.endswith("/"):
            raise OssError("InvalidArgument", "Only an object can be read here (GET /<bucket>/<key>).")
        if not BUCKET_NAME.match(bucket):
            raise OssError("InvalidBucketName")
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise OssError("InvalidObjectName")
        if not bucket_exists(self.root, bucket):
            raise OssError("NoSuchBucket")
        try:
            obj = open_object(self.root, bucket, key)  # a regular file inside the root, or refused unopened
        except NotAnObjectError:
            raise OssError("NoSuchKey") from None
        info = obj.info
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        common = [
            (b"last-modified", formatdate(info.st_mtime, usegmt=True).encode()),
            (b"x-oss-request-id", request_id.encode()),
            (b"x-oss-object-type", b"Normal"),
            (b"cache-control", b"private"),
        ]
        if steps is not None and not head:  # the processed image (OSS's IMG), made by finish()
            return Answer(200, common, process=(obj, steps))
        if head:  # a HEAD never reads the object (a processed HEAD is described by its source)
            obj.close()
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(info.st_size).encode()),
            (b"etag", etag(info).encode()),
            *common,
        ]
        return Answer(200, headers, stream=None if head else obj)


def _md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest().upper() + '"'  # noqa: S324 - OSS's ETag is an MD5
