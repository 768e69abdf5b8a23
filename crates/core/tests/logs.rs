//! What the executor writes to the log. A test binary of its own: tracing caches per call site
//! whether anyone listens, and tests running beside this one without a subscriber would race it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use integration_core::{
    Connection, Executor, ExecutorConfig, Health, InMemoryConnections, Integration, IntegrationError,
    IntegrationInfo, Registry, Tool, ToolCall, ToolContext, ToolSpec, typed_tool,
};
use serde_json::{Value, json};

/// One tool, `t_read`, that answers "not found".
struct Failing;

#[async_trait]
impl Integration for Failing {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: "test".into(),
            display_name: "Test".into(),
            description: "a tool that fails".into(),
            config_schema: json!({"type": "object"}),
            env_vars: vec![],
        }
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        #[derive(serde::Deserialize, schemars::JsonSchema)]
        struct NoParams {}
        vec![typed_tool(ToolSpec::new("t_read", "test", "fails"), |_ctx: ToolContext, _p: NoParams| async {
            Err::<Value, _>(IntegrationError::not_found("test", "gone"))
        })]
    }

    async fn check(&self, _connection: &Connection) -> Result<Health, IntegrationError> {
        Ok(Health { identity: None, details: json!({}) })
    }
}

/// A `Write` into a shared buffer, for capturing log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_call_logs_its_attempts_and_outcome_with_the_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(Failing)).expect("registers");
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(Connection::new("test", "test", json!({})));
    let executor = Executor::new(registry, connections, ExecutorConfig::default());
    let outcome = executor.execute(ToolCall::new("t_read", json!({}))).await;
    assert!(outcome.result.is_err());
    let text =
        String::from_utf8(captured.0.lock().unwrap_or_else(|e| e.into_inner()).clone()).expect("utf-8");
    let line: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "tool call failed")
        .unwrap_or_else(|| panic!("no failure line in\n{text}"));
    assert_eq!(line["span"]["tool"], "t_read", "{line}");
    assert_eq!(line["span"]["attempts"], 1, "{line}");
    assert_eq!(line["span"]["outcome"], "failure", "{line}");
}
