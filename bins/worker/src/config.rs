//! Configuration: command-line options, each also read from an environment variable.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use integration_bus::{Topology, WorkerConfig};
use integration_core::ExecutorConfig;
use integration_store::StoreConfig;

/// The end of `--help`, after the providers' variables ([`crate::parse_cli`]).
pub(crate) const MORE_HELP: &str = "\
Store: INTEGRATIONS_MASTER_KEY_PREVIOUS (comma-separated older keys, during a key rotation).
Logging: RUST_LOG overrides --log-level with a full filter (e.g. integration_bus=debug).";

/// A value that may carry a password (URLs, keys): never shown by `Debug`.
#[derive(Clone)]
pub struct Sensitive(pub String);

impl FromStr for Sensitive {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Commands besides running the worker.
#[derive(Debug, Clone, Subcommand)]
pub enum WorkerCommand {
    /// Publish one tool command on the bus, wait for its event and print it (exit 1 if it failed):
    /// the bus from a shell. Uses the same broker and topology options as the worker.
    Call(CallArgs),
}

/// A command to send.
#[derive(Debug, Clone, Args)]
pub struct CallArgs {
    /// The tool to run (`jira_list_projects`).
    pub tool: String,
    /// Its parameters, a JSON object.
    #[arg(default_value = "{}")]
    pub parameters: String,
    /// The command's task id (default: `cli-` and a random number).
    #[arg(long)]
    pub task_id: Option<String>,
    /// The command's step id.
    #[arg(long, default_value = "1")]
    pub step_id: String,
    /// The connection to use; the provider's default when absent.
    #[arg(long)]
    pub connection: Option<String>,
    /// How long to wait for the event, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_seconds: u64,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The Integrations Service bus worker: consumes tool commands from RabbitMQ, runs them through
/// the executor and publishes one result event per command.
#[derive(Debug, Clone, Parser)]
#[command(name = "integrations-worker", version, about)]
pub struct Cli {
    /// What to do; without a command, run the worker.
    #[command(subcommand)]
    pub command: Option<WorkerCommand>,
    /// RabbitMQ URL (`amqp://user:password@host:port/vhost`).
    #[arg(
        long,
        env = "AMQP_URL",
        hide_env_values = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: Sensitive,
    /// Commands executed at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
    /// Output budget of a result in an event, in bytes (cut results are marked `truncated`).
    #[arg(long, env = "MAX_OUTPUT_BYTES", default_value_t = 65_536)]
    pub max_output_bytes: usize,
    /// Unacknowledged commands the broker may push ahead (AMQP prefetch).
    #[arg(long, env = "WORKER_PREFETCH", default_value_t = 64)]
    pub prefetch: u16,
    /// On SIGTERM/SIGINT, how long in-flight commands may take to finish, in seconds.
    #[arg(long, env = "WORKER_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
    /// Address of the health (`/healthz`, `/readyz`) and Prometheus (`/metrics`) endpoints.
    #[arg(long, env = "WORKER_METRICS_BIND", default_value = "127.0.0.1:9090")]
    pub metrics_bind: SocketAddr,
    /// Also publish the store's outbox (events written by the api) from this worker.
    #[arg(long, env = "WORKER_OUTBOX_RELAY", default_value_t = false)]
    pub outbox_relay: bool,

    /// `postgres://...` or `sqlite:...`; unset: the SQLite file `integrations.db` in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Sensitive>,
    /// Directory of the embedded SQLite database and the generated credentials key.
    #[arg(long, env = "INTEGRATIONS_DATA_DIR", default_value = "./data")]
    pub data_dir: String,
    /// Credentials key (base64 of 32 bytes); required with PostgreSQL.
    #[arg(long, env = "INTEGRATIONS_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<Sensitive>,
    /// Redis URL: shared rate limits and cache across replicas; in-process ones when unset.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Sensitive>,

    /// Exceptions to the SSRF guard of custom HTTP tools: host names (`api.internal`, `*.corp`) and
    /// addresses or CIDR ranges (`127.0.0.1`, `10.0.0.0/8`), comma-separated (a build with the
    /// `webhook` feature runs the custom tools stored through the api).
    #[arg(long, env = "CUSTOM_HTTP_ALLOWLIST", default_value = "")]
    pub custom_http_allowlist: String,
    /// Seconds between two looks at the stored custom tools, to follow what the api creates,
    /// changes and deletes (0: read them at start-up only).
    #[arg(long, env = "CUSTOM_TOOLS_SYNC_SECONDS", default_value_t = 5)]
    pub custom_tools_sync_seconds: u64,
    /// Heap memory the custom tools' jq response transforms may hold, in MiB: one run alone, and
    /// the runs in progress together (about; see docs/webhooks.md).
    #[arg(long, env = "TRANSFORM_MEMORY_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub transform_memory_mb: u64,

    /// Tool calls: deadline, retries, rate limit, slow-call log, circuit breaker.
    #[command(flatten)]
    pub executor: integration_http::cli::ExecutorArgs,

    /// Deliveries of one command before it is dead-lettered (quorum queue `x-delivery-limit`).
    #[arg(long, env = "BUS_DELIVERY_LIMIT", default_value_t = 5)]
    pub delivery_limit: u32,
    /// Topic exchange of commands.
    #[arg(long, env = "BUS_COMMANDS_EXCHANGE", default_value = "commands.exchange")]
    pub commands_exchange: String,
    /// Topic exchange of events.
    #[arg(long, env = "BUS_EVENTS_EXCHANGE", default_value = "events.exchange")]
    pub events_exchange: String,
    /// Quorum queue of commands.
    #[arg(long, env = "BUS_COMMANDS_QUEUE", default_value = "integrations.commands")]
    pub commands_queue: String,
    /// Binding of the commands queue on the commands exchange.
    #[arg(long, env = "BUS_COMMANDS_BINDING", default_value = "integrations.*")]
    pub commands_binding: String,
    /// Dead-letter exchange of the commands queue.
    #[arg(long, env = "BUS_DEAD_LETTER_EXCHANGE", default_value = "integrations.dlx")]
    pub dead_letter_exchange: String,
    /// Dead-letter queue.
    #[arg(long, env = "BUS_DEAD_LETTER_QUEUE", default_value = "integrations.commands.dead")]
    pub dead_letter_queue: String,

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
}

impl Cli {
    /// The executor defaults from these options.
    pub fn executor_config(&self) -> ExecutorConfig {
        self.executor.executor_config()
    }

    /// Exchange and queue names.
    pub fn topology(&self) -> Topology {
        Topology {
            commands_exchange: self.commands_exchange.clone(),
            events_exchange: self.events_exchange.clone(),
            commands_queue: self.commands_queue.clone(),
            commands_binding: self.commands_binding.clone(),
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            dead_letter_queue: self.dead_letter_queue.clone(),
            delivery_limit: self.delivery_limit.max(1),
        }
    }

    /// The worker settings.
    pub fn worker_config(&self) -> WorkerConfig {
        let mut config = WorkerConfig::new(self.amqp_url.0.clone());
        config.topology = self.topology();
        config.concurrency = self.concurrency.max(1);
        config.prefetch = self.prefetch.max(1);
        config.shutdown_grace = Duration::from_secs(self.shutdown_grace_seconds);
        config.max_output_bytes = self.max_output_bytes;
        // A duplicate delivery waits for a command in flight a little longer than its deadline.
        config.in_flight_wait = Duration::from_secs(self.executor.integration_timeout.saturating_add(5));
        config
    }

    /// The store settings (`INTEGRATIONS_MASTER_KEY_PREVIOUS` is read from the environment).
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig::from_lookup(&|name| match name {
            "DATABASE_URL" => self.database_url.as_ref().map(|s| s.0.clone()),
            "INTEGRATIONS_DATA_DIR" => Some(self.data_dir.clone()),
            "INTEGRATIONS_MASTER_KEY" => self.master_key.as_ref().map(|s| s.0.clone()),
            other => std::env::var(other).ok(),
        })
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
        service_name: "integrations-worker",
    })
}
