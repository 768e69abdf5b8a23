//! # integrations-api
//!
//! The REST API binary as a library: [`Cli`] is the whole configuration (every option also read
//! from its environment variable, all listed by `--help`), [`run`] serves it. Key design decision:
//! the binary is glue only — read configuration, build the registry from the enabled provider
//! features, open the store, serve the router of `integration-http`.

mod agent;
mod config;
pub mod providers;
#[cfg(feature = "slack")]
mod slack_events;
pub mod tool_registry;
mod webhooks;

use std::sync::Arc;

use anyhow::Context as _;
use integration_core::{Executor, Registry};
use integration_http::{AppState, HttpConfig};
use integration_store::redis::{RedisCache, RedisConnection, RedisRateLimiter};
use integration_store::{Store, StoreConnections};
use tokio::net::TcpListener;

pub use agent::{AgentArgs, KeysCommand, McpArgs};
pub use config::{Cli, Command, LogFormat, MasterKeyCommand, ServeArgs, StoreArgs};

/// Parse the process's command line; `--help` ends with the connection variables of the providers
/// compiled into this build.
pub fn parse_cli() -> Cli {
    let help = integration_http::cli::provider_variables(&providers::all(), config::MORE_HELP);
    integration_http::cli::parse_with_help(help)
}

/// Run the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::MasterKey(command)) => master_key(command).await,
        Some(Command::Keys(command)) => agent::keys(command).await,
        Some(Command::Mcp(args)) => agent::mcp(args).await,
        None => serve(cli.serve).await,
    }
}

async fn master_key(command: MasterKeyCommand) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    match command {
        MasterKeyCommand::Generate => {
            let (_, encoded) = integration_store::MasterKey::generate()?;
            println!("{}", encoded.expose_secret());
            Ok(())
        }
        MasterKeyCommand::Rotate(args) => {
            config::init_tracing(LogFormat::Text, "warn", None, None);
            let config = args.store_config();
            let new_key = config
                .master_key
                .as_ref()
                .context("set INTEGRATIONS_MASTER_KEY to the new key (and INTEGRATIONS_MASTER_KEY_PREVIOUS to the old ones)")?;
            let new_key = integration_store::MasterKey::from_base64(new_key)?;
            let old_keys = config
                .previous_keys
                .iter()
                .map(integration_store::MasterKey::from_base64)
                .collect::<Result<Vec<_>, _>>()?;
            let store = integration_store::Store::open(config).await.context("opening the store")?;
            let report = store.rotate_master_key(&old_keys, &new_key).await?;
            println!(
                "rotated {} connection(s) to key {}; {} already current; {} failed",
                report.rotated,
                report.new_key_id,
                report.already_current,
                report.failed.len()
            );
            for (name, reason) in &report.failed {
                println!("  {name}: {reason}");
            }
            for (key_id, count) in &report.key_usage {
                println!("  key {key_id}: {count} row(s)");
            }
            store.close().await;
            if report.failed.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("some connections could not be rotated")
            }
        }
    }
}

/// Everything a running API is made of, built from the configuration.
pub struct App {
    /// The router to serve.
    pub router: axum::Router,
    /// The executor behind it.
    pub executor: Executor,
    /// The store.
    pub store: Store,
    /// The state behind the router (for other transports: MCP over stdio).
    pub state: AppState,
}

/// Build the application from its configuration, without binding a port.
pub async fn build(args: &ServeArgs) -> anyhow::Result<App> {
    // before any transformation runs (the first setting in the process wins)
    #[cfg(feature = "webhook")]
    integration_webhook::transform::set_memory_limit(args.transform_memory_mb.saturating_mul(1 << 20));
    let registry = Arc::new(Registry::new());
    providers::register_all(&registry).context("registering providers")?;
    args.agent.apply_selection(&registry).context("tool selection")?;
    let environment = registry
        .connections_from_env(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .context("provider variables")?;
    let store = Store::open(args.store.store_config()).await.context("opening the store")?;
    let connections = Arc::new(StoreConnections::new(store.clone(), environment));
    let mut executor = Executor::new(registry, connections.clone(), args.executor_config())
        .with_observer(Arc::new(store.clone()));
    if let Some(url) = args.redis_url.as_deref().filter(|u| !u.trim().is_empty()) {
        let redis = RedisConnection::open(url).context("REDIS_URL")?;
        executor = executor
            .with_cache(Arc::new(RedisCache::new(redis.clone())))
            .with_rate_limiter(Arc::new(RedisRateLimiter::new(redis)));
        tracing::info!("cache and rate limiter on Redis");
    }
    integration_http::install_metrics_recorder();
    let http = HttpConfig {
        max_body_bytes: args.max_body_bytes,
        request_timeout: std::time::Duration::from_secs(args.executor.integration_timeout.saturating_add(5)),
        cors_origins: args.cors_origins.clone(),
    };
    let state = AppState::new(executor.clone())
        .with_connections(connections)
        .with_readiness(Arc::new(StoreReady(store.clone())))
        .with_auth(Arc::new(integration_http::Auth::new(store.api_keys(), args.agent.auth_config(args.bind))))
        .with_agent(args.agent.agent_config());
    let app_state = state.clone();
    let inbound = providers::inbound_routes(&state, &store)
        .merge(webhooks::routes(args, &store, &executor).await.context("webhook routes")?);
    let router = integration_http::router_with(state, &http, inbound);
    tool_registry::spawn(args.agent.tool_registry_url.clone(), executor.registry().clone(), store.clone());
    Ok(App { router, executor, store, state: app_state })
}

/// `/readyz` check of the database.
struct StoreReady(Store);

#[async_trait::async_trait]
impl integration_http::ReadinessCheck for StoreReady {
    fn name(&self) -> &str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| e.to_string())
    }
}

/// Serve the REST API until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let telemetry = config::init_tracing(
        args.log_format,
        &args.log_level,
        args.otel_endpoint.as_deref(),
        args.otel_traces_endpoint.as_deref(),
    );
    // Spans are exported on every way out, a failed start-up included.
    let result = serve_traced(args).await;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    result
}

async fn serve_traced(args: ServeArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let amqp_url = args.amqp_url.as_deref().filter(|u| !u.trim().is_empty());
    if let Some(url) = amqp_url {
        integration_bus::check_url(url).context("AMQP_URL")?;
    }
    let app = build(&args).await?;
    agent::check_bind(&args, &app.store).await?;
    let listener = TcpListener::bind(args.bind).await.with_context(|| format!("binding {}", args.bind))?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        tools = app.executor.registry().tools().len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "integrations-api listening"
    );
    let (stop_relay, relay_stopped) = tokio::sync::watch::channel(false);
    let relay = amqp_url.map(|url| {
        let relay = integration_bus::OutboxRelay::new(&app.store, integration_bus::RelayConfig::new(url));
        tracing::info!("publishing the outbox to RabbitMQ");
        tokio::spawn(relay.run(relay_stopped))
    });
    axum::serve(listener, app.router).with_graceful_shutdown(shutdown_signal()).await.context("serving")?;
    let _ = stop_relay.send(true);
    if let Some(relay) = relay {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), relay).await;
    }
    app.store.close().await;
    tracing::info!("integrations-api stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM ([`integration_http::shutdown_signal`]), logging it.
pub async fn shutdown_signal() {
    integration_http::shutdown_signal().await;
    tracing::info!("shutdown signal received, draining requests");
}
