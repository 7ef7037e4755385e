-- The admin API's audit log: one row per entity changed (pygate/server/admin_api/audit.py;
-- column order: AUDIT_LOG in pygate/logstore/tables.py).
-- Rows are shipped by the gateway from its admin state (SQLite), where they wait
-- until the store took them, so a store that is down loses none.
CREATE TABLE IF NOT EXISTS pygate.audit_log
(
    ts DateTime64(3) COMMENT 'When the change was applied (UTC, millisecond precision).',
    seq UInt64 COMMENT 'Order of the rows of one gateway''s admin state (ties on ts).',
    change_id String COMMENT 'One id per admin request or file import; the rows of one change share it.',
    actor LowCardinality(String) COMMENT 'Who: the admin token''s name ("admin" for admin.token, "anonymous" without tokens), or file:<path> for an import of the config file''s entities.',
    client String COMMENT 'Client address of the admin request; empty for file imports.',
    action LowCardinality(String) COMMENT 'create, update or delete.',
    entity_kind LowCardinality(String) COMMENT 'upstream, route or consumer.',
    entity_name String COMMENT 'Name of the entity changed.',
    before String COMMENT 'The entity as JSON before the change (consumer keys as fingerprints); empty when created.',
    after String COMMENT 'The entity as JSON after the change (consumer keys as fingerprints); empty when deleted.',
    request String COMMENT 'What made the change, e.g. "PUT /routes/api/plugins/cors" or "file import".'
)
ENGINE = MergeTree
ORDER BY ts
SETTINGS non_replicated_deduplication_window = 1000
COMMENT 'Every change of upstreams, routes and consumers, through the admin API or a config file import.';
