"""Top consumers by requests, from the per-minute consumer rollup.

The answer to "which consumer drove a spike": narrow the window to the spike.
Requests without a consumer (no key-auth on the route) are counted under "".
"""

from pygate.reports.report import Report

SQL = """
SELECT
    consumer,
    sum(requests) AS requests,
    sum(status_4xx) AS status_4xx,
    sum(status_5xx) AS status_5xx,
    sum(rate_limited) AS rate_limited,
    sum(bytes_in) AS bytes_in,
    sum(bytes_out) AS bytes_out,
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[2], 2) AS p95_ms
FROM pygate.requests_1m_consumer
WHERE (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
  AND minute >= toStartOfMinute({from:DateTime64(3)}) AND minute < {to:DateTime64(3)}
GROUP BY consumer
ORDER BY requests DESC, consumer ASC
LIMIT {limit:UInt32}
"""

REPORT = Report(
    name="consumers",
    title="Top consumers",
    description="consumers by requests, with errors, rejections, bytes and p95",
    sql=SQL,
    filters=("consumer",),
    default_limit=10,
)
