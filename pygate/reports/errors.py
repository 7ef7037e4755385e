"""4xx and 5xx responses broken down by status and by the gateway's error kind.

Read from the raw table because the rollups keep status classes, not codes.
`error_kind` is empty when the upstream itself answered with the error status, so
"502 upstream_unavailable" (the gateway could not connect) and "502" (the upstream
said so) are told apart. first_seen answers "since when?".
"""

from pygate.reports.report import Report

SQL = """
SELECT
    status,
    concat(toString(intDiv(status, 100)), 'xx') AS class,
    error_kind,
    count() AS requests,
    round(100 * requests / sum(requests) OVER (), 2) AS pct_of_errors,
    uniqExact(route) AS routes,
    uniqExact(consumer) AS consumers,
    toTimeZone(min(ts), 'UTC') AS first_seen,
    toTimeZone(max(ts), 'UTC') AS last_seen
FROM pygate.requests
WHERE ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
  AND status >= 400
  AND (isNull({route:Nullable(String)}) OR route = {route:Nullable(String)})
  AND (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
GROUP BY status, error_kind
ORDER BY requests DESC, status ASC, error_kind ASC
"""

REPORT = Report(
    name="errors",
    title="4xx/5xx breakdown by status",
    description="error responses by status code and error kind, with first and last seen",
    sql=SQL,
    filters=("route", "consumer"),
)
