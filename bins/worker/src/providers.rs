//! The one place that names providers: each is compiled in behind the Cargo feature of its name.

use std::sync::Arc;

use integration_core::{Connection, Integration, Registry};

/// Every provider compiled into this binary.
pub fn all() -> Vec<Arc<dyn Integration>> {
    vec![
        #[cfg(feature = "jira")]
        integration_jira::provider(),
        #[cfg(feature = "github")]
        integration_github::provider(),
        #[cfg(feature = "slack")]
        integration_slack::provider(),
        #[cfg(feature = "webhook")]
        integration_webhook::provider(),
    ]
}

/// Register every provider compiled into this binary.
pub fn register_all(registry: &Registry) -> anyhow::Result<()> {
    for provider in all() {
        registry.add(provider)?;
    }
    Ok(())
}

/// The providers' default connections from environment variables (`JIRA_BASE_URL`, ...).
pub fn connections_from_env(registry: &Registry) -> Vec<Connection> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    registry.integrations().iter().filter_map(|i| i.connection_from_env(&env)).collect()
}
