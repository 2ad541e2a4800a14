"""JSON text read within bounds: nesting measured without parsing, and a strict reader (policies, OIDC tokens,
the RAM config). A leaf module: the wire layer, RAM and OIDC all use it."""

from __future__ import annotations

import json
import re
from typing import Any

_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``limit``, found in one linear pass without
    parsing it (no recursion). Brackets inside strings do not count; a stray backslash outside a string makes
    the text invalid JSON, which the parser rejects at that point, so what follows it is never reached."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = deepest = 0
    in_string = False
    for mark in _JSON_TOKENS.findall(text):
        if mark[0] == "\\":
            continue
        if mark == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif mark in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest > limit


class StrictJsonError(ValueError):
    """JSON text that :func:`strict_json` refuses though Python's parser would take it (the message says why)."""


def _refuse_constant(name: str) -> Any:
    raise StrictJsonError(f"holds {name}, which is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"gives {key[:64]!r} twice")
        out[key] = value
    return out


def strict_json(text: str, max_depth: int) -> Any:
    """JSON text read strictly (policies, OIDC tokens, the RAM config): no NaN or Infinity, no key twice in an
    object, nesting bounded before parsing (:class:`StrictJsonError`); ``ValueError`` for text that is not JSON."""
    if nests_deeper_than(text, max_depth):
        raise StrictJsonError(f"nests deeper than {max_depth} levels")
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
