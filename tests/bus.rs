//! The bus worker end to end: the real RabbitMQ at 127.0.0.1:5672, the real PostgreSQL at
//! 127.0.0.1:5432 (one fresh schema per test, dropped afterwards), the Jira tools against the fake
//! Jira, outcome records in the store. Every test uses its own exchanges and queues
//! (`Topology::prefixed`) and deletes them afterwards.
//!
//! One test restarts RabbitMQ for real; it holds the broker lock exclusively, the others share it,
//! so no other test of this file sees the restart. A guard starts RabbitMQ again even when the test
//! fails.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use integration_bus::{
    Event, OutboxRelay, Publisher, RelayConfig, Status, StoreOutcomes, Topology, Worker, WorkerConfig,
    WorkerStatus, event_id, idempotency_key,
};
use integration_core::{Connection, Executor, ExecutorConfig, Registry};
use integration_store::{NewOutboxMessage, OutcomeState, Store, StoreConfig, StoreConnections};
use integration_testkit::jira::{FakeJira, router};
use integration_testkit::{FakeServer, Fault};
use integrations_e2e::{free_port, unique, wait_healthy};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ConnectionProperties};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use tokio::sync::{RwLock, watch};

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// A test-only credentials key (base64 of 32 bytes).
const MASTER_KEY: &str = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

/// Shared by every test; taken exclusively by the one that restarts the broker.
static BROKER: RwLock<()> = RwLock::const_new(());

// ---- fixtures -----------------------------------------------------------------------------------

/// A fresh PostgreSQL schema and a store opened on it.
struct Db {
    schema: String,
    store: Store,
    dir: tempfile::TempDir,
}

impl Db {
    async fn new() -> Self {
        let schema = unique("bus_e2e");
        let admin = sqlx::PgPool::connect(PG_URL).await.expect("postgres at 127.0.0.1:5432");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.expect("schema");
        admin.close().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("{PG_URL}?options[search_path]={schema}");
        let data_dir = dir.path().display().to_string();
        let store = Store::open(StoreConfig::from_lookup(&|name| match name {
            "DATABASE_URL" => Some(url.clone()),
            "INTEGRATIONS_MASTER_KEY" => Some(MASTER_KEY.to_owned()),
            "INTEGRATIONS_DATA_DIR" => Some(data_dir.clone()),
            _ => None,
        }))
        .await
        .expect("store opens");
        Self { schema, store, dir }
    }

    fn url(&self) -> String {
        format!("{PG_URL}?options[search_path]={}", self.schema)
    }

    async fn count(&self, sql: &str) -> i64 {
        let pool = sqlx::PgPool::connect(&self.url()).await.expect("connect");
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(&pool).await.expect("count");
        pool.close().await;
        n
    }

    async fn drop(self) {
        self.store.close().await;
        let admin = sqlx::PgPool::connect(PG_URL).await.expect("postgres");
        let _ =
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.schema))).execute(&admin).await;
        admin.close().await;
    }
}

/// The fake Jira with its demo data (3 issues in ENG).
struct Jira {
    fake: FakeJira,
    server: FakeServer,
}

const DEMO_ISSUES: usize = 3;

impl Jira {
    async fn start() -> Self {
        let fake = FakeJira::demo();
        let server = FakeServer::start(router(fake.clone())).await.expect("fake jira starts");
        Self { fake, server }
    }

    fn connection(&self) -> Connection {
        Connection::new(
            "jira",
            "jira",
            json!({"base_url": self.server.base_url(), "username": FakeJira::USERNAME}),
        )
        .with_secret("api_token", FakeJira::API_TOKEN)
    }

    fn created(&self) -> usize {
        self.fake.issue_count() - DEMO_ISSUES
    }
}

/// The executor the binary builds: Jira tools, store connections with the environment connection
/// as fallback, the store as audit observer; a high rate limit for bulk runs.
fn executor(db: &Db, jira: &Jira) -> Executor {
    let registry = Arc::new(Registry::new());
    registry.add(integration_jira::provider()).expect("jira registers");
    let connections = Arc::new(StoreConnections::new(db.store.clone(), vec![jira.connection()]));
    Executor::new(
        registry,
        connections,
        ExecutorConfig {
            backoff_base: Duration::from_millis(5),
            rate_limit_per_minute: 10_000_000,
            ..Default::default()
        },
    )
    .with_observer(Arc::new(db.store.clone()))
}

/// The events seen on the events exchange, collected by a consumer that reconnects after broker
/// restarts (its queue is durable, so events published meanwhile wait for it).
struct Collector {
    events: Arc<Mutex<Vec<(String, Event)>>>,
    /// Messages that were not events (kept, not a panic: a panic ended the collector's task
    /// silently, and a run could only time out).
    unparsed: Arc<Mutex<Vec<String>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    fn start(queue: String) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = watch::channel(false);
        let sink = events.clone();
        let unparsed = Arc::new(Mutex::new(Vec::new()));
        let bad = unparsed.clone();
        let task = tokio::spawn(async move {
            while !*stopped.borrow() {
                let consumed = async {
                    // Bounded: while the broker restarts it may accept TCP and not answer yet.
                    let connection = integration_bus::connect(AMQP, Duration::from_secs(5)).await?;
                    let channel = connection.create_channel().await?;
                    let mut consumer = channel
                        .basic_consume(
                            queue.as_str().into(),
                            "collector".into(),
                            BasicConsumeOptions::default(),
                            FieldTable::default(),
                        )
                        .await?;
                    while let Some(delivery) = consumer.next().await {
                        let delivery = delivery?;
                        match serde_json::from_slice::<Event>(&delivery.data) {
                            Ok(event) => sink
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((delivery.routing_key.to_string(), event)),
                            Err(e) => bad.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                                "{}: {e}: {}",
                                delivery.routing_key,
                                String::from_utf8_lossy(&delivery.data)
                            )),
                        }
                        // Bounded: an ack in flight when the broker stops never completed, and
                        // the collector stalled with the remaining events waiting in its queue and
                        // no consumer on it (1 run in 10-20); reconnect instead (the event is
                        // redelivered, a duplicate the checks expect).
                        match tokio::time::timeout(
                            Duration::from_secs(5),
                            delivery.ack(BasicAckOptions::default()),
                        )
                        .await
                        {
                            Ok(acked) => {
                                acked?;
                            }
                            Err(_) => return Ok(()),
                        }
                    }
                    Ok::<_, integration_bus::BusError>(())
                };
                tokio::select! {
                    _ = consumed => {}
                    _ = stopped.changed() => return,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { events, unparsed, stop, task }
    }

    fn all(&self) -> Vec<(String, Event)> {
        let unparsed = self.unparsed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(unparsed.is_empty(), "messages on the events exchange that are not events: {unparsed:?}");
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn distinct(&self) -> usize {
        self.all().iter().map(|(_, e)| (e.task_id.clone(), e.step_id.clone())).collect::<HashSet<_>>().len()
    }

    /// Wait until `n` distinct commands have an event. On timeout the failure shows the broker's
    /// queues (messages and consumers of each), which tells a worker that stopped consuming
    /// commands from a collector that stopped consuming events (how the collector's unbounded ack
    /// was found).
    async fn wait_for(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.distinct() < n {
            if Instant::now() >= deadline {
                let queues = std::process::Command::new("rabbitmqctl")
                    .args(["list_queues", "name", "messages", "messages_unacknowledged", "consumers"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_else(|e| format!("(rabbitmqctl: {e})"));
                panic!(
                    "{} of {n} events within {timeout:?}; the broker's queues:\n{queues}",
                    self.distinct()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The latest event per step id, checking that duplicates are identical publications.
    fn by_step(&self) -> HashMap<String, (String, Event)> {
        let mut out: HashMap<String, (String, Event)> = HashMap::new();
        for (key, event) in self.all() {
            if let Some((_, seen)) = out.get(&event.step_id) {
                assert_eq!(seen, &event, "a duplicate publication carries the same event");
            }
            out.insert(event.step_id.clone(), (key, event));
        }
        out
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Per-test exchanges and queues, a confirmed publisher for commands and the event collector.
struct Bus {
    topology: Topology,
    connection: lapin::Connection,
    publisher: Publisher,
    events_queue: String,
    collector: Collector,
}

impl Bus {
    async fn new() -> Self {
        let topology = Topology::prefixed(&unique("bus-e2e"));
        let connection =
            lapin::Connection::connect(AMQP, ConnectionProperties::default()).await.expect("rabbitmq up");
        let channel = connection.create_channel().await.expect("channel");
        topology.declare(&channel).await.expect("declare");
        let events_queue = format!("{}.observer", topology.events_exchange);
        channel
            .queue_declare(
                events_queue.as_str().into(),
                QueueDeclareOptions { durable: true, ..Default::default() },
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
        let publisher = Publisher::open(&connection).await.expect("publisher");
        let collector = Collector::start(events_queue.clone());
        Self { topology, connection, publisher, events_queue, collector }
    }

    fn worker_config(&self, concurrency: usize) -> WorkerConfig {
        let mut config = WorkerConfig::new(AMQP);
        config.topology = self.topology.clone();
        config.concurrency = concurrency;
        config.prefetch = u16::try_from(concurrency * 2).unwrap_or(u16::MAX);
        config.shutdown_grace = Duration::from_secs(10);
        config.max_reconnect_delay = Duration::from_secs(1);
        config
    }

    async fn send(&self, body: &[u8]) {
        self.publisher
            .publish_json(&self.topology.commands_exchange, "integrations.jira", "cmd", body)
            .await
            .expect("publish command");
    }

    async fn send_command(&self, task: &str, step: &str, tool: &str, params: Value) {
        let body = json!({"task_id": task, "step_id": step, "tool_name": tool, "parameters": params});
        self.send(body.to_string().as_bytes()).await;
    }

    /// Publish many commands pipelined (persistent), then wait for every confirm.
    async fn send_many(&self, commands: impl IntoIterator<Item = Value>) {
        let channel = self.publisher.channel();
        let mut confirms = Vec::new();
        for body in commands {
            let confirm = channel
                .basic_publish(
                    self.topology.commands_exchange.as_str().into(),
                    "integrations.jira".into(),
                    BasicPublishOptions::default(),
                    body.to_string().as_bytes(),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish");
            confirms.push(confirm);
        }
        for confirm in confirms {
            assert!(confirm.await.expect("confirm").is_ack(), "the broker took the command");
        }
    }

    async fn queue_len(&self, queue: &str) -> u32 {
        let channel = self.connection.create_channel().await.expect("channel");
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("passive declare");
        let _ = channel.close(200, "done".into()).await;
        declared.message_count()
    }

    async fn cleanup(self) {
        self.collector.stop().await;
        // A fresh connection: the test may have restarted the broker under the old one.
        let connection =
            lapin::Connection::connect(AMQP, ConnectionProperties::default()).await.expect("rabbitmq up");
        let channel = connection.create_channel().await.expect("channel");
        let t = &self.topology;
        for q in [&t.commands_queue, &t.dead_letter_queue, &self.events_queue] {
            let _ = channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for e in [&t.commands_exchange, &t.events_exchange, &t.dead_letter_exchange] {
            let _ = channel.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
        let _ = connection.close(200, "done".into()).await;
        let _ = self.connection.close(200, "done".into()).await;
    }
}

fn start(worker: Worker) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>, Arc<WorkerStatus>) {
    let status = worker.status();
    let (stop, stopped) = watch::channel(false);
    let handle = tokio::spawn(async move { worker.run(stopped).await.expect("worker stops cleanly") });
    (stop, handle, status)
}

async fn connected(status: &WorkerStatus) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !status.connected() {
        assert!(Instant::now() < deadline, "worker did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn create(task: &str, step: &str) -> Value {
    json!({"task_id": task, "step_id": step, "tool_name": "jira_create_issue",
           "parameters": {"project_key": "ENG", "summary": format!("{task} {step}")}})
}

// ---- the contract -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_commands_in_n_events_out_through_the_store_backed_worker() {
    let _shared = BROKER.read().await;
    let db = Db::new().await;
    let jira = Jira::start().await;
    let bus = Bus::new().await;
    let worker =
        Worker::new(executor(&db, &jira), Arc::new(StoreOutcomes::new(&db.store)), bus.worker_config(8));
    let (stop, handle, _status) = start(worker);

    const EACH: usize = 4;
    for i in 0..EACH {
        bus.send_command(
            "t",
            &format!("ok-{i}"),
            "jira_create_issue",
            json!({"project_key": "ENG", "summary": format!("Bus {i}")}),
        )
        .await;
        bus.send_command(
            "t",
            &format!("upstream-{i}"),
            "jira_create_issue",
            json!({"project_key": "NOPE", "summary": "x"}),
        )
        .await;
        bus.send_command("t", &format!("unknown-{i}"), "jira_teleport", json!({})).await;
        bus.send_command(
            "t",
            &format!("invalid-{i}"),
            "jira_create_issue",
            json!({"project_key": "ENG", "summary": 5}),
        )
        .await;
        bus.send(format!(r#"{{"task_id": "t", "step_id": "malformed-{i}", "tool_name": 42}}"#).as_bytes())
            .await;
    }
    bus.send(b"not json at all").await;
    bus.send(br#"{"task_id": "t", "step_id": "cut", "tool_name": "jira_create_issue", "param"#).await;

    bus.collector.wait_for(5 * EACH, Duration::from_secs(30)).await;
    let events = bus.collector.by_step();
    assert_eq!(events.len(), 5 * EACH, "one event per readable command, none for unreadable ones");
    for (step, (key, event)) in &events {
        assert_eq!(event.task_id, "t");
        assert_eq!(event.event_id, event_id("t", step));
        assert!(chrono_like(&event.timestamp), "RFC 3339 UTC: {}", event.timestamp);
        let kind = step.split('-').next().unwrap_or_default();
        match kind {
            "ok" => {
                assert_eq!(key, "integrations.jira_create_issue_completed");
                assert_eq!(event.status, Status::Completed);
                let issue = event.result.as_ref().expect("result");
                assert!(issue["key"].as_str().unwrap_or_default().starts_with("ENG-"), "{issue}");
                assert!(event.error.is_none() && event.error_type.is_none());
            }
            "upstream" => {
                assert_eq!(key, "integrations.jira_create_issue_failed");
                assert_eq!(event.error_type.as_deref(), Some("not_found"));
                assert_eq!(event.retryable, Some(false));
                assert!(event.result.is_none());
                assert_eq!(
                    event.details.as_ref().expect("details")["errors"]["project"],
                    "valid project is required"
                );
            }
            "unknown" => {
                assert_eq!(key, "integrations.jira_teleport_failed");
                assert_eq!(event.error_type.as_deref(), Some("unknown_tool"));
            }
            "invalid" => {
                assert_eq!(event.error_type.as_deref(), Some("invalid_input"));
                assert_eq!(event.details.as_ref().expect("details")["violations"][0]["pointer"], "/summary");
            }
            "malformed" => {
                assert_eq!(key, "integrations.unknown_failed");
                assert_eq!(event.error_type.as_deref(), Some("invalid_command"));
                assert_eq!(event.retryable, Some(false));
            }
            other => panic!("unexpected step kind {other}"),
        }
    }
    // Malformed commands are dead-lettered, never redelivered: 4 with ids + 2 unreadable.
    let deadline = Instant::now() + Duration::from_secs(10);
    while bus.queue_len(&bus.topology.dead_letter_queue).await < (EACH + 2) as u32 {
        assert!(Instant::now() < deadline, "dead letters missing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(jira.created(), EACH);

    // The same commands again (an agent retry, a redelivery): recorded outcomes are re-published,
    // the upstream is not called again.
    let before = bus.collector.all().len();
    for i in 0..EACH {
        bus.send_command(
            "t",
            &format!("ok-{i}"),
            "jira_create_issue",
            json!({"project_key": "ENG", "summary": format!("Bus {i}")}),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while bus.collector.all().len() < before + EACH {
        assert!(Instant::now() < deadline, "re-published events missing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = bus.collector.by_step(); // duplicates are identical to the first publication
    assert_eq!(jira.created(), EACH, "no second issue");

    stop.send(true).expect("stop");
    handle.await.expect("join");
    // Outcome records and audit rows are in the store (audit rows are queued: write them first).
    db.store.flush_audit().await;
    assert_eq!(db.count("SELECT count(*) FROM idempotency_records WHERE state = 'started'").await, 0);
    assert_eq!(
        db.count("SELECT count(*) FROM idempotency_records WHERE state = 'completed'").await,
        EACH as i64
    );
    assert!(db.count("SELECT count(*) FROM tool_executions WHERE source = 'bus'").await >= (3 * EACH) as i64);
    bus.cleanup().await;
    db.drop().await;
}

fn chrono_like(timestamp: &str) -> bool {
    timestamp.len() >= 20 && timestamp.ends_with('Z') && timestamp.as_bytes().get(10) == Some(&b'T')
}

// ---- broker restart -----------------------------------------------------------------------------

/// Starts RabbitMQ again when dropped, whatever happened to the test.
struct RabbitGuard;

fn rabbitmqctl(args: &[&str]) -> bool {
    std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Drop for RabbitGuard {
    fn drop(&mut self) {
        if !rabbitmqctl(&["start_app"]) {
            let _ = std::process::Command::new("rabbitmq-server").arg("-detached").status();
        }
        let _ = rabbitmqctl(&["await_startup"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_run_loses_and_duplicates_nothing() {
    const N: usize = 2_000;
    let _exclusive = BROKER.write().await;
    let db = Db::new().await;
    let jira = Jira::start().await;
    let bus = Bus::new().await;
    bus.send_many((0..N).map(|i| create("restart", &format!("s{i}")))).await;

    let worker =
        Worker::new(executor(&db, &jira), Arc::new(StoreOutcomes::new(&db.store)), bus.worker_config(32));
    let (stop, handle, status) = start(worker);
    bus.collector.wait_for(N / 4, Duration::from_secs(60)).await;

    {
        let _guard = RabbitGuard;
        let restart = tokio::task::spawn_blocking(|| {
            assert!(rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app");
            std::thread::sleep(Duration::from_millis(500));
        });
        restart.await.expect("stop_app");
        let at_stop = bus.collector.distinct();
        assert!(at_stop < N, "the restart happened mid-run ({at_stop} of {N} done)");
        // _guard starts it again here
    }
    bus.collector.wait_for(N, Duration::from_secs(90)).await;

    let all = bus.collector.all();
    let events = bus.collector.by_step();
    assert_eq!(events.len(), N, "every command has exactly one (deduplicated) event");
    for i in 0..N {
        let (key, event) = events.get(&format!("s{i}")).unwrap_or_else(|| panic!("no event for s{i}"));
        assert_eq!(key, "integrations.jira_create_issue_completed", "s{i}: {event:?}");
        assert_eq!(event.event_id, event_id("restart", &format!("s{i}")));
    }
    assert_eq!(jira.created(), N, "no lost and no duplicated issue");
    assert!(status.reconnects() >= 1, "the worker reconnected");
    eprintln!(
        "restart run: {} publications for {N} commands ({} duplicates), {} reconnects",
        all.len(),
        all.len() - N,
        status.reconnects()
    );

    stop.send(true).expect("stop");
    handle.await.expect("join");
    assert_eq!(db.count("SELECT count(*) FROM idempotency_records WHERE state = 'started'").await, 0);
    bus.cleanup().await;
    db.drop().await;
}

// ---- competing workers --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_store_backed_workers_share_the_queue() {
    const N: usize = 300;
    let _shared = BROKER.read().await;
    let db = Db::new().await;
    let jira = Jira::start().await;
    let bus = Bus::new().await;
    let outcomes = Arc::new(StoreOutcomes::new(&db.store));
    let a = Worker::new(executor(&db, &jira), outcomes.clone(), bus.worker_config(4));
    let b = Worker::new(executor(&db, &jira), outcomes, bus.worker_config(4));
    let (stop_a, handle_a, status_a) = start(a);
    let (stop_b, handle_b, status_b) = start(b);
    connected(&status_a).await;
    connected(&status_b).await;
    bus.send_many((0..N).map(|i| create("share", &format!("s{i}")))).await;
    bus.collector.wait_for(N, Duration::from_secs(60)).await;
    assert_eq!(jira.created(), N);
    // A command is acked (and counted) right after its event is confirmed: wait for the last acks.
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_a.processed() + status_b.processed() < N as u64 {
        assert!(Instant::now() < deadline, "acks missing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (pa, pb) = (status_a.processed(), status_b.processed());
    assert_eq!(pa + pb, N as u64);
    assert!(pa > 0 && pb > 0, "both workers took commands: {pa} / {pb}");
    stop_a.send(true).expect("stop");
    stop_b.send(true).expect("stop");
    handle_a.await.expect("join");
    handle_b.await.expect("join");
    bus.cleanup().await;
    db.drop().await;
}

// ---- outbox on PostgreSQL -----------------------------------------------------------------------

#[tokio::test]
async fn outcomes_written_with_an_outbox_message_are_relayed() {
    let _shared = BROKER.read().await;
    let db = Db::new().await;
    let bus = Bus::new().await;
    let mut config = RelayConfig::new(AMQP);
    config.topology = Some(bus.topology.clone());
    let relay = OutboxRelay::new(&db.store, config);
    let waker = relay.waker();
    let (stop, stopped) = watch::channel(false);
    let handle = tokio::spawn(relay.run(stopped));
    for i in 0..20 {
        let event = Event::failed("webhook", &format!("w{i}"), "slack_event", "none", "example");
        let key = idempotency_key("webhook", &event.step_id);
        db.store.idempotency().begin(&key, Duration::from_secs(60)).await.expect("begin");
        let message = NewOutboxMessage {
            exchange: bus.topology.events_exchange.clone(),
            routing_key: event.routing_key(),
            payload: serde_json::to_vec(&event).expect("json"),
        };
        let value = serde_json::to_value(&event).expect("json");
        db.store
            .idempotency()
            .finish(&key, OutcomeState::Failed, &value, Some(&message))
            .await
            .expect("finish with outbox");
        waker.wake();
    }
    bus.collector.wait_for(20, Duration::from_secs(20)).await;
    // Messages are marked right after their confirm, so possibly after they were consumed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !db.store.outbox().fetch_unpublished(10).await.expect("fetch").is_empty() {
        assert!(Instant::now() < deadline, "outbox not marked published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).expect("stop");
    handle.await.expect("join").expect("relay stops");
    bus.cleanup().await;
    db.drop().await;
}

// ---- the real binary ----------------------------------------------------------------------------

/// Build `integrations-worker` (a no-op when up to date) and return its path.
fn worker_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "integrations-worker"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p integrations-worker");
    let exe = std::env::current_exe().expect("test path");
    // target/<profile>/deps/bus-<hash> -> target/<profile>/integrations-worker
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    dir.join("integrations-worker")
}

struct Process {
    child: std::process::Child,
    health: String,
}

impl Process {
    async fn spawn(binary: &PathBuf, env: &[(&str, String)], log: &std::path::Path) -> Self {
        let port = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let mut command = std::process::Command::new(binary);
        command
            .env_clear()
            .env("WORKER_METRICS_BIND", format!("127.0.0.1:{port}"))
            .env("LOG_FORMAT", "json")
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("worker starts");
        let health = format!("http://127.0.0.1:{port}");
        let process = Self { child, health };
        wait_healthy(&format!("{}/readyz", process.health), Duration::from_secs(20))
            .await
            .expect("worker ready");
        process
    }

    fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(sent.success());
    }

    async fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the worker did not exit within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn the_binary_finishes_in_flight_commands_on_sigterm() {
    const N: usize = 20;
    let _shared = BROKER.read().await;
    let binary = tokio::task::spawn_blocking(worker_binary).await.expect("build");
    let db = Db::new().await;
    let jira = Jira::start().await;
    let bus = Bus::new().await;
    let t = &bus.topology;
    let env = vec![
        ("AMQP_URL", AMQP.to_owned()),
        ("WORKER_CONCURRENCY", "4".to_owned()),
        ("WORKER_PREFETCH", "4".to_owned()),
        ("WORKER_SHUTDOWN_GRACE_SECONDS", "10".to_owned()),
        ("DATABASE_URL", db.url()),
        ("INTEGRATIONS_MASTER_KEY", MASTER_KEY.to_owned()),
        ("INTEGRATIONS_DATA_DIR", db.dir.path().display().to_string()),
        ("JIRA_BASE_URL", jira.server.base_url().to_owned()),
        ("JIRA_USERNAME", FakeJira::USERNAME.to_owned()),
        ("JIRA_API_TOKEN", FakeJira::API_TOKEN.to_owned()),
        ("RATE_LIMIT_PER_MINUTE", "100000".to_owned()),
        ("BUS_COMMANDS_EXCHANGE", t.commands_exchange.clone()),
        ("BUS_EVENTS_EXCHANGE", t.events_exchange.clone()),
        ("BUS_COMMANDS_QUEUE", t.commands_queue.clone()),
        ("BUS_DEAD_LETTER_EXCHANGE", t.dead_letter_exchange.clone()),
        ("BUS_DEAD_LETTER_QUEUE", t.dead_letter_queue.clone()),
    ];
    let log = db.dir.path().join("worker.log");

    // Every create takes 800 ms upstream: SIGTERM lands while 4 are in flight.
    jira.server
        .faults()
        .push(Fault::delay(Duration::from_millis(800)).times(1_000).on_path("/rest/api/3/issue"));
    let mut worker = Process::spawn(&binary, &env, &log).await;
    bus.send_many((0..N).map(|i| create("sigterm", &format!("s{i}")))).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while jira.server.calls_to("/rest/api/3/issue") < 4 {
        assert!(Instant::now() < deadline, "commands did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.terminate();
    let exit = worker.wait(Duration::from_secs(15)).await;
    assert!(exit.success(), "clean exit: {exit:?}");

    // In-flight commands finished, recorded, published and acked; nothing is left `started`; the
    // rest waits in the queue.
    let done = jira.created();
    assert!((4..N).contains(&done), "{done} finished before the stop");
    bus.collector.wait_for(done, Duration::from_secs(10)).await;
    assert_eq!(db.count("SELECT count(*) FROM idempotency_records WHERE state = 'started'").await, 0);
    assert_eq!(bus.queue_len(&t.commands_queue).await as usize, N - done);

    // A new worker drains the rest; metrics count what it did.
    jira.server.faults().clear();
    let mut worker = Process::spawn(&binary, &env, &log).await;
    bus.collector.wait_for(N, Duration::from_secs(30)).await;
    assert_eq!(jira.created(), N);
    let metrics = reqwest::get(format!("{}/metrics", worker.health))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(metrics.contains("bus_commands_total"), "{metrics}");
    assert!(metrics.contains("integration_tool_calls_total"), "{metrics}");
    let healthz = reqwest::get(format!("{}/healthz", worker.health)).await.expect("healthz");
    assert!(healthz.status().is_success());
    worker.terminate();
    assert!(worker.wait(Duration::from_secs(15)).await.success());

    let log = std::fs::read_to_string(&log).expect("log");
    assert!(log.contains("integrations-worker stopped"), "{log}");
    for secret in [FakeJira::API_TOKEN, MASTER_KEY, "guest:guest"] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    bus.cleanup().await;
    db.drop().await;
}
