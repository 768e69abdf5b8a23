//! The configuration of one Slack connection, apart from the client built from it.
//!
//! A connection's config object and secrets are read into a [`SlackConfig`], which
//! [`SlackConfig::build`] turns into a [`SlackClient`]:
//!
//! | field | where | environment | meaning |
//! |---|---|---|---|
//! | `bot_token` | secret | `SLACK_BOT_TOKEN` | the bot token (`xoxb-…`), sent as `Authorization: Bearer` |
//! | `signing_secret` | secret | `SLACK_SIGNING_SECRET` | verifies inbound Events API / interactivity requests |
//! | `api_url` | config | `SLACK_API_URL` | Web API base, default `https://slack.com/api/` |
//! | `pacing` | config | `SLACK_PACING` | pace calls by Slack's tiers and messages per channel, default `true` |

use integration_core::{Connection, ConnectionSource, IntegrationError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::PROVIDER;
use crate::client::{SlackClient, SlackClientOptions};

/// Environment variable with the bot token.
pub const ENV_BOT_TOKEN: &str = "SLACK_BOT_TOKEN";
/// Environment variable with the signing secret.
pub const ENV_SIGNING_SECRET: &str = "SLACK_SIGNING_SECRET";
/// Environment variable with a custom Web API base URL (tests point it at the fake).
pub const ENV_API_URL: &str = "SLACK_API_URL";
/// Environment variable turning the client's own pacing off (`false`) or on (`true`, the default).
pub const ENV_PACING: &str = "SLACK_PACING";
/// The Web API base URL used when none is configured.
pub const DEFAULT_API_URL: &str = "https://slack.com/api/";

/// The config object of a Slack connection, as stored by the service. Unknown keys are rejected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// The bot token (normally kept in the connection's secrets, not here).
    pub bot_token: Option<String>,
    /// The signing secret (normally kept in the connection's secrets, not here).
    pub signing_secret: Option<String>,
    /// The Web API base URL; default `https://slack.com/api/`.
    pub api_url: Option<String>,
    /// Pace calls by Slack's per-method tiers and messages one per second per channel (default
    /// `true`). Off only where something else keeps to Slack's limits (a proxy that paces, a fake).
    pub pacing: Option<bool>,
    /// Calls per minute for this connection (executor setting).
    pub rate_limit_per_minute: Option<u32>,
    /// Deadline of one call in seconds, retries included (executor setting).
    pub timeout_seconds: Option<u64>,
    /// Retries after the first attempt (executor setting).
    pub max_retry_attempts: Option<u32>,
}

/// A complete, validated Slack connection configuration. `Debug` never shows the secrets.
#[derive(Clone)]
pub struct SlackConfig {
    /// The Web API base URL, without a trailing slash (`https://slack.com/api`).
    pub api_url: String,
    /// The bot token.
    pub bot_token: SecretString,
    /// The signing secret, when configured.
    pub signing_secret: Option<SecretString>,
    /// Client behaviour (pacing).
    pub options: SlackClientOptions,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("api_url", &self.api_url)
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "[set]"))
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SlackConfig {
    /// A configuration for `bot_token` against the real Slack.
    pub fn new(bot_token: impl Into<String>) -> Self {
        Self {
            api_url: DEFAULT_API_URL.trim_end_matches('/').to_owned(),
            bot_token: SecretString::from(bot_token.into()),
            signing_secret: None,
            options: SlackClientOptions::default(),
        }
    }

    /// Use another Web API base URL (a fake, a proxy).
    pub fn with_api_url(mut self, api_url: &str) -> Result<Self, IntegrationError> {
        self.api_url = parse_api_url(api_url)?;
        Ok(self)
    }

    /// Set the signing secret.
    pub fn with_signing_secret(mut self, secret: impl Into<String>) -> Self {
        self.signing_secret = Some(SecretString::from(secret.into()));
        self
    }

    /// Set the client options.
    pub fn with_options(mut self, options: SlackClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Read a connection: `bot_token` and `signing_secret` from its secrets (or, failing that, its
    /// config), `api_url` from its config.
    pub fn from_connection(connection: &Connection) -> Result<Self, IntegrationError> {
        let settings: SlackSettings = match &connection.config {
            Value::Null => SlackSettings::default(),
            other => serde_json::from_value(other.clone()).map_err(|e| {
                IntegrationError::configuration(
                    PROVIDER,
                    format!("connection '{}' has an invalid config: {e}", connection.name),
                )
            })?,
        };
        let secret = |field: &str, fallback: &Option<String>| -> Option<String> {
            connection
                .secret(field)
                .map(|s| s.expose_secret().to_owned())
                .or_else(|| fallback.clone().filter(|s| !s.is_empty()))
        };
        let token = secret("bot_token", &settings.bot_token).ok_or_else(|| {
            IntegrationError::configuration(
                PROVIDER,
                format!("connection '{}' has no bot_token", connection.name),
            )
        })?;
        integration_core::check_header_secret(PROVIDER, "bot_token", &token)?;
        let mut config = Self::new(token);
        if let Some(url) = settings.api_url.as_deref().filter(|u| !u.trim().is_empty()) {
            config = config.with_api_url(url)?;
        }
        if let Some(signing) = secret("signing_secret", &settings.signing_secret) {
            config = config.with_signing_secret(signing);
        }
        if let Some(pacing) = settings.pacing {
            config.options.pacing = pacing;
        }
        Ok(config)
    }

    /// Build the client.
    pub fn build(self) -> Result<SlackClient, IntegrationError> {
        SlackClient::new(self)
    }
}

/// Validate a Web API base URL and drop its trailing slash (slack-morphism appends `/{method}`).
pub(crate) fn parse_api_url(raw: &str) -> Result<String, IntegrationError> {
    let url = integration_core::parse_base_url(PROVIDER, "api_url", raw)?;
    let trimmed = url.as_str().trim_end_matches('/');
    if url.scheme() == "http" && !is_loopback(&url) {
        tracing::warn!(
            provider = PROVIDER,
            api_url = trimmed,
            "slack api_url is plain http: the bot token travels unencrypted"
        );
    }
    Ok(trimmed.to_owned())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The JSON Schema of the flat configure body `{bot_token, signing_secret, api_url}`, secrets
/// marked `writeOnly`, plus the optional executor settings.
pub fn config_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "bot_token": {
                "type": "string",
                "writeOnly": true,
                "description": "Bot User OAuth token (xoxb-...)"
            },
            "signing_secret": {
                "type": "string",
                "writeOnly": true,
                "description": "Signing secret of the Slack app; verifies inbound events, interactions and slash commands"
            },
            "api_url": {
                "type": "string",
                "format": "uri",
                "default": DEFAULT_API_URL,
                "description": "Slack Web API base URL"
            },
            "pacing": {
                "type": "boolean",
                "default": true,
                "description": "Pace calls by Slack's per-method tiers and messages one per second per channel; turn off only where something else keeps to Slack's limits"
            },
            "rate_limit_per_minute": {
                "type": "integer", "minimum": 1,
                "description": "Calls per minute admitted for this connection"
            },
            "timeout_seconds": {
                "type": "integer", "minimum": 1,
                "description": "Deadline of one call in seconds, retries included"
            },
            "max_retry_attempts": {
                "type": "integer", "minimum": 0,
                "description": "Retries after the first attempt"
            }
        },
        "required": ["bot_token"]
    })
}

/// The default connection from `SLACK_BOT_TOKEN` (required), `SLACK_SIGNING_SECRET`,
/// `SLACK_API_URL` and `SLACK_PACING` (`true` / `false`; any other value is kept as text, so the
/// connection's first use reports it as an invalid config instead of guessing).
pub fn connection_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
    let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let token = get(ENV_BOT_TOKEN)?;
    let mut config = json!({});
    if let Some(url) = get(ENV_API_URL) {
        config["api_url"] = Value::String(url);
    }
    if let Some(pacing) = get(ENV_PACING) {
        config["pacing"] = match pacing.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(pacing),
        };
    }
    let mut connection = Connection::new(PROVIDER, PROVIDER, config).with_secret("bot_token", token);
    if let Some(secret) = get(ENV_SIGNING_SECRET) {
        connection = connection.with_secret("signing_secret", secret);
    }
    connection.source = ConnectionSource::Environment;
    Some(connection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use integration_core::ErrorKind;

    #[test]
    fn reads_a_connection() {
        let conn = Connection::new("slack", "slack", json!({"api_url": "http://127.0.0.1:9/api/"}))
            .with_secret("bot_token", "xoxb-secret")
            .with_secret("signing_secret", "shh");
        let cfg = SlackConfig::from_connection(&conn).expect("config");
        assert_eq!(cfg.api_url, "http://127.0.0.1:9/api");
        assert!(cfg.signing_secret.is_some());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("xoxb-secret") && !shown.contains("shh"), "{shown}");

        let default = SlackConfig::from_connection(
            &Connection::new("slack", "s", json!({})).with_secret("bot_token", "t"),
        )
        .expect("config");
        assert_eq!(default.api_url, "https://slack.com/api");
    }

    #[test]
    fn bad_connections_are_configuration_errors() {
        for (config, token) in [
            (json!({}), None),
            (json!({"api_url": "ftp://x"}), Some("t")),
            (json!({"api_url": "https://u:p@x/api"}), Some("t")),
            (json!({"apiurl": "https://x"}), Some("t")),
        ] {
            let mut conn = Connection::new("slack", "slack", config.clone());
            if let Some(t) = token {
                conn = conn.with_secret("bot_token", t);
            }
            let err = SlackConfig::from_connection(&conn).expect_err("must fail");
            assert_eq!(err.kind(), &ErrorKind::Configuration, "{config}");
        }
    }

    #[test]
    fn pacing_is_on_unless_the_connection_or_slack_pacing_turns_it_off() {
        let read = |config: Value| {
            SlackConfig::from_connection(&Connection::new("slack", "s", config).with_secret("bot_token", "t"))
        };
        assert!(read(json!({})).expect("default").options.pacing);
        assert!(!read(json!({"pacing": false})).expect("off").options.pacing);
        assert!(read(json!({"pacing": true})).expect("on").options.pacing);
        let from_env = |value: &'static str| {
            let env = move |k: &str| match k {
                ENV_BOT_TOKEN => Some("xoxb-1".to_owned()),
                ENV_PACING => Some(value.to_owned()),
                _ => None,
            };
            connection_from_env(&env).expect("connection")
        };
        assert_eq!(from_env("false").config["pacing"], false);
        assert_eq!(from_env(" TRUE ").config["pacing"], true);
        // a value that is neither is not guessed: the connection's first use says what is wrong
        let odd = from_env("sometimes");
        let err = SlackConfig::from_connection(&odd).expect_err("not a boolean");
        assert_eq!(err.kind(), &ErrorKind::Configuration);
        assert!(err.to_string().contains("boolean"), "{err}");
    }

    #[test]
    fn env_connection_and_schema() {
        let env = |k: &str| match k {
            ENV_BOT_TOKEN => Some("xoxb-1".to_owned()),
            ENV_SIGNING_SECRET => Some("sig".to_owned()),
            ENV_API_URL => Some("http://127.0.0.1:1/api/".to_owned()),
            _ => None,
        };
        let conn = connection_from_env(&env).expect("connection");
        assert_eq!(conn.name, "slack");
        assert_eq!(conn.source, ConnectionSource::Environment);
        assert_eq!(conn.config["api_url"], "http://127.0.0.1:1/api/");
        assert!(conn.secret("bot_token").is_some() && conn.secret("signing_secret").is_some());
        assert!(connection_from_env(&|_| None).is_none());

        let info = integration_core::IntegrationInfo {
            name: "slack".into(),
            display_name: String::new(),
            description: String::new(),
            config_schema: config_schema(),
            env_vars: vec![],
        };
        let mut secrets = info.secret_fields();
        secrets.sort();
        assert_eq!(secrets, vec!["bot_token", "signing_secret"]);
        let s = integration_core::ConnectionSettings::from_config(
            &json!({"rate_limit_per_minute": 50, "timeout_seconds": 5}),
        );
        assert_eq!(s.rate_limit_per_minute, Some(50));
        assert_eq!(s.timeout, Some(std::time::Duration::from_secs(5)));
    }
}
