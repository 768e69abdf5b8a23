//! # integrations-api
//!
//! The REST API binary as a library: [`Cli`] is the whole configuration (every option also read
//! from its environment variable, all listed by `--help`), [`run`] serves it. Key design decision:
//! the binary is glue only — read configuration, build the registry from the enabled provider
//! features, open the store, serve the router of `integration-http`.

mod config;
pub mod providers;

use std::sync::Arc;

use anyhow::Context as _;
use integration_core::{Executor, InMemoryConnections, Registry};
use integration_http::{AppState, HttpConfig};
use tokio::net::TcpListener;

pub use config::{Cli, Command, LogFormat, ServeArgs};

/// Run the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Serve(args)) => serve(args).await,
        None => serve(cli.serve).await,
    }
}

/// Everything a running API is made of, built from the configuration.
pub struct App {
    /// The router to serve.
    pub router: axum::Router,
    /// The executor behind it.
    pub executor: Executor,
}

/// Build the application from its configuration, without binding a port.
pub async fn build(args: &ServeArgs) -> anyhow::Result<App> {
    let registry = Arc::new(Registry::new());
    providers::register_all(&registry).context("registering providers")?;
    let connections = Arc::new(InMemoryConnections::new());
    for connection in providers::connections_from_env(&registry) {
        tracing::info!(provider = %connection.provider, connection = %connection.name, "connection configured from the environment");
        connections.insert(connection);
    }
    let executor = Executor::new(registry, connections, args.executor_config());
    integration_http::install_metrics_recorder();
    let http = HttpConfig {
        max_body_bytes: args.max_body_bytes,
        request_timeout: std::time::Duration::from_secs(args.integration_timeout.saturating_add(5)),
        cors_origins: args.cors_origins.clone(),
    };
    let router = integration_http::router(AppState::new(executor.clone()), &http);
    Ok(App { router, executor })
}

/// Serve the REST API until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    config::init_tracing(args.log_format, &args.log_level);
    let started = std::time::Instant::now();
    let app = build(&args).await?;
    let listener = TcpListener::bind(args.bind).await.with_context(|| format!("binding {}", args.bind))?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        tools = app.executor.registry().tools().len(),
        startup_ms = started.elapsed().as_millis() as u64,
        "integrations-api listening"
    );
    axum::serve(listener, app.router).with_graceful_shutdown(shutdown_signal()).await.context("serving")?;
    tracing::info!("integrations-api stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received, draining requests");
}
