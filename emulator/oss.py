"""The directory standing in for OSS: ``oss://bucket/key`` is ``<root>/bucket/key``.

What is an object (for reading, by OSS GET/HEAD, indexing and SearchImageFigureCluster, as for listing, by the
binding scanner): a regular file reached from the root through visible names only. Every name on the way must be
visible (not empty, not ``.``-prefixed, UTF-8), and a symbolic link is followed only when every name its target
passes through is visible too and it stays inside the root: a visible link to ``.hidden.jpg`` or to
``sub/.git/config`` names nothing, as does a link outside. A FIFO, a socket or a device is never an object and is
never opened (opening a FIFO waits for a writer, and reading one waits forever).

Opening cannot be raced: the path is first resolved with ``lstat`` (no link followed by the system), then walked
again one directory descriptor at a time, each opened with ``O_NOFOLLOW``, and the object is opened with
``O_NONBLOCK | O_NOFOLLOW`` and checked with ``fstat``: it must be the very regular file resolved (device and
inode). A name swapped for a link, a FIFO or another file between the check and the open is refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from imm_faces.runtime.rules import split_oss_uri

MAX_DEPTH = 64  # folders below a bucket, links included (ours: bounds what links can multiply)
MAX_LINKS = 40  # links followed for one name (Linux's own limit for one path)
CHUNK_BYTES = 256 * 1024  # what a streamed read takes at a time
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_OBJECT = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC


class NotAnObjectError(FileNotFoundError):
    """What an OSS URI names is not an object of the root: missing, hidden, not a regular file, or outside."""


class OutsideRootError(NotAnObjectError, ValueError):
    """An OSS URI that would resolve outside the OSS root (a ``..`` key, a link to elsewhere)."""


def visible(name: str) -> bool:
    """Whether ``name`` can be a folder or file name of an object's key: not empty, not hidden, UTF-8 (a file name
    that is not is kept by Python with lone surrogates, which no key holds)."""
    if not name or name.startswith(".") or "\0" in name:
        return False
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _inside(base: Path, root: Path, target: str) -> list[str]:
    """The names of an absolute link target below the root (given resolved or as configured)."""
    for prefix in dict.fromkeys((str(base), str(root.absolute()))):
        if target == prefix or target.startswith(prefix.rstrip("/") + "/"):
            return target[len(prefix) :].split("/")
    raise OutsideRootError(f"a link leads outside the OSS root ({target!r})")


def _link_target(base: Path, root: Path, path: Path) -> list[str] | None:
    """The names a link at ``path`` leads to, to be walked from its folder (from the root for an absolute one,
    marked by a leading ``""``); None when ``path`` is not a link. OSError when nothing is there."""
    if not stat.S_ISLNK(os.lstat(path).st_mode):
        return None
    target = str(path.readlink())
    if target.startswith("/"):
        return ["", *_inside(base, root, target)]
    return target.split("/")


def resolve(root: Path, names: Sequence[str]) -> tuple[list[str], os.stat_result]:
    """Where ``names`` (a bucket, then a key's names) lead from ``root``: the real names below the resolved root
    (none of them a link) and their ``lstat``. Raises :class:`NotAnObjectError` (:class:`OutsideRootError`) for a
    name that is not :func:`visible`, a link through a hidden name or outside, a loop, or nothing there."""
    if not names or not all(visible(name) for name in names):
        raise NotAnObjectError("not an object name")
    base = root.resolve()
    pending = list(reversed(names))
    real: list[str] = []
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):  # only from a link's target ("a//b", "./b")
            continue
        if name == ".." and real:  # only from a link's target; above the root it is refused below
            real.pop()
            continue
        if not visible(name):
            raise NotAnObjectError("a link leads through a hidden name or above the root")
        try:
            target = _link_target(base, root, base.joinpath(*real, name))
        except NotAnObjectError:
            raise
        except (OSError, ValueError):  # missing, not a directory on the way, a name too long
            raise NotAnObjectError("nothing there") from None
        if target is None:
            real.append(name)
            continue
        links += 1
        if links > MAX_LINKS:
            raise NotAnObjectError("too many links (a loop)")
        if target[0] == "" and len(target) > 1:  # absolute: from the root
            real = []
        pending.extend(reversed(target))
    if not real:
        raise OutsideRootError("the OSS root itself is not an object")
    try:
        return real, os.lstat(base.joinpath(*real))
    except OSError:
        raise NotAnObjectError("nothing there") from None


def etag(info: os.stat_result) -> str:
    """The ETag of an object, as OSS writes it (a quoted upper-case hex digest). Inferred: OSS's is the MD5 of
    what was uploaded whole; the emulator's files were never uploaded, so its ETag digests the file's identity
    (device, inode, size, modification time): it changes when the file does, as OSS's does, and a HEAD need not
    read the object to give it."""
    identity = f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"
    return '"' + hashlib.md5(identity.encode()).hexdigest().upper() + '"'  # noqa: S324 - an ETag, not security


class ObjectFile:
    """An object opened for reading: a regular file, read in chunks (:meth:`chunks`) or whole only up to a limit
    (:meth:`read_up_to`); ``info`` is its ``fstat``, ``name`` its file name. Close it (or use ``with``)."""

    def __init__(self, fd: int, info: os.stat_result, name: str) -> None:
        self.fd = fd
        self.info = info
        self.name = name
        # A read on a worker thread and a close by the request that gave up on it: the close waits for the read
        # (never a read of a descriptor closed, and perhaps reused for another file, meanwhile).
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self.info.st_size

    def read_chunk(self, size: int = CHUNK_BYTES) -> bytes:
        with self._lock:
            return os.read(self.fd, size) if self.fd >= 0 else b""

    def read_up_to(self, limit: int) -> bytes | None:
        """The whole object when it holds at most ``limit`` bytes, else None (never more than ``limit + 1`` bytes
        are read, whatever the file's size says: it may grow while it is read)."""
        if self.size > limit:
            return None
        parts: list[bytes] = []
        got = 0
        while got <= limit:
            part = self.read_chunk(min(CHUNK_BYTES, limit + 1 - got))
            if not part:
                return b"".join(parts)
            parts.append(part)
            got += len(part)
        return None

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def __enter__(self) -> ObjectFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _open_beneath(base: Path, real: list[str], expected: os.stat_result) -> tuple[int, os.stat_result]:
    """Open ``base/real...`` one directory descriptor at a time, no link followed; the object with O_NONBLOCK (a
    FIFO swapped in does not block the open) and checked to be the regular file ``expected``."""
    dir_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)  # the root as configured may be a link
    try:
        for name in real[:-1]:
            next_fd = os.open(name, _DIRECTORY, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        fd = os.open(real[-1], _OBJECT, dir_fd=dir_fd)
    except OSError:  # a name swapped for a link (ELOOP), or gone
        raise NotAnObjectError("the object changed while it was opened") from None
    finally:
        os.close(dir_fd)
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (expected.st_dev, expected.st_ino):
        os.close(fd)
        raise NotAnObjectError("the object changed while it was opened")
    return fd, opened


def open_object(root: Path, bucket: str, key: str) -> ObjectFile:
    """Open the object ``key`` of ``bucket`` (see the module doc for what is one); raises
    :class:`NotAnObjectError` otherwise."""
    real, info = resolve(root, [bucket, *key.split("/")])
    if not stat.S_ISREG(info.st_mode):  # a directory, FIFO, socket or device: never opened
        raise NotAnObjectError("not a regular file")
    fd, opened = _open_beneath(root.resolve(), real, info)
    return ObjectFile(fd, opened, real[-1])


def open_uri(root: Path, uri: str) -> ObjectFile:
    """:func:`open_object` for ``oss://bucket/key``; a URI that is not one raises :class:`NotAnObjectError`."""
    try:
        bucket, key = split_oss_uri(uri)
    except ValueError:
        raise NotAnObjectError("not an oss://bucket/key URI") from None
    return open_object(root, bucket, key)


def bucket_exists(root: Path, bucket: str) -> bool:
    """Whether ``bucket`` is a directory of the root (a link to one inside the root counts)."""
    try:
        _, info = resolve(root, [bucket])
    except NotAnObjectError:
        return False
    return stat.S_ISDIR(info.st_mode)


def object_path(root: Path, uri: str) -> Path:
    """``oss://bucket/key`` -> the real path of what it names under ``root``, links resolved by the rules above;
    raises :class:`NotAnObjectError` (:class:`OutsideRootError` when that is outside ``root``)."""
    bucket, key = split_oss_uri(uri)
    real, _ = resolve(root, [bucket, *key.split("/")])
    return root.resolve().joinpath(*real)


def list_bucket(root: Path, bucket: str, prefix: str = "") -> dict[str, os.stat_result] | None:
    """The objects of a bucket whose keys start with ``prefix``: key -> stat of the file it resolves to; None
    when the bucket does not exist. Only what :func:`open_object` would open is listed (regular files through
    visible names; links followed by :func:`resolve`'s rules)."""
    if not bucket_exists(root, bucket):
        return None
    folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    found: dict[str, os.stat_result] = {}
    try:
        start, info = resolve(root, [bucket, *folder.split("/")[:-1]])
    except NotAnObjectError:
        return found  # a key never names a hidden or parent folder, nor one outside
    if not stat.S_ISDIR(info.st_mode):
        return found
    # A folder reached through a link is listed under that name too (as its files would be read); a folder is
    # never entered again below itself, so a link cycle ends.
    pending: list[tuple[list[str], str, frozenset[tuple[str, ...]]]] = [(start, folder, frozenset({tuple(start)}))]
    while pending:
        real_dir, key_prefix, ancestors = pending.pop()
        for key, real, info in _entries(root, real_dir, key_prefix, prefix):
            if stat.S_ISDIR(info.st_mode):
                if tuple(real) not in ancestors and len(ancestors) < MAX_DEPTH:
                    pending.append((real, f"{key}/", ancestors | {tuple(real)}))
            elif stat.S_ISREG(info.st_mode) and key.startswith(prefix):
                found[key] = info
    return found


def _entries(
    root: Path, real_dir: list[str], key_prefix: str, prefix: str
) -> Iterator[tuple[str, list[str], os.stat_result]]:
    """The visible entries of a folder on the way to ``prefix`` or under it: (key, real names, stat), links
    resolved by :func:`resolve`'s rules (an entry they refuse is left out)."""
    try:
        entries = list(os.scandir(root.resolve().joinpath(*real_dir)))
    except OSError:
        return  # not a directory, unreadable or vanished: nothing to list there
    for entry in entries:
        key = f"{key_prefix}{entry.name}"
        if not visible(entry.name) or not (key.startswith(prefix) or prefix.startswith(key + "/")):
            continue
        try:
            if entry.is_symlink():
                yield key, *resolve(root, [*real_dir, entry.name])
            else:
                yield key, [*real_dir, entry.name], entry.stat(follow_symlinks=False)
        except OSError:  # NotAnObjectError, or vanished
            continue
