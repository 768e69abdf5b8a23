//! Glue of the Webhook Handler module: the `integration-webhook` traits over `integration-store`
//! (endpoints and deliveries in the database, events into the bus outbox) and the REST routes for
//! inbound webhooks and custom HTTP tools. Compiled in with the `webhook` feature; without it
//! [`routes`] adds nothing.

#[cfg(feature = "webhook")]
mod enabled;

#[cfg(feature = "webhook")]
pub(crate) use enabled::routes;

#[cfg(not(feature = "webhook"))]
pub(crate) async fn routes(
    _args: &crate::ServeArgs,
    _store: &integration_store::Store,
    _executor: &integration_core::Executor,
) -> anyhow::Result<axum::Router<integration_http::AppState>> {
    Ok(axum::Router::new())
}
