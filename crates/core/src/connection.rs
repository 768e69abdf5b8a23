//! Connections: a provider, a name, non-secret configuration and secret credentials.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ErrorKind, IntegrationError};

/// Where a connection's settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionSource {
    /// Saved through the configure endpoint, in the store.
    Store,
    /// Read from the process environment (`JIRA_BASE_URL`, ...).
    Environment,
    /// Built in code (tests, embedding services).
    Code,
}

/// Per-connection overrides of the executor's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionSettings {
    /// Calls admitted per minute for this connection.
    pub rate_limit_per_minute: Option<u32>,
    /// Overall deadline of one call, retries included.
    pub timeout: Option<Duration>,
    /// Retries after the first attempt.
    pub max_retry_attempts: Option<u32>,
}

impl ConnectionSettings {
    /// The settings carried in a flat config object (`rate_limit_per_minute`, `timeout_seconds`,
    /// `max_retry_attempts`); absent or out-of-range values stay unset.
    pub fn from_config(config: &Value) -> Self {
        let num = |k: &str| config.get(k).and_then(Value::as_u64);
        Self {
            rate_limit_per_minute: num("rate_limit_per_minute").and_then(|v| u32::try_from(v).ok()),
            timeout: num("timeout_seconds").filter(|s| *s > 0).map(Duration::from_secs),
            max_retry_attempts: num("max_retry_attempts").and_then(|v| u32::try_from(v).ok()),
        }
    }
}

/// A configured connection to one upstream account.
///
/// `Debug` shows the names of the secrets, never their values.
#[derive(Clone)]
pub struct Connection {
    /// The provider (`jira`, `github`, ...).
    pub provider: String,
    /// The connection name; the provider's default connection has the provider's name.
    pub name: String,
    /// Non-secret configuration (base URL, user name, ...), as the provider's config object.
    pub config: Value,
    /// Secret credentials by field name (`api_token`, `bot_token`, ...).
    pub secrets: BTreeMap<String, SecretString>,
    /// Executor settings for this connection.
    pub settings: ConnectionSettings,
    /// Where it came from.
    pub source: ConnectionSource,
    /// Changes whenever the connection is reconfigured; providers key client caches by it.
    pub revision: u64,
}

impl Connection {
    /// A digest of what a provider builds its client from (config and secrets), so two different
    /// connections that share a name and a revision (built in code, or from two resolvers) never
    /// share a cached client. Hashes the config's structure, not its text (this runs on every call).
    /// Kept in memory only.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        fn value(v: &Value, h: &mut impl std::hash::Hasher) {
            match v {
                Value::Null => h.write_u8(0),
                Value::Bool(b) => {
                    h.write_u8(1);
                    b.hash(h);
                }
                Value::Number(n) => {
                    h.write_u8(2);
                    n.hash(h);
                }
                Value::String(s) => {
                    h.write_u8(3);
                    s.hash(h);
                }
                Value::Array(items) => {
                    h.write_u8(4);
                    h.write_usize(items.len());
                    items.iter().for_each(|item| value(item, h));
                }
                Value::Object(map) => {
                    h.write_u8(5);
                    h.write_usize(map.len());
                    for (k, v) in map {
                        k.hash(h);
                        value(v, h);
                    }
                }
            }
        }
        // foldhash, not SipHash: a digest kept in this process, fed many small writes per call.
        let mut hasher = std::hash::BuildHasher::build_hasher(&foldhash::quality::FixedState::default());
        value(&self.config, &mut hasher);
        for (field, secret) in &self.secrets {
            field.hash(&mut hasher);
            secret.expose_secret().hash(&mut hasher);
        }
        hasher.finish()
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("config", &self.config)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .field("source", &self.source)
            .field("revision", &self.revision)
            .finish()
    }
}

impl Connection {
    /// A connection built in code, with no secrets and default settings.
    pub fn new(provider: impl Into<String>, name: impl Into<String>, config: Value) -> Self {
        Self {
            provider: provider.into(),
            name: name.into(),
            config,
            secrets: BTreeMap::new(),
            settings: ConnectionSettings::default(),
            source: ConnectionSource::Code,
            revision: 0,
        }
    }

    /// Add a secret.
    pub fn with_secret(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(field.into(), SecretString::from(value.into()));
        self
    }

    /// A non-secret string setting from the config object.
    pub fn config_str(&self, field: &str) -> Option<&str> {
        self.config.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// A required non-secret string setting; a `Configuration` error naming the field if absent.
    pub fn require_config(&self, field: &str) -> Result<&str, IntegrationError> {
        self.config_str(field).ok_or_else(|| {
            IntegrationError::configuration(
                self.provider.clone(),
                format!("connection '{}' has no '{field}' set", self.name),
            )
        })
    }

    /// A secret by field name.
    pub fn secret(&self, field: &str) -> Option<&SecretString> {
        self.secrets.get(field).filter(|s| !s.expose_secret().is_empty())
    }
}

/// Check a configured base URL (`base_url`, `api_url`): http or https, no credentials, query or
/// fragment; a trailing slash is dropped. The error names the provider and the field.
/// The error's details point at the field (`{"violations": [{"pointer": "/base_url", ...}]}`).
pub fn parse_base_url(provider: &str, field: &str, raw: &str) -> Result<url::Url, IntegrationError> {
    let invalid = |message: String| invalid_field(provider, field, message);
    let trimmed = raw.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed).map_err(|e| {
        // A URL that does not parse is not echoed: `https://user:pa ss@host` would show a password.
        invalid(format!("{field} is not a URL: {e}"))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Nor is one with credentials in it.
        return Err(invalid(format!(
            "{field} must not carry credentials: set them in the provider's credential fields"
        )));
    }
    // Nor is any part past the host: a query may hold a token (`?token=xoxb-...`).
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid(format!("{field} must be an http or https URL, not '{}:'", url.scheme())));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!("{field} must not have a query or a fragment")));
    }
    Ok(url)
}

/// Check a credential that travels in an HTTP header (a bearer token, an API token): it must hold
/// no control character (most often a line break pasted or read from a file with it), which no
/// header can carry: every call would fail inside the HTTP client. The error names the field,
/// never the value; its details point at the field (`/token`).
pub fn check_header_secret(provider: &str, field: &str, value: &str) -> Result<(), IntegrationError> {
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(invalid_field(
            provider,
            field,
            format!("{field} holds a control character (a line break?), which an HTTP header cannot carry"),
        ));
    }
    Ok(())
}

/// A configuration error about one field of a connection, with a violation pointing at it.
fn invalid_field(provider: &str, field: &str, message: String) -> IntegrationError {
    let violation = serde_json::json!({ "pointer": format!("/{field}"), "message": message });
    IntegrationError::configuration(provider, message)
        .with_details(serde_json::json!({ "violations": [violation] }))
}

/// Finds the connection a tool call runs against.
#[async_trait]
pub trait ConnectionResolver: Send + Sync + 'static {
    /// The connection named `name`. A `NotFound` or `Configuration` error when there is none.
    async fn resolve(&self, name: &str) -> Result<Arc<Connection>, IntegrationError>;
}

/// Connections held in memory: for tests and services that embed the providers.
#[derive(Debug, Default)]
pub struct InMemoryConnections {
    inner: RwLock<BTreeMap<String, Arc<Connection>>>,
}

impl InMemoryConnections {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace a connection (by name); bumps its revision.
    pub fn insert(&self, mut connection: Connection) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let previous = map.get(&connection.name).map(|c| c.revision).unwrap_or(0);
        connection.revision = connection.revision.max(previous + 1);
        map.insert(connection.name.clone(), Arc::new(connection));
    }

    /// Remove a connection; true if it existed.
    pub fn remove(&self, name: &str) -> bool {
        self.inner.write().unwrap_or_else(|e| e.into_inner()).remove(name).is_some()
    }

    /// The names of the connections held.
    pub fn names(&self) -> Vec<String> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }
}

#[async_trait]
impl ConnectionResolver for InMemoryConnections {
    async fn resolve(&self, name: &str) -> Result<Arc<Connection>, IntegrationError> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned().ok_or_else(|| {
            IntegrationError::new(
                ErrorKind::Configuration,
                "core",
                format!("connection '{name}' is not configured"),
            )
        })
    }
}

#[cfg(test)]
mod base_url_tests {
    use super::{check_header_secret, parse_base_url};

    #[test]
    fn accepts_http_urls_and_refuses_the_rest() {
        let ok = parse_base_url("jira", "base_url", " https://x.atlassian.net/jira/ ").expect("valid");
        assert_eq!(ok.as_str(), "https://x.atlassian.net/jira");
        assert!(parse_base_url("p", "api_url", "http://127.0.0.1:9/api/").is_ok());
        for bad in [
            "ftp://x",
            "not a url",
            "https://u:pw@x.io",
            "https://x.io/?a=1",
            "https://x.io/#f",
            "mailto:a@b",
        ] {
            let error = parse_base_url("p", "api_url", bad).expect_err(bad);
            assert!(!error.message().contains("pw@"), "{error}");
            let details = error.details().expect("details").to_string();
            assert!(details.contains(r#""pointer":"/api_url""#), "{details}");
        }
        // A URL that does not parse may still hold a password, a query a token: never echoed.
        for bad in ["https://user:s3cret pw@x.io", "https://x.io/api?token=s3cret", "ftp://x.io/?t=s3cret"] {
            let error = parse_base_url("p", "api_url", bad).expect_err(bad);
            assert!(!error.to_string().contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn header_secrets_refuse_control_characters_without_showing_them() {
        for good in ["ghp_abc123", "xoxb-1-2-abc", "a b", "tab\there", "ünïcode"] {
            assert!(check_header_secret("p", "token", good).is_ok(), "{good}");
        }
        for bad in ["s3cret\n", "s3cret\r\n", "s3\0cret", "s3cret\u{7f}", "\u{1b}[0ms3cret"] {
            let error = check_header_secret("p", "token", bad).expect_err(bad);
            assert_eq!(error.kind(), &crate::ErrorKind::Configuration, "{bad:?}");
            assert!(!error.to_string().contains("s3cret"), "{error}");
            let details = error.details().map(ToString::to_string).unwrap_or_default();
            assert!(details.contains(r#""pointer":"/token""#), "{details}");
            assert!(!details.contains("s3cret"), "{details}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fingerprint_changes_with_config_and_secrets_only() {
        let base = || {
            Connection::new("jira", "jira", json!({"base_url": "http://a", "n": 1, "list": [1, "x"]}))
                .with_secret("api_token", "one")
        };
        assert_eq!(base().fingerprint(), base().fingerprint());
        let mut renamed = base();
        renamed.revision = 7;
        assert_eq!(renamed.fingerprint(), base().fingerprint(), "name and revision are keyed separately");
        let changed = [
            Connection::new("jira", "jira", json!({"base_url": "http://b", "n": 1, "list": [1, "x"]}))
                .with_secret("api_token", "one"),
            Connection::new("jira", "jira", json!({"base_url": "http://a", "n": 2, "list": [1, "x"]}))
                .with_secret("api_token", "one"),
            Connection::new("jira", "jira", json!({"base_url": "http://a", "n": 1, "list": ["1", "x"]}))
                .with_secret("api_token", "one"),
            Connection::new("jira", "jira", json!({"base_url": "http://a", "n": 1, "list": [1, "x"]}))
                .with_secret("api_token", "two"),
            Connection::new("jira", "jira", json!({"base_url": "http://a", "n": 1, "list": [1, "x"]}))
                .with_secret("other", "one"),
            Connection::new("jira", "jira", json!({"base_url": "http://a", "n": 1, "list": [[1], "x"]}))
                .with_secret("api_token", "one"),
        ];
        for (i, other) in changed.iter().enumerate() {
            assert_ne!(other.fingerprint(), base().fingerprint(), "variant {i}");
        }
    }
}
