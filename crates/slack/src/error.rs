//! Slack failures to [`IntegrationError`]: the one place that classifies Slack's answers.
//!
//! Slack answers most failures with HTTP 200 and `{"ok": false, "error": "<code>"}`; a few with
//! HTTP 429 (`Retry-After`) or 5xx. [`classify_code`] turns an error code into a kind,
//! [`from_api_error`] builds the error (naming the missing scope from `needed`), and
//! [`from_client_error`] handles everything slack-morphism can report, transport failures included.

use std::time::Duration;

use integration_core::reexports::http::{HeaderMap, StatusCode};
use integration_core::{Effect, ErrorKind, IntegrationError};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;

use crate::PROVIDER;

/// The kind of a Slack `error` code (`ok: false` answers).
///
/// | codes | kind |
/// |---|---|
/// | `invalid_auth`, `not_authed`, `account_inactive`, `token_revoked`, `token_expired`, `no_such_token` | `Authentication` |
/// | `missing_scope`, `no_permission`, `restricted_action`, `not_in_channel`, `cant_update_message`, `user_is_bot`, `user_is_restricted`, ... | `Permission` |
/// | `channel_not_found`, `user_not_found`, `users_not_found`, `message_not_found`, ... | `NotFound` |
/// | `ratelimited`, `rate_limited` | `RateLimited` |
/// | `msg_too_long`, `invalid_blocks`, `no_text`, `invalid_name*`, `invalid_cursor`, `too_long`, ... | `InvalidInput` |
/// | `name_taken`, `already_archived`, `already_in_channel`, `already_reacted`, `is_archived`, `edit_window_closed`, ... | `Conflict` |
/// | `fatal_error`, `internal_error`, `request_timeout`, `service_unavailable` | `Upstream` (retryable) |
/// | anything else | `Upstream` (not retryable) |
pub fn classify_code(code: &str) -> ErrorKind {
    match code {
        "invalid_auth"
        | "not_authed"
        | "account_inactive"
        | "token_revoked"
        | "token_expired"
        | "no_such_token"
        | "not_allowed_token_type"
        | "two_factor_setup_required" => ErrorKind::Authentication,
        "missing_scope"
        | "no_permission"
        | "restricted_action"
        | "not_in_channel"
        | "cant_update_message"
        | "user_is_bot"
        | "user_is_restricted"
        | "user_is_ultra_restricted"
        | "ekm_access_denied"
        | "access_denied"
        | "org_login_required"
        | "enterprise_is_restricted"
        | "team_access_not_granted"
        | "method_not_supported_for_channel_type"
        | "cant_archive_general"
        | "cant_invite"
        | "user_not_in_channel" => ErrorKind::Permission,
        "channel_not_found" | "user_not_found" | "users_not_found" | "message_not_found"
        | "thread_not_found" | "team_not_found" | "no_channel" | "no_user" | "user_not_visible"
        | "unknown_method" => ErrorKind::NotFound,
        "ratelimited" | "rate_limited" => ErrorKind::RateLimited { retry_after: None },
        "msg_too_long"
        | "invalid_blocks"
        | "invalid_blocks_format"
        | "no_text"
        | "too_many_attachments"
        | "invalid_attachments"
        | "invalid_arg_name"
        | "invalid_array_arg"
        | "invalid_charset"
        | "invalid_form_data"
        | "invalid_post_type"
        | "missing_post_type"
        | "invalid_json"
        | "json_not_object"
        | "invalid_cursor"
        | "invalid_ts_latest"
        | "invalid_ts_oldest"
        | "bad_timestamp"
        | "invalid_name"
        | "invalid_name_required"
        | "invalid_name_punctuation"
        | "invalid_name_maxlength"
        | "invalid_name_specials"
        | "too_long"
        | "cant_invite_self"
        | "no_item_specified"
        | "too_many_users"
        | "users_list_not_supplied"
        | "not_enough_users"
        | "invalid_user_combination"
        | "limit_required"
        | "too_many_emoji"
        | "too_many_reactions"
        | "invalid_thread_ts"
        | "missing_charset"
        | "superfluous_charset"
        | "invalid_arguments" => ErrorKind::InvalidInput,
        "name_taken" | "already_archived" | "already_in_channel" | "already_reacted" | "is_archived"
        | "edit_window_closed" | "is_inactive" => ErrorKind::Conflict,
        "fatal_error" | "internal_error" | "request_timeout" | "service_unavailable" => {
            ErrorKind::Upstream { status: None }
        }
        // A 200 answer with an unknown code: the upstream refused for a reason we cannot act on.
        _ => ErrorKind::Upstream { status: Some(200) },
    }
}

/// The error for an `ok: false` answer of `method` with `code`; `body` is the whole answer, from
/// which `needed` / `provided` (missing scope) and `warnings` are read.
pub fn from_api_error(
    method: &str,
    code: &str,
    body: Option<&str>,
    retry_after: Option<Duration>,
) -> IntegrationError {
    let parsed: Value = body.and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let mut kind = classify_code(code);
    if let ErrorKind::RateLimited { retry_after: r } = &mut kind {
        *r = retry_after;
    }
    let message = match code {
        "missing_scope" => match (field("needed"), field("provided")) {
            (Some(needed), Some(provided)) => {
                format!("{method}: the bot token lacks the scope '{needed}' (it has: {provided})")
            }
            (Some(needed), None) => format!("{method}: the bot token lacks the scope '{needed}'"),
            _ => format!("{method}: the bot token lacks a required scope"),
        },
        "invalid_auth" | "not_authed" => format!("{method}: slack rejected the bot token ({code})"),
        "account_inactive" | "token_revoked" | "token_expired" => {
            format!("{method}: the bot token is no longer valid ({code})")
        }
        "channel_not_found" => format!("{method}: channel not found"),
        "user_not_found" | "users_not_found" => format!("{method}: user not found"),
        "ratelimited" | "rate_limited" => format!("{method}: rate limited by slack"),
        _ => format!("{method}: slack answered '{code}'"),
    };
    let mut details = json!({ "method": method, "error": code });
    for extra in ["needed", "provided"] {
        if let Some(v) = field(extra) {
            details[extra] = Value::String(v.to_owned());
        }
    }
    if let Some(w) =
        parsed.get("warning").or_else(|| parsed.get("response_metadata").and_then(|m| m.get("messages")))
    {
        details["warnings"] = w.clone();
    }
    IntegrationError::new(kind, PROVIDER, message).with_details(details)
}

/// Check a successful answer of `method`: every Web API answer is a JSON object with `"ok": true`.
/// slack-morphism hands back `{}` for a 200 answer that is not JSON (the HTML page of a proxy or
/// captive portal); that is a broken answer, not an empty success. The request may have been acted
/// on, so it is not repeated for a write.
pub fn web_api_answer<A: WebApiAnswer>(method: &str, answer: A) -> Result<A, IntegrationError> {
    if answer.is_ok() {
        return Ok(answer);
    }
    Err(IntegrationError::new(
        ErrorKind::Upstream { status: Some(StatusCode::OK.as_u16()) },
        PROVIDER,
        format!("{method}: slack answered something that is not a web api answer"),
    )
    .with_details(json!({ "method": method, "status": 200 }))
    .with_effect(Effect::Unknown))
}

/// An answer of the Web API that says whether Slack took the call.
pub trait WebApiAnswer {
    /// `"ok": true`.
    fn is_ok(&self) -> bool;
}

impl WebApiAnswer for Value {
    fn is_ok(&self) -> bool {
        self.get("ok").and_then(Value::as_bool) == Some(true)
    }
}

/// An `ok` answer without a member the caller needs.
pub fn missing_field(method: &str, name: &str) -> IntegrationError {
    IntegrationError::new(
        ErrorKind::Upstream { status: Some(StatusCode::OK.as_u16()) },
        PROVIDER,
        format!("{method} answered without '{name}'"),
    )
}

/// Turn anything slack-morphism reports into an error.
pub fn from_client_error(method: &str, error: SlackClientError) -> IntegrationError {
    match error {
        SlackClientError::ApiError(e) => {
            from_api_error(method, &e.code, e.http_response_body.as_deref(), None)
        }
        SlackClientError::RateLimitError(e) => {
            let message = format!("{method}: rate limited by slack");
            IntegrationError::new(ErrorKind::RateLimited { retry_after: e.retry_after }, PROVIDER, message)
                .with_details(
                    json!({ "method": method, "error": e.code.as_deref().unwrap_or("ratelimited") }),
                )
        }
        SlackClientError::HttpError(e) => {
            // slack-morphism keeps the status but not the headers of non-200, non-429 answers.
            let message = format!("{method}: slack answered HTTP {}", e.status_code);
            IntegrationError::from_status(PROVIDER, e.status_code, &HeaderMap::new(), message)
                .with_details(json!({ "method": method, "status": e.status_code.as_u16() }))
        }
        SlackClientError::HttpProtocolError(e) => {
            let cause = e.cause.as_deref();
            let connect = cause
                .and_then(|c| c.downcast_ref::<hyper_util::client::legacy::Error>())
                .is_some_and(|c| c.is_connect());
            let text = cause.map(describe_chain).unwrap_or_else(|| "request failed".to_owned());
            if connect {
                IntegrationError::connect(PROVIDER, format!("{method}: cannot connect to slack: {text}"))
            } else {
                IntegrationError::new(
                    ErrorKind::Network,
                    PROVIDER,
                    format!("{method}: slack request failed: {text}"),
                )
            }
        }
        SlackClientError::EndOfStream(_) => IntegrationError::new(
            ErrorKind::Network,
            PROVIDER,
            format!("{method}: slack closed the connection"),
        ),
        SlackClientError::ProtocolError(e) => IntegrationError::new(
            ErrorKind::Upstream { status: Some(StatusCode::OK.as_u16()) },
            PROVIDER,
            format!("{method}: slack answered a body that could not be read: {}", e.json_error),
        )
        .with_effect(Effect::Unknown),
        // slack-morphism reports a failure while reading the answer's body as a system error too;
        // its cause is then an I/O error: the connection broke (or the body is not UTF-8).
        SlackClientError::SystemError(e) => {
            match e.cause.as_deref().and_then(|cause| integration_core::io_error_kind(cause)) {
                Some(std::io::ErrorKind::InvalidData) => IntegrationError::new(
                    ErrorKind::Upstream { status: Some(StatusCode::OK.as_u16()) },
                    PROVIDER,
                    format!("{method}: slack answered a body that is not text"),
                )
                .with_effect(Effect::Unknown),
                Some(_) => {
                    let text = e.cause.as_deref().map(describe_chain).unwrap_or_default();
                    IntegrationError::new(
                        ErrorKind::Network,
                        PROVIDER,
                        format!("{method}: the connection to slack broke while reading the answer: {text}"),
                    )
                }
                None => IntegrationError::internal(
                    PROVIDER,
                    format!("{method}: could not build the slack request: {e}"),
                ),
            }
        }
        SlackClientError::SocketModeProtocolError(e) => {
            IntegrationError::internal(PROVIDER, format!("{method}: socket mode error: {}", e.message))
        }
    }
}

fn describe_chain(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str, body: &str, kind: ErrorKind, retryable: bool) {
        let err = from_api_error("chat.postMessage", code, Some(body), None);
        assert_eq!(err.kind(), &kind, "{code}");
        assert_eq!(err.retryable(), retryable, "{code}");
        assert_eq!(err.details().and_then(|d| d["error"].as_str()), Some(code));
    }

    #[test]
    fn a_body_cut_off_is_a_network_error_not_an_internal_one() {
        use slack_morphism::errors::SlackClientSystemError;
        let system = |cause: std::io::Error| {
            SlackClientError::SystemError(SlackClientSystemError::new().with_cause(Box::new(cause)))
        };
        let cut = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete body");
        let err = from_client_error("users.info", system(cut));
        assert_eq!(err.kind(), &ErrorKind::Network);
        assert_eq!(err.effect(), Effect::Unknown);
        let garbled =
            std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8");
        let err = from_client_error("users.info", system(garbled));
        assert_eq!(err.kind(), &ErrorKind::Upstream { status: Some(200) });
        let other =
            SlackClientError::SystemError(SlackClientSystemError::new().with_message("bad uri".into()));
        assert_eq!(from_client_error("users.info", other).kind(), &ErrorKind::Internal);
    }

    #[test]
    fn only_ok_answers_are_successes() {
        let answer = json!({"ok": true, "user": {"id": "U1"}});
        assert_eq!(web_api_answer("users.info", answer.clone()).expect("ok"), answer);
        // what slack-morphism returns for a 200 that is not JSON, and other stray objects
        for stray in [json!({}), json!({"ok": "true"}), json!({"user": {"id": "U1"}}), json!([])] {
            let err = web_api_answer("users.info", stray.clone()).expect_err("not a web api answer");
            assert_eq!(err.kind(), &ErrorKind::Upstream { status: Some(200) }, "{stray}");
            assert!(!err.retryable());
            assert_eq!(err.effect(), Effect::Unknown);
        }
    }

    #[test]
    fn classifies_slack_error_codes() {
        check("invalid_auth", r#"{"ok":false,"error":"invalid_auth"}"#, ErrorKind::Authentication, false);
        check("not_authed", "{}", ErrorKind::Authentication, false);
        check("account_inactive", "{}", ErrorKind::Authentication, false);
        check("missing_scope", "{}", ErrorKind::Permission, false);
        check("channel_not_found", "{}", ErrorKind::NotFound, false);
        check("user_not_found", "{}", ErrorKind::NotFound, false);
        check("users_not_found", "{}", ErrorKind::NotFound, false);
        check("ratelimited", "{}", ErrorKind::RateLimited { retry_after: None }, true);
        check("msg_too_long", "{}", ErrorKind::InvalidInput, false);
        check("invalid_blocks", "{}", ErrorKind::InvalidInput, false);
        check("name_taken", "{}", ErrorKind::Conflict, false);
        check("fatal_error", "{}", ErrorKind::Upstream { status: None }, true);
        check("something_new", "{}", ErrorKind::Upstream { status: Some(200) }, false);
    }

    #[test]
    fn missing_scope_names_the_needed_scope() {
        let body = r#"{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"users:read"}"#;
        let err = from_api_error("chat.postMessage", "missing_scope", Some(body), None);
        assert_eq!(err.kind(), &ErrorKind::Permission);
        assert!(err.message().contains("'chat:write'"), "{}", err.message());
        assert_eq!(err.details().map(|d| d["needed"].clone()), Some(json!("chat:write")));
    }

    #[test]
    fn rate_limit_keeps_the_wait() {
        let err = from_api_error("x", "ratelimited", None, Some(Duration::from_secs(3)));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(err.effect(), Effect::None);
    }
}
