"""The RFC 3339 timestamps of the wire: IMM's with nanoseconds (``2022-01-14T10:10:52.83948013+08:00``), and the
second-precision UTC ones (``2026-11-25T12:00:00Z``) of STS's ``Expiration``, the signatures' dates and the report.

``datetime.fromisoformat`` takes at most six fractional digits; IMM sends up to nine.
"""

from __future__ import annotations

import calendar
import functools
import re
import time
from datetime import UTC, datetime

UTC_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
"""UTC to the second (``2026-11-25T12:00:00Z``), as STS writes ``Expiration`` and both signatures want the date."""

_RFC3339 = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?(?P<tz>Z|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC3339 timestamp with up to nine fractional digits; raise ValueError otherwise."""
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(f"not an RFC3339 timestamp: {value!r}")
    frac = (match.group("frac") or "").ljust(6, "0")[:6]
    tz = "+00:00" if match.group("tz") == "Z" else match.group("tz")
    return datetime.fromisoformat(f"{match.group('base')}.{frac}{tz}")


@functools.lru_cache(maxsize=4096)
def is_rfc3339(value: str) -> bool:
    """Whether :func:`parse_rfc3339` takes ``value`` (remembered: verify asks of each cluster's times in every
    view, and a dataset's clusters share many)."""
    try:
        parse_rfc3339(value)
    except ValueError:
        return False
    return True


def rfc3339_nano(epoch_ns: int) -> str:
    """A UTC time given in nanoseconds since the epoch, as IMM writes CreateTime/UpdateTime."""
    base = datetime.fromtimestamp(epoch_ns // 1_000_000_000, UTC).strftime(UTC_SECONDS)
    return f"{base[:-1]}.{epoch_ns % 1_000_000_000:09d}Z"


def now_rfc3339_nano() -> str:
    """The current UTC time with nanoseconds."""
    return rfc3339_nano(time.time_ns())


def utc_seconds(when: datetime | float | None = None) -> str:
    """``when`` (a datetime in UTC, epoch seconds, or now) as :data:`UTC_SECONDS`."""
    if isinstance(when, datetime):
        return when.strftime(UTC_SECONDS)
    return time.strftime(UTC_SECONDS, time.gmtime(when))


def parse_utc_seconds(text: str) -> float:
    """:data:`UTC_SECONDS` text as epoch seconds; ValueError when it is not that."""
    return float(calendar.timegm(time.strptime(text, UTC_SECONDS)))
