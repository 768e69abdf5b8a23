//! Upstream failures to [`IntegrationError`]: the one place that classifies Jira's answers.
//!
//! Jira reports errors as an `ErrorCollection` (`{"errorMessages": [..], "errors": {field: msg}}`).
//! Its messages become the error message and the whole collection the error's details; the status
//! and headers go through the core's [`IntegrationError::from_status`], so `429` with `Retry-After`
//! becomes `RateLimited` exactly as for every other provider.

use integration_core::reexports::http::{HeaderMap, StatusCode};
use integration_core::{ErrorKind, IntegrationError};
use serde_json::{Value, json};

use crate::PROVIDER;

/// Turn a non-success Jira answer into an error.
pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> IntegrationError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (message, details) = match parsed.as_ref().and_then(error_collection) {
        Some((message, details)) => (message, details),
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() || text.starts_with('<') {
                format!("jira answered {status}")
            } else {
                truncate(text, 300)
            };
            (message, json!({ "status": status.as_u16() }))
        }
    };
    let err = IntegrationError::from_status(PROVIDER, status, headers, message);
    // Jira answers an unknown project on create with 400 `errors.project`: that is a lookup failure.
    let err = if status == StatusCode::BAD_REQUEST && details["errors"].get("project").is_some() {
        IntegrationError::new(ErrorKind::NotFound, PROVIDER, err.message().to_owned())
    } else {
        err
    };
    err.with_details(details)
}

/// The message and details of an `ErrorCollection` body, if the body is one.
fn error_collection(body: &Value) -> Option<(String, Value)> {
    let obj = body.as_object()?;
    let messages: Vec<String> = obj
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let errors: Vec<String> = obj
        .get("errors")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    // Some endpoints (and gateways) answer `{"message": ".."}` instead.
    let single = obj.get("message").and_then(Value::as_str).map(str::to_owned);
    if messages.is_empty() && errors.is_empty() && single.is_none() {
        return None;
    }
    let message = messages.into_iter().chain(errors).chain(single).collect::<Vec<_>>().join("; ");
    let details = json!({
        "errorMessages": obj.get("errorMessages").cloned().unwrap_or_else(|| json!([])),
        "errors": obj.get("errors").cloned().unwrap_or_else(|| json!({})),
    });
    Some((truncate(&message, 1000), details))
}

/// Turn a transport error into an error: connect failures never reached Jira (safe to retry),
/// time-outs and broken connections may have.
pub fn from_reqwest(error: &reqwest::Error) -> IntegrationError {
    // The message never contains the URL's credentials: the client sends them in a header.
    let message = without_url(error);
    if error.is_connect() {
        IntegrationError::connect(PROVIDER, format!("cannot connect to jira: {message}"))
    } else if error.is_timeout() {
        IntegrationError::new(ErrorKind::Timeout, PROVIDER, format!("jira request timed out: {message}"))
    } else if error.is_decode() && !broke_off(error) {
        IntegrationError::new(
            ErrorKind::Upstream { status: error.status().map(|s| s.as_u16()) },
            PROVIDER,
            format!("jira answered a body that could not be read: {message}"),
        )
    } else if error.is_builder() {
        IntegrationError::internal(PROVIDER, format!("could not build the jira request: {message}"))
    } else {
        IntegrationError::new(ErrorKind::Network, PROVIDER, format!("jira request failed: {message}"))
    }
}

/// reqwest reports every failure while reading a body as a decode error. One caused by the
/// connection (closed or reset before the announced length) is a network failure, not a bad answer.
fn broke_off(error: &reqwest::Error) -> bool {
    use std::error::Error as _;
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, TimedOut, UnexpectedEof};
    error.source().and_then(integration_core::io_error_kind).is_some_and(|kind| {
        matches!(kind, UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | TimedOut)
    })
}

fn without_url(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    let mut source = error.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() { "request failed".to_owned() } else { parts.join(": ") }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use integration_core::reexports::http::HeaderValue;

    fn check(status: u16, headers: &[(&'static str, &str)], body: &str, kind: ErrorKind, message: &str) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        let status = StatusCode::from_u16(status).expect("status");
        let err = from_response(status, &map, body.as_bytes());
        assert_eq!(err.kind(), &kind, "{body}");
        assert_eq!(err.message(), message);
    }

    #[test]
    fn classifies_jira_answers() {
        check(
            400,
            &[],
            r#"{"errorMessages":["Field 'priority' is required"],"errors":{}}"#,
            ErrorKind::InvalidInput,
            "Field 'priority' is required",
        );
        check(
            400,
            &[],
            r#"{"errorMessages":[],"errors":{"project":"valid project is required"}}"#,
            ErrorKind::NotFound,
            "project: valid project is required",
        );
        check(401, &[], "", ErrorKind::Authentication, "jira answered 401 Unauthorized");
        check(
            429,
            &[("retry-after", "3")],
            r#"{"errorMessages":["Rate limit exceeded."]}"#,
            ErrorKind::RateLimited { retry_after: Some(std::time::Duration::from_secs(3)) },
            "Rate limit exceeded.",
        );
        check(
            503,
            &[],
            "<html>down</html>",
            ErrorKind::Upstream { status: Some(503) },
            "jira answered 503 Service Unavailable",
        );
        check(404, &[], r#"{"message":"gone"}"#, ErrorKind::NotFound, "gone");
    }
}
