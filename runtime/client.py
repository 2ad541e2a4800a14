"""The IMM client: sync and async over one shared core.

One code path for every operation in :mod:`imm_faces.runtime.operations`: encode the request model as query
parameters, sign (ACS3-HMAC-SHA256 by default, the legacy RPC signature on request), send, retry what is
worth retrying, and parse the answer into the operation's response model or a typed :class:`ImmError`.

    from imm_faces.runtime.client import ImmClient
    from imm_faces.runtime.operations.figure_clusters import GetFigureCluster

    with ImmClient(region="cn-hangzhou") as imm:
        cluster = imm.call(GetFigureCluster, project_name="p", dataset_name="d", object_id="Cluster-...")

Retries: connection errors, timeouts, HTTP 429/5xx and Throttling*/ServiceUnavailable/InternalError codes
are retried with exponential backoff and full jitter, honouring ``x-acs-retry-after`` (milliseconds). Every
attempt is signed again with a fresh nonce and date. Other 4xx answers are never retried.

Deadline: ``deadline=SECONDS`` bounds everything the client does from its creation. Each attempt's timeout
is cut to the time left, and a retry or a server-requested back-off that would pass the deadline is not
waited for: the call raises :class:`~imm_faces.runtime.errors.DeadlineExceededError` naming the last failure.
The async client also cuts each attempt at the deadline in wall-clock time (a server dripping its answer a
byte at a time beats per-read timeouts), and a credential fetch made during a call, of either client, ends by
the deadline too (:mod:`imm_faces.runtime.bounded`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import ValidationError

from imm_faces.runtime import __version__, bounded
from imm_faces.runtime.auth.chain import resolve_provider
from imm_faces.runtime.auth.credentials import CredentialSource, redact
from imm_faces.runtime.auth.redaction import REDACTOR, install_library_filters
from imm_faces.runtime.auth.signing import API_VERSION, CANONICAL_QUERY, SignatureVersion, auth_for, encode_query
from imm_faces.runtime.errors import (
    ConfigError,
    DeadlineExceededError,
    ImmError,
    ServerError,
    ThrottlingError,
    TransportError,
)
from imm_faces.runtime.http import PoolEntry, explicit_base_url, tls_context_for
from imm_faces.runtime.operations.base import Operation, Request, Response, parameter_error

log = logging.getLogger("imm_faces.client")

ReqT = TypeVar("ReqT", bound=Request)
RespT = TypeVar("RespT", bound=Response)
R = TypeVar("R")
# One call as a coroutine-free state machine, driven by the sync and the async client alike.
Exchange = Generator[httpx.Request | float, httpx.Response | httpx.TransportError | None, R]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
USER_AGENT = f"imm-faces/{__version__} httpx/{httpx.__version__}"


def endpoint_url(
    region: str | None = None, endpoint: str | None = None, network: Literal["public", "vpc"] = "public"
) -> str:
    """The base URL: an explicit endpoint (``https://`` added when no scheme is given) or the region's.

    ``imm.<region>.aliyuncs.com`` on the internet, ``imm-vpc.<region>.aliyuncs.com`` inside a VPC.
    """
    if endpoint:
        return explicit_base_url(endpoint, "endpoint")
    if not region:
        raise ConfigError("region: set a region (e.g. cn-hangzhou) or an explicit endpoint")
    host = f"imm-vpc.{region}.aliyuncs.com" if network == "vpc" else f"imm.{region}.aliyuncs.com"
    return f"https://{host}/"


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try. Delays (seconds) grow as ``base * 2**n`` up to ``cap``."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after_ms: int | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` starts at 1)."""
        if retry_after_ms is not None and retry_after_ms > 0:
            return min(retry_after_ms / 1000.0, 120.0)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


class _Core:
    """Everything but I/O: request building, signing setup, response parsing, retry decisions."""

    def __init__(
        self,
        *,
        region: str | None,
        endpoint: str | None,
        network: Literal["public", "vpc"],
        credentials: CredentialSource | None,
        signature_version: SignatureVersion,
        retry: RetryPolicy,
        timeout: httpx.Timeout,
        deadline: float | None,
    ) -> None:
        self.base_url = endpoint_url(region, endpoint, network)
        self.credentials = credentials or resolve_provider()  # temporary ones are fetched on first use
        REDACTOR.add(self.credentials.secrets())
        install_library_filters()
        self.auth = auth_for(self.credentials, signature_version)
        self.retry = retry
        self.timeout = timeout.as_dict()
        self.deadline_at = None if deadline is None else time.monotonic() + deadline

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None without one)."""
        return None if self.deadline_at is None else self.deadline_at - time.monotonic()

    @staticmethod
    def prepare(op: Operation[ReqT, RespT], request: ReqT | None, params: Mapping[str, Any]) -> ReqT:
        """The request model, built from keyword parameters when none was given (rules checked here)."""
        if request is not None:
            if params:
                raise TypeError("pass either a request model or keyword parameters, not both")
            return request
        try:
            return op.request.model_validate(params)
        except ValidationError as exc:
            raise ConfigError(f"{op.name}: {parameter_error(op.request, exc)}") from None

    def build(self, op: Operation[ReqT, RespT], request: ReqT) -> httpx.Request:
        """A fresh unsigned request; the auth flow adds nonce, date and signature on every send."""
        query = encode_query(request.to_params())
        headers = {
            "x-acs-action": op.name,
            "x-acs-version": API_VERSION,
            "accept": "application/json",
            "user-agent": USER_AGENT,
        }
        # One URL parse per request (base_url is a bare scheme://host[:port]/), and the signer reuses the query.
        outgoing = httpx.Request("POST", f"{self.base_url}?{query}", headers=headers)
        outgoing.extensions[CANONICAL_QUERY] = query
        left = self.remaining()
        if left is not None:
            cut = {k: (left if v is None else min(v, left)) for k, v in self.timeout.items()}
            outgoing.extensions["timeout"] = cut
        return outgoing

    def parse(self, op: Operation[ReqT, RespT], response: httpx.Response) -> RespT:
        body = response.content
        if response.is_success:
            try:
                return op.response.model_validate_json(body)
            except ValidationError as exc:
                raise ImmError(
                    "InvalidResponse",
                    f"the response does not match {op.response.__name__}: {exc.errors()[0]['msg']}",
                    status=response.status_code,
                    request_id=response.headers.get("x-acs-request-id"),
                    action=op.name,
                ) from None
        raise self.error(op, response)

    def error(self, op: Operation[Any, Any], response: httpx.Response) -> ImmError:
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            snippet = response.text[:200].strip() or response.reason_phrase
            data = {"Code": f"HTTP{response.status_code}", "Message": snippet}
        code = str(data.get("Code") or data.get("code") or f"HTTP{response.status_code}")
        message = redact(str(data.get("Message") or data.get("message") or ""), self.credentials)
        status = response.status_code
        cls: type[ImmError] = ImmError
        if status == 429 or code.startswith("Throttling") or response.headers.get("x-acs-retry-after"):
            cls = ThrottlingError
        elif status >= 500:
            cls = ServerError
        return cls(
            code,
            message,
            status=status,
            request_id=data.get("RequestId") or data.get("requestId") or response.headers.get("x-acs-request-id"),
            host_id=data.get("HostId"),
            recommend=data.get("Recommend"),
            action=op.name,
        )

    def retry_delay(
        self, attempt: int, failure: ImmError | TransportError, response: httpx.Response | None
    ) -> float | None:
        """Seconds to wait before trying again, or None when this failure must not be retried."""
        if attempt >= self.retry.max_attempts:
            return None
        if isinstance(failure, ImmError) and not failure.retryable:
            return None
        retry_after: int | None = None
        if response is not None:
            try:
                retry_after = int(response.headers.get("x-acs-retry-after", ""))
            except ValueError:
                retry_after = None
        return self.retry.delay(attempt, retry_after)

    def transport_error(self, op: Operation[Any, Any], exc: httpx.TransportError) -> TransportError:
        return TransportError(
            f"{op.name}: cannot reach {self.base_url} ({exc.__class__.__name__}: {redact(str(exc), self.credentials)})"
        )

    def out_of_time(
        self, op: Operation[Any, Any], failure: Exception | None, wait: float = 0.0
    ) -> DeadlineExceededError:
        last = f"; last failure: {failure}" if failure else ""
        when = f"would pass before the next attempt (due in {wait:.2f} s)" if wait else "passed"
        return DeadlineExceededError(f"{op.name}: the deadline {when}{last}", failure)

    def exchange(self, op: Operation[ReqT, RespT], request: ReqT) -> Exchange[RespT]:
        """The whole call without I/O: yields a request to send (answer with the response or the transport
        error) or a delay in seconds to wait (answer with None); returns the parsed response."""
        attempt = 0
        failure: ImmError | TransportError | None = None
        while True:
            attempt += 1
            left = self.remaining()
            if left is not None and left <= 0:
                raise self.out_of_time(op, failure)
            outcome = yield self.build(op, request)
            response = outcome if isinstance(outcome, httpx.Response) else None
            try:
                if not isinstance(outcome, httpx.Response):
                    raise self.transport_error(op, outcome)  # type: ignore[arg-type]  # None is never sent here
                log.debug("%s attempt %d -> HTTP %d", op.name, attempt, outcome.status_code)
                return self.parse(op, outcome)
            except (ImmError, TransportError) as exc:
                failure = exc
                delay = self.retry_delay(attempt, exc, response)
                if delay is None:
                    left = self.remaining()
                    if left is not None and left <= 0 and isinstance(exc, TransportError):
                        raise self.out_of_time(op, exc) from None  # the attempt was cut by the deadline
                    raise
                left = self.remaining()
                if left is not None and left <= 0:
                    raise self.out_of_time(op, exc) from None
                if left is not None and delay >= left:
                    raise self.out_of_time(op, exc, delay) from None
                log.info("%s attempt %d failed (%s); retrying in %.2fs", op.name, attempt, exc, delay)
            yield delay

    @staticmethod
    def next_page(op: Operation[ReqT, RespT], current: ReqT, page: RespT) -> tuple[list[Any], ReqT | None]:
        """A page's items, and the request for the next page (None after the last)."""
        token = getattr(page, "next_token", None)
        items = getattr(page, op.page_items or "") or []
        return items, current.model_copy(update={"next_token": token}) if token else None

    @staticmethod
    def check_pages(op: Operation[Any, Any]) -> None:
        if op.page_items is None:
            raise TypeError(f"{op.name} does not page")


class _Base:
    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        network: Literal["public", "vpc"] = "public",
        credentials: CredentialSource | None = None,
        signature_version: SignatureVersion = "v3",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
    ) -> None:
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._core = _Core(
            region=region,
            endpoint=endpoint,
            network=network,
            credentials=credentials,
            signature_version=signature_version,
            retry=retry or RetryPolicy(),
            timeout=self._timeout,
            deadline=deadline,
        )

    @property
    def endpoint(self) -> str:
        return self._core.base_url

    def time_left(self) -> float | None:
        """Seconds left before the deadline (None without one; 0 or less once it passed)."""
        return self._core.remaining()

    def __repr__(self) -> str:
        core = getattr(self, "_core", None)  # absent while __init__ runs (a traceback's captured locals show it)
        if core is None:
            return f"{type(self).__name__}(not built)"
        return f"{type(self).__name__}(endpoint={core.base_url!r}, credentials={core.credentials!r})"


class ImmClient(_Base):
    """Synchronous IMM client. Use as a context manager, or call :meth:`close`."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._http = httpx.Client(
            timeout=self._timeout, transport=transport, trust_env=False, verify=tls_context_for(self._core.base_url)
        )

    def __enter__(self) -> ImmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, op: Operation[ReqT, RespT], request: ReqT | None = None, /, **params: Any) -> RespT:
        """Invoke ``op`` with a request model or keyword parameters (snake_case); return its response model."""
        steps = self._core.exchange(op, self._core.prepare(op, request, params))
        try:
            with bounded.deadline(self._core.deadline_at):  # a credential fetch this call makes sees it too
                step = next(steps)
                while True:
                    if isinstance(step, float):
                        time.sleep(step)
                        step = steps.send(None)
                        continue
                    try:
                        outcome: httpx.Response | httpx.TransportError = self._http.send(step, auth=self._core.auth)
                    except httpx.TransportError as exc:
                        outcome = exc
                    step = steps.send(outcome)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def paginate(self, op: Operation[ReqT, RespT], request: ReqT | None = None, /, **params: Any) -> Iterator[Any]:
        """Yield every item of every page, following NextToken until the service returns none."""
        self._core.check_pages(op)
        current: ReqT | None = self._core.prepare(op, request, params)
        while current is not None:
            items, current = self._core.next_page(op, current, self.call(op, current))
            yield from items


class AsyncImmClient(_Base):
    """Asynchronous IMM client with the same behaviour as :class:`ImmClient`."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._http = httpx.AsyncClient(
            timeout=self._timeout, transport=transport, trust_env=False, verify=tls_context_for(self._core.base_url)
        )
        self._entry = PoolEntry()

    async def __aenter__(self) -> AsyncImmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, op: Operation[ReqT, RespT], request: ReqT | None = None, /, **params: Any) -> RespT:
        steps = self._core.exchange(op, self._core.prepare(op, request, params))
        try:
            with bounded.deadline(self._core.deadline_at):  # a credential fetch this call makes sees it too
                step = next(steps)
                while True:
                    if isinstance(step, float):
                        await asyncio.sleep(step)
                        step = steps.send(None)
                        continue
                    try:
                        outcome: httpx.Response | httpx.TransportError = await self._send(step)
                    except httpx.TransportError as exc:
                        outcome = exc
                    step = steps.send(outcome)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One attempt, cut at the deadline in wall-clock time: httpx's timeouts bound each read, and a server
        that sends a byte every few seconds would outlast them all."""
        left = self._core.remaining()
        try:
            # into httpx's pool once the request before holds its connection (PoolEntry)
            async with asyncio.timeout(None if left is None else max(0.0, left)), self._entry.turn(request.extensions):
                return await self._http.send(request, auth=self._core.auth)
        except TimeoutError:
            raise httpx.ReadTimeout("the deadline passed before the answer was complete", request=request) from None

    async def paginate(
        self, op: Operation[ReqT, RespT], request: ReqT | None = None, /, **params: Any
    ) -> AsyncIterator[Any]:
        self._core.check_pages(op)
        current: ReqT | None = self._core.prepare(op, request, params)
        while current is not None:
            items, current = self._core.next_page(op, current, await self.call(op, current))
            for item in items:
                yield item
