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

/// How often histogram samples are drained into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

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
            // Drain histogram buffers even when nobody scrapes. Every recorded sample waits in a
            // buffer (8 bytes each) until drained: at 60,000 requests/s with two histograms per
            // request, five seconds of them held ~5 MB at the peak, one second holds ~1 MB. The
            // drain does the same work either way, in smaller pieces.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
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
    let method = method_label(request.method());
    let path = request.uri().path();
    let mcp = path == "/mcp" || path.starts_with("/mcp/");
    let mut response = next.run(request).await;
    if !mcp {
        response = crate::error::standard_error_body(response, max_body_bytes).await;
    }
    let status = response.status();
    DURATION.get(&[method, route]).record(started.elapsed().as_secs_f64());
    REQUESTS.get(&[method, route, status.as_str()]).increment(1);
    response
}

/// The `method` label: a standard method by name, any other (a client may send any token as a
/// method) as `other`, so callers cannot add label values, and series, to `/metrics` at will.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Request ids: a random (version 4) UUID per request, like tower-http's `MakeRequestUuid`, but
/// drawn from a per-thread generator instead of the operating system's: `MakeRequestUuid` made one
/// `getrandom` system call per request. An id names a request in logs; it is no secret.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MakeRequestId;

impl tower_http::request_id::MakeRequestId for MakeRequestId {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = id.hyphenated().encode_lower(&mut text);
        axum::http::HeaderValue::from_str(text).ok().map(tower_http::request_id::RequestId::new)
    }
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
