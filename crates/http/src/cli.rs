//! Command-line options both binaries share (feature `cli`): each is also read from an environment
//! variable, and the api and the worker flatten them into their own arguments.

use std::time::Duration;

use integration_core::{BreakerConfig, ExecutorConfig};

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
}
