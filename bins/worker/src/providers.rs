//! The one place that names providers: each is compiled in behind the Cargo feature of its name.

use std::sync::Arc;

use integration_core::{Integration, Registry};

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
