"""Traffic and error rate over time, from the per-minute rollups.

Reads requests_1m_route, or requests_1m_consumer when a consumer is asked for: each
branch of the UNION is switched off by its WHERE unless its filter applies, so this
stays one query with the same text on chDB and a ClickHouse server.

Buckets are whole minutes (the rollup's grain), so the window is widened to the whole
minutes it touches and printed that way: every bucket is then a full one. Counting the
edges exactly from raw rows would draw partial first and last buckets as dips, and over
the long windows this report is for, those raw rows have often expired.
Empty buckets are filled with zeros: a gap in traffic is information.
"""

from pygate.reports.report import Report

SQL = """
SELECT
    toStartOfInterval(minute, toIntervalSecond({bucket_s:UInt32}), 'UTC') AS time,
    sum(n_requests) AS requests,
    sum(n_2xx) AS status_2xx,
    sum(n_3xx) AS status_3xx,
    sum(n_4xx) AS status_4xx,
    sum(n_5xx) AS status_5xx,
    sum(n_rate_limited) AS rate_limited,
    round(100 * status_4xx / requests, 2) AS client_error_pct,
    round(100 * status_5xx / requests, 2) AS server_error_pct
FROM
(
    SELECT minute, requests AS n_requests, status_2xx AS n_2xx, status_3xx AS n_3xx,
           status_4xx AS n_4xx, status_5xx AS n_5xx, rate_limited AS n_rate_limited
    FROM pygate.requests_1m_route
    WHERE isNull({consumer:Nullable(String)})
      AND (isNull({route:Nullable(String)}) OR route = {route:Nullable(String)})
      AND minute >= toStartOfMinute({from:DateTime64(3)}) AND minute < {to:DateTime64(3)}
    UNION ALL
    SELECT minute, requests, status_2xx, status_3xx, status_4xx, status_5xx, rate_limited
    FROM pygate.requests_1m_consumer
    WHERE consumer = {consumer:Nullable(String)}
      AND minute >= toStartOfMinute({from:DateTime64(3)}) AND minute < {to:DateTime64(3)}
)
GROUP BY time
ORDER BY time ASC WITH FILL
    FROM toStartOfInterval(
        toDateTime({from:DateTime64(3)}), toIntervalSecond({bucket_s:UInt32}), 'UTC')
    TO toDateTime({to:DateTime64(3)}, 'UTC')
    STEP toIntervalSecond({bucket_s:UInt32})
"""

REPORT = Report(
    name="traffic",
    title="Traffic and error rate over time",
    description="requests per bucket by status class, rate-limit rejections, error rates",
    sql=SQL,
    filters=("route", "consumer"),
    filters_exclusive=True,
    whole_minutes=True,
)
