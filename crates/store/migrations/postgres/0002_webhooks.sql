-- Webhook endpoints, their deliveries and custom HTTP tools (integration-webhook). Secrets are sealed
-- like connection credentials, bound to the row (provider 'webhook' / 'custom_tool' and the name).

CREATE TABLE webhook_endpoints (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,                    -- JSON, without secrets
    secrets     BYTEA NOT NULL,                   -- AEAD ciphertext of the secrets
    key_id      TEXT NOT NULL,
    revision    BIGINT NOT NULL,                  -- changes on every save
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint       TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    verification   TEXT NOT NULL,                 -- passed | skipped | failed: <reason> | replay of <id>
    headers        TEXT NOT NULL,                 -- JSON object, secret values redacted
    body           BYTEA NOT NULL,                -- raw body, kept for replay
    body_preview   TEXT NOT NULL,                 -- truncated copy for the logs
    body_bytes     BIGINT NOT NULL,
    content_type   TEXT,
    output         TEXT,                          -- JSON
    error          TEXT,
    status         TEXT NOT NULL,                 -- processed | failed | rejected
    publish_status TEXT NOT NULL,                 -- skipped | queued | failed
    dedup_key      TEXT,
    replay_of      BIGINT
);
CREATE UNIQUE INDEX webhook_deliveries_dedup ON webhook_deliveries (endpoint, dedup_key);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint, id);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

CREATE TABLE custom_tools (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,                    -- JSON, without credentials
    credentials BYTEA NOT NULL,
    key_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
