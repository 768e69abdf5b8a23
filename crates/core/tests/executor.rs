//! The execution pipeline, driven with test-only tools defined here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use integration_core::{
    Connection, ConnectionSettings, Effect, ErrorKind, Executor, ExecutorConfig, Health, InMemoryConnections,
    Integration, IntegrationError, IntegrationInfo, Method, Registry, RegistryError, Tool, ToolCall,
    ToolContext, ToolHints, ToolSpec, typed_tool,
};
use serde_json::{Value, json};

/// A tool that fails with the queued errors first, then succeeds; it counts its calls.
struct Scripted {
    spec: ToolSpec,
    errors: std::sync::Mutex<Vec<IntegrationError>>,
    calls: AtomicU32,
    sleep: Duration,
}

impl Scripted {
    fn new(name: &str, hints: ToolHints, errors: Vec<IntegrationError>) -> Arc<Self> {
        Self::with_sleep(name, hints, errors, Duration::ZERO)
    }

    fn with_sleep(
        name: &str,
        hints: ToolHints,
        mut errors: Vec<IntegrationError>,
        sleep: Duration,
    ) -> Arc<Self> {
        errors.reverse();
        let spec = ToolSpec::new(name, "test", "scripted test tool").hints(hints).parameters(json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 0}, "s": {"type": "string"}},
            "additionalProperties": false
        }));
        Arc::new(Self { spec, errors: std::sync::Mutex::new(errors), calls: AtomicU32::new(0), sleep })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Tool for Scripted {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &ToolContext, _params: Value) -> Result<Value, IntegrationError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        let next = self.errors.lock().expect("lock").pop();
        match next {
            Some(error) => Err(error),
            None => Ok(json!({"attempt": ctx.attempt})),
        }
    }
}

struct TestIntegration {
    tools: Vec<Arc<dyn Tool>>,
}

#[async_trait]
impl Integration for TestIntegration {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: "test".into(),
            display_name: "Test".into(),
            description: "tools defined by the tests".into(),
            config_schema: json!({"type": "object"}),
            env_vars: vec![],
        }
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.tools.clone()
    }

    async fn check(&self, _connection: &Connection) -> Result<Health, IntegrationError> {
        Ok(Health { identity: None, details: json!({}) })
    }
}

fn config() -> ExecutorConfig {
    ExecutorConfig {
        timeout: Duration::from_secs(5),
        max_retry_attempts: 3,
        rate_limit_per_minute: 100_000,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        ..ExecutorConfig::default()
    }
}

fn executor_with(
    tools: Vec<Arc<dyn Tool>>,
    settings: ConnectionSettings,
    config: ExecutorConfig,
) -> Executor {
    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(TestIntegration { tools })).expect("registers");
    let connections = Arc::new(InMemoryConnections::new());
    let mut connection = Connection::new("test", "test", json!({}));
    connection.settings = settings;
    connections.insert(connection);
    Executor::new(registry, connections, config)
}

fn executor(tool: Arc<Scripted>) -> Executor {
    executor_with(vec![tool], ConnectionSettings::default(), config())
}

fn rate_limited(after: Option<Duration>) -> IntegrationError {
    IntegrationError::new(ErrorKind::RateLimited { retry_after: after }, "test", "slow down")
}

fn server_error() -> IntegrationError {
    IntegrationError::new(ErrorKind::Upstream { status: Some(502) }, "test", "bad gateway")
}

#[tokio::test]
async fn validation_lists_every_violation_and_never_calls_the_tool() {
    let tool = Scripted::new("t_read", ToolHints::read_only(), vec![]);
    let exec = executor(tool.clone());
    let outcome = exec.execute(ToolCall::new("t_read", json!({"n": -1, "s": 7, "extra": true}))).await;
    let error = outcome.result.expect_err("invalid");
    assert_eq!(error.kind(), &ErrorKind::InvalidInput);
    let violations = error.details().expect("details")["violations"].as_array().expect("array").clone();
    let pointers: Vec<&str> = violations.iter().filter_map(|v| v["pointer"].as_str()).collect();
    assert!(pointers.contains(&"/n"), "{violations:?}");
    assert!(pointers.contains(&"/s"), "{violations:?}");
    assert_eq!(violations.len(), 3, "two bad values and one unknown property: {violations:?}");
    assert_eq!(tool.calls(), 0);
    assert_eq!(outcome.attempts, 0);
}

#[tokio::test]
async fn unknown_tool_and_unknown_connection_are_classified() {
    let tool = Scripted::new("t_read", ToolHints::read_only(), vec![]);
    let exec = executor(tool.clone());
    let outcome = exec.execute(ToolCall::new("nope", json!({}))).await;
    assert_eq!(outcome.result.expect_err("unknown").kind(), &ErrorKind::NotFound);
    let outcome = exec.execute(ToolCall::new("t_read", json!({})).connection("ghost")).await;
    assert_eq!(outcome.result.expect_err("no connection").kind(), &ErrorKind::Configuration);
    assert_eq!(tool.calls(), 0);
}

/// Records the label sets of the counters and histograms registered through it.
#[derive(Default)]
struct LabelSets(std::sync::Mutex<Vec<String>>);

impl LabelSets {
    fn push(&self, key: &metrics::Key) {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        self.0.lock().expect("lock").push(format!("{}{{{}}}", key.name(), labels.join(",")));
    }
}

impl metrics::Recorder for LabelSets {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        self.push(key);
        metrics::Counter::noop()
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        self.push(key);
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        self.push(key);
        metrics::Histogram::noop()
    }
}

#[test]
fn made_up_tool_and_connection_names_never_become_metric_labels() {
    // Every front door passes the caller's names through: as labels they would add one series to
    // `/metrics` per made-up name.
    let recorder = LabelSets::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let tool = Scripted::new("t_read", ToolHints::read_only(), vec![]);
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let exec = executor(tool.clone());
            let made_up = exec.execute(ToolCall::new("made_up_tool_4711", json!({}))).await;
            assert_eq!(made_up.result.expect_err("unknown").kind(), &ErrorKind::NotFound);
            let ghost = exec.execute(ToolCall::new("t_read", json!({})).connection("ghost_4711")).await;
            assert_eq!(ghost.result.expect_err("no connection").kind(), &ErrorKind::Configuration);
            assert_eq!(ghost.connection.as_deref(), Some("ghost_4711"), "the outcome still names it");
            let ok = exec.execute(ToolCall::new("t_read", json!({}))).await;
            assert!(ok.result.is_ok(), "{:?}", ok.result);
        })
    });
    let sets = recorder.0.lock().expect("lock").clone();
    assert!(sets.iter().all(|s| !s.contains("4711")), "{sets:#?}");
    let calls: Vec<&String> =
        sets.iter().filter(|s| s.starts_with("integration_tool_calls_total{")).collect();
    assert_eq!(calls.len(), 3, "{sets:#?}");
    assert!(calls[0].contains("tool=(unknown)") && calls[0].contains("connection=,"), "{}", calls[0]);
    assert!(calls[1].contains("tool=t_read") && calls[1].contains("connection=(unknown)"), "{}", calls[1]);
    assert!(calls[2].contains("tool=t_read") && calls[2].contains("connection=test"), "{}", calls[2]);
    assert!(calls[2].contains("outcome=success"), "{}", calls[2]);
}

#[tokio::test]
async fn rate_limited_calls_are_retried_even_when_not_idempotent() {
    let tool = Scripted::new("t_create", ToolHints::write(), vec![rate_limited(None), rate_limited(None)]);
    let exec = executor(tool.clone());
    let outcome = exec.execute(ToolCall::new("t_create", json!({}))).await;
    assert_eq!(outcome.result.expect("succeeds")["attempt"], 3);
    assert_eq!(tool.calls(), 3);
    assert_eq!(outcome.attempts, 3);
}

#[tokio::test]
async fn connect_failures_are_retried_for_any_tool() {
    let tool =
        Scripted::new("t_create", ToolHints::write(), vec![IntegrationError::connect("test", "refused")]);
    let exec = executor(tool.clone());
    assert!(exec.execute(ToolCall::new("t_create", json!({}))).await.result.is_ok());
    assert_eq!(tool.calls(), 2);
}

#[tokio::test]
async fn errors_that_may_have_acted_are_retried_only_for_idempotent_tools() {
    let create = Scripted::new("t_create", ToolHints::write(), vec![server_error()]);
    let exec = executor(create.clone());
    let outcome = exec.execute(ToolCall::new("t_create", json!({}))).await;
    let error = outcome.result.expect_err("not retried");
    assert_eq!(error.kind(), &ErrorKind::Upstream { status: Some(502) });
    assert_eq!(error.effect(), Effect::Unknown);
    assert_eq!(create.calls(), 1, "a create that may have happened is never repeated");

    let update = Scripted::new("t_update", ToolHints::idempotent_write(), vec![server_error()]);
    let exec = executor(update.clone());
    assert!(exec.execute(ToolCall::new("t_update", json!({}))).await.result.is_ok());
    assert_eq!(update.calls(), 2);
}

#[tokio::test]
async fn final_errors_get_exactly_one_attempt() {
    for kind in [
        ErrorKind::InvalidInput,
        ErrorKind::Authentication,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Permission,
    ] {
        let tool = Scripted::new(
            "t_read",
            ToolHints::read_only(),
            vec![IntegrationError::new(kind.clone(), "test", "no")],
        );
        let exec = executor(tool.clone());
        let outcome = exec.execute(ToolCall::new("t_read", json!({}))).await;
        assert_eq!(outcome.result.expect_err("fails").kind(), &kind);
        assert_eq!(tool.calls(), 1, "{kind:?}");
    }
}

#[tokio::test]
async fn retries_stop_at_the_configured_maximum() {
    let tool = Scripted::new("t_read", ToolHints::read_only(), (0..10).map(|_| server_error()).collect());
    let exec = executor(tool.clone());
    let outcome = exec.execute(ToolCall::new("t_read", json!({}))).await;
    assert!(outcome.result.is_err());
    assert_eq!(tool.calls(), 4, "one attempt plus MAX_RETRY_ATTEMPTS=3 retries");

    let tool = Scripted::new("t_read", ToolHints::read_only(), (0..10).map(|_| server_error()).collect());
    let settings = ConnectionSettings { max_retry_attempts: Some(1), ..Default::default() };
    let exec = executor_with(vec![tool.clone()], settings, config());
    assert!(exec.execute(ToolCall::new("t_read", json!({}))).await.result.is_err());
    assert_eq!(tool.calls(), 2, "the connection's own setting wins");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let tool =
        Scripted::new("t_read", ToolHints::read_only(), vec![rate_limited(Some(Duration::from_millis(300)))]);
    let exec = executor(tool.clone());
    let started = Instant::now();
    assert!(exec.execute(ToolCall::new("t_read", json!({}))).await.result.is_ok());
    assert!(started.elapsed() >= Duration::from_millis(300), "slept {:?}", started.elapsed());
    assert_eq!(tool.calls(), 2);
}

#[tokio::test]
async fn never_sleeps_past_the_deadline() {
    let tool =
        Scripted::new("t_read", ToolHints::read_only(), vec![rate_limited(Some(Duration::from_secs(60)))]);
    let settings = ConnectionSettings { timeout: Some(Duration::from_secs(2)), ..Default::default() };
    let exec = executor_with(vec![tool.clone()], settings, config());
    let started = Instant::now();
    let outcome = exec.execute(ToolCall::new("t_read", json!({}))).await;
    let error = outcome.result.expect_err("gives up");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)), "the caller learns when to come back");
    assert!(started.elapsed() < Duration::from_secs(1), "returned at once, took {:?}", started.elapsed());
    assert_eq!(tool.calls(), 1);
}

#[tokio::test]
async fn a_slow_tool_times_out_at_the_deadline() {
    let tool = Scripted::with_sleep("t_slow", ToolHints::write(), vec![], Duration::from_secs(10));
    let settings = ConnectionSettings { timeout: Some(Duration::from_millis(300)), ..Default::default() };
    let exec = executor_with(vec![tool.clone()], settings, config());
    let started = Instant::now();
    let outcome = exec.execute(ToolCall::new("t_slow", json!({}))).await;
    assert_eq!(outcome.result.expect_err("times out").kind(), &ErrorKind::Timeout);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(tool.calls(), 1, "a timed-out create is not repeated");
}

#[tokio::test]
async fn rate_limit_holds_under_concurrency() {
    // 120 per minute: a burst of 120, then one every 500 ms.
    let tool = Scripted::new("t_read", ToolHints::read_only(), vec![]);
    let settings = ConnectionSettings {
        rate_limit_per_minute: Some(120),
        timeout: Some(Duration::from_millis(1200)),
        max_retry_attempts: Some(0),
    };
    let exec = executor_with(vec![tool.clone()], settings, config());
    let started = Instant::now();
    let tasks: Vec<_> = (0..160)
        .map(|_| {
            let exec = exec.clone();
            tokio::spawn(async move { exec.execute(ToolCall::new("t_read", json!({}))).await })
        })
        .collect();
    let mut admitted = 0;
    let mut limited = 0;
    let mut waited = 0;
    for task in tasks {
        let outcome = task.await.expect("task");
        match outcome.result {
            Ok(_) => admitted += 1,
            Err(e) => {
                assert!(matches!(e.kind(), ErrorKind::RateLimited { retry_after: Some(_) }), "{e:?}");
                limited += 1;
            }
        }
        if !outcome.rate_limit_wait.is_zero() {
            waited += 1;
        }
    }
    let elapsed = started.elapsed();
    let allowed = 120 + (elapsed.as_millis() / 500) as u32 + 1;
    assert!(admitted >= 120, "the burst is admitted: {admitted}");
    assert!(admitted <= allowed, "admitted {admitted} in {elapsed:?}, at most {allowed}");
    assert_eq!(admitted + limited, 160);
    assert!(waited >= 1, "some calls waited for a permit within their deadline");
    assert_eq!(tool.calls(), admitted);
}

#[tokio::test]
async fn a_permit_is_waited_for_only_when_the_call_keeps_time_to_finish() {
    // 30 per minute: a burst of 30, then one every 2 s; a 2.5 s deadline; a tool that takes 500 ms.
    let fast = Scripted::new("t_fast", ToolHints::read_only(), vec![]);
    let slow = Scripted::with_sleep("t_slow", ToolHints::write(), vec![], Duration::from_millis(500));
    let settings = ConnectionSettings {
        rate_limit_per_minute: Some(30),
        timeout: Some(Duration::from_millis(2500)),
        max_retry_attempts: Some(0),
    };
    let exec = executor_with(vec![fast.clone(), slow.clone()], settings, config());
    let drain = Instant::now();
    for _ in 0..30 {
        exec.execute(ToolCall::new("t_fast", json!({}))).await.result.expect("the burst is admitted");
    }
    let drained = drain.elapsed();
    assert!(drained < Duration::from_millis(700), "the margins below assume a quick burst: {drained:?}");

    // The next permit is ~2 s away: waiting would leave the call ~0.5 s, less than the wait, so it
    // is refused now (not started late and timed out: a create with an unknown effect).
    let started = Instant::now();
    let outcome = exec.execute(ToolCall::new("t_slow", json!({}))).await;
    let error = outcome.result.expect_err("refused");
    let retry_after = error.retry_after().expect("the caller learns when to come back");
    assert!(matches!(error.kind(), ErrorKind::RateLimited { .. }), "{error:?}");
    assert!(
        retry_after > Duration::from_millis(1200) && retry_after <= Duration::from_secs(2),
        "{retry_after:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(500), "refused at once, took {:?}", started.elapsed());
    assert_eq!(slow.calls(), 0, "the upstream was not called");

    // A second later the permit is under 1 s away: the wait leaves the call more than itself, so it
    // is taken, and the call finishes inside the deadline.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcome = exec.execute(ToolCall::new("t_slow", json!({}))).await;
    outcome.result.expect("waited for the permit, then called");
    assert!(
        !outcome.rate_limit_wait.is_zero() && outcome.rate_limit_wait < Duration::from_millis(1250),
        "waited {:?}",
        outcome.rate_limit_wait
    );
    assert_eq!(slow.calls(), 1);
}

#[tokio::test]
async fn typed_tools_validate_from_their_rust_types() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Params {
        project_name: String,
        limit: Option<u32>,
    }
    let tool =
        typed_tool(ToolSpec::new("t_typed", "test", "typed"), |_ctx: ToolContext, p: Params| async move {
            Ok::<_, IntegrationError>(json!({"name": p.project_name, "limit": p.limit}))
        });
    let exec = executor_with(vec![tool], ConnectionSettings::default(), config());
    let ok = exec.execute(ToolCall::new("t_typed", json!({"project_name": "Apollo", "limit": 3}))).await;
    assert_eq!(ok.result.expect("ok"), json!({"name": "Apollo", "limit": 3}));
    let bad = exec.execute(ToolCall::new("t_typed", json!({"limit": "x"}))).await;
    let error = bad.result.expect_err("invalid");
    assert_eq!(error.kind(), &ErrorKind::InvalidInput);
    assert_eq!(error.details().expect("details")["violations"].as_array().expect("array").len(), 2);
}

#[test]
fn duplicate_names_and_ambiguous_routes_are_refused() {
    let make = |name: &str, path: &str, required: &[&str]| -> Arc<dyn Tool> {
        let mut props = serde_json::Map::new();
        for r in ["a", "b"] {
            props.insert(r.to_owned(), json!({"type": "string"}));
        }
        Scripted::spec_only(
            name,
            Method::Get,
            path,
            json!({"type": "object", "properties": props, "required": required}),
        )
    };
    let registry = Registry::new();
    let ok = TestIntegration {
        tools: vec![
            make("x_list", "/p", &[]),
            make("x_find", "/p", &["a"]),
            make("x_both", "/p", &["a", "b"]),
        ],
    };
    registry.add(Arc::new(ok)).expect("a chain of required sets is unambiguous");
    let routes = registry.routes();
    let order: Vec<String> =
        routes[&(Method::Get, "/p".to_owned())].iter().map(|t| t.spec().name.clone()).collect();
    assert_eq!(order, ["x_both", "x_find", "x_list"], "most specific first");

    let registry = Registry::new();
    let bad = TestIntegration { tools: vec![make("y_a", "/q", &["a"]), make("y_b", "/q", &["b"])] };
    assert!(matches!(registry.add(Arc::new(bad)), Err(RegistryError::AmbiguousRoute { .. })));
    assert!(registry.tools().is_empty(), "nothing registered on error");

    let registry = Registry::new();
    let dup = TestIntegration { tools: vec![make("z", "/r", &[]), make("z", "/s", &[])] };
    assert!(matches!(registry.add(Arc::new(dup)), Err(RegistryError::DuplicateTool(_))));

    let registry = Registry::new();
    let path = TestIntegration { tools: vec![make("w", "/t/{missing}", &[])] };
    assert!(matches!(registry.add(Arc::new(path)), Err(RegistryError::UnknownPathParam { .. })));
}

impl Scripted {
    fn spec_only(name: &str, method: Method, path: &str, schema: Value) -> Arc<dyn Tool> {
        let spec = ToolSpec::new(name, "test", "route test").parameters(schema).route(method, path);
        Arc::new(Self {
            spec,
            errors: std::sync::Mutex::new(vec![]),
            calls: AtomicU32::new(0),
            sleep: Duration::ZERO,
        })
    }
}

#[tokio::test]
async fn an_open_circuit_fails_fast_without_reaching_the_upstream_then_probes() {
    let failures: Vec<IntegrationError> =
        (0..8).map(|_| IntegrationError::connect("test", "refused")).collect();
    let tool = Scripted::new("t_read", ToolHints::read_only(), failures);
    let config = ExecutorConfig {
        max_retry_attempts: 0,
        breaker: integration_core::BreakerConfig { threshold: 3, cool_down: Duration::from_millis(300) },
        ..config()
    };
    let exec = executor_with(vec![tool.clone()], ConnectionSettings::default(), config);
    for _ in 0..3 {
        let outcome = exec.execute(ToolCall::new("t_read", json!({}))).await;
        assert_eq!(outcome.result.expect_err("down").kind(), &ErrorKind::Network);
    }
    assert_eq!(tool.calls(), 3);
    for _ in 0..20 {
        let outcome = exec.execute(ToolCall::new("t_read", json!({}))).await;
        let error = outcome.result.expect_err("open");
        assert!(matches!(error.kind(), ErrorKind::CircuitOpen { retry_after: Some(_) }), "{error:?}");
        assert!(error.retryable());
    }
    assert_eq!(tool.calls(), 3, "an open circuit does not reach the upstream");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let probe = exec.execute(ToolCall::new("t_read", json!({}))).await;
    assert_eq!(probe.result.expect_err("still down").kind(), &ErrorKind::Network);
    assert_eq!(tool.calls(), 4, "one probe went through after the cool-down");
    let outcome = exec.execute(ToolCall::new("t_read", json!({}))).await;
    assert!(matches!(outcome.result.expect_err("reopened").kind(), ErrorKind::CircuitOpen { .. }));
    assert_eq!(tool.calls(), 4);
}

#[test]
fn a_routes_read_only_answer_follows_the_tools_registered() {
    let tool = |name: &str, method: Method, path: &str, hints: ToolHints| -> Arc<dyn Tool> {
        typed_tool(
            ToolSpec::new(name, "test", "route").hints(hints).route(method, path),
            |_ctx: ToolContext, _p: serde_json::Map<String, Value>| async move {
                Ok::<_, IntegrationError>(json!({}))
            },
        )
    };
    let registry = Registry::new();
    registry.add_tool(tool("r_list", Method::Get, "/things", ToolHints::read_only())).expect("list");
    registry.add_tool(tool("r_create", Method::Post, "/things", ToolHints::write())).expect("create");
    assert_eq!(registry.route_read_only("GET", "/things"), Some(true));
    assert_eq!(registry.route_read_only("POST", "/things"), Some(false));
    assert_eq!(registry.route_read_only("DELETE", "/things"), None);
    assert_eq!(registry.route_read_only("GET", "/other"), None);
    // A writing tool on the same route makes the route need write access.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Touch {
        #[allow(dead_code)]
        id: String,
    }
    let touch = typed_tool(
        ToolSpec::new("r_touch", "test", "route").hints(ToolHints::write()).route(Method::Get, "/things"),
        |_ctx: ToolContext, _p: Touch| async move { Ok::<_, IntegrationError>(json!({})) },
    );
    registry.upsert_tool(touch).expect("touch");
    assert_eq!(registry.route_read_only("GET", "/things"), Some(false));
    assert!(registry.remove_tool("r_touch"));
    assert_eq!(registry.route_read_only("GET", "/things"), Some(true));
    // Tools the filter removes take their routes with them.
    let removed = registry.set_filter(Arc::new(|spec: &ToolSpec| spec.hints.read_only));
    assert_eq!(removed, ["r_create"]);
    assert_eq!(registry.route_read_only("POST", "/things"), None);
    assert_eq!(registry.route_read_only("GET", "/things"), Some(true));
}

#[test]
fn watchers_see_every_change_of_the_tool_set_and_nothing_else() {
    let tool = |name: &str| -> Arc<dyn Tool> {
        typed_tool(
            ToolSpec::new(name, "test", "watched"),
            |_ctx: ToolContext, _p: serde_json::Map<String, Value>| async move {
                Ok::<_, IntegrationError>(json!({}))
            },
        )
    };
    let registry = Registry::new();
    let mut watch = registry.watch();
    let mut changed = || {
        let seen = watch.has_changed().expect("the registry is alive");
        watch.mark_unchanged();
        seen
    };
    assert!(!changed(), "nothing yet");
    registry.add_tool(tool("w_one")).expect("add");
    assert!(changed(), "added");
    registry.upsert_tool(tool("w_one")).expect("replace");
    assert!(changed(), "replaced (its definition may differ)");
    assert!(registry.add_tool(tool("w_one")).is_err(), "a duplicate is refused");
    assert!(!changed(), "a refused change is no change");
    assert!(!registry.remove_tool("w_absent"));
    assert!(!changed(), "removing what is not there");
    assert!(registry.remove_tool("w_one"));
    assert!(changed(), "removed");
    registry.add_tool(tool("w_two")).expect("add");
    assert!(changed());
    assert_eq!(registry.set_filter(Arc::new(|spec: &ToolSpec| spec.name != "w_two")), ["w_two"]);
    assert!(changed(), "filtered out");
    registry.add_tool(tool("w_two")).expect("left out by the filter");
    assert!(!changed(), "a tool the filter leaves out changes nothing");
    assert!(registry.get("w_two").is_none());
}

#[test]
fn tools_upserted_together_get_their_own_answers_in_one_change() {
    struct Fixed(ToolSpec);
    #[async_trait]
    impl Tool for Fixed {
        fn spec(&self) -> &ToolSpec {
            &self.0
        }
        async fn call(&self, _ctx: &ToolContext, _params: Value) -> Result<Value, IntegrationError> {
            Ok(Value::Null)
        }
    }
    let plain = |name: &str, description: &str, route: Option<&str>| -> Arc<dyn Tool> {
        let mut spec = ToolSpec::new(name, "test", description);
        if let Some(path) = route {
            spec = spec.route(Method::Get, path);
        }
        typed_tool(spec, |_ctx: ToolContext, _p: serde_json::Map<String, Value>| async move {
            Ok::<_, IntegrationError>(json!({}))
        })
    };
    let invalid = |name: &str| -> Arc<dyn Tool> {
        Arc::new(Fixed(ToolSpec::new(name, "test", "bad schema").parameters(json!({"type": 12}))))
    };
    let description =
        |registry: &Registry, name: &str| registry.get(name).map(|t| t.spec().description.clone());
    let registry = Registry::new();
    registry.add_tool(plain("u_old", "first", None)).expect("add");
    let mut watch = registry.watch();
    let before = *watch.borrow_and_update();

    let results = registry.upsert_tools(vec![
        plain("u_new", "new", None),
        plain("u_old", "second", None),
        invalid("u_bad"),
    ]);
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(matches!(results[2], Err(RegistryError::InvalidSchema { .. })), "{results:?}");
    assert_eq!(*watch.borrow_and_update(), before.wrapping_add(1), "one change for the lot");
    assert_eq!(description(&registry, "u_old").as_deref(), Some("second"));
    assert_eq!(description(&registry, "u_new").as_deref(), Some("new"));
    assert!(registry.get("u_bad").is_none());

    // a refused replacement leaves the tool of its name as it was; nothing changed, nobody is told
    assert!(registry.upsert_tools(vec![invalid("u_old")])[0].is_err());
    assert_eq!(description(&registry, "u_old").as_deref(), Some("second"));
    assert!(!watch.has_changed().expect("alive"));

    // a route made ambiguous refuses only the tool that makes it
    registry.add_tool(plain("u_r1", "routed", Some("/same"))).expect("routed");
    let results =
        registry.upsert_tools(vec![plain("u_x", "x", None), plain("u_r2", "routed too", Some("/same"))]);
    assert!(results[0].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(RegistryError::AmbiguousRoute { .. })), "{results:?}");
    assert!(
        registry.get("u_x").is_some() && registry.get("u_r1").is_some() && registry.get("u_r2").is_none()
    );
}

/// A tool with a bug: it panics, quoting its parameter.
struct Panicking {
    spec: ToolSpec,
}

#[async_trait]
impl Tool for Panicking {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _ctx: &ToolContext, params: Value) -> Result<Value, IntegrationError> {
        tokio::task::yield_now().await;
        panic!("bug in the tool, holding {}", params["s"]);
    }
}

#[tokio::test]
async fn a_panicking_tool_fails_its_call_as_internal_and_the_executor_goes_on() {
    let panicking = Arc::new(Panicking {
        spec: ToolSpec::new("t_panics", "test", "panics").hints(ToolHints::read_only()).parameters(json!({
            "type": "object", "properties": {"s": {"type": "string"}}
        })),
    });
    let read = Scripted::new("t_read", ToolHints::read_only(), vec![]);
    let exec = executor_with(vec![panicking, read.clone()], ConnectionSettings::default(), config());
    for _ in 0..2 {
        let outcome = exec.execute(ToolCall::new("t_panics", json!({"s": "canary-data"}))).await;
        let error = outcome.result.expect_err("a panic is an error");
        assert_eq!(error.kind(), &ErrorKind::Internal);
        assert!(!error.retryable());
        assert_eq!(error.effect(), Effect::Unknown);
        assert!(error.message().contains("t_panics"), "{error}");
        assert!(
            !error.to_string().contains("canary-data"),
            "the panic's message is not the caller's: {error}"
        );
    }
    let outcome = exec.execute(ToolCall::new("t_read", json!({}))).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(read.calls(), 1);
}
