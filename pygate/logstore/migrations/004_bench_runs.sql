-- History of `pygate bench --save` runs, so load tests can be compared over time
-- (for example: SELECT ts, url, requests_per_s, p99_ms FROM pygate.bench_runs ORDER BY ts).
CREATE TABLE IF NOT EXISTS pygate.bench_runs
(
    ts DateTime64(3) COMMENT 'When the run ended.',
    url String COMMENT 'Target URL.',
    mode LowCardinality(String) COMMENT 'closed (next request when the answer is in) or open (fixed rate).',
    connections UInt32,
    threads UInt32,
    target_rate Nullable(Float64) COMMENT 'Requests/s asked for in open-loop mode.',
    duration_s Float64 COMMENT 'Measured seconds (warmup excluded).',
    requests UInt64 COMMENT 'Responses received in the measured phase.',
    requests_per_s Float64,
    errors UInt64 COMMENT 'Transport failures (connect, timeout, closed, protocol, io).',
    non_2xx UInt64 COMMENT 'Responses whose status was not 2xx.',
    p50_ms Float64,
    p90_ms Float64,
    p99_ms Float64,
    p999_ms Float64,
    max_ms Float64,
    report String COMMENT 'The whole JSON report of the run.'
)
ENGINE = MergeTree
ORDER BY ts
COMMENT 'One row per saved pygate bench run.';
