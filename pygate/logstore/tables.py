"""The tables pygate writes from Python, declared once: (column, ClickHouse type) in
table order, as the migrations create them (tests/test_log_columns.py checks that).

pygate.requests is the core's (`pygate._core.requests_columns()`); pygate.bench_runs
is written as JSONEachRow by name (sql_store.bench_run_row).
"""

from __future__ import annotations

from pygate.logstore.rowbinary import RowBinaryTable

LC = "LowCardinality(String)"

# One row per AI gateway call (migration 006; rows built in pygate/ai/calllog.py).
AI_CALLS = RowBinaryTable(
    "pygate.ai_calls",
    (
        ("request_id", "String"),
        ("ts", "DateTime64(3)"),
        ("consumer", LC),
        ("alias", LC),
        ("provider", LC),
        ("model", LC),
        ("prompt_tokens", "UInt32"),
        ("completion_tokens", "UInt32"),
        ("tokens_estimated", "Bool"),
        ("cost_usd", "Float64"),
        ("ttft_ms", "Float32"),
        ("latency_ms", "Float32"),
        ("streamed", "Bool"),
        ("fallback_used", LC),
        ("cache_hit", "Bool"),
        ("status", "UInt16"),
        ("error", "String"),
        ("endpoint", LC),
        ("attempts", "UInt8"),
    ),
)

# One row per entity changed through the admin API or a file import (migration 005;
# rows built in pygate/server/admin_api/audit.py).
AUDIT_LOG = RowBinaryTable(
    "pygate.audit_log",
    (
        ("ts", "DateTime64(3)"),
        ("seq", "UInt64"),
        ("change_id", "String"),
        ("actor", LC),
        ("client", "String"),
        ("action", LC),
        ("entity_kind", LC),
        ("entity_name", "String"),
        ("before", "String"),
        ("after", "String"),
        ("request", "String"),
    ),
)

PYTHON_TABLES = (AI_CALLS, AUDIT_LOG)
