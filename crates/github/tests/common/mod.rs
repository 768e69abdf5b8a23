//! Shared set-up: the fake GitHub behind the harness, the provider in a registry, an executor.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use integration_core::{
    Connection, Executor, ExecutorConfig, InMemoryConnections, IntegrationError, Registry, ToolCall,
    ToolOutcome,
};
use integration_github::GitHub;
use integration_testkit::FakeServer;
use integration_testkit::github::{FakeGitHub, router};
use serde_json::{Value, json};

pub const TEST_APP_KEY: &str = include_str!("../fixtures/test-app-key.pem");

pub struct Env {
    pub gh: FakeGitHub,
    pub server: FakeServer,
    pub provider: GitHub,
    pub connections: Arc<InMemoryConnections>,
    pub executor: Executor,
}

pub fn config(timeout: Duration) -> ExecutorConfig {
    ExecutorConfig {
        timeout,
        max_retry_attempts: 3,
        rate_limit_per_minute: 10_000,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ExecutorConfig::default()
    }
}

pub async fn setup() -> Env {
    setup_with(config(Duration::from_secs(10))).await
}

pub async fn setup_with(config: ExecutorConfig) -> Env {
    let gh = FakeGitHub::demo();
    let server = FakeServer::start(router(gh.clone())).await.expect("fake github starts");
    let provider = GitHub::new();
    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(provider.clone())).expect("tools register");
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(token_connection("github", server.base_url(), FakeGitHub::TOKEN));
    let executor = Executor::new(registry, connections.clone(), config);
    Env { gh, server, provider, connections, executor }
}

pub fn token_connection(name: &str, api_url: &str, token: &str) -> Connection {
    Connection::new("github", name, json!({ "api_url": api_url })).with_secret("token", token)
}

pub fn app_connection(name: &str, api_url: &str, app_id: u64, installation_id: u64) -> Connection {
    Connection::new(
        "github",
        name,
        json!({ "api_url": api_url, "app_id": app_id, "installation_id": installation_id.to_string() }),
    )
    .with_secret("private_key", TEST_APP_KEY)
}

impl Env {
    pub async fn outcome(&self, tool: &str, params: Value, connection: Option<&str>) -> ToolOutcome {
        let mut call = ToolCall::new(tool, params);
        if let Some(c) = connection {
            call = call.connection(c);
        }
        self.executor.execute(call).await
    }

    pub async fn call(&self, tool: &str, params: Value) -> Result<Value, IntegrationError> {
        self.outcome(tool, params, None).await.result
    }

    pub async fn ok(&self, tool: &str, params: Value) -> Value {
        match self.call(tool, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{tool} {params} failed: {e} ({:?}, {:?})", e.kind(), e.details()),
        }
    }
}
