//! The worker against the real RabbitMQ at 127.0.0.1:5672, with test-only tools defined here.
//! Every test uses its own uniquely named exchanges and queues and deletes them afterwards.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use integration_bus::{
    Begin, BusError, Event, MemoryOutcomes, OutcomeStore, Publisher, Status, Topology, Worker, WorkerConfig,
};
use integration_core::{
    Connection, ErrorKind, Executor, ExecutorConfig, Health, InMemoryConnections, Integration,
    IntegrationError, IntegrationInfo, Registry, Tool, ToolContext, ToolHints, ToolSpec, typed_tool,
};
use integration_testkit::FaultProxy;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, ConnectionProperties};
use serde_json::{Value, json};
use tokio::sync::watch;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoParams {
    text: String,
}

struct TestTools {
    calls: Arc<AtomicU32>,
}

#[async_trait]
impl Integration for TestTools {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: "test".into(),
            display_name: "Test".into(),
            description: "bus test tools".into(),
            config_schema: json!({"type": "object"}),
            env_vars: vec![],
        }
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let calls = self.calls.clone();
        let calls2 = self.calls.clone();
        vec![
            typed_tool(
                ToolSpec::new("test_echo", "test", "Echo").hints(ToolHints::write()),
                move |_c: ToolContext, p: EchoParams| {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, IntegrationError>(json!({"echo": p.text}))
                    }
                },
            ),
            typed_tool(
                ToolSpec::new("test_big", "test", "A large result"),
                |_c: ToolContext, _p: Value| async move {
                    Ok::<_, IntegrationError>(
                        json!({"items": (0..5000).map(|i| format!("item number {i}")).collect::<Vec<_>>()}),
                    )
                },
            ),
            typed_tool(
                ToolSpec::new("test_missing", "test", "Always not found"),
                move |_c: ToolContext, _p: Value| {
                    let calls = calls2.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Err::<Value, _>(IntegrationError::not_found("test", "no such thing"))
                    }
                },
            ),
        ]
    }

    async fn check(&self, _c: &Connection) -> Result<Health, IntegrationError> {
        Ok(Health { identity: None, details: json!({}) })
    }
}

fn executor(calls: Arc<AtomicU32>) -> Executor {
    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(TestTools { calls })).expect("registers");
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(Connection::new("test", "test", json!({})));
    Executor::new(
        registry,
        connections,
        ExecutorConfig {
            backoff_base: Duration::from_millis(5),
            rate_limit_per_minute: 1_000_000,
            ..Default::default()
        },
    )
}

struct Bus {
    topology: Topology,
    connection: lapin::Connection,
    publisher: Publisher,
    events: lapin::Consumer,
    channel: Channel,
    events_queue: String,
}

impl Bus {
    async fn new(delivery_limit: u32) -> Self {
        let prefix = format!("test-{}-{}", std::process::id(), fastrand::u64(..));
        let mut topology = Topology::prefixed(&prefix);
        topology.delivery_limit = delivery_limit;
        let connection =
            lapin::Connection::connect(AMQP, ConnectionProperties::default()).await.expect("rabbitmq up");
        let channel = connection.create_channel().await.expect("channel");
        topology.declare(&channel).await.expect("declare");
        let events_queue = format!("{prefix}.events-observer");
        channel
            .queue_declare(
                events_queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("events queue");
        channel
            .queue_bind(
                events_queue.as_str().into(),
                topology.events_exchange.as_str().into(),
                "integrations.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let events = channel
            .basic_consume(
                events_queue.as_str().into(),
                "observer".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume events");
        let publisher = Publisher::open(&connection).await.expect("publisher");
        Self { topology, connection, publisher, events, channel, events_queue }
    }

    fn worker_config(&self) -> WorkerConfig {
        let mut config = WorkerConfig::new(AMQP);
        config.topology = self.topology.clone();
        config.concurrency = 8;
        config.prefetch = 16;
        config.shutdown_grace = Duration::from_secs(5);
        config.in_flight_wait = Duration::from_secs(2);
        config
    }

    async fn send(&self, body: &[u8]) {
        self.publisher
            .publish_json(&self.topology.commands_exchange, "integrations.test", "cmd", body)
            .await
            .expect("publish command");
    }

    async fn send_command(&self, task: &str, step: &str, tool: &str, params: Value) {
        let body = json!({"task_id": task, "step_id": step, "tool_name": tool, "parameters": params});
        self.send(body.to_string().as_bytes()).await;
    }

    /// The next `n` events with their routing keys.
    async fn events(&mut self, n: usize) -> Vec<(String, Event)> {
        let mut out = Vec::new();
        while out.len() < n {
            let next = tokio::time::timeout(Duration::from_secs(20), self.events.next()).await;
            let delivery = next.expect("event within 20 s").expect("stream open").expect("delivery");
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
            let event: Event = serde_json::from_slice(&delivery.data).expect("event json");
            out.push((delivery.routing_key.to_string(), event));
        }
        out
    }

    async fn dead_letters(&self) -> u32 {
        let queue = self
            .channel
            .queue_declare(
                self.topology.dead_letter_queue.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("passive declare");
        queue.message_count()
    }

    async fn cleanup(self) {
        let t = &self.topology;
        for q in [&t.commands_queue, &t.dead_letter_queue, &self.events_queue] {
            let _ = self.channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for e in [&t.commands_exchange, &t.events_exchange, &t.dead_letter_exchange] {
            let _ = self.channel.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
        let _ = self.connection.close(200, "done".into()).await;
    }
}

fn start(worker: Worker) -> (watch::Sender<bool>, tokio::task::JoinHandle<Result<(), BusError>>) {
    let (stop, stopped) = watch::channel(false);
    (stop, tokio::spawn(worker.run(stopped)))
}

#[tokio::test]
async fn every_command_gets_one_event_with_the_right_key_and_body() {
    let mut bus = Bus::new(5).await;
    let calls = Arc::new(AtomicU32::new(0));
    let worker =
        Worker::new(executor(calls.clone()), Arc::new(MemoryOutcomes::default()), bus.worker_config());
    let (stop, handle) = start(worker);

    bus.send_command("task-1", "ok", "test_echo", json!({"text": "hi"})).await;
    bus.send_command("task-1", "upstream", "test_missing", json!({})).await;
    bus.send_command("task-1", "unknown", "nope_tool", json!({})).await;
    bus.send_command("task-1", "invalid", "test_echo", json!({"text": 5})).await;
    bus.send(br#"{"task_id": "task-1", "step_id": "malformed", "tool_name": 42}"#).await;
    bus.send(br#"{"task_id": "task-1", "step_id": "truncated", "tool_name": "test_echo", "parameters": "#)
        .await;
    bus.send(br#"{"task_id": "task-1", "step_id": "half"}"#).await;
    bus.send(b"not json at all").await;

    let events: HashMap<String, (String, Event)> =
        bus.events(6).await.into_iter().map(|(key, e)| (e.step_id.clone(), (key, e))).collect();
    let (key, ok) = &events["ok"];
    assert_eq!(key, "integrations.test_echo_completed");
    assert_eq!(ok.status, Status::Completed);
    assert_eq!(ok.result, Some(json!({"echo": "hi"})));
    assert_eq!(ok.event_id, integration_bus::event_id("task-1", "ok"));

    let (key, missing) = &events["upstream"];
    assert_eq!(key, "integrations.test_missing_failed");
    assert_eq!(missing.error_type.as_deref(), Some("not_found"));
    assert_eq!(missing.retryable, Some(false));
    assert!(missing.error.as_deref().unwrap_or_default().contains("no such thing"));

    assert_eq!(events["unknown"].1.error_type.as_deref(), Some("unknown_tool"));
    assert_eq!(events["unknown"].0, "integrations.nope_tool_failed");

    let invalid = &events["invalid"].1;
    assert_eq!(invalid.error_type.as_deref(), Some("invalid_input"));
    assert_eq!(invalid.details.as_ref().expect("details")["violations"][0]["pointer"], "/text");

    assert_eq!(events["malformed"].1.error_type.as_deref(), Some("invalid_command"));
    assert_eq!(events["half"].1.error_type.as_deref(), Some("invalid_command"));

    assert!(!events.contains_key("truncated"), "unreadable ids get no event");
    // the four invalid bodies were dead-lettered, not redelivered
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bus.dead_letters().await < 4 {
        assert!(tokio::time::Instant::now() < deadline, "dead letters: {}", bus.dead_letters().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "only the echo and the missing tool ran");

    stop.send(true).expect("stop");
    handle.await.expect("join").expect("clean stop");
    bus.cleanup().await;
}

#[tokio::test]
async fn redelivered_commands_do_not_repeat_effects() {
    let mut bus = Bus::new(5).await;
    let calls = Arc::new(AtomicU32::new(0));
    let outcomes: Arc<dyn OutcomeStore> = Arc::new(MemoryOutcomes::default());
    // A crashed earlier attempt: one command finished, one only started.
    let done = Event::completed(
        &integration_bus::Command {
            task_id: "t".into(),
            step_id: "done".into(),
            tool_name: "test_echo".into(),
            parameters: json!({"text": "x"}),
            connection: None,
        },
        json!({"echo": "recorded"}),
        3,
    );
    assert_eq!(
        outcomes.begin(&integration_bus::idempotency_key("t", "done")).await.expect("begin"),
        Begin::New
    );
    outcomes.finish(&integration_bus::idempotency_key("t", "done"), &done).await.expect("finish");
    assert_eq!(
        outcomes.begin(&integration_bus::idempotency_key("t", "started")).await.expect("begin"),
        Begin::New
    );

    // A command still in flight elsewhere: it finishes while the duplicate delivery waits.
    let late_key = integration_bus::idempotency_key("t", "late");
    assert_eq!(outcomes.begin(&late_key).await.expect("begin"), Begin::New);
    let late = Event::completed(
        &integration_bus::Command {
            task_id: "t".into(),
            step_id: "late".into(),
            tool_name: "test_echo".into(),
            parameters: json!({"text": "x"}),
            connection: None,
        },
        json!({"echo": "finished elsewhere"}),
        5,
    );
    let finisher = {
        let outcomes = outcomes.clone();
        let late = late.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            outcomes.finish(&late_key, &late).await.expect("finish late");
        })
    };

    let worker = Worker::new(executor(calls.clone()), outcomes, bus.worker_config());
    let (stop, handle) = start(worker);
    bus.send_command("t", "done", "test_echo", json!({"text": "x"})).await;
    bus.send_command("t", "started", "test_echo", json!({"text": "x"})).await;
    bus.send_command("t", "late", "test_echo", json!({"text": "x"})).await;
    let events: HashMap<String, Event> =
        bus.events(3).await.into_iter().map(|(_, e)| (e.step_id.clone(), e)).collect();
    finisher.await.expect("finisher");
    assert_eq!(
        events["late"].result,
        Some(json!({"echo": "finished elsewhere"})),
        "a duplicate of a command in flight waits for its outcome instead of reporting unknown_outcome"
    );
    assert_eq!(
        events["done"].result,
        Some(json!({"echo": "recorded"})),
        "the recorded outcome is re-published"
    );
    assert_eq!(events["done"].event_id, done.event_id);
    assert_eq!(events["started"].error_type.as_deref(), Some("unknown_outcome"));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the upstream was not called again");

    stop.send(true).expect("stop");
    handle.await.expect("join").expect("clean stop");
    bus.cleanup().await;
}

/// An outcome store that always fails: the command can never be settled.
struct BrokenStore;

#[async_trait]
impl OutcomeStore for BrokenStore {
    async fn begin(&self, _key: &str) -> Result<Begin, BusError> {
        Err(BusError::Store("database unavailable".into()))
    }
    async fn finish(&self, _key: &str, _event: &Event) -> Result<(), BusError> {
        Err(BusError::Store("database unavailable".into()))
    }
}

#[tokio::test]
async fn a_poison_command_is_dead_lettered_after_the_delivery_limit() {
    let bus = Bus::new(3).await;
    let calls = Arc::new(AtomicU32::new(0));
    let worker = Worker::new(executor(calls.clone()), Arc::new(BrokenStore), bus.worker_config());
    let status = worker.status();
    let (stop, handle) = start(worker);
    bus.send_command("t", "poison", "test_echo", json!({"text": "x"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while bus.dead_letters().await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // RabbitMQ counts returns: with x-delivery-limit 3, the 4th return dead-letters it.
    let settled = status.processed();
    assert!((3..=4).contains(&settled), "delivered {settled} times before dead-lettering");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    stop.send(true).expect("stop");
    handle.await.expect("join").expect("clean stop");
    bus.cleanup().await;
}

#[tokio::test]
async fn two_workers_share_the_queue() {
    let mut bus = Bus::new(5).await;
    let calls = Arc::new(AtomicU32::new(0));
    let outcomes: Arc<dyn OutcomeStore> = Arc::new(MemoryOutcomes::default());
    let a = Worker::new(executor(calls.clone()), outcomes.clone(), bus.worker_config());
    let b = Worker::new(executor(calls.clone()), outcomes.clone(), bus.worker_config());
    let (status_a, status_b) = (a.status(), b.status());
    let (stop_a, handle_a) = start(a);
    let (stop_b, handle_b) = start(b);
    while !(status_a.connected() && status_b.connected()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..400 {
        let body = json!({"task_id": "share", "step_id": format!("s{i}"), "tool_name": "test_echo", "parameters": {"text": "x"}});
        let _pending_confirm = bus
            .publisher
            .channel()
            .basic_publish(
                bus.topology.commands_exchange.as_str().into(),
                "integrations.test".into(),
                Default::default(),
                body.to_string().as_bytes(),
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish");
    }
    bus.publisher.channel().wait_for_confirms().await.expect("confirms");
    let events = bus.events(400).await;
    let steps: std::collections::HashSet<String> = events.iter().map(|(_, e)| e.step_id.clone()).collect();
    assert_eq!(steps.len(), 400, "one event per command");
    assert_eq!(calls.load(Ordering::SeqCst), 400);
    // A command is acked (and counted) right after its event is confirmed: wait for the last acks.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while status_a.processed() + status_b.processed() < 400 {
        assert!(tokio::time::Instant::now() < deadline, "acks missing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (pa, pb) = (status_a.processed(), status_b.processed());
    assert_eq!(pa + pb, 400);
    assert!(pa > 0 && pb > 0, "both workers took commands: {pa} / {pb}");
    stop_a.send(true).expect("stop");
    stop_b.send(true).expect("stop");
    handle_a.await.expect("join").expect("stop a");
    handle_b.await.expect("join").expect("stop b");
    bus.cleanup().await;
}

#[test]
fn error_kinds_become_error_types() {
    let command = integration_bus::Command {
        task_id: "t".into(),
        step_id: "s".into(),
        tool_name: "x".into(),
        parameters: json!({}),
        connection: None,
    };
    let limited = IntegrationError::new(ErrorKind::RateLimited { retry_after: None }, "p", "slow");
    let event = Event::from_error(&command, &limited, 5);
    assert_eq!(event.error_type.as_deref(), Some("rate_limited"));
    assert_eq!(event.retryable, Some(true));
    assert_eq!(event.duration_ms, 5);
}

#[tokio::test]
async fn large_results_are_cut_to_the_output_budget_and_marked() {
    let mut bus = Bus::new(5).await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut config = bus.worker_config();
    config.max_output_bytes = 2048;
    let worker = Worker::new(executor(calls), Arc::new(MemoryOutcomes::default()), config);
    let (stop, handle) = start(worker);
    bus.send_command("t", "big", "test_big", json!({})).await;
    let (_, event) = bus.events(1).await.remove(0);
    let result = event.result.expect("result");
    assert_eq!(result["truncated"], true, "{result}");
    assert!(serde_json::to_vec(&result).expect("json").len() <= 4096, "bounded: {result}");
    stop.send(true).expect("stop");
    handle.await.expect("join").expect("clean stop");
    bus.cleanup().await;
}

/// RabbitMQ behind a proxy that accepts connections and forwards nothing (lapin alone would wait
/// for the handshake forever): `connect` gives up after its timeout, without the URL's credentials
/// in the error; once the proxy forwards again it connects.
#[tokio::test]
async fn a_broker_that_never_answers_is_a_connect_timeout_not_a_hang() {
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().expect("address")).await.expect("proxy");
    proxy.stall(true);
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let started = std::time::Instant::now();
    let result = integration_bus::connect(&url, Duration::from_millis(300)).await;
    assert!(matches!(result, Err(BusError::ConnectTimeout(t)) if t == Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("300ms") && !message.contains("guest"), "{message}");
    proxy.stall(false);
    let connection = integration_bus::connect(&url, Duration::from_secs(10)).await.expect("connects");
    connection.close(200, "done".into()).await.expect("close");
}

/// The worker against a broker that never answers: each attempt fails after `connect_timeout`,
/// the worker keeps reconnecting, and it still stops when told.
#[tokio::test]
async fn a_broker_that_never_answers_is_retried_and_shutdown_still_stops_the_worker() {
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().expect("address")).await.expect("proxy");
    proxy.stall(true);
    let mut config = WorkerConfig::new(format!("amqp://guest:guest@{}/%2f", proxy.addr()));
    config.connect_timeout = Duration::from_millis(200);
    config.max_reconnect_delay = Duration::from_millis(100);
    let worker =
        Worker::new(executor(Arc::new(AtomicU32::new(0))), Arc::new(MemoryOutcomes::default()), config);
    let status = worker.status();
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while status.reconnects() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{} reconnects in 10 s", status.reconnects());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!status.connected());
    stop.send(true).expect("stop");
    let ended = tokio::time::timeout(Duration::from_secs(5), running).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "the worker stops within one connect timeout: {ended:?}");
}

/// A connection that dies without a reset (the proxy holds every byte, as a vanished peer or a
/// dropped NAT flow would): the heartbeat (1 s here, from the URL) notices, the worker reconnects,
/// and once the path is back a command sent meanwhile is run. Without a heartbeat of its own the
/// worker would wait on the dead connection for as long as the broker's (60 s) allows, twice over.
#[tokio::test]
async fn a_connection_that_goes_silent_is_noticed_by_the_heartbeat_and_replaced() {
    let mut bus = Bus::new(5).await;
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().expect("address")).await.expect("proxy");
    let mut config = bus.worker_config();
    config.amqp_url = format!("amqp://guest:guest@{}/%2f?heartbeat=1", proxy.addr());
    config.connect_timeout = Duration::from_millis(500);
    config.max_reconnect_delay = Duration::from_millis(200);
    config.in_flight_wait = Duration::from_millis(200);
    let calls = Arc::new(AtomicU32::new(0));
    let worker = Worker::new(executor(calls.clone()), Arc::new(MemoryOutcomes::default()), config);
    let status = worker.status();
    let (stop, handle) = start(worker);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !status.connected() {
        assert!(tokio::time::Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let accepted = proxy.accepted();

    proxy.stall(true);
    let silent = tokio::time::Instant::now();
    while status.connected() {
        assert!(silent.elapsed() < Duration::from_secs(10), "the dead connection was not noticed in 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let noticed = silent.elapsed();
    assert!(noticed >= Duration::from_millis(900), "noticed after {noticed:?}, before a heartbeat was due");
    bus.send_command("task-hb", "after", "test_echo", json!({"text": "still here"})).await;
    proxy.stall(false);

    let events = bus.events(1).await;
    assert_eq!(events[0].1.step_id, "after");
    assert_eq!(events[0].1.status, Status::Completed);
    assert!(status.connected(), "reconnected");
    assert!(proxy.accepted() > accepted, "a new connection through the proxy");
    assert!(status.reconnects() >= 1);
    stop.send(true).expect("stop");
    let ended = tokio::time::timeout(Duration::from_secs(10), handle).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    bus.cleanup().await;
}

/// `call`'s timeout bounds the whole call, the connection included: over a slow path (every chunk
/// delayed 100 ms, so the handshake alone takes most of a second) with no worker to answer, it
/// gives up after about `timeout`, not after the connection time plus `timeout` again.
#[tokio::test]
async fn a_call_over_a_slow_connection_ends_within_its_timeout() {
    let bus = Bus::new(5).await;
    let proxy = FaultProxy::start("127.0.0.1:5672".parse().expect("address")).await.expect("proxy");
    proxy.set_latency(Duration::from_millis(100));
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let command = integration_bus::Command {
        task_id: "task-slow".into(),
        step_id: "s1".into(),
        tool_name: "test_echo".into(),
        parameters: json!({"text": "x"}),
        connection: None,
    };
    let timeout = Duration::from_millis(2500);
    let started = std::time::Instant::now();
    let result = integration_bus::call(&url, &bus.topology, &command, timeout).await;
    let took = started.elapsed();
    assert!(matches!(result, Err(BusError::Timeout(t)) if t == timeout), "{result:?}");
    assert!(took < timeout + Duration::from_millis(700), "took {took:?} for a {timeout:?} call");
    bus.cleanup().await;
}
