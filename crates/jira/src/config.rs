//! The configuration of one Jira connection, apart from the client built from it.
//!
//! A connection's non-secret config object and its secrets are read into a [`JiraConfig`], which
//! [`JiraConfig::build`] turns into a [`JiraClient`]. Two ways to authenticate:
//!
//! | deployment | fields | header |
//! |---|---|---|
//! | Jira Cloud | `username` (the account's e-mail) + `api_token` | `Authorization: Basic base64(email:token)` |
//! | Jira Data Center / Server | `personal_access_token` | `Authorization: Bearer <token>` |

use integration_core::{Connection, ConnectionSource, IntegrationError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::PROVIDER;
use crate::client::JiraClient;

/// Environment variable with the site URL (`https://your-domain.atlassian.net`).
pub const ENV_BASE_URL: &str = "JIRA_BASE_URL";
/// Environment variable with the Cloud account e-mail.
pub const ENV_USERNAME: &str = "JIRA_USERNAME";
/// Environment variable with the Cloud API token.
pub const ENV_API_TOKEN: &str = "JIRA_API_TOKEN";
/// Environment variable with a Data Center personal access token.
pub const ENV_PERSONAL_ACCESS_TOKEN: &str = "JIRA_PERSONAL_ACCESS_TOKEN";

/// How the client authenticates.
#[derive(Clone)]
pub enum JiraAuth {
    /// Jira Cloud: e-mail and API token, sent as HTTP Basic.
    Basic {
        /// The account's e-mail address.
        username: String,
        /// The API token.
        api_token: SecretString,
    },
    /// Jira Data Center / Server: a personal access token, sent as a Bearer token.
    Bearer {
        /// The personal access token.
        token: SecretString,
    },
}

impl std::fmt::Debug for JiraAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JiraAuth::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).finish_non_exhaustive()
            }
            JiraAuth::Bearer { .. } => f.debug_struct("Bearer").finish_non_exhaustive(),
        }
    }
}

/// The non-secret part of a Jira connection's config object, as stored by the service.
///
/// Unknown keys are rejected, so a typo (`baseurl`) is reported instead of ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraSettings {
    /// The site URL, e.g. `https://your-domain.atlassian.net` (a context path such as
    /// `https://jira.example.com/jira` is kept).
    pub base_url: Option<String>,
    /// Jira Cloud: the account's e-mail address.
    pub username: Option<String>,
    /// Jira Cloud: the API token (normally kept in the connection's secrets, not here).
    pub api_token: Option<String>,
    /// Jira Data Center: the personal access token (normally kept in the secrets).
    pub personal_access_token: Option<String>,
    /// Calls per minute for this connection (executor setting).
    pub rate_limit_per_minute: Option<u32>,
    /// Deadline of one call in seconds, retries included (executor setting).
    pub timeout_seconds: Option<u64>,
    /// Retries after the first attempt (executor setting).
    pub max_retry_attempts: Option<u32>,
}

/// A complete, validated Jira connection configuration.
#[derive(Debug, Clone)]
pub struct JiraConfig {
    /// The site URL without a trailing slash.
    pub base_url: reqwest::Url,
    /// The credentials.
    pub auth: JiraAuth,
}

impl JiraConfig {
    /// A Jira Cloud configuration (e-mail + API token).
    pub fn cloud(
        base_url: &str,
        username: impl Into<String>,
        api_token: impl Into<String>,
    ) -> Result<Self, IntegrationError> {
        let api_token = api_token.into();
        integration_core::check_header_secret(PROVIDER, "api_token", &api_token)?;
        Ok(Self {
            base_url: integration_core::parse_base_url(PROVIDER, "base_url", base_url)?,
            auth: JiraAuth::Basic { username: username.into(), api_token: SecretString::from(api_token) },
        })
    }

    /// A Jira Data Center configuration (personal access token).
    pub fn data_center(base_url: &str, token: impl Into<String>) -> Result<Self, IntegrationError> {
        let token = token.into();
        integration_core::check_header_secret(PROVIDER, "personal_access_token", &token)?;
        Ok(Self {
            base_url: integration_core::parse_base_url(PROVIDER, "base_url", base_url)?,
            auth: JiraAuth::Bearer { token: SecretString::from(token) },
        })
    }

    /// Read the configuration of a connection: `base_url` (and `username`) from its config object,
    /// `api_token` or `personal_access_token` from its secrets (or, failing that, its config).
    /// A personal access token wins when both kinds of credentials are present.
    pub fn from_connection(connection: &Connection) -> Result<Self, IntegrationError> {
        let settings: JiraSettings = match &connection.config {
            Value::Null => JiraSettings::default(),
            other => serde_json::from_value(other.clone()).map_err(|e| {
                IntegrationError::configuration(
                    PROVIDER,
                    format!("connection '{}' has an invalid config: {e}", connection.name),
                )
            })?,
        };
        let base_url = connection.require_config("base_url")?;
        let secret = |field: &str, fallback: &Option<String>| -> Option<String> {
            connection
                .secret(field)
                .map(|s| s.expose_secret().to_owned())
                .or_else(|| fallback.clone().filter(|s| !s.is_empty()))
        };
        if let Some(token) = secret("personal_access_token", &settings.personal_access_token) {
            return Self::data_center(base_url, token);
        }
        match (settings.username.filter(|u| !u.is_empty()), secret("api_token", &settings.api_token)) {
            (Some(username), Some(token)) => Self::cloud(base_url, username, token),
            (None, Some(_)) => Err(IntegrationError::configuration(
                PROVIDER,
                format!("connection '{}' has an api_token but no username", connection.name),
            )),
            _ => Err(IntegrationError::configuration(
                PROVIDER,
                format!(
                    "connection '{}' has no credentials: set username + api_token (Jira Cloud) or \
                     personal_access_token (Jira Data Center)",
                    connection.name
                ),
            )),
        }
    }

    /// Build the HTTP client.
    pub fn build(self) -> Result<JiraClient, IntegrationError> {
        JiraClient::new(self)
    }
}

/// The JSON Schema of the flat configure body: `{base_url, username, api_token}` (Cloud) or
/// `{base_url, personal_access_token}` (Data Center), secrets marked `writeOnly`, plus the
/// optional executor settings.
pub fn config_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "base_url": {
                "type": "string",
                "format": "uri",
                "description": "Jira site URL, e.g. https://your-domain.atlassian.net"
            },
            "username": {
                "type": "string",
                "description": "Jira Cloud: the account's e-mail address (used with api_token)"
            },
            "api_token": {
                "type": "string",
                "writeOnly": true,
                "description": "Jira Cloud: an API token of the account"
            },
            "personal_access_token": {
                "type": "string",
                "writeOnly": true,
                "description": "Jira Data Center / Server: a personal access token (Bearer)"
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
        "required": ["base_url"],
        "anyOf": [
            { "required": ["username", "api_token"] },
            { "required": ["personal_access_token"] }
        ]
    })
}

/// The default connection from `JIRA_BASE_URL` with `JIRA_USERNAME` + `JIRA_API_TOKEN` or
/// `JIRA_PERSONAL_ACCESS_TOKEN`; `None` unless the base URL and one kind of credentials are set.
pub fn connection_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
    let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let base_url = get(ENV_BASE_URL)?;
    let mut connection = Connection::new(PROVIDER, PROVIDER, json!({ "base_url": base_url }));
    connection.source = ConnectionSource::Environment;
    if let Some(pat) = get(ENV_PERSONAL_ACCESS_TOKEN) {
        connection = connection.with_secret("personal_access_token", pat);
    } else {
        let (username, token) = (get(ENV_USERNAME)?, get(ENV_API_TOKEN)?);
        connection.config["username"] = Value::String(username);
        connection = connection.with_secret("api_token", token);
    }
    Some(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_and_data_center_connections() {
        let cloud = Connection::new(
            "jira",
            "jira",
            json!({"base_url": "https://x.atlassian.net/", "username": "a@b.c"}),
        )
        .with_secret("api_token", "t");
        let cfg = JiraConfig::from_connection(&cloud).expect("cloud config");
        assert_eq!(cfg.base_url.as_str(), "https://x.atlassian.net/");
        assert!(matches!(cfg.auth, JiraAuth::Basic { ref username, .. } if username == "a@b.c"));

        let dc = Connection::new("jira", "jira-dc", json!({"base_url": "https://jira.example.com/jira"}))
            .with_secret("personal_access_token", "s3cr3t-pat");
        let cfg = JiraConfig::from_connection(&dc).expect("dc config");
        assert_eq!(cfg.base_url.path(), "/jira");
        assert!(matches!(cfg.auth, JiraAuth::Bearer { .. }));
        assert!(!format!("{:?}", cfg).contains("s3cr3t"));
    }

    #[test]
    fn missing_or_bad_settings_are_configuration_errors() {
        for config in [
            json!({}),
            json!({"base_url": "ftp://x"}),
            json!({"base_url": "https://x", "username": "u"}),
            json!({"base_url": "https://x", "baseurl": "typo"}),
        ] {
            let conn = Connection::new("jira", "jira", config.clone());
            let err = JiraConfig::from_connection(&conn).expect_err("must fail");
            assert_eq!(err.kind(), &integration_core::ErrorKind::Configuration, "{config}");
        }
    }

    #[test]
    fn env_connection() {
        let env = |k: &str| match k {
            ENV_BASE_URL => Some("https://x.atlassian.net".to_owned()),
            ENV_USERNAME => Some("me@x.io".to_owned()),
            ENV_API_TOKEN => Some("tok".to_owned()),
            _ => None,
        };
        let conn = connection_from_env(&env).expect("connection");
        assert_eq!(conn.name, "jira");
        assert_eq!(conn.config["username"], "me@x.io");
        assert!(conn.secret("api_token").is_some());
        assert!(connection_from_env(&|_| None).is_none());
    }

    #[test]
    fn schema_marks_secrets_write_only() {
        let info = integration_core::IntegrationInfo {
            name: "jira".into(),
            display_name: "Jira".into(),
            description: String::new(),
            config_schema: config_schema(),
            env_vars: vec![],
        };
        let mut secrets = info.secret_fields();
        secrets.sort();
        assert_eq!(secrets, vec!["api_token", "personal_access_token"]);
    }
}
