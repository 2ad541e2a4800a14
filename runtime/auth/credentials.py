"""Credential values: what a client signs with, and the sources that give it.

:class:`Credentials` is a fixed AccessKey (optionally with an STS token); :class:`RefreshingCredentials` fetches
temporary ones on first use and again before they expire (a quarter of their lifetime ahead, at most 15 minutes),
so a long clustering wait never signs with an expired token; :class:`LazyCredentials` chooses its source on first
use. All three are a :class:`CredentialSource`. No secret or token is ever part of a repr, a str, a log line, an
exception message or a pickle.

A layer below everything else of :mod:`imm_faces.runtime.auth`: it knows nothing of where credentials are found
(:mod:`.chain`) or how they are fetched (:mod:`.sources`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NoReturn, Protocol

from imm_faces.runtime.auth.config import ENV_NAMES
from imm_faces.runtime.auth.redaction import MASK, REDACTOR, secret_forms
from imm_faces.runtime.errors import ConfigError

log = logging.getLogger("imm_faces.credentials")

REFRESH_MARGIN = 15 * 60


class NotTextError(ConfigError, ValueError):
    """A key, secret or token that is not text: it came with a byte that is not UTF-8 (Python keeps such a byte of
    an environment variable or argument as a lone surrogate, which no signature can encode)."""


def _is_text(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class Credentials:
    """An AccessKey pair, optionally with an STS token. ``source`` says where it was found.

    Immutable and comparable. The secret and the token are never shown: not by ``repr``/``str``, and
    ``vars()``, ``dataclasses.asdict`` and ``pickle`` refuse the object (it has no ``__dict__``, is not a
    dataclass, and cannot be pickled), so a secret cannot leave through a debugger dump or a serialised state.
    """

    __slots__ = ("_secret", "_token", "access_key_id", "expiration", "source")

    access_key_id: str
    source: str
    expiration: float | None
    _secret: Hidden
    _token: Hidden | None

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        source: str = "explicit arguments",
        expiration: float | None = None,
    ) -> None:
        for what, value in (
            ("AccessKey id", access_key_id),
            ("AccessKey secret", access_key_secret),
            ("security token", security_token),
        ):
            if value is not None and not _is_text(value):
                raise NotTextError(f"{source}: the {what} holds a byte that is not UTF-8 text; set it again")
        set_ = object.__setattr__
        set_(self, "access_key_id", access_key_id)
        set_(self, "_secret", Hidden(access_key_secret))
        set_(self, "_token", Hidden(security_token) if security_token else None)
        set_(self, "source", source)
        set_(self, "expiration", expiration)  # epoch seconds, for temporary credentials

    @property
    def access_key_secret(self) -> str:
        return self._secret.value

    @property
    def security_token(self) -> str | None:
        return self._token.value if self._token else None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Credentials are immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Credentials are immutable; cannot delete {name!r}")

    def _key(self) -> tuple[str, str, str | None, str]:
        return (self.access_key_id, self.access_key_secret, self.security_token, self.source)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> NoReturn:
        raise TypeError("Credentials cannot be pickled: they hold a secret (resolve them again where needed)")

    def __copy__(self) -> Credentials:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> Credentials:
        return self

    def __repr__(self) -> str:
        sts = ", security_token=<redacted>" if self._token else ""
        return (
            f"Credentials(access_key_id={self.access_key_id!r}, access_key_secret=<redacted>{sts}, "
            f"source={self.source!r})"
        )

    __str__ = __repr__

    def environment(self) -> dict[str, str]:
        """These credentials as the ``ALIBABA_CLOUD_*`` variables (for a child process that resolves its own)."""
        values = (self.access_key_id, self.access_key_secret, self.security_token)
        return {name: value for name, value in zip(ENV_NAMES, values, strict=True) if value}

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be shown (for redaction filters)."""
        return tuple(s for s in (self.access_key_secret, self.security_token) if s)

    # The CredentialSource protocol: a fixed set is its own source.
    def get(self) -> Credentials:
        return self

    def due(self) -> bool:
        return False


class Hidden:
    """A secret string whose repr, str and pickle never reveal it (read it with ``.value``)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a secret cannot be pickled")


class CredentialsNotFoundError(ConfigError):
    """No source held a complete set of credentials."""


class CredentialSource(Protocol):
    """What a client signs with: :class:`Credentials` (fixed) or :class:`RefreshingCredentials`."""

    def get(self) -> Credentials:
        """The credentials to sign the next request with (fetched or refreshed when needed)."""
        ...

    def due(self) -> bool:
        """Whether :meth:`get` would fetch now (an async caller then calls it off the event loop)."""
        ...

    def secrets(self) -> tuple[str, ...]: ...


class _Unpicklable:
    """A source that holds, or will hold, a secret: it cannot be pickled."""

    __slots__ = ()

    def __reduce__(self) -> NoReturn:
        raise TypeError("credentials cannot be pickled: they hold a secret (resolve them again where needed)")


class RefreshingCredentials(_Unpicklable):
    """Temporary credentials from ``fetch``, fetched on first use and again before they expire.

    Thread-safe: one fetch at a time. Each new set's secrets are registered with the process-wide redactor
    before anything can print them. Cannot be pickled (it holds a secret).
    """

    __slots__ = ("_clock", "_current", "_fetch", "_lock", "_refresh_at", "source")

    def __init__(self, fetch: Callable[[], Credentials], source: str, clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self.source = source
        self._clock = clock
        self._current: Credentials | None = None
        self._refresh_at = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        return self._current is None or self._clock() >= self._refresh_at

    def get(self) -> Credentials:
        with self._lock:
            if not self.due():
                return self._current  # type: ignore[return-value]  # due() is False only with a current set
            fetched_at = self._clock()
            try:
                fresh = self._fetch()
            except ConfigError as exc:
                current = self._current
                if current is not None and (current.expiration is None or fetched_at < current.expiration - 5):
                    log.warning("refreshing credentials (%s) failed; using the current ones: %s", self.source, exc)
                    return current
                raise
            REDACTOR.add(fresh.secrets())
            expires = fresh.expiration
            if expires is None:
                self._refresh_at = float("inf")
            else:
                margin = min(REFRESH_MARGIN, max(1.0, (expires - fetched_at) / 4))
                self._refresh_at = expires - margin
            self._current = fresh
            return fresh

    def secrets(self) -> tuple[str, ...]:
        return self._current.secrets() if self._current is not None else ()

    def __repr__(self) -> str:
        return f"RefreshingCredentials(source={self.source!r})"


class LazyCredentials(_Unpicklable):
    """A source chosen on first use by ``choose`` (e.g. :func:`resolve_provider` with given settings), so that
    work that never calls the service (a preview's check and diff) never needs credentials. A failure to choose
    is raised by that first use, and again by the next (nothing is cached but success)."""

    __slots__ = ("_choose", "_lock", "_source")

    def __init__(self, choose: Callable[[], CredentialSource]) -> None:
        self._choose = choose
        self._source: CredentialSource | None = None
        self._lock = threading.Lock()

    def _chosen(self) -> CredentialSource:
        with self._lock:
            if self._source is None:
                self._source = self._choose()
            return self._source

    def get(self) -> Credentials:
        return self._chosen().get()

    def due(self) -> bool:
        return self._source is None or self._source.due()

    def secrets(self) -> tuple[str, ...]:
        return self._source.secrets() if self._source is not None else ()

    def __repr__(self) -> str:
        return f"LazyCredentials(source={getattr(self._source, 'source', 'not chosen yet')!r})"


def redact(text: str, credentials: CredentialSource | None) -> str:
    """Replace any secret of ``credentials`` that appears in ``text``, in any of its :func:`secret_forms`."""
    if credentials is None:
        return text
    for secret in credentials.secrets():
        for form in sorted(secret_forms(secret), key=len, reverse=True):  # longest first: no partial leftovers
            text = text.replace(form, MASK)
    return text


def hide(value: str | Hidden | None) -> Hidden | None:
    """``value`` held as a :class:`Hidden` (None when empty)."""
    return Hidden(value) if isinstance(value, str) and value else (value or None)


def reveal(value: str | Hidden | None) -> str | None:
    """The text behind :func:`hide`."""
    return value.value if isinstance(value, Hidden) else value
