//! # integration-slack
//!
//! The Slack provider of the Integrations Service: messages, channels, user notifications and bot
//! interactions. Tools (`slack_send_message`, `slack_list_channels`, `slack_notify_user`, ...) call
//! the Slack Web API through a [`SlackClient`] built on slack-morphism; [`events`] verifies and
//! parses what Slack sends to the service (Events API, interactivity, slash commands).
//!
//! Key design decision: **Slack's "200 OK, but `ok: false`" is classified in one place**
//! ([`error::classify_code`]), and Slack's own rate rules are *paced* inside the client
//! ([`pacing`]: per-method tiers, one message per second per channel) so callers queue instead of
//! failing. Retries, time-outs and the per-connection rate limit stay with the core
//! [`Executor`](integration_core::Executor), which honours Slack's `Retry-After`.
//!
//! TLS: the client uses rustls with an explicitly passed aws-lc-rs provider; binaries need not
//! install a process-wide crypto provider, and this crate never compiles in `ring`.
//!
//! The crate depends on `integration-core` and its Slack client only (no axum, sqlx, lapin or
//! redis), so another Rust service can embed it: see `examples/slack_embed.rs`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use integration_core::{Connection, Executor, ExecutorConfig, InMemoryConnections, Registry, ToolCall};
//! let registry = Arc::new(Registry::new());
//! registry.add(integration_slack::provider())?;
//! let connections = Arc::new(InMemoryConnections::new());
//! connections.insert(Connection::new("slack", "slack", serde_json::json!({})).with_secret("bot_token", "xoxb-..."));
//! let executor = Executor::new(registry, connections, ExecutorConfig::default());
//! let call = ToolCall::new("slack_send_message", serde_json::json!({"channel": "#general", "text": "Deployed"}));
//! println!("{:?}", executor.execute(call).await.result);
//! # Ok(()) }
//! ```

pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod models;
pub mod pacing;
mod tools;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use integration_core::reexports::async_trait;
use integration_core::{Connection, Health, Integration, IntegrationError, IntegrationInfo, Tool};
use serde_json::json;

pub use client::{SlackClient, SlackClientOptions};
pub use config::{SlackConfig, SlackSettings};
pub use events::{Inbound, SignatureVerifier, SlackInbound, VerifyError, receive};

/// The provider name, also the name of its default connection.
pub const PROVIDER: &str = "slack";

/// Options of the provider (not of a connection).
#[derive(Debug, Clone, Copy)]
pub struct SlackOptions {
    /// Pacing of every client the provider builds.
    pub client: SlackClientOptions,
    /// How long channel and user list pages stay cached when a call allows cached answers.
    pub list_cache_ttl: Duration,
    /// How long the channel-name directory (`#name` → id) and e-mail → user id lookups stay cached.
    pub directory_cache_ttl: Duration,
}

impl Default for SlackOptions {
    fn default() -> Self {
        Self {
            client: SlackClientOptions::default(),
            list_cache_ttl: Duration::from_secs(60),
            directory_cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Built clients by connection name ([`integration_core::ClientCache`]: rebuilt when the connection
/// changes), made with the provider's client options.
#[derive(Debug, Default)]
pub(crate) struct ClientCache {
    clients: integration_core::ClientCache<SlackClient>,
    options: SlackClientOptions,
}

impl ClientCache {
    fn new(options: SlackClientOptions) -> Self {
        Self { clients: integration_core::ClientCache::new(), options }
    }

    /// The client of a connection, built once per version of the connection. It paces only when
    /// both the provider's options and the connection (`pacing`, default on) ask for it.
    pub(crate) fn client_for(&self, connection: &Connection) -> Result<SlackClient, IntegrationError> {
        self.clients.get_or_build(connection, |c| {
            let config = SlackConfig::from_connection(c)?;
            let options =
                SlackClientOptions { pacing: self.options.pacing && config.options.pacing, ..self.options };
            config.with_options(options).build()
        })
    }
}

/// The Slack integration: its tools and connection check.
#[derive(Debug, Clone)]
pub struct Slack {
    clients: Arc<ClientCache>,
    options: SlackOptions,
    /// One fetch of a channel directory at a time per cache key.
    fills: Arc<integration_core::cache::FillLocks>,
}

impl Default for Slack {
    fn default() -> Self {
        Self::with_options(SlackOptions::default())
    }
}

impl Slack {
    /// The provider with default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The provider with the given options.
    pub fn with_options(options: SlackOptions) -> Self {
        Self { clients: Arc::new(ClientCache::new(options.client)), options, fills: Arc::default() }
    }

    /// The (cached) client of a connection, for code that calls Slack directly.
    pub fn client(&self, connection: &Connection) -> Result<SlackClient, IntegrationError> {
        self.clients.client_for(connection)
    }
}

/// The provider as the binaries register it: `registry.add(integration_slack::provider())`.
pub fn provider() -> Arc<dyn Integration> {
    Arc::new(Slack::new())
}

#[async_trait]
impl Integration for Slack {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: PROVIDER.to_owned(),
            display_name: "Slack".to_owned(),
            description: "Slack workspaces: messages, channels, user notifications and bot interactions"
                .to_owned(),
            config_schema: config::config_schema(),
            env_vars: [
                config::ENV_BOT_TOKEN,
                config::ENV_SIGNING_SECRET,
                config::ENV_API_URL,
                config::ENV_PACING,
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

    /// The settings read as a call would read them ([`SlackConfig::from_connection`]), no request made.
    fn validate(&self, connection: &Connection) -> Result<(), IntegrationError> {
        SlackConfig::from_connection(connection).map(drop)
    }

    async fn check(&self, connection: &Connection) -> Result<Health, IntegrationError> {
        let client = self.clients.client_for(connection)?;
        let me = client.auth_test().await?;
        // An empty name is no name (Slack's SDK samples carry `"user": ""`, `"team": ""`).
        let named = |field: &str| me[field].as_str().filter(|s| !s.is_empty());
        let identity = match (named("user"), named("team")) {
            (Some(user), Some(team)) => Some(format!("{user} @ {team}")),
            (Some(user), None) => Some(user.to_owned()),
            _ => named("user_id").map(str::to_owned),
        };
        Ok(Health {
            identity,
            details: json!({
                "user_id": me["user_id"],
                "team_id": me["team_id"],
                "team": me["team"],
                "bot_id": me["bot_id"],
                "url": me["url"],
                "api_url": client.api_url(),
            }),
        })
    }

    fn connection_from_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
        config::connection_from_env(env)
    }
}
