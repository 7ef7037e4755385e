"""pygate.ai_calls rows: encoded as RowBinary on the loop, shipped by a LogShipper thread.

Encoding a row (pygate.logstore.rowbinary) is cheap enough for the event loop. The
buffer looks to the shipper like the core's record buffer (`RecordSource`), and the
store adapter sends batches to pygate.ai_calls, so these rows get the same batching,
disk spool, in-order replay, dedup tokens and bad-row quarantine as call records.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from dataclasses import dataclass

from pygate.logstore.base import LogStore
from pygate.logstore.dead_letter import DeadLetter
from pygate.logstore.shipper import LogShipper, ShipperSettings, TableSink
from pygate.logstore.spool import Spool
from pygate.logstore.tables import AI_CALLS

AI_CALLS_TABLE = AI_CALLS.name


@dataclass(slots=True)
class AiCall:
    request_id: str
    consumer: str
    alias: str
    endpoint: str
    streamed: bool
    started: float = 0.0  # time.time() when received
    provider: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    cost_usd: float = 0.0
    ttft_ms: float = 0.0
    latency_ms: float = 0.0
    fallback_used: str = ""
    cache_hit: bool = False
    status: int = 200
    error: str = ""
    attempts: int = 0


def encode_row(call: AiCall) -> bytes:
    """One pygate.ai_calls row (columns: pygate.logstore.tables.AI_CALLS)."""
    row = {field: getattr(call, field) for field in AiCall.__slots__}
    row["ts"] = int(call.started * 1000)
    return bytes(AI_CALLS.encode(row))


class AiCallBuffer:
    """Rows waiting for the shipper; bounded, drops (and counts) when full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: list[bytes] = []
        self._lock = threading.Lock()
        self.dropped = 0
        self.recorded = 0

    def add(self, call: AiCall) -> None:
        row = encode_row(call)
        with self._lock:
            if len(self._rows) >= self.capacity:
                self.dropped += 1
                return
            self._rows.append(row)
            self.recorded += 1

    # ----- RecordSource, for the shipper thread ---------------------------------------
    def drain_records(self, max_records: int, format: str) -> tuple[int, bytes, bytes]:
        assert format == "RowBinary"
        with self._lock:
            rows, self._rows = self._rows[:max_records], self._rows[max_records:]
        ends, offset = [], 0
        for row in rows:
            offset += len(row)
            ends.append(offset)
        return len(rows), b"".join(rows), struct.pack(f"<{len(ends)}I", *ends)

    def pending_records(self) -> int:
        return len(self._rows)

    def stats(self) -> dict[str, int]:
        return {"records_dropped": self.dropped}


def build_ai_shipper(
    buffer: AiCallBuffer, store: LogStore, spool_dir: str, spool_max_bytes: int, flush_s: float
) -> LogShipper:
    """A shipper for ai_calls with its own spool (`<log spool>/ai_calls`)."""
    directory = os.path.join(spool_dir, "ai_calls")
    spool = Spool(directory, spool_max_bytes)
    settings = ShipperSettings(batch_size=10_000, flush_interval_s=flush_s)
    sink = TableSink(store, AI_CALLS_TABLE)
    return LogShipper(buffer, sink, spool, DeadLetter(directory), settings)


def now() -> float:
    return time.time()
