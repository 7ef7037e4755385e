"""The log shipper: moves rows from a buffer into one table of the log store.

One shipper type serves every table written from a buffer: the core's call records
(pygate.requests) and the AI call log (pygate.ai_calls, pygate/ai/calllog.py). It sees
its source through `RecordSource` and its table through `RowSink`, nothing more.

It runs on its own thread because store inserts block; the asyncio loop never waits
for it. Records travel as the RowBinary bytes the core produced, in batches of up to
`batch_size` (sooner when the flush interval is over); Python never looks at a row.

Order of records, oldest first: the disk spool, then at most one batch held in
memory, then the core's buffer. Each cycle:

1. replay the spool (unless backing off after a failure);
2. once it is empty, insert the held batch and then fresh batches from the core;
3. when the store is unavailable, park: move the held batch and whatever the core
   holds into the spool, until it is full. Then the core's buffer fills and drops
   (and counts) new records: memory stays bounded whatever the outage.

A batch the store refuses is bisected; only refused rows are quarantined (see
pygate.logstore.delivery). On stop (SIGTERM) everything is drained: into the store if
it answers, else into the spool, which the next start replays.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pygate.logstore.base import REQUESTS_TABLE, LogStore
from pygate.logstore.batch import Batch
from pygate.logstore.dead_letter import DeadLetter
from pygate.logstore.delivery import RowSink, deliver
from pygate.logstore.spool import Spool, default_spool_dir

if TYPE_CHECKING:
    from pygate.config import LoadedConfig

log = logging.getLogger("pygate.shipper")

_FIRST_BACKOFF_S = 0.25
# Short enough that a store back from a restart gets its data within seconds.
_MAX_BACKOFF_S = 5.0
# How often the thread looks at the core's buffer between flushes, so a burst that
# fills a batch is shipped before the flush interval is over.
_POLL_INTERVAL_S = 0.02


class RecordSource(Protocol):
    """The part of pygate._core.Gateway the shipper uses."""

    def drain_records(self, max_records: int, format: str) -> tuple[int, bytes, bytes]: ...

    def pending_records(self) -> int: ...

    def stats(self) -> dict[str, int]: ...


class TableSink:
    """A store's inserts aimed at one table: the `RowSink` a shipper writes to."""

    def __init__(self, store: LogStore, table: str = REQUESTS_TABLE) -> None:
        self.store = store
        self.table = table

    def insert_row_binary(self, data: bytes, dedup_token: str) -> None:
        self.store.insert_row_binary(data, dedup_token, self.table)


@dataclass(slots=True)
class ShipperSettings:
    batch_size: int
    flush_interval_s: float


class LogShipper:
    def __init__(
        self,
        source: RecordSource,
        sink: RowSink,
        spool: Spool,
        dead_letter: DeadLetter,
        settings: ShipperSettings,
    ) -> None:
        self._source = source
        self._sink = sink
        self._spool = spool
        self._dead_letter = dead_letter
        self._settings = settings
        self._held: Batch | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pygate-log-shipper", daemon=True)
        self._backoff_s = 0.0
        self._retry_at = 0.0
        # Counters: written by the shipper thread only, read by anyone.
        self.rows_written = 0  # includes replayed rows
        self.rows_replayed = 0
        self.rows_spooled = 0
        self.rows_quarantined = 0
        self.rows_discarded = 0  # lost in Python: spool full or unwritable at shutdown
        self.batches_written = 0
        self.batches_failed = 0  # insert attempts that found the store unavailable
        self.last_error: str | None = None
        self._spool_refused = False  # the last push found the spool full or unwritable

    @property
    def rows_pending_retry(self) -> int:
        held = self._held
        return self._spool.rows + (held.count if held else 0)

    def delivery_state(self) -> str:
        """For /readyz: "writing" (the store takes batches), "spooling" (it does not, the
        spool does), "spool_full" (records are being lost) or "stopped" (no thread)."""
        if self._thread.ident is not None and not self._thread.is_alive():
            return "stopped"
        if self.rows_pending_retry == 0:
            return "writing"
        return "spool_full" if self._spool_refused else "spooling"

    def update_settings(self, settings: ShipperSettings) -> None:
        # Read once per cycle by the thread; replacing the object is atomic.
        self._settings = settings

    def counters(self) -> dict[str, int | str | None]:
        core_dropped = self._source.stats().get("records_dropped", 0)
        return {
            "log_rows_written": self.rows_written,
            "log_rows_replayed": self.rows_replayed,
            "log_rows_spooled": self.rows_spooled,
            "log_rows_quarantined": self.rows_quarantined,
            "log_rows_discarded": self.rows_discarded,
            "log_rows_dropped": core_dropped + self.rows_discarded,
            "log_rows_pending_retry": self.rows_pending_retry,
            "log_spool_rows": self._spool.rows,
            "log_spool_bytes": self._spool.bytes,
            "log_spool_batches": self._spool.batches,
            "log_batches_written": self.batches_written,
            "log_batches_failed": self.batches_failed,
            "log_last_error": self.last_error,
        }

    def start(self) -> None:
        if self._spool:
            log.info(
                "log spool %s holds %d records (%d batches): replaying them first",
                self._spool.directory,
                self._spool.rows,
                self._spool.batches,
            )
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop the thread after draining everything the core holds (store or spool)."""
        self._stop.set()
        if self._thread.ident is None:  # never started: only the spool lock to release
            self._spool.close()
        elif self._thread.is_alive():
            self._thread.join(timeout_s)

    # ----- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wait_for_work()
                if self._stop.is_set():
                    break
                self._cycle()
        except Exception:
            # A bug here must not silently stop logging for the life of the process.
            log.exception("log shipper crashed; records now stay in the core's buffer")
            raise
        finally:
            self._final_flush()

    def _wait_for_work(self) -> None:
        settings = self._settings
        deadline = time.monotonic() + settings.flush_interval_s
        if self._spool and self._retry_at:
            deadline = min(deadline, max(self._retry_at, time.monotonic()))
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._source.pending_records() >= settings.batch_size:
                return
            self._stop.wait(min(remaining, _POLL_INTERVAL_S))

    def _cycle(self) -> None:
        store_ok = self._replay_spool()
        if store_ok and self._held is not None:
            store_ok = self._deliver(self._held)
            if store_ok:
                self._held = None
        if store_ok:
            store_ok = self._insert_fresh()
        if not store_ok:
            self._park()

    def _replay_spool(self) -> bool:
        """Insert spooled batches oldest first; True when the spool is empty."""
        if not self._spool:
            return True
        if time.monotonic() < self._retry_at:
            return False
        replayed = 0
        while (batch := self._spool.oldest()) is not None:
            if not self._deliver(batch, replay=True):
                return False
            self._spool.pop_oldest()
            replayed += batch.count
        if replayed:
            log.info("log spool replayed: %d records are in the store", replayed)
        return True

    def _insert_fresh(self) -> bool:
        """Drain the core into the store; False (batch held) when the store failed."""
        if time.monotonic() < self._retry_at:
            return False
        batch_size = self._settings.batch_size
        while True:
            count, data, row_ends = self._source.drain_records(batch_size, "RowBinary")
            if count == 0:
                return True
            batch = Batch.new(count, data, row_ends)
            if not self._deliver(batch):
                self._held = batch
                return False
            if count < batch_size:
                return True

    def _deliver(self, batch: Batch, *, replay: bool = False) -> bool:
        outcome = deliver(self._sink, batch)
        if not outcome.delivered:
            self._note_unavailable(outcome.error or "store unavailable")
            return False
        if self._backoff_s:
            log.warning("log store is back; inserts resumed")
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self.rows_written += outcome.rows_written
        if replay:
            self.rows_replayed += outcome.rows_written
        self.batches_written += 1
        if outcome.refused:
            self._quarantine(batch, outcome.refused)
        return True

    def _quarantine(self, batch: Batch, refused: list[tuple[Batch, str]]) -> None:
        try:
            self._dead_letter.quarantine(refused)
        except OSError as exc:
            log.error("cannot write the dead-letter file %s: %s", self._dead_letter.rows_path, exc)
        self.rows_quarantined += len(refused)
        self.last_error = refused[-1][1]
        log.warning(
            "log store refused %d of %d records in a batch; quarantined them in %s: %s",
            len(refused),
            batch.count,
            self._dead_letter.rows_path,
            refused[0][1],
        )

    def _note_unavailable(self, error: str) -> None:
        self.batches_failed += 1
        first_failure = self._backoff_s == 0
        self._backoff_s = min(max(self._backoff_s * 2, _FIRST_BACKOFF_S), _MAX_BACKOFF_S)
        self._retry_at = time.monotonic() + self._backoff_s
        if first_failure or error != self.last_error:
            log.warning("log store unavailable, spooling to %s: %s", self._spool.directory, error)
        self.last_error = error

    def _park(self) -> None:
        """Move the held batch and the core's records into the spool, while they fit."""
        batch_size = self._settings.batch_size
        while True:
            if self._held is None:
                count, data, row_ends = self._source.drain_records(batch_size, "RowBinary")
                if count == 0:
                    return
                self._held = Batch.new(count, data, row_ends)
            if not self._spool_held():
                return

    def _spool_held(self) -> bool:
        held = self._held
        assert held is not None
        try:
            if not self._spool.push(held):
                self._spool_refused = True
                return False
        except OSError as exc:
            log.error("cannot write the log spool %s: %s", self._spool.directory, exc)
            self._spool_refused = True
            return False
        self._spool_refused = False
        self.rows_spooled += held.count
        self._held = None
        return True

    def _final_flush(self) -> None:
        """On stop: everything the core holds goes to the store, or else to the spool."""
        self._retry_at = 0.0  # one more attempt now, whatever the backoff said
        self._cycle()
        while self._source.pending_records() and self._held is None:
            # Records that arrived while the last cycle ran (in-flight requests).
            self._cycle()
        lost = (self._held.count if self._held else 0) + self._source.pending_records()
        if lost:
            self.rows_discarded += lost
            log.error(
                "%d log records lost at shutdown: the store is unavailable and the spool "
                "%s is full (log.spool_max_bytes)",
                lost,
                self._spool.directory,
            )
        if self._spool:
            log.info(
                "%d log records stay in the spool %s; the next start replays them",
                self._spool.rows,
                self._spool.directory,
            )
        self._spool.close()


def spool_directory(loaded: LoadedConfig) -> str:
    config_dir = os.path.dirname(loaded.abspath)
    configured = loaded.config.log.spool_dir
    if configured:
        return os.path.normpath(os.path.join(config_dir, os.path.expanduser(configured)))
    return default_spool_dir(loaded.store.path, config_dir)


def build_log_shipper(loaded: LoadedConfig, source: RecordSource, store: LogStore) -> LogShipper:
    """The shipper for a loaded config, with its spool locked. Raises SpoolError."""
    directory = spool_directory(loaded)
    spool = Spool(directory, loaded.config.log.spool_max_bytes)
    log_settings = loaded.config.log
    settings = ShipperSettings(log_settings.batch_size, log_settings.flush_interval / 1000)
    return LogShipper(source, TableSink(store), spool, DeadLetter(directory), settings)
