-- Call records shipped from the core, one row per request.
-- Column order is the core's column table (core-rs/src/records/columns.rs).
-- The TTL is (re)applied from log.retention_days at every start, see chdb_store.py.
CREATE TABLE IF NOT EXISTS pygate.requests
(
    ts DateTime64(3),
    request_id String,
    route LowCardinality(String),
    consumer LowCardinality(String),
    method LowCardinality(String),
    host LowCardinality(String),
    path String,
    status UInt16,
    latency_ms Float32,
    upstream_latency_ms Float32,
    bytes_in UInt64,
    bytes_out UInt64,
    client_ip String,
    upstream_addr LowCardinality(String),
    error_kind LowCardinality(String),
    rate_limited Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (route, ts)
TTL toDateTime(ts) + INTERVAL {retention_days} DAY
