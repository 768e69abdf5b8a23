//! # integrations-worker
//!
//! The bus worker binary as a library: [`Cli`] is the whole configuration (every option also read
//! from its environment variable, all listed by `--help`), [`run`] runs it. Key design decision:
//! the binary is glue only — read configuration, build the registry from the enabled provider
//! features, open the store, run the `integration-bus` worker with store-backed outcome records,
//! and serve health and metrics beside it.

mod config;
#[cfg(feature = "webhook")]
mod custom_tools;
mod health;
pub mod providers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use integration_bus::{OutboxRelay, RelayConfig, StoreOutcomes, Worker, WorkerStatus};
use integration_core::{Executor, Registry};
use integration_store::redis::{RedisCache, RedisConnection, RedisRateLimiter};
use integration_store::{Store, StoreConnections};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{CallArgs, Cli, LogFormat, Sensitive, WorkerCommand};
pub use health::health_router;

/// Everything a running worker is made of, built from the configuration.
pub struct App {
    /// The bus worker.
    pub worker: Worker,
    /// The outbox relay, when enabled.
    pub relay: Option<OutboxRelay>,
    /// The store (outcome records, connections, audit).
    pub store: Store,
    /// The executor behind the worker.
    pub executor: Executor,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("worker", &self.worker)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Build the worker from its configuration, without connecting to the broker.
pub async fn build(cli: &Cli) -> anyhow::Result<App> {
    integration_bus::check_url(&cli.amqp_url.0).context("AMQP_URL")?;
    let registry = Arc::new(Registry::new());
    providers::register_all(&registry).context("registering providers")?;
    let store = Store::open(cli.store_config()).await.context("opening the store")?;
    #[cfg(feature = "webhook")]
    {
        integration_webhook::transform::set_memory_limit(cli.transform_memory_mb.saturating_mul(1 << 20));
        custom_tools::start(cli, &registry, &store).await?;
    }
    let env = registry
        .connections_from_env(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .context("provider variables")?;
    let connections = Arc::new(StoreConnections::new(store.clone(), env));
    let mut executor =
        Executor::new(registry, connections, cli.executor_config()).with_observer(Arc::new(store.clone()));
    if let Some(url) = &cli.redis_url {
        let redis = RedisConnection::open(&url.0).context("REDIS_URL")?;
        executor = executor
            .with_cache(Arc::new(RedisCache::new(redis.clone())))
            .with_rate_limiter(Arc::new(RedisRateLimiter::new(redis)));
        tracing::info!("shared rate limits and cache on Redis");
    }
    let worker = Worker::new(executor.clone(), Arc::new(StoreOutcomes::new(&store)), cli.worker_config());
    let relay = cli.outbox_relay.then(|| {
        let mut config = RelayConfig::new(cli.amqp_url.0.clone());
        config.topology = Some(cli.topology());
        OutboxRelay::new(&store, config)
    });
    Ok(App { worker, relay, store, executor })
}

/// Parse the process's command line; `--help` ends with the connection variables of the providers
/// compiled into this build.
pub fn parse_cli() -> Cli {
    let help = integration_http::cli::provider_variables(&providers::all(), config::MORE_HELP);
    integration_http::cli::parse_with_help(help)
}

/// Run the worker until SIGINT or SIGTERM, then finish in-flight commands within the grace
/// period and exit.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(WorkerCommand::Call(args)) = &cli.command {
        return call(&cli, args).await;
    }
    let telemetry = config::init_tracing(
        cli.log_format,
        &cli.log_level,
        cli.otel_endpoint.as_deref(),
        cli.otel_traces_endpoint.as_deref(),
    );
    // Spans are exported on every way out, a failed start-up included.
    let result = run_traced(&cli).await;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    result
}

async fn run_traced(cli: &Cli) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    integration_http::install_metrics_recorder();
    let app = build(cli).await?;
    let listener =
        TcpListener::bind(cli.metrics_bind).await.with_context(|| format!("binding {}", cli.metrics_bind))?;
    let local = listener.local_addr()?;
    tracing::info!(
        health = %local,
        queue = %cli.commands_queue,
        tools = app.executor.registry().tools().len(),
        store = app.store.backend(),
        concurrency = cli.concurrency,
        prefetch = cli.prefetch,
        startup_ms = started.elapsed().as_millis() as u64,
        "integrations-worker starting"
    );

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let status: Arc<WorkerStatus> = app.worker.status();
    let router = health_router(status, app.store.clone());
    let mut server_stop = stopped.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    let relay = app.relay.map(|relay| tokio::spawn(relay.run(stopped.clone())));
    let result = app.worker.run(stopped).await;
    if let Some(relay) = relay {
        let _ = tokio::time::timeout(Duration::from_secs(5), relay).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    app.store.close().await;
    result.context("worker")?;
    tracing::info!("integrations-worker stopped");
    Ok(())
}

/// `integrations-worker call`: one command out, its event printed.
async fn call(cli: &Cli, args: &CallArgs) -> anyhow::Result<()> {
    let parameters: serde_json::Value =
        serde_json::from_str(&args.parameters).context("the parameters must be a JSON object")?;
    let command = integration_bus::Command {
        task_id: args.task_id.clone().unwrap_or_else(|| format!("cli-{}", fastrand::u64(..))),
        step_id: args.step_id.clone(),
        tool_name: args.tool.clone(),
        parameters,
        connection: args.connection.clone(),
    };
    let timeout = Duration::from_secs(args.timeout_seconds.max(1));
    let event = integration_bus::call(&cli.amqp_url.0, &cli.topology(), &command, timeout)
        .await
        .with_context(|| format!("calling {} over the bus", command.tool_name))?;
    println!("{}", serde_json::to_string_pretty(&event)?);
    match event.status {
        integration_bus::Status::Completed => Ok(()),
        integration_bus::Status::Failed => anyhow::bail!("{} failed", command.tool_name),
    }
}

/// Resolves on SIGINT or SIGTERM ([`integration_http::shutdown_signal`]), logging it.
pub async fn shutdown_signal() {
    integration_http::shutdown_signal().await;
    tracing::info!("shutdown signal received: no new commands, finishing in-flight ones");
}
