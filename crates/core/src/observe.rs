//! Upstream observability helpers for provider clients: one histogram of upstream call times and
//! one gauge of the upstream's own rate-limit budget, so every provider reports them the same way.
//!
//! Providers call [`observe_upstream`] once per HTTP exchange with the upstream (retries by the
//! executor are separate exchanges). Labels are low-cardinality: provider, HTTP method (or Web API
//! method for Slack) and status; the path is logged at debug level only, never the query string,
//! headers or bodies.

use std::time::Duration;

/// Record one upstream HTTP exchange: the `integration_upstream_request_duration_seconds`
/// histogram by provider, method and status (`error` when no response arrived), and a debug log
/// line with the path and duration.
pub fn observe_upstream(
    provider: &'static str,
    method: &str,
    path: &str,
    status: Option<u16>,
    elapsed: Duration,
) {
    let status_label = status.map(|s| s.to_string()).unwrap_or_else(|| "error".to_owned());
    tracing::debug!(
        provider,
        method,
        path,
        status = status_label.as_str(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "upstream call"
    );
    metrics::histogram!(
        "integration_upstream_request_duration_seconds",
        "provider" => provider,
        "method" => method.to_owned(),
        "status" => status_label,
    )
    .record(elapsed.as_secs_f64());
}

/// Record the budget the upstream says is left (GitHub `x-ratelimit-remaining` per resource) as the
/// `integration_upstream_budget_remaining` gauge.
pub fn observe_upstream_budget(provider: &'static str, resource: &str, remaining: u64) {
    metrics::gauge!(
        "integration_upstream_budget_remaining",
        "provider" => provider,
        "resource" => resource.to_owned(),
    )
    .set(remaining as f64);
}
