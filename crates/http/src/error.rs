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
