"""The slowest requests in the window, slowest first, with what an analyst needs to
follow one up: its request id (for `pygate logs report request --request-id`), the
upstream that served it, and how much of the time the upstream took.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    toTimeZone(ts, 'UTC') AS time,
    request_id,
    route,
    consumer,
    method,
    path,
    status,
    round(latency_ms, 2) AS latency_ms,
    round(upstream_latency_ms, 2) AS upstream_ms,
    upstream_addr,
    error_kind
FROM pygate.requests
WHERE ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
  AND (isNull({route:Nullable(String)}) OR route = {route:Nullable(String)})
  AND (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
ORDER BY latency_ms DESC, ts ASC, request_id ASC
LIMIT {limit:UInt32}
"""

REPORT = Report(
    name="slowest",
    title="Slowest requests",
    description="the slowest requests, with request id and upstream time",
    sql=SQL,
    filters=("route", "consumer"),
    default_limit=20,
)
