//! Announcing the tools at start-up: each definition is POSTed to an external tool registry when
//! `TOOL_REGISTRY_URL` is set (retried with exponential backoff and jitter; failures are logged,
//! never fatal), and `integrations.tools_registered` is queued on `events.exchange` through the
//! store's outbox (the bus relay publishes it when RabbitMQ is configured). Runs in the background
//! so start-up stays fast.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use integration_core::Registry;
use integration_store::{NewOutboxMessage, Store};
use serde_json::json;

/// The exchange of the event.
const EVENTS_EXCHANGE: &str = "events.exchange";
/// Its routing key.
pub const TOOLS_REGISTERED: &str = "integrations.tools_registered";

/// Start the announcement in the background.
pub(crate) fn spawn(
    url: Option<String>,
    registry: Arc<Registry>,
    store: Store,
) -> tokio::task::JoinHandle<Vec<String>> {
    let url = url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
    tokio::spawn(async move { announce(url.as_deref(), &registry, &store).await })
}

/// A failed POST: whether to try again, and why (no URL: it may carry credentials).
#[derive(Debug)]
struct PostError {
    retryable: bool,
    message: String,
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<reqwest::Error> for PostError {
    fn from(error: reqwest::Error) -> Self {
        let retryable = error.is_connect() || error.is_timeout() || error.is_request();
        Self { retryable, message: error.without_url().to_string() }
    }
}

/// Register every tool with `url` (when set) and queue the event. Returns the names registered.
pub async fn announce(url: Option<&str>, registry: &Registry, store: &Store) -> Vec<String> {
    let tools = registry.tools();
    let mut registered = Vec::new();
    let mut failed = Vec::new();
    if let Some(url) = url {
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%error, "cannot build the HTTP client of the tool registry");
                return registered;
            }
        };
        for tool in &tools {
            let body = integration_http::registry_entry(tool);
            let post = || async {
                let response = client.post(url).json(&body).send().await?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    Err(PostError { retryable, message: format!("the registry answered {status}") })
                }
            };
            let backoff = ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(10))
                .with_max_times(5)
                .with_jitter();
            let name = tool.spec().name.clone();
            let result = post
                .retry(backoff)
                .when(|e: &PostError| e.retryable)
                .notify(|error, wait| {
                    tracing::debug!(tool = %name, %error, ?wait, "tool registration failed, retrying");
                })
                .await;
            match result {
                Ok(()) => registered.push(name),
                Err(error) => {
                    tracing::warn!(tool = %name, %error, "tool registration failed");
                    failed.push(name);
                }
            }
        }
        tracing::info!(
            registered = registered.len(),
            failed = failed.len(),
            "tools registered with the tool registry"
        );
    }
    let event = json!({
        "service": "integrations",
        "tools": tools.iter().map(|t| {
            let spec = t.spec();
            json!({ "name": spec.name, "provider": spec.provider, "hints": spec.hints })
        }).collect::<Vec<_>>(),
        "count": tools.len(),
        "external_registry": url.map(|_| json!({ "registered": registered.len(), "failed": failed })),
        "timestamp_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default(),
    });
    let message = NewOutboxMessage {
        exchange: EVENTS_EXCHANGE.to_owned(),
        routing_key: TOOLS_REGISTERED.to_owned(),
        payload: serde_json::to_vec(&event).unwrap_or_default(),
    };
    if let Err(error) = store.outbox().insert(&message).await {
        tracing::warn!(%error, "cannot queue the tools_registered event");
    }
    registered
}
