//! The one place that names providers: each is compiled in behind the Cargo feature of its name.

use integration_core::{Connection, Registry};

/// Register every provider compiled into this binary.
pub fn register_all(registry: &Registry) -> anyhow::Result<()> {
    // One line per provider, each behind its feature.
    #[cfg(feature = "jira")]
    registry.add(integration_jira::provider())?;
    #[cfg(feature = "github")]
    registry.add(integration_github::provider())?;
    #[cfg(feature = "slack")]
    registry.add(integration_slack::provider())?;
    let _ = registry;
    Ok(())
}

/// The providers' default connections from environment variables (`JIRA_BASE_URL`, ...).
pub fn connections_from_env(registry: &Registry) -> Vec<Connection> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    registry.integrations().iter().filter_map(|i| i.connection_from_env(&env)).collect()
}
