"""Top consumers by requests, from the per-minute consumer rollup.

The answer to "which consumer drove a spike": narrow the window to the spike.
Requests without a consumer (no key-auth on the route) are counted under "".
The window is counted exactly, as in the latency report: the rollup for its whole
minutes, the raw rows for the partial minutes at its edges.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    consumer,
    sum(n) AS requests,
    sum(n_4xx) AS status_4xx,
    sum(n_5xx) AS status_5xx,
    sum(n_rate_limited) AS rate_limited,
    sum(n_bytes_in) AS bytes_in,
    sum(n_bytes_out) AS bytes_out,
    round(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency)[2], 2) AS p95_ms
FROM
(
    -- The whole minutes inside the window, from the rollup...
    SELECT consumer, requests AS n, status_4xx AS n_4xx, status_5xx AS n_5xx,
           rate_limited AS n_rate_limited, bytes_in AS n_bytes_in, bytes_out AS n_bytes_out,
           latency
    FROM pygate.requests_1m_consumer
    WHERE (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
      AND minute >= {inner_from:DateTime64(3)} AND minute < {inner_to:DateTime64(3)}
    UNION ALL
    -- ...and the partial minutes at its edges from the raw rows.
    SELECT consumer, count(), countIf(status >= 400 AND status < 500), countIf(status >= 500),
           countIf(rate_limited), sum(bytes_in), sum(bytes_out),
           quantilesTDigestState(0.5, 0.95, 0.99)(latency_ms)
    FROM pygate.requests
    WHERE (isNull({consumer:Nullable(String)}) OR consumer = {consumer:Nullable(String)})
      AND ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
      AND (ts < {inner_from:DateTime64(3)} OR ts >= {inner_to:DateTime64(3)})
    GROUP BY consumer
)
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
