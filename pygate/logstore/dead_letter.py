"""Quarantine for rows the store refused: kept, not retried, not lost silently.

Two append-only files in the spool directory:

- `dead-letter.rowbinary`: the refused rows, byte for byte as the core produced
  them (pygate.requests column order), readable with e.g.
  `clickhouse local --input-format RowBinary --structure "$(...columns...)"`;
- `dead-letter.jsonl`: one JSON line per row: when, which batch, where the row sits
  in the .rowbinary file, and the store's error message.

Once the cause is fixed (say, a constraint was too strict) the rows can be inserted
again from the .rowbinary file.
"""

from __future__ import annotations

import os
import time

import orjson

from pygate.logstore.batch import Batch

ROWS_FILE = "dead-letter.rowbinary"
INDEX_FILE = "dead-letter.jsonl"


class DeadLetter:
    def __init__(self, directory: str) -> None:
        self.rows_path = os.path.join(directory, ROWS_FILE)
        self.index_path = os.path.join(directory, INDEX_FILE)

    def quarantine(self, rows: list[tuple[Batch, str]]) -> None:
        """Append refused rows (each a one-row batch with the store's error)."""
        if not rows:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(self.rows_path, "ab") as data, open(self.index_path, "ab") as index:
            offset = data.tell()
            for batch, error in rows:
                data.write(batch.data)
                entry = {
                    "quarantined_at": now,
                    "batch": batch.token,
                    "offset": offset,
                    "length": len(batch.data),
                    "error": error,
                }
                index.write(orjson.dumps(entry) + b"\n")
                offset += len(batch.data)
            for stream in (data, index):
                stream.flush()
                os.fsync(stream.fileno())
