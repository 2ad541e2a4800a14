"""Power-loss durability: an acknowledged write is on stable storage, not only with the operating system.

`test_durability.py` kills the emulator with SIGKILL. That proves a write is committed before it is
acknowledged and reaches the OS (no user-space buffer, no lost transaction, queued work resumed), but not that
it reaches the disk: the page cache outlives a killed process, so SQLite's `synchronous=OFF` or `NORMAL` pass it
too. Here the `imm-faces emulator` child runs with a small LD_PRELOAD library that logs, in order, each write
to the database files and each fsync/fdatasync of them. A power cut keeps exactly what was synced; so at the
moment the client holds an acknowledgement, no write to the database or its WAL may be waiting for a sync.
In WAL mode SQLite syncs the WAL at each commit only with `synchronous=FULL`; `NORMAL` defers it to the
checkpoint and `OFF` never does it, and both fail here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.operations import datasets, projects
from tests.conftest import CREDS
from tests.processes import emulator_process

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* Appends "W <path>" or "S <path>" to $IMM_SYNC_LOG for files whose path starts with $IMM_SYNC_WATCH. */
static void note(char what, int fd) {
    const char *watch = getenv("IMM_SYNC_WATCH"), *log = getenv("IMM_SYNC_LOG");
    char link[64], path[4096], line[4200];
    if (!watch || !log) return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    if (strncmp(path, watch, strlen(watch)) != 0) return;
    int out = (int)syscall(SYS_open, log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (out < 0) return;
    int len = snprintf(line, sizeof line, "%c %s\n", what, path);
    syscall(SYS_write, out, line, (size_t)len);
    syscall(SYS_close, out);
}

#define REAL(name) static __typeof__(name) *real; if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)
ssize_t write(int fd, const void *b, size_t n) { REAL(write); ssize_t r = real(fd, b, n); note('W', fd); return r; }
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) {
    REAL(pwrite); ssize_t r = real(fd, b, n, o); note('W', fd); return r; }
ssize_t pwrite64(int fd, const void *b, size_t n, off64_t o) {
    REAL(pwrite64); ssize_t r = real(fd, b, n, o); note('W', fd); return r; }
ssize_t writev(int fd, const struct iovec *v, int c) {
    REAL(writev); ssize_t r = real(fd, v, c); note('W', fd); return r; }
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o) {
    REAL(pwritev); ssize_t r = real(fd, v, c, o); note('W', fd); return r; }
int fsync(int fd) { REAL(fsync); note('S', fd); return real(fd); }
int fdatasync(int fd) { REAL(fdatasync); note('S', fd); return real(fd); }
"""


@pytest.fixture(scope="module")
def sync_log_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not sys.platform.startswith("linux") or compiler is None:
        pytest.skip("needs Linux and a C compiler (cc) to build the LD_PRELOAD library that watches fsync")
    folder = tmp_path_factory.mktemp("shim")
    (folder / "shim.c").write_text(SHIM)
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", "shim.so", "shim.c", "-ldl"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder / "shim.so"


def unsynced(log: Path, db: Path) -> tuple[set[str], int]:
    """The database files written since their last sync, and how many syncs of the WAL the log holds."""
    pending: set[str] = set()
    wal_syncs = 0
    for line in log.read_text().splitlines() if log.exists() else []:
        what, _, path = line.partition(" ")
        if path.endswith("-shm"):  # the WAL index: shared memory, rebuilt after a crash, never synced by SQLite
            continue
        if what == "W":
            pending.add(Path(path).name)
        else:
            pending.discard(Path(path).name)
            wal_syncs += path == f"{db}-wal"
    return pending, wal_syncs


def test_every_acknowledged_write_was_synced_to_disk(tmp_path: Path, sync_log_library: Path) -> None:
    db, oss_root, log = tmp_path / "state.db", tmp_path / "oss", tmp_path / "sync.log"
    oss_root.mkdir()
    env = {"LD_PRELOAD": str(sync_log_library), "IMM_SYNC_WATCH": str(db), "IMM_SYNC_LOG": str(log)}
    with emulator_process(db, oss_root, env) as (_, endpoint), ImmClient(endpoint=endpoint, credentials=CREDS) as c:
        writes: list[Callable[[], object]] = [
            partial(c.call, projects.CreateProject, project_name="durable"),
            partial(c.call, datasets.CreateDataset, project_name="durable", dataset_name="faces"),
            *[partial(c.call, projects.UpdateProject, project_name="durable", description=f"d{i}") for i in range(3)],
        ]
        syncs_before = unsynced(log, db)[1]
        for write in writes:
            write()  # acknowledged: a power cut from here on must not lose it
            pending, syncs = unsynced(log, db)
            assert pending == set(), f"written but not synced when acknowledged: {sorted(pending)}"
            assert syncs > syncs_before, "the acknowledged commit did not sync the WAL"
            syncs_before = syncs
        project = c.call(projects.GetProject, project_name="durable").project
        assert project is not None and project.description == "d2"
