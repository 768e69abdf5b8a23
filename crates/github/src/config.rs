//! The configuration of one GitHub connection, apart from the client built from it.
//!
//! A connection's non-secret config object and its secrets are read into a [`GitHubConfig`], which
//! [`GitHubConfig::build`] turns into a [`GitHubClient`]. Two ways to authenticate:
//!
//! | kind | fields | how |
//! |---|---|---|
//! | personal access token | `token` (secret) | `Authorization: Bearer <token>` |
//! | GitHub App | `app_id`, `private_key` (secret, PEM), `installation_id` | a JWT signed with the key buys an installation access token (`POST /app/installations/{id}/access_tokens`), cached and renewed before it expires |
//!
//! `api_url` (default `https://api.github.com`) points at GitHub Enterprise Server
//! (`https://ghe.example.com/api/v3`) or a fake; its path prefix is kept.

use integration_core::{Connection, ConnectionSource, IntegrationError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::PROVIDER;
use crate::client::GitHubClient;

/// Environment variable with a personal access token.
pub const ENV_TOKEN: &str = "GITHUB_TOKEN";
/// Environment variable with the API base URL.
pub const ENV_API_URL: &str = "GITHUB_API_URL";
/// The public GitHub API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Default size above which a patch is cut (bytes).
pub const DEFAULT_MAX_PATCH_BYTES: usize = 4_000;
/// Default size above which file contents are cut (bytes).
pub const DEFAULT_MAX_FILE_BYTES: usize = 100_000;

/// How the client authenticates.
#[derive(Clone)]
pub enum GitHubAuth {
    /// A personal access token (classic or fine-grained), or any other bearer token.
    Token(SecretString),
    /// A GitHub App installation.
    App {
        /// The App's id.
        app_id: u64,
        /// The App's RSA private key (PEM).
        private_key: SecretString,
        /// The installation to act as.
        installation_id: u64,
    },
}

impl std::fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitHubAuth::Token(_) => f.debug_struct("Token").finish_non_exhaustive(),
            GitHubAuth::App { app_id, installation_id, .. } => f
                .debug_struct("App")
                .field("app_id", app_id)
                .field("installation_id", installation_id)
                .finish_non_exhaustive(),
        }
    }
}

/// The non-secret part of a GitHub connection's config object, as stored by the service.
/// Unknown keys are rejected, so a typo (`apiurl`) is reported instead of ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubSettings {
    /// The API base URL (default `https://api.github.com`).
    pub api_url: Option<String>,
    /// A personal access token (normally kept in the connection's secrets, not here).
    pub token: Option<String>,
    /// GitHub App: the App id (number or numeric string).
    pub app_id: Option<Value>,
    /// GitHub App: the private key PEM (normally kept in the secrets).
    pub private_key: Option<String>,
    /// GitHub App: the installation id (number or numeric string).
    pub installation_id: Option<Value>,
    /// Patches longer than this many bytes are cut (default 4000).
    pub max_patch_bytes: Option<usize>,
    /// File contents longer than this many bytes are cut (default 100000).
    pub max_file_bytes: Option<usize>,
    /// Calls per minute for this connection (executor setting).
    pub rate_limit_per_minute: Option<u32>,
    /// Deadline of one call in seconds, retries included (executor setting).
    pub timeout_seconds: Option<u64>,
    /// Retries after the first attempt (executor setting).
    pub max_retry_attempts: Option<u32>,
}

/// Output size limits of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Patches longer than this are cut.
    pub max_patch_bytes: usize,
    /// File contents longer than this are cut.
    pub max_file_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_patch_bytes: DEFAULT_MAX_PATCH_BYTES, max_file_bytes: DEFAULT_MAX_FILE_BYTES }
    }
}

/// A complete, validated GitHub connection configuration.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// The API base URL without a trailing slash.
    pub api_url: String,
    /// The credentials.
    pub auth: GitHubAuth,
    /// Output size limits.
    pub limits: Limits,
}

impl GitHubConfig {
    /// A personal-access-token configuration.
    pub fn token(api_url: &str, token: impl Into<String>) -> Result<Self, IntegrationError> {
        let token = token.into();
        // octocrab panics building its client on a token no header can carry.
        integration_core::check_header_secret(PROVIDER, "token", &token)?;
        Ok(Self {
            api_url: parse_api_url(api_url)?,
            auth: GitHubAuth::Token(SecretString::from(token)),
            limits: Limits::default(),
        })
    }

    /// A GitHub App installation configuration.
    pub fn app(
        api_url: &str,
        app_id: u64,
        private_key: impl Into<String>,
        installation_id: u64,
    ) -> Result<Self, IntegrationError> {
        Ok(Self {
            api_url: parse_api_url(api_url)?,
            auth: GitHubAuth::App {
                app_id,
                private_key: SecretString::from(private_key.into()),
                installation_id,
            },
            limits: Limits::default(),
        })
    }

    /// Read the configuration of a connection: `api_url` and the App ids from its config object,
    /// `token` or `private_key` from its secrets (or, failing that, its config). A token wins
    /// when both kinds of credentials are present.
    pub fn from_connection(connection: &Connection) -> Result<Self, IntegrationError> {
        let invalid = |what: String| {
            IntegrationError::configuration(PROVIDER, format!("connection '{}' {what}", connection.name))
        };
        let settings: GitHubSettings = match &connection.config {
            Value::Null => GitHubSettings::default(),
            other => serde_json::from_value(other.clone())
                .map_err(|e| invalid(format!("has an invalid config: {e}")))?,
        };
        let api_url = settings.api_url.as_deref().filter(|u| !u.trim().is_empty()).unwrap_or(DEFAULT_API_URL);
        let secret = |field: &str, fallback: &Option<String>| -> Option<String> {
            connection
                .secret(field)
                .map(|s| s.expose_secret().to_owned())
                .or_else(|| fallback.clone().filter(|s| !s.is_empty()))
        };
        let mut config = if let Some(token) = secret("token", &settings.token) {
            Self::token(api_url, token)?
        } else if let Some(key) = secret("private_key", &settings.private_key) {
            let id = |field: &str, v: &Option<Value>| -> Result<u64, IntegrationError> {
                v.as_ref()
                    .and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))
                    .ok_or_else(|| invalid(format!("has a private_key but no numeric '{field}'")))
            };
            Self::app(
                api_url,
                id("app_id", &settings.app_id)?,
                key,
                id("installation_id", &settings.installation_id)?,
            )?
        } else {
            return Err(invalid(
                "has no credentials: set token (personal access token) or app_id + private_key + \
                 installation_id (GitHub App)"
                    .to_owned(),
            ));
        };
        config.limits = Limits {
            max_patch_bytes: settings.max_patch_bytes.unwrap_or(DEFAULT_MAX_PATCH_BYTES),
            max_file_bytes: settings.max_file_bytes.unwrap_or(DEFAULT_MAX_FILE_BYTES),
        };
        Ok(config)
    }

    /// Build the client. Needs a Tokio runtime (octocrab spawns its request buffer on it).
    pub fn build(self) -> Result<GitHubClient, IntegrationError> {
        GitHubClient::new(self)
    }
}

fn parse_api_url(raw: &str) -> Result<String, IntegrationError> {
    Ok(integration_core::parse_base_url(PROVIDER, "api_url", raw)?.as_str().trim_end_matches('/').to_owned())
}

/// The JSON Schema of the flat configure body: `{token, api_url}` (personal access token) or
/// `{app_id, private_key, installation_id, api_url}` (GitHub App), secrets marked `writeOnly`,
/// plus output limits and the optional executor settings.
pub fn config_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "api_url": {
                "type": "string",
                "format": "uri",
                "default": DEFAULT_API_URL,
                "description": "GitHub API base URL; https://ghe.example.com/api/v3 for GitHub Enterprise Server"
            },
            "token": {
                "type": "string",
                "writeOnly": true,
                "description": "A personal access token (classic or fine-grained)"
            },
            "app_id": {
                "type": ["integer", "string"],
                "description": "GitHub App: the App id"
            },
            "private_key": {
                "type": "string",
                "writeOnly": true,
                "description": "GitHub App: the App's private key (PEM)"
            },
            "installation_id": {
                "type": ["integer", "string"],
                "description": "GitHub App: the installation id"
            },
            "max_patch_bytes": {
                "type": "integer", "minimum": 0,
                "description": "Patches longer than this many bytes are cut (default 4000)"
            },
            "max_file_bytes": {
                "type": "integer", "minimum": 0,
                "description": "File contents longer than this many bytes are cut (default 100000)"
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
        "anyOf": [
            { "required": ["token"] },
            { "required": ["app_id", "private_key", "installation_id"] }
        ]
    })
}

/// The default connection from `GITHUB_TOKEN` (and `GITHUB_API_URL`); `None` without a token.
pub fn connection_from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
    let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let token = get(ENV_TOKEN)?;
    let api_url = get(ENV_API_URL).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    let mut connection =
        Connection::new(PROVIDER, PROVIDER, json!({ "api_url": api_url })).with_secret("token", token);
    connection.source = ConnectionSource::Environment;
    Some(connection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use integration_core::ErrorKind;

    #[test]
    fn token_and_app_connections() {
        let pat = Connection::new("github", "github", json!({})).with_secret("token", "ghp_s3cr3t");
        let cfg = GitHubConfig::from_connection(&pat).expect("token config");
        assert_eq!(cfg.api_url, DEFAULT_API_URL);
        assert!(matches!(cfg.auth, GitHubAuth::Token(_)));
        assert!(!format!("{cfg:?}").contains("s3cr3t"));

        let app = Connection::new(
            "github",
            "gh-app",
            json!({"api_url": "https://ghe.example.com/api/v3/", "app_id": "12", "installation_id": 34}),
        )
        .with_secret("private_key", "-----BEGIN RSA PRIVATE KEY-----");
        let cfg = GitHubConfig::from_connection(&app).expect("app config");
        assert_eq!(cfg.api_url, "https://ghe.example.com/api/v3");
        assert!(matches!(cfg.auth, GitHubAuth::App { app_id: 12, installation_id: 34, .. }));
    }

    #[test]
    fn missing_or_bad_settings_are_configuration_errors() {
        for (config, secret) in [
            (json!({}), None),
            (json!({"api_url": "ftp://x"}), Some(("token", "t"))),
            (json!({"apiurl": "typo"}), Some(("token", "t"))),
            (json!({"app_id": 1}), Some(("private_key", "k"))),
            (json!({"app_id": "x", "installation_id": 2}), Some(("private_key", "k"))),
        ] {
            let mut conn = Connection::new("github", "github", config.clone());
            if let Some((k, v)) = secret {
                conn = conn.with_secret(k, v);
            }
            let err = GitHubConfig::from_connection(&conn).expect_err("must fail");
            assert_eq!(err.kind(), &ErrorKind::Configuration, "{config}");
        }
    }

    #[test]
    fn env_connection() {
        let env = |k: &str| match k {
            ENV_TOKEN => Some("ghp_x".to_owned()),
            ENV_API_URL => Some("http://127.0.0.1:9/".to_owned()),
            _ => None,
        };
        let conn = connection_from_env(&env).expect("connection");
        assert_eq!(conn.name, "github");
        assert_eq!(conn.config["api_url"], "http://127.0.0.1:9/");
        assert!(conn.secret("token").is_some());
        assert!(connection_from_env(&|_| None).is_none());
    }

    #[test]
    fn schema_marks_secrets_write_only() {
        let info = integration_core::IntegrationInfo {
            name: "github".into(),
            display_name: "GitHub".into(),
            description: String::new(),
            config_schema: config_schema(),
            env_vars: vec![],
        };
        let mut secrets = info.secret_fields();
        secrets.sort();
        assert_eq!(secrets, vec!["private_key", "token"]);
    }
}
