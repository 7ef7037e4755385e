"""Get one batch into the store, giving up on bad rows only.

A batch the store refuses is bisected at row boundaries until every piece is either
written or a single refused row, which is quarantined. A batch with one bad row among
10,000 costs about 28 extra inserts of shrinking size, all on the failure path.
Every piece carries a token derived from its batch's, so when the store becomes
unavailable halfway and the whole batch is retried later, the pieces written the
first time are deduplicated by the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pygate.logstore.base import BatchRejected, StoreUnavailable
from pygate.logstore.batch import Batch


class RowSink(Protocol):
    """Where batches go: one table's RowBinary inserts (a LogStore is one for
    pygate.requests; shipper.TableSink aims a store at another table)."""

    def insert_row_binary(self, data: bytes, dedup_token: str) -> None:
        """Insert whole rows once per token; raises BatchRejected or StoreUnavailable."""


@dataclass(slots=True)
class Outcome:
    # False: the store became unavailable; keep the whole batch and retry it later.
    delivered: bool = True
    rows_written: int = 0
    refused: list[tuple[Batch, str]] = field(default_factory=list)
    inserts: int = 0
    error: str | None = None

    @property
    def rows_refused(self) -> int:
        return len(self.refused)


def deliver(sink: RowSink, batch: Batch) -> Outcome:
    outcome = Outcome()
    # A stack of pieces still to insert, the next one on top, so rows go in order.
    pending = [batch]
    while pending:
        piece = pending.pop()
        outcome.inserts += 1
        try:
            sink.insert_row_binary(piece.data, piece.token)
        except BatchRejected as exc:
            outcome.error = str(exc)
            if piece.count == 1:
                outcome.refused.append((piece, str(exc)))
            else:
                first, second = piece.split()
                pending.extend((second, first))
            continue
        except StoreUnavailable as exc:
            outcome.delivered = False
            outcome.error = str(exc)
            return outcome
        outcome.rows_written += piece.count
    return outcome
