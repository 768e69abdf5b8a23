//! Bus worker benchmark (not a test): publishes N tool commands (persistent, publisher confirms)
//! to a fresh quorum queue on the real RabbitMQ at 127.0.0.1:5672, runs the in-process worker with
//! the chosen outcome store against the fake Jira on loopback, and measures commands per second
//! and the time from publishing a command to receiving its event.
//!
//! ```text
//! cargo run --release -p integrations-e2e --example bus_bench -- --commands 20000 --store postgres
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::StreamExt;
use integration_bus::{
    MemoryOutcomes, OutcomeStore, Publisher, StoreOutcomes, Topology, Worker, WorkerConfig,
};
use integration_core::{Connection, Executor, ExecutorConfig, InMemoryConnections, Registry};
use integration_store::{Store, StoreConfig};
use integration_testkit::FakeServer;
use integration_testkit::jira::{FakeJira, router};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ConnectionProperties};
use serde_json::json;
use sqlx::AssertSqlSafe;
use tokio::sync::watch;

/// The allocator the worker binary uses.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MASTER_KEY: &str = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// In-process records (no durability across crashes): the broker and executor alone.
    Memory,
    /// SQLite file in a temp dir.
    Sqlite,
    /// The PostgreSQL at 127.0.0.1:5432 (fresh schema, dropped afterwards).
    Postgres,
}

/// Publish N commands, run the worker, measure.
#[derive(Debug, Parser)]
struct Args {
    /// Commands to publish.
    #[arg(long, default_value_t = 20_000)]
    commands: usize,
    /// Where outcome records live.
    #[arg(long, value_enum, default_value = "postgres")]
    store: StoreKind,
    /// Worker concurrency.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Worker prefetch.
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
    /// Unconfirmed publications in flight at once.
    #[arg(long, default_value_t = 512)]
    publish_window: usize,
    /// Write an audit row per call (the store observer), as the binary does.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    audit: bool,
    /// How the event observer (standing for the agent) acknowledges events.
    #[arg(long, value_enum, default_value = "each")]
    observer_ack: ObserverAck,
    /// The classic queue version of the observer's events queue (`x-queue-version`, RabbitMQ
    /// 3.10+): 1 (the default of 3.x) or 2 (its newer index and store; the default from 4.0).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=2))]
    events_queue_version: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ObserverAck {
    /// Consume with `no_ack` (the broker then need not keep the events at all).
    None,
    /// One `basic.ack` per event.
    Each,
    /// One `basic.ack` with `multiple` per 256 events.
    Batch,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.commands;

    // Upstream: the fake Jira on loopback; the tool: jira_get_issue (one GET per command).
    let jira = FakeJira::demo();
    let server = FakeServer::start(router(jira.clone())).await?;
    let registry = Arc::new(Registry::new());
    registry.add(integration_jira::provider())?;
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(
        Connection::new(
            "jira",
            "jira",
            json!({"base_url": server.base_url(), "username": FakeJira::USERNAME}),
        )
        .with_secret("api_token", FakeJira::API_TOKEN),
    );
    let config = ExecutorConfig { rate_limit_per_minute: 100_000_000, ..Default::default() };
    let mut executor = Executor::new(registry, connections, config);

    // Outcome records.
    let dir = tempfile::tempdir()?;
    let mut schema = None;
    let mut store = None;
    let outcomes: Arc<dyn OutcomeStore> = match args.store {
        StoreKind::Memory => Arc::new(MemoryOutcomes::default()),
        StoreKind::Sqlite | StoreKind::Postgres => {
            let url = if args.store == StoreKind::Postgres {
                let name = format!("bus_bench_{}", std::process::id());
                let admin = sqlx::PgPool::connect(PG_URL).await?;
                sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&admin).await?;
                admin.close().await;
                let url = format!("{PG_URL}?options[search_path]={name}");
                schema = Some(name);
                Some(url)
            } else {
                None
            };
            let data_dir = dir.path().display().to_string();
            let opened = Store::open(StoreConfig::from_lookup(&|name| match name {
                "DATABASE_URL" => url.clone(),
                "INTEGRATIONS_MASTER_KEY" => Some(MASTER_KEY.to_owned()),
                "INTEGRATIONS_DATA_DIR" => Some(data_dir.clone()),
                _ => None,
            }))
            .await?;
            if args.audit {
                executor = executor.with_observer(Arc::new(opened.clone()));
            }
            let outcomes = Arc::new(StoreOutcomes::new(&opened));
            store = Some(opened);
            outcomes
        }
    };

    // Topology and the event observer (a durable classic queue).
    let prefix = format!("bench-{}", std::process::id());
    let topology = Topology::prefixed(&prefix);
    let connection = lapin::Connection::connect(AMQP, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    let events_queue = format!("{prefix}.events");
    let mut events_queue_args = FieldTable::default();
    events_queue_args.insert("x-queue-version".into(), AMQPValue::LongInt(args.events_queue_version));
    channel
        .queue_declare(
            events_queue.as_str().into(),
            QueueDeclareOptions { durable: true, ..Default::default() },
            events_queue_args,
        )
        .await?;
    channel
        .queue_bind(
            events_queue.as_str().into(),
            topology.events_exchange.as_str().into(),
            "integrations.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut worker_config = WorkerConfig::new(AMQP);
    worker_config.topology = topology.clone();
    worker_config.concurrency = args.concurrency;
    worker_config.prefetch = args.prefetch;
    let worker = Worker::new(executor, outcomes, worker_config);
    let status = worker.status();
    let (stop, stopped) = watch::channel(false);
    let worker_task = tokio::spawn(worker.run(stopped));
    while !status.connected() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Event consumer: arrival time per command index.
    let arrivals: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let events_connection = lapin::Connection::connect(AMQP, ConnectionProperties::default()).await?;
    let events_channel = events_connection.create_channel().await?;
    events_channel.basic_qos(1000, BasicQosOptions::default()).await?;
    // The observer stands for the agent. Its acknowledgements cost the broker (a durable queue keeps
    // each event until acked; with `no_ack` it need not), so `--observer-ack` shows both.
    let observer_ack = args.observer_ack;
    let mut consumer = events_channel
        .basic_consume(
            events_queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions { no_ack: observer_ack == ObserverAck::None, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    let sink = arrivals.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Instant>();
    let consumer_task = tokio::spawn(async move {
        let mut done = Some(done_tx);
        let mut failed = 0usize;
        let mut received = 0usize;
        while let Some(Ok(delivery)) = consumer.next().await {
            let now = Instant::now();
            let event: integration_bus::Event = serde_json::from_slice(&delivery.data).expect("event");
            if event.status != integration_bus::Status::Completed {
                failed += 1;
                if failed <= 3 {
                    eprintln!("failed event: {:?} {:?}", event.error_type, event.error);
                }
            }
            let index: usize = event.step_id.trim_start_matches('s').parse().expect("index");
            received += 1;
            match observer_ack {
                ObserverAck::None => {}
                ObserverAck::Each => {
                    let _ = delivery.ack(BasicAckOptions { multiple: false }).await;
                }
                ObserverAck::Batch if received.is_multiple_of(256) => {
                    let _ = delivery.ack(BasicAckOptions { multiple: true }).await;
                }
                ObserverAck::Batch => {}
            }
            let count = {
                let mut map = sink.lock().unwrap_or_else(|e| e.into_inner());
                map.entry(index).or_insert(now);
                map.len()
            };
            if count == n
                && let Some(tx) = done.take()
            {
                let _ = tx.send(now);
            }
        }
    });

    // Publish: persistent commands, confirms awaited in a bounded window.
    let publisher = Publisher::open(&connection).await?;
    let mut published = vec![Instant::now(); n];
    let started = Instant::now();
    let mut window = std::collections::VecDeque::new();
    for (i, at) in published.iter_mut().enumerate() {
        let body = json!({"task_id": "bench", "step_id": format!("s{i}"), "tool_name": "jira_get_issue",
                          "parameters": {"key": "ENG-1"}});
        *at = Instant::now();
        let confirm = publisher
            .channel()
            .basic_publish(
                topology.commands_exchange.as_str().into(),
                "integrations.jira".into(),
                BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into()),
            )
            .await?;
        window.push_back(confirm);
        if window.len() >= args.publish_window
            && let Some(oldest) = window.pop_front()
        {
            anyhow::ensure!(oldest.await?.is_ack(), "publication nacked");
        }
    }
    for confirm in window {
        anyhow::ensure!(confirm.await?.is_ack(), "publication nacked");
    }
    let publish_elapsed = started.elapsed();
    let finished = tokio::time::timeout(Duration::from_secs(600), done_rx).await??;
    let elapsed = finished - started;

    let arrivals = arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut latencies: Vec<Duration> = (0..n).map(|i| arrivals[&i] - published[i]).collect();
    latencies.sort();
    println!(
        "bus_bench: {n} commands (jira_get_issue, store {:?}, audit {}, concurrency {}, prefetch {}, observer acks {:?}): \
         {:.0} commands/s end to end ({:.2} s); publishing alone {:.0}/s; \
         publish->event p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; upstream calls {}",
        args.store,
        args.audit && args.store != StoreKind::Memory,
        args.concurrency,
        args.prefetch,
        args.observer_ack,
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        n as f64 / publish_elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        server.calls_to("/rest/api/3/issue"),
    );

    // Clean up.
    let _ = stop.send(true);
    let _ = worker_task.await;
    consumer_task.abort();
    for q in [&topology.commands_queue, &topology.dead_letter_queue, &events_queue] {
        let _ = channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    }
    for e in [&topology.commands_exchange, &topology.events_exchange, &topology.dead_letter_exchange] {
        let _ = channel.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = events_connection.close(200, "done".into()).await;
    let _ = connection.close(200, "done".into()).await;
    if let Some(store) = store {
        store.close().await;
    }
    if let Some(name) = schema {
        let admin = sqlx::PgPool::connect(PG_URL).await?;
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).execute(&admin).await?;
        admin.close().await;
    }
    Ok(())
}
