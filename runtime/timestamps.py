"""IMM's RFC3339Nano timestamps (``2022-01-14T10:10:52.83948013+08:00``).

``datetime.fromisoformat`` takes at most six fractional digits; IMM sends up to nine.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime

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
    base = datetime.fromtimestamp(epoch_ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{epoch_ns % 1_000_000_000:09d}Z"


def now_rfc3339_nano() -> str:
    """The current UTC time with nanoseconds."""
    return rfc3339_nano(time.time_ns())
