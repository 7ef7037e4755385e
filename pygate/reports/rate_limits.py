"""Rate-limit rejections (429 from the rate-limit plugin) per route and consumer.

Read from the raw table: a route's limit may be per consumer or per client IP, so
the breakdown needs both keys, which no single rollup has. `requests` counts every
request of the same route and consumer in the window, to show the rejected share.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    route,
    consumer,
    countIf(rate_limited) AS rejected,
    count() AS requests,
    round(100 * rejected / requests, 2) AS rejected_pct,
    uniqExactIf(client_ip, rate_limited) AS rejected_clients,
    toTimeZone(minIf(ts, rate_limited), 'UTC') AS first_rejected,
    toTimeZone(maxIf(ts, rate_limited), 'UTC') AS last_rejected
FROM pygate.requests
WHERE ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
  AND (isNull({route:Nullable(String)}) OR route = {route:Nullable(String)})
  AND (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
GROUP BY route, consumer
HAVING rejected > 0
ORDER BY rejected DESC, route ASC, consumer ASC
LIMIT {limit:UInt32}
"""

REPORT = Report(
    name="rate-limits",
    title="Rate-limit rejections",
    description="rejected requests per route and consumer, with the rejected share",
    sql=SQL,
    filters=("route", "consumer"),
    default_limit=20,
)
