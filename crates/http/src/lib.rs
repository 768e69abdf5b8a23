//! # integration-http
//!
//! The REST front door: an axum 0.8 router built from the tool [`Registry`](integration_core::Registry).
//!
//! Key design decision: no handler is written per endpoint. Every tool declares its REST route in
//! its spec, and [`router`] mounts one generic handler per `(method, path)` that turns path, query
//! and JSON body into the tool's parameters and runs them through the same
//! [`Executor`](integration_core::Executor) as the bus and MCP. Tools sharing a route are told apart
//! by their required parameters (checked unambiguous at registration).

pub mod agent;
pub mod auth;
#[cfg(feature = "cli")]
pub mod cli;
mod connections;
mod error;
#[cfg(feature = "mcp")]
pub mod mcp;
mod observability;
mod openapi;
mod params;
mod shutdown;
pub mod telemetry;
mod tools;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on, post};
use integration_core::{Executor, Method};
use integration_store::StoreConnections;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use agent::{AgentConfig, McpToolMode};
pub use auth::{Auth, AuthConfig, Caller, Scope};
pub use error::ApiError;
pub use observability::{install_metrics_recorder, metrics_handle};
pub use openapi::{DOCS_PATH, OPENAPI_PATH, openapi_document};
pub use shutdown::shutdown_signal;
pub use tools::{CONNECTION_HEADER, mcp_entry, openai_entry, registry_entry};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Deadline of one HTTP request (a little above the tool deadline, so tool timeouts win).
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty disables CORS, `*` allows any.
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(35),
            cors_origins: Vec::new(),
        }
    }
}

/// A dependency `/readyz` checks (the store, the broker, ...).
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    /// A short name (`database`).
    fn name(&self) -> &str;
    /// `Ok` when usable; `Err` with a reason free of secrets otherwise.
    async fn check(&self) -> Result<(), String>;
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The pipeline.
    pub executor: Executor,
    /// Dependencies checked by `/readyz`.
    pub readiness: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    /// The connection store behind configure/status/test/delete (absent: those answer 501).
    pub connections: Option<Arc<StoreConnections>>,
    /// API key authentication (absent: every route is open, and `/api/keys` answers 501).
    pub auth: Option<Arc<auth::Auth>>,
    /// Output budget and MCP settings.
    pub agent: Arc<agent::AgentConfig>,
}

impl AppState {
    /// State with no readiness checks and no connection store.
    pub fn new(executor: Executor) -> Self {
        Self {
            executor,
            readiness: Arc::new(Vec::new()),
            connections: None,
            auth: None,
            agent: Arc::new(agent::AgentConfig::default()),
        }
    }

    /// Require API keys (once one exists) on every non-public route.
    pub fn with_auth(mut self, auth: Arc<auth::Auth>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Output budget and MCP settings.
    pub fn with_agent(mut self, agent: agent::AgentConfig) -> Self {
        self.agent = Arc::new(agent);
        self
    }

    /// Serve connection management from `connections` (it should also be the executor's resolver).
    pub fn with_connections(mut self, connections: Arc<StoreConnections>) -> Self {
        self.connections = Some(connections);
        self
    }

    /// Add a readiness check.
    pub fn with_readiness(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        Arc::make_mut(&mut self.readiness).push(check);
        self
    }
}

/// The whole REST API: management routes, tool routes, health and metrics, with the standard
/// layers (request id, tracing, body limit, timeout, CORS, metrics).
pub fn router(state: AppState, config: &HttpConfig) -> Router {
    router_with(state, config, Router::new())
}

/// Like [`router`], with `extra` routes (mounted by the binary: connection management, webhooks,
/// ...) merged in before the layers.
pub fn router_with(state: AppState, config: &HttpConfig, extra: Router<AppState>) -> Router {
    let mut app: Router<AppState> = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/integrations", get(list_integrations))
        .route("/api/integrations/{name}", axum::routing::delete(connections::delete))
        .route("/api/integrations/{name}/configure", post(connections::configure))
        .route("/api/integrations/{name}/status", get(connections::status))
        .route("/api/integrations/{name}/test", post(connections::test))
        .route("/api/tools", get(tools::list_tools))
        .route("/api/tools/{name}/invoke", post(tools::invoke))
        .route("/api/keys", get(auth::list_keys).post(auth::create_key))
        .route("/api/keys/{id}", axum::routing::delete(auth::revoke_key));
    #[cfg(feature = "mcp")]
    {
        let mcp = tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn(mcp::json_rpc_errors))
            .service(mcp::service(state.clone()));
        app = app.route_service("/mcp", mcp);
    }

    for ((method, path), group) in state.executor.registry().routes() {
        let group = Arc::new(group);
        let handler = move |State(state): State<AppState>,
                            Path(path_params): Path<BTreeMap<String, String>>,
                            RawQuery(query): RawQuery,
                            headers: HeaderMap,
                            body: Bytes| {
            let group = group.clone();
            async move { tools::route_call(state, method, group, path_params, query, headers, body).await }
        };
        app = app.route(&path, on(method_filter(method), handler));
    }

    let app = app
        .merge(openapi::routes(state.executor.registry()))
        .merge(extra)
        // After every route is in: the auth middleware sees each request's route template.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .with_state(state);

    let request_id = HeaderName::from_static("x-request-id");
    let max_body_bytes = config.max_body_bytes;
    // Layers grouped with `ServiceBuilder` (outermost first): each `Router::layer` call boxes every
    // route once more, and a request clones each box, so fewer calls mean fewer allocations.
    let app = app
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes))
                .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
                .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout)),
        )
        // Outside the body limit and the timeout: their answers get the one error body and are
        // counted too.
        .layer(axum::middleware::from_fn(move |request, next| {
            observability::front(request, next, max_body_bytes)
        }))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), observability::MakeRequestId))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(
                    // The access log (status and latency of each request, at debug: turned on
                    // with `RUST_LOG=info,tower_http=debug`), in microseconds: most answers take
                    // less than a millisecond, which the default unit shows as "0 ms".
                    TraceLayer::new_for_http()
                        .make_span_with(observability::make_span)
                        .on_response(
                            tower_http::trace::DefaultOnResponse::new()
                                .latency_unit(tower_http::LatencyUnit::Micros),
                        )
                        .on_failure(
                            tower_http::trace::DefaultOnFailure::new()
                                .level(tracing::Level::WARN)
                                .latency_unit(tower_http::LatencyUnit::Micros),
                        ),
                ),
        );
    match cors(&config.cors_origins) {
        Some(layer) => app.layer(layer),
        None => app,
    }
}

fn method_filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Patch => MethodFilter::PATCH,
        Method::Delete => MethodFilter::DELETE,
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    // `CORS_ORIGINS=""` (the default) parses as one empty origin: that is "none" too, not a CORS
    // layer answering every preflight `OPTIONS` (found by schemathesis: 200 without a key).
    let origins: Vec<&String> = origins.iter().filter(|o| !o.trim().is_empty()).collect();
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods(tower_http::cors::Any)
            .allow_headers(tower_http::cors::Any)
            .max_age(Duration::from_secs(600)),
    )
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    for check in state.readiness.iter() {
        let result = tokio::time::timeout(Duration::from_secs(2), check.check()).await;
        let entry = match result {
            Ok(Ok(())) => json!({ "status": "ok" }),
            Ok(Err(reason)) => {
                ready = false;
                json!({ "status": "unavailable", "reason": reason })
            }
            Err(_) => {
                ready = false;
                json!({ "status": "unavailable", "reason": "check timed out" })
            }
        };
        checks.insert(check.name().to_owned(), entry);
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({ "status": if ready { "ready" } else { "unavailable" }, "checks": checks })))
        .into_response()
}

async fn metrics() -> Response {
    let body = observability::metrics_handle().map(|h| h.render()).unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// `GET /api/integrations`: the providers compiled in, their tools and whether their default
/// connection is configured.
async fn list_integrations(State(state): State<AppState>) -> Response {
    let registry = state.executor.registry();
    let mut out = Vec::new();
    for integration in registry.integrations() {
        let info = integration.info();
        let tools: Vec<String> = registry
            .tools()
            .into_iter()
            .filter(|t| t.spec().provider == info.name)
            .map(|t| t.spec().name.clone())
            .collect();
        let default = state.executor.connections().resolve(&info.name).await;
        let connections: Vec<serde_json::Value> = match &state.connections {
            Some(store) => store
                .list()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.provider == info.name)
                .map(|c| json!({ "name": c.name, "source": c.source, "revision": c.revision }))
                .collect(),
            None => Vec::new(),
        };
        out.push(json!({
            "name": info.name,
            "display_name": info.display_name,
            "description": info.description,
            "configured": default.is_ok(),
            "source": default.as_ref().ok().map(|c| c.source),
            "connections": connections,
            "tools": tools,
            "config_schema": info.config_schema,
        }));
    }
    axum::Json(json!({ "integrations": out })).into_response()
}
