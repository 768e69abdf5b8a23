-- integration-store schema, SQLite flavour (same tables and columns as migrations/postgres).
-- Times are Unix epoch milliseconds.

CREATE TABLE connections (
    name                  TEXT PRIMARY KEY NOT NULL,
    provider              TEXT NOT NULL,
    config                TEXT NOT NULL,
    secret_fields         TEXT NOT NULL,
    credentials           BLOB NOT NULL,
    key_id                TEXT NOT NULL,
    rate_limit_per_minute INTEGER,
    timeout_seconds       INTEGER,
    max_retry_attempts    INTEGER,
    revision              INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX connections_key_id ON connections (key_id);

CREATE TABLE connection_checks (
    name       TEXT PRIMARY KEY NOT NULL,
    ok         BOOLEAN NOT NULL,
    message    TEXT NOT NULL,
    checked_at INTEGER NOT NULL
);

CREATE TABLE tool_executions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tool            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    connection      TEXT,
    source          TEXT NOT NULL,
    task_id         TEXT,
    step_id         TEXT,
    idempotency_key TEXT,
    status          TEXT NOT NULL,
    error_kind      TEXT,
    attempts        INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX tool_executions_connection_time ON tool_executions (connection, created_at);
CREATE INDEX tool_executions_time ON tool_executions (created_at);

CREATE TABLE idempotency_records (
    key        TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    outcome    TEXT,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX idempotency_records_updated ON idempotency_records (updated_at);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange     TEXT NOT NULL,
    routing_key  TEXT NOT NULL,
    payload      BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
