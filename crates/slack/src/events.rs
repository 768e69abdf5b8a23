//! Inbound Slack requests: signature verification and parsing, for the HTTP front door that hosts
//! `POST /api/integrations/slack/webhook` (this crate has no HTTP server of its own).
//!
//! ```
//! use integration_slack::events::{SignatureVerifier, receive};
//! use integration_core::reexports::http::HeaderMap;
//! let verifier = SignatureVerifier::new("8f742231b10e8888abcd99yyyzzz85a5");
//! let body = br#"{"type":"url_verification","challenge":"abc","token":"t"}"#;
//! let now = std::time::SystemTime::now();
//! let ts = now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
//! let mut headers = HeaderMap::new();
//! headers.insert("x-slack-request-timestamp", ts.to_string().parse().expect("header"));
//! headers.insert("x-slack-signature", verifier.sign(ts, body).parse().expect("header"));
//! headers.insert("content-type", "application/json".parse().expect("header"));
//! let inbound = receive(&verifier, &headers, body).expect("verified");
//! assert_eq!(inbound.ack_body(), Some(serde_json::json!({"challenge": "abc"})));
//! ```
//!
//! The front door's job per request: `receive` (401 on error, and nothing else happens); answer
//! `ack_body()` (or an empty 200) at once; if `dedup_key()` was seen before, stop; otherwise
//! publish `integrations.slack.{kind()}` with `payload()`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use integration_core::reexports::http::HeaderMap;
use integration_core::{Connection, ErrorKind, IntegrationError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::PROVIDER;

/// `X-Slack-Signature`: `v0=` and the hex HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// `X-Slack-Request-Timestamp`: Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// `X-Slack-Retry-Num`: set on Slack's redeliveries of an event (1, 2, 3).
pub const RETRY_NUM_HEADER: &str = "x-slack-retry-num";
/// `X-Slack-Retry-Reason`: why Slack redelivers (`http_timeout`, `http_error`, ...).
pub const RETRY_REASON_HEADER: &str = "x-slack-retry-reason";
/// The largest clock difference accepted (Slack's recommendation: five minutes).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a request was refused. Every variant means "answer 401 and do nothing else".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `X-Slack-Signature` header.
    #[error("missing x-slack-signature header")]
    MissingSignature,
    /// No `X-Slack-Request-Timestamp` header.
    #[error("missing x-slack-request-timestamp header")]
    MissingTimestamp,
    /// The timestamp is not Unix seconds.
    #[error("x-slack-request-timestamp is not a unix timestamp")]
    InvalidTimestamp,
    /// The timestamp is too far from now (a replay, or a badly set clock).
    #[error("request timestamp is {skew_secs} s away from now (more than {tolerance_secs} s)")]
    Stale {
        /// Seconds between the timestamp and now.
        skew_secs: u64,
        /// The accepted difference.
        tolerance_secs: u64,
    },
    /// The signature is not `v0=` followed by 64 hex digits.
    #[error("signature is not of the form v0=<hex sha256>")]
    MalformedSignature,
    /// The signature does not match the body.
    #[error("signature does not match")]
    Mismatch,
}

impl From<VerifyError> for IntegrationError {
    fn from(e: VerifyError) -> Self {
        IntegrationError::new(ErrorKind::Authentication, PROVIDER, format!("slack request refused: {e}"))
    }
}

/// Verifies Slack's `v0` request signatures: `v0=` + hex(HMAC-SHA256(signing secret,
/// `v0:{timestamp}:{raw body}`)), compared in constant time, with the timestamp no more than
/// five minutes from now.
#[derive(Clone)]
pub struct SignatureVerifier {
    secret: SecretString,
    tolerance: Duration,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier").field("tolerance", &self.tolerance).finish_non_exhaustive()
    }
}

impl SignatureVerifier {
    /// A verifier for the app's signing secret.
    pub fn new(signing_secret: impl Into<String>) -> Self {
        Self { secret: SecretString::from(signing_secret.into()), tolerance: DEFAULT_TOLERANCE }
    }

    /// The verifier of a connection's `signing_secret` (secret, or config as a fallback).
    pub fn from_connection(connection: &Connection) -> Result<Self, IntegrationError> {
        let secret = connection
            .secret("signing_secret")
            .map(|s| s.expose_secret().to_owned())
            .or_else(|| connection.config_str("signing_secret").map(str::to_owned))
            .ok_or_else(|| {
                IntegrationError::configuration(
                    PROVIDER,
                    format!(
                        "connection '{}' has no signing_secret: inbound slack requests cannot be verified",
                        connection.name
                    ),
                )
            })?;
        Ok(Self::new(secret))
    }

    /// Accept timestamps up to `tolerance` from now (default five minutes).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The signature Slack would send for `body` at `timestamp` (for tests and fakes).
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        format!("v0={}", hex(&self.mac(&timestamp.to_string(), body)))
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.secret.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Verify a request's headers and raw body against the current time.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        self.verify_parts(header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), body, SystemTime::now())
    }

    /// Verify the timestamp and signature header values and raw body at `now`.
    pub fn verify_parts(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let signature =
            signature.map(str::trim).filter(|s| !s.is_empty()).ok_or(VerifyError::MissingSignature)?;
        let timestamp =
            timestamp.map(str::trim).filter(|s| !s.is_empty()).ok_or(VerifyError::MissingTimestamp)?;
        let ts: u64 = timestamp.parse().map_err(|_| VerifyError::InvalidTimestamp)?;
        let now_secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let skew = now_secs.abs_diff(ts);
        if skew > self.tolerance.as_secs() {
            return Err(VerifyError::Stale { skew_secs: skew, tolerance_secs: self.tolerance.as_secs() });
        }
        let given = signature
            .strip_prefix("v0=")
            .and_then(unhex)
            .filter(|b| b.len() == 32)
            .ok_or(VerifyError::MalformedSignature)?;
        let expected = self.mac(timestamp, body);
        if bool::from(expected.ct_eq(&given)) { Ok(()) } else { Err(VerifyError::Mismatch) }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

/// The kind of an interactivity payload (`payload=` form body).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InteractionKind {
    /// A button, menu or other Block Kit element was used (`block_actions`).
    BlockActions,
    /// A modal was submitted (`view_submission`).
    ViewSubmission,
    /// A modal was closed (`view_closed`).
    ViewClosed,
    /// A global shortcut (`shortcut`).
    Shortcut,
    /// A message shortcut (`message_action`).
    MessageAction,
    /// Any other type, named as Slack sent it.
    Other(String),
}

impl InteractionKind {
    fn from_type(t: &str) -> Self {
        match t {
            "block_actions" => Self::BlockActions,
            "view_submission" => Self::ViewSubmission,
            "view_closed" => Self::ViewClosed,
            "shortcut" => Self::Shortcut,
            "message_action" => Self::MessageAction,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Slack's name of the type.
    pub fn as_str(&self) -> &str {
        match self {
            Self::BlockActions => "block_actions",
            Self::ViewSubmission => "view_submission",
            Self::ViewClosed => "view_closed",
            Self::Shortcut => "shortcut",
            Self::MessageAction => "message_action",
            Self::Other(t) => t,
        }
    }
}

/// A parsed inbound request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SlackInbound {
    /// `url_verification`: answer the challenge.
    UrlVerification {
        /// The value to echo.
        challenge: String,
    },
    /// `event_callback`: an Events API event.
    Event {
        /// The unique id of the event (`Ev…`), the same on Slack's retries.
        event_id: String,
        /// The inner event's type (`app_mention`, `message`, `reaction_added`, ...).
        event_type: String,
        /// The team the event belongs to.
        team_id: Option<String>,
        /// The whole callback body.
        payload: Value,
    },
    /// An interactivity payload (`payload=` form body).
    Interaction {
        /// What kind of interaction.
        kind: InteractionKind,
        /// The trigger id (opens modals), unique per interaction when present.
        trigger_id: Option<String>,
        /// The user who interacted.
        user_id: Option<String>,
        /// The decoded payload.
        payload: Value,
    },
    /// A slash command (form body with `command`).
    SlashCommand {
        /// The command, with its slash (`/deploy`).
        command: String,
        /// The text after the command.
        text: String,
        /// Who ran it.
        user_id: Option<String>,
        /// Where it ran.
        channel_id: Option<String>,
        /// The trigger id, unique per invocation.
        trigger_id: Option<String>,
        /// Every form field (including `response_url`).
        payload: Value,
    },
    /// Another Events API envelope (`app_rate_limited`, ...).
    Other {
        /// The envelope's `type`.
        kind: String,
        /// The whole body.
        payload: Value,
    },
}

impl SlackInbound {
    /// Parse a raw body by its content type: JSON (`url_verification`, `event_callback`) or a
    /// form (`payload=<json>` for interactivity, else a slash command). Verify first.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, IntegrationError> {
        let is_form = content_type
            .map(|c| c.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
            .unwrap_or_else(|| !body.trim_ascii_start().starts_with(b"{"));
        if is_form { Self::parse_form(body) } else { Self::parse_json(body) }
    }

    fn parse_json(body: &[u8]) -> Result<Self, IntegrationError> {
        let payload: Value = serde_json::from_slice(body).map_err(|e| {
            IntegrationError::invalid_input(PROVIDER, format!("slack event body is not JSON: {e}"))
        })?;
        let kind = str_at(&payload, "/type").unwrap_or_default();
        match kind.as_str() {
            "url_verification" => {
                let challenge = str_at(&payload, "/challenge").ok_or_else(|| {
                    IntegrationError::invalid_input(PROVIDER, "url_verification without a challenge")
                })?;
                Ok(Self::UrlVerification { challenge })
            }
            "event_callback" => {
                let event_id = str_at(&payload, "/event_id").ok_or_else(|| {
                    IntegrationError::invalid_input(PROVIDER, "event_callback without an event_id")
                })?;
                let event_type = str_at(&payload, "/event/type").ok_or_else(|| {
                    IntegrationError::invalid_input(PROVIDER, "event_callback without an event type")
                })?;
                let team_id = str_at(&payload, "/team_id");
                Ok(Self::Event { event_id, event_type, team_id, payload })
            }
            // Interactivity payloads are form-encoded, but accept them as JSON too.
            t if payload.get("trigger_id").is_some()
                || payload.get("actions").is_some()
                || t == "view_closed" =>
            {
                Ok(Self::interaction(payload))
            }
            "" => Err(IntegrationError::invalid_input(PROVIDER, "slack body has no type")),
            other => Ok(Self::Other { kind: other.to_owned(), payload }),
        }
    }

    fn parse_form(body: &[u8]) -> Result<Self, IntegrationError> {
        let fields: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
        if let Some(raw) = fields.get("payload") {
            let payload: Value = serde_json::from_str(raw).map_err(|e| {
                IntegrationError::invalid_input(
                    PROVIDER,
                    format!("slack interactivity payload is not JSON: {e}"),
                )
            })?;
            if payload.get("type").and_then(Value::as_str).is_none() {
                return Err(IntegrationError::invalid_input(
                    PROVIDER,
                    "slack interactivity payload has no type",
                ));
            }
            return Ok(Self::interaction(payload));
        }
        let Some(command) = fields.get("command").filter(|c| !c.is_empty()).cloned() else {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                "form body is neither an interactivity payload nor a slash command",
            ));
        };
        let get = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
        let payload = Value::Object(
            fields.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<_, _>>(),
        );
        Ok(Self::SlashCommand {
            text: fields.get("text").cloned().unwrap_or_default(),
            user_id: get("user_id"),
            channel_id: get("channel_id"),
            trigger_id: get("trigger_id"),
            command,
            payload,
        })
    }

    fn interaction(payload: Value) -> Self {
        let kind = InteractionKind::from_type(&str_at(&payload, "/type").unwrap_or_default());
        Self::Interaction {
            kind,
            trigger_id: str_at(&payload, "/trigger_id"),
            user_id: str_at(&payload, "/user/id"),
            payload,
        }
    }

    /// The type used in event names (`integrations.slack.{kind}`): the inner event type for
    /// `event_callback` (`app_mention`), the interaction type (`block_actions`),
    /// `slash_command`, or `url_verification`.
    pub fn kind(&self) -> &str {
        match self {
            Self::UrlVerification { .. } => "url_verification",
            Self::Event { event_type, .. } => event_type,
            Self::Interaction { kind, .. } => kind.as_str(),
            Self::SlashCommand { .. } => "slash_command",
            Self::Other { kind, .. } => kind,
        }
    }

    /// The payload to publish (`None` for `url_verification`, which is answered, not published).
    pub fn payload(&self) -> Option<&Value> {
        match self {
            Self::UrlVerification { .. } => None,
            Self::Event { payload, .. }
            | Self::Interaction { payload, .. }
            | Self::SlashCommand { payload, .. }
            | Self::Other { payload, .. } => Some(payload),
        }
    }

    /// A key identifying this delivery across Slack's retries: `event:{event_id}`,
    /// `interaction:{type}:{trigger_id or action_ts/view id}`, `command:{trigger_id}`; `None` when
    /// the request carries nothing unique (nothing to deduplicate).
    pub fn dedup_key(&self) -> Option<String> {
        match self {
            Self::UrlVerification { .. } => None,
            Self::Event { event_id, .. } => Some(format!("event:{event_id}")),
            Self::Interaction { kind, trigger_id, payload, .. } => {
                let unique =
                    trigger_id.clone().or_else(|| str_at(payload, "/actions/0/action_ts")).or_else(|| {
                        str_at(payload, "/view/id")
                            .map(|v| format!("{v}:{}", str_at(payload, "/view/hash").unwrap_or_default()))
                    })?;
                Some(format!("interaction:{}:{unique}", kind.as_str()))
            }
            Self::SlashCommand { trigger_id, .. } => trigger_id.as_ref().map(|t| format!("command:{t}")),
            Self::Other { payload, kind } => str_at(payload, "/event_id").map(|id| format!("{kind}:{id}")),
        }
    }
}

fn str_at(value: &Value, pointer: &str) -> Option<String> {
    integration_core::json_at(value, pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A verified, parsed inbound request with Slack's retry headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The request.
    pub request: SlackInbound,
    /// `X-Slack-Retry-Num` (absent on the first delivery).
    pub retry_num: Option<u32>,
    /// `X-Slack-Retry-Reason`.
    pub retry_reason: Option<String>,
}

impl Inbound {
    /// Whether Slack says this is a redelivery.
    pub fn is_retry(&self) -> bool {
        self.retry_num.is_some_and(|n| n > 0)
    }

    /// See [`SlackInbound::kind`].
    pub fn kind(&self) -> &str {
        self.request.kind()
    }

    /// See [`SlackInbound::dedup_key`].
    pub fn dedup_key(&self) -> Option<String> {
        self.request.dedup_key()
    }

    /// See [`SlackInbound::payload`].
    pub fn payload(&self) -> Option<&Value> {
        self.request.payload()
    }

    /// The JSON body to answer with at once (`{"challenge": ..}` for `url_verification`);
    /// `None` means an empty `200 OK`.
    pub fn ack_body(&self) -> Option<Value> {
        match &self.request {
            SlackInbound::UrlVerification { challenge } => Some(json!({ "challenge": challenge })),
            _ => None,
        }
    }

    /// The event the front door publishes: `{provider, kind, dedup_key, retry_num, payload}`.
    pub fn event_body(&self) -> Value {
        json!({
            "provider": PROVIDER,
            "kind": self.kind(),
            "dedup_key": self.dedup_key(),
            "retry_num": self.retry_num,
            "payload": self.payload(),
        })
    }
}

/// Verify and parse one inbound request (headers and the raw, unparsed body). Any error means
/// "answer 401 (authentication) or 400 (invalid input), and do nothing else".
pub fn receive(
    verifier: &SignatureVerifier,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Inbound, IntegrationError> {
    verifier.verify(headers, body)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let request = SlackInbound::parse(header("content-type"), body)?;
    Ok(Inbound {
        request,
        retry_num: header(RETRY_NUM_HEADER).and_then(|v| v.parse().ok()),
        retry_reason: header(RETRY_REASON_HEADER).filter(|v| !v.is_empty()).map(str::to_owned),
    })
}

/// Remembers delivery keys for a while, for services without a shared store: `first_seen`
/// answers `true` once per key within `ttl`. (The service proper records keys in its store.)
#[derive(Debug)]
pub struct DedupWindow {
    ttl: Duration,
    seen: Mutex<HashMap<String, Instant>>,
}

impl DedupWindow {
    /// Keys are remembered for `ttl` (Slack retries within about an hour).
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, seen: Mutex::default() }
    }

    /// `true` the first time `key` is offered within the window.
    pub fn first_seen(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, at| now.duration_since(*at) < self.ttl);
        }
        match seen.get(key) {
            Some(at) if now.duration_since(*at) < self.ttl => false,
            _ => {
                seen.insert(key.to_owned(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn dedup_window() {
        let w = DedupWindow::new(Duration::from_secs(60));
        assert!(w.first_seen("event:Ev1"));
        assert!(!w.first_seen("event:Ev1"));
        assert!(w.first_seen("event:Ev2"));
    }

    /// Sign/verify round trips: what `sign` produces verifies within the window, and a one-bit
    /// change of the body, the signature or the timestamp is refused.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
            let mut out = bytes.to_vec();
            if !out.is_empty() {
                let i = (bit / 8) % out.len();
                out[i] ^= 1 << (bit % 8);
            }
            out
        }

        const NOW: u64 = 1_700_000_000;

        fn at(secs: u64) -> SystemTime {
            UNIX_EPOCH + Duration::from_secs(secs)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn sign_verify_round_trip(
                secret in "\\PC{1,40}", body in prop::collection::vec(any::<u8>(), 0..256),
                bit in any::<usize>(), skew in -300i64..=300,
            ) {
                let verifier = SignatureVerifier::new(secret.clone());
                let ts = NOW;
                let now = at(ts.saturating_add_signed(skew));
                let signature = verifier.sign(ts, &body);
                let ts_text = ts.to_string();
                prop_assert_eq!(verifier.verify_parts(Some(&ts_text), Some(&signature), &body, now), Ok(()));

                let mac = unhex(signature.strip_prefix("v0=").expect("v0= prefix")).expect("hex");
                let flipped = format!("v0={}", hex(&flip(&mac, bit)));
                prop_assert_eq!(
                    verifier.verify_parts(Some(&ts_text), Some(&flipped), &body, now),
                    Err(VerifyError::Mismatch)
                );
                if !body.is_empty() {
                    prop_assert_eq!(
                        verifier.verify_parts(Some(&ts_text), Some(&signature), &flip(&body, bit), now),
                        Err(VerifyError::Mismatch)
                    );
                }
                // another timestamp inside the window: the signature covers the timestamp
                let moved = (ts - 1).to_string();
                prop_assert!(verifier.verify_parts(Some(&moved), Some(&signature), &body, at(ts)).is_err());
                // another secret
                let other = SignatureVerifier::new(format!("{secret}x"));
                prop_assert_eq!(
                    other.verify_parts(Some(&ts_text), Some(&signature), &body, now),
                    Err(VerifyError::Mismatch)
                );
                // outside the window the right signature is refused too
                let stale = verifier.verify_parts(Some(&ts_text), Some(&signature), &body, at(ts + 301));
                prop_assert!(matches!(stale, Err(VerifyError::Stale { .. })), "{:?}", stale);
            }
        }
    }
}
