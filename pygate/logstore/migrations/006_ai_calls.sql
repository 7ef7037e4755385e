-- One row per call through the AI gateway (pygate/ai), written by the gateway process.
-- Join with pygate.requests on request_id for the HTTP side of the same call
-- (route, client, bytes, the status the core sent).
-- Column order is the RowBinary order of AI_CALLS in pygate/logstore/tables.py.
CREATE TABLE IF NOT EXISTS pygate.ai_calls
(
    request_id String COMMENT 'X-Request-Id of the call; pygate.requests has the same id.',
    ts DateTime64(3) COMMENT 'When the AI gateway received the call (UTC).',
    consumer LowCardinality(String) COMMENT 'Authenticated consumer; empty if none.',
    alias LowCardinality(String) COMMENT 'The model name the caller asked for (an alias or provider/model).',
    provider LowCardinality(String) COMMENT 'Provider that answered (the last one tried if none did).',
    model LowCardinality(String) COMMENT 'Provider model that answered.',
    prompt_tokens UInt32 COMMENT 'Input tokens, from the provider usage (or estimated).',
    completion_tokens UInt32 COMMENT 'Output tokens, from the provider usage (or estimated).',
    tokens_estimated Bool COMMENT 'True when the provider sent no usage and the tokens are estimated.',
    cost_usd Float64 COMMENT 'From the ai.prices table; 0 for cache hits and unpriced models.',
    ttft_ms Float32 COMMENT 'Time to first token (first streamed byte; whole answer if not streamed).',
    latency_ms Float32 COMMENT 'Whole call in the AI gateway, retries and fallbacks included.',
    streamed Bool,
    fallback_used LowCardinality(String) COMMENT 'The fallback (alias or provider/model) that answered; empty if the first choice did.',
    cache_hit Bool COMMENT 'Answered from the exact-match response cache.',
    status UInt16 COMMENT 'Outcome: 200, or the error status (a stream that failed midway: 502).',
    error String COMMENT 'Error kind and message; empty on success.',
    endpoint LowCardinality(String) COMMENT 'chat, messages, embeddings or template:NAME@VERSION.',
    attempts UInt8 COMMENT 'Provider requests made (retries, key rotations and fallbacks included).'
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (consumer, ts)
TTL toDateTime(ts) + INTERVAL {retention_days} DAY
COMMENT 'One row per AI gateway call: tokens, cost, latency, fallbacks, cache hits.';
