//! Another Rust service using the GitHub provider alone: integration-core + integration-github,
//! no HTTP server, database or broker.
//!
//! ```text
//! GITHUB_API_URL=http://127.0.0.1:8081 GITHUB_TOKEN=ghp_... cargo run -p integration-github --example github_embed
//! ```
//!
//! With `integrations-fakes` serving the fake GitHub, use its demo token
//! (`ghp_fakeOctocatToken0000000000000000000`). The connection comes from the environment the
//! same way the service reads it (`GITHUB_TOKEN`, `GITHUB_API_URL`).

use std::sync::Arc;

use integration_core::{Executor, ExecutorConfig, InMemoryConnections, Registry, ToolCall};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let github = integration_github::provider();
    let Some(connection) = github.connection_from_env(&|name| std::env::var(name).ok()) else {
        eprintln!("set GITHUB_TOKEN (and GITHUB_API_URL for a fake or GitHub Enterprise)");
        std::process::exit(2);
    };
    let registry = Arc::new(Registry::new());
    registry.add(github.clone())?;
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(connection.clone());
    let executor = Executor::new(registry, connections, ExecutorConfig::default());

    let health = github.check(&connection).await?;
    println!("connected as {:?}; rate limit {}", health.identity, health.details["rate_limit"]);

    let owner = std::env::var("GITHUB_OWNER").unwrap_or_else(|_| "octocat".to_owned());
    let repo = std::env::var("GITHUB_REPO").unwrap_or_else(|_| "hello-world".to_owned());
    for (tool, params) in [
        ("github_get_repository", json!({"owner": owner, "repo": repo})),
        ("github_list_pull_requests", json!({"owner": owner, "repo": repo, "state": "all", "limit": 5})),
        ("github_list_issues", json!({"owner": owner, "repo": repo, "limit": 5})),
    ] {
        let outcome = executor.execute(ToolCall::new(tool, params)).await;
        match outcome.result {
            Ok(value) => println!(
                "{tool} ({} attempt(s)):\n{}",
                outcome.attempts,
                serde_json::to_string_pretty(&value)?
            ),
            Err(e) => println!("{tool} failed: {} ({})", e, e.kind()),
        }
    }
    Ok(())
}
