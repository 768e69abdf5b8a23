//! # integration-github
//!
//! The GitHub provider of the Integrations Service: a client over `octocrab` ([`GitHubClient`])
//! and the tools an agent calls (`github_repo_search`, `github_get_repository`,
//! `github_list_commits`, `github_get_commit`, `github_compare`, `github_get_file`,
//! `github_code_analysis`, `github_list_pull_requests`, `github_get_pull_request`,
//! `github_create_issue`, `github_list_issues`, `github_update_issue`, `github_comment`), each with
//! its REST route.
//!
//! Key design decision: **every request is a raw octocrab request whose headers are read.** Typed
//! octocrab calls drop the headers of successful answers, but the provider needs them on every
//! answer: `x-ratelimit-*` to keep the connection's budget (shown by [`Integration::check`] and used
//! to fail fast as `RateLimited` with `retry_after` = reset − now while it is spent) and `Link` to
//! page. octocrab keeps the parts it does well: base URI, auth, GitHub App JWTs and cached,
//! renewed installation tokens. Its retry layer is compiled out: the core executor retries.
//!
//! The crate depends on `integration-core` and its client library only (no axum, sqlx, lapin or
//! redis), so another Rust service can embed it: see `examples/github_embed.rs`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use integration_core::{Connection, Executor, ExecutorConfig, InMemoryConnections, Registry, ToolCall};
//! let registry = Arc::new(Registry::new());
//! registry.add(integration_github::provider())?;
//! let connections = Arc::new(InMemoryConnections::new());
//! connections.insert(
//!     Connection::new("github", "github", serde_json::json!({"api_url": "https://api.github.com"}))
//!         .with_secret("token", "ghp_..."),
//! );
//! let executor = Executor::new(registry, connections, ExecutorConfig::default());
//! let outcome = executor
//!     .execute(ToolCall::new("github_repo_search", serde_json::json!({"query": "language:rust tokio"})))
//!     .await;
//! println!("{:?}", outcome.result);
//! # Ok(()) }
//! ```

pub mod client;
pub mod config;
mod error;
pub mod models;
mod tools;

use std::sync::Arc;

use integration_core::reexports::async_trait;
use integration_core::{Connection, Health, Integration, IntegrationError, IntegrationInfo, Tool};
use serde_json::{Value, json};

pub use client::{GitHubClient, RateBudget};
pub use config::{GitHubAuth, GitHubConfig, GitHubSettings, Limits};

/// The provider name, also the name of its default connection.
pub const PROVIDER: &str = "github";

/// Built clients by connection name, rebuilt when the connection changes. A client holds its
/// installation token and rate-limit budget, so both live as long as the connection's
/// configuration does.
pub(crate) type ClientCache = integration_core::ClientCache<GitHubClient>;

/// The client of a connection (for [`ClientCache::get_or_build`]).
pub(crate) fn build_client(connection: &Connection) -> Result<GitHubClient, IntegrationError> {
    GitHubConfig::from_connection(connection)?.build()
}

/// The GitHub integration: its tools and connection check.
#[derive(Debug, Clone, Default)]
pub struct GitHub {
    clients: Arc<ClientCache>,
}

impl GitHub {
    /// The provider.
    pub fn new() -> Self {
        Self::default()
    }

    /// The (cached) client of a connection, for code that calls GitHub directly. Needs a Tokio
    /// runtime the first time.
    pub fn client(&self, connection: &Connection) -> Result<GitHubClient, IntegrationError> {
        self.clients.get_or_build(connection, build_client)
    }

    /// The last rate-limit budget seen on a connection, per resource (`core`, `search`).
    pub fn rate_limits(
        &self,
        connection_name: &str,
    ) -> Option<std::collections::BTreeMap<String, RateBudget>> {
        self.clients.existing(connection_name).map(|c| c.budgets())
    }
}

/// The provider as the binaries register it: `registry.add(integration_github::provider())`.
pub fn provider() -> Arc<dyn Integration> {
    Arc::new(GitHub::new())
}

#[async_trait]
impl Integration for GitHub {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: PROVIDER.to_owned(),
            display_name: "GitHub".to_owned(),
            description: "GitHub (and GitHub Enterprise Server) repositories, commits, code analysis, pull \
                          requests and issues"
                .to_owned(),
            config_schema: config::config_schema(),
            env_vars: [config::ENV_TOKEN, config::ENV_API_URL].map(str::to_owned).to_vec(),
        }
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        tools::all(tools::Shared { clients: self.clients.clone() })
    }

    /// The settings read as a call would read them ([`GitHubConfig::from_connection`]), no request made.
    fn validate(&self, connection: &Connection) -> Result<(), IntegrationError> {
        GitHubConfig::from_connection(connection).map(drop)
    }

    /// `GET /rate_limit` (free of charge) for the budgets, and `GET /user` for the identity of a
    /// token (an App installation has no user: its identity is the app and installation).
    async fn check(&self, connection: &Connection) -> Result<Health, IntegrationError> {
        let client = self.clients.get_or_build(connection, build_client)?;
        let limits = client.get("/rate_limit").await?.body;
        client.record_rate_limit_body(&limits);
        let identity = match client.auth_kind() {
            // A spent budget is no broken connection: report it without the identity.
            "token" => match client.get("/user").await {
                Ok(user) => user.body["login"].as_str().map(str::to_owned),
                Err(e) if matches!(e.kind(), integration_core::ErrorKind::RateLimited { .. }) => None,
                Err(e) => return Err(e),
            },
            _ => match GitHubConfig::from_connection(connection)?.auth {
                GitHubAuth::App { app_id, installation_id, .. } => {
                    Some(format!("GitHub App {app_id} (installation {installation_id})"))
                }
                GitHubAuth::Token(_) => None,
            },
        };
        let core =
            limits.get("resources").and_then(|r| r.get("core")).cloned().unwrap_or(limits["rate"].clone());
        let seen: serde_json::Map<String, Value> = client
            .budgets()
            .into_iter()
            .map(|(k, b)| (k, serde_json::to_value(b).unwrap_or(Value::Null)))
            .collect();
        Ok(Health {
            identity,
            details: json!({
                "api_url": client.api_url(),
                "auth": client.auth_kind(),
                "rate_limit": {
                    "limit": core["limit"],
                    "remaining": core["remaining"],
                    "used": core["used"],
                    "reset": core["reset"],
                },
                "rate_limits": limits.get("resources").cloned().unwrap_or(Value::Null),
                "last_seen": seen,
            }),
        })
    }

    fn connection_from_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
        config::connection_from_env(env)
    }
}
