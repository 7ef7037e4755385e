"""Sort ClickHouse errors into "the data is bad" and "the store is unwell".

Both chDB and a ClickHouse server report `Code: NNN. DB::Exception: ...`. Only codes
that a particular row can cause count as a rejection of the data; everything else
(network, memory, too many parts, disk, unknown table, ...) is treated as the store
being unavailable, so the batch is kept and retried instead of being picked apart.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"\bCode: (\d+)\b")

# ClickHouse error codes raised while parsing or checking individual rows.
ROW_DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        33,  # CANNOT_READ_ALL_DATA
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        395,  # FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (throwIf in a view or default)
        467,  # CANNOT_PARSE_BOOL
        469,  # VIOLATED_CONSTRAINT
    }
)


def error_code(text: str) -> int | None:
    match = _CODE.search(text)
    return int(match.group(1)) if match else None


def is_row_data_error(text: str) -> bool:
    return error_code(text) in ROW_DATA_ERROR_CODES


def first_line(exc: BaseException) -> str:
    # ClickHouse errors carry a stack trace after the first line; operators need the
    # first line only.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
