"""A batch of call records in flight: RowBinary bytes plus where each row ends.

Python never decodes rows. `row_ends` (little-endian uint32 offsets from the core)
is only used to cut a refused batch at row boundaries; it is read as native uint32,
which is little-endian on every platform the core is built for.
"""

from __future__ import annotations

import array
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Batch:
    count: int
    data: bytes
    row_ends: bytes  # `count` little-endian uint32: offset just past each row
    # Idempotency key for the store. Stable for the life of the batch (memory, spool,
    # replays after a restart); the pieces of a bisected batch derive theirs from it,
    # so a re-run of the same bisection deduplicates too.
    token: str

    @classmethod
    def new(cls, count: int, data: bytes, row_ends: bytes) -> Batch:
        return cls(count, data, row_ends, uuid.uuid4().hex)

    @property
    def size(self) -> int:
        return len(self.data) + len(self.row_ends)

    def split(self) -> tuple[Batch, Batch]:
        """Two halves at the middle row boundary; needs count >= 2."""
        ends = memoryview(self.row_ends).cast("I")
        middle = self.count // 2
        cut = ends[middle - 1]
        first = Batch(middle, self.data[:cut], self.row_ends[: middle * 4], f"{self.token}/0")
        # Offsets of the second half are relative to its own data. A loop per row is
        # fine here: splitting only happens to batches the store refused.
        rest_ends = array.array("I", ends[middle:])
        for index in range(len(rest_ends)):
            rest_ends[index] -= cut
        second = Batch(self.count - middle, self.data[cut:], rest_ends.tobytes(), f"{self.token}/1")
        return first, second

    def row(self, index: int) -> bytes:
        ends = memoryview(self.row_ends).cast("I")
        start = ends[index - 1] if index else 0
        return self.data[start : ends[index]]
