//! Upstream observability helpers for provider clients: one histogram of upstream call times, one
//! gauge of the upstream's own rate-limit budget, one histogram of the clients' own pacing waits and
//! one counter of the calls their pacing refused, so every provider reports them the same way.
//!
//! Providers call [`observe_upstream`] once per HTTP exchange with the upstream (retries by the
//! executor are separate exchanges). Labels are low-cardinality: provider, HTTP method (or Web API
//! method for Slack) and status; the path is logged at debug level only, never the query string,
//! headers or bodies.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use crate::metric_handles::HandleCache;

static UPSTREAM_DURATION: HandleCache<Histogram> = HandleCache::histogram(
    "integration_upstream_request_duration_seconds",
    &["provider", "method", "status"],
);
static UPSTREAM_BUDGET: HandleCache<Gauge> =
    HandleCache::gauge("integration_upstream_budget_remaining", &["provider", "resource"]);
static PACING_WAIT: HandleCache<Histogram> =
    HandleCache::histogram("integration_upstream_pacing_wait_seconds", &["provider", "scope"]);
static PACING_REFUSALS: HandleCache<Counter> =
    HandleCache::counter("integration_upstream_pacing_refusals_total", &["provider", "scope"]);

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
    let mut digits = [0u8; 5];
    let status_label = status.map_or("error", |s| status_text(s, &mut digits));
    tracing::debug!(
        provider,
        method,
        path,
        status = status_label,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "upstream call"
    );
    UPSTREAM_DURATION.get(&[provider, method, status_label]).record(elapsed.as_secs_f64());
}

/// A status code as decimal text, without allocating.
pub(crate) fn status_text(status: u16, buf: &mut [u8; 5]) -> &str {
    let mut n = status;
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("error")
}

/// Record the budget the upstream says is left (GitHub `x-ratelimit-remaining` per resource) as the
/// `integration_upstream_budget_remaining` gauge.
pub fn observe_upstream_budget(provider: &'static str, resource: &str, remaining: u64) {
    UPSTREAM_BUDGET.get(&[provider, resource]).set(remaining as f64);
}

/// Record a wait a provider client took on its own before calling the upstream, so as not to
/// provoke the upstream's rate limit (Slack: `scope` = `tier` for a method's per-minute budget,
/// `channel` for one message per second per channel), as the
/// `integration_upstream_pacing_wait_seconds` histogram. Only waits that happened are recorded; a
/// wait refused for the call's deadline is counted by [`observe_pacing_refusal`] instead.
pub fn observe_pacing_wait(provider: &'static str, scope: &'static str, waited: Duration) {
    PACING_WAIT.get(&[provider, scope]).record(waited.as_secs_f64());
}

/// Record a call a provider client refused on its own, unsent, because its pacing wait would outlast
/// what the call may wait (the tool call fails as `rate_limited`), as the
/// `integration_upstream_pacing_refusals_total` counter; `scope` as for [`observe_pacing_wait`].
/// Told apart from the upstream's own 429 answers, which are upstream exchanges.
pub fn observe_pacing_refusal(provider: &'static str, scope: &'static str) {
    PACING_REFUSALS.get(&[provider, scope]).increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_codes_as_text() {
        let mut buf = [0u8; 5];
        for status in [0u16, 7, 42, 200, 404, 599, 9999, 65535] {
            assert_eq!(super::status_text(status, &mut buf), status.to_string());
        }
    }
}
