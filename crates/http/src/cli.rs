//! Command-line options both binaries share (feature `cli`): each is also read from an environment
//! variable, and the api and the worker flatten them into their own arguments.

use std::sync::Arc;
use std::time::Duration;

use integration_core::{BreakerConfig, ExecutorConfig, Integration};

/// How tool calls run: their deadline, retries, rate limit, slow-call log and circuit breaker.
/// The defaults of every connection that sets none of its own.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecutorArgs {
    /// Deadline of one tool call in seconds, retries included.
    #[arg(long, env = "INTEGRATION_TIMEOUT", default_value_t = 30)]
    pub integration_timeout: u64,
    /// Retries after the first attempt of a failed tool call.
    #[arg(long, env = "MAX_RETRY_ATTEMPTS", default_value_t = 3)]
    pub max_retry_attempts: u32,
    /// Tool calls admitted per minute per connection (burst of the same size).
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 100)]
    pub rate_limit_per_minute: u32,
    /// Tool calls slower than this many milliseconds are logged at warn level (0: never).
    #[arg(long, env = "SLOW_CALL_MS", default_value_t = 5000)]
    pub slow_call_ms: u64,
    /// Consecutive upstream failures (network errors, time-outs, 5xx) of one connection that open
    /// its circuit: calls then fail at once with `circuit_open` (0: no circuit breaker).
    #[arg(long, env = "CIRCUIT_BREAKER_THRESHOLD", default_value_t = 5)]
    pub circuit_breaker_threshold: u32,
    /// How long an open circuit refuses calls before one probe call may reach the upstream, in
    /// milliseconds.
    #[arg(long, env = "CIRCUIT_BREAKER_COOL_DOWN_MS", default_value_t = 10_000)]
    pub circuit_breaker_cool_down_ms: u64,
}

impl ExecutorArgs {
    /// The executor defaults from these options (a deadline and a rate of at least 1).
    pub fn executor_config(&self) -> ExecutorConfig {
        ExecutorConfig {
            timeout: Duration::from_secs(self.integration_timeout.max(1)),
            max_retry_attempts: self.max_retry_attempts,
            rate_limit_per_minute: self.rate_limit_per_minute.max(1),
            slow_call: Duration::from_millis(self.slow_call_ms),
            breaker: BreakerConfig {
                threshold: self.circuit_breaker_threshold,
                cool_down: Duration::from_millis(self.circuit_breaker_cool_down_ms),
            },
            ..ExecutorConfig::default()
        }
    }
}

/// The `--help` epilogue: each compiled-in provider's connection variables (from its
/// [`integration_core::IntegrationInfo::env_vars`], so a build lists exactly the providers it has),
/// then `rest`.
pub fn provider_variables(providers: &[Arc<dyn Integration>], rest: &str) -> String {
    let mut help = String::from(
        "Provider connections (read at start-up; a connection saved through the API takes precedence):\n",
    );
    for info in providers.iter().map(|p| p.info()).filter(|i| !i.env_vars.is_empty()) {
        help.push_str(&format!("  {}: {}\n", info.name, info.env_vars.join(", ")));
    }
    help.push('\n');
    help.push_str(rest);
    help
}

/// Parse the process's command line as `P`, with `after_help` as the epilogue of `--help`. Like
/// [`clap::Parser::parse`]: prints the help or the error and exits when asked to.
pub fn parse_with_help<P: clap::Parser>(after_help: String) -> P {
    let matches = <P as clap::CommandFactory>::command().after_help(after_help).get_matches();
    <P as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Every environment variable the options of `command` read, its subcommands' included, sorted.
pub fn environment_variables(command: &clap::Command) -> Vec<String> {
    fn walk(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env() {
                out.push(name.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(command, &mut out);
    out.sort();
    out.dedup();
    out
}

/// The calling thread's live heap bytes as jemalloc counts them: allocated minus freed by this
/// thread (memory it frees that another thread allocated counts against it). For
/// `integration_webhook::transform::set_memory_meter` in a process whose global allocator is
/// `tikv_jemallocator::Jemalloc` built with `stats`; 0 where jemalloc cannot tell.
#[cfg(not(target_env = "msvc"))]
pub fn jemalloc_thread_heap_bytes() -> u64 {
    use tikv_jemalloc_ctl::thread::{ThreadLocal, allocatedp, deallocatedp};
    std::thread_local! {
        static COUNTERS: Option<(ThreadLocal<u64>, ThreadLocal<u64>)> =
            allocatedp::read().ok().zip(deallocatedp::read().ok());
    }
    COUNTERS.with(|c| c.as_ref().map_or(0, |(allocated, freed)| allocated.get().wrapping_sub(freed.get())))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ExecutorArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        executor: ExecutorArgs,
    }

    #[test]
    fn options_become_the_executor_defaults_with_floors() {
        let cli = Cli::parse_from(["x"]);
        let config = cli.executor.executor_config();
        assert_eq!(config.timeout.as_secs(), 30);
        assert_eq!((config.max_retry_attempts, config.rate_limit_per_minute), (3, 100));
        assert_eq!(config.breaker.threshold, 5);
        let cli = Cli::parse_from([
            "x",
            "--integration-timeout=0",
            "--rate-limit-per-minute=0",
            "--slow-call-ms=250",
            "--circuit-breaker-cool-down-ms=1500",
        ]);
        let config = cli.executor.executor_config();
        assert_eq!(config.timeout.as_secs(), 1, "a zero deadline would fail every call");
        assert_eq!(config.rate_limit_per_minute, 1);
        assert_eq!(config.slow_call.as_millis(), 250);
        assert_eq!(config.breaker.cool_down.as_millis(), 1500);
    }

    struct Named(&'static str, &'static [&'static str]);

    #[async_trait::async_trait]
    impl integration_core::Integration for Named {
        fn info(&self) -> integration_core::IntegrationInfo {
            integration_core::IntegrationInfo {
                name: self.0.into(),
                display_name: self.0.into(),
                description: String::new(),
                config_schema: serde_json::json!({"type": "object"}),
                env_vars: self.1.iter().map(|v| (*v).to_owned()).collect(),
            }
        }

        fn tools(&self) -> Vec<std::sync::Arc<dyn integration_core::Tool>> {
            Vec::new()
        }

        async fn check(
            &self,
            _: &integration_core::Connection,
        ) -> Result<integration_core::Health, integration_core::IntegrationError> {
            Err(integration_core::IntegrationError::invalid_input(self.0, "no upstream"))
        }
    }

    #[test]
    fn the_help_lists_each_provider_with_variables() {
        let providers: Vec<std::sync::Arc<dyn integration_core::Integration>> = vec![
            std::sync::Arc::new(Named("jira", &["JIRA_BASE_URL", "JIRA_API_TOKEN"])),
            std::sync::Arc::new(Named("plain", &[])),
            std::sync::Arc::new(Named("slack", &["SLACK_BOT_TOKEN"])),
        ];
        let help = super::provider_variables(&providers, "Logging: RUST_LOG.");
        let lines: Vec<&str> = help.lines().collect();
        assert_eq!(
            lines[1..],
            ["  jira: JIRA_BASE_URL, JIRA_API_TOKEN", "  slack: SLACK_BOT_TOKEN", "", "Logging: RUST_LOG."]
        );
        assert!(!help.contains("plain"), "a provider without variables is not listed");
        assert!(super::provider_variables(&[], "").starts_with("Provider connections"));
    }

    #[derive(Parser)]
    struct WithSubcommand {
        #[command(flatten)]
        executor: ExecutorArgs,
        #[arg(long, env = "A_TOP_LEVEL")]
        top: Option<String>,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Nested {
            #[arg(long, env = "A_NESTED")]
            nested: Option<String>,
            #[arg(long, env = "A_TOP_LEVEL")]
            again: Option<String>,
        },
    }

    #[test]
    fn environment_variables_come_from_every_level() {
        let vars = super::environment_variables(&<WithSubcommand as clap::CommandFactory>::command());
        assert!(vars.contains(&"A_NESTED".to_owned()), "{vars:?}");
        assert!(vars.contains(&"INTEGRATION_TIMEOUT".to_owned()), "flattened ones too: {vars:?}");
        assert_eq!(vars.iter().filter(|v| *v == "A_TOP_LEVEL").count(), 1, "listed once: {vars:?}");
        assert!(vars.windows(2).all(|w| w[0] < w[1]), "sorted: {vars:?}");
        let parsed = WithSubcommand::parse_from(["x", "nested", "--nested", "n"]);
        assert!(parsed.top.is_none() && parsed.executor.integration_timeout == 30);
        assert!(matches!(parsed.command, Some(Sub::Nested { nested: Some(_), again: None })));
    }
}
