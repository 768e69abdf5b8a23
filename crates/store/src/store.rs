//! [`Store`]: opening the database, connections with sealed credentials, key rotation, connection
//! checks, the audit trail, idempotency records and the outbox.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use integration_core::{
    Connection, ConnectionSettings, ConnectionSource, ExecutionObserver, IntegrationInfo, ToolCall,
    ToolOutcome,
};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use crate::crypto::{Keyring, MasterKey, load_or_create_key_file, seal_with};
use crate::db::{self, AuditRow, Backend, ConnectionRow, NewOutboxRow};
use crate::error::StoreError;

/// The fields of a configure body that are executor settings rather than provider config.
pub const SETTINGS_FIELDS: [&str; 3] = ["rate_limit_per_minute", "timeout_seconds", "max_retry_attempts"];

/// How to open the store.
#[derive(Clone, Default)]
pub struct StoreConfig {
    /// `DATABASE_URL`: `postgres://...` (or `postgresql://`), or `sqlite:...`. `None`: the embedded
    /// default, a SQLite file `integrations.db` under `data_dir`.
    pub database_url: Option<String>,
    /// Directory for the SQLite file and the generated `master.key` (`./data` by default).
    pub data_dir: PathBuf,
    /// `INTEGRATIONS_MASTER_KEY`: base64 of 32 bytes. Required with PostgreSQL; with SQLite a key
    /// is generated into `data_dir/master.key` when absent.
    pub master_key: Option<SecretString>,
    /// `INTEGRATIONS_MASTER_KEY_PREVIOUS`: older keys still accepted for decryption (rotation).
    pub previous_keys: Vec<SecretString>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show its scheme only.
        let scheme = self.database_url.as_deref().map(|u| u.split(':').next().unwrap_or_default());
        f.debug_struct("StoreConfig")
            .field("database", &scheme)
            .field("data_dir", &self.data_dir)
            .field("master_key", &self.master_key.as_ref().map(|_| "[REDACTED]"))
            .field("previous_keys", &self.previous_keys.len())
            .finish()
    }
}

impl StoreConfig {
    /// Read `DATABASE_URL`, `INTEGRATIONS_DATA_DIR` (default `./data`), `INTEGRATIONS_MASTER_KEY`
    /// and `INTEGRATIONS_MASTER_KEY_PREVIOUS` (comma-separated) from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// As [`StoreConfig::from_env`], with variables looked up by `env` (tests).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let non_empty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        Self {
            database_url: non_empty("DATABASE_URL"),
            data_dir: non_empty("INTEGRATIONS_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| "./data".into()),
            master_key: non_empty("INTEGRATIONS_MASTER_KEY").map(SecretString::from),
            previous_keys: non_empty("INTEGRATIONS_MASTER_KEY_PREVIOUS")
                .map(|v| {
                    v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(SecretString::from).collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Executor settings of a stored connection, as the configure body names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoredSettings {
    /// Calls admitted per minute.
    pub rate_limit_per_minute: Option<u32>,
    /// Overall deadline of one call, in seconds.
    pub timeout_seconds: Option<u64>,
    /// Retries after the first attempt.
    pub max_retry_attempts: Option<u32>,
}

impl From<ConnectionSettings> for StoredSettings {
    fn from(s: ConnectionSettings) -> Self {
        Self {
            rate_limit_per_minute: s.rate_limit_per_minute,
            timeout_seconds: s.timeout.map(|t| t.as_secs().max(1)),
            max_retry_attempts: s.max_retry_attempts,
        }
    }
}

impl From<StoredSettings> for ConnectionSettings {
    fn from(s: StoredSettings) -> Self {
        Self {
            rate_limit_per_minute: s.rate_limit_per_minute,
            timeout: s.timeout_seconds.map(Duration::from_secs),
            max_retry_attempts: s.max_retry_attempts,
        }
    }
}

/// A stored connection without its secrets: safe to show and serialise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredConnection {
    /// The provider (`jira`).
    pub provider: String,
    /// The connection name (`jira`, `jira-eu`).
    pub name: String,
    /// Non-secret configuration.
    pub config: Value,
    /// The names of the secret fields that are set (values are never read back).
    pub secret_fields: Vec<String>,
    /// Executor settings.
    pub settings: StoredSettings,
    /// The id of the master key the credentials are sealed under.
    pub key_id: String,
    /// Changes on every save.
    pub revision: u64,
    /// First saved.
    pub created_at: DateTime<Utc>,
    /// Last saved.
    pub updated_at: DateTime<Utc>,
}

/// The last result of a connection check ("test connection").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRecord {
    /// Whether the check passed.
    pub ok: bool,
    /// A short, secret-free message (the identity on success, the error on failure).
    pub message: String,
    /// When it ran.
    pub checked_at: DateTime<Utc>,
}

/// Calls and failures of one connection over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// Finished calls.
    pub calls: u64,
    /// Of which failed.
    pub failures: u64,
}

/// One audit row: a finished tool call.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Tool name.
    pub tool: String,
    /// Provider (`core` for unknown tools).
    pub provider: String,
    /// Connection used, when resolved.
    pub connection: Option<String>,
    /// Front door: `rest`, `bus`, `mcp` or `embedded`.
    pub source: String,
    /// Bus task id, when the call came from a command.
    pub task_id: Option<String>,
    /// Bus step id, when the call came from a command.
    pub step_id: Option<String>,
    /// The call's idempotency key.
    pub idempotency_key: Option<String>,
    /// Whether it succeeded.
    pub success: bool,
    /// The error kind (`ErrorKind::as_str`) on failure.
    pub error_kind: Option<String>,
    /// Upstream attempts made.
    pub attempts: u32,
    /// Wall time of the call.
    pub duration: Duration,
    /// When it finished.
    pub at: DateTime<Utc>,
}

impl AuditRecord {
    /// The audit record of a finished executor call (no task/step ids: set them for bus calls).
    pub fn from_outcome(call: &ToolCall, outcome: &ToolOutcome) -> Self {
        Self {
            tool: outcome.tool.clone(),
            provider: outcome.provider.clone(),
            connection: outcome.connection.clone(),
            source: call.source.as_str().to_owned(),
            task_id: None,
            step_id: None,
            idempotency_key: call.idempotency_key.clone(),
            success: outcome.result.is_ok(),
            error_kind: outcome.result.as_ref().err().map(|e| e.kind().as_str().to_owned()),
            attempts: outcome.attempts,
            duration: outcome.duration,
            at: Utc::now(),
        }
    }
}

/// The result of [`Store::rotate_master_key`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotationReport {
    /// The id of the new key.
    pub new_key_id: String,
    /// Rows re-encrypted under the new key.
    pub rotated: usize,
    /// Rows that already were under the new key.
    pub already_current: usize,
    /// Rows that could not be decrypted with any given key (connection name, reason).
    pub failed: Vec<(String, String)>,
    /// Row counts per key id after the rotation.
    pub key_usage: Vec<(String, i64)>,
}

struct Inner {
    db: Box<dyn Backend>,
    keys: Keyring,
    audit: AuditQueue,
    /// Notified after each commit that queued an outbox message through this store.
    outbox_written: Arc<tokio::sync::Notify>,
}

/// What the audit writer is asked to do.
// Nearly every job is a row: boxing it would add an allocation per call to shrink rare flushes.
#[allow(clippy::large_enum_variant)]
enum AuditJob {
    /// Store a row; tell the sender, if any, once it is written (or failed).
    Row(AuditRecord, Option<tokio::sync::oneshot::Sender<Result<(), String>>>),
    /// Answer once every row queued before this one is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Audit rows are written by one task per store in batches (one transaction each), so many
/// concurrent calls cost one commit instead of one commit per call.
struct AuditQueue {
    sender: tokio::sync::mpsc::Sender<AuditJob>,
}

/// Rows written in one audit transaction at most.
const AUDIT_BATCH: usize = 4096;
/// How long the writer lets rows gather before a write: one commit (and one wake-up of the
/// writer) per period under load instead of one per finished call.
const AUDIT_LINGER: Duration = Duration::from_millis(50);

impl AuditQueue {
    /// The queue and the receiving end its writer task drains.
    fn new() -> (Self, tokio::sync::mpsc::Receiver<AuditJob>) {
        let (sender, receiver) = tokio::sync::mpsc::channel(2 * AUDIT_BATCH);
        (Self { sender }, receiver)
    }
}

/// Drain the audit queue until every store handle is gone.
async fn audit_writer(inner: std::sync::Weak<Inner>, mut receiver: tokio::sync::mpsc::Receiver<AuditJob>) {
    let mut batch: Vec<AuditJob> = Vec::with_capacity(AUDIT_BATCH);
    while receiver.recv_many(&mut batch, AUDIT_BATCH).await > 0 {
        let flushing = batch.iter().any(|job| matches!(job, AuditJob::Flush(_)));
        if !flushing && batch.len() < AUDIT_BATCH {
            tokio::time::sleep(AUDIT_LINGER).await;
            while batch.len() < AUDIT_BATCH {
                match receiver.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let rows: Vec<AuditRow<'_>> = batch
            .iter()
            .filter_map(|job| match job {
                AuditJob::Row(record, _) => Some(audit_row(record)),
                AuditJob::Flush(_) => None,
            })
            .collect();
        let result = if rows.is_empty() {
            Ok(())
        } else {
            inner.db.insert_audits(&rows).await.map_err(|e| e.to_string())
        };
        drop(rows);
        if let Err(error) = &result {
            tracing::warn!(%error, "could not write a batch of audit rows");
        }
        for job in batch.drain(..) {
            match job {
                AuditJob::Row(_, Some(done)) => {
                    let _ = done.send(result.clone());
                }
                AuditJob::Row(_, None) => {}
                AuditJob::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

fn audit_row(record: &AuditRecord) -> AuditRow<'_> {
    AuditRow {
        tool: &record.tool,
        provider: &record.provider,
        connection: record.connection.as_deref(),
        source: &record.source,
        task_id: record.task_id.as_deref(),
        step_id: record.step_id.as_deref(),
        idempotency_key: record.idempotency_key.as_deref(),
        status: if record.success { "success" } else { "failure" },
        error_kind: record.error_kind.as_deref(),
        attempts: i64::from(record.attempts),
        duration_ms: i64::try_from(record.duration.as_millis()).unwrap_or(i64::MAX),
        created_at: record.at.timestamp_millis(),
    }
}

/// The store: a handle to one database (PostgreSQL or SQLite) plus the credential keyring.
/// Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.db.name())
            .field("key_ids", &self.inner.keys.key_ids())
            .finish()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or_default()
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn decode_keys(keys: &[SecretString]) -> Result<Vec<MasterKey>, StoreError> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            MasterKey::from_base64(k).map_err(|e| {
                StoreError::Config(format!("INTEGRATIONS_MASTER_KEY_PREVIOUS entry {}: {e}", i + 1))
            })
        })
        .collect()
}

impl Store {
    /// Open (and migrate) the database described by `config`.
    ///
    /// * No `database_url`: SQLite at `data_dir/integrations.db`, created if missing. Without a
    ///   master key, one is generated into `data_dir/master.key` (mode 0600) and a warning is
    ///   logged.
    /// * `postgres://`: refuses to start without `INTEGRATIONS_MASTER_KEY`.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        enum Kind {
            Postgres(String),
            Sqlite(Box<SqliteConnectOptions>),
        }
        let kind = match config.database_url.as_deref() {
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|e| StoreError::io(&config.data_dir, e))?;
                Kind::Sqlite(Box::new(
                    SqliteConnectOptions::new().filename(config.data_dir.join("integrations.db")),
                ))
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Kind::Postgres(url.to_owned())
            }
            Some(url) if url.starts_with("sqlite:") => {
                Kind::Sqlite(Box::new(SqliteConnectOptions::from_str(url).map_err(|e| {
                    StoreError::Config(format!("DATABASE_URL is not a valid SQLite URL: {e}"))
                })?))
            }
            Some(_) => {
                return Err(StoreError::Config(
                    "DATABASE_URL must start with postgres://, postgresql:// or sqlite: \
                     (unset it for the embedded SQLite database under ./data)"
                        .into(),
                ));
            }
        };

        let current = match (&config.master_key, &kind) {
            (Some(key), _) => MasterKey::from_base64(key)
                .map_err(|e| StoreError::Config(format!("INTEGRATIONS_MASTER_KEY: {e}")))?,
            (None, Kind::Postgres(_)) => {
                return Err(StoreError::Config(
                    "INTEGRATIONS_MASTER_KEY is not set: with DATABASE_URL pointing at PostgreSQL the \
                     credentials key must be given; set INTEGRATIONS_MASTER_KEY to 32 random bytes in \
                     base64 (e.g. `openssl rand -base64 32`), the same on every replica"
                        .into(),
                ));
            }
            (None, Kind::Sqlite(_)) => {
                std::fs::create_dir_all(&config.data_dir).map_err(|e| StoreError::io(&config.data_dir, e))?;
                let path = config.data_dir.join("master.key");
                let (key, created) = load_or_create_key_file(&path)?;
                if created {
                    tracing::warn!(
                        path = %path.display(),
                        key_id = key.id(),
                        "INTEGRATIONS_MASTER_KEY is not set: generated a credentials key into the data \
                         directory; back it up (stored credentials cannot be decrypted without it) or set \
                         INTEGRATIONS_MASTER_KEY"
                    );
                } else {
                    tracing::info!(path = %path.display(), key_id = key.id(), "using the credentials key file");
                }
                key
            }
        };
        let keys = Keyring::new(current, decode_keys(&config.previous_keys)?);

        let db: Box<dyn Backend> = match kind {
            Kind::Postgres(url) => {
                let options = PgConnectOptions::from_str(&url).map_err(|e| {
                    StoreError::Config(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(10)
                    // A database that is down answers 503 within seconds, not a request hung for long.
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_with(options)
                    .await?;
                Box::new(db::Postgres { pool })
            }
            Kind::Sqlite(options) => {
                let options = (*options)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
                Box::new(db::Sqlite { pool })
            }
        };
        db.migrate().await?;
        let (audit, audit_jobs) = AuditQueue::new();
        let outbox_written = Arc::default();
        let store = Store { inner: Arc::new(Inner { db, keys, audit, outbox_written }) };
        tokio::spawn(audit_writer(Arc::downgrade(&store.inner), audit_jobs));
        store.warn_about_unknown_keys().await;
        tracing::info!(backend = store.backend(), key_id = store.key_id(), "store opened");
        Ok(store)
    }

    async fn warn_about_unknown_keys(&self) {
        let known = self.inner.keys.key_ids();
        match self.inner.db.key_usage().await {
            Ok(usage) => {
                for (key_id, rows) in usage.into_iter().filter(|(id, _)| !known.contains(id)) {
                    tracing::warn!(
                        key_id,
                        rows,
                        "connections are sealed under a master key that is not loaded; they will fail \
                         until INTEGRATIONS_MASTER_KEY or INTEGRATIONS_MASTER_KEY_PREVIOUS holds it"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "could not read master key usage"),
        }
    }

    /// The database implementation (for the storage modules of this crate).
    pub(crate) fn backend_impl(&self) -> &dyn Backend {
        &*self.inner.db
    }

    /// The keyring (for the storage modules of this crate).
    pub(crate) fn keyring(&self) -> &Keyring {
        &self.inner.keys
    }

    /// The API key table (for `api_keys.rs`).
    pub(crate) fn api_key_db(&self) -> &dyn crate::api_keys::ApiKeyBackend {
        self.inner.db.api_keys()
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        self.inner.db.name()
    }

    /// The id of the key new credentials are sealed under.
    pub fn key_id(&self) -> &str {
        self.inner.keys.current().id()
    }

    /// One round trip to the database (readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.inner.db.ping().await
    }

    /// Write the queued audit rows (waiting at most 5 s), then close the connection pool.
    pub async fn close(&self) {
        if tokio::time::timeout(Duration::from_secs(5), self.flush_audit()).await.is_err() {
            tracing::warn!("audit rows still queued at close");
        }
        self.inner.db.close().await;
    }

    // ---- connections -------------------------------------------------------------------------

    /// Save (insert or replace) a connection, sealing its secrets. The revision changes.
    pub async fn save_connection(&self, connection: &Connection) -> Result<StoredConnection, StoreError> {
        validate_name(&connection.name)?;
        let (key_id, credentials) =
            self.inner.keys.seal(&connection.provider, &connection.name, &connection.secrets)?;
        let settings = StoredSettings::from(connection.settings);
        let secret_fields: Vec<String> = connection.secrets.keys().cloned().collect();
        let now = now_ms();
        let mut row = ConnectionRow {
            name: connection.name.clone(),
            provider: connection.provider.clone(),
            config: connection.config.to_string(),
            secret_fields: serde_json::to_string(&secret_fields)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            credentials,
            key_id,
            rate_limit_per_minute: settings.rate_limit_per_minute.map(i64::from),
            timeout_seconds: settings.timeout_seconds.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
            max_retry_attempts: settings.max_retry_attempts.map(i64::from),
            revision: now_us(),
            created_at: now,
            updated_at: now,
        };
        let (revision, created_at) = self.inner.db.upsert_connection(&row).await?;
        row.revision = revision;
        row.created_at = created_at;
        tracing::info!(connection = %row.name, provider = %row.provider, revision, "connection saved");
        stored_from_row(&row)
    }

    /// Build a connection from a configure body and save it (see [`connection_from_body`]).
    pub async fn configure(
        &self,
        info: &IntegrationInfo,
        name: &str,
        body: &Value,
    ) -> Result<StoredConnection, StoreError> {
        self.save_connection(&connection_from_body(info, name, body)?).await
    }

    /// A stored connection without secrets.
    pub async fn get_connection(&self, name: &str) -> Result<Option<StoredConnection>, StoreError> {
        self.inner.db.get_connection(name).await?.as_ref().map(stored_from_row).transpose()
    }

    /// Every stored connection, without secrets, by name.
    pub async fn list_connections(&self) -> Result<Vec<StoredConnection>, StoreError> {
        self.inner.db.list_connections().await?.iter().map(stored_from_row).collect()
    }

    /// Delete a connection (and its last check); true if it existed.
    pub async fn delete_connection(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self.inner.db.delete_connection(name).await?;
        if deleted {
            tracing::info!(connection = name, "connection deleted");
        }
        Ok(deleted)
    }

    /// A stored connection with its secrets decrypted. A [`StoreError::Credentials`] when they
    /// cannot be decrypted (unknown key, wrong key, tampered or moved ciphertext).
    pub async fn load_connection(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        match self.inner.db.get_connection(name).await? {
            Some(row) => self.decrypt_row(&row).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn fetch_row(&self, name: &str) -> Result<Option<ConnectionRow>, StoreError> {
        self.inner.db.get_connection(name).await
    }

    pub(crate) fn decrypt_row(&self, row: &ConnectionRow) -> Result<Connection, StoreError> {
        let stored = stored_from_row(row)?;
        let secrets = self.inner.keys.open(&row.provider, &row.name, &row.key_id, &row.credentials)?;
        Ok(Connection {
            provider: stored.provider,
            name: stored.name,
            config: stored.config,
            secrets,
            settings: stored.settings.into(),
            source: ConnectionSource::Store,
            revision: stored.revision,
        })
    }

    /// Re-encrypt every connection under `new_key`. Rows are opened with any of `old_keys` or the
    /// keys this store was opened with. Safe while replicas serve: each row is updated only if it
    /// has not changed since it was read, and readers accept every key of their keyring.
    ///
    /// Zero-downtime procedure: (1) give every replica `INTEGRATIONS_MASTER_KEY=<new>` and
    /// `INTEGRATIONS_MASTER_KEY_PREVIOUS=<old>` (rolling restart; both keys open, the new one seals);
    /// (2) run the rotation (`integrations-api master-key rotate`); (3) once the report shows no
    /// row left under the old key, drop `INTEGRATIONS_MASTER_KEY_PREVIOUS`.
    pub async fn rotate_master_key(
        &self,
        old_keys: &[MasterKey],
        new_key: &MasterKey,
    ) -> Result<RotationReport, StoreError> {
        let mut openers: Vec<MasterKey> = old_keys.to_vec();
        openers.push(self.inner.keys.current().clone());
        let ring = Keyring::new(new_key.clone(), openers);
        let mut report = RotationReport { new_key_id: new_key.id().to_owned(), ..Default::default() };
        for listed in self.inner.db.list_connections().await? {
            let mut row = Some(listed);
            // A row changed under us (saved again) is re-read; give up after a few tries.
            for _ in 0..3 {
                let Some(current) = row.take() else { break };
                if current.key_id == new_key.id() {
                    report.already_current += 1;
                    break;
                }
                let secrets = match ring.open(
                    &current.provider,
                    &current.name,
                    &current.key_id,
                    &current.credentials,
                ) {
                    Ok(secrets) => secrets,
                    Err(e) => {
                        tracing::warn!(connection = %current.name, error = %e, "cannot rotate connection");
                        report.failed.push((current.name.clone(), e.to_string()));
                        break;
                    }
                };
                let blob = seal_with(new_key, &current.provider, &current.name, &secrets)?;
                if self
                    .inner
                    .db
                    .reseal_connection(&current.name, current.revision, &current.key_id, new_key.id(), &blob)
                    .await?
                {
                    report.rotated += 1;
                    break;
                }
                row = self.inner.db.get_connection(&current.name).await?;
            }
        }
        self.webhooks().rotate(&ring, new_key, &mut report).await?;
        let mut usage: BTreeMap<String, i64> = BTreeMap::new();
        for (key_id, n) in
            self.inner.db.key_usage().await?.into_iter().chain(self.webhooks().key_usage().await?)
        {
            *usage.entry(key_id).or_default() += n;
        }
        report.key_usage = usage.into_iter().collect();
        tracing::info!(
            new_key_id = %report.new_key_id,
            rotated = report.rotated,
            already_current = report.already_current,
            failed = report.failed.len(),
            "master key rotation finished"
        );
        Ok(report)
    }

    /// Row counts per key id (to verify a rotation left nothing behind).
    pub async fn key_usage(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.db.key_usage().await
    }

    // ---- checks and audit --------------------------------------------------------------------

    /// Record the result of a connection check. `message` must be secret-free (an identity or an
    /// `IntegrationError` message).
    pub async fn record_check(&self, name: &str, ok: bool, message: &str) -> Result<CheckRecord, StoreError> {
        let at = now_ms();
        self.inner.db.put_check(name, ok, message, at).await?;
        Ok(CheckRecord { ok, message: message.to_owned(), checked_at: time(at) })
    }

    /// The last check of a connection.
    pub async fn last_check(&self, name: &str) -> Result<Option<CheckRecord>, StoreError> {
        Ok(self.inner.db.get_check(name).await?.map(|(ok, message, at)| CheckRecord {
            ok,
            message,
            checked_at: time(at),
        }))
    }

    /// Write an audit row.
    /// Concurrent calls are written together in one transaction by the store's audit writer; this
    /// returns once the row is stored.
    pub async fn record_execution(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.inner.audit.sender.send(AuditJob::Row(record.clone(), Some(done))).await.is_err() {
            return self.inner.db.insert_audits(std::slice::from_ref(&audit_row(record))).await;
        }
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Corrupt(format!("audit batch not written: {message}"))),
            Err(_) => self.inner.db.insert_audits(std::slice::from_ref(&audit_row(record))).await,
        }
    }

    /// Queue an audit row without waiting for it to be written: the writer stores it with the
    /// next batch (within [`AUDIT_LINGER`] plus one write). When the queue is full this waits for
    /// room (back-pressure: memory stays bounded and no row is dropped).
    pub async fn queue_execution(&self, record: AuditRecord) {
        use tokio::sync::mpsc::error::TrySendError;
        let job = match self.inner.audit.sender.try_send(AuditJob::Row(record, None)) {
            Ok(()) => return,
            Err(TrySendError::Full(job)) => job,
            Err(TrySendError::Closed(_)) => {
                tracing::warn!("store closed; an audit row was not written");
                return;
            }
        };
        if self.inner.audit.sender.send(job).await.is_err() {
            tracing::warn!("store closed; an audit row was not written");
        }
    }

    /// Wait until every audit row queued so far is written (or its write failed).
    pub async fn flush_audit(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.inner.audit.sender.send(AuditJob::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Calls and failures of `connection` over the last `window` (status shows 15 minutes).
    pub async fn call_counts(&self, connection: &str, window: Duration) -> Result<CallCounts, StoreError> {
        let since = now_ms() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
        let (calls, failures) = self.inner.db.audit_counts(connection, since).await?;
        Ok(CallCounts { calls: calls.max(0) as u64, failures: failures.max(0) as u64 })
    }

    /// Delete audit rows older than `older_than`; returns how many.
    pub async fn purge_audit(&self, older_than: Duration) -> Result<u64, StoreError> {
        let before = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
        self.inner.db.purge_audit(before).await
    }

    /// Idempotency records (used by the bus worker).
    pub fn idempotency(&self) -> Idempotency {
        Idempotency { store: self.clone() }
    }

    /// The outbox (messages to publish after a database commit).
    pub fn outbox(&self) -> Outbox {
        Outbox { store: self.clone() }
    }

    /// Notified after every commit through this store (any clone of it) that queued an outbox
    /// message, so a relay in the same process publishes at once instead of at its next poll. A
    /// notification while nobody waits is kept for the next wait.
    pub fn outbox_notifier(&self) -> Arc<tokio::sync::Notify> {
        self.inner.outbox_written.clone()
    }

    pub(crate) fn outbox_written(&self) {
        self.inner.outbox_written.notify_one();
    }
}

/// Queues one audit row per finished call (see [`Store::queue_execution`]). A database failure is
/// logged, never raised.
#[async_trait::async_trait]
impl ExecutionObserver for Store {
    async fn record(&self, call: &ToolCall, outcome: &ToolOutcome) {
        self.queue_execution(AuditRecord::from_outcome(call, outcome)).await;
    }
}

fn stored_from_row(row: &ConnectionRow) -> Result<StoredConnection, StoreError> {
    let config: Value = serde_json::from_str(&row.config)
        .map_err(|e| StoreError::Corrupt(format!("config of connection '{}': {e}", row.name)))?;
    let secret_fields: Vec<String> = serde_json::from_str(&row.secret_fields)
        .map_err(|e| StoreError::Corrupt(format!("secret fields of connection '{}': {e}", row.name)))?;
    Ok(StoredConnection {
        provider: row.provider.clone(),
        name: row.name.clone(),
        config,
        secret_fields,
        settings: StoredSettings {
            rate_limit_per_minute: row.rate_limit_per_minute.and_then(|v| u32::try_from(v).ok()),
            timeout_seconds: row.timeout_seconds.and_then(|v| u64::try_from(v).ok()),
            max_retry_attempts: row.max_retry_attempts.and_then(|v| u32::try_from(v).ok()),
        },
        key_id: row.key_id.clone(),
        revision: row.revision.max(0) as u64,
        created_at: time(row.created_at),
        updated_at: time(row.updated_at),
    })
}

/// Check a connection name: 1 to 64 characters, ASCII letters, digits, `-` and `_`, starting
/// with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "connection name '{}' must be 1-64 ASCII letters, digits, '-' or '_', starting with a letter or digit",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Split a flat configure body (already validated against the provider's config schema) into a
/// [`Connection`]: the fields listed by [`IntegrationInfo::secret_fields`] become secrets, the
/// [`SETTINGS_FIELDS`] become executor settings, `provider` (for connections not named after their
/// provider) is checked and dropped, everything else is non-secret config. `null` values are
/// dropped. The result has source `Store` and revision 0; nothing is saved.
pub fn connection_from_body(
    info: &IntegrationInfo,
    name: &str,
    body: &Value,
) -> Result<Connection, StoreError> {
    validate_name(name)?;
    let object = body
        .as_object()
        .ok_or_else(|| StoreError::InvalidInput("the configure body must be a JSON object".into()))?;
    let secret_fields = info.secret_fields();
    let mut config = Map::new();
    let mut secrets = BTreeMap::new();
    let mut settings = StoredSettings::default();
    let positive = |field: &str, value: &Value, max: u64| -> Result<u64, StoreError> {
        value
            .as_u64()
            .filter(|v| (1..=max).contains(v))
            .ok_or_else(|| StoreError::InvalidInput(format!("'{field}' must be an integer from 1 to {max}")))
    };
    for (field, value) in object {
        if value.is_null() {
            continue;
        }
        match field.as_str() {
            "provider" => {
                if value.as_str() != Some(info.name.as_str()) {
                    return Err(StoreError::InvalidInput(format!(
                        "'provider' must be '{}' for this connection",
                        info.name
                    )));
                }
            }
            "rate_limit_per_minute" => {
                settings.rate_limit_per_minute = Some(positive(field, value, 1_000_000)? as u32)
            }
            "timeout_seconds" => settings.timeout_seconds = Some(positive(field, value, 3_600)?),
            "max_retry_attempts" => {
                // zero retries is a valid choice
                let v = value.as_u64().filter(|v| *v <= 20).ok_or_else(|| {
                    StoreError::InvalidInput("'max_retry_attempts' must be an integer from 0 to 20".into())
                })?;
                settings.max_retry_attempts = Some(v as u32);
            }
            f if secret_fields.iter().any(|s| s == f) => {
                let secret = value.as_str().ok_or_else(|| {
                    StoreError::InvalidInput(format!("'{f}' is a secret field and must be a string"))
                })?;
                secrets.insert(f.to_owned(), SecretString::from(secret.to_owned()));
            }
            f => {
                config.insert(f.to_owned(), value.clone());
            }
        }
    }
    Ok(Connection {
        provider: info.name.clone(),
        name: name.to_owned(),
        config: Value::Object(config),
        secrets,
        settings: settings.into(),
        source: ConnectionSource::Store,
        revision: 0,
    })
}

/// An outcome as the idempotency records store it: JSON text. A [`Value`] is serialized; text a
/// caller already serialized (the bus publishes the same bytes) is stored as it is. The text must
/// be valid JSON.
pub trait OutcomeJson {
    /// The JSON text (borrowed when it already is text).
    fn json_text(&self) -> std::borrow::Cow<'_, str>;
}

impl OutcomeJson for Value {
    fn json_text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(self.to_string())
    }
}

impl OutcomeJson for str {
    fn json_text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self)
    }
}

/// The state of an idempotency record after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeState {
    /// The call succeeded.
    Completed,
    /// The call failed for good.
    Failed,
}

impl OutcomeState {
    fn as_str(self) -> &'static str {
        match self {
            OutcomeState::Completed => "completed",
            OutcomeState::Failed => "failed",
        }
    }
}

/// A recorded outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredOutcome {
    /// Completed or failed.
    pub state: OutcomeState,
    /// The outcome as given to [`Idempotency::complete`] / [`Idempotency::fail`].
    pub outcome: Value,
    /// When it was recorded.
    pub finished_at: DateTime<Utc>,
}

/// The answer of [`Idempotency::begin`].
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// The key is new (or its previous holder's lease ran out): the caller owns it and must call
    /// `complete`, `fail` or `release`.
    New,
    /// Another worker started this key less than `lease` ago and has not finished.
    InProgress {
        /// When that worker started.
        started_at: DateTime<Utc>,
    },
    /// The key has finished: re-deliver this outcome instead of calling again.
    Done(StoredOutcome),
}

/// A message to publish through the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMessage {
    /// The exchange (`events.exchange`).
    pub exchange: String,
    /// The routing key (`integrations.jira_create_issue_completed`).
    pub routing_key: String,
    /// The body.
    pub payload: Vec<u8>,
}

/// A queued outbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its id (increasing).
    pub id: i64,
    /// The exchange.
    pub exchange: String,
    /// The routing key.
    pub routing_key: String,
    /// The body.
    pub payload: Vec<u8>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

fn outbox_row(m: &NewOutboxMessage) -> NewOutboxRow<'_> {
    NewOutboxRow { exchange: &m.exchange, routing_key: &m.routing_key, payload: &m.payload }
}

/// Idempotency records: key -> `started` | `completed` | `failed` with the stored outcome.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: Store,
}

impl Idempotency {
    /// Claim `key`. A `started` record older than `lease` is considered abandoned (its worker
    /// died) and is taken over.
    pub async fn begin(&self, key: &str, lease: Duration) -> Result<Begin, StoreError> {
        let db = &self.store.inner.db;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        for _ in 0..5 {
            let now = now_ms();
            if db.idem_insert(key, now).await? {
                return Ok(Begin::New);
            }
            let Some(row) = db.idem_get(key).await? else { continue };
            match row.state.as_str() {
                "started" if now - row.started_at >= lease_ms => {
                    if db.idem_takeover(key, row.started_at, now).await? {
                        return Ok(Begin::New);
                    }
                }
                _ => return begin_of_existing(key, &row),
            }
        }
        Err(StoreError::Corrupt(format!("idempotency key '{key}' keeps changing under concurrent claims")))
    }

    /// Claim many keys at once: one statement inserts the `started` records of
    /// the new keys, one more reads the records that were already there. The answers are in the
    /// order of `keys`. There is no lease here: a `started` record is always [`Begin::InProgress`]
    /// (for callers that must never take over, like the bus). A key given twice gets the answer
    /// of its first occurrence, except that a first `New` makes the repeats `InProgress`.
    pub async fn begin_many(&self, keys: &[&str]) -> Result<Vec<Begin>, StoreError> {
        let db = &self.store.inner.db;
        let mut distinct: Vec<&str> = Vec::with_capacity(keys.len());
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        for key in keys {
            if seen.insert(*key) {
                distinct.push(key);
            }
        }
        let now = now_ms();
        let mut answers: HashMap<String, Begin> = HashMap::with_capacity(distinct.len());
        for key in db.idem_insert_many(&distinct, now).await? {
            answers.insert(key, Begin::New);
        }
        let existing: Vec<&str> = distinct.iter().copied().filter(|k| !answers.contains_key(*k)).collect();
        if !existing.is_empty() {
            for (key, row) in db.idem_get_many(&existing).await? {
                let answer = begin_of_existing(&key, &row)?;
                answers.insert(key, answer);
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        let mut answered = std::collections::HashSet::with_capacity(keys.len());
        for key in keys {
            let first = answered.insert(*key);
            let answer = match answers.get(*key) {
                Some(Begin::New) if !first => Begin::InProgress { started_at: time(now) },
                Some(answer) => answer.clone(),
                // Purged between the two statements: claim it on its own.
                None => {
                    let answer = self.begin(key, Duration::MAX).await?;
                    answers.insert((*key).to_owned(), answer.clone());
                    answer
                }
            };
            out.push(answer);
        }
        Ok(out)
    }

    /// Record many outcomes in one statement and one commit. A key given twice keeps its last
    /// outcome.
    ///
    /// An outcome is a JSON [`Value`] or JSON text already serialized (see [`OutcomeJson`]).
    pub async fn finish_many<T: OutcomeJson + ?Sized>(
        &self,
        records: &[(&str, OutcomeState, &T)],
    ) -> Result<(), StoreError> {
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(records.len());
        for (i, (key, _, _)) in records.iter().enumerate() {
            last.insert(key, i);
        }
        let texts: Vec<(&str, &str, std::borrow::Cow<'_, str>)> = records
            .iter()
            .enumerate()
            .filter(|(i, (key, _, _))| last.get(key) == Some(i))
            .map(|(_, (key, state, outcome))| (*key, state.as_str(), outcome.json_text()))
            .collect();
        if texts.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&str, &str, &str)> = texts.iter().map(|(k, s, o)| (*k, *s, o.as_ref())).collect();
        self.store.inner.db.idem_finish_many(&rows, now_ms()).await
    }

    /// Record a successful outcome.
    pub async fn complete(&self, key: &str, outcome: &Value) -> Result<(), StoreError> {
        self.finish(key, OutcomeState::Completed, outcome, None).await.map(|_| ())
    }

    /// Record a final failure.
    pub async fn fail(&self, key: &str, outcome: &Value) -> Result<(), StoreError> {
        self.finish(key, OutcomeState::Failed, outcome, None).await.map(|_| ())
    }

    /// Record an outcome and, in the same transaction, queue a message in the outbox; returns the
    /// outbox id. Either both are stored or neither.
    pub async fn finish(
        &self,
        key: &str,
        state: OutcomeState,
        outcome: &Value,
        message: Option<&NewOutboxMessage>,
    ) -> Result<Option<i64>, StoreError> {
        let row = message.map(outbox_row);
        let id = self
            .store
            .inner
            .db
            .idem_finish(key, state.as_str(), &outcome.to_string(), now_ms(), row.as_ref())
            .await?;
        if id.is_some() {
            self.store.outbox_written();
        }
        Ok(id)
    }

    /// Drop a `started` record so the key can be claimed again at once (the call was not made).
    pub async fn release(&self, key: &str) -> Result<bool, StoreError> {
        self.store.inner.db.idem_release(key).await
    }

    /// Delete records last updated `older_than` ago or earlier (with zero: all of them); returns how many.
    pub async fn purge(&self, older_than: Duration) -> Result<u64, StoreError> {
        let before = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
        self.store.inner.db.idem_purge(before).await
    }
}

/// What an existing record means to a caller that does not take over `started` records.
fn begin_of_existing(key: &str, row: &crate::db::IdempotencyRow) -> Result<Begin, StoreError> {
    match row.state.as_str() {
        "started" => Ok(Begin::InProgress { started_at: time(row.started_at) }),
        state => {
            let state = if state == "completed" { OutcomeState::Completed } else { OutcomeState::Failed };
            let outcome = row
                .outcome
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("idempotency outcome of '{key}': {e}")))?
                .unwrap_or(Value::Null);
            Ok(Begin::Done(StoredOutcome { state, outcome, finished_at: time(row.updated_at) }))
        }
    }
}

/// The outbox: messages written in a database transaction, published later by the bus.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Store,
}

impl Outbox {
    /// Queue a message; returns its id.
    pub async fn insert(&self, message: &NewOutboxMessage) -> Result<i64, StoreError> {
        let id = self.store.inner.db.outbox_insert(&outbox_row(message), now_ms()).await?;
        self.store.outbox_written();
        Ok(id)
    }

    /// The oldest unpublished messages, at most `limit`, oldest first. Publishing is
    /// at-least-once: two publishers may fetch the same message, consumers deduplicate.
    pub async fn fetch_unpublished(&self, limit: u32) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = self.store.inner.db.outbox_unpublished(i64::from(limit)).await?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxMessage {
                id: r.id,
                exchange: r.exchange,
                routing_key: r.routing_key,
                payload: r.payload,
                created_at: time(r.created_at),
            })
            .collect())
    }

    /// Mark a message published; false if it already was (or does not exist).
    pub async fn mark_published(&self, id: i64) -> Result<bool, StoreError> {
        self.store.inner.db.outbox_mark_published(id, now_ms()).await
    }

    /// Delete messages published `older_than` ago or earlier (with zero: every published one); returns how many.
    pub async fn purge_published(&self, older_than: Duration) -> Result<u64, StoreError> {
        let before = now_ms() - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
        self.store.inner.db.outbox_purge_published(before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn jira_info() -> IntegrationInfo {
        IntegrationInfo {
            name: "jira".into(),
            display_name: "Jira".into(),
            description: "d".into(),
            config_schema: json!({"type": "object", "properties": {
                "base_url": {"type": "string"},
                "username": {"type": "string"},
                "api_token": {"type": "string", "writeOnly": true},
            }}),
            env_vars: vec![],
        }
    }

    #[test]
    fn splits_config_secrets_and_settings() -> Result<(), StoreError> {
        let body = json!({"provider": "jira", "base_url": "https://x", "username": "u", "api_token": "t0k",
                          "rate_limit_per_minute": 30, "timeout_seconds": 5, "max_retry_attempts": 0});
        let c = connection_from_body(&jira_info(), "jira-eu", &body)?;
        assert_eq!(c.config, json!({"base_url": "https://x", "username": "u"}));
        assert_eq!(c.secrets.keys().collect::<Vec<_>>(), vec!["api_token"]);
        assert_eq!(c.secret("api_token").map(|s| s.expose_secret().to_owned()), Some("t0k".into()));
        assert_eq!(c.settings.rate_limit_per_minute, Some(30));
        assert_eq!(c.settings.timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.settings.max_retry_attempts, Some(0));
        Ok(())
    }

    #[test]
    fn rejects_bad_bodies_and_names() {
        let info = jira_info();
        let bad = |name: &str, body: Value| {
            assert!(
                matches!(connection_from_body(&info, name, &body), Err(StoreError::InvalidInput(_))),
                "{name} {body}"
            )
        };
        bad("jira", json!([1]));
        bad("jira", json!({"provider": "github"}));
        bad("jira", json!({"api_token": 12}));
        bad("jira", json!({"rate_limit_per_minute": 0}));
        bad("jira", json!({"timeout_seconds": "5"}));
        bad("jira", json!({"max_retry_attempts": 100}));
        bad("", json!({}));
        bad("-x", json!({}));
        bad("a/b", json!({}));
        bad(&"x".repeat(65), json!({}));
    }

    #[test]
    fn config_debug_hides_url_and_key() {
        let config = StoreConfig {
            database_url: Some("postgres://u:hunter2@db/x".into()),
            master_key: Some(SecretString::from("a2V5")),
            ..Default::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("a2V5"), "{debug}");
    }
}
