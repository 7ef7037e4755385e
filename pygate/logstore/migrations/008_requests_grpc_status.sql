-- pygate.requests: a gRPC call's outcome. gRPC answers HTTP 200 and puts its status in
-- `grpc-status` (trailers, or the headers of a body-less response), so `status` alone
-- cannot tell a failed call. Placed after error_kind, as in the core's column table
-- (core-rs/src/records/columns.rs).
ALTER TABLE pygate.requests
    ADD COLUMN IF NOT EXISTS grpc_status LowCardinality(String) CODEC(ZSTD(1))
        COMMENT 'gRPC status code of a gRPC call ("0" OK .. "16" UNAUTHENTICATED), from the upstream''s grpc-status or the gateway''s own refusal (which keeps its HTTP status in status). Empty for other calls.'
        AFTER error_kind;
