"""p50, p95 and p99 latency per route, merged from the per-minute t-digest states.

Quantiles come from t-digests (what the rollup keeps), so on large volumes they are
estimates with small relative error; that is the price of answering over months in
milliseconds. Latency is the gateway's full time for the request, in milliseconds.

The window is counted exactly: the rollup for its whole minutes, the raw rows for the
partial minutes at its edges (a few seconds of rows, merged as t-digest states too).
Raw rows are kept log.retention_days; the rollup has no TTL, so for a window that
starts before that, only the partial first minute goes uncounted.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    route,
    sum(n) AS requests,
    -- One merge: ClickHouse computes an aggregate repeated in a query only once.
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[1], 2) AS p50_ms,
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[2], 2) AS p95_ms,
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[3], 2) AS p99_ms
FROM
(
    -- The whole minutes inside the window, from the rollup...
    SELECT route, requests AS n, latency
    FROM pygate.requests_1m_route
    WHERE (isNull({route:Nullable(String)}) OR route = {route:Nullable(String)})
      AND minute >= {inner_from:DateTime64(3)} AND minute < {inner_to:DateTime64(3)}
    UNION ALL
    -- ...and the partial minutes at its edges from the raw rows, as the same states.
    SELECT route, count(), quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms)
    FROM pygate.requests
    WHERE (isNull({route:Nullable(String)}) OR route = {route:Nullable(String)})
      AND ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
      AND (ts < {inner_from:DateTime64(3)} OR ts >= {inner_to:DateTime64(3)})
    GROUP BY route
)
GROUP BY route
ORDER BY p99_ms DESC, route ASC
"""

REPORT = Report(
    name="latency",
    title="Latency per route (p50, p95, p99)",
    description="latency quantiles per route, slowest p99 first",
    sql=SQL,
    filters=("route",),
)
