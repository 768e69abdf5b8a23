//! The bus under faults (a script, not a test; `scripts/bus-faults.sh` builds and runs it): N
//! `jira_create_issue` commands through the real `integrations-worker` binary (PostgreSQL outcome
//! records, the fake Jira on loopback), while either RabbitMQ is restarted (`rabbitmqctl stop_app`
//! / `start_app`) or the worker is killed with SIGKILL and started again. Then it counts: commands
//! without an event (must be 0), events published more than once (allowed: same `event_id`),
//! issues created twice at the fake (duplicated upstream effects, must be 0), outcomes by type, and
//! the time from each fault to the next event.
//!
//! ```text
//! cargo build --release -p integrations-worker -p integrations-e2e --example bus_faults
//! target/release/examples/bus_faults --commands 10000 --fault broker --times 2
//! target/release/examples/bus_faults --commands 10000 --fault kill --times 3
//! ```
//!
//! Creates are not idempotent: a command whose worker died after calling the fake and before
//! recording the outcome fails with `unknown_outcome` (by design; the agent checks before
//! repeating it), so those are counted, not treated as errors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::StreamExt;
use integration_bus::{Event, Status, Topology};
use integration_testkit::FakeServer;
use integration_testkit::jira::{FakeJira, router};
use integrations_e2e::{free_port, wait_healthy};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, ConnectionProperties};
use serde_json::json;
use sqlx::AssertSqlSafe;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MASTER_KEY: &str = "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FaultKind {
    /// `rabbitmqctl stop_app`, a pause, `rabbitmqctl start_app`.
    Broker,
    /// SIGKILL the worker process, start a new one at once.
    Kill,
}

/// Run N commands through the worker binary while injecting faults.
#[derive(Debug, Parser)]
struct Args {
    /// Commands to publish.
    #[arg(long, default_value_t = 10_000)]
    commands: usize,
    /// The fault to inject.
    #[arg(long, value_enum)]
    fault: FaultKind,
    /// How many times, spread over the run.
    #[arg(long, default_value_t = 2)]
    times: usize,
    /// Commands published per second (the run lasts about commands / rate seconds).
    #[arg(long, default_value_t = 200)]
    rate: usize,
    /// How long the broker stays down per fault.
    #[arg(long, default_value_t = 5)]
    down_seconds: u64,
    /// The worker binary (default: next to this example's directory).
    #[arg(long)]
    worker: Option<PathBuf>,
    /// Give up waiting for the last events after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_seconds: u64,
}

/// What the event observer saw, per step id.
#[derive(Default)]
struct Seen {
    events: HashMap<String, Vec<Event>>,
    last: Option<Instant>,
    total: usize,
}

fn rabbitmqctl(args: &[&str]) -> bool {
    std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn start_broker() {
    if !rabbitmqctl(&["start_app"]) {
        let _ = std::process::Command::new("rabbitmq-server").arg("-detached").status();
    }
    let _ = rabbitmqctl(&["await_startup"]);
}

/// Starts the broker again if the run stops while it is down.
struct BrokerGuard;

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        start_broker();
    }
}

struct WorkerProcess {
    child: std::process::Child,
}

impl WorkerProcess {
    async fn spawn(
        binary: &PathBuf,
        env: &[(String, String)],
        log: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let port = free_port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let mut command = std::process::Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WORKER_METRICS_BIND", format!("127.0.0.1:{port}"))
            .stdout(log.try_clone()?)
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn()?;
        wait_healthy(&format!("http://127.0.0.1:{port}/healthz"), Duration::from_secs(30)).await?;
        Ok(Self { child })
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Consume events until the process ends, reconnecting after broker restarts.
async fn observe(queue: String, seen: Arc<Mutex<Seen>>) {
    loop {
        let session = async {
            let connection = lapin::Connection::connect(AMQP, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            channel.basic_qos(1000, BasicQosOptions::default()).await?;
            let mut consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "faults-observer".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            while let Some(delivery) = consumer.next().await {
                let delivery = delivery?;
                if let Ok(event) = serde_json::from_slice::<Event>(&delivery.data) {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.total += 1;
                    seen.last = Some(Instant::now());
                    seen.events.entry(event.step_id.clone()).or_default().push(event);
                }
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Ok::<(), lapin::Error>(())
        };
        let _ = session.await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publish every command with a broker confirm, at `rate` per second, retrying (on a new
/// connection) whatever the broker did not confirm. Returns how many publications were repeated.
async fn publish_all(exchange: String, n: usize, rate: usize, task: String) -> usize {
    let mut repeated = 0;
    let mut next = 0;
    let started = Instant::now();
    while next < n {
        let attempt = async {
            let connection = lapin::Connection::connect(AMQP, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            while next < n {
                let due = started + Duration::from_secs_f64(next as f64 / rate.max(1) as f64);
                tokio::time::sleep_until(due.into()).await;
                let body = json!({"task_id": task, "step_id": format!("s{next}"), "tool_name": "jira_create_issue",
                                  "parameters": {"project_key": "ENG", "summary": format!("{task} s{next}")}});
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        "integrations.jira_create_issue".into(),
                        BasicPublishOptions::default(),
                        &serde_json::to_vec(&body).unwrap_or_default(),
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?
                    .await?;
                if confirm.is_ack() {
                    next += 1;
                }
            }
            Ok::<(), lapin::Error>(())
        };
        if attempt.await.is_err() {
            // The command being published may or may not have reached the queue: publishing it
            // again is the publisher's at-least-once, which the worker's records make harmless.
            repeated += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    repeated
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.commands;
    let worker_binary = match &args.worker {
        Some(path) => path.clone(),
        None => {
            let exe = std::env::current_exe()?;
            // target/<profile>/examples/bus_faults -> target/<profile>/integrations-worker
            let dir = exe
                .parent()
                .and_then(|examples| examples.parent())
                .ok_or_else(|| anyhow::anyhow!("target dir"))?;
            dir.join("integrations-worker")
        }
    };
    anyhow::ensure!(worker_binary.exists(), "no worker binary at {}", worker_binary.display());

    // The upstream, the database schema, the topology, the observer queue.
    let jira = FakeJira::demo();
    let demo_issues = jira.issue_count();
    let server = FakeServer::start(router(jira.clone())).await?;
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let id = format!("faults_{}_{}", std::process::id(), since_epoch.as_secs());
    let admin = sqlx::PgPool::connect(PG_URL).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {id}"))).execute(&admin).await?;
    let topology = Topology::prefixed(&id);
    let events_queue = format!("{id}.events");
    {
        let connection = lapin::Connection::connect(AMQP, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        topology.declare(&channel).await?;
        let mut quorum = FieldTable::default();
        quorum.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("quorum")));
        channel
            .queue_declare(
                events_queue.as_str().into(),
                QueueDeclareOptions { durable: true, ..Default::default() },
                quorum,
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
        connection.close(200, "declared".into()).await?;
    }
    let env: Vec<(String, String)> = [
        ("AMQP_URL", AMQP.to_owned()),
        ("DATABASE_URL", format!("{PG_URL}?options[search_path]={id}")),
        ("INTEGRATIONS_MASTER_KEY", MASTER_KEY.to_owned()),
        ("JIRA_BASE_URL", server.base_url().to_owned()),
        ("JIRA_USERNAME", FakeJira::USERNAME.to_owned()),
        ("JIRA_API_TOKEN", FakeJira::API_TOKEN.to_owned()),
        ("RATE_LIMIT_PER_MINUTE", "100000000".to_owned()),
        ("WORKER_CONCURRENCY", "32".to_owned()),
        ("LOG_LEVEL", "warn".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
        ("BUS_COMMANDS_EXCHANGE", topology.commands_exchange.clone()),
        ("BUS_EVENTS_EXCHANGE", topology.events_exchange.clone()),
        ("BUS_COMMANDS_QUEUE", topology.commands_queue.clone()),
        ("BUS_COMMANDS_BINDING", topology.commands_binding.clone()),
        ("BUS_DEAD_LETTER_EXCHANGE", topology.dead_letter_exchange.clone()),
        ("BUS_DEAD_LETTER_QUEUE", topology.dead_letter_queue.clone()),
        ("BUS_DELIVERY_LIMIT", topology.delivery_limit.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let log = std::env::temp_dir().join(format!("{id}.worker.log"));
    let mut worker = WorkerProcess::spawn(&worker_binary, &env, &log).await?;

    let seen = Arc::new(Mutex::new(Seen::default()));
    let observer = tokio::spawn(observe(events_queue.clone(), seen.clone()));
    let started = Instant::now();
    let publisher = tokio::spawn(publish_all(topology.commands_exchange.clone(), n, args.rate, id.clone()));
    let distinct = |seen: &Arc<Mutex<Seen>>| seen.lock().unwrap_or_else(|e| e.into_inner()).events.len();

    // Faults at evenly spread points of the run, each once the events have got that far.
    let _guard = BrokerGuard;
    let mut recoveries = Vec::new();
    for k in 1..=args.times {
        let at = n * k / (args.times + 1);
        while distinct(&seen) < at {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fault_at = Instant::now();
        let before = distinct(&seen);
        match args.fault {
            FaultKind::Broker => {
                tokio::task::spawn_blocking(|| rabbitmqctl(&["stop_app"])).await?;
                tokio::time::sleep(Duration::from_secs(args.down_seconds)).await;
                tokio::task::spawn_blocking(start_broker).await?;
            }
            FaultKind::Kill => {
                worker.kill();
                worker = WorkerProcess::spawn(&worker_binary, &env, &log).await?;
            }
        }
        let back = Instant::now();
        // Recovered: the first event of a command not seen before the fault, after it ended.
        let deadline = back + Duration::from_secs(120);
        while distinct(&seen) <= before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let recovered = Instant::now();
        recoveries.push((
            k,
            back.duration_since(fault_at).as_secs_f64(),
            recovered.duration_since(fault_at).as_secs_f64(),
        ));
        eprintln!(
            "fault {k}: at {before} events, fault lasted {:.2} s, next new event {:.2} s after the fault began",
            back.duration_since(fault_at).as_secs_f64(),
            recovered.duration_since(fault_at).as_secs_f64()
        );
    }
    let republished = publisher.await?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    while distinct(&seen) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates, if any, arrive within a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = started.elapsed();

    // Count.
    let (missing, duplicates, by_type, total) = {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let missing = (0..n).filter(|i| !seen.events.contains_key(&format!("s{i}"))).count();
        let duplicates: usize = seen.events.values().map(|v| v.len().saturating_sub(1)).sum();
        let mut by_type: HashMap<String, usize> = HashMap::new();
        for events in seen.events.values() {
            if let Some(first) = events.first() {
                let key = match first.status {
                    Status::Completed => "completed".to_owned(),
                    Status::Failed => first.error_type.clone().unwrap_or_else(|| "failed".into()),
                };
                *by_type.entry(key).or_default() += 1;
            }
            // every publication of one command carries the same outcome
            if events.iter().any(|e| e.event_id != events[0].event_id || e.status != events[0].status) {
                eprintln!("inconsistent events for {}", events[0].step_id);
            }
        }
        (missing, duplicates, by_type, seen.total)
    };
    let summaries = jira.issue_summaries();
    let mut per_summary: HashMap<&str, usize> = HashMap::new();
    for s in summaries.iter().filter(|s| s.starts_with(&id)) {
        *per_summary.entry(s.as_str()).or_default() += 1;
    }
    let duplicated_effects: usize = per_summary.values().map(|c| c.saturating_sub(1)).sum();
    let created = jira.issue_count() - demo_issues;
    let mut recovery: Vec<f64> = recoveries.iter().map(|r| r.2).collect();
    recovery.sort_by(f64::total_cmp);

    println!(
        "bus_faults: {n} commands, fault {:?} x{}: {:.1} s; events {total} for {} commands; \
         missing {missing}; re-published {duplicates}; publisher retries {republished}; \
         upstream issues {created}, duplicated effects {duplicated_effects}; outcomes {:?}; \
         recovery (fault start -> next new event) s: {:?} (max {:.2})",
        args.fault,
        args.times,
        elapsed.as_secs_f64(),
        n - missing,
        by_type,
        recoveries.iter().map(|r| (r.0, (r.2 * 100.0).round() / 100.0)).collect::<Vec<_>>(),
        percentile(&recovery, 1.0),
    );

    // Clean up.
    observer.abort();
    drop(worker);
    if let Ok(connection) = lapin::Connection::connect(AMQP, ConnectionProperties::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        for q in [&topology.commands_queue, &topology.dead_letter_queue, &events_queue] {
            let _ = channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for e in [&topology.commands_exchange, &topology.events_exchange, &topology.dead_letter_exchange] {
            let _ = channel.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
        let _ = connection.close(200, "done".into()).await;
    }
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {id} CASCADE"))).execute(&admin).await?;
    admin.close().await;
    let _ = std::fs::remove_file(&log);

    anyhow::ensure!(missing == 0, "{missing} commands got no event");
    anyhow::ensure!(duplicated_effects == 0, "{duplicated_effects} upstream effects were duplicated");
    Ok(())
}
