-- API keys of the REST and MCP front doors. Only a SHA-256 digest of each key is stored: a key is
-- shown once at creation and cannot be recovered. `id` is the short public part of the key
-- (`isk_<id>_<secret>`) used to find the row; `scopes` is a comma-separated list.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_name ON api_keys (name);
