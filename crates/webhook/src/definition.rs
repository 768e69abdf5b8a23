//! The definition of an inbound webhook endpoint, its validation, and body parsing.

use std::collections::BTreeMap;
use std::time::Duration;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secret::Secret;
use crate::transform::{Limits, Transform, TransformError};
use crate::verify::Verification;

/// Default largest accepted body (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Upper bound of `max_body_bytes` (the router's global limit should be at least this).
pub const MAX_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Content types accepted when a definition names none.
pub const DEFAULT_CONTENT_TYPES: [&str; 3] =
    ["application/json", "application/x-www-form-urlencoded", "text/plain"];
/// Headers that identify a delivery for de-duplication, checked in order after the configured one.
pub const DEDUP_HEADERS: [&str; 2] = ["x-github-delivery", "webhook-id"];

fn default_true() -> bool {
    true
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_timeout_ms() -> u64 {
    2_000
}

fn default_max_output() -> usize {
    256 * 1024
}

/// An inbound webhook endpoint, as written by its owner (`PUT /api/integrations/webhook/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDefinition {
    /// How deliveries are authenticated. Required: `{"scheme": "none"}` must be explicit.
    pub verification: Verification,
    /// A jq filter applied to the parsed body; the body as is when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Publish the result as an event (`integrations.webhook.{name}` on `events.exchange`).
    #[serde(default = "default_true")]
    pub publish: bool,
    /// Largest accepted body in bytes (1 MiB by default).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Accepted content types (`application/json`, `application/x-www-form-urlencoded`,
    /// `text/plain` by default; `+json` types count as JSON).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_types: Vec<String>,
    /// A header identifying a delivery, for de-duplication (besides `X-GitHub-Delivery` and
    /// `webhook-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_header: Option<String>,
    /// Time bound of the transformation per delivery, in milliseconds (2 s by default).
    #[serde(default = "default_timeout_ms")]
    pub transform_timeout_ms: u64,
    /// Largest transformation output in bytes (256 KiB by default).
    #[serde(default = "default_max_output")]
    pub max_output_bytes: usize,
    /// A free description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A definition that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DefinitionError {
    /// What is wrong.
    pub message: String,
    /// Where, as a JSON pointer into the definition.
    pub pointer: String,
}

impl DefinitionError {
    pub(crate) fn new(pointer: &str, message: impl Into<String>) -> Self {
        Self { message: message.into(), pointer: pointer.to_owned() }
    }
}

/// Check an endpoint or tool name: 1-64 ASCII letters, digits, `-` or `_`, starting with a letter or
/// digit.
pub fn validate_name(name: &str) -> Result<(), DefinitionError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(DefinitionError::new(
            "",
            "a name must be 1-64 ASCII letters, digits, '-' or '_', starting with a letter or digit",
        ))
    }
}

impl WebhookDefinition {
    /// Parse and validate a definition body, compiling its transformation.
    pub fn parse(body: &Value) -> Result<Self, DefinitionError> {
        let def: WebhookDefinition = serde_json::from_value(body.clone())
            .map_err(|e| DefinitionError::new("", format!("invalid definition: {e}")))?;
        Ok(def)
    }

    /// Compile into an endpoint that can receive deliveries. Refuses a scheme that needs a secret
    /// without one, bad header names, limits out of range, and filters that do not compile.
    pub fn compile(&self, name: &str) -> Result<Endpoint, DefinitionError> {
        validate_name(name)?;
        self.verification.validate().map_err(|m| DefinitionError::new("/verification", m))?;
        if !matches!(self.verification, Verification::None)
            && self.verification.secret().is_none_or(|s| s.expose().is_empty())
        {
            return Err(DefinitionError::new(
                "/verification/secret",
                format!("the '{}' scheme needs a secret", self.verification.scheme()),
            ));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_MAX_BODY_BYTES {
            return Err(DefinitionError::new(
                "/max_body_bytes",
                format!("max_body_bytes must be from 1 to {MAX_MAX_BODY_BYTES}"),
            ));
        }
        if !(1..=30_000).contains(&self.transform_timeout_ms) {
            return Err(DefinitionError::new(
                "/transform_timeout_ms",
                "transform_timeout_ms must be from 1 to 30000",
            ));
        }
        if !(1..=16 * 1024 * 1024).contains(&self.max_output_bytes) {
            return Err(DefinitionError::new(
                "/max_output_bytes",
                "max_output_bytes must be from 1 to 16777216",
            ));
        }
        if let Some(h) = &self.dedup_header
            && http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return Err(DefinitionError::new("/dedup_header", format!("'{h}' is not a valid header name")));
        }
        for (i, ct) in self.content_types.iter().enumerate() {
            if !ct.contains('/') {
                return Err(DefinitionError::new(
                    &format!("/content_types/{i}"),
                    format!("'{ct}' is not a media type"),
                ));
            }
        }
        let transform = match &self.transform {
            Some(code) if !code.trim().is_empty() => Some(
                Transform::compile(code).map_err(|e| DefinitionError::new("/transform", e.to_string()))?,
            ),
            _ => None,
        };
        Ok(Endpoint { name: name.to_owned(), definition: self.clone(), transform })
    }

    /// The secrets of the definition by field (`secret`), for sealed storage.
    pub fn secrets(&self) -> BTreeMap<String, Secret> {
        self.verification
            .secret()
            .map(|s| BTreeMap::from([("secret".to_owned(), s.clone())]))
            .unwrap_or_default()
    }

    /// Put sealed secrets back into a definition loaded without them.
    pub fn with_secrets(mut self, secrets: &BTreeMap<String, Secret>) -> Self {
        if let (Some(slot), Some(secret)) = (self.verification.secret_slot(), secrets.get("secret")) {
            *slot = Some(secret.clone());
        }
        self
    }

    /// Keep the secret of `previous` when this definition gives none for the same scheme (so a
    /// transform can be edited without sending the secret again).
    pub fn inherit_secret(mut self, previous: &WebhookDefinition) -> Self {
        let same_scheme = previous.verification.scheme() == self.verification.scheme();
        let old = previous.verification.secret().cloned();
        if let Some(slot) = self.verification.secret_slot()
            && slot.is_none()
            && same_scheme
        {
            *slot = old;
        }
        self
    }

    /// The definition as shown to callers: secrets are never serialised; `secret_set` says whether
    /// one is configured.
    pub fn public_view(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(v) = value.get_mut("verification").and_then(Value::as_object_mut)
            && !matches!(self.verification, Verification::None)
        {
            v.insert("secret_set".into(), Value::Bool(self.verification.secret().is_some()));
        }
        value
    }
}

/// A compiled endpoint: the definition plus its compiled filter.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The endpoint name.
    pub name: String,
    /// The definition (with secrets).
    pub definition: WebhookDefinition,
    transform: Option<Transform>,
}

/// Why a body was refused before transformation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// More bytes than the endpoint accepts.
    #[error("body of {size} bytes exceeds the endpoint's limit of {limit} bytes")]
    TooLarge {
        /// The body size (or a lower bound).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A content type the endpoint does not accept.
    #[error("content type '{0}' is not accepted by this endpoint")]
    UnsupportedType(String),
    /// The body does not parse as its content type says.
    #[error("body is not valid {kind}: {reason}")]
    Unparseable {
        /// JSON, form or text.
        kind: &'static str,
        /// Why.
        reason: String,
    },
}

/// The media type of a `Content-Type` header: lowercase, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

impl Endpoint {
    /// The transformation bounds of this endpoint.
    pub fn limits(&self) -> Limits {
        Limits {
            time: Duration::from_millis(self.definition.transform_timeout_ms),
            max_output_bytes: self.definition.max_output_bytes,
        }
    }

    /// The compiled filter, when there is one.
    pub fn transform(&self) -> Option<&Transform> {
        self.transform.as_ref()
    }

    /// Check the size and content type, then parse the body: JSON as is, forms as an object of
    /// strings (repeated keys as arrays), text as a string.
    pub fn parse_body(&self, media: Option<&str>, body: &[u8]) -> Result<Value, BodyError> {
        if body.len() > self.definition.max_body_bytes {
            return Err(BodyError::TooLarge { size: body.len(), limit: self.definition.max_body_bytes });
        }
        let media = media.unwrap_or("application/json");
        let accepted = if self.definition.content_types.is_empty() {
            DEFAULT_CONTENT_TYPES.contains(&media) || is_json(media)
        } else {
            self.definition.content_types.iter().any(|t| t.eq_ignore_ascii_case(media))
        };
        if !accepted {
            return Err(BodyError::UnsupportedType(media.chars().take(100).collect()));
        }
        if is_json(media) {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(body)
                .map_err(|e| BodyError::Unparseable { kind: "JSON", reason: e.to_string() });
        }
        if media == "application/x-www-form-urlencoded" {
            std::str::from_utf8(body)
                .map_err(|_| BodyError::Unparseable { kind: "form", reason: "not UTF-8".into() })?;
            let mut map = Map::new();
            for (k, v) in url::form_urlencoded::parse(body) {
                let v = Value::String(v.into_owned());
                match map.get_mut(k.as_ref()) {
                    Some(Value::Array(items)) => items.push(v),
                    Some(existing) => {
                        let first = existing.take();
                        *existing = Value::Array(vec![first, v]);
                    }
                    None => {
                        map.insert(k.into_owned(), v);
                    }
                }
            }
            return Ok(Value::Object(map));
        }
        match std::str::from_utf8(body) {
            Ok(text) => Ok(Value::String(text.to_owned())),
            Err(_) => Err(BodyError::Unparseable { kind: "text", reason: "not UTF-8".into() }),
        }
    }

    /// Run the transformation (the parsed body as is when there is none).
    pub async fn apply(&self, parsed: &Value) -> Result<Value, TransformError> {
        match &self.transform {
            Some(t) => t.run(parsed, self.limits()).await,
            None => Ok(parsed.clone()),
        }
    }

    /// The de-duplication key of a verified delivery: the configured `dedup_header`, then the
    /// scheme's replay key (what its signature covers: see [`Verification::replay_key`]), then
    /// `X-GitHub-Delivery`, then `webhook-id`. A signed delivery sent again is therefore a duplicate
    /// even when an unsigned id header was changed or left out.
    pub fn dedup_key(&self, headers: &HeaderMap) -> Option<String> {
        let header = |h: &str| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().chars().take(200).collect::<String>())
                .filter(|v| !v.is_empty())
        };
        self.definition
            .dedup_header
            .as_deref()
            .and_then(header)
            .or_else(|| self.definition.verification.replay_key(headers))
            .or_else(|| DEDUP_HEADERS.into_iter().find_map(header))
    }
}

/// Header names whose values are always redacted in delivery logs.
const SECRET_HEADER_WORDS: [&str; 7] =
    ["authorization", "cookie", "token", "secret", "password", "api-key", "apikey"];

/// The headers of a delivery as a JSON object, with secret values replaced by `[REDACTED]`:
/// authorization, cookies, anything named like a token, secret, password or API key, and the
/// endpoint's token header.
pub fn redact_headers(headers: &HeaderMap, extra_secret: &[String]) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let lower = name.as_str().to_ascii_lowercase();
        let secret = SECRET_HEADER_WORDS.iter().any(|w| lower.contains(w)) || extra_secret.contains(&lower);
        let shown = if secret {
            "[REDACTED]".to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).chars().take(1000).collect()
        };
        match map.get_mut(&lower) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&shown);
            }
            _ => {
                map.insert(lower, Value::String(shown));
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoint(def: Value) -> Endpoint {
        WebhookDefinition::parse(&def).expect("parses").compile("ep").expect("compiles")
    }

    #[test]
    fn definitions_validate() {
        let bad = |def: Value, pointer: &str| {
            let err = WebhookDefinition::parse(&def).and_then(|d| d.compile("ep").map(|_| ()));
            match err {
                Err(e) => assert_eq!(e.pointer, pointer, "{def}: {e}"),
                Ok(()) => panic!("{def} should be refused"),
            }
        };
        bad(json!({}), "");
        bad(json!({"verification": {"scheme": "none"}, "unknown": 1}), "");
        bad(json!({"verification": {"scheme": "github"}}), "/verification/secret");
        bad(
            json!({"verification": {"scheme": "hmac", "secret": "s", "header": "bad header"}}),
            "/verification",
        );
        bad(json!({"verification": {"scheme": "none"}, "max_body_bytes": 0}), "/max_body_bytes");
        bad(json!({"verification": {"scheme": "none"}, "transform": ".a |"}), "/transform");
        bad(json!({"verification": {"scheme": "standard_webhooks", "secret": "whsec_!!"}}), "/verification");
        let e = endpoint(json!({"verification": {"scheme": "github", "secret": "s"}, "transform": ".a"}));
        let view = e.definition.public_view();
        assert_eq!(view["verification"], json!({"scheme": "github", "secret_set": true}));
        assert!(!view.to_string().contains("\"s\""));
    }

    #[test]
    fn secrets_round_trip_and_inherit() {
        let def = WebhookDefinition::parse(&json!({"verification": {"scheme": "slack", "secret": "abc"}}))
            .expect("ok");
        let stored: WebhookDefinition =
            serde_json::from_value(serde_json::to_value(&def).expect("json")).expect("reparse");
        assert!(stored.verification.secret().is_none());
        let restored = stored.clone().with_secrets(&def.secrets());
        assert_eq!(restored, def);
        let edited =
            WebhookDefinition::parse(&json!({"verification": {"scheme": "slack"}, "transform": "."}))
                .expect("ok")
                .inherit_secret(&def);
        assert_eq!(edited.verification.secret().map(Secret::expose), Some("abc"));
    }

    #[test]
    fn parses_bodies_by_content_type() {
        let e = endpoint(json!({"verification": {"scheme": "none"}, "max_body_bytes": 64}));
        assert_eq!(e.parse_body(Some("application/json"), br#"{"a":1}"#), Ok(json!({"a": 1})));
        assert_eq!(e.parse_body(Some("application/vnd.x+json"), b"[1]"), Ok(json!([1])));
        assert_eq!(
            e.parse_body(Some("application/x-www-form-urlencoded"), b"a=1&b=x+y&a=2"),
            Ok(json!({"a": ["1", "2"], "b": "x y"}))
        );
        assert_eq!(e.parse_body(Some("text/plain"), b"hi"), Ok(json!("hi")));
        assert!(matches!(e.parse_body(Some("application/json"), b"{"), Err(BodyError::Unparseable { .. })));
        assert!(matches!(
            e.parse_body(Some("text/plain"), &[0xff, 0xfe]),
            Err(BodyError::Unparseable { .. })
        ));
        assert!(matches!(e.parse_body(Some("application/xml"), b"<a/>"), Err(BodyError::UnsupportedType(_))));
        assert_eq!(
            e.parse_body(Some("text/plain"), &[b'a'; 65]),
            Err(BodyError::TooLarge { size: 65, limit: 64 })
        );
        assert!(e.parse_body(Some("text/plain"), &[b'a'; 64]).is_ok());
        let only_json =
            endpoint(json!({"verification": {"scheme": "none"}, "content_types": ["application/json"]}));
        assert!(matches!(only_json.parse_body(Some("text/plain"), b"x"), Err(BodyError::UnsupportedType(_))));
    }

    #[test]
    fn redacts_secret_headers_and_finds_dedup_keys() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc".parse().expect("v"));
        h.insert("x-my-token", "tok".parse().expect("v"));
        h.insert("x-custom", "shh".parse().expect("v"));
        h.insert("x-github-delivery", "d-1".parse().expect("v"));
        let red = redact_headers(&h, &["x-custom".to_owned()]);
        assert_eq!(red["authorization"], "[REDACTED]");
        assert_eq!(red["x-my-token"], "[REDACTED]");
        assert_eq!(red["x-custom"], "[REDACTED]");
        assert_eq!(red["x-github-delivery"], "d-1");
        let e = endpoint(json!({"verification": {"scheme": "none"}, "dedup_header": "X-Request-Id"}));
        assert_eq!(e.dedup_key(&h), Some("d-1".into()));
        h.insert("x-request-id", "r-9".parse().expect("v"));
        assert_eq!(e.dedup_key(&h), Some("r-9".into()));
        // a signed scheme: the signature names the delivery, whatever X-GitHub-Delivery says
        let gh = endpoint(json!({"verification": {"scheme": "github", "secret": "s"}}));
        h.insert("x-hub-signature-256", format!("sha256={}", "ab".repeat(32)).parse().expect("v"));
        let key = gh.dedup_key(&h);
        assert_eq!(key, Some(format!("sig:{}", "ab".repeat(32))));
        h.insert("x-github-delivery", "d-2".parse().expect("v"));
        assert_eq!(gh.dedup_key(&h), key);
        h.remove("x-github-delivery");
        assert_eq!(gh.dedup_key(&h), key);
    }
}
