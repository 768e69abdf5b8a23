-- API keys of the REST and MCP front doors (same table as migrations/postgres). Only a SHA-256
-- digest of each key is stored; `id` is the short public part of the key used to find the row.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_name ON api_keys (name);
