//! The storage trait and its two implementations (PostgreSQL, SQLite).
//!
//! Both schemas have the same tables and columns (times are epoch milliseconds, JSON is TEXT), so
//! the queries are written once, with `$n` placeholders that both drivers accept, and a macro
//! instantiates the trait for each pool type. What differs lives in `migrations/postgres` and
//! `migrations/sqlite`.

use async_trait::async_trait;
use sqlx::Row as _;

use crate::error::StoreError;

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

/// A connection row as stored.
#[derive(Clone)]
pub(crate) struct ConnectionRow {
    pub(crate) name: String,
    pub(crate) provider: String,
    pub(crate) config: String,
    pub(crate) secret_fields: String,
    pub(crate) credentials: Vec<u8>,
    pub(crate) key_id: String,
    pub(crate) rate_limit_per_minute: Option<i64>,
    pub(crate) timeout_seconds: Option<i64>,
    pub(crate) max_retry_attempts: Option<i64>,
    pub(crate) revision: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// An audit row to insert.
pub(crate) struct AuditRow<'a> {
    pub(crate) tool: &'a str,
    pub(crate) provider: &'a str,
    pub(crate) connection: Option<&'a str>,
    pub(crate) source: &'a str,
    pub(crate) task_id: Option<&'a str>,
    pub(crate) step_id: Option<&'a str>,
    pub(crate) idempotency_key: Option<&'a str>,
    pub(crate) status: &'a str,
    pub(crate) error_kind: Option<&'a str>,
    pub(crate) attempts: i64,
    pub(crate) duration_ms: i64,
    pub(crate) created_at: i64,
}

/// An idempotency record as stored.
pub(crate) struct IdempotencyRow {
    pub(crate) state: String,
    pub(crate) outcome: Option<String>,
    pub(crate) started_at: i64,
    pub(crate) updated_at: i64,
}

/// An outbox row as stored.
pub(crate) struct OutboxRow {
    pub(crate) id: i64,
    pub(crate) exchange: String,
    pub(crate) routing_key: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) created_at: i64,
}

/// An outbox message to insert.
pub(crate) struct NewOutboxRow<'a> {
    pub(crate) exchange: &'a str,
    pub(crate) routing_key: &'a str,
    pub(crate) payload: &'a [u8],
}

/// Everything the store asks of a database.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The API key table (`api_keys.rs`).
    fn api_keys(&self) -> &dyn crate::api_keys::ApiKeyBackend;
    async fn migrate(&self) -> Result<()>;
    async fn close(&self);
    async fn ping(&self) -> Result<()>;

    /// Insert or replace; the row's `revision` must be the caller's proposal (epoch micros): the
    /// stored revision becomes `max(old + 1, proposal)`. Returns (revision, created_at).
    async fn upsert_connection(&self, row: &ConnectionRow) -> Result<(i64, i64)>;
    async fn get_connection(&self, name: &str) -> Result<Option<ConnectionRow>>;
    async fn list_connections(&self) -> Result<Vec<ConnectionRow>>;
    async fn delete_connection(&self, name: &str) -> Result<bool>;
    /// Replace the credentials if the row is still at `revision` and `old_key_id`.
    async fn reseal_connection(
        &self,
        name: &str,
        revision: i64,
        old_key_id: &str,
        new_key_id: &str,
        credentials: &[u8],
    ) -> Result<bool>;

    async fn put_check(&self, name: &str, ok: bool, message: &str, at: i64) -> Result<()>;
    async fn get_check(&self, name: &str) -> Result<Option<(bool, String, i64)>>;

    /// Insert many audit rows in one transaction (one commit).
    async fn insert_audits(&self, rows: &[AuditRow<'_>]) -> Result<()>;
    async fn purge_audit(&self, before: i64) -> Result<u64>;
    /// (calls, failures) for `connection` since `since` (epoch ms).
    async fn audit_counts(&self, connection: &str, since: i64) -> Result<(i64, i64)>;

    /// Insert a `started` record; false if the key exists.
    async fn idem_insert(&self, key: &str, now: i64) -> Result<bool>;
    async fn idem_get(&self, key: &str) -> Result<Option<IdempotencyRow>>;
    /// Take over a `started` record whose `started_at` is still `seen_started_at`.
    async fn idem_takeover(&self, key: &str, seen_started_at: i64, now: i64) -> Result<bool>;
    /// Record the outcome (and optionally queue an outbox message in the same transaction).
    async fn idem_finish(
        &self,
        key: &str,
        state: &str,
        outcome: &str,
        now: i64,
        outbox: Option<&NewOutboxRow<'_>>,
    ) -> Result<Option<i64>>;
    /// Insert `started` records for the keys that have none, in one statement; returns the keys
    /// inserted. `keys` must be distinct.
    async fn idem_insert_many(&self, keys: &[&str], now: i64) -> Result<Vec<String>>;
    /// The records of `keys` that exist, in one statement.
    async fn idem_get_many(&self, keys: &[&str]) -> Result<Vec<(String, IdempotencyRow)>>;
    /// Record many outcomes in one statement (one commit). Keys must be distinct.
    async fn idem_finish_many(&self, rows: &[(&str, &str, &str)], now: i64) -> Result<()>;
    async fn idem_release(&self, key: &str) -> Result<bool>;
    async fn idem_purge(&self, before: i64) -> Result<u64>;

    async fn outbox_insert(&self, row: &NewOutboxRow<'_>, now: i64) -> Result<i64>;
    async fn outbox_unpublished(&self, limit: i64) -> Result<Vec<OutboxRow>>;
    async fn outbox_mark_published(&self, id: i64, now: i64) -> Result<bool>;
    async fn outbox_purge_published(&self, before: i64) -> Result<u64>;

    /// Key ids in use with their row counts.
    async fn key_usage(&self) -> Result<Vec<(String, i64)>>;

    /// The webhook tables (`webhooks.rs`).
    fn webhooks(&self) -> &dyn crate::webhooks::WebhookBackend;
}

/// Rows per multi-row statement: 500 rows of at most 12 values stay far below the bind limits
/// of both drivers (PostgreSQL 65,535; SQLite 32,766). Multi-row statements are not kept prepared
/// (`persistent(false)`): every row count is a statement of its own, and the driver's cache (100
/// per connection, ~100 KB each for SQLite) grew the api by ~4 MB/s under load (found by heaptrack).
/// The audit insert, on every call's path, is the exception: it uses [`prepared_chunks`], a few
/// fixed row counts that stay prepared.
const MAX_ROWS_PER_STATEMENT: usize = 500;

/// The audit insert, before its `VALUES` rows.
const AUDIT_INSERT: &str = "INSERT INTO tool_executions (tool, provider, connection, source, task_id, step_id, \
     idempotency_key, status, error_kind, attempts, duration_ms, created_at) ";

/// Values per audit row (the columns of [`AUDIT_INSERT`]).
const AUDIT_COLUMNS: usize = 12;

/// Rows per prepared multi-row statement (a power of two): see [`prepared_chunks`].
const MAX_PREPARED_ROWS: usize = 64;

/// Split `rows` into chunks whose lengths are powers of two, largest first, at most
/// [`MAX_PREPARED_ROWS`]: seven statement shapes cover every batch, so they stay prepared in the
/// driver's cache instead of being parsed again for each batch (the SQLite parse was half of the
/// audit insert's cost; callgrind, docs/benchmarks.md), and the cache stays small.
fn prepared_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let n = rows.len().min(MAX_PREPARED_ROWS);
        let size = 1 << (usize::BITS - 1 - n.leading_zeros());
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

macro_rules! connection_select {
    ($tail:literal) => {
        concat!(
            "SELECT name, provider, config, secret_fields, credentials, key_id, rate_limit_per_minute, \
             timeout_seconds, max_retry_attempts, revision, created_at, updated_at FROM connections ",
            $tail
        )
    };
}

macro_rules! sql_backend {
    ($ty:ident, $db:ty, $pool:ty, $row:ty, $name:literal, $migrations:literal) => {
        /// The implementation of [`Backend`] for this database.
        pub(crate) struct $ty {
            pub(crate) pool: $pool,
        }

        impl $ty {
            fn connection_row(row: &$row) -> Result<ConnectionRow> {
                Ok(ConnectionRow {
                    name: row.try_get("name")?,
                    provider: row.try_get("provider")?,
                    config: row.try_get("config")?,
                    secret_fields: row.try_get("secret_fields")?,
                    credentials: row.try_get("credentials")?,
                    key_id: row.try_get("key_id")?,
                    rate_limit_per_minute: row.try_get("rate_limit_per_minute")?,
                    timeout_seconds: row.try_get("timeout_seconds")?,
                    max_retry_attempts: row.try_get("max_retry_attempts")?,
                    revision: row.try_get("revision")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }
        }

        #[async_trait]
        impl Backend for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn webhooks(&self) -> &dyn crate::webhooks::WebhookBackend {
                self
            }

            async fn migrate(&self) -> Result<()> {
                // On a connection of our own, handed back to the pool before returning: dropped,
                // it would go back in a spawned task, and the first query after start-up that ran
                // before that task would open a second connection (50-110 ms each to PostgreSQL on
                // loopback here).
                // (`run_direct` is `run` on a connection; `run` with `&mut` fails the `Acquire`
                // lifetime check inside `async_trait`, as sqlx's own comment on it says.)
                let mut connection = self.pool.acquire().await?;
                sqlx::migrate!($migrations).run_direct(None, &mut *connection, false).await?;
                connection.return_to_pool().await;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn api_keys(&self) -> &dyn crate::api_keys::ApiKeyBackend {
                self
            }

            async fn upsert_connection(&self, c: &ConnectionRow) -> Result<(i64, i64)> {
                let row = sqlx::query(
                    "INSERT INTO connections (name, provider, config, secret_fields, credentials, key_id, \
                     rate_limit_per_minute, timeout_seconds, max_retry_attempts, revision, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                     ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, config = excluded.config, \
                     secret_fields = excluded.secret_fields, credentials = excluded.credentials, \
                     key_id = excluded.key_id, rate_limit_per_minute = excluded.rate_limit_per_minute, \
                     timeout_seconds = excluded.timeout_seconds, max_retry_attempts = excluded.max_retry_attempts, \
                     revision = CASE WHEN connections.revision >= excluded.revision \
                                THEN connections.revision + 1 ELSE excluded.revision END, \
                     updated_at = excluded.updated_at \
                     RETURNING revision, created_at",
                )
                .bind(&c.name)
                .bind(&c.provider)
                .bind(&c.config)
                .bind(&c.secret_fields)
                .bind(&c.credentials)
                .bind(&c.key_id)
                .bind(c.rate_limit_per_minute)
                .bind(c.timeout_seconds)
                .bind(c.max_retry_attempts)
                .bind(c.revision)
                .bind(c.updated_at)
                .fetch_one(&self.pool)
                .await?;
                Ok((row.try_get("revision")?, row.try_get("created_at")?))
            }

            async fn get_connection(&self, name: &str) -> Result<Option<ConnectionRow>> {
                let row = sqlx::query(connection_select!("WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::connection_row).transpose()
            }

            async fn list_connections(&self) -> Result<Vec<ConnectionRow>> {
                let rows = sqlx::query(connection_select!("ORDER BY name")).fetch_all(&self.pool).await?;
                rows.iter().map(Self::connection_row).collect()
            }

            async fn delete_connection(&self, name: &str) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("DELETE FROM connections WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM connection_checks WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn reseal_connection(
                &self,
                name: &str,
                revision: i64,
                old_key_id: &str,
                new_key_id: &str,
                credentials: &[u8],
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE connections SET credentials = $1, key_id = $2 \
                     WHERE name = $3 AND revision = $4 AND key_id = $5",
                )
                .bind(credentials)
                .bind(new_key_id)
                .bind(name)
                .bind(revision)
                .bind(old_key_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn put_check(&self, name: &str, ok: bool, message: &str, at: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO connection_checks (name, ok, message, checked_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET ok = excluded.ok, message = excluded.message, \
                     checked_at = excluded.checked_at",
                )
                .bind(name)
                .bind(ok)
                .bind(message)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_check(&self, name: &str) -> Result<Option<(bool, String, i64)>> {
                let row = sqlx::query("SELECT ok, message, checked_at FROM connection_checks WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(Some((r.try_get("ok")?, r.try_get("message")?, r.try_get("checked_at")?))),
                    None => Ok(None),
                }
            }

            async fn insert_audits(&self, rows: &[AuditRow<'_>]) -> Result<()> {
                // The statement of each chunk size is written once: building it per batch with
                // `QueryBuilder::push_bind` formatted a placeholder per value (~300 instructions
                // each, 12 per row; callgrind, docs/benchmarks.md).
                static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
                let texts = SQL.get_or_init(|| {
                    (0..=MAX_PREPARED_ROWS.trailing_zeros())
                        .map(|power| {
                            let mut query = sqlx::QueryBuilder::<$db>::new(AUDIT_INSERT);
                            query.push_values(0..1_usize << power, |mut row, _| {
                                for _ in 0..AUDIT_COLUMNS {
                                    row.push_bind(0_i64);
                                }
                            });
                            query.into_string()
                        })
                        .collect()
                });
                let audit_query = |chunk: &[AuditRow<'_>]| {
                    let text: &'static str = &texts[chunk.len().trailing_zeros() as usize];
                    let mut query = sqlx::query::<$db>(text);
                    for a in chunk {
                        query = query
                            .bind(a.tool)
                            .bind(a.provider)
                            .bind(a.connection)
                            .bind(a.source)
                            .bind(a.task_id)
                            .bind(a.step_id)
                            .bind(a.idempotency_key)
                            .bind(a.status)
                            .bind(a.error_kind)
                            .bind(a.attempts)
                            .bind(a.duration_ms)
                            .bind(a.created_at);
                    }
                    query
                };
                // A batch of one chunk is one statement, atomic on its own: no transaction, so
                // no `BEGIN` and `COMMIT` (parsed anew each time, and two more trips to the
                // driver's connection) around it (callgrind, docs/benchmarks.md).
                if rows.len().is_power_of_two() && rows.len() <= MAX_PREPARED_ROWS {
                    audit_query(rows).execute(&self.pool).await?;
                    return Ok(());
                }
                // Multi-row statements: one round trip per chunk, one commit for the batch.
                let mut tx = self.pool.begin().await?;
                for chunk in prepared_chunks(rows) {
                    audit_query(chunk).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn purge_audit(&self, before: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM tool_executions WHERE created_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn audit_counts(&self, connection: &str, since: i64) -> Result<(i64, i64)> {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS calls, \
                     COALESCE(SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END), 0) AS failures \
                     FROM tool_executions WHERE connection = $1 AND created_at >= $2",
                )
                .bind(connection)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                Ok((row.try_get("calls")?, row.try_get("failures")?))
            }

            async fn idem_insert(&self, key: &str, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO idempotency_records (key, state, outcome, started_at, updated_at) \
                     VALUES ($1, 'started', NULL, $2, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn idem_get(&self, key: &str) -> Result<Option<IdempotencyRow>> {
                let row = sqlx::query(
                    "SELECT state, outcome, started_at, updated_at FROM idempotency_records WHERE key = $1",
                )
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(IdempotencyRow {
                        state: r.try_get("state")?,
                        outcome: r.try_get("outcome")?,
                        started_at: r.try_get("started_at")?,
                        updated_at: r.try_get("updated_at")?,
                    })),
                    None => Ok(None),
                }
            }

            async fn idem_insert_many(&self, keys: &[&str], now: i64) -> Result<Vec<String>> {
                let mut inserted = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO idempotency_records (key, state, outcome, started_at, updated_at) ",
                    );
                    query.push_values(chunk, |mut row, key| {
                        row.push_bind(*key)
                            .push_bind("started")
                            .push_bind(None::<&str>)
                            .push_bind(now)
                            .push_bind(now);
                    });
                    query.push(" ON CONFLICT (key) DO NOTHING RETURNING key");
                    for row in query.build().persistent(false).fetch_all(&self.pool).await? {
                        inserted.push(row.try_get("key")?);
                    }
                }
                Ok(inserted)
            }

            async fn idem_get_many(&self, keys: &[&str]) -> Result<Vec<(String, IdempotencyRow)>> {
                let mut found = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(MAX_ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT key, state, outcome, started_at, updated_at FROM idempotency_records WHERE key IN (",
                    );
                    let mut list = query.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    query.push(")");
                    for r in query.build().persistent(false).fetch_all(&self.pool).await? {
                        found.push((
                            r.try_get("key")?,
                            IdempotencyRow {
                                state: r.try_get("state")?,
                                outcome: r.try_get("outcome")?,
                                started_at: r.try_get("started_at")?,
                                updated_at: r.try_get("updated_at")?,
                            },
                        ));
                    }
                }
                Ok(found)
            }

            async fn idem_finish_many(&self, rows: &[(&str, &str, &str)], now: i64) -> Result<()> {
                let statement = |chunk: &[(&str, &str, &str)]| {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO idempotency_records (key, state, outcome, started_at, updated_at) ",
                    );
                    query.push_values(chunk.iter().copied(), |mut row, (key, state, outcome)| {
                        row.push_bind(key).push_bind(state).push_bind(outcome).push_bind(now).push_bind(now);
                    });
                    query.push(
                        " ON CONFLICT (key) DO UPDATE SET state = excluded.state, \
                         outcome = excluded.outcome, updated_at = excluded.updated_at",
                    );
                    query
                };
                if rows.len() <= MAX_ROWS_PER_STATEMENT {
                    // One statement is atomic on its own: no BEGIN/COMMIT round trips.
                    statement(rows).build().persistent(false).execute(&self.pool).await?;
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                for chunk in rows.chunks(MAX_ROWS_PER_STATEMENT) {
                    statement(chunk).build().persistent(false).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn idem_takeover(&self, key: &str, seen_started_at: i64, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE idempotency_records SET started_at = $1, updated_at = $1 \
                     WHERE key = $2 AND state = 'started' AND started_at = $3",
                )
                .bind(now)
                .bind(key)
                .bind(seen_started_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn idem_finish(
                &self,
                key: &str,
                state: &str,
                outcome: &str,
                now: i64,
                outbox: Option<&NewOutboxRow<'_>>,
            ) -> Result<Option<i64>> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO idempotency_records (key, state, outcome, started_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (key) DO UPDATE SET state = excluded.state, \
                     outcome = excluded.outcome, updated_at = excluded.updated_at",
                )
                .bind(key)
                .bind(state)
                .bind(outcome)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let id = match outbox {
                    Some(m) => {
                        let row = sqlx::query(
                            "INSERT INTO outbox (exchange, routing_key, payload, created_at) \
                             VALUES ($1, $2, $3, $4) RETURNING id",
                        )
                        .bind(m.exchange)
                        .bind(m.routing_key)
                        .bind(m.payload)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                        Some(row.try_get("id")?)
                    }
                    None => None,
                };
                tx.commit().await?;
                Ok(id)
            }

            async fn idem_release(&self, key: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM idempotency_records WHERE key = $1 AND state = 'started'")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn idem_purge(&self, before: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM idempotency_records WHERE updated_at <= $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn outbox_insert(&self, m: &NewOutboxRow<'_>, now: i64) -> Result<i64> {
                let row = sqlx::query(
                    "INSERT INTO outbox (exchange, routing_key, payload, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(m.exchange)
                .bind(m.routing_key)
                .bind(m.payload)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok(row.try_get("id")?)
            }

            async fn outbox_unpublished(&self, limit: i64) -> Result<Vec<OutboxRow>> {
                let rows = sqlx::query(
                    "SELECT id, exchange, routing_key, payload, created_at FROM outbox \
                     WHERE published_at IS NULL ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(OutboxRow {
                            id: r.try_get("id")?,
                            exchange: r.try_get("exchange")?,
                            routing_key: r.try_get("routing_key")?,
                            payload: r.try_get("payload")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn outbox_mark_published(&self, id: i64, now: i64) -> Result<bool> {
                let done =
                    sqlx::query("UPDATE outbox SET published_at = $1 WHERE id = $2 AND published_at IS NULL")
                        .bind(now)
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn outbox_purge_published(&self, before: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at <= $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn key_usage(&self) -> Result<Vec<(String, i64)>> {
                let rows = sqlx::query(
                    "SELECT key_id, COUNT(*) AS n FROM connections GROUP BY key_id ORDER BY key_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Ok((r.try_get("key_id")?, r.try_get("n")?))).collect()
            }
        }
    };
}

sql_backend!(
    Postgres,
    sqlx::Postgres,
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    "postgres",
    "migrations/postgres"
);
sql_backend!(Sqlite, sqlx::Sqlite, sqlx::SqlitePool, sqlx::sqlite::SqliteRow, "sqlite", "migrations/sqlite");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_chunks_cover_every_row_in_order_with_few_shapes() {
        for n in 0..=300_usize {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = prepared_chunks(&rows).collect();
            let joined: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, rows, "{n} rows");
            for chunk in &chunks {
                assert!(
                    chunk.len().is_power_of_two() && chunk.len() <= MAX_PREPARED_ROWS,
                    "{n}: {}",
                    chunk.len()
                );
            }
            assert!(chunks.windows(2).all(|w| w[0].len() >= w[1].len()), "{n}: largest first");
        }
        assert_eq!(prepared_chunks(&[0_u8; 100]).map(<[u8]>::len).collect::<Vec<_>>(), vec![64, 32, 4]);
    }
}
