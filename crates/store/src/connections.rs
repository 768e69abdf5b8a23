//! [`StoreConnections`]: the [`ConnectionResolver`] of the service. The store first, then the
//! connections built from environment variables.
//!
//! # How changes reach every replica
//!
//! Resolved connections are cached in process for a short time (`ttl`, 2 s by default). When an
//! entry is older than that, the next call re-reads the row (one primary-key lookup) and compares
//! its revision: an unchanged revision reuses the already decrypted connection, a new one is
//! decrypted. Saves and deletes made through this resolver drop the local entry at once. So a
//! change takes effect on the next call on the replica that made it, and within `ttl` on every
//! other replica sharing the database. This was chosen over PostgreSQL `LISTEN/NOTIFY` because it
//! works the same on SQLite, needs no dedicated connection and cannot miss a notification during a
//! reconnect; its cost is one indexed read per connection per `ttl` at most.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use integration_core::{Connection, ConnectionResolver, ConnectionSource, IntegrationError, IntegrationInfo};
use serde::Serialize;
use serde_json::Value;

use crate::error::StoreError;
use crate::store::{CallCounts, CheckRecord, Store, StoredConnection, StoredSettings, connection_from_body};

/// The window of the call counts in [`ConnectionStatus`].
pub const STATUS_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
struct Cached {
    fetched: Instant,
    /// The key id of the row the connection was decrypted from (a rotation re-decrypts).
    key_id: String,
    /// `None`: no row in the store (fall back to the environment).
    connection: Option<Arc<Connection>>,
}

/// What `status` shows for one connection name.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionStatus {
    /// The connection name.
    pub name: String,
    /// The provider, when the connection exists in some source.
    pub provider: Option<String>,
    /// Whether any source configures it.
    pub configured: bool,
    /// The source in force: the store wins over the environment.
    pub source: Option<ConnectionSource>,
    /// Whether the environment also defines it (the fallback after a delete).
    pub environment_fallback: bool,
    /// The stored connection (no secrets), when there is one.
    pub stored: Option<StoredConnection>,
    /// Non-secret config of the connection in force.
    pub config: Option<Value>,
    /// The names of the secret fields set on the connection in force.
    pub secret_fields: Vec<String>,
    /// Executor settings of the connection in force.
    pub settings: StoredSettings,
    /// Set when the stored credentials cannot be decrypted (wrong key, corrupted row).
    pub credentials_error: Option<String>,
    /// The last connection check.
    pub last_check: Option<CheckRecord>,
    /// Calls and failures over the last 15 minutes, from the audit table.
    pub last_15_minutes: CallCounts,
}

/// A summary line of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionSummary {
    /// The connection name.
    pub name: String,
    /// Its provider.
    pub provider: String,
    /// The source in force.
    pub source: ConnectionSource,
    /// The revision in force (0 for environment connections).
    pub revision: u64,
}

/// Resolves connections from the store, then from the environment.
pub struct StoreConnections {
    store: Store,
    env: BTreeMap<String, Arc<Connection>>,
    cache: Mutex<HashMap<String, Cached>>,
    ttl: Duration,
}

impl std::fmt::Debug for StoreConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConnections")
            .field("store", &self.store)
            .field("environment", &self.env.keys().collect::<Vec<_>>())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl StoreConnections {
    /// A resolver over `store` with the environment connections `env` (each provider's
    /// `Integration::connection_from_env`) as the fallback, and the default 2 s cache.
    pub fn new(store: Store, env: Vec<Connection>) -> Self {
        let env = env
            .into_iter()
            .map(|mut c| {
                c.source = ConnectionSource::Environment;
                (c.name.clone(), Arc::new(c))
            })
            .collect();
        Self { store, env, cache: Mutex::new(HashMap::new()), ttl: Duration::from_secs(2) }
    }

    /// Change how long a resolved connection is reused before its revision is checked again
    /// (the bound on how late other replicas see a change). `Duration::ZERO` checks on every call.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The environment connection named `name`, if any.
    pub fn environment(&self, name: &str) -> Option<&Arc<Connection>> {
        self.env.get(name)
    }

    fn forget(&self, name: &str) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    /// Validate-and-save a configure body for provider `info` under `name` (see
    /// [`connection_from_body`]); takes effect on the next call.
    pub async fn configure(
        &self,
        info: &IntegrationInfo,
        name: &str,
        body: &Value,
    ) -> Result<StoredConnection, StoreError> {
        self.save(&connection_from_body(info, name, body)?).await
    }

    /// Save a connection built with [`connection_from_body`] (e.g. after a successful check).
    pub async fn save(&self, connection: &Connection) -> Result<StoredConnection, StoreError> {
        let saved = self.store.save_connection(connection).await;
        self.forget(&connection.name);
        saved
    }

    /// Delete the stored connection; the environment one (if any) is in force afterwards.
    /// True if a stored connection existed.
    pub async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self.store.delete_connection(name).await;
        self.forget(name);
        deleted
    }

    /// Every connection name known to either source, with the source in force.
    pub async fn list(&self) -> Result<Vec<ConnectionSummary>, StoreError> {
        let mut out: BTreeMap<String, ConnectionSummary> = self
            .env
            .values()
            .map(|c| {
                let summary = ConnectionSummary {
                    name: c.name.clone(),
                    provider: c.provider.clone(),
                    source: c.source,
                    revision: c.revision,
                };
                (c.name.clone(), summary)
            })
            .collect();
        for stored in self.store.list_connections().await? {
            let summary = ConnectionSummary {
                name: stored.name.clone(),
                provider: stored.provider.clone(),
                source: ConnectionSource::Store,
                revision: stored.revision,
            };
            out.insert(stored.name, summary);
        }
        Ok(out.into_values().collect())
    }

    /// Record a check result (what `status` shows as the last check).
    pub async fn record_check(&self, name: &str, ok: bool, message: &str) -> Result<CheckRecord, StoreError> {
        self.store.record_check(name, ok, message).await
    }

    /// Everything `GET /api/integrations/{name}/status` shows except the rate-limit budget.
    pub async fn status(&self, name: &str) -> Result<ConnectionStatus, StoreError> {
        let stored = self.store.get_connection(name).await?;
        let env = self.env.get(name);
        let credentials_error = match &stored {
            Some(_) => match self.store.load_connection(name).await {
                Ok(_) => None,
                Err(e @ StoreError::Credentials { .. }) => Some(e.to_string()),
                Err(e) => return Err(e),
            },
            None => None,
        };
        let (provider, source, config, secret_fields, settings) = match (&stored, env) {
            (Some(s), _) => (
                Some(s.provider.clone()),
                Some(ConnectionSource::Store),
                Some(s.config.clone()),
                s.secret_fields.clone(),
                s.settings,
            ),
            (None, Some(e)) => (
                Some(e.provider.clone()),
                Some(e.source),
                Some(e.config.clone()),
                e.secrets.keys().cloned().collect(),
                StoredSettings::from(e.settings),
            ),
            (None, None) => (None, None, None, Vec::new(), StoredSettings::default()),
        };
        Ok(ConnectionStatus {
            name: name.to_owned(),
            provider,
            configured: source.is_some(),
            source,
            environment_fallback: env.is_some(),
            stored,
            config,
            secret_fields,
            settings,
            credentials_error,
            last_check: self.store.last_check(name).await?,
            last_15_minutes: self.store.call_counts(name, STATUS_WINDOW).await?,
        })
    }

    async fn resolve_stored(&self, name: &str) -> Result<Option<Arc<Connection>>, StoreError> {
        let previous = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(name) {
                Some(entry) if entry.fetched.elapsed() < self.ttl => return Ok(entry.connection.clone()),
                Some(entry) => entry.connection.clone().map(|c| (c, entry.key_id.clone())),
                None => None,
            }
        };
        let row = self.store.fetch_row(name).await?;
        let (connection, key_id) = match row {
            None => (None, String::new()),
            Some(row) => match previous {
                // unchanged row: reuse the decrypted connection (and the provider's client cache)
                Some((p, key_id)) if p.revision == row.revision.max(0) as u64 && key_id == row.key_id => {
                    (Some(p), key_id)
                }
                _ => (Some(Arc::new(self.store.decrypt_row(&row)?)), row.key_id),
            },
        };
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name.to_owned(),
            Cached { fetched: Instant::now(), key_id, connection: connection.clone() },
        );
        Ok(connection)
    }
}

#[async_trait]
impl ConnectionResolver for StoreConnections {
    async fn resolve(&self, name: &str) -> Result<Arc<Connection>, IntegrationError> {
        match self.resolve_stored(name).await {
            Ok(Some(connection)) => return Ok(connection),
            Ok(None) => {}
            Err(e @ StoreError::Credentials { .. }) => {
                tracing::warn!(connection = name, error = %e, "stored credentials cannot be decrypted");
                return Err(e.into());
            }
            Err(e) => {
                tracing::warn!(connection = name, error = %e, "store lookup failed");
                return Err(e.into());
            }
        }
        if let Some(connection) = self.env.get(name) {
            return Ok(connection.clone());
        }
        let mut known: Vec<String> = self.env.keys().cloned().collect();
        if let Ok(stored) = self.store.list_connections().await {
            known.extend(stored.into_iter().map(|s| s.name));
        }
        known.sort();
        known.dedup();
        Err(IntegrationError::configuration(
            "store",
            format!(
                "connection '{name}' is not configured (configure it with POST /api/integrations/{name}/configure \
                 or the provider's environment variables); configured connections: [{}]",
                known.join(", ")
            ),
        ))
    }
}
