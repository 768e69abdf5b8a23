-- integration-store schema, PostgreSQL flavour. Times are Unix epoch milliseconds (BIGINT) in both
-- backends so the two share their queries; use to_timestamp(col / 1000.0) to read them.

CREATE TABLE connections (
    name                  TEXT PRIMARY KEY,
    provider              TEXT NOT NULL,
    config                TEXT NOT NULL,          -- non-secret settings, JSON object
    secret_fields         TEXT NOT NULL,          -- names of the encrypted fields, JSON array
    credentials           BYTEA NOT NULL,         -- AEAD ciphertext: version || nonce || ciphertext+tag
    key_id                TEXT NOT NULL,          -- master key the credentials are sealed under
    rate_limit_per_minute BIGINT,
    timeout_seconds       BIGINT,
    max_retry_attempts    BIGINT,
    revision              BIGINT NOT NULL,        -- globally increasing, changes on every save
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX connections_key_id ON connections (key_id);

CREATE TABLE connection_checks (
    name       TEXT PRIMARY KEY,
    ok         BOOLEAN NOT NULL,
    message    TEXT NOT NULL,
    checked_at BIGINT NOT NULL
);

CREATE TABLE tool_executions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tool            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    connection      TEXT,
    source          TEXT NOT NULL,                -- rest | bus | mcp | embedded
    task_id         TEXT,
    step_id         TEXT,
    idempotency_key TEXT,
    status          TEXT NOT NULL,                -- success | failure
    error_kind      TEXT,
    attempts        BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX tool_executions_connection_time ON tool_executions (connection, created_at);
CREATE INDEX tool_executions_time ON tool_executions (created_at);

CREATE TABLE idempotency_records (
    key        TEXT PRIMARY KEY,
    state      TEXT NOT NULL,                     -- started | completed | failed
    outcome    TEXT,                              -- JSON, set when completed or failed
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX idempotency_records_updated ON idempotency_records (updated_at);

CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exchange     TEXT NOT NULL,
    routing_key  TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
