-- Per-minute rollups for dashboards and reports over long windows: one row per
-- (route, minute) and per (consumer, minute) instead of one per request, kept up to
-- date by materialized views on every insert into pygate.requests.
--
-- Query them with sum() and the -Merge combinator, never with bare column values:
-- a minute can be spread over several rows until background merges combine them.
--
--   SELECT minute, sum(requests) AS requests, sum(status_5xx) AS errors,
--          quantilesTDigestMerge(0.5, 0.95, 0.99)(latency) AS p50_p95_p99
--   FROM pygate.requests_1m_route
--   WHERE route = 'items-api' AND minute >= now() - INTERVAL 1 DAY
--   GROUP BY minute ORDER BY minute
--
-- Rollups have no TTL: a route costs at most 1440 small rows a day, so they outlive
-- log.retention_days and keep months of trends after the raw rows are gone.
-- The deduplication window matches pygate.requests: the views pass the insert's
-- deduplication token on, so a replayed batch is not counted twice here either.
CREATE TABLE IF NOT EXISTS pygate.requests_1m_route
(
    minute DateTime COMMENT 'Start of the minute (request ts rounded down).',
    route LowCardinality(String) COMMENT 'Route name; empty for requests that matched no route.',
    requests SimpleAggregateFunction(sum, UInt64) COMMENT 'Requests answered.',
    status_2xx SimpleAggregateFunction(sum, UInt64),
    status_3xx SimpleAggregateFunction(sum, UInt64),
    status_4xx SimpleAggregateFunction(sum, UInt64),
    status_5xx SimpleAggregateFunction(sum, UInt64),
    rate_limited SimpleAggregateFunction(sum, UInt64) COMMENT 'Requests refused by the rate limiter (also counted in status_4xx).',
    bytes_in SimpleAggregateFunction(sum, UInt64),
    bytes_out SimpleAggregateFunction(sum, UInt64),
    latency AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float32) COMMENT 'latency_ms quantile state: read with quantilesTDigestMerge(0.5, 0.95, 0.99)(latency).'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (route, minute)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'Requests per route and minute, fed by pygate.requests_1m_route_mv.';

CREATE TABLE IF NOT EXISTS pygate.requests_1m_consumer
(
    minute DateTime COMMENT 'Start of the minute (request ts rounded down).',
    consumer LowCardinality(String) COMMENT 'Consumer name; empty for unauthenticated requests.',
    requests SimpleAggregateFunction(sum, UInt64) COMMENT 'Requests answered.',
    status_2xx SimpleAggregateFunction(sum, UInt64),
    status_3xx SimpleAggregateFunction(sum, UInt64),
    status_4xx SimpleAggregateFunction(sum, UInt64),
    status_5xx SimpleAggregateFunction(sum, UInt64),
    rate_limited SimpleAggregateFunction(sum, UInt64) COMMENT 'Requests refused by the rate limiter (also counted in status_4xx).',
    bytes_in SimpleAggregateFunction(sum, UInt64),
    bytes_out SimpleAggregateFunction(sum, UInt64),
    latency AggregateFunction(quantilesTDigest(0.5, 0.95, 0.99), Float32) COMMENT 'latency_ms quantile state: read with quantilesTDigestMerge(0.5, 0.95, 0.99)(latency).'
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (consumer, minute)
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'Requests per consumer and minute, fed by pygate.requests_1m_consumer_mv.';

CREATE MATERIALIZED VIEW IF NOT EXISTS pygate.requests_1m_route_mv
TO pygate.requests_1m_route
AS SELECT
    toStartOfMinute(toDateTime(ts)) AS minute,
    route,
    count() AS requests,
    countIf(status >= 200 AND status < 300) AS status_2xx,
    countIf(status >= 300 AND status < 400) AS status_3xx,
    countIf(status >= 400 AND status < 500) AS status_4xx,
    countIf(status >= 500) AS status_5xx,
    countIf(rate_limited) AS rate_limited,
    sum(bytes_in) AS bytes_in,
    sum(bytes_out) AS bytes_out,
    quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms) AS latency
FROM pygate.requests
GROUP BY minute, route;

CREATE MATERIALIZED VIEW IF NOT EXISTS pygate.requests_1m_consumer_mv
TO pygate.requests_1m_consumer
AS SELECT
    toStartOfMinute(toDateTime(ts)) AS minute,
    consumer,
    count() AS requests,
    countIf(status >= 200 AND status < 300) AS status_2xx,
    countIf(status >= 300 AND status < 400) AS status_3xx,
    countIf(status >= 400 AND status < 500) AS status_4xx,
    countIf(status >= 500) AS status_5xx,
    countIf(rate_limited) AS rate_limited,
    sum(bytes_in) AS bytes_in,
    sum(bytes_out) AS bytes_out,
    quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms) AS latency
FROM pygate.requests
GROUP BY minute, consumer;

-- Rows logged before this migration: views only see new inserts, so the rollups are
-- filled once from what pygate.requests already holds. A gateway migrates before its
-- shipper starts, so none of its own rows slip between the view and this backfill.
-- With several gateways on one ClickHouse server, upgrade one first.
INSERT INTO pygate.requests_1m_route
SELECT
    toStartOfMinute(toDateTime(ts)) AS minute,
    route,
    count(),
    countIf(status >= 200 AND status < 300),
    countIf(status >= 300 AND status < 400),
    countIf(status >= 400 AND status < 500),
    countIf(status >= 500),
    countIf(rate_limited),
    sum(bytes_in),
    sum(bytes_out),
    quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms)
FROM pygate.requests
GROUP BY minute, route;

INSERT INTO pygate.requests_1m_consumer
SELECT
    toStartOfMinute(toDateTime(ts)) AS minute,
    consumer,
    count(),
    countIf(status >= 200 AND status < 300),
    countIf(status >= 300 AND status < 400),
    countIf(status >= 400 AND status < 500),
    countIf(status >= 500),
    countIf(rate_limited),
    sum(bytes_in),
    sum(bytes_out),
    quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms)
FROM pygate.requests
GROUP BY minute, consumer;
