-- pygate.requests, TLS: what a call's connection negotiated (empty on plain HTTP).
-- Filled by the core from the handshake (core-rs/src/tls/accept.rs).
ALTER TABLE pygate.requests
    ADD COLUMN IF NOT EXISTS tls_version LowCardinality(String) CODEC(ZSTD(1))
        COMMENT 'TLSv1.3 or TLSv1.2; empty when the call came over plain HTTP.',
    ADD COLUMN IF NOT EXISTS tls_sni LowCardinality(String) CODEC(ZSTD(1))
        COMMENT 'The server name the client sent in the TLS handshake (SNI); empty if none.',
    ADD COLUMN IF NOT EXISTS tls_alpn LowCardinality(String) CODEC(ZSTD(1))
        COMMENT 'The ALPN protocol agreed (http/1.1, h2); empty if none.';
