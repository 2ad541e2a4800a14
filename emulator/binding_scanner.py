"""The binding scanner: one thread that walks every running binding's OSS location, queues index jobs for new
and changed objects and removes from the dataset the files whose objects left it.

A binding leaves its ``FullScanning`` phase when every job its first scan queued is done, which the thread
notices on its next pass: it never blocks on the indexer's pool, so any number of bindings finish.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from imm_faces.emulator.indexer import Indexer
from imm_faces.emulator.ram import AccessDeniedError
from imm_faces.emulator.store import BINDING, BindingKey, Files, Store
from imm_faces.runtime.rules import split_oss_uri
from imm_faces.runtime.timestamps import now_rfc3339_nano

log = logging.getLogger("imm_faces.emulator")
SCAN_INTERVAL = 1.0


class BindingScanner:
    """Scans bindings on the ``imm-bindings`` thread (:meth:`start`); ``wake`` makes it look sooner (a new
    binding, an index job done)."""

    def __init__(self, store: Store, indexer: Indexer, wake: threading.Event) -> None:
        self.store = store
        self.indexer = indexer
        self._wake = wake
        # Per binding: what its scans saw (key -> (FileModifiedTime, Size)), and for a binding in its first
        # full scan, the index jobs that scan queued.
        self._seen: dict[tuple[str, str, str], dict[str, tuple[str, int]]] = {}
        self._first_scan: dict[tuple[str, str, str], set[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan_loop, name="imm-bindings", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self) -> None:
        self._thread.join(timeout=5)

    def bind(self) -> None:
        """A new binding: the scanner starts its full scan on its next pass, which this starts now."""
        self._wake.set()

    def _scan_binding(self, binding: dict[str, Any]) -> None:
        """One pass over a binding's location: queue new and changed objects, remove from the dataset the files
        that left it; a binding in its first full scan turns IncrementalScanning once its jobs are done."""
        project, dataset, uri = binding["ProjectName"], binding["DatasetName"], binding["URI"]
        ident = (project, dataset, uri)
        full = binding.get("Phase") == "FullScanning"
        if full and ident in self._first_scan:  # scanned; waiting for its index jobs
            if self.indexer.any_running(self._first_scan[ident]):
                return
            self._end_full_scan(ident, "")
            return
        try:
            self.indexer.objects.check(project, "oss:ListObjects", uri)
        except AccessDeniedError as exc:
            if full:
                self._end_full_scan(ident, f"the service role may not list the location: {exc}")
            return
        bucket, prefix = split_oss_uri(uri)
        objects = self.indexer.objects.list(bucket, prefix)
        if objects is None:
            if full:
                self._end_full_scan(ident, f"bucket {bucket} does not exist under the OSS root")
            return
        base_uri = f"oss://{bucket}/"
        seen = self._seen.get(ident)
        if seen is None:  # first pass in this process: what the dataset already holds counts as seen
            with self.store.snapshot() as tx:
                docs = tx.scan(Files(project, dataset), prefix=base_uri + prefix)
            seen = {
                k[len(base_uri) :]: (d.get("FileModifiedTime", ""), int(d.get("Size") or 0))
                for k, d in docs
                if not any(part.startswith(".") for part in k[len(base_uri) :].split("/"))  # never listed
            }
            self._seen[ident] = seen
        changed = [key for key, signature in objects.items() if seen.get(key) != signature]
        gone = [key for key in seen if key not in objects]
        queued = self.indexer.queued_in(project, dataset)
        fresh = [key for key in changed if base_uri + key not in queued]
        jobs = {queued[base_uri + key] for key in changed if base_uri + key in queued}
        if fresh:
            jobs.update(self.indexer.index(project, dataset, [{"URI": base_uri + key} for key in fresh]))
        if gone:
            with self.store.tx() as tx:
                self.indexer.remove_files(tx, project, dataset, [base_uri + key for key in gone])
        for key in changed:
            seen[key] = objects[key]
        for key in gone:
            del seen[key]
        if full:
            self._first_scan[ident] = jobs
            self._wake.set()  # check for completion on the next pass

    def _end_full_scan(self, ident: tuple[str, str, str], reason: str) -> None:
        project, dataset, uri = ident
        self._first_scan.pop(ident, None)
        with self.store.tx() as tx:
            doc = tx.get(BindingKey(project, dataset, uri))
            if doc is None or doc.get("Phase") != "FullScanning":
                return
            doc.update(Phase="IncrementalScanning", Reason=reason, UpdateTime=now_rfc3339_nano())
            if reason:
                doc["State"] = "Failed"
            tx.put(BindingKey(project, dataset, uri), doc)

    def _scan_loop(self) -> None:
        """Scan every running binding every SCAN_INTERVAL seconds, or sooner when woken."""
        last_walk = 0.0
        while not self._stop.is_set():
            self._wake.wait(SCAN_INTERVAL)
            self._wake.clear()
            # Woken early (a new binding, an index job done), only first scans are looked at; every binding's
            # location is walked again once SCAN_INTERVAL has passed.
            walk = time.monotonic() - last_walk >= SCAN_INTERVAL
            if walk:
                last_walk = time.monotonic()
            try:
                with self.store.snapshot() as tx:
                    bindings = [b for b in tx.scan_kind(BINDING) if b.get("State") == "Running"]
                live = {(b["ProjectName"], b["DatasetName"], b["URI"]) for b in bindings}
                for ident in [i for i in self._seen if i not in live]:  # deleted bindings
                    self._seen.pop(ident, None)
                    self._first_scan.pop(ident, None)
                for b in bindings:
                    if self._stop.is_set():
                        return
                    if not walk and b.get("Phase") != "FullScanning":
                        continue
                    try:
                        self._scan_binding(b)
                    except Exception as exc:
                        log.exception("scanning binding %s failed", b["URI"])
                        if b.get("Phase") == "FullScanning":  # a first scan that cannot run fails the binding
                            self._fail_binding(b, f"scan failed: {exc}")
            except Exception:  # the store may be closing
                if self._stop.is_set():
                    return
                log.exception("binding scan failed")

    def _fail_binding(self, binding: dict[str, Any], reason: str) -> None:
        key = (binding["ProjectName"], binding["DatasetName"], binding["URI"])
        with self.store.tx() as tx:
            doc = tx.get(BindingKey(*key))
            if doc is not None:
                doc.update(State="Failed", Reason=reason, UpdateTime=now_rfc3339_nano())
                tx.put(BindingKey(*key), doc)
