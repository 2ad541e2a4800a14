"""The keys a local emulator accepts: the documented default, and the ones given on the command line, in a key
file and in the environment (``imm-faces emulator`` reads them; ``imm-faces rehearse`` reads them the same way to
sign with the first). Light on purpose: both commands' ``--help`` import it."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from imm_faces.runtime.auth.credentials import Credentials

KEYS_ENV = "IMM_FACES_EMULATOR_ACCESS_KEYS"

DEFAULT_ACCESS_KEY = Credentials("emulator-access-key-id", "emulator-access-key-secret")
"""The documented key an emulator accepts when it is given none (it is public: it signs only to a local IMM)."""


class KeySourceError(ValueError):
    """A key source is unusable (the message never contains a secret)."""


def parse_access_key(text: str) -> Credentials:
    """``ID:SECRET[:STS_TOKEN]`` (the ``--access-key`` option): a key the emulator accepts; with a token it
    behaves as STS credentials. The error never repeats the text (it holds a secret)."""
    parts = text.strip().split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("an access key must be ID:SECRET[:STS_TOKEN]")
    return Credentials(parts[0], parts[1], parts[2] if len(parts) == 3 and parts[2] else None)


def load_keys(args: argparse.Namespace, environ: dict[str, str] | os._Environ[str]) -> list[Credentials]:
    """Every key given on the command line, in the key file and in the environment (in that order)."""
    keys: list[Credentials] = []
    for i, text in enumerate(args.access_key or [], 1):
        try:
            keys.append(parse_access_key(text))
        except ValueError as exc:
            raise KeySourceError(f"--access-key #{i}: {exc}") from None
    if args.access_key_file:
        path = Path(args.access_key_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise KeySourceError(f"--access-key-file {path} cannot be read ({reason})") from None
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                keys.append(parse_access_key(line))
            except ValueError as exc:
                raise KeySourceError(f"--access-key-file {path}, line {n}: {exc}") from None
    for i, text in enumerate(re.split(r"[\s,]+", environ.get(KEYS_ENV, "").strip()), 1):
        if text:
            try:
                keys.append(parse_access_key(text))
            except ValueError as exc:
                raise KeySourceError(f"${KEYS_ENV}, key #{i}: {exc}") from None
    return keys
