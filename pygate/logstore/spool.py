"""The disk spool: batches the store could not take, kept in order until it can.

One file per batch, named by a sequence number so a directory listing is the replay
order. A file is written to a temporary name, fsynced and renamed, so a crash leaves
either the whole batch or nothing; a checksum catches the rest (a disk that lies).
Each file keeps the batch's deduplication token, so a batch replayed after a restart
is still recognised by the store if an earlier attempt did reach it.

    magic "PGSPOOL1" | count u32 | data_len u32 | crc32 u32 | token_len u16 | token
    | row_ends (count * u32) | data        (little-endian; crc32 covers row_ends+data)

The spool is bounded (`log.spool_max_bytes`); when it is full the shipper stops
draining the core, whose buffer then drops (and counts) new records. A lock file
keeps two gateways from replaying the same spool.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections import deque
from dataclasses import dataclass

from pygate.logstore.batch import Batch

log = logging.getLogger("pygate.spool")

_MAGIC = b"PGSPOOL1"
_HEADER = struct.Struct("<IIIH")
_SUFFIX = ".batch"
_LOCK_FILE = ".lock"


def default_spool_dir(store_path: str, config_dir: str) -> str:
    """Next to a chDB data directory (`./data` -> `./data-spool`); else by the config."""
    if store_path:
        return store_path.rstrip(os.sep) + "-spool"
    return os.path.join(config_dir, "pygate-spool")


class SpoolError(Exception):
    """The spool directory cannot be used (permissions, or another gateway has it)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str
    count: int
    size: int  # bytes on disk


class Spool:
    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._entries: deque[_Entry] = deque()
        self._next_seq = 0
        self.rows = 0
        self.bytes = 0
        self._lock_fd: int | None = None
        try:
            os.makedirs(directory, exist_ok=True)
            self._lock_fd = os.open(os.path.join(directory, _LOCK_FILE), os.O_RDWR | os.O_CREAT)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise SpoolError(
                f"log spool {directory} is in use by another gateway (one spool per gateway)"
            ) from None
        except OSError as exc:
            self.close()
            raise SpoolError(f"cannot use log spool {directory}: {exc.strerror or exc}") from exc
        self._scan()

    @property
    def batches(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def push(self, batch: Batch) -> bool:
        """Append `batch` durably; False (nothing written) when it does not fit."""
        size = len(_MAGIC) + _HEADER.size + len(batch.token.encode()) + batch.size
        if self.bytes + size > self.max_bytes:
            return False
        seq = self._next_seq
        final = os.path.join(self.directory, f"{seq:016d}{_SUFFIX}")
        temporary = os.path.join(self.directory, f".{seq:016d}.tmp")
        token = batch.token.encode()
        crc = zlib.crc32(batch.data, zlib.crc32(batch.row_ends))
        with open(temporary, "wb") as out:
            out.write(_MAGIC)
            out.write(_HEADER.pack(batch.count, len(batch.data), crc, len(token)))
            out.write(token)
            out.write(batch.row_ends)
            out.write(batch.data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(temporary, final)
        self._fsync_directory()
        self._next_seq = seq + 1
        self._entries.append(_Entry(final, batch.count, size))
        self.rows += batch.count
        self.bytes += size
        return True

    def oldest(self) -> Batch | None:
        """The batch to replay next (read from disk), or None when the spool is empty.

        A file that fails its checksum is set aside as `*.corrupt` and skipped.
        """
        while self._entries:
            entry = self._entries[0]
            try:
                return _read(entry.path)
            except (OSError, ValueError) as exc:
                log.error("log spool: setting aside unreadable %s: %s", entry.path, exc)
                self._forget_oldest()
                try:
                    os.rename(entry.path, entry.path + ".corrupt")
                except OSError:
                    pass
        return None

    def pop_oldest(self) -> None:
        """Delete the oldest batch (after the store has it)."""
        entry = self._forget_oldest()
        os.unlink(entry.path)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # also releases the flock
            self._lock_fd = None

    def _forget_oldest(self) -> _Entry:
        entry = self._entries.popleft()
        self.rows -= entry.count
        self.bytes -= entry.size
        return entry

    def _scan(self) -> None:
        names = sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                count = _read_count(path)
            except (OSError, ValueError) as exc:
                log.error("log spool: ignoring unreadable %s: %s", path, exc)
                continue
            size = os.path.getsize(path)
            self._entries.append(_Entry(path, count, size))
            self.rows += count
            self.bytes += size
            self._next_seq = max(self._next_seq, int(name.removesuffix(_SUFFIX)) + 1)
        # Leftovers of a crash in the middle of push(): never renamed, so never counted.
        for name in os.listdir(self.directory):
            if name.endswith(".tmp"):
                os.unlink(os.path.join(self.directory, name))

    def _fsync_directory(self) -> None:
        # The rename is only durable once the directory entry is on disk.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_header(raw: bytes, path: str) -> tuple[int, int, int, int]:
    if raw[: len(_MAGIC)] != _MAGIC or len(raw) < len(_MAGIC) + _HEADER.size:
        raise ValueError(f"{path} is not a pygate spool file")
    return _HEADER.unpack_from(raw, len(_MAGIC))


def _read_count(path: str) -> int:
    with open(path, "rb") as spooled:
        return _read_header(spooled.read(len(_MAGIC) + _HEADER.size), path)[0]


def _read(path: str) -> Batch:
    with open(path, "rb") as spooled:
        raw = spooled.read()
    count, data_len, crc, token_len = _read_header(raw, path)
    pos = len(_MAGIC) + _HEADER.size
    token = raw[pos : pos + token_len].decode()
    pos += token_len
    row_ends = raw[pos : pos + 4 * count]
    data = raw[pos + 4 * count :]
    if len(data) != data_len or zlib.crc32(data, zlib.crc32(row_ends)) != crc:
        raise ValueError("checksum mismatch (truncated or damaged file)")
    return Batch(count, data, row_ends, token)
