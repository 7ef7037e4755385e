"""The log shipper: moves call records from the core's buffer into the log store.

It runs on its own thread because store inserts block. Records travel as the
JSONEachRow bytes the core produced; Python never looks at single records. A failed
insert keeps its batch in memory and is retried (oldest first, with backoff) before
anything new is drained, so the order of records is kept and, while the store is
down, new records wait in the core's buffer, which counts what it has to drop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from pygate.logstore import LogStore, LogStoreError

log = logging.getLogger("pygate.shipper")

_MAX_BACKOFF_S = 30.0
# How often the thread looks at the core's buffer between flushes, so a burst that
# fills a batch is shipped before the flush interval is over.
_POLL_INTERVAL_S = 0.05
_FINAL_FLUSH_ATTEMPTS = 3


class RecordSource(Protocol):
    """The part of pygate._core.Gateway the shipper uses."""

    def drain_records(self, max_records: int) -> tuple[int, bytes, bytes]: ...

    def pending_records(self) -> int: ...


@dataclass(slots=True)
class ShipperSettings:
    batch_size: int
    flush_interval_s: float
    # Records kept in memory for retry while the store fails; beyond that the oldest
    # batches are discarded (and counted).
    max_retry_records: int


@dataclass(slots=True)
class _Batch:
    count: int
    data: bytes


class LogShipper:
    def __init__(self, source: RecordSource, store: LogStore, settings: ShipperSettings) -> None:
        self._source = source
        self._store = store
        self._settings = settings
        self._retry: deque[_Batch] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pygate-log-shipper", daemon=True)
        self._backoff_s = 0.0
        self._retry_rows = 0
        # Counters; written by the shipper thread only, read by anyone.
        self.rows_written = 0
        self.batches_written = 0
        self.batches_failed = 0
        self.rows_discarded = 0
        self.last_error: str | None = None

    @property
    def rows_pending_retry(self) -> int:
        return self._retry_rows

    def update_settings(self, settings: ShipperSettings) -> None:
        # Read once per cycle by the thread; replacing the object is atomic.
        self._settings = settings

    def counters(self) -> dict[str, int]:
        return {
            "log_rows_written": self.rows_written,
            "log_batches_written": self.batches_written,
            "log_batches_failed": self.batches_failed,
            "log_rows_pending_retry": self.rows_pending_retry,
            "log_rows_discarded": self.rows_discarded,
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the thread after a final drain and flush of everything the core holds."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wait_for_work()
                if self._stop.is_set():
                    break
                self._ship()
        finally:
            self._final_flush()

    def _wait_for_work(self) -> None:
        settings = self._settings
        deadline = time.monotonic() + max(settings.flush_interval_s, self._backoff_s)
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if not self._backoff_s and self._source.pending_records() >= settings.batch_size:
                return
            self._stop.wait(min(remaining, _POLL_INTERVAL_S))

    def _ship(self) -> bool:
        """Retry held batches, then drain the core; False if the store failed."""
        while self._retry:
            if not self._insert(self._retry[0]):
                return False
            self._retry_rows -= self._retry.popleft().count
        batch_size = self._settings.batch_size
        while True:
            count, data, _row_ends = self._source.drain_records(batch_size)
            if count == 0:
                return True
            batch = _Batch(count, data)
            if not self._insert(batch):
                self._hold_for_retry(batch)
                return False
            if count < batch_size:
                return True

    def _insert(self, batch: _Batch) -> bool:
        try:
            self._store.insert_json_each_row(batch.data)
        except LogStoreError as exc:
            self.batches_failed += 1
            first_failure = self._backoff_s == 0
            self._backoff_s = min(
                max(self._backoff_s * 2, self._settings.flush_interval_s), _MAX_BACKOFF_S
            )
            if first_failure or str(exc) != self.last_error:
                log.warning("log insert failed, will retry: %s", exc)
            self.last_error = str(exc)
            return False
        if self._backoff_s:
            log.warning("log store recovered; inserts resumed")
        self._backoff_s = 0.0
        self.rows_written += batch.count
        self.batches_written += 1
        return True

    def _hold_for_retry(self, batch: _Batch) -> None:
        self._retry.append(batch)
        self._retry_rows += batch.count
        limit = self._settings.max_retry_records
        while len(self._retry) > 1 and self._retry_rows > limit:
            dropped = self._retry.popleft()
            self._retry_rows -= dropped.count
            self.rows_discarded += dropped.count
            log.warning("discarded %d log records: retry buffer full", dropped.count)

    def _final_flush(self) -> None:
        for attempt in range(_FINAL_FLUSH_ATTEMPTS):
            if self._ship():
                return
            time.sleep(min(0.5 * (attempt + 1), 2.0))
        lost = self.rows_pending_retry + self._source.pending_records()
        if lost:
            log.error("%d log records could not be written at shutdown: %s", lost, self.last_error)
