//! Settling deliveries in batches.
//!
//! A `basic.ack` per command costs a frame from the worker and, on a quorum queue, a Raft command
//! (a WAL entry) in RabbitMQ. Acknowledging with `multiple` settles every delivery up to a tag in
//! one frame and one Raft command. That is only correct up to the oldest delivery still being
//! handled, so this module keeps the ledger: which tags were delivered, which are finished, and
//! which acknowledgements can go out now.
//!
//! A finished delivery above an unfinished one is held, not acknowledged at once, so that the
//! next `multiple` covers it too. Held deliveries count against the prefetch window, so holding is
//! bounded: once more than a quarter of the prefetch is held, or the oldest held one has waited
//! [`MAX_HOLD`], they go out one by one. Rejections and requeues are never held (they are rare
//! and their order against the acknowledgements does not matter: each names its own tag).
//!
//! The event of a command is confirmed by the broker before its tag reaches this module, so a
//! held acknowledgement lost with the connection only means a redelivery, which re-publishes the
//! recorded outcome (same `event_id`) without calling the upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::worker::WorkerStatus;

/// Longest a finished delivery waits for a `multiple` acknowledgement to cover it.
pub(crate) const MAX_HOLD: Duration = Duration::from_millis(20);

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Handed to a handler (sent by the consumer loop before the handler starts).
    Delivered(u64),
    /// Handled; its event is confirmed: acknowledge it.
    Ack(u64),
    /// Reject without requeue: the queue dead-letters it.
    DeadLetter(u64),
    /// Not handled (the store or the broker failed): back to the queue.
    Requeue(u64),
}

/// The acknowledgements to send now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AckPlan {
    /// Acknowledge every delivery up to and including this tag with one `multiple` frame.
    pub(crate) multiple_up_to: Option<u64>,
    /// Acknowledge these one by one.
    pub(crate) singles: Vec<u64>,
    /// Deliveries the plan settles (for the `processed` count).
    pub(crate) settled: u64,
}

/// Delivered and finished tags of one channel.
#[derive(Debug)]
pub(crate) struct AckLedger {
    /// Delivered and not yet finished.
    in_flight: BTreeSet<u64>,
    /// Finished, acknowledgement not yet sent, with the time each finished.
    held: BTreeMap<u64, Instant>,
    /// Most finished deliveries held at once.
    hold_limit: usize,
}

impl AckLedger {
    /// A ledger for a channel with `prefetch` unacknowledged deliveries at most.
    pub(crate) fn new(prefetch: u16) -> Self {
        Self {
            in_flight: BTreeSet::new(),
            held: BTreeMap::new(),
            hold_limit: usize::from(prefetch / 4).max(1),
        }
    }

    /// `tag` was handed to a handler.
    pub(crate) fn delivered(&mut self, tag: u64) {
        self.in_flight.insert(tag);
    }

    /// `tag` is finished and waits for its acknowledgement.
    pub(crate) fn finished(&mut self, tag: u64, now: Instant) {
        self.in_flight.remove(&tag);
        self.held.insert(tag, now);
    }

    /// `tag` was settled another way (rejected or requeued).
    pub(crate) fn settled_otherwise(&mut self, tag: u64) {
        self.in_flight.remove(&tag);
    }

    /// When the oldest held delivery must go out, if any is held.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.held.values().min().map(|at| *at + MAX_HOLD)
    }

    /// Take the acknowledgements due at `now` out of the ledger.
    pub(crate) fn plan(&mut self, now: Instant) -> AckPlan {
        let mut plan = AckPlan::default();
        // Everything finished below the oldest delivery in flight goes in one `multiple` frame.
        let oldest_in_flight = self.in_flight.first().copied().unwrap_or(u64::MAX);
        let above = self.held.split_off(&oldest_in_flight);
        let below = std::mem::replace(&mut self.held, above);
        if let Some((&last, _)) = below.last_key_value() {
            plan.multiple_up_to = Some(last);
            plan.settled += below.len() as u64;
        }
        // The rest waits for the oldest one, within bounds.
        let overdue = self.held.values().any(|at| now.duration_since(*at) >= MAX_HOLD);
        if overdue || self.held.len() > self.hold_limit {
            plan.singles = std::mem::take(&mut self.held).into_keys().collect();
            plan.settled += plan.singles.len() as u64;
        }
        plan
    }

    /// Take every held acknowledgement out of the ledger (shutdown): one `multiple` frame is
    /// only correct below the oldest delivery in flight, so the rest go one by one.
    pub(crate) fn drain(&mut self) -> AckPlan {
        let mut plan = self.plan(Instant::now());
        let rest: Vec<u64> = std::mem::take(&mut self.held).into_keys().collect();
        plan.settled += rest.len() as u64;
        plan.singles.extend(rest);
        plan
    }
}

/// The task that settles the deliveries of `channel`: it ends, after sending what it holds, when
/// every sender of `settles` is gone, or at the first failure to send (the connection is lost
/// and the broker redelivers whatever was not acknowledged).
pub(crate) async fn run(
    channel: Channel,
    prefetch: u16,
    mut settles: mpsc::UnboundedReceiver<Settle>,
    status: Arc<WorkerStatus>,
) {
    let mut ledger = AckLedger::new(prefetch);
    let mut batch = Vec::with_capacity(256);
    loop {
        let received = match ledger.deadline() {
            Some(deadline) => tokio::select! {
                n = settles.recv_many(&mut batch, 1024) => Some(n),
                _ = tokio::time::sleep_until(deadline) => None,
            },
            None => Some(settles.recv_many(&mut batch, 1024).await),
        };
        if received == Some(0) {
            let plan = ledger.drain();
            let _ = send(&channel, &plan, &status).await;
            return;
        }
        let now = Instant::now();
        for settle in batch.drain(..) {
            let result = match settle {
                Settle::Delivered(tag) => {
                    ledger.delivered(tag);
                    Ok(())
                }
                Settle::Ack(tag) => {
                    ledger.finished(tag, now);
                    Ok(())
                }
                Settle::DeadLetter(tag) => {
                    ledger.settled_otherwise(tag);
                    count(&status, "dead_letter", 1);
                    channel.basic_reject(tag, BasicRejectOptions { requeue: false }).await
                }
                Settle::Requeue(tag) => {
                    ledger.settled_otherwise(tag);
                    count(&status, "requeue", 1);
                    channel.basic_nack(tag, BasicNackOptions { requeue: true, multiple: false }).await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "could not settle a delivery; the broker will redeliver it");
                return;
            }
        }
        let plan = ledger.plan(now);
        if let Err(error) = send(&channel, &plan, &status).await {
            tracing::debug!(%error, "could not acknowledge deliveries; the broker will redeliver them");
            return;
        }
    }
}

async fn send(channel: &Channel, plan: &AckPlan, status: &WorkerStatus) -> Result<(), lapin::Error> {
    if let Some(tag) = plan.multiple_up_to {
        channel.basic_ack(tag, BasicAckOptions { multiple: true }).await?;
    }
    for &tag in &plan.singles {
        channel.basic_ack(tag, BasicAckOptions { multiple: false }).await?;
    }
    if plan.settled > 0 {
        metrics::histogram!("bus_ack_batch_size").record(plan.settled as f64);
        count(status, "ack", plan.settled);
    }
    Ok(())
}

fn count(status: &WorkerStatus, disposition: &'static str, n: u64) {
    status.processed.fetch_add(n, Ordering::SeqCst);
    metrics::counter!("bus_commands_total", "disposition" => disposition).increment(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_with(prefetch: u16, tags: std::ops::RangeInclusive<u64>) -> AckLedger {
        let mut ledger = AckLedger::new(prefetch);
        for tag in tags {
            ledger.delivered(tag);
        }
        ledger
    }

    #[test]
    fn finished_in_order_goes_out_as_one_multiple() {
        let now = Instant::now();
        let mut ledger = ledger_with(64, 1..=5);
        for tag in 1..=3 {
            ledger.finished(tag, now);
        }
        assert_eq!(ledger.plan(now), AckPlan { multiple_up_to: Some(3), singles: vec![], settled: 3 });
        // Nothing is acknowledged twice.
        assert_eq!(ledger.plan(now), AckPlan::default());
    }

    #[test]
    fn a_multiple_never_covers_a_delivery_in_flight() {
        let now = Instant::now();
        let mut ledger = ledger_with(64, 1..=6);
        for tag in [1, 2, 4, 5] {
            ledger.finished(tag, now);
        }
        // 3 is still running: 1-2 go out, 4-5 wait for it.
        assert_eq!(ledger.plan(now), AckPlan { multiple_up_to: Some(2), singles: vec![], settled: 2 });
        ledger.finished(3, now);
        assert_eq!(ledger.plan(now), AckPlan { multiple_up_to: Some(5), singles: vec![], settled: 3 });
    }

    #[test]
    fn a_rejected_delivery_does_not_block_the_ones_after_it() {
        let now = Instant::now();
        let mut ledger = ledger_with(64, 1..=3);
        ledger.settled_otherwise(1);
        ledger.finished(2, now);
        assert_eq!(ledger.plan(now).multiple_up_to, Some(2));
    }

    #[test]
    fn held_deliveries_go_out_singly_after_the_hold_time() {
        let start = Instant::now();
        let mut ledger = ledger_with(64, 1..=4);
        ledger.finished(3, start);
        ledger.finished(4, start);
        assert_eq!(ledger.plan(start), AckPlan::default());
        assert_eq!(ledger.deadline(), Some(start + MAX_HOLD));
        let later = start + MAX_HOLD;
        assert_eq!(ledger.plan(later), AckPlan { multiple_up_to: None, singles: vec![3, 4], settled: 2 });
        assert_eq!(ledger.deadline(), None);
    }

    #[test]
    fn held_deliveries_go_out_when_they_would_starve_the_prefetch() {
        let now = Instant::now();
        // Prefetch 8: at most 2 held.
        let mut ledger = ledger_with(8, 1..=8);
        ledger.finished(2, now);
        ledger.finished(3, now);
        assert_eq!(ledger.plan(now), AckPlan::default());
        ledger.finished(4, now);
        assert_eq!(ledger.plan(now), AckPlan { multiple_up_to: None, singles: vec![2, 3, 4], settled: 3 });
    }

    #[test]
    fn drain_sends_everything_held() {
        let now = Instant::now();
        let mut ledger = ledger_with(64, 1..=4);
        for tag in [1, 3] {
            ledger.finished(tag, now);
        }
        assert_eq!(ledger.drain(), AckPlan { multiple_up_to: Some(1), singles: vec![3], settled: 2 });
    }
}
