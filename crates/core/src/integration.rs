//! Integrations (providers): a named group of tools plus a connection check.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::connection::Connection;
use crate::error::IntegrationError;
use crate::tool::Tool;

/// What a provider says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationInfo {
    /// The provider name (`jira`); also the name of its default connection.
    pub name: String,
    /// A name for people (`Jira Cloud`).
    pub display_name: String,
    /// One sentence on what it connects to.
    pub description: String,
    /// JSON Schema of the flat configure body. Secret fields are marked `writeOnly: true`.
    pub config_schema: Value,
    /// Environment variables the provider reads its default connection from.
    pub env_vars: Vec<String>,
}

impl IntegrationInfo {
    /// The names of the configuration fields marked `writeOnly` (the secrets).
    pub fn secret_fields(&self) -> Vec<String> {
        self.config_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, s)| s.get("writeOnly").and_then(Value::as_bool) == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The result of a connection check.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Who the credentials authenticate as, when the upstream says.
    pub identity: Option<String>,
    /// Anything else worth showing (upstream version, rate-limit budget left, ...).
    pub details: Value,
}

/// A provider of tools. Object-safe: registries hold `Arc<dyn Integration>`.
#[async_trait]
pub trait Integration: Send + Sync + 'static {
    /// Name, description and configuration schema.
    fn info(&self) -> IntegrationInfo;

    /// The provider's tools.
    fn tools(&self) -> Vec<Arc<dyn Tool>>;

    /// Check that the connection works against the upstream ("test connection").
    async fn check(&self, connection: &Connection) -> Result<Health, IntegrationError>;

    /// Check a connection's settings without calling the upstream: its URLs well formed, the
    /// credentials its provider needs present and readable. Configuring refuses a connection that
    /// fails this, instead of storing one every call would then fail on. The default accepts any.
    fn validate(&self, connection: &Connection) -> Result<(), IntegrationError> {
        let _ = connection;
        Ok(())
    }

    /// The default connection from environment variables, when they are set. `env` looks a
    /// variable up (the process environment in production, a map in tests).
    fn connection_from_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
        let _ = env;
        None
    }
}

#[allow(dead_code, reason = "compile-time check that Integration stays object-safe")]
fn _integration_is_object_safe(_: Box<dyn Integration>) {}
