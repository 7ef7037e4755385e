"""HTTP compression as ClickHouse speaks it: request bodies and responses.

clickhouse-connect compresses insert bodies (`Content-Encoding: lz4` by default) and,
when the server reports `enable_http_compression` as writable, asks for compressed
results with `enable_http_compression=1` and `Accept-Encoding: lz4,zstd,...`. lz4 is
LZ4 *frame* format there, like ClickHouse's own HTTP lz4 encoding.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable

from pygate.chserver.errors import (
    CANNOT_DECOMPRESS,
    UNKNOWN_COMPRESSION_METHOD,
    ClickHouseError,
)

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]  # (compress, decompress)

# Level 3 is ClickHouse's default http_zlib_compression_level: cheap, decent ratio.
_CODECS: dict[str, Codec] = {
    "gzip": (lambda data: gzip.compress(data, 3), gzip.decompress),
    "deflate": (lambda data: zlib.compress(data, 3), zlib.decompress),
    "xz": (lzma.compress, lzma.decompress),
    "bzip2": (bz2.compress, bz2.decompress),
}

try:  # lz4 and zstd come with clickhouse-connect; without them clients fall back
    import lz4.frame as _lz4

    _CODECS["lz4"] = (_lz4.compress, _lz4.decompress)
except ImportError:  # pragma: no cover
    pass
try:
    try:
        from compression import zstd as _zstd  # Python 3.14+
    except ImportError:
        from backports import zstd as _zstd

    _CODECS["zstd"] = (_zstd.compress, _zstd.decompress)
except ImportError:  # pragma: no cover
    pass
try:
    import brotli as _brotli

    _CODECS["br"] = (_brotli.compress, _brotli.decompress)
except ImportError:  # pragma: no cover
    pass

_ALIASES = {"x-gzip": "gzip", "bz2": "bzip2"}
_IDENTITY = ("", "identity", "none")


def supported_encodings() -> list[str]:
    return sorted(_CODECS)


def decompress_body(data: bytes, content_encoding: str | None) -> bytes:
    """Undo `Content-Encoding` of a request body (several encodings apply in order)."""
    if not content_encoding:
        return data
    for encoding in reversed([e.strip().lower() for e in content_encoding.split(",")]):
        if encoding in _IDENTITY:
            continue
        codec = _CODECS.get(_ALIASES.get(encoding, encoding))
        if codec is None:
            raise ClickHouseError(
                UNKNOWN_COMPRESSION_METHOD,
                f"Unknown Content-Encoding {encoding!r}; supported: "
                + ", ".join(supported_encodings()),
            )
        try:
            data = codec[1](data)
        except Exception as exc:
            raise ClickHouseError(
                CANNOT_DECOMPRESS, f"Cannot decompress the {encoding} request body: {exc}"
            ) from exc
    return data


def choose_encoding(accept_encoding: str | None) -> str | None:
    """The first encoding in the client's Accept-Encoding that we support."""
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().lower().partition(";")
        if params.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        name = _ALIASES.get(name.strip(), name.strip())
        if name in _CODECS:
            return name
    return None


def compress(data: bytes, encoding: str) -> bytes:
    return _CODECS[encoding][0](data)
