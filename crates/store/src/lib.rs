//! # integration-store
//!
//! Persistence of the Integrations Service: connections with encrypted credentials, connection
//! checks, the tool-execution audit trail, idempotency records and an outbox, on PostgreSQL
//! (`DATABASE_URL=postgres://...`) or an embedded SQLite file under `./data`; plus the Redis
//! [`Cache`](integration_core::Cache) and shared GCRA [`RateLimiter`](integration_core::RateLimiter)
//! in [`redis`].
//!
//! Key design decisions:
//!
//! * **One storage trait, one implementation per backend, the same SQL.** Both schemas
//!   (`migrations/postgres`, `migrations/sqlite`, embedded with `sqlx::migrate!` and applied by
//!   [`Store::open`]) have identical tables and columns: times are epoch milliseconds and JSON is
//!   text, so every query is written once and instantiated for each pool type. The same test
//!   suite runs on both.
//! * **Credentials are sealed per row.** AES-256-GCM under a master key
//!   (`INTEGRATIONS_MASTER_KEY`); the associated data is the provider and connection name, so a
//!   ciphertext moved to another row does not open; every row records its key id, and a
//!   [`Keyring`] of current and previous keys makes [`Store::rotate_master_key`] possible without
//!   downtime. A row that does not open fails that connection only, as a `Configuration` error.
//!   Secrets live in `secrecy` types and never reach `Debug`, errors or logs.
//! * **Changes reach every replica by polling revisions**, not by notifications: see
//!   [`StoreConnections`], and with the `custom-tools` feature, [`Store`] as the
//!   `integration_webhook::CustomToolSource` of the custom HTTP tools.

pub mod api_keys;
pub mod connections;
pub mod crypto;
#[cfg(feature = "custom-tools")]
mod custom_tools;
mod db;
pub mod error;
pub mod redis;
pub mod store;
pub mod webhooks;

pub use api_keys::{API_KEY_PREFIX, ApiKeyRecord, ApiKeyStore};
pub use connections::{ConnectionStatus, ConnectionSummary, STATUS_WINDOW, StoreConnections};
pub use crypto::{Keyring, MasterKey};
pub use error::StoreError;
pub use store::{
    AuditRecord, Begin, CallCounts, CheckRecord, Idempotency, NewOutboxMessage, Outbox, OutboxMessage,
    OutcomeJson, OutcomeState, RotationReport, SETTINGS_FIELDS, Store, StoreConfig, StoredConnection,
    StoredOutcome, StoredSettings, connection_from_body, validate_name,
};
pub use webhooks::{
    DEFAULT_DELIVERIES_PER_ENDPOINT, DEFAULT_DELIVERY_MAX_AGE, DeliveryEvent, DeliveryFilter, DeliveryInsert,
    ListedCustomTool, NewWebhookDelivery, StoredCustomTool, StoredWebhookEndpoint, WebhookDeliveryRow,
    WebhookStore,
};
