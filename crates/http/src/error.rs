//! The one error body of the REST API:
//! `{"error": {"type": "<kind>", "message": "...", "retryable": bool, "details": ...}}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use integration_core::{ErrorKind, IntegrationError};
use serde_json::{Value, json};

/// An error answered by the REST API. Every handler returns this, so every error has one shape.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    kind: String,
    message: String,
    retryable: bool,
    details: Option<Value>,
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error with an explicit status and type name.
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            kind: kind.to_owned(),
            message: message.into(),
            retryable: false,
            details: None,
            retry_after: None,
        }))
    }

    /// 400 for a request the server cannot read (malformed JSON, bad query string).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 for an unknown route or object.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 415 for a body that is not JSON.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
    }

    /// Whether the caller may retry the same request.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.0.retryable = retryable;
        self
    }

    /// Ask the caller to wait this long before trying again (`Retry-After`, in whole seconds).
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.0.retry_after = Some(wait);
        self
    }

    /// Attach details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The error type (`not_found`, `rate_limited`, ...).
    pub fn kind(&self) -> &str {
        &self.0.kind
    }
}

impl From<IntegrationError> for ApiError {
    fn from(error: IntegrationError) -> Self {
        let retry_after = error.retry_after();
        let kind = error.kind();
        let status = kind.http_status();
        Self(Box::new(Inner {
            status,
            kind: kind.as_str().to_owned(),
            message: error.to_string(),
            retryable: error.retryable(),
            details: error.details().cloned(),
            retry_after: match kind {
                ErrorKind::RateLimited { .. } | ErrorKind::CircuitOpen { .. } => retry_after,
                _ => None,
            },
        }))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                Self::unsupported_media_type("expected a body with content-type application/json")
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large")
            }
            other => Self::bad_request(format!("malformed JSON body: {}", other.body_text())),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(format!("invalid path: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(format!("invalid query string: {}", rejection.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        let mut error = json!({
            "type": this.kind,
            "message": this.message,
            "retryable": this.retryable,
        });
        if let Some(details) = this.details {
            error["details"] = details;
        }
        let mut response = (this.status, Json(json!({ "error": error }))).into_response();
        if let Some(wait) = this.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Whether `headers` say the body is JSON (`application/json` or `application/*+json`).
pub(crate) fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The error type and a default message for a status answered by a layer or an extractor rather
/// than by our handlers.
fn kind_of(status: StatusCode) -> (&'static str, &'static str, bool) {
    match status.as_u16() {
        400 => ("invalid_request", "the request cannot be read", false),
        401 => ("authentication", "authentication required", false),
        403 => ("permission", "not allowed", false),
        404 => ("not_found", "no such route", false),
        405 => ("method_not_allowed", "method not allowed on this route", false),
        408 | 504 => ("timeout", "the request took too long", true),
        409 => ("conflict", "conflict", false),
        413 => ("payload_too_large", "request body is too large", false),
        415 => ("unsupported_media_type", "unsupported media type", false),
        422 => ("invalid_input", "invalid input", false),
        424 => ("configuration", "configuration error", false),
        429 => ("rate_limited", "too many requests", true),
        502 => ("upstream", "upstream error", true),
        503 => ("unavailable", "service unavailable", true),
        _ if status.is_client_error() => ("invalid_request", "the request cannot be served", false),
        _ => ("internal", "internal error", false),
    }
}

/// Give every error answer the one error body (see [`crate::observability::front`], which calls
/// it for every answer but those of `/mcp`, which speaks its own protocol). Answers of 400 and
/// above that are not JSON — the body-limit layer's `413 length limit exceeded`, axum's extractor
/// rejections (a body that cannot be read), the timeout layer's empty 504 — are rewritten; JSON
/// errors (ours) pass as they are. `max_body_bytes` is named in the message of a 413.
pub(crate) async fn standard_error_body(response: Response, max_body_bytes: usize) -> Response {
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    if is_json(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let (kind, default_message, retryable) = kind_of(status);
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("request body is too large: the limit is {max_body_bytes} bytes")
    } else {
        let text = axum::body::to_bytes(body, 4096)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default();
        match text.chars().next() {
            // axum's rejections read "Failed to buffer the request body: ...": lowercase, as ours
            Some(first) => first.to_lowercase().chain(text.chars().skip(1)).take(500).collect(),
            None => default_message.to_owned(),
        }
    };
    let mut out = ApiError::new(status, kind, message).with_retryable(retryable).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    out
}
