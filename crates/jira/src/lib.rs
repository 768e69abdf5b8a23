//! # integration-jira
//!
//! The Jira provider of the Integrations Service: a typed client over reqwest for the Jira Cloud
//! REST API v3 ([`JiraClient`]) and the tools an agent calls (`jira_list_projects`,
//! `jira_search_issues`, `jira_create_issue`, ...), each with its REST route.
//!
//! Key design decision: **no query string is ever assembled from caller text.** Searches are built
//! from structured filters by [`jql::Jql`], which quotes and escapes every value and field name
//! the way Jira's own JQL lexer reads them, so a filter value such as `Done" OR project = SECRET`
//! stays one string literal. Raw JQL is accepted only through the separately named `jql`
//! parameter, never mixed with the filters.
//!
//! The crate depends on `integration-core` and its HTTP client only (no axum, sqlx, lapin or
//! redis), so another Rust service can embed it: see `examples/jira_embed.rs`. It never retries,
//! rate-limits or times out on its own; the core [`Executor`](integration_core::Executor) does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use integration_core::{Connection, Executor, ExecutorConfig, InMemoryConnections, Registry, ToolCall};
//! let registry = Arc::new(Registry::new());
//! registry.add(integration_jira::provider())?;
//! let connections = Arc::new(InMemoryConnections::new());
//! connections.insert(
//!     Connection::new("jira", "jira", serde_json::json!({"base_url": "https://x.atlassian.net", "username": "me@x.io"}))
//!         .with_secret("api_token", "..."),
//! );
//! let executor = Executor::new(registry, connections, ExecutorConfig::default());
//! let outcome = executor.execute(ToolCall::new("jira_project_finder", serde_json::json!({"project_name": "Engineering"}))).await;
//! println!("{:?}", outcome.result);
//! # Ok(()) }
//! ```

pub mod adf;
pub mod client;
pub mod config;
pub mod error;
pub mod jql;
pub mod models;
mod tools;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use integration_core::reexports::async_trait;
use integration_core::{Connection, Health, Integration, IntegrationError, IntegrationInfo, Tool};
use serde_json::json;

pub use client::JiraClient;
pub use config::{JiraAuth, JiraConfig, JiraSettings};

/// The provider name, also the name of its default connection.
pub const PROVIDER: &str = "jira";

/// Options of the provider (not of a connection).
#[derive(Debug, Clone, Copy)]
pub struct JiraOptions {
    /// How long project lists stay cached when a call allows cached answers.
    pub project_cache_ttl: Duration,
}

impl Default for JiraOptions {
    fn default() -> Self {
        Self { project_cache_ttl: Duration::from_secs(300) }
    }
}

/// Built clients by connection name, rebuilt when the connection changes.
pub(crate) type ClientCache = integration_core::ClientCache<JiraClient>;

/// The client of a connection (for [`ClientCache::get_or_build`]).
pub(crate) fn build_client(connection: &Connection) -> Result<JiraClient, IntegrationError> {
    JiraConfig::from_connection(connection)?.build()
}

/// The Jira integration: its tools and connection check.
#[derive(Debug, Clone, Default)]
pub struct Jira {
    clients: Arc<ClientCache>,
    options: JiraOptions,
    /// One fetch of the project list at a time per cache key.
    fills: Arc<integration_core::cache::FillLocks>,
}

impl Jira {
    /// The provider with default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The provider with the given options.
    pub fn with_options(options: JiraOptions) -> Self {
        Self { clients: Arc::default(), options, fills: Arc::default() }
    }

    /// The (cached) client of a connection, for code that calls Jira directly.
    pub fn client(&self, connection: &Connection) -> Result<JiraClient, IntegrationError> {
        self.clients.get_or_build(connection, build_client)
    }
}

/// The provider as the binaries register it: `registry.add(integration_jira::provider())`.
pub fn provider() -> Arc<dyn Integration> {
    Arc::new(Jira::new())
}

#[async_trait]
impl Integration for Jira {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: PROVIDER.to_owned(),
            display_name: "Jira".to_owned(),
            description: "Jira Cloud (and Data Center) projects, issues, users and workflows".to_owned(),
            config_schema: config::config_schema(),
            env_vars: [
                config::ENV_BASE_URL,
                config::ENV_USERNAME,
                config::ENV_API_TOKEN,
                config::ENV_PERSONAL_ACCESS_TOKEN,
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        tools::all(tools::Shared {
            clients: self.clients.clone(),
            options: self.options,
            fills: self.fills.clone(),
        })
    }

    /// The settings read as a call would read them ([`JiraConfig::from_connection`]), no request made.
    fn validate(&self, connection: &Connection) -> Result<(), IntegrationError> {
        JiraConfig::from_connection(connection).map(drop)
    }

    async fn check(&self, connection: &Connection) -> Result<Health, IntegrationError> {
        let client = self.clients.get_or_build(connection, build_client)?;
        let me = client.myself().await?;
        let user = models::User::from_value(&me);
        let identity = match (&user.display_name, &user.email) {
            (Some(name), Some(email)) => Some(format!("{name} <{email}>")),
            (Some(name), None) => Some(name.clone()),
            (None, email) => email.clone().or(user.account_id.clone()),
        };
        Ok(Health {
            identity,
            details: json!({
                "account_id": user.account_id,
                "base_url": client.base_url().as_str().trim_end_matches('/'),
                "time_zone": me.get("timeZone"),
            }),
        })
    }

    fn connection_from_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
        config::connection_from_env(env)
    }
}
