//! Upstream answers' status and headers (`Retry-After`, `x-ratelimit-*`): classifying them never
//! panics, and any wait taken from them is at most `MAX_UPSTREAM_WAIT`.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use integration_core::{ErrorKind, IntegrationError, MAX_UPSTREAM_WAIT, classify_status};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    status: u16,
    retry_after: Option<String>,
    remaining: Option<String>,
    reset: Option<String>,
    now: u64,
}

fuzz_target!(|input: Input| {
    let Ok(status) = http::StatusCode::from_u16(input.status) else { return };
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("retry-after", &input.retry_after),
        ("x-ratelimit-remaining", &input.remaining),
        ("x-ratelimit-reset", &input.reset),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| http::HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    let Some(now) = UNIX_EPOCH.checked_add(Duration::from_secs(input.now % (1 << 40))) else { return };
    let kind = classify_status(status, &headers, now);
    if let ErrorKind::RateLimited { retry_after: Some(wait) } = kind {
        assert!(wait <= MAX_UPSTREAM_WAIT, "a wait of {wait:?}");
    }
    let error = IntegrationError::from_status("fuzz", status, &headers, "m");
    assert!(error.retry_after().is_none_or(|w| w <= MAX_UPSTREAM_WAIT));
});
