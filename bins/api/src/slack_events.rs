//! `POST /api/integrations/slack/webhook`: Slack's Events API, interactivity and slash commands.
//!
//! Every request is verified with the connection's signing secret (`v0=` HMAC over the raw body,
//! five-minute window) before anything else happens. A verified request is acknowledged at once
//! (Slack wants an answer within three seconds); its event is recorded and queued for publication
//! on `events.exchange` (`integrations.slack.{type}`) in one store transaction, so it survives a
//! broker outage. Slack's retries and repeated event ids are recognised by a dedup key and
//! recorded once.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use integration_core::IntegrationError;
use integration_http::{ApiError, AppState};
use integration_store::{Begin, NewOutboxMessage, OutcomeState, Store};
use serde_json::json;

/// The exchange inbound events are published to.
pub(crate) const EVENTS_EXCHANGE: &str = "events.exchange";

#[derive(Clone)]
struct SlackEvents {
    app: AppState,
    store: Store,
}

/// The route, with its own state.
pub(crate) fn routes(app: AppState, store: Store) -> axum::Router<AppState> {
    let state = SlackEvents { app, store };
    axum::Router::new().route("/api/integrations/slack/webhook", post(receive).with_state(state))
}

async fn receive(
    State(state): State<SlackEvents>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let connection = state.app.executor.connections().resolve("slack").await.map_err(ApiError::from)?;
    let verifier =
        integration_slack::SignatureVerifier::from_connection(&connection).map_err(ApiError::from)?;
    let inbound = match integration_slack::receive(&verifier, &headers, &body) {
        Ok(inbound) => inbound,
        Err(error) => {
            metrics::counter!("inbound_rejected_total", "endpoint" => "slack", "reason" => error.kind().as_str())
                .increment(1);
            tracing::warn!(
                endpoint = "slack",
                reason = error.kind().as_str(),
                "inbound slack request refused"
            );
            return Err(ApiError::from(error));
        }
    };
    if let Some(challenge) = inbound.ack_body() {
        return Ok(Json(challenge).into_response());
    }
    let kind = inbound.kind().to_owned();
    let event = inbound.event_body();
    let key = match inbound.dedup_key() {
        Some(key) => format!("slack:{key}"),
        None => format!("slack:body:{}", body_digest(&body)),
    };
    let records = state.store.idempotency();
    match records.begin(&key, Duration::from_secs(3600)).await.map_err(IntegrationError::from)? {
        Begin::New => {
            let payload = serde_json::to_vec(&event)
                .map_err(|e| ApiError::from(IntegrationError::internal("slack", e.to_string())))?;
            let message = NewOutboxMessage {
                exchange: EVENTS_EXCHANGE.to_owned(),
                routing_key: format!("integrations.slack.{}", routing_word(&kind)),
                payload,
            };
            records
                .finish(&key, OutcomeState::Completed, &event, Some(&message))
                .await
                .map_err(IntegrationError::from)?;
            metrics::counter!("inbound_accepted_total", "endpoint" => "slack", "kind" => kind.clone())
                .increment(1);
            tracing::info!(endpoint = "slack", kind = %kind, retry = inbound.is_retry(), "slack event accepted");
        }
        Begin::InProgress { .. } | Begin::Done(_) => {
            metrics::counter!("inbound_duplicates_total", "endpoint" => "slack").increment(1);
            tracing::debug!(endpoint = "slack", kind = %kind, "repeated slack delivery ignored");
        }
    }
    Ok((StatusCode::OK, Json(json!({"ok": true}))).into_response())
}

/// A word safe inside a routing key.
fn routing_word(kind: &str) -> String {
    kind.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// A digest of a body without a dedup key of its own (the same on every replica).
fn body_digest(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body).iter().take(16).map(|b| format!("{b:02x}")).collect()
}
