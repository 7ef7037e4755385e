-- pygate.requests: the protocol column: which HTTP carried the call ("HTTP/1.1", "HTTP/2"; empty when
-- the gateway refused a request whose head it could not read). Placed after method, as
-- in the core's column table (core-rs/src/records/columns.rs).
ALTER TABLE pygate.requests
    ADD COLUMN IF NOT EXISTS protocol LowCardinality(String) CODEC(ZSTD(1))
        COMMENT 'HTTP version of the client request: HTTP/1.0, HTTP/1.1 or HTTP/2; empty when the request head could not be read'
        AFTER method;
