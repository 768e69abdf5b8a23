//! [`OutboxRelay`]: publishes the messages the api wrote into the store's outbox (Slack events,
//! inbound webhooks) to the broker, with confirms, and marks them published.
//!
//! The outbox is the transactional half of "publish an event": the producer writes the message in
//! its database transaction, whose commit wakes the relay of the same process (the store notifies
//! it; [`RelayWaker`] for anything else); the relay does the broker half whenever the broker is
//! reachable. While it is not, messages wait in the store and the relay reconnects with
//! jittered backoff. Publication is at-least-once (a crash between the confirm and the mark, or two
//! relays on one database, publishes a message twice): every message carries a stable
//! `message_id` (the payload's `event_id` when it has one) so consumers can drop duplicates.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use integration_store::{Outbox, OutboxMessage, Store};
use lapin::ExchangeKind;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use tokio::sync::{Notify, watch};

use crate::error::BusError;
use crate::publisher::Publisher;
use crate::topology::Topology;

/// Settings of an outbox relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub amqp_url: String,
    /// Declared on every (re)connection when set, so the events exchange exists before the first
    /// publication. Exchanges named by messages are declared too (durable topic) in any case.
    pub topology: Option<Topology>,
    /// Messages fetched and published per round.
    pub batch_size: u32,
    /// How often the outbox is polled when nobody wakes the relay (messages written by other
    /// replicas, or written without a wake).
    pub poll_interval: Duration,
    /// Largest pause between reconnection attempts.
    pub max_reconnect_delay: Duration,
    /// How long opening a broker connection may take before the attempt counts as failed.
    pub connect_timeout: Duration,
}

impl RelayConfig {
    /// Defaults for `amqp_url`: batches of 256, polled every second, reconnect within 10 s, 10 s
    /// to connect.
    pub fn new(amqp_url: impl Into<String>) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            topology: None,
            batch_size: 256,
            poll_interval: Duration::from_secs(1),
            max_reconnect_delay: Duration::from_secs(10),
            connect_timeout: crate::CONNECT_TIMEOUT,
        }
    }
}

/// Live state of a relay.
#[derive(Debug, Default)]
pub struct RelayStatus {
    connected: AtomicBool,
    published: AtomicU64,
}

impl RelayStatus {
    /// Whether the relay holds a broker connection.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Messages published and marked so far.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }
}

/// Wakes the relay right after a message was written, for low latency. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RelayWaker(Arc<Notify>);

impl RelayWaker {
    /// Ask the relay to look at the outbox now (a wake while it is busy is kept for later).
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Publishes outbox messages to the broker. See the [module docs](self).
pub struct OutboxRelay {
    outbox: Outbox,
    config: RelayConfig,
    waker: RelayWaker,
    status: Arc<RelayStatus>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay").field("batch_size", &self.config.batch_size).finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay for the outbox of `store`.
    pub fn new(store: &Store, config: RelayConfig) -> Self {
        Self {
            outbox: store.outbox(),
            config,
            // Every outbox write through this store (or a clone of it) wakes the relay.
            waker: RelayWaker(store.outbox_notifier()),
            status: Arc::new(RelayStatus::default()),
        }
    }

    /// The handle producers call after writing to the outbox.
    pub fn waker(&self) -> RelayWaker {
        self.waker.clone()
    }

    /// The relay's live status.
    pub fn status(&self) -> Arc<RelayStatus> {
        self.status.clone()
    }

    /// Publish until `shutdown` flips to `true`, reconnecting with jittered backoff whenever the
    /// broker is unreachable or the connection is lost. Returns [`BusError::InvalidUrl`] at once for
    /// a broker URL that cannot be read.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), BusError> {
        let mut reconnects = Reconnects::new(self.config.max_reconnect_delay);
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let started = Instant::now();
            let end = self.session(&mut shutdown).await;
            self.status.connected.store(false, Ordering::SeqCst);
            match end {
                Ok(()) => return Ok(()),
                // No retry makes an unreadable URL readable.
                Err(error @ BusError::InvalidUrl(_)) => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "outbox relay: broker unavailable, messages wait in the store")
                }
            }
            metrics::counter!("bus_outbox_reconnects_total").increment(1);
            reconnects.pause(started, &mut shutdown).await;
        }
    }

    /// One connection: returns `Ok` on shutdown, an error when the broker is lost.
    async fn session(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), BusError> {
        let connection = crate::connect(&self.config.amqp_url, self.config.connect_timeout).await?;
        let publisher = Publisher::open(&connection).await?;
        let mut declared = HashSet::new();
        if let Some(topology) = &self.config.topology {
            topology.declare(publisher.channel()).await?;
            declared.insert(topology.events_exchange.clone());
            declared.insert(topology.commands_exchange.clone());
        }
        self.status.connected.store(true, Ordering::SeqCst);
        tracing::info!("outbox relay connected");
        let result = self.publish_loop(&publisher, &mut declared, shutdown).await;
        if result.is_ok() {
            let _ = publisher.channel().close(200, "shutdown".into()).await;
            let _ = connection.close(200, "shutdown".into()).await;
        }
        result
    }

    async fn publish_loop(
        &self,
        publisher: &Publisher,
        declared: &mut HashSet<String>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), BusError> {
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let batch = match self.outbox.fetch_unpublished(self.config.batch_size).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay: cannot read the outbox");
                    if self.idle(shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                if self.idle(shutdown).await {
                    return Ok(());
                }
                continue;
            }
            for message in &batch {
                if !message.exchange.is_empty() && !declared.contains(&message.exchange) {
                    publisher
                        .channel()
                        .exchange_declare(
                            message.exchange.as_str().into(),
                            ExchangeKind::Topic,
                            ExchangeDeclareOptions { durable: true, ..Default::default() },
                            FieldTable::default(),
                        )
                        .await?;
                    declared.insert(message.exchange.clone());
                }
            }
            // Publish the whole batch at once (confirms come back pipelined), then mark.
            let ids: Vec<String> = batch.iter().map(message_id).collect();
            let results = futures::future::join_all(batch.iter().zip(&ids).map(|(message, id)| {
                publisher.publish_json(&message.exchange, &message.routing_key, id, &message.payload)
            }))
            .await;
            let mut refused = 0usize;
            for (message, result) in batch.iter().zip(results) {
                match result {
                    Ok(()) => match self.outbox.mark_published(message.id).await {
                        Ok(_) => {
                            self.status.published.fetch_add(1, Ordering::SeqCst);
                            metrics::counter!("bus_outbox_published_total").increment(1);
                        }
                        // Published but not marked: it goes out again later (at-least-once).
                        Err(error) => {
                            tracing::warn!(%error, id = message.id, "outbox relay: cannot mark a message published")
                        }
                    },
                    Err(BusError::Nacked { .. }) => refused += 1,
                    Err(error) => return Err(error),
                }
            }
            if refused > 0 {
                tracing::warn!(refused, "outbox relay: the broker refused messages; retrying later");
                if self.idle(shutdown).await {
                    return Ok(());
                }
            }
        }
    }

    /// Wait for a wake, the poll interval or shutdown; true when it is time to stop (shutdown
    /// asked, or its sender dropped).
    async fn idle(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = self.waker.0.notified() => false,
            _ = tokio::time::sleep(self.config.poll_interval) => false,
            changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
        }
    }
}

/// The payload's `event_id` when it is an event, else `outbox-{id}`: stable across re-publication.
fn message_id(message: &OutboxMessage) -> String {
    #[derive(serde::Deserialize)]
    struct WithId {
        event_id: String,
    }
    serde_json::from_slice::<WithId>(&message.payload)
        .map(|m| m.event_id)
        .unwrap_or_else(|_| format!("outbox-{}", message.id))
}

/// The pause between a lost broker session and the next attempt, shared by the worker and the
/// relay: [`backoff`] by the count of failures in a row, a count that starts over after a session
/// that lasted [`Reconnects::STABLE`].
pub(crate) struct Reconnects {
    failures: u32,
    max_delay: Duration,
}

impl Reconnects {
    /// A session this long was a working connection, not one more failed attempt.
    const STABLE: Duration = Duration::from_secs(30);

    pub(crate) fn new(max_delay: Duration) -> Self {
        Self { failures: 0, max_delay }
    }

    /// Wait before the next attempt after a session that began at `started`; a shutdown signal
    /// ends the wait at once.
    pub(crate) async fn pause(&mut self, started: Instant, shutdown: &mut watch::Receiver<bool>) {
        if started.elapsed() > Self::STABLE {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(backoff(self.failures, self.max_delay)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Exponential backoff from 100 ms with jitter in [50 %, 100 %], capped at `max`.
pub(crate) fn backoff(failures: u32, max: Duration) -> Duration {
    let ceiling = Duration::from_millis(100).saturating_mul(1u32 << failures.min(10)).min(max);
    ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod backoff_properties {
    use super::backoff;
    use proptest::prelude::*;
    use std::time::Duration;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The reconnect delay doubles from 100 ms per failure up to 2^10, never exceeds `max`, and its
        /// jitter keeps it in [50 %, 100 %] of that ceiling.
        #[test]
        fn reconnect_delay_stays_within_its_ceiling(failures in any::<u32>(), max_ms in 0u64..600_000, seed in any::<u64>()) {
            fastrand::seed(seed);
            let max = Duration::from_millis(max_ms);
            let doubling = Duration::from_millis(100 * 2u64.pow(failures.min(10)));
            let ceiling = doubling.min(max);
            let delay = backoff(failures, max);
            prop_assert!(delay <= max, "{delay:?} > max {max:?}");
            prop_assert!(delay <= Duration::from_millis(102_400), "{delay:?}");
            prop_assert!(delay <= ceiling && delay >= ceiling / 2, "{delay:?} outside [{:?}, {ceiling:?}]", ceiling / 2);
        }

        /// More failures never lower the ceiling.
        #[test]
        fn reconnect_ceiling_never_shrinks(failures in 0u32..64, max_ms in 0u64..600_000, seed in any::<u64>()) {
            let max = Duration::from_millis(max_ms);
            fastrand::seed(seed);
            let now = backoff(failures, max);
            fastrand::seed(seed);
            let later = backoff(failures + 1, max);
            // same jitter draw: the delay is monotone in the ceiling
            prop_assert!(later >= now, "{later:?} < {now:?} after one more failure");
        }
    }
}
