//! Prometheus metrics and request tracing for the REST API.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use integration_core::HandleCache;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets (seconds) for every `*_seconds` histogram.
const BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Install the process-wide Prometheus recorder once and return its handle. Later calls return the
/// same handle; `None` if another recorder was installed first by someone else.
pub fn install_metrics_recorder() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            let upkeep = handle.clone();
            // Drain histogram buffers now and then even when nobody scrapes.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// The installed handle, if any.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned().flatten()
}

/// The outer middleware of every route (one layer, not two: each `from_fn` layer costs a boxed
/// service clone and a boxed future per request): the one error body for error answers
/// ([`crate::error::standard_error_body`]), and API response times by route template and status,
/// counting the answers of the body-limit and timeout layers inside it.
pub(crate) async fn front(request: Request, next: Next, max_body_bytes: usize) -> Response {
    static DURATION: HandleCache<Histogram> =
        HandleCache::histogram("http_request_duration_seconds", &["method", "route"]);
    static REQUESTS: HandleCache<Counter> =
        HandleCache::counter("http_requests_total", &["method", "route", "status"]);
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let path = request.uri().path();
    let mcp = path == "/mcp" || path.starts_with("/mcp/");
    let mut response = next.run(request).await;
    if !mcp {
        response = crate::error::standard_error_body(response, max_body_bytes).await;
    }
    let status = response.status();
    DURATION.get(&[method.as_str(), route]).record(started.elapsed().as_secs_f64());
    REQUESTS.get(&[method.as_str(), route, status.as_str()]).increment(1);
    response
}

/// The span of one HTTP request: method, route template and request id; never the query string or
/// headers (they may carry secrets). A W3C `traceparent` header makes it the child of the caller's span.
pub(crate) fn make_span(request: &Request) -> tracing::Span {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let span = tracing::info_span!(
        "http_request",
        method = request.method().as_str(),
        path = request.uri().path(),
        route = route.as_deref().unwrap_or(""),
        request_id,
    );
    // The caller's `traceparent`, if any, becomes the parent (with the `otel` feature).
    integration_core::propagation::set_parent_from_headers(&span, request.headers());
    span
}
