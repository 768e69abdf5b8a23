//! Error classification shared by every provider and front door.
//!
//! Every failure of a tool call ends as one [`IntegrationError`] whose [`ErrorKind`] decides two things:
//! whether the executor may retry it ([`IntegrationError::retryable`]) and how a front door reports it
//! (an HTTP status, an `error_type` in a bus event, an MCP error result). [`classify_status`] is the one
//! place that turns an upstream HTTP status and its headers into a kind.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde::Serialize;

/// What went wrong, as far as a caller needs to know to react.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The upstream rejected the credentials (HTTP 401, Slack `invalid_auth`, ...).
    Authentication,
    /// The credentials are valid but lack a permission or scope (HTTP 403).
    Permission,
    /// The addressed object does not exist upstream (HTTP 404), or an unknown tool or connection.
    NotFound,
    /// The parameters are invalid (schema violations, HTTP 400/422 from the upstream).
    InvalidInput,
    /// The request conflicts with the upstream's current state (HTTP 409).
    Conflict,
    /// The rate-limit budget is spent; `retry_after` says when to try again when known.
    RateLimited {
        /// How long to wait before the next attempt, when the upstream or limiter said so.
        retry_after: Option<Duration>,
    },
    /// The upstream could not be reached or the connection broke.
    Network,
    /// The call did not finish before its deadline.
    Timeout,
    /// The upstream answered with an unexpected status (5xx, or another code with no better kind).
    Upstream {
        /// The HTTP status the upstream answered, when there was one.
        status: Option<u16>,
    },
    /// The connection's circuit breaker is open after repeated upstream failures: the call failed
    /// at once without reaching the upstream; `retry_after` says when a probe will be let through.
    CircuitOpen {
        /// When the circuit lets a probe through.
        retry_after: Option<Duration>,
    },
    /// A dependency of the service itself (its database) is unavailable; try again later.
    Unavailable,
    /// The connection is missing or misconfigured (no credentials, bad base URL, undecryptable secret).
    Configuration,
    /// A bug or an unexpected state inside the service.
    Internal,
}

impl ErrorKind {
    /// The stable, snake_case name of the kind used in error bodies, bus events and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::Authentication => "authentication",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Conflict => "conflict",
            ErrorKind::RateLimited { .. } => "rate_limited",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Upstream { .. } => "upstream",
            ErrorKind::CircuitOpen { .. } => "circuit_open",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Configuration => "configuration",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether an error of this kind may succeed when tried again. Every variant is named, so a new
    /// kind forces a decision here.
    pub fn retryable(&self) -> bool {
        match self {
            ErrorKind::RateLimited { .. }
            | ErrorKind::Network
            | ErrorKind::Timeout
            | ErrorKind::CircuitOpen { .. }
            | ErrorKind::Unavailable => true,
            ErrorKind::Upstream { status } => match status {
                Some(s) => *s >= 500 || *s == 408 || *s == 425,
                None => true,
            },
            ErrorKind::Authentication
            | ErrorKind::Permission
            | ErrorKind::NotFound
            | ErrorKind::InvalidInput
            | ErrorKind::Conflict
            | ErrorKind::Configuration
            | ErrorKind::Internal => false,
        }
    }

    /// The HTTP status a front door answers for this kind.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::Permission => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Network | ErrorKind::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::CircuitOpen { .. } | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Configuration => StatusCode::FAILED_DEPENDENCY,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed request may have changed state upstream. Decides if a non-idempotent tool may
/// be retried: only when the upstream certainly did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The request never reached the upstream, or the upstream refused it before acting
    /// (connect failure, 429, 401, validation).
    None,
    /// The request may have been acted on (a timeout or reset after sending, a 5xx).
    Unknown,
}

/// The error of a tool call: a kind, the provider, a message free of secrets and optional details.
/// Boxed inside, so a `Result<T, IntegrationError>` stays one pointer wide on the error side.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {}", .0.provider, .0.message)]
pub struct IntegrationError(Box<ErrorInner>);

#[derive(Debug, Clone)]
struct ErrorInner {
    kind: ErrorKind,
    provider: String,
    message: String,
    details: Option<serde_json::Value>,
    effect: Effect,
    /// A wait the upstream asked for on an answer that is not a rate limit (`503` with
    /// `Retry-After`).
    retry_after: Option<Duration>,
}

impl IntegrationError {
    /// A new error. The effect defaults from the kind: timeouts, network breaks and 5xx answers may
    /// have reached the upstream, everything else did not change upstream state.
    pub fn new(kind: ErrorKind, provider: impl Into<String>, message: impl Into<String>) -> Self {
        let effect = match &kind {
            ErrorKind::Timeout | ErrorKind::Network | ErrorKind::Upstream { .. } => Effect::Unknown,
            ErrorKind::Authentication
            | ErrorKind::Permission
            | ErrorKind::NotFound
            | ErrorKind::InvalidInput
            | ErrorKind::Conflict
            | ErrorKind::RateLimited { .. }
            | ErrorKind::CircuitOpen { .. }
            | ErrorKind::Unavailable
            | ErrorKind::Configuration
            | ErrorKind::Internal => Effect::None,
        };
        Self(Box::new(ErrorInner {
            kind,
            provider: provider.into(),
            message: message.into(),
            details: None,
            effect,
            retry_after: None,
        }))
    }

    /// An `InvalidInput` error.
    pub fn invalid_input(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, provider, message)
    }

    /// A `NotFound` error.
    pub fn not_found(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, provider, message)
    }

    /// A `Configuration` error.
    pub fn configuration(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Configuration, provider, message)
    }

    /// An `Internal` error.
    pub fn internal(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, provider, message)
    }

    /// A network error raised before any byte reached the upstream (DNS, connect refused):
    /// safe to retry whatever the tool.
    pub fn connect(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, provider, message).with_effect(Effect::None)
    }

    /// An error for an upstream HTTP answer, classified by [`classify_status`].
    pub fn from_status(
        provider: impl Into<String>,
        status: StatusCode,
        headers: &HeaderMap,
        message: impl Into<String>,
    ) -> Self {
        let now = SystemTime::now();
        let kind = classify_status(status, headers, now);
        let mut err = Self::new(kind, provider, message);
        if status.is_server_error() {
            // A 5xx with Retry-After says when to come back (RFC 9110, 10.2.3): no retry before.
            err.0.retry_after = parse_retry_after(headers, now);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE && headers.contains_key(http::header::RETRY_AFTER) {
            // 503 with Retry-After is the upstream's way of saying "not processed, come back".
            err.0.effect = Effect::None;
        }
        err
    }

    /// Attach structured details (validation violations, the upstream's error body, ...).
    /// Details are shown to callers: they must not contain secrets.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.0.details = Some(details);
        self
    }

    /// Override whether the failed request may have acted upstream.
    pub fn with_effect(mut self, effect: Effect) -> Self {
        self.0.effect = effect;
        self
    }

    /// Add a sentence to the message (what the pipeline did about the error).
    pub fn with_note(mut self, note: impl AsRef<str>) -> Self {
        self.0.message = format!("{}; {}", self.0.message, note.as_ref());
        self
    }

    /// Replace the message (keeping kind, provider, details and effect).
    pub(crate) fn with_message(mut self, message: String) -> Self {
        self.0.message = message;
        self
    }

    /// Replace the provider name (used when an error is raised below the provider layer).
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.0.provider = provider.into();
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The provider (or `core` for pipeline errors) that raised it.
    pub fn provider(&self) -> &str {
        &self.0.provider
    }

    /// The human-readable message; never contains a secret.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Structured details, if any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.0.details.as_ref()
    }

    /// Whether the failed request may have changed state upstream.
    pub fn effect(&self) -> Effect {
        self.0.effect
    }

    /// Whether trying again may succeed.
    pub fn retryable(&self) -> bool {
        self.0.kind.retryable()
    }

    /// The wait the upstream asked for: the rate limit's or the open circuit's, or the
    /// `Retry-After` of a 5xx answer. No retry is made before it has passed.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.0.kind {
            ErrorKind::RateLimited { retry_after } | ErrorKind::CircuitOpen { retry_after } => retry_after,
            _ => self.0.retry_after,
        }
    }
}

/// Turn an upstream HTTP status and its headers into an [`ErrorKind`].
///
/// | status | kind |
/// |---|---|
/// | 400, 422 | `InvalidInput` |
/// | 401 | `Authentication` |
/// | 403 with `x-ratelimit-remaining: 0` or `retry-after` | `RateLimited` (reset time or retry-after) |
/// | 403 | `Permission` |
/// | 404, 410 | `NotFound` |
/// | 408 | `Timeout` |
/// | 409 | `Conflict` |
/// | 429 | `RateLimited` (`Retry-After` seconds or HTTP date, else the reset header) |
/// | 5xx and anything else | `Upstream { status }` |
///
/// `now` is passed in so the conversion of reset times and HTTP dates is testable.
pub fn classify_status(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> ErrorKind {
    match status.as_u16() {
        400 | 422 => ErrorKind::InvalidInput,
        401 => ErrorKind::Authentication,
        403 => {
            let spent = header_str(headers, "x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
            let retry_after = parse_retry_after(headers, now);
            if spent || retry_after.is_some() {
                ErrorKind::RateLimited { retry_after: retry_after.or_else(|| parse_reset(headers, now)) }
            } else {
                ErrorKind::Permission
            }
        }
        404 | 410 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited {
            retry_after: parse_retry_after(headers, now).or_else(|| parse_reset(headers, now)),
        },
        s => ErrorKind::Upstream { status: Some(s) },
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The longest wait an upstream can ask for through `Retry-After` or a reset time (one day).
pub const MAX_UPSTREAM_WAIT: Duration = Duration::from_secs(86_400);

/// Parse a `Retry-After` header: delta seconds (fractions allowed) or an HTTP date, at most
/// [`MAX_UPSTREAM_WAIT`].
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = header_str(headers, "retry-after")?.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_UPSTREAM_WAIT.as_secs_f64())));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_UPSTREAM_WAIT))
}

/// The kind of the first I/O error in the source chain of `error` (itself included), if any:
/// how provider clients tell a broken connection from a bad answer when their HTTP library
/// reports both the same way.
pub fn io_error_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

/// The wait from `now` until the Unix second `epoch` (zero when past, at most
/// [`MAX_UPSTREAM_WAIT`]). Any `u64` is accepted: a reset time too far away to represent is
/// simply the longest wait.
pub fn wait_until_epoch(epoch: u64, now: SystemTime) -> Duration {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(epoch))
        .map_or(MAX_UPSTREAM_WAIT, |at| at.duration_since(now).unwrap_or(Duration::ZERO))
        .min(MAX_UPSTREAM_WAIT)
}

/// Parse `x-ratelimit-reset` (GitHub: epoch seconds; Jira: an ISO timestamp is ignored) into a wait.
fn parse_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let raw = header_str(headers, "x-ratelimit-reset")?.trim();
    let epoch: u64 = raw.parse().ok()?;
    Some(wait_until_epoch(epoch, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        map
    }

    fn check(status: u16, hdrs: &[(&'static str, &str)], expected: ErrorKind, retryable: bool) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let status = StatusCode::from_u16(status).expect("valid status");
        let kind = classify_status(status, &headers(hdrs), now);
        assert_eq!(kind, expected, "status {status} headers {hdrs:?}");
        assert_eq!(kind.retryable(), retryable, "retryable of {kind:?}");
    }

    #[test]
    fn classifies_every_row() {
        check(400, &[], ErrorKind::InvalidInput, false);
        check(422, &[], ErrorKind::InvalidInput, false);
        check(401, &[], ErrorKind::Authentication, false);
        check(403, &[], ErrorKind::Permission, false);
        check(403, &[("x-ratelimit-remaining", "12")], ErrorKind::Permission, false);
        check(
            403,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1700000042")],
            ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(42)) },
            true,
        );
        check(
            403,
            &[("retry-after", "60")],
            ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(60)) },
            true,
        );
        check(404, &[], ErrorKind::NotFound, false);
        check(410, &[], ErrorKind::NotFound, false);
        check(408, &[], ErrorKind::Timeout, true);
        check(409, &[], ErrorKind::Conflict, false);
        check(429, &[], ErrorKind::RateLimited { retry_after: None }, true);
        check(
            429,
            &[("retry-after", "7")],
            ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(7)) },
            true,
        );
        check(
            429,
            &[("retry-after", "0.5")],
            ErrorKind::RateLimited { retry_after: Some(Duration::from_millis(500)) },
            true,
        );
        check(
            429,
            &[("retry-after", "Tue, 14 Nov 2023 22:13:50 GMT")],
            ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(30)) },
            true,
        );
        check(
            429,
            &[("retry-after", "Tue, 14 Nov 2023 22:00:00 GMT")],
            ErrorKind::RateLimited { retry_after: Some(Duration::ZERO) },
            true,
        );
        check(429, &[("retry-after", "soon")], ErrorKind::RateLimited { retry_after: None }, true);
        check(
            429,
            &[("x-ratelimit-reset", "1700000010")],
            ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(10)) },
            true,
        );
        check(500, &[], ErrorKind::Upstream { status: Some(500) }, true);
        check(502, &[], ErrorKind::Upstream { status: Some(502) }, true);
        check(503, &[], ErrorKind::Upstream { status: Some(503) }, true);
        check(504, &[], ErrorKind::Upstream { status: Some(504) }, true);
        check(418, &[], ErrorKind::Upstream { status: Some(418) }, false);
    }

    #[test]
    fn upstream_waits_are_bounded_and_never_overflow() {
        let day = ErrorKind::RateLimited { retry_after: Some(MAX_UPSTREAM_WAIT) };
        // a reset time beyond what SystemTime can hold used to panic ("overflow when adding duration")
        check(429, &[("x-ratelimit-reset", "18446744073709551615")], day.clone(), true);
        check(
            403,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "99999999999999")],
            day.clone(),
            true,
        );
        check(429, &[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")], day.clone(), true);
        check(429, &[("retry-after", "1e300")], day, true);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(wait_until_epoch(u64::MAX, now), MAX_UPSTREAM_WAIT);
        assert_eq!(wait_until_epoch(0, now), Duration::ZERO);
        assert_eq!(wait_until_epoch(1_700_000_042, now), Duration::from_secs(42));
    }

    #[test]
    fn effect_follows_kind_and_overrides() {
        assert_eq!(IntegrationError::connect("x", "refused").effect(), Effect::None);
        assert!(IntegrationError::connect("x", "refused").retryable());
        assert_eq!(IntegrationError::new(ErrorKind::Timeout, "x", "t").effect(), Effect::Unknown);
        let h = headers(&[("retry-after", "1")]);
        let e = IntegrationError::from_status("x", StatusCode::SERVICE_UNAVAILABLE, &h, "busy");
        assert_eq!(e.effect(), Effect::None);
        let e = IntegrationError::from_status("x", StatusCode::BAD_GATEWAY, &HeaderMap::new(), "bad");
        assert_eq!(e.effect(), Effect::Unknown);
        let e = IntegrationError::from_status("x", StatusCode::TOO_MANY_REQUESTS, &h, "slow down");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(e.effect(), Effect::None);
    }

    #[test]
    fn server_errors_carry_their_retry_after() {
        let h = headers(&[("retry-after", "2")]);
        let e = IntegrationError::from_status("x", StatusCode::SERVICE_UNAVAILABLE, &h, "busy");
        assert_eq!(e.kind(), &ErrorKind::Upstream { status: Some(503) });
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)), "no retry before the advertised time");
        let e = IntegrationError::from_status("x", StatusCode::BAD_GATEWAY, &h, "bad");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(e.effect(), Effect::Unknown, "only a 503 says the request was not processed");
        let e =
            IntegrationError::from_status("x", StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), "busy");
        assert_eq!(e.retry_after(), None);
        let e = IntegrationError::from_status("x", StatusCode::NOT_FOUND, &h, "gone");
        assert_eq!(e.retry_after(), None, "a 4xx with Retry-After is not retried anyway");
        let e = e.with_note("not retried");
        assert_eq!(e.message(), "gone; not retried");
    }

    #[test]
    fn kinds_map_to_http_statuses() {
        assert_eq!(ErrorKind::NotFound.http_status(), StatusCode::NOT_FOUND);
        assert_eq!(ErrorKind::InvalidInput.http_status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(ErrorKind::RateLimited { retry_after: None }.http_status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(ErrorKind::Timeout.http_status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ErrorKind::Internal.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
