//! Configuration: command-line options, each also read from an environment variable.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use integration_core::ExecutorConfig;

/// The end of `--help`, after the providers' variables ([`crate::parse_cli`]).
pub(crate) const MORE_HELP: &str = "\
Logging: RUST_LOG overrides --log-level with a full filter (e.g. integration_core=debug).";

/// The Integrations Service REST API.
#[derive(Debug, Parser)]
#[command(name = "integrations-api", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once at start-up; boxing buys nothing")]
pub enum Command {
    /// Serve the REST API (the default).
    Serve(ServeArgs),
    /// Manage the master key that encrypts credentials at rest.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Manage API keys (created keys are shown once).
    #[command(subcommand)]
    Keys(crate::agent::KeysCommand),
    /// Serve MCP over stdio (`mcp --stdio`).
    Mcp(crate::agent::McpArgs),
}

/// `master-key` subcommands.
#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Print a new random master key (base64, 32 bytes).
    Generate,
    /// Re-encrypt every stored credential under INTEGRATIONS_MASTER_KEY, reading rows sealed under
    /// the keys in INTEGRATIONS_MASTER_KEY_PREVIOUS. Safe while the service runs.
    Rotate(StoreArgs),
}

/// Where the state lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// PostgreSQL URL (`postgres://user:pass@host/db`); unset: an embedded SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded database and the generated master key.
    #[arg(long, env = "INTEGRATIONS_DATA_DIR", default_value = "./data")]
    pub data_dir: std::path::PathBuf,
    /// Master key (base64 of 32 bytes) encrypting credentials; generated into the data dir when
    /// unset with the embedded database, required with PostgreSQL.
    #[arg(long, env = "INTEGRATIONS_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Previous master keys, comma-separated, still accepted for decryption during a rotation.
    #[arg(long, env = "INTEGRATIONS_MASTER_KEY_PREVIOUS", hide_env_values = true, value_delimiter = ',')]
    pub master_key_previous: Vec<String>,
}

impl StoreArgs {
    /// The store configuration.
    pub fn store_config(&self) -> integration_store::StoreConfig {
        use secrecy::SecretString;
        integration_store::StoreConfig {
            database_url: self.database_url.clone().filter(|u| !u.trim().is_empty()),
            data_dir: self.data_dir.clone(),
            master_key: self.master_key.clone().filter(|k| !k.trim().is_empty()).map(SecretString::from),
            previous_keys: self
                .master_key_previous
                .iter()
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .map(|k| SecretString::from(k.to_owned()))
                .collect(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of the server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "INTEGRATIONS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log level (trace, debug, info, warn, error).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// OTLP/HTTP collector to export traces to (`http://collector:4318`; spans go to `/v1/traces`);
    /// needs a build with the `otel` feature. Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,
    /// The full URL to send spans to (`https://collector:4318/v1/traces`), used as given; wins
    /// over OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otel_traces_endpoint: Option<String>,
    /// Tool calls: deadline, retries, rate limit, slow-call log, circuit breaker.
    #[command(flatten)]
    pub executor: integration_http::cli::ExecutorArgs,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Origins allowed by CORS, comma-separated (`*` for any); empty disables CORS.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', default_value = "")]
    pub cors_origins: Vec<String>,
    /// Redis URL for the shared cache and rate limiter; unset: in-process cache and limiter.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// RabbitMQ URL: when set, the api publishes the events it produces (Slack events, inbound
    /// webhooks) from the store's outbox to `events.exchange`; unset, they wait in the outbox for a
    /// relay (`integrations-worker` with `WORKER_OUTBOX_RELAY=true`).
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Exceptions to the SSRF guard of custom HTTP tools: host names (`api.internal`, `*.corp`) and
    /// addresses or CIDR ranges (`127.0.0.1`, `10.0.0.0/8`), comma-separated.
    #[arg(long, env = "CUSTOM_HTTP_ALLOWLIST", default_value = "")]
    pub custom_http_allowlist: String,
    /// Seconds between two looks at the stored custom tools, to follow what other replicas create,
    /// change and delete (0: read them at start-up only).
    #[arg(long, env = "CUSTOM_TOOLS_SYNC_SECONDS", default_value_t = 5)]
    pub custom_tools_sync_seconds: u64,
    /// Days webhook deliveries are kept.
    #[arg(long, env = "WEBHOOK_RETENTION_DAYS", default_value_t = 7)]
    pub webhook_retention_days: u64,
    /// Deliveries kept per webhook endpoint (the newest).
    #[arg(long, env = "WEBHOOK_RETENTION_MAX_PER_ENDPOINT", default_value_t = 10_000)]
    pub webhook_retention_max_per_endpoint: u64,
    /// Heap memory jq transformations (webhook transforms, custom tools' response transforms) may
    /// hold, in MiB: one run alone, and the runs in progress together (about; see docs/webhooks.md).
    #[arg(long, env = "TRANSFORM_MEMORY_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub transform_memory_mb: u64,
    /// Toolsets, output budget, MCP and API keys.
    #[command(flatten)]
    pub agent: crate::agent::AgentArgs,
    /// Where the state lives.
    #[command(flatten)]
    pub store: StoreArgs,
}

impl ServeArgs {
    /// The executor defaults from these options.
    pub fn executor_config(&self) -> ExecutorConfig {
        self.executor.executor_config()
    }
}

/// Install the global tracing subscriber (text or JSON; `RUST_LOG` wins over `level`) and, with
/// an OTLP endpoint, the trace exporter.
pub(crate) fn init_tracing(
    format: LogFormat,
    level: &str,
    otlp_endpoint: Option<&str>,
    otlp_traces_endpoint: Option<&str>,
) -> Option<integration_http::telemetry::Telemetry> {
    integration_http::telemetry::init_tracing(&integration_http::telemetry::TracingConfig {
        json: format == LogFormat::Json,
        level,
        otlp_endpoint,
        otlp_traces_endpoint,
        service_name: "integrations-api",
    })
}
