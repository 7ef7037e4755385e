-- pygate.requests, WebSocket: a proxied WebSocket is one call, recorded when the socket
-- closes (core-rs/src/upgrade/); latency_ms is then the socket's whole life and bytes_in /
-- bytes_out include every frame. Zero for other calls.
ALTER TABLE pygate.requests
    ADD COLUMN IF NOT EXISTS ws_close_code UInt16 CODEC(ZSTD(1))
        COMMENT 'The first Close frame''s code (1000 normal, 1001 idle timeout or maximum lifetime, 1009 frame over max_frame_size), 1006 when the connection ended without one; 0 when the call was not a WebSocket.',
    ADD COLUMN IF NOT EXISTS ws_frames_in UInt64 CODEC(T64, ZSTD(1))
        COMMENT 'WebSocket frames relayed from the client to the upstream.',
    ADD COLUMN IF NOT EXISTS ws_frames_out UInt64 CODEC(T64, ZSTD(1))
        COMMENT 'WebSocket frames relayed from the upstream to the client.';
