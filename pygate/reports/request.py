"""One request's full record, by its request id (the X-Request-Id a client saw).

Request ids are not in the table's sort key, so by default this searches all
retained data; --since or --from/--to narrow it to the days around the report and
make it fast. A client may reuse an id, so every match is listed, oldest first.
"""

from pygate.reports.report import Report

SQL = """
SELECT * REPLACE (toTimeZone(ts, 'UTC') AS ts)
FROM pygate.requests
WHERE request_id = {request_id:String}
  AND ts >= {from:DateTime64(3)} AND ts < {to:DateTime64(3)}
ORDER BY ts ASC
LIMIT 100
"""

REPORT = Report(
    name="request",
    title="One request's full record",
    description="every field of the request(s) with --request-id",
    sql=SQL,
    needs_request_id=True,
    default_since="all",
    vertical=True,
)
