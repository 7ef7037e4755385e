-- The admin API's entity state (the same tables as the SQLite state) and its version.
CREATE TABLE entities (
    section TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (section, name)
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE audit_pending (seq BIGSERIAL PRIMARY KEY, row TEXT NOT NULL);
-- One row: bumped by every write, sent with NOTIFY pygate_state.
CREATE TABLE state_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO state_version (id, version) VALUES (1, 0);
