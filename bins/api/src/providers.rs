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

/// The names of the providers compiled in.
pub fn compiled_in() -> Vec<&'static str> {
    vec![
        #[cfg(feature = "jira")]
        "jira",
        #[cfg(feature = "github")]
        "github",
        #[cfg(feature = "slack")]
        "slack",
        #[cfg(feature = "webhook")]
        "webhook",
    ]
}

/// Routes of the providers' inbound endpoints (signed by the upstream instead of an API key).
pub(crate) fn inbound_routes(
    state: &integration_http::AppState,
    store: &integration_store::Store,
) -> axum::Router<integration_http::AppState> {
    let routes = axum::Router::new();
    #[cfg(feature = "slack")]
    let routes = routes.merge(crate::slack_events::routes(state.clone(), store.clone()));
    let _ = (state, store);
    routes
}
