//! Another Rust service using the Slack provider with nothing but `integration-core` and
//! `integration-slack`: the executor gives it validation, retries honouring `Retry-After`, time-outs
//! and a rate limit; the provider gives it the tools. Also shows calling the client directly.
//!
//! ```text
//! SLACK_BOT_TOKEN=xoxb-... [SLACK_API_URL=http://127.0.0.1:9103/api/] \
//!     cargo run -p integration-slack --example slack_embed -- '#general' 'Deployed v1.2'
//! ```
//!
//! To try it offline, serve the fake (`cargo run -p integration-testkit --bin integrations-fakes --
//! --slack 127.0.0.1:9103`) and use `SLACK_BOT_TOKEN=xoxb-fake-bot-token`.

use std::sync::Arc;

use integration_core::{ExecutorConfig, InMemoryConnections, Integration, Registry, ToolCall};
use integration_slack::Slack;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let channel = args.next().unwrap_or_else(|| "#general".to_owned());
    let text = args.next().unwrap_or_else(|| "Hello from an embedded integrations executor".to_owned());

    // The provider, and its default connection from SLACK_BOT_TOKEN / SLACK_API_URL.
    let slack = Slack::new();
    let connection = slack
        .connection_from_env(&|name| std::env::var(name).ok())
        .ok_or("set SLACK_BOT_TOKEN (and SLACK_API_URL to use a fake)")?;
    println!("connected as {:?}", slack.check(&connection).await?.identity);

    // Through the executor, as the service does.
    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(slack.clone()))?;
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(connection.clone());
    let executor = integration_core::Executor::new(registry, connections, ExecutorConfig::default());
    let outcome = executor
        .execute(ToolCall::new("slack_send_message", serde_json::json!({ "channel": channel, "text": text })))
        .await;
    match outcome.result {
        Ok(sent) => println!("sent: {sent} after {} attempt(s)", outcome.attempts),
        Err(e) => println!("failed ({}, retryable: {}): {e}", e.kind(), e.retryable()),
    }

    // Or the client directly, for a call no tool covers.
    let client = slack.client(&connection)?;
    let page = client.list_conversations(None, true, 5, None).await?;
    println!(
        "first channels: {:?}",
        page.items.iter().filter_map(|c| c["name"].as_str()).collect::<Vec<_>>()
    );
    Ok(())
}
