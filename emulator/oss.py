"""The directory standing in for OSS: ``oss://bucket/key`` is ``<root>/bucket/key``, and nothing resolves outside
the root, for reading as for listing. A symbolic link is followed only when where it leads is inside the root;
a bucket directory, a folder or an object that links outside is, to the emulator, absent.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from imm_faces.runtime.rules import split_oss_uri

MAX_DEPTH = 64  # folders below a bucket, links included (ours: bounds what links can multiply)


class OutsideRootError(ValueError):
    """An OSS URI that would resolve to a path outside the OSS root."""


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def object_path(root: Path, uri: str) -> Path:
    """``oss://bucket/key`` -> the real path of the object under ``root``, links resolved; raises
    :class:`OutsideRootError` when that is outside ``root`` (a ``..`` key, a link to elsewhere)."""
    bucket, key = split_oss_uri(uri)
    base = root.resolve()
    path = (base / bucket / key).resolve()
    if base not in path.parents:
        raise OutsideRootError(f"{uri} resolves outside the OSS root")
    return path


def list_bucket(root: Path, bucket: str, prefix: str = "") -> dict[str, os.stat_result] | None:
    """The objects of a bucket whose keys start with ``prefix``: key -> stat of the file it resolves to; None
    when the bucket does not exist or its directory resolves outside ``root``. Hidden names (``.``-prefixed
    files and folders) are skipped. Links are followed only inside ``root``."""
    base = root.resolve()
    bucket_dir = (base / bucket).resolve()
    if not _inside(base, bucket_dir) or bucket_dir == base or not bucket_dir.is_dir():
        return None
    folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    start = (bucket_dir / folder).resolve() if folder else bucket_dir
    found: dict[str, os.stat_result] = {}
    if ".." in folder.split("/") or not _inside(base, start):
        return found  # a key never names a parent directory
    # A folder reached through a link is listed under that name too (as the files would be read); a folder is
    # never entered again below itself, so a link cycle ends.
    pending: list[tuple[Path, str, frozenset[Path]]] = [(start, folder, frozenset({start}))]
    while pending:
        directory, key_prefix, ancestors = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # not a directory, unreadable or vanished: nothing to list there
        for entry in entries:
            key = f"{key_prefix}{entry.name}"
            if entry.name.startswith(".") or not (key.startswith(prefix) or prefix.startswith(key + "/")):
                continue
            try:
                real = Path(entry.path).resolve() if entry.is_symlink() else Path(entry.path)
                if not _inside(base, real):
                    continue
                info = real.stat()
            except (OSError, RuntimeError):  # a dangling link, a loop
                continue
            if stat.S_ISDIR(info.st_mode):
                if real not in ancestors and len(ancestors) < MAX_DEPTH:
                    pending.append((real, f"{key}/", ancestors | {real}))
            elif stat.S_ISREG(info.st_mode) and key.startswith(prefix):
                found[key] = info
    return found
