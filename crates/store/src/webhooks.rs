//! Storage of inbound webhook endpoints, their deliveries and custom HTTP tools, in generic shapes
//! (JSON definitions without secrets, sealed secret maps): the store knows nothing of
//! `integration-webhook`. Secrets are sealed like connection credentials and bound to the row
//! (provider `webhook` or `custom_tool`, and the name).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::Value;
use sqlx::Row as _;

use crate::db::Result;
use crate::error::StoreError;
use crate::store::{Store, now_ms, validate_name};

const ENDPOINT_AAD: &str = "webhook";
const TOOL_AAD: &str = "custom_tool";

/// Default age after which deliveries are purged.
pub const DEFAULT_DELIVERY_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default number of deliveries kept per endpoint.
pub const DEFAULT_DELIVERIES_PER_ENDPOINT: u64 = 10_000;

/// A stored endpoint with its secrets opened.
#[derive(Debug, Clone)]
pub struct StoredWebhookEndpoint {
    /// The name.
    pub name: String,
    /// The definition without secrets.
    pub definition: Value,
    /// The secrets by field.
    pub secrets: BTreeMap<String, SecretString>,
    /// Changes on every save.
    pub revision: i64,
}

/// A stored custom tool with its credentials opened.
#[derive(Debug, Clone)]
pub struct StoredCustomTool {
    /// The tool name.
    pub name: String,
    /// The definition without credentials.
    pub definition: Value,
    /// The credentials by field.
    pub secrets: BTreeMap<String, SecretString>,
}

/// One row of [`WebhookStore::list_custom_tools`].
#[derive(Debug)]
pub struct ListedCustomTool {
    /// The tool name.
    pub name: String,
    /// The row's revision, as [`WebhookStore::custom_tool_versions`] reports it.
    pub revision: i64,
    /// The tool with its credentials opened, or why this row cannot be used.
    pub tool: std::result::Result<StoredCustomTool, StoreError>,
}

/// A delivery to record.
#[derive(Debug, Clone, Default)]
pub struct NewWebhookDelivery {
    /// The endpoint.
    pub endpoint: String,
    /// Epoch ms.
    pub received_at: i64,
    /// The verification result.
    pub verification: String,
    /// Headers JSON (secrets already redacted).
    pub headers: Value,
    /// The raw body.
    pub body: Vec<u8>,
    /// The truncated copy for the logs.
    pub body_preview: String,
    /// The media type.
    pub content_type: Option<String>,
    /// The transformed output.
    pub output: Option<Value>,
    /// The error.
    pub error: Option<String>,
    /// `processed` | `failed` | `rejected`.
    pub status: String,
    /// `skipped` | `queued` | `failed`.
    pub publish_status: String,
    /// Unique per endpoint when set.
    pub dedup_key: Option<String>,
    /// The replayed delivery.
    pub replay_of: Option<i64>,
}

/// An outbox message written in the same transaction as the delivery it announces, so that it is
/// queued if and only if the delivery is recorded.
pub struct DeliveryEvent<'a> {
    /// The exchange to publish to.
    pub exchange: &'a str,
    /// The routing key.
    pub routing_key: &'a str,
    /// The message body, made from the new delivery's id.
    pub payload: &'a (dyn Fn(i64) -> Vec<u8> + Send + Sync),
}

impl std::fmt::Debug for DeliveryEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryEvent")
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .finish_non_exhaustive()
    }
}

/// A stored delivery.
#[derive(Debug, Clone)]
pub struct WebhookDeliveryRow {
    /// The id.
    pub id: i64,
    /// The endpoint.
    pub endpoint: String,
    /// Epoch ms.
    pub received_at: i64,
    /// The verification result.
    pub verification: String,
    /// Headers JSON.
    pub headers: Value,
    /// The raw body (only from [`WebhookStore::get_delivery`]).
    pub body: Option<Vec<u8>>,
    /// The truncated copy.
    pub body_preview: String,
    /// The body size.
    pub body_bytes: i64,
    /// The media type.
    pub content_type: Option<String>,
    /// The output.
    pub output: Option<Value>,
    /// The error.
    pub error: Option<String>,
    /// The status.
    pub status: String,
    /// The publish status.
    pub publish_status: String,
    /// The de-duplication key.
    pub dedup_key: Option<String>,
    /// The replayed delivery.
    pub replay_of: Option<i64>,
}

/// The result of [`WebhookStore::insert_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryInsert {
    /// Recorded.
    Inserted(i64),
    /// The de-duplication key exists: the original's id, status and publish status.
    Duplicate {
        /// The original id.
        id: i64,
        /// Its status.
        status: String,
        /// Its publish status.
        publish_status: String,
    },
}

/// A filter of [`WebhookStore::list_deliveries`] (newest first).
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Page size.
    pub limit: u32,
    /// Ids below this only.
    pub before_id: Option<i64>,
    /// This status only.
    pub status: Option<String>,
    /// Received at or after (epoch ms).
    pub since: Option<i64>,
    /// Received before (epoch ms).
    pub until: Option<i64>,
}

/// Raw rows as the backends return them.
pub(crate) struct RawDelivery {
    id: i64,
    endpoint: String,
    received_at: i64,
    verification: String,
    headers: String,
    body: Option<Vec<u8>>,
    body_preview: String,
    body_bytes: i64,
    content_type: Option<String>,
    output: Option<String>,
    error: Option<String>,
    status: String,
    publish_status: String,
    dedup_key: Option<String>,
    replay_of: Option<i64>,
}

/// Sealed rows: (name, definition, blob, key id, revision).
type SealedRow = (String, String, Vec<u8>, String, i64);

/// What the webhook storage asks of a database.
#[async_trait]
pub(crate) trait WebhookBackend: Send + Sync {
    /// Upsert; returns true when created.
    async fn wh_save_endpoint(
        &self,
        name: &str,
        def: &str,
        blob: &[u8],
        key_id: &str,
        now: i64,
    ) -> Result<bool>;
    async fn wh_get_endpoint(&self, name: &str) -> Result<Option<SealedRow>>;
    async fn wh_delete_endpoint(&self, name: &str) -> Result<bool>;
    async fn wh_insert_delivery(
        &self,
        d: &NewWebhookDelivery,
        event: Option<&DeliveryEvent<'_>>,
    ) -> Result<DeliveryInsert>;
    async fn wh_set_publish_status(&self, id: i64, status: &str) -> Result<()>;
    async fn wh_get_delivery(&self, endpoint: &str, id: i64) -> Result<Option<RawDelivery>>;
    async fn wh_list_deliveries(&self, endpoint: &str, f: &DeliveryFilter) -> Result<Vec<RawDelivery>>;
    async fn wh_purge(&self, before: i64, keep: i64) -> Result<u64>;
    async fn ct_save(&self, name: &str, def: &str, blob: &[u8], key_id: &str, now: i64) -> Result<bool>;
    async fn ct_get(&self, name: &str) -> Result<Option<SealedRow>>;
    async fn ct_list(&self) -> Result<Vec<SealedRow>>;
    /// (name, revision) of every custom tool.
    async fn ct_versions(&self) -> Result<Vec<(String, i64)>>;
    async fn ct_delete(&self, name: &str) -> Result<bool>;
    /// Every endpoint's sealed row (key rotation).
    async fn wh_list_sealed(&self) -> Result<Vec<SealedRow>>;
    /// Replace an endpoint's sealed secrets if they are still under `old_key_id`.
    async fn wh_reseal(&self, name: &str, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool>;
    /// Replace a custom tool's sealed credentials if they are still under `old_key_id`.
    async fn ct_reseal(&self, name: &str, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool>;
    /// Row counts per key id over both tables.
    async fn sealed_key_usage(&self) -> Result<Vec<(String, i64)>>;
}

macro_rules! delivery_columns {
    ($body:literal, $tail:literal) => {
        concat!(
            "SELECT id, endpoint, received_at, verification, headers, ",
            $body,
            " body_preview, body_bytes, content_type, output, error, status, publish_status, dedup_key, replay_of \
             FROM webhook_deliveries ",
            $tail
        )
    };
}

macro_rules! webhook_backend {
    ($ty:ty, $row:ty) => {
        impl $ty {
            fn raw_delivery(r: &$row, with_body: bool) -> Result<RawDelivery> {
                Ok(RawDelivery {
                    id: r.try_get("id")?,
                    endpoint: r.try_get("endpoint")?,
                    received_at: r.try_get("received_at")?,
                    verification: r.try_get("verification")?,
                    headers: r.try_get("headers")?,
                    body: if with_body { Some(r.try_get("body")?) } else { None },
                    body_preview: r.try_get("body_preview")?,
                    body_bytes: r.try_get("body_bytes")?,
                    content_type: r.try_get("content_type")?,
                    output: r.try_get("output")?,
                    error: r.try_get("error")?,
                    status: r.try_get("status")?,
                    publish_status: r.try_get("publish_status")?,
                    dedup_key: r.try_get("dedup_key")?,
                    replay_of: r.try_get("replay_of")?,
                })
            }
        }

        #[async_trait]
        impl WebhookBackend for $ty {
            async fn wh_save_endpoint(
                &self,
                name: &str,
                def: &str,
                blob: &[u8],
                key_id: &str,
                now: i64,
            ) -> Result<bool> {
                let row = sqlx::query(
                    "INSERT INTO webhook_endpoints (name, definition, secrets, key_id, revision, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (name) DO UPDATE SET \
                     definition = excluded.definition, secrets = excluded.secrets, key_id = excluded.key_id, \
                     revision = CASE WHEN webhook_endpoints.revision >= excluded.revision \
                                THEN webhook_endpoints.revision + 1 ELSE excluded.revision END, \
                     updated_at = excluded.updated_at \
                     RETURNING created_at, revision",
                )
                .bind(name)
                .bind(def)
                .bind(blob)
                .bind(key_id)
                .bind(now.saturating_mul(1000))
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                let created_at: i64 = row.try_get("created_at")?;
                let revision: i64 = row.try_get("revision")?;
                // Inserted: made now with the fresh revision. An update in the same millisecond
                // keeps `created_at == now` but moves the revision past it, so both are checked.
                Ok(created_at == now && revision == now.saturating_mul(1000))
            }

            async fn wh_get_endpoint(&self, name: &str) -> Result<Option<SealedRow>> {
                let row = sqlx::query(
                    "SELECT name, definition, secrets, key_id, revision FROM webhook_endpoints WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some((
                        r.try_get("name")?,
                        r.try_get("definition")?,
                        r.try_get("secrets")?,
                        r.try_get("key_id")?,
                        r.try_get("revision")?,
                    ))),
                    None => Ok(None),
                }
            }

            async fn wh_delete_endpoint(&self, name: &str) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("DELETE FROM webhook_endpoints WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn wh_insert_delivery(
                &self,
                d: &NewWebhookDelivery,
                event: Option<&DeliveryEvent<'_>>,
            ) -> Result<DeliveryInsert> {
                // One transaction for the delivery and its event; without an event the insert is
                // one statement, atomic on its own.
                let mut tx = match event {
                    Some(_) => Some(self.pool.begin().await?),
                    None => None,
                };
                let insert = sqlx::query(
                    "INSERT INTO webhook_deliveries (endpoint, received_at, verification, headers, body, body_preview, \
                     body_bytes, content_type, output, error, status, publish_status, dedup_key, replay_of) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT (endpoint, dedup_key) DO NOTHING RETURNING id",
                )
                .bind(&d.endpoint)
                .bind(d.received_at)
                .bind(&d.verification)
                .bind(d.headers.to_string())
                .bind(&d.body)
                .bind(&d.body_preview)
                .bind(i64::try_from(d.body.len()).unwrap_or(i64::MAX))
                .bind(d.content_type.as_deref())
                .bind(d.output.as_ref().map(Value::to_string))
                .bind(d.error.as_deref())
                .bind(&d.status)
                .bind(&d.publish_status)
                .bind(d.dedup_key.as_deref())
                .bind(d.replay_of);
                let row = match tx.as_mut() {
                    Some(tx) => insert.fetch_optional(&mut **tx).await?,
                    None => insert.fetch_optional(&self.pool).await?,
                };
                if let Some(r) = row {
                    let id: i64 = r.try_get("id")?;
                    if let (Some(mut tx), Some(event)) = (tx, event) {
                        sqlx::query(
                            "INSERT INTO outbox (exchange, routing_key, payload, created_at) \
                             VALUES ($1, $2, $3, $4)",
                        )
                        .bind(event.exchange)
                        .bind(event.routing_key)
                        .bind((event.payload)(id))
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                    }
                    return Ok(DeliveryInsert::Inserted(id));
                }
                // A duplicate: nothing was written; the transaction, if any, ends unused.
                drop(tx);
                let existing = sqlx::query(
                    "SELECT id, status, publish_status FROM webhook_deliveries WHERE endpoint = $1 AND dedup_key = $2",
                )
                .bind(&d.endpoint)
                .bind(d.dedup_key.as_deref())
                .fetch_one(&self.pool)
                .await?;
                Ok(DeliveryInsert::Duplicate {
                    id: existing.try_get("id")?,
                    status: existing.try_get("status")?,
                    publish_status: existing.try_get("publish_status")?,
                })
            }

            async fn wh_set_publish_status(&self, id: i64, status: &str) -> Result<()> {
                sqlx::query("UPDATE webhook_deliveries SET publish_status = $1 WHERE id = $2")
                    .bind(status)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn wh_get_delivery(&self, endpoint: &str, id: i64) -> Result<Option<RawDelivery>> {
                let row = sqlx::query(delivery_columns!("body,", "WHERE endpoint = $1 AND id = $2"))
                    .bind(endpoint)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(|r| Self::raw_delivery(r, true)).transpose()
            }

            async fn wh_list_deliveries(&self, endpoint: &str, f: &DeliveryFilter) -> Result<Vec<RawDelivery>> {
                let rows = sqlx::query(
                    delivery_columns!(
                        "",
                        "WHERE endpoint = $1 AND ($2 IS NULL OR id < $2) AND ($3 IS NULL OR status = $3) \
                           AND ($4 IS NULL OR received_at >= $4) AND ($5 IS NULL OR received_at < $5) \
                           ORDER BY id DESC LIMIT $6"
                    ),
                )
                .bind(endpoint)
                .bind(f.before_id)
                .bind(f.status.as_deref())
                .bind(f.since)
                .bind(f.until)
                .bind(i64::from(f.limit.max(1)))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Self::raw_delivery(r, false)).collect()
            }

            async fn wh_purge(&self, before: i64, keep: i64) -> Result<u64> {
                let old = sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                let extra = sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
                     (PARTITION BY endpoint ORDER BY id DESC) AS rn FROM webhook_deliveries) ranked WHERE rn > $1)",
                )
                .bind(keep)
                .execute(&self.pool)
                .await?;
                Ok(old.rows_affected() + extra.rows_affected())
            }

            async fn ct_save(&self, name: &str, def: &str, blob: &[u8], key_id: &str, now: i64) -> Result<bool> {
                let existed = sqlx::query("SELECT name FROM custom_tools WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some();
                sqlx::query(
                    "INSERT INTO custom_tools (name, definition, credentials, key_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO UPDATE SET \
                     definition = excluded.definition, credentials = excluded.credentials, \
                     key_id = excluded.key_id, updated_at = CASE WHEN excluded.updated_at > custom_tools.updated_at \
                     THEN excluded.updated_at ELSE custom_tools.updated_at + 1 END",
                )
                .bind(name)
                .bind(def)
                .bind(blob)
                .bind(key_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(!existed)
            }

            async fn ct_get(&self, name: &str) -> Result<Option<SealedRow>> {
                let row = sqlx::query("SELECT name, definition, credentials, key_id, updated_at FROM custom_tools WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(Some((
                        r.try_get("name")?,
                        r.try_get("definition")?,
                        r.try_get("credentials")?,
                        r.try_get("key_id")?,
                        r.try_get("updated_at")?,
                    ))),
                    None => Ok(None),
                }
            }

            async fn ct_list(&self) -> Result<Vec<SealedRow>> {
                let rows = sqlx::query("SELECT name, definition, credentials, key_id, updated_at FROM custom_tools ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("name")?,
                            r.try_get("definition")?,
                            r.try_get("credentials")?,
                            r.try_get("key_id")?,
                            r.try_get("updated_at")?,
                        ))
                    })
                    .collect()
            }

            async fn wh_list_sealed(&self) -> Result<Vec<SealedRow>> {
                let rows = sqlx::query(
                    "SELECT name, definition, secrets, key_id, revision FROM webhook_endpoints ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("name")?,
                            r.try_get("definition")?,
                            r.try_get("secrets")?,
                            r.try_get("key_id")?,
                            r.try_get("revision")?,
                        ))
                    })
                    .collect()
            }

            async fn wh_reseal(&self, name: &str, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE webhook_endpoints SET secrets = $1, key_id = $2 WHERE name = $3 AND key_id = $4",
                )
                .bind(blob)
                .bind(new_key_id)
                .bind(name)
                .bind(old_key_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn ct_reseal(&self, name: &str, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE custom_tools SET credentials = $1, key_id = $2 WHERE name = $3 AND key_id = $4",
                )
                .bind(blob)
                .bind(new_key_id)
                .bind(name)
                .bind(old_key_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn sealed_key_usage(&self) -> Result<Vec<(String, i64)>> {
                let rows = sqlx::query(
                    "SELECT key_id, COUNT(*) AS n FROM (SELECT key_id FROM webhook_endpoints \
                     UNION ALL SELECT key_id FROM custom_tools) AS sealed GROUP BY key_id ORDER BY key_id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Ok((r.try_get("key_id")?, r.try_get("n")?))).collect()
            }

            async fn ct_versions(&self) -> Result<Vec<(String, i64)>> {
                let rows = sqlx::query("SELECT name, updated_at FROM custom_tools ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("updated_at")?))).collect()
            }

            async fn ct_delete(&self, name: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM custom_tools WHERE name = $1").bind(name).execute(&self.pool).await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

webhook_backend!(crate::db::Postgres, sqlx::postgres::PgRow);
webhook_backend!(crate::db::Sqlite, sqlx::sqlite::SqliteRow);

fn json(text: &str, what: &str) -> std::result::Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn delivery(raw: RawDelivery) -> std::result::Result<WebhookDeliveryRow, StoreError> {
    Ok(WebhookDeliveryRow {
        id: raw.id,
        headers: json(&raw.headers, "delivery headers")?,
        output: raw.output.as_deref().map(|o| json(o, "delivery output")).transpose()?,
        endpoint: raw.endpoint,
        received_at: raw.received_at,
        verification: raw.verification,
        body: raw.body,
        body_preview: raw.body_preview,
        body_bytes: raw.body_bytes,
        content_type: raw.content_type,
        error: raw.error,
        status: raw.status,
        publish_status: raw.publish_status,
        dedup_key: raw.dedup_key,
        replay_of: raw.replay_of,
    })
}

/// Webhook endpoints, deliveries and custom tools. Get one with [`Store::webhooks`].
#[derive(Debug, Clone)]
pub struct WebhookStore {
    store: Store,
}

impl Store {
    /// Webhook endpoints, deliveries and custom tools.
    pub fn webhooks(&self) -> WebhookStore {
        WebhookStore { store: self.clone() }
    }
}

impl WebhookStore {
    fn db(&self) -> &dyn WebhookBackend {
        self.store.backend_impl().webhooks()
    }

    fn open(
        &self,
        provider: &str,
        name: &str,
        key_id: &str,
        blob: &[u8],
    ) -> std::result::Result<BTreeMap<String, SecretString>, StoreError> {
        self.store.keyring().open(provider, name, key_id, blob)
    }

    /// Re-seal every endpoint secret and custom tool credential under `new_key`, opening them with
    /// `ring` (part of [`Store::rotate_master_key`]). Rows that changed key meanwhile are left alone.
    pub(crate) async fn rotate(
        &self,
        ring: &crate::crypto::Keyring,
        new_key: &crate::crypto::MasterKey,
        report: &mut crate::store::RotationReport,
    ) -> std::result::Result<(), StoreError> {
        let tables: [(&str, Vec<SealedRow>); 2] =
            [(ENDPOINT_AAD, self.db().wh_list_sealed().await?), (TOOL_AAD, self.db().ct_list().await?)];
        for (aad, rows) in tables {
            for (name, _definition, blob, key_id, _) in rows {
                let label = format!("{aad}:{name}");
                if key_id == new_key.id() {
                    report.already_current += 1;
                    continue;
                }
                let secrets = match ring.open(aad, &name, &key_id, &blob) {
                    Ok(secrets) => secrets,
                    Err(e) => {
                        tracing::warn!(row = %label, error = %e, "cannot rotate sealed row");
                        report.failed.push((label, e.to_string()));
                        continue;
                    }
                };
                let sealed = crate::crypto::seal_with(new_key, aad, &name, &secrets)?;
                let done = if aad == ENDPOINT_AAD {
                    self.db().wh_reseal(&name, &key_id, new_key.id(), &sealed).await?
                } else {
                    self.db().ct_reseal(&name, &key_id, new_key.id(), &sealed).await?
                };
                if done {
                    report.rotated += 1;
                }
            }
        }
        Ok(())
    }

    /// Row counts per key id of the sealed webhook and custom tool rows.
    pub(crate) async fn key_usage(&self) -> std::result::Result<Vec<(String, i64)>, StoreError> {
        self.db().sealed_key_usage().await
    }

    /// Save an endpoint: its definition (without secrets) and its sealed secrets. True if created.
    pub async fn save_endpoint(
        &self,
        name: &str,
        definition: &Value,
        secrets: &BTreeMap<String, SecretString>,
    ) -> std::result::Result<bool, StoreError> {
        validate_name(name)?;
        let (key_id, blob) = self.store.keyring().seal(ENDPOINT_AAD, name, secrets)?;
        self.db().wh_save_endpoint(name, &definition.to_string(), &blob, &key_id, now_ms()).await
    }

    /// An endpoint with its secrets opened.
    pub async fn get_endpoint(
        &self,
        name: &str,
    ) -> std::result::Result<Option<StoredWebhookEndpoint>, StoreError> {
        let Some((name, definition, blob, key_id, revision)) = self.db().wh_get_endpoint(name).await? else {
            return Ok(None);
        };
        let secrets = self.open(ENDPOINT_AAD, &name, &key_id, &blob)?;
        Ok(Some(StoredWebhookEndpoint {
            definition: json(&definition, "webhook definition")?,
            name,
            secrets,
            revision,
        }))
    }

    /// Delete an endpoint and its deliveries; true if it existed.
    pub async fn delete_endpoint(&self, name: &str) -> std::result::Result<bool, StoreError> {
        self.db().wh_delete_endpoint(name).await
    }

    /// Record a delivery (a known de-duplication key yields the original).
    pub async fn insert_delivery(
        &self,
        d: &NewWebhookDelivery,
    ) -> std::result::Result<DeliveryInsert, StoreError> {
        self.db().wh_insert_delivery(d, None).await
    }

    /// Record a delivery and queue `event` in the outbox in one transaction: both or neither (a
    /// known de-duplication key yields the original, and queues nothing).
    pub async fn insert_delivery_with_event(
        &self,
        d: &NewWebhookDelivery,
        event: &DeliveryEvent<'_>,
    ) -> std::result::Result<DeliveryInsert, StoreError> {
        let inserted = self.db().wh_insert_delivery(d, Some(event)).await?;
        if matches!(inserted, DeliveryInsert::Inserted(_)) {
            self.store.outbox_written();
        }
        Ok(inserted)
    }

    /// Set the publish status of a delivery.
    pub async fn set_publish_status(&self, id: i64, status: &str) -> std::result::Result<(), StoreError> {
        self.db().wh_set_publish_status(id, status).await
    }

    /// One delivery with its raw body.
    pub async fn get_delivery(
        &self,
        endpoint: &str,
        id: i64,
    ) -> std::result::Result<Option<WebhookDeliveryRow>, StoreError> {
        self.db().wh_get_delivery(endpoint, id).await?.map(delivery).transpose()
    }

    /// Deliveries of an endpoint, newest first, without raw bodies.
    pub async fn list_deliveries(
        &self,
        endpoint: &str,
        filter: &DeliveryFilter,
    ) -> std::result::Result<Vec<WebhookDeliveryRow>, StoreError> {
        self.db().wh_list_deliveries(endpoint, filter).await?.into_iter().map(delivery).collect()
    }

    /// Delete deliveries older than `max_age`, and beyond the newest `per_endpoint` of each endpoint.
    pub async fn purge_deliveries(
        &self,
        max_age: Duration,
        per_endpoint: u64,
    ) -> std::result::Result<u64, StoreError> {
        let before = now_ms() - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX / 2);
        self.db().wh_purge(before, i64::try_from(per_endpoint).unwrap_or(i64::MAX)).await
    }

    /// Save a custom tool; true if created.
    pub async fn save_custom_tool(
        &self,
        name: &str,
        definition: &Value,
        secrets: &BTreeMap<String, SecretString>,
    ) -> std::result::Result<bool, StoreError> {
        let (key_id, blob) = self.store.keyring().seal(TOOL_AAD, name, secrets)?;
        self.db().ct_save(name, &definition.to_string(), &blob, &key_id, now_ms()).await
    }

    /// A custom tool with its credentials opened.
    pub async fn get_custom_tool(
        &self,
        name: &str,
    ) -> std::result::Result<Option<StoredCustomTool>, StoreError> {
        let Some((name, definition, blob, key_id, _)) = self.db().ct_get(name).await? else {
            return Ok(None);
        };
        let secrets = self.open(TOOL_AAD, &name, &key_id, &blob)?;
        Ok(Some(StoredCustomTool { definition: json(&definition, "custom tool definition")?, name, secrets }))
    }

    /// Every custom tool, in one query; a row whose credentials do not open is an error for that
    /// tool only.
    pub async fn list_custom_tools(&self) -> std::result::Result<Vec<ListedCustomTool>, StoreError> {
        let rows = self.db().ct_list().await?;
        Ok(rows
            .into_iter()
            .map(|(name, definition, blob, key_id, revision)| {
                let tool = self.open(TOOL_AAD, &name, &key_id, &blob).and_then(|secrets| {
                    Ok(StoredCustomTool {
                        definition: json(&definition, "custom tool definition")?,
                        name: name.clone(),
                        secrets,
                    })
                });
                ListedCustomTool { name, revision, tool }
            })
            .collect())
    }

    /// The name and revision of every custom tool, cheaply (no credentials opened): the revision
    /// grows with every save of that tool, so a replica polling this list sees what another
    /// replica changed.
    pub async fn custom_tool_versions(&self) -> std::result::Result<Vec<(String, i64)>, StoreError> {
        self.db().ct_versions().await
    }

    /// Delete a custom tool; true if it existed.
    pub async fn delete_custom_tool(&self, name: &str) -> std::result::Result<bool, StoreError> {
        self.db().ct_delete(name).await
    }
}
