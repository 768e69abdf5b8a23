//! The worker: consume tool commands, run them through the executor, record the outcome, publish
//! the event with a broker confirm, then acknowledge the command (in batches, see `acks`).
//!
//! Order of effects for one command: `begin` (record `started`) → execute → `finish` (record the
//! event) → publish and wait for the confirm → ack. A crash anywhere leads to a redelivery, and
//! the recorded state decides what happens: a finished command re-publishes its recorded event; a
//! started one is re-executed only if its tool is idempotent, otherwise it fails as
//! `unknown_outcome`. So the upstream sees each command once, and each command gets an event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use integration_core::{Executor, Source, ToolCall};
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::acks::{self, Settle};
use crate::envelope::{Event, parse_command};
use crate::error::BusError;
use crate::outcome::{Begin, OutcomeStore};
use crate::publisher::Publisher;
use crate::topology::Topology;

/// Settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub amqp_url: String,
    /// Exchange and queue names.
    pub topology: Topology,
    /// Commands executed at once (`WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// Unacknowledged deliveries the broker may push ahead (`WORKER_PREFETCH`).
    pub prefetch: u16,
    /// How long SIGTERM waits for in-flight commands.
    pub shutdown_grace: Duration,
    /// Largest pause between reconnection attempts.
    pub max_reconnect_delay: Duration,
    /// Output budget of a result in an event (`MAX_OUTPUT_BYTES`): anything cut is marked
    /// `"truncated": true` with counts, never cut mid-JSON.
    pub max_output_bytes: usize,
    /// How long a delivery whose command another delivery has started (and not finished) waits
    /// for that outcome before reporting `unknown_outcome`. It should exceed the executor's
    /// deadline, so a duplicate publication of a command in flight gets the real outcome.
    pub in_flight_wait: Duration,
    /// How long opening a broker connection may take before the attempt counts as failed.
    pub connect_timeout: Duration,
}

impl WorkerConfig {
    /// Defaults for `amqp_url`: concurrency 32, prefetch 64, 30 s grace, 10 s to connect.
    pub fn new(amqp_url: impl Into<String>) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            topology: Topology::default(),
            concurrency: 32,
            prefetch: 64,
            shutdown_grace: Duration::from_secs(30),
            max_reconnect_delay: Duration::from_secs(10),
            max_output_bytes: 65_536,
            in_flight_wait: Duration::from_secs(35),
            connect_timeout: crate::CONNECT_TIMEOUT,
        }
    }
}

/// Live state of a worker, for health endpoints and tests.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    connected: AtomicBool,
    pub(crate) processed: AtomicU64,
    reconnects: AtomicU64,
}

impl WorkerStatus {
    /// Whether the worker is consuming.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Commands acknowledged so far.
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::SeqCst)
    }

    /// Connections lost and re-established.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::SeqCst)
    }
}

/// A bus worker.
pub struct Worker {
    executor: Executor,
    outcomes: Arc<dyn OutcomeStore>,
    config: WorkerConfig,
    status: Arc<WorkerStatus>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("topology", &self.config.topology).finish_non_exhaustive()
    }
}

enum SessionEnd {
    Shutdown,
    Lost(String),
}

enum Disposition {
    Ack,
    DeadLetter,
}

impl Worker {
    /// A worker running commands through `executor`, recording outcomes in `outcomes`.
    pub fn new(executor: Executor, outcomes: Arc<dyn OutcomeStore>, config: WorkerConfig) -> Self {
        Self { executor, outcomes, config, status: Arc::new(WorkerStatus::default()) }
    }

    /// The worker's live status.
    pub fn status(&self) -> Arc<WorkerStatus> {
        self.status.clone()
    }

    /// Consume until `shutdown` flips to `true`, reconnecting with jittered backoff whenever the
    /// connection or a channel is lost. On shutdown: stop consuming, finish in-flight commands
    /// within the grace period, close cleanly. Returns [`BusError::InvalidUrl`] at once for a broker
    /// URL that cannot be read.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), BusError> {
        let mut reconnects = crate::relay::Reconnects::new(self.config.max_reconnect_delay);
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let started = Instant::now();
            let end = self.session(&mut shutdown).await;
            self.status.connected.store(false, Ordering::SeqCst);
            match end {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Lost(reason)) => tracing::warn!(%reason, "broker connection lost"),
                // No retry makes an unreadable URL readable.
                Err(error @ BusError::InvalidUrl(_)) => return Err(error),
                Err(error) => tracing::warn!(%error, "broker session failed"),
            }
            self.status.reconnects.fetch_add(1, Ordering::SeqCst);
            metrics::counter!("bus_reconnects_total").increment(1);
            reconnects.pause(started, &mut shutdown).await;
        }
    }

    async fn session(&self, shutdown: &mut watch::Receiver<bool>) -> Result<SessionEnd, BusError> {
        let connection = crate::connect(&self.config.amqp_url, self.config.connect_timeout).await?;
        let channel = connection.create_channel().await?;
        self.config.topology.declare(&channel).await?;
        channel.basic_qos(self.config.prefetch, BasicQosOptions::default()).await?;
        let publisher = Publisher::open(&connection).await?;
        let tag = format!("integrations-worker-{}", std::process::id());
        let mut consumer = channel
            .basic_consume(
                self.config.topology.commands_queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        self.status.connected.store(true, Ordering::SeqCst);
        tracing::info!(queue = %self.config.topology.commands_queue, "consuming commands");
        let (settles, settled) = mpsc::unbounded_channel();
        let mut acker =
            tokio::spawn(acks::run(channel.clone(), self.config.prefetch, settled, self.status.clone()));

        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let end = loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break SessionEnd::Lost("worker semaphore closed".into()),
                },
                _ = shutdown.changed() => break SessionEnd::Shutdown,
            };
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = shutdown.changed() => break SessionEnd::Shutdown,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => { drop(permit); continue; }
            };
            match next {
                Some(Ok(delivery)) => {
                    // Registered before the handler exists, so the ledger sees it in flight
                    // before it can be finished.
                    let _ = settles.send(Settle::Delivered(delivery.delivery_tag));
                    let handler = Handler {
                        executor: self.executor.clone(),
                        outcomes: self.outcomes.clone(),
                        publisher: publisher.clone(),
                        events_exchange: self.config.topology.events_exchange.clone(),
                        settles: settles.clone(),
                        max_output_bytes: self.config.max_output_bytes,
                        in_flight_wait: self.config.in_flight_wait,
                    };
                    tasks.spawn(async move {
                        handler.handle(delivery).await;
                        drop(permit);
                    });
                }
                Some(Err(error)) => break SessionEnd::Lost(error.to_string()),
                None => break SessionEnd::Lost("consumer cancelled by the broker".into()),
            }
            while tasks.try_join_next().is_some() {}
        };

        if matches!(end, SessionEnd::Shutdown) {
            tracing::info!(in_flight = tasks.len(), "stopping: no new commands, finishing in-flight ones");
            let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
            let drained = tokio::time::timeout(self.config.shutdown_grace, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    abandoned = tasks.len(),
                    "grace period over; unfinished commands will be redelivered"
                );
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
            // Every handler is gone: the acker sends what it holds and ends.
            drop(settles);
            if tokio::time::timeout(Duration::from_secs(5), &mut acker).await.is_err() {
                tracing::warn!("acknowledgements not sent within 5 s; those commands will be redelivered");
            }
            let _ = publisher.channel().close(200, "shutdown".into()).await;
            let _ = channel.close(200, "shutdown".into()).await;
            let _ = connection.close(200, "shutdown".into()).await;
        } else if !tasks.is_empty() {
            // The connection is gone: in-flight work cannot be acked and the broker redelivers it.
            // Let it run to its recorded outcome first (its publish fails fast), so the redelivery
            // finds `Done` and re-publishes instead of finding `started` (`unknown_outcome`).
            let drained = tokio::time::timeout(self.config.shutdown_grace, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(abandoned = tasks.len(), "in-flight commands outlived the grace period");
                tasks.abort_all();
            }
        }
        // Lost connection, or a shutdown whose acks did not go out in time: stop the acker.
        acker.abort();
        Ok(end)
    }
}

struct Handler {
    executor: Executor,
    outcomes: Arc<dyn OutcomeStore>,
    publisher: Publisher,
    events_exchange: String,
    settles: mpsc::UnboundedSender<Settle>,
    max_output_bytes: usize,
    in_flight_wait: Duration,
}

/// What became of a command found `started` by another delivery.
enum Waited {
    /// It finished meanwhile: re-publish its event.
    Done(Box<Event>),
    /// Its record is gone (purged): this delivery owns it now.
    Claimed,
    /// Still `started` after the wait: its outcome is unknown.
    StillStarted,
}

impl Handler {
    async fn handle(self, delivery: Delivery) {
        let span = tracing::info_span!("bus_command", routing_key = %delivery.routing_key);
        // The publisher's `traceparent` header, if any, becomes the parent (with the `otel` feature).
        let headers = delivery.properties.headers().as_ref();
        integration_core::propagation::set_parent(&span, &|name| header_text(headers, name));
        let result = self.process(&delivery).instrument(span).await;
        let tag = delivery.delivery_tag;
        let settle = match result {
            Ok(Disposition::Ack) => Settle::Ack(tag),
            Ok(Disposition::DeadLetter) => Settle::DeadLetter(tag),
            Err(error) => {
                tracing::warn!(%error, "command not settled, returning it to the queue");
                Settle::Requeue(tag)
            }
        };
        // A closed acker means the connection is gone: the broker redelivers.
        let _ = self.settles.send(settle);
    }

    async fn process(&self, delivery: &Delivery) -> Result<Disposition, BusError> {
        let command = match parse_command(&delivery.data) {
            Ok(command) => command,
            Err((ids, reason)) => {
                tracing::warn!(%reason, "invalid command, dead-lettering it");
                if let (Some(task_id), Some(step_id)) = (ids.task_id.as_deref(), ids.step_id.as_deref()) {
                    let tool = ids.tool_name.as_deref().unwrap_or("unknown");
                    let event = Event::failed(task_id, step_id, tool, "invalid_command", &reason);
                    self.publisher.publish_event(&self.events_exchange, &event).await?;
                }
                return Ok(Disposition::DeadLetter);
            }
        };
        let key = command.key();
        match self.outcomes.begin(&key).await? {
            Begin::Done(event) => {
                metrics::counter!("bus_redelivered_outcomes_total").increment(1);
                self.publisher.publish_event(&self.events_exchange, &event).await?;
                return Ok(Disposition::Ack);
            }
            Begin::Started => {
                let idempotent = self
                    .executor
                    .registry()
                    .get(&command.tool_name)
                    .map(|tool| tool.spec().hints.idempotent)
                    .unwrap_or(true);
                if !idempotent {
                    // Another delivery of the same command (a duplicate publication, or the
                    // broker's redelivery while the first worker still runs it) may be in flight:
                    // wait for its outcome rather than reporting a conflicting one.
                    match self.wait_for_outcome(&key).await? {
                        Waited::Done(event) => {
                            metrics::counter!("bus_redelivered_outcomes_total").increment(1);
                            self.publisher.publish_event(&self.events_exchange, &event).await?;
                            return Ok(Disposition::Ack);
                        }
                        Waited::Claimed => return self.execute(&command, &key).await,
                        Waited::StillStarted => {}
                    }
                    let event = Event::failed(
                        &command.task_id,
                        &command.step_id,
                        &command.tool_name,
                        "unknown_outcome",
                        "a previous attempt may have reached the upstream and its outcome was not recorded; \
                         check the upstream before sending this command again",
                    );
                    self.outcomes.finish(&key, &event).await?;
                    self.publisher.publish_event(&self.events_exchange, &event).await?;
                    return Ok(Disposition::Ack);
                }
            }
            Begin::New => {}
        }
        self.execute(&command, &key).await
    }

    /// Poll the record of `key` until it is finished or `in_flight_wait` has passed.
    async fn wait_for_outcome(&self, key: &str) -> Result<Waited, BusError> {
        let started = Instant::now();
        loop {
            let left = self.in_flight_wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(Waited::StillStarted);
            }
            tokio::time::sleep(left.min(Duration::from_millis(250))).await;
            match self.outcomes.begin(key).await? {
                Begin::Done(event) => return Ok(Waited::Done(event)),
                Begin::New => return Ok(Waited::Claimed),
                Begin::Started => {}
            }
        }
    }

    /// Run the command (its record says `started` and belongs to this delivery), record the
    /// outcome, publish the event.
    async fn execute(&self, command: &crate::envelope::Command, key: &str) -> Result<Disposition, BusError> {
        let key = key.to_owned();
        let call = ToolCall {
            tool: command.tool_name.clone(),
            connection: command.connection.clone(),
            params: command.parameters.clone(),
            idempotency_key: Some(key.clone()),
            source: Source::Bus,
            use_cache: true,
        };
        let mut outcome = self.executor.execute(call).await;
        let event = match outcome.result.as_mut() {
            Ok(result) => {
                let duration_ms = u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX);
                let result =
                    integration_core::shape::shape(std::mem::take(result), &[], self.max_output_bytes);
                Event::completed(command, result, duration_ms)
            }
            Err(_) => Event::from_outcome(command, &outcome),
        };
        // Serialized once: the same text is recorded and published.
        let payload = serde_json::to_string(&event)?;
        self.outcomes.finish_with_json(&key, &event, &payload).await?;
        self.publisher.publish_event_json(&self.events_exchange, &event, payload.as_bytes()).await?;
        Ok(Disposition::Ack)
    }
}

/// A text header of an AMQP message (long or short string).
fn header_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok().map(str::to_owned),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}
