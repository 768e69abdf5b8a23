//! Every log line of a configure + call + status + failure + rotation cycle, at TRACE level
//! (sqlx's query logs included), is captured; the secret appears nowhere. Also: Redis outages
//! warn once, not per call.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use common::{Kind, TestDb, jira_info};
use integration_core::{
    Cache, ConnectionResolver, ErrorKind, Executor, ExecutorConfig, IntegrationError, Registry, Source, Tool,
    ToolCall, ToolContext, ToolSpec,
};
use integration_store::{MasterKey, StoreConnections};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const TOKEN: &str = "tok-LEAK-CANARY-5b1c2d3e";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

fn logs() -> &'static Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buffer
    })
}

/// A tool that logs its whole context and connection (as a careless provider might) and fails
/// on request with an upstream error.
struct WhoAmI {
    spec: ToolSpec,
}

#[async_trait]
impl Tool for WhoAmI {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &ToolContext, params: Value) -> Result<Value, IntegrationError> {
        tracing::info!(?ctx, connection = ?ctx.connection, "whoami called");
        if params.get("fail").is_some() {
            return Err(IntegrationError::new(ErrorKind::Authentication, "jira", "the upstream said 401"));
        }
        let user = ctx.connection.require_config("username")?;
        // the tool uses the secret, as a provider does to build its client
        let token_len = ctx.connection.secret("api_token").map(|s| s.expose_secret().len()).unwrap_or(0);
        Ok(json!({"user": user, "token_len": token_len}))
    }
}

async fn cycle(db: Arc<TestDb>) {
    let store = db.open().await;
    let conns = Arc::new(StoreConnections::new(store.clone(), vec![]).with_ttl(Duration::ZERO));
    let registry = Arc::new(Registry::new());
    registry
        .add_tool(Arc::new(WhoAmI { spec: ToolSpec::new("jira_whoami", "jira", "Who am I") }))
        .expect("tool");
    let executor = Executor::new(registry, conns.clone(), ExecutorConfig::default())
        .with_observer(Arc::new(store.clone()));

    let body = json!({"base_url": "https://acme.atlassian.net", "username": "bot", "api_token": TOKEN});
    let saved = conns.configure(&jira_info(), "jira", &body).await.expect("configure");
    tracing::info!(?saved, "configured");

    let ok = executor.execute(ToolCall::new("jira_whoami", json!({})).source(Source::Rest)).await;
    assert_eq!(ok.result.as_ref().ok().and_then(|v| v["token_len"].as_u64()), Some(TOKEN.len() as u64));
    let failed =
        executor.execute(ToolCall::new("jira_whoami", json!({"fail": true})).source(Source::Bus)).await;
    tracing::info!(outcome = ?failed, "failed call");
    let resolved = conns.resolve("jira").await.expect("resolve");
    tracing::debug!(?resolved, "resolved");
    let status = conns.status("jira").await.expect("status");
    tracing::info!(status = %serde_json::to_string(&status).expect("json"), "status");

    // a corrupted row (as if saved so by another replica): the error paths log too
    db.exec(
        "UPDATE connections SET credentials = $1, revision = revision + 1 WHERE name = 'jira'".into(),
        Some(vec![1; 40]),
    )
    .await;
    let err = conns.resolve("jira").await.expect_err("corrupted");
    tracing::error!(%err, ?err, "resolve failed");
    let err = executor.execute(ToolCall::new("jira_whoami", json!({}))).await;
    tracing::error!(outcome = ?err, "call failed");

    // reconfigure and rotate: both log
    conns.configure(&jira_info(), "jira", &body).await.expect("configure");
    let new_key = common::random_key();
    let new_key = MasterKey::from_base64(&SecretString::from(new_key)).expect("key");
    let report = store.rotate_master_key(&[], &new_key).await.expect("rotate");
    tracing::info!(?report, "rotated");
    tokio::time::sleep(Duration::from_millis(300)).await; // audit rows are written off the call path
    let counts = store.call_counts("jira", Duration::from_secs(60)).await.expect("counts");
    assert!(counts.calls >= 2, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_line() {
    let logs = logs();
    common::run(Kind::Sqlite, cycle).await;
    common::run(Kind::Postgres, cycle).await;
    let text = logs.text();
    for expected in
        ["connection saved", "whoami called", "tool call failed", "cannot be decrypted", "rotation"]
    {
        assert!(text.contains(expected), "the capture works: '{expected}' missing from\n{text}");
    }
    assert!(text.contains("INSERT INTO connections"), "sqlx query logs are captured too");
    assert!(!text.contains(TOKEN), "the secret leaked into the logs:\n{text}");
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, TOKEN);
    assert!(!text.contains(&encoded), "the secret leaked base64-encoded");
}

#[tokio::test]
async fn redis_outage_warns_once_not_per_call() {
    let logs = logs();
    let cache = integration_store::redis::RedisCache::from_url("redis://127.0.0.1:1").expect("url");
    for _ in 0..3 {
        for _ in 0..20 {
            cache.set("k", b"v".to_vec(), Duration::from_secs(60)).await;
            assert_eq!(cache.get("k").await, None);
        }
        // let the breaker close again so Redis is retried (and fails) several times
        tokio::time::sleep(integration_store::redis::RETRY_AFTER_FAILURE + Duration::from_millis(100)).await;
    }
    let warnings = logs.text().matches("redis is unreachable").count();
    assert_eq!(warnings, 1, "one warning per outage");
}
