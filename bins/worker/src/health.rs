//! `/healthz` (the process runs), `/readyz` (connected to the broker and the store answers) and
//! `/metrics` (Prometheus text).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use integration_bus::WorkerStatus;
use integration_store::Store;

#[derive(Clone)]
struct Health {
    status: Arc<WorkerStatus>,
    store: Store,
}

/// The router of the health and metrics endpoints.
pub fn health_router(status: Arc<WorkerStatus>, store: Store) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Health { status, store })
}

async fn ready(State(health): State<Health>) -> Response {
    let broker = health.status.connected();
    let store = matches!(tokio::time::timeout(Duration::from_secs(2), health.store.ping()).await, Ok(Ok(())));
    let code = if broker && store { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = axum::Json(serde_json_body(broker, store, health.status.processed()));
    (code, body).into_response()
}

fn serde_json_body(broker: bool, store: bool, processed: u64) -> serde_json::Value {
    serde_json::json!({"broker": broker, "store": store, "processed": processed})
}

async fn metrics() -> Response {
    match integration_http::metrics_handle() {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed").into_response(),
    }
}
