//! The store-backed pieces on SQLite (a temp dir) and the real RabbitMQ at 127.0.0.1:5672:
//! [`StoreOutcomes`] and the [`OutboxRelay`] through a broker outage.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use integration_bus::{
    Begin, Command, Event, OutboxRelay, OutcomeStore, RelayConfig, StoreOutcomes, Topology, idempotency_key,
};
use integration_store::{NewOutboxMessage, Store, StoreConfig};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, ConnectionProperties};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    Store::open(StoreConfig { data_dir: dir.path().to_path_buf(), ..Default::default() })
        .await
        .expect("sqlite store opens")
}

fn command(step: &str) -> Command {
    Command {
        task_id: "task".into(),
        step_id: step.into(),
        tool_name: "jira_create_issue".into(),
        parameters: json!({}),
        connection: None,
    }
}

#[tokio::test]
async fn store_outcomes_record_states_and_never_take_over_a_started_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&dir).await;
    let outcomes = StoreOutcomes::new(&store);
    let key = idempotency_key("task", "s1");
    assert_eq!(outcomes.begin(&key).await.expect("begin"), Begin::New);
    assert_eq!(outcomes.begin(&key).await.expect("begin"), Begin::Started, "no lease: never taken over");
    let event = Event::completed(&command("s1"), json!({"key": "ENG-9"}), 12);
    outcomes.finish(&key, &event).await.expect("finish");
    assert_eq!(outcomes.begin(&key).await.expect("begin"), Begin::Done(Box::new(event)));

    let failed_key = idempotency_key("task", "s2");
    assert_eq!(outcomes.begin(&failed_key).await.expect("begin"), Begin::New);
    let failed = Event::failed("task", "s2", "jira_create_issue", "not_found", "no project");
    outcomes.finish(&failed_key, &failed).await.expect("finish");
    match outcomes.begin(&failed_key).await.expect("begin") {
        Begin::Done(event) => assert_eq!(event.error_type.as_deref(), Some("not_found")),
        other => panic!("expected the recorded failure, got {other:?}"),
    }
    // The worker's path: the event recorded as the JSON text it publishes reads back the same.
    let text_key = idempotency_key("task", "s3");
    assert_eq!(outcomes.begin(&text_key).await.expect("begin"), Begin::New);
    let published = Event::completed(&command("s3"), json!({"key": "ENG-10", "labels": ["a"]}), 7);
    let json = serde_json::to_string(&published).expect("event JSON");
    outcomes.finish_with_json(&text_key, &published, &json).await.expect("finish");
    assert_eq!(outcomes.begin(&text_key).await.expect("begin"), Begin::Done(Box::new(published)));

    // A record written by someone else than the bus is reported, not mistaken for an event.
    store.idempotency().begin("bus:foreign", Duration::from_secs(1)).await.expect("claim");
    store.idempotency().complete("bus:foreign", &json!({"not": "an event"})).await.expect("complete");
    assert!(outcomes.begin("bus:foreign").await.is_err());
    store.close().await;
}

/// A loopback TCP proxy to RabbitMQ that can be opened and closed: closed, its port refuses
/// connections, like a broker that is down; closing it also cuts the open connections.
struct Proxy {
    port: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        Self { port, tasks: Arc::default() }
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    async fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("proxy binds");
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = TcpStream::connect("127.0.0.1:5672").await else { continue };
                let pipe = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                tasks.lock().unwrap_or_else(|e| e.into_inner()).push(pipe);
            }
        });
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(accept);
    }

    fn close(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }
}

struct Observer {
    channel: Channel,
    connection: lapin::Connection,
    consumer: lapin::Consumer,
    queue: String,
    topology: Topology,
}

impl Observer {
    async fn new(topology: &Topology) -> Self {
        let connection =
            lapin::Connection::connect(AMQP, ConnectionProperties::default()).await.expect("rabbitmq up");
        let channel = connection.create_channel().await.expect("channel");
        topology.declare(&channel).await.expect("declare");
        let queue = format!("{}.observer", topology.events_exchange);
        channel
            .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("observer queue");
        channel
            .queue_bind(
                queue.as_str().into(),
                topology.events_exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "observer".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        Self { channel, connection, consumer, queue, topology: topology.clone() }
    }

    /// Message ids received until `n` distinct ones were seen.
    async fn distinct(&mut self, seen: &mut HashSet<String>, n: usize) {
        while seen.len() < n {
            let next = tokio::time::timeout(Duration::from_secs(20), self.consumer.next()).await;
            let delivery = next.expect("message within 20 s").expect("stream open").expect("delivery");
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
            let id = delivery.properties.message_id().as_ref().map(|s| s.to_string()).expect("message id");
            seen.insert(id);
        }
    }

    async fn nothing_for(&mut self, wait: Duration) {
        if let Ok(Some(delivery)) = tokio::time::timeout(wait, self.consumer.next()).await {
            panic!("unexpected message: {delivery:?}");
        }
    }

    async fn cleanup(self) {
        let t = &self.topology;
        for q in [&t.commands_queue, &t.dead_letter_queue, &self.queue] {
            let _ = self.channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for e in [&t.commands_exchange, &t.events_exchange, &t.dead_letter_exchange] {
            let _ = self.channel.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
        let _ = self.connection.close(200, "done".into()).await;
    }
}

fn event_message(topology: &Topology, step: usize) -> NewOutboxMessage {
    let event = Event::completed(&command(&format!("s{step}")), json!({"n": step}), 1);
    NewOutboxMessage {
        exchange: topology.events_exchange.clone(),
        routing_key: event.routing_key(),
        payload: serde_json::to_vec(&event).expect("json"),
    }
}

#[tokio::test]
async fn the_relay_publishes_what_was_written_while_the_broker_was_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(&dir).await;
    let topology = Topology::prefixed(&format!("relay-{}-{}", std::process::id(), fastrand::u64(..)));
    let mut observer = Observer::new(&topology).await;
    let proxy = Proxy::new();

    let mut config = RelayConfig::new(proxy.url());
    config.topology = Some(topology.clone());
    config.max_reconnect_delay = Duration::from_millis(300);
    config.batch_size = 16;
    config.poll_interval = Duration::from_secs(5);
    let relay = OutboxRelay::new(&store, config);
    let (waker, status) = (relay.waker(), relay.status());
    let (stop, stopped) = watch::channel(false);
    let handle = tokio::spawn(relay.run(stopped));

    // The broker is unreachable: messages wait in the store.
    for i in 0..50 {
        store.outbox().insert(&event_message(&topology, i)).await.expect("insert");
    }
    waker.wake();
    observer.nothing_for(Duration::from_millis(800)).await;
    assert!(!status.connected());
    assert_eq!(store.outbox().fetch_unpublished(100).await.expect("fetch").len(), 50);

    // The broker comes back: everything is published, with the events' ids as message ids.
    proxy.open().await;
    let mut seen = HashSet::new();
    observer.distinct(&mut seen, 50).await;
    assert!(seen.contains(&integration_bus::event_id("task", "s7")), "message id is the event id");

    // Lost again mid-way: later messages wait, then go out after the reconnection.
    proxy.close();
    for i in 50..80 {
        store.outbox().insert(&event_message(&topology, i)).await.expect("insert");
        waker.wake();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.open().await;
    observer.distinct(&mut seen, 80).await;
    assert_eq!(seen.len(), 80);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !store.outbox().fetch_unpublished(10).await.expect("fetch").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "outbox not drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while status.published() < 80 {
        assert!(tokio::time::Instant::now() < deadline, "published: {}", status.published());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Low latency: a wake publishes at once, well before the 5 s poll.
    let started = tokio::time::Instant::now();
    store.outbox().insert(&event_message(&topology, 80)).await.expect("insert");
    waker.wake();
    observer.distinct(&mut seen, 81).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    // No wake needed: a write through the store, here a clone of it as another component of the
    // process holds, wakes the relay itself.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let elsewhere = store.clone();
    let started = tokio::time::Instant::now();
    elsewhere.outbox().insert(&event_message(&topology, 81)).await.expect("insert");
    observer.distinct(&mut seen, 82).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), handle).await.expect("stops").expect("join").expect("ok");
    proxy.close();
    observer.cleanup().await;
    store.close().await;
}
