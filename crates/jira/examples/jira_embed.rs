//! Another Rust service using the Jira tools with only `integration-core` and `integration-jira`:
//! a registry, in-memory connections from the environment, and the core executor (validation,
//! rate limits, retries with backoff, deadlines).
//!
//! ```sh
//! # against the offline fake: cargo run -p integration-testkit --bin integrations-fakes -- --jira 127.0.0.1:9101
//! JIRA_BASE_URL=http://127.0.0.1:9101 JIRA_USERNAME=bot@example.com JIRA_API_TOKEN=fake-api-token \
//!   cargo run -p integration-jira --example jira_embed -- Engineering
//! ```

use std::sync::Arc;

use integration_core::reexports::serde_json::json;
use integration_core::{Executor, ExecutorConfig, InMemoryConnections, Integration, Registry, ToolCall};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let project_name = std::env::args().nth(1).unwrap_or_else(|| "Engineering".to_owned());

    let jira = integration_jira::Jira::new();
    let connection = jira
        .connection_from_env(&|name| std::env::var(name).ok())
        .ok_or("set JIRA_BASE_URL and JIRA_USERNAME + JIRA_API_TOKEN (or JIRA_PERSONAL_ACCESS_TOKEN)")?;
    let health = jira.check(&connection).await?;
    println!("connected as {}", health.identity.unwrap_or_default());

    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(jira))?;
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(connection);
    let executor = Executor::new(registry, connections, ExecutorConfig::default());

    let project =
        executor.execute(ToolCall::new("jira_project_finder", json!({ "project_name": project_name }))).await;
    let project = project.result?;
    println!("project: {} ({})", project["name"], project["key"]);

    let issues = executor
        .execute(ToolCall::new(
            "jira_search_issues",
            json!({ "project_key": project["key"], "status": ["To Do", "In Progress"], "limit": 10 }),
        ))
        .await
        .result?;
    for issue in issues["issues"].as_array().into_iter().flatten() {
        println!("{}  [{}]  {}", issue["key"], issue["status"], issue["summary"]);
    }
    Ok(())
}
