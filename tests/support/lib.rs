//! Helpers shared by the end-to-end tests: free ports, waiting for services, unique names.

use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A name unique to this process and call, for databases, schemas, queues and keys.
pub fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// Poll `url` until it answers 2xx or `timeout` passes.
pub async fn wait_healthy(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{url} did not become healthy within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL of the machine (trust auth), database `test`.
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Redis of the machine.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// A fresh PostgreSQL schema, dropped when this value is dropped.
pub struct PgSchema {
    name: String,
}

impl PgSchema {
    /// Create a schema with a unique name.
    pub async fn create() -> anyhow::Result<Self> {
        let name = unique("e2e");
        let pool = sqlx::PgPool::connect(PG_URL).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&pool).await?;
        pool.close().await;
        Ok(Self { name })
    }

    /// A `DATABASE_URL` whose connections use this schema.
    pub fn url(&self) -> String {
        format!("{PG_URL}?options[search_path]={}", self.name)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop on a fresh thread with its own runtime: Drop may run inside an async test.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(PG_URL).await;
                if let Ok(pool) = pool {
                    // A test's api may still hold a transaction on the schema's tables (its runtime is
                    // blocked in this drop): end those sessions first, or DROP would wait forever.
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                         JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                    )
                    .bind(&name)
                    .execute(&pool)
                    .await;
                    let _ = sqlx::query("SET lock_timeout = '10s'").execute(&pool).await;
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// An api served in-process on 127.0.0.1 (the binary's own `build`, so the same wiring).
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The application (router, executor, store).
    pub app: integrations_api::App,
    task: tokio::task::JoinHandle<()>,
    _data: Option<tempfile::TempDir>,
}

impl Api {
    /// Build and serve the api with these command-line options (`--data-dir` is added, a fresh
    /// temporary directory, unless given).
    pub async fn start(options: &[&str]) -> anyhow::Result<Self> {
        use clap::Parser as _;
        let data = tempfile::tempdir()?;
        let mut argv: Vec<String> = vec!["integrations-api".into()];
        argv.extend(options.iter().map(|s| s.to_string()));
        if !options.contains(&"--data-dir") {
            argv.push("--data-dir".into());
            argv.push(data.path().display().to_string());
        }
        argv.extend(["--log-level".to_owned(), "warn".to_owned()]);
        let cli = integrations_api::Cli::try_parse_from(argv)?;
        let app = integrations_api::build(&cli.serve).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let router = app.router.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { base, app, task, _data: Some(data) })
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON answer: status and body.
pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// Create an API key directly in the api's store and make the api see it at once; returns the key.
pub async fn create_api_key(api: &Api, name: &str, scopes: &[&str]) -> anyhow::Result<String> {
    use secrecy::ExposeSecret as _;
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    let (_, key) = api.app.store.api_keys().create(name, &scopes).await?;
    if let Some(auth) = &api.app.state.auth {
        auth.forget();
    }
    Ok(key.expose_secret().to_owned())
}

/// Every route template the api's router serves, read from the router's own route table (its
/// `Debug` form lists each path), so a route added tomorrow is found without editing a test.
pub fn router_paths(router: &axum::Router) -> Vec<String> {
    let debug = format!("{router:?}");
    // the routes proper, not the fallback router's catch-all
    let debug = debug.split("fallback_router").next().unwrap_or_default();
    let mut paths = std::collections::BTreeSet::new();
    let mut rest = debug;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at + "RouteId(".len()..];
        let Some(close) = rest.find("): \"") else { continue };
        let tail = &rest[close + 4..];
        let Some(end) = tail.find('"') else { break };
        let path = &tail[..end];
        if path.starts_with('/') && !path.contains("__private__") {
            paths.insert(path.to_owned());
        }
    }
    paths.into_iter().collect()
}

/// Delete the queues and exchanges of `topology` (a test's own, made with `Topology::prefixed`).
pub async fn delete_topology(amqp_url: &str, topology: &integration_bus::Topology) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(connection) = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for queue in [&topology.commands_queue, &topology.dead_letter_queue] {
            let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for exchange in
            [&topology.commands_exchange, &topology.events_exchange, &topology.dead_letter_exchange]
        {
            let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
}
