//! The execution pipeline every front door uses: validate, resolve the connection, rate-limit,
//! call with a deadline, retry with backoff and full jitter, record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use futures::FutureExt as _;
use metrics::{Counter, Histogram};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::breaker::{Admission, BreakerConfig, Breakers};
use crate::cache::{Cache, InMemoryCache};
use crate::connection::{Connection, ConnectionResolver};
use crate::deadline;
use crate::error::{Effect, ErrorKind, IntegrationError};
use crate::metric_handles::HandleCache;
use crate::ratelimit::{Decision, InMemoryRateLimiter, Quota, RateLimiter};
use crate::registry::{RegisteredTool, Registry};
use crate::tool::ToolContext;

static TOOL_CALLS: HandleCache<Counter> = HandleCache::counter(
    "integration_tool_calls_total",
    &["provider", "tool", "connection", "source", "outcome", "error_kind"],
);
static TOOL_CALL_DURATION: HandleCache<Histogram> =
    HandleCache::histogram("integration_tool_call_duration_seconds", &["provider", "tool"]);
static PERMITS: HandleCache<Counter> =
    HandleCache::counter("integration_rate_limit_permits_total", &["connection"]);

/// The label value of a tool or connection name that does not exist.
const UNKNOWN_LABEL: &str = "(unknown)";

/// Which of a call's requested names exist, so they may be metric labels.
#[derive(Clone, Copy)]
struct Labels {
    /// The tool is registered.
    known_tool: bool,
    /// The connection resolved.
    resolved: bool,
}

/// Which front door a call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The REST API.
    Rest,
    /// A RabbitMQ command.
    Bus,
    /// The MCP server.
    Mcp,
    /// Code embedding the executor.
    Embedded,
}

impl Source {
    /// The snake_case name, for labels and audit rows.
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Rest => "rest",
            Source::Bus => "bus",
            Source::Mcp => "mcp",
            Source::Embedded => "embedded",
        }
    }
}

/// One request to run a tool.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The tool's name.
    pub tool: String,
    /// The connection to use; the tool's provider's default connection when `None`.
    pub connection: Option<String>,
    /// The parameters object.
    pub params: Value,
    /// A caller-chosen key identifying this logical call (bus: task and step ids).
    pub idempotency_key: Option<String>,
    /// The front door.
    pub source: Source,
    /// Whether cached upstream answers may be used.
    pub use_cache: bool,
}

impl ToolCall {
    /// A call with default options.
    pub fn new(tool: impl Into<String>, params: Value) -> Self {
        Self {
            tool: tool.into(),
            connection: None,
            params,
            idempotency_key: None,
            source: Source::Embedded,
            use_cache: true,
        }
    }

    /// Name the connection.
    pub fn connection(mut self, name: impl Into<String>) -> Self {
        self.connection = Some(name.into());
        self
    }

    /// Set the front door.
    pub fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }
}

/// What happened to a call.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    /// The tool's name.
    pub tool: String,
    /// The tool's provider (`core` when the tool was unknown).
    pub provider: String,
    /// The connection used, when resolved.
    pub connection: Option<String>,
    /// The result or the classified error.
    pub result: Result<Value, IntegrationError>,
    /// Upstream attempts made (0 when the call failed before reaching the tool).
    pub attempts: u32,
    /// Wall time of the whole call.
    pub duration: Duration,
    /// Time spent waiting for rate-limit permits.
    pub rate_limit_wait: Duration,
}

/// Receives every finished call (the store writes audit rows).
#[async_trait]
pub trait ExecutionObserver: Send + Sync + 'static {
    /// Called once per finished call, on the caller's path before the outcome is returned: queue
    /// the work and return (waiting only as back-pressure when the queue is full), and copy what is
    /// kept (the outcome is lent, not cloned).
    async fn record(&self, call: &ToolCall, outcome: &ToolOutcome);
}

/// Defaults applied when a connection sets nothing of its own.
#[derive(Debug, Clone, Copy)]
pub struct ExecutorConfig {
    /// Overall deadline of one call, retries included (`INTEGRATION_TIMEOUT`, default 30 s).
    pub timeout: Duration,
    /// Retries after the first attempt (`MAX_RETRY_ATTEMPTS`, default 3).
    pub max_retry_attempts: u32,
    /// Calls per minute per connection (`RATE_LIMIT_PER_MINUTE`, default 100).
    pub rate_limit_per_minute: u32,
    /// First backoff delay before jitter.
    pub backoff_base: Duration,
    /// Largest backoff delay before jitter.
    pub backoff_max: Duration,
    /// Calls slower than this are logged at warn level (`SLOW_CALL_MS`, default 5 s; zero: never).
    pub slow_call: Duration,
    /// The circuit breaker per connection.
    pub breaker: BreakerConfig,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_retry_attempts: 3,
            rate_limit_per_minute: 100,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            slow_call: Duration::from_secs(5),
            breaker: BreakerConfig::default(),
        }
    }
}

/// The pipeline. Cheap to clone (one reference count).
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Parts>,
}

/// What an [`Executor`] shares between its clones.
#[derive(Clone)]
struct Parts {
    registry: Arc<Registry>,
    connections: Arc<dyn ConnectionResolver>,
    limiter: Arc<dyn RateLimiter>,
    cache: Arc<dyn Cache>,
    observer: Option<Arc<dyn ExecutionObserver>>,
    breakers: Arc<Breakers>,
    config: ExecutorConfig,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor with an in-memory rate limiter and cache.
    pub fn new(
        registry: Arc<Registry>,
        connections: Arc<dyn ConnectionResolver>,
        config: ExecutorConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Parts {
                registry,
                connections,
                limiter: Arc::new(InMemoryRateLimiter::new()),
                cache: Arc::new(InMemoryCache::default()),
                observer: None,
                breakers: Arc::new(Breakers::new(config.breaker)),
                config,
            }),
        }
    }

    /// Use another rate limiter (Redis, shared by replicas).
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        Arc::make_mut(&mut self.inner).limiter = limiter;
        self
    }

    /// Use another cache.
    pub fn with_cache(mut self, cache: Arc<dyn Cache>) -> Self {
        Arc::make_mut(&mut self.inner).cache = cache;
        self
    }

    /// Report finished calls to an observer.
    pub fn with_observer(mut self, observer: Arc<dyn ExecutionObserver>) -> Self {
        Arc::make_mut(&mut self.inner).observer = Some(observer);
        self
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// The connection resolver.
    pub fn connections(&self) -> &Arc<dyn ConnectionResolver> {
        &self.inner.connections
    }

    /// The rate limiter.
    pub fn rate_limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.inner.limiter
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.inner.cache
    }

    /// The defaults.
    pub fn config(&self) -> &ExecutorConfig {
        &self.inner.config
    }

    /// The quota in force for a connection.
    pub fn quota_for(&self, connection: &Connection) -> Quota {
        Quota::per_minute(
            connection.settings.rate_limit_per_minute.unwrap_or(self.inner.config.rate_limit_per_minute),
        )
    }

    /// Run a call through the whole pipeline. Never panics on bad input; every failure is a
    /// classified error in the outcome.
    pub async fn execute(&self, call: ToolCall) -> ToolOutcome {
        let started = Instant::now();
        let tool = self.inner.registry.get(&call.tool);
        // Everything known up front goes into the span when it is made: each later `record`
        // re-formats the span's fields in the log layer.
        let provider = tool.as_ref().map_or("core", |t| t.spec().provider.as_str());
        let connection = call.connection.as_deref().unwrap_or(provider);
        let span = tracing::info_span!(
            "tool_call",
            tool = call.tool.as_str(),
            source = call.source.as_str(),
            provider,
            connection,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let mut outcome = ToolOutcome {
            tool: call.tool.clone(),
            provider: provider.to_owned(),
            connection: None,
            result: Ok(Value::Null),
            attempts: 0,
            duration: Duration::ZERO,
            rate_limit_wait: Duration::ZERO,
        };
        let known_tool = tool.is_some();
        let mut resolved = false;
        outcome.result = self.run(tool, &call, &mut outcome, &mut resolved).instrument(span.clone()).await;
        outcome.duration = started.elapsed();
        self.record(&call, &outcome, &span, Labels { known_tool, resolved });
        if let Some(observer) = &self.inner.observer {
            observer.record(&call, &outcome).await;
        }
        outcome
    }

    async fn run(
        &self,
        tool: Option<RegisteredTool>,
        call: &ToolCall,
        outcome: &mut ToolOutcome,
        resolved: &mut bool,
    ) -> Result<Value, IntegrationError> {
        let started = Instant::now();
        let tool = tool.ok_or_else(|| {
            IntegrationError::not_found("core", format!("unknown tool '{}'", call.tool))
                .with_details(serde_json::json!({ "error_type": "unknown_tool" }))
        })?;
        let spec = tool.spec();
        tool.validate(&call.params)?;

        let connection_name = call.connection.clone().unwrap_or_else(|| spec.provider.clone());
        outcome.connection = Some(connection_name.clone());
        let connection = self
            .inner
            .connections
            .resolve(&connection_name)
            .await
            .map_err(|e| e.with_provider(spec.provider.clone()))?;
        *resolved = true;
        if connection.provider != spec.provider {
            return Err(IntegrationError::invalid_input(
                spec.provider.clone(),
                format!(
                    "connection '{}' belongs to provider '{}', not '{}'",
                    connection.name, connection.provider, spec.provider
                ),
            ));
        }

        let timeout = connection.settings.timeout.unwrap_or(self.inner.config.timeout);
        let retries = connection.settings.max_retry_attempts.unwrap_or(self.inner.config.max_retry_attempts);
        let deadline = started + timeout;
        let quota = self.quota_for(&connection);

        let attempts = std::sync::atomic::AtomicU32::new(0);
        let waited = std::sync::Mutex::new(Duration::ZERO);
        let idempotent = spec.hints.idempotent;
        let base_ctx = ToolContext {
            connection: connection.clone(),
            cache: self.inner.cache.clone(),
            use_cache: call.use_cache,
            deadline,
            attempt: 0,
            idempotency_key: call.idempotency_key.clone(),
        };

        let attempt_once = || {
            let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let mut ctx = base_ctx.clone();
            ctx.attempt = attempt;
            let tool = tool.clone();
            let waited = &waited;
            async move {
                let connection = ctx.connection.name.clone();
                if let Admission::Rejected(wait) = self.inner.breakers.admit(&connection) {
                    metrics::counter!("integration_circuit_rejections_total", "connection" => connection.clone())
                        .increment(1);
                    return Err(IntegrationError::new(
                        ErrorKind::CircuitOpen { retry_after: Some(wait) },
                        tool.spec().provider.clone(),
                        format!(
                            "the upstream of connection '{connection}' is failing; calls are refused for {} ms before a probe",
                            wait.as_millis()
                        ),
                    ));
                }
                let wait = self.acquire_permit(&tool, &connection, quota, deadline).await?;
                if !wait.is_zero() {
                    *waited.lock().unwrap_or_else(|e| e.into_inner()) += wait;
                }
                let result = call_with_deadline(&tool, &ctx, call.params.clone(), deadline).await;
                if self.inner.breakers.record(&connection, result.as_ref().map(|_| ())) {
                    metrics::counter!("integration_circuit_opened_total", "connection" => connection.clone())
                        .increment(1);
                    tracing::warn!(connection = %connection, "circuit opened after repeated upstream failures");
                }
                result
            }
        };

        let backoff = full_jitter(envelope(&self.inner.config, retries));
        let provider = spec.provider.clone();
        let tool_name = spec.name.clone();
        let result = attempt_once
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &IntegrationError| should_retry(e, idempotent))
            .adjust(|e: &IntegrationError, delay: Option<Duration>| {
                next_delay(delay, e.retry_after(), Instant::now(), deadline)
            })
            .notify(|e: &IntegrationError, delay: Duration| {
                metrics::counter!(
                    "integration_tool_retries_total",
                    "provider" => provider.clone(),
                    "tool" => tool_name.clone(),
                    "error_kind" => e.kind().as_str(),
                )
                .increment(1);
                tracing::debug!(
                    error_kind = e.kind().as_str(),
                    delay_ms = delay.as_millis() as u64,
                    "retrying tool call"
                );
            })
            .await;
        outcome.attempts = attempts.load(std::sync::atomic::Ordering::SeqCst);
        outcome.rate_limit_wait = *waited.lock().unwrap_or_else(|e| e.into_inner());
        // An upstream may echo the credential it was sent: never pass that on.
        result.map_err(|e| {
            explain_no_retry(e.redact_secrets(&connection), &spec.provider, &spec.name, idempotent)
        })
    }

    /// Take a rate-limit permit, waiting for it only while the wait leaves the call itself at least
    /// as long as the wait (see [`deadline::fits`]); otherwise refuse at once with `rate_limited` and the
    /// wait as `Retry-After`.
    async fn acquire_permit(
        &self,
        tool: &RegisteredTool,
        connection: &str,
        quota: Quota,
        deadline: Instant,
    ) -> Result<Duration, IntegrationError> {
        let started = Instant::now();
        loop {
            match self.inner.limiter.try_acquire(connection, quota).await? {
                Decision::Allowed => {
                    let waited = started.elapsed();
                    PERMITS.get(&[connection]).increment(1);
                    if !waited.is_zero() {
                        metrics::histogram!("integration_rate_limit_wait_seconds", "connection" => connection.to_owned())
                            .record(waited.as_secs_f64());
                    }
                    return Ok(waited);
                }
                Decision::Wait(wait) => {
                    if !deadline::fits(wait, Instant::now(), deadline) {
                        metrics::counter!("integration_rate_limit_rejections_total", "connection" => connection.to_owned())
                            .increment(1);
                        tracing::warn!(
                            connection,
                            wait_ms = wait.as_millis() as u64,
                            "rate limit wait exceeds the deadline"
                        );
                        return Err(IntegrationError::new(
                            ErrorKind::RateLimited { retry_after: Some(wait) },
                            tool.spec().provider.clone(),
                            format!(
                                "rate limit of {} calls per minute for connection '{connection}' reached",
                                quota.per_minute
                            ),
                        ));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn record(&self, call: &ToolCall, outcome: &ToolOutcome, span: &tracing::Span, labels: Labels) {
        let status = if outcome.result.is_ok() { "success" } else { "failure" };
        let kind = outcome.result.as_ref().err().map(|e| e.kind().as_str()).unwrap_or("none");
        // Both end fields in one record: the JSON log layer re-parses and re-writes a span's
        // formatted fields on every record.
        if let Some(fields) = span.metadata().map(tracing::Metadata::fields)
            && let (Some(attempts), Some(result)) = (fields.field("attempts"), fields.field("outcome"))
        {
            let values: [(&tracing::field::Field, Option<&dyn tracing::Value>); 2] =
                [(&attempts, Some(&outcome.attempts)), (&result, Some(&status))];
            span.record_all(&fields.value_set(&values));
        }
        // Only names that exist become label values: a caller could otherwise add a series to
        // `/metrics` with every made-up tool or connection name.
        let tool = if labels.known_tool { outcome.tool.as_str() } else { UNKNOWN_LABEL };
        let connection = match outcome.connection.as_deref() {
            Some(name) if labels.resolved => name,
            Some(_) => UNKNOWN_LABEL,
            None => "",
        };
        TOOL_CALLS
            .get(&[&outcome.provider, tool, connection, call.source.as_str(), status, kind])
            .increment(1);
        TOOL_CALL_DURATION.get(&[&outcome.provider, tool]).record(outcome.duration.as_secs_f64());
        if !self.inner.config.slow_call.is_zero() && outcome.duration >= self.inner.config.slow_call {
            tracing::warn!(
                parent: span,
                duration_ms = outcome.duration.as_millis() as u64,
                threshold_ms = self.inner.config.slow_call.as_millis() as u64,
                attempts = outcome.attempts,
                rate_limit_wait_ms = outcome.rate_limit_wait.as_millis() as u64,
                "slow tool call"
            );
        }
        match &outcome.result {
            Ok(_) => {
                tracing::debug!(parent: span, duration_ms = outcome.duration.as_millis() as u64, "tool call succeeded")
            }
            Err(e) => tracing::info!(
                parent: span,
                error_kind = e.kind().as_str(),
                error = %e,
                duration_ms = outcome.duration.as_millis() as u64,
                "tool call failed"
            ),
        }
    }
}

/// A retryable error is retried when the upstream certainly did nothing, or when the tool is
/// idempotent (repeating it is harmless).
fn should_retry(error: &IntegrationError, idempotent: bool) -> bool {
    // An open circuit fails fast: waiting out its cool-down here would defeat it.
    if matches!(error.kind(), ErrorKind::CircuitOpen { .. }) {
        return false;
    }
    error.retryable() && (idempotent || error.effect() == Effect::None)
}

/// Say so when a retryable error was not retried because the request may have acted upstream and
/// the tool is not idempotent: the caller must check the upstream before repeating the call.
fn explain_no_retry(
    error: IntegrationError,
    provider: &str,
    tool: &str,
    idempotent: bool,
) -> IntegrationError {
    let unsafe_to_repeat = error.retryable()
        && !idempotent
        && error.effect() == Effect::Unknown
        && !matches!(error.kind(), ErrorKind::CircuitOpen { .. });
    if !unsafe_to_repeat {
        return error;
    }
    let details = match error.details().cloned() {
        None => Some(serde_json::json!({ "effect": Effect::Unknown })),
        Some(Value::Object(mut map)) => {
            map.insert("effect".to_owned(), serde_json::json!(Effect::Unknown));
            Some(Value::Object(map))
        }
        Some(_) => None,
    };
    let error = error.with_note(format!(
        "not retried: the request may have reached {provider} and '{tool}' is not idempotent, check before repeating it"
    ));
    match details {
        Some(details) => error.with_details(details),
        None => error,
    }
}

async fn call_with_deadline(
    tool: &RegisteredTool,
    ctx: &ToolContext,
    params: Value,
    deadline: Instant,
) -> Result<Value, IntegrationError> {
    let spec = tool.spec();
    // A tool that panics (a bug, in it or in a client library under it) fails its call as an
    // internal error, recorded and answered like any other, instead of unwinding through the
    // front door (a REST connection closed without an answer, a bus consumer gone).
    let attempt = std::panic::AssertUnwindSafe(tool.tool.call(ctx, params)).catch_unwind();
    match tokio::time::timeout_at(deadline.into(), deadline::scope(deadline, attempt)).await {
        Ok(Ok(result)) => result,
        Ok(Err(_panic)) => {
            // The panic's message went to the panic hook (stderr); it is not repeated here, where
            // it would reach the caller: it may quote data of the call.
            tracing::error!(tool = %spec.name, provider = %spec.provider, "tool panicked");
            Err(IntegrationError::internal(
                spec.provider.clone(),
                format!("'{}' failed inside the service (a panic, logged); the call may have reached the upstream", spec.name),
            )
            .with_effect(Effect::Unknown))
        }
        Err(_) => Err(IntegrationError::new(
            ErrorKind::Timeout,
            spec.provider.clone(),
            format!("'{}' did not finish within its deadline", spec.name),
        )),
    }
}

/// The exponential envelope of the retry delays: from `backoff_base` doubling up to `backoff_max`,
/// `retries` of them. The first delay is capped too (a base above the cap gives the cap).
fn envelope(config: &ExecutorConfig, retries: u32) -> backon::ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(config.backoff_base.min(config.backoff_max))
        .with_max_delay(config.backoff_max)
        .with_max_times(retries as usize)
        .build()
}

/// The wait before the next attempt, or `None` to stop retrying: the jittered `delay` of the
/// schedule, stretched to the upstream's `Retry-After` when that is longer, and only if the wait
/// leaves the attempt at least as long again before the deadline ([`deadline::fits`], the rule of
/// the rate-limit waits too). Sleeping until just before the deadline would leave the attempt no
/// time: a write would time out with an unknown effect instead of failing with the error it had.
fn next_delay(
    delay: Option<Duration>,
    retry_after: Option<Duration>,
    now: Instant,
    deadline: Instant,
) -> Option<Duration> {
    let delay = delay?;
    let delay = match retry_after {
        Some(asked) if asked > delay => asked,
        _ => delay,
    };
    deadline::fits(delay, now, deadline).then_some(delay)
}

/// "Full jitter": each delay is uniform in `[0, exponential delay]`, which spreads retries of many
/// clients best (AWS architecture blog, "Exponential Backoff And Jitter").
fn full_jitter<B>(backoff: B) -> impl backon::Backoff
where
    B: Iterator<Item = Duration> + Send + Sync + Unpin,
{
    backoff.map(|d| d.mul_f64(fastrand::f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_within_the_exponential_envelope() {
        let builder = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(6);
        for _ in 0..200 {
            let envelope: Vec<Duration> = builder.build().collect();
            let jittered: Vec<Duration> = full_jitter(builder.build()).collect();
            assert_eq!(envelope.len(), jittered.len());
            for (e, j) in envelope.iter().zip(&jittered) {
                assert!(j <= e, "{j:?} > {e:?}");
                assert!(*e <= Duration::from_secs(2));
            }
        }
    }

    #[test]
    fn retry_rules() {
        let timeout = IntegrationError::new(ErrorKind::Timeout, "p", "t");
        assert!(should_retry(&timeout, true));
        assert!(!should_retry(&timeout, false), "a timeout may have acted: only idempotent tools retry");
        let limited = IntegrationError::new(ErrorKind::RateLimited { retry_after: None }, "p", "r");
        assert!(should_retry(&limited, false), "429 did nothing upstream");
        let refused = IntegrationError::connect("p", "refused");
        assert!(should_retry(&refused, false));
        let auth = IntegrationError::new(ErrorKind::Authentication, "p", "a");
        assert!(!should_retry(&auth, true));
    }

    #[test]
    fn errors_of_writes_that_may_have_acted_say_so() {
        let reset = IntegrationError::new(ErrorKind::Network, "jira", "connection reset");
        let explained = explain_no_retry(reset.clone(), "jira", "jira_create_issue", false);
        assert!(explained.message().contains("not retried"), "{}", explained.message());
        assert!(explained.message().contains("'jira_create_issue' is not idempotent"));
        assert_eq!(explained.details(), Some(&serde_json::json!({"effect": "unknown"})));
        let with_details = IntegrationError::new(ErrorKind::Upstream { status: Some(500) }, "jira", "boom")
            .with_details(serde_json::json!({"status": 500}));
        let explained = explain_no_retry(with_details, "jira", "jira_create_issue", false);
        assert_eq!(explained.details(), Some(&serde_json::json!({"status": 500, "effect": "unknown"})));
        // idempotent tools were retried; errors that did nothing upstream were retried; final errors
        // are not about retries: all unchanged
        let same = |e: IntegrationError, idempotent: bool| {
            let message = e.message().to_owned();
            assert_eq!(explain_no_retry(e, "jira", "t", idempotent).message(), message);
        };
        same(reset, true);
        same(IntegrationError::connect("jira", "refused"), false);
        same(IntegrationError::new(ErrorKind::RateLimited { retry_after: None }, "jira", "slow"), false);
        same(IntegrationError::new(ErrorKind::Upstream { status: Some(200) }, "jira", "bad body"), false);
        same(IntegrationError::not_found("jira", "gone"), false);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn millis(max: u64) -> impl Strategy<Value = Duration> {
            (0..=max).prop_map(Duration::from_millis)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Every retry delay lies in [0, backoff_max]: the envelope starts at the base (capped),
            /// doubles up to the cap, and full jitter only shortens it.
            #[test]
            fn retry_delays_stay_within_zero_and_the_cap(
                base in millis(120_000), cap in millis(60_000), retries in 0u32..16, seed in any::<u64>(),
            ) {
                let config = ExecutorConfig { backoff_base: base, backoff_max: cap, ..ExecutorConfig::default() };
                let schedule: Vec<Duration> = envelope(&config, retries).collect();
                prop_assert_eq!(schedule.len(), retries as usize);
                // backon multiplies with an f32 factor: doubling holds to within 0.1 %
                let mut expected = base.min(cap);
                let mut previous = Duration::ZERO;
                for (i, d) in schedule.iter().enumerate() {
                    prop_assert!(*d <= cap && *d >= previous, "delay {} = {:?} (cap {:?})", i, d, cap);
                    prop_assert!(d.abs_diff(expected) <= expected / 1000, "delay {} = {:?}, expected {:?}", i, d, expected);
                    previous = *d;
                    expected = expected.saturating_mul(2).min(cap);
                }
                prop_assert_eq!(schedule.first().copied().unwrap_or(base.min(cap)), base.min(cap));
                fastrand::seed(seed);
                let jittered: Vec<Duration> = full_jitter(envelope(&config, retries)).collect();
                prop_assert_eq!(jittered.len(), schedule.len());
                for (j, e) in jittered.iter().zip(&schedule) {
                    prop_assert!(j <= e && *j <= cap, "{:?} outside [0, {:?}] (cap {:?})", j, e, cap);
                }
            }

            /// A retry waits at least what the upstream asked for (`Retry-After`) and at least its
            /// jittered delay, and happens only if the attempt keeps as long again before the deadline.
            #[test]
            fn retry_wait_honours_retry_after_and_the_deadline(
                delay in proptest::option::of(millis(20_000)),
                asked in proptest::option::of(millis(120_000)),
                budget in millis(60_000),
            ) {
                let now = Instant::now();
                let deadline = now + budget;
                let wanted = delay.map(|d| asked.map_or(d, |a| a.max(d)));
                match (wanted, next_delay(delay, asked, now, deadline)) {
                    (None, got) => prop_assert_eq!(got, None, "the schedule is exhausted: no more retries"),
                    (Some(w), Some(got)) => {
                        prop_assert_eq!(got, w);
                        prop_assert!(got * 2 <= budget, "{:?} leaves the attempt less than itself", got);
                    }
                    (Some(w), None) => {
                        prop_assert!(w.saturating_mul(2) > budget, "{:?} and as long again fit in {:?}", w, budget);
                    }
                }
            }
        }

        #[test]
        fn a_huge_retry_after_stops_retrying_instead_of_overflowing() {
            let now = Instant::now();
            let deadline = now + Duration::from_secs(30);
            assert_eq!(next_delay(Some(Duration::from_millis(5)), Some(Duration::MAX), now, deadline), None);
            assert_eq!(next_delay(Some(Duration::MAX), None, now, deadline), None);
        }
    }
}
