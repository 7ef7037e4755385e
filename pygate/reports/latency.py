"""p50, p95 and p99 latency per route, merged from the per-minute t-digest states.

Quantiles come from t-digests (what the rollup keeps), so on large volumes they are
estimates with small relative error; that is the price of answering over months in
milliseconds. Latency is the gateway's full time for the request, in milliseconds.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    route,
    sum(requests) AS requests,
    -- One merge: ClickHouse computes an aggregate repeated in a query only once.
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[1], 2) AS p50_ms,
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[2], 2) AS p95_ms,
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[3], 2) AS p99_ms
FROM pygate.requests_1m_route
WHERE (isNull({route:Nullable(String)}) OR route = {route:Nullable(String)})
  AND minute >= toStartOfMinute({from:DateTime64(3)}) AND minute < {to:DateTime64(3)}
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
