//! Upstream failures → [`IntegrationError`]: the one place that classifies GitHub's answers.
//!
//! | answer | kind |
//! |---|---|
//! | 401 | `Authentication` |
//! | 403 / 429 with `x-ratelimit-remaining: 0` | `RateLimited`, `retry_after` = reset − now (+1 s for the clock's granularity) |
//! | 403 / 429 with `retry-after` (secondary limit) | `RateLimited`, `retry_after` from the header |
//! | 403 "secondary rate limit" without headers | `RateLimited`, `retry_after` 60 s (GitHub's advice) |
//! | other statuses | [`IntegrationError::from_status`] |
//! | connect failures | `Network`, nothing sent (safe to retry) |
//! | broken connections, bad bodies | `Network` / `Upstream`, may have acted |

use std::time::{Duration, SystemTime};

use integration_core::reexports::http::header::AsHeaderName;
use integration_core::reexports::http::{HeaderMap, StatusCode};
use integration_core::{ErrorKind, IntegrationError};
use serde_json::{Value, json};

use crate::PROVIDER;

/// Classify a non-2xx answer of GitHub.
pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> IntegrationError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    classify(status, headers, &message, parsed.and_then(|v| v.get("errors").cloned()))
}

fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    errors: Option<Value>,
) -> IntegrationError {
    let text = match errors.as_ref().and_then(reasons) {
        Some(reasons) => format!("github answered {}: {message} ({reasons})", status.as_u16()),
        None => format!("github answered {}: {message}", status.as_u16()),
    };
    let mut err = IntegrationError::from_status(PROVIDER, status, headers, text.clone());
    let spent = header_u64(headers, "x-ratelimit-remaining") == Some(0);
    let limited_status = status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS;
    if limited_status && spent && !headers.contains_key("retry-after") {
        // The reset header has one-second granularity: wait for the whole second to pass.
        let retry_after =
            header_u64(headers, "x-ratelimit-reset").map(|reset| until(reset) + Duration::from_secs(1));
        err = IntegrationError::new(ErrorKind::RateLimited { retry_after }, PROVIDER, text);
    } else if limited_status
        && message.to_ascii_lowercase().contains("secondary rate limit")
        && err.retry_after().is_none()
    {
        err = IntegrationError::new(
            ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(60)) },
            PROVIDER,
            text,
        );
    }
    if let Some(errors) = errors {
        err = err.with_details(json!({ "errors": errors }));
    }
    err
}

/// GitHub's reasons for refusing a request, from the `errors` of its answer (a 422 says only
/// "Validation Failed"; what to change is here): each item's `message`, or else its
/// `resource.field: code` (`Issue.title: missing_field`), or the item itself when it is a string.
/// At most five, each cut at 300 bytes ([`crate::models::truncate`]).
fn reasons(errors: &Value) -> Option<String> {
    fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
        v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    let reasons: Vec<String> = errors
        .as_array()?
        .iter()
        .filter_map(|e| match e {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Object(_) => match (text(e, "message"), text(e, "field"), text(e, "code")) {
                (Some(message), _, _) => Some(message.to_owned()),
                (None, Some(field), code) => {
                    let resource = text(e, "resource").map(|r| format!("{r}.")).unwrap_or_default();
                    Some(format!("{resource}{field}: {}", code.unwrap_or("invalid")))
                }
                (None, None, Some(code)) => Some(code.to_owned()),
                (None, None, None) => None,
            },
            _ => None,
        })
        .take(5)
        .map(|r| match crate::models::truncate(&r, 300) {
            (cut, true) => cut + "…",
            (whole, false) => whole,
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The time from now until the epoch second `reset` (zero when past, at most a day: GitHub's
/// header is upstream input, and any `u64` is accepted without overflow).
pub(crate) fn until(reset: u64) -> Duration {
    integration_core::wait_until_epoch(reset, SystemTime::now())
}

pub(crate) fn header_u64(headers: &HeaderMap, name: impl AsHeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Classify an error octocrab raised (transport, JWT, the installation-token exchange).
pub(crate) fn from_octocrab(error: octocrab::Error) -> IntegrationError {
    match error {
        octocrab::Error::GitHub { source, .. } => {
            let headers = source.headers.clone().unwrap_or_default();
            classify(source.status_code, &headers, &source.message, source.errors.clone().map(Value::Array))
        }
        octocrab::Error::JWT { source, .. } => IntegrationError::configuration(
            PROVIDER,
            format!("the GitHub App private key cannot sign a token: {source}"),
        ),
        octocrab::Error::Installation { .. } | octocrab::Error::InstallationTokenInvalidAuth { .. } => {
            IntegrationError::configuration(PROVIDER, "the GitHub App installation is not configured")
        }
        octocrab::Error::Serde { source, .. } => unexpected_body(&source),
        octocrab::Error::Json { source, .. } => unexpected_body(source.inner()),
        other => transport(&other),
    }
}

fn unexpected_body(error: &serde_json::Error) -> IntegrationError {
    IntegrationError::new(
        ErrorKind::Upstream { status: None },
        PROVIDER,
        format!("github answered an unexpected body: {error}"),
    )
}

/// Transport failures: a connect failure sent nothing; anything else may have reached GitHub.
fn transport(error: &(dyn std::error::Error + 'static)) -> IntegrationError {
    let mut chain = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut connect = false;
    while let Some(e) = current {
        let text = e.to_string();
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            connect |= matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            );
        }
        // hyper-util's legacy client says "client error (Connect)" for failures before sending.
        connect |= text.contains("(Connect)") || text.contains("dns error");
        chain.push(text);
        current = e.source();
    }
    chain.dedup();
    let message = format!("cannot reach github: {}", chain.join(": "));
    if connect {
        IntegrationError::connect(PROVIDER, message)
    } else {
        IntegrationError::new(ErrorKind::Network, PROVIDER, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integration_core::MAX_UPSTREAM_WAIT;

    #[test]
    fn a_reset_time_out_of_range_is_the_longest_wait_not_a_panic() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().expect("header"));
        headers.insert("x-ratelimit-reset", u64::MAX.to_string().parse().expect("header"));
        let err =
            from_response(StatusCode::FORBIDDEN, &headers, br#"{"message": "API rate limit exceeded"}"#);
        assert_eq!(err.retry_after(), Some(MAX_UPSTREAM_WAIT + Duration::from_secs(1)));
        assert_eq!(until(u64::MAX), MAX_UPSTREAM_WAIT);
        assert_eq!(until(0), Duration::ZERO);
    }

    #[test]
    fn a_refusal_says_githubs_reasons() {
        let headers = HeaderMap::new();
        let missing = br#"{"message": "Validation Failed", "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
            "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue"}"#;
        let err = from_response(StatusCode::UNPROCESSABLE_ENTITY, &headers, missing);
        assert_eq!(err.message(), "github answered 422: Validation Failed (Issue.title: missing_field)");
        assert_eq!(*err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.details().expect("details")["errors"][0]["code"], "missing_field");

        let custom = br#"{"message": "Validation Failed", "errors": [
            {"resource": "Label", "field": "name", "code": "custom", "message": "name is too long"},
            "a plain reason", {"code": "already_exists"}, {}, 7, ""]}"#;
        let err = from_response(StatusCode::UNPROCESSABLE_ENTITY, &headers, custom);
        assert_eq!(
            err.message(),
            "github answered 422: Validation Failed (name is too long; a plain reason; already_exists)"
        );

        let many =
            json!({"message": "Validation Failed", "errors": vec![json!({"message": "x".repeat(400)}); 9]});
        let err = from_response(StatusCode::UNPROCESSABLE_ENTITY, &headers, many.to_string().as_bytes());
        assert_eq!(err.message().matches('…').count(), 5, "five reasons, each cut");
        assert!(err.message().len() < 1700, "{}", err.message().len());

        for no_reasons in [
            &br#"{"message": "Not Found"}"#[..],
            br#"{"message": "Bad", "errors": "text"}"#,
            br#"{"message": "Bad", "errors": []}"#,
        ] {
            let err = from_response(StatusCode::BAD_REQUEST, &headers, no_reasons);
            assert!(!err.message().contains('('), "{}", err.message());
        }
    }
}
