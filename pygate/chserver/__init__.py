"""`pygate logs serve`: the embedded chDB log store over ClickHouse's HTTP interface.

So that standard tools (clickhouse-connect, curl, Grafana's ClickHouse datasource)
can query call logs, and the gateway's clickhouse:// sink can write to it.

    server.py       CLI entry, lifecycle, signals
    app.py          aiohttp handlers: parameters, headers, errors, compression
    dispatch.py     INSERT-with-data / USE / SET / query routing
    engine.py       chDB sessions on one dedicated thread
    sqltext.py      the bits of SQL lexing the routing needs
    params.py       URL parameters vs ClickHouse settings
    sessions.py     session_id state (database, settings)
    auth.py         users and ClickHouse's ways of sending credentials
    compression.py  Content-Encoding / Accept-Encoding
    formats.py      Content-Type per output format
    errors.py       ClickHouse error codes, texts and HTTP statuses

Nothing is imported here: `pygate --help` loads command.py only.
"""
