//! Client-side pacing: Slack's per-method rate-limit tiers and `chat.postMessage`'s "one message
//! per second per channel". Calls over the budget *wait their turn* (first come, first served)
//! instead of failing; the executor's deadline still bounds the whole call.
//!
//! This is not a retry and not the connection's rate limit (both belong to the core executor): it
//! keeps the client from provoking Slack's 429s in the first place. It is per process; replicas
//! that share one token may still see 429s, which the executor retries honouring `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::time::Instant;

/// Slack's documented rate-limit tiers, in calls per minute per workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Tier 1: 1+ per minute.
    One,
    /// Tier 2: 20+ per minute.
    Two,
    /// Tier 3: 50+ per minute.
    Three,
    /// Tier 4: 100+ per minute.
    Four,
    /// Special limits (`chat.postMessage`: one per second per channel, paced separately).
    Special,
}

impl Tier {
    /// Calls per minute admitted, when the tier has a per-method budget.
    pub fn per_minute(self) -> Option<usize> {
        match self {
            Tier::One => Some(1),
            Tier::Two => Some(20),
            Tier::Three => Some(50),
            Tier::Four => Some(100),
            Tier::Special => None,
        }
    }
}

/// The tier of a Web API method (from Slack's method documentation).
pub fn tier_of(method: &str) -> Tier {
    match method {
        "conversations.list"
        | "users.list"
        | "conversations.create"
        | "conversations.archive"
        | "conversations.setTopic" => Tier::Two,
        "conversations.invite"
        | "conversations.open"
        | "conversations.history"
        | "chat.update"
        | "reactions.add"
        | "users.lookupByEmail" => Tier::Three,
        "users.info" | "chat.postEphemeral" | "auth.test" => Tier::Four,
        "chat.postMessage" => Tier::Special,
        _ => Tier::Three,
    }
}

/// The longest a call waits for its method's tier slot before it is refused as rate limited.
pub(crate) const MAX_PACING_WAIT: Duration = Duration::from_secs(5);

type Window = Arc<AsyncMutex<VecDeque<Instant>>>;
type Gate = Arc<AsyncMutex<Option<Instant>>>;

/// Per-method windows and per-channel message gates of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    enabled: bool,
    message_interval: Duration,
    windows: Mutex<HashMap<&'static str, Window>>,
    gates: Mutex<HashMap<String, Gate>>,
}

/// Held while a message is sent to a channel; dropping it lets the next message of the channel go
/// (no sooner than the message interval after this one was sent).
#[derive(Debug)]
pub(crate) struct ChannelTurn {
    guard: Option<OwnedMutexGuard<Option<Instant>>>,
}

impl ChannelTurn {
    /// Mark the moment the message leaves; the next one waits for `interval` from here.
    pub(crate) fn sent_now(&mut self) {
        if let Some(guard) = self.guard.as_mut() {
            **guard = Some(Instant::now());
        }
    }

    /// Slack asked to wait (`Retry-After`): hold the channel's next message back for `wait`,
    /// instead of letting it provoke another 429.
    pub(crate) fn pause(&mut self, wait: Duration, interval: Duration) {
        if let Some(guard) = self.guard.as_mut() {
            let until = Instant::now() + wait;
            **guard = Some(until.checked_sub(interval).unwrap_or(until));
        }
    }
}

impl Pacer {
    pub(crate) fn new(enabled: bool, message_interval: Duration) -> Self {
        Self { enabled, message_interval, windows: Mutex::default(), gates: Mutex::default() }
    }

    /// The least time between two messages to one channel.
    pub(crate) fn message_interval(&self) -> Duration {
        self.message_interval
    }

    /// Wait until `method` has budget in its tier's one-minute window, then take a slot. A wait
    /// longer than [`MAX_PACING_WAIT`] is not taken: the answer is `Err(wait)`, for the caller to
    /// report as rate limited with that `Retry-After` (waiting up to a minute for a tier-2 slot
    /// would outlast the call's deadline and end as a timeout).
    pub(crate) async fn method(&self, method: &'static str) -> Result<(), Duration> {
        let Some(limit) = tier_of(method).per_minute().filter(|_| self.enabled) else { return Ok(()) };
        let window = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            windows.entry(method).or_default().clone()
        };
        let mut calls = window.lock().await;
        let minute = Duration::from_secs(60);
        loop {
            let now = Instant::now();
            while calls.front().is_some_and(|t| now.duration_since(*t) >= minute) {
                calls.pop_front();
            }
            if calls.len() < limit {
                calls.push_back(now);
                return Ok(());
            }
            let Some(oldest) = calls.front().copied() else { return Ok(()) };
            let wait = oldest + minute - now;
            if wait > MAX_PACING_WAIT {
                tracing::debug!(method, wait_ms = wait.as_millis() as u64, "slack method tier exhausted");
                return Err(wait);
            }
            tracing::debug!(method, wait_ms = wait.as_millis() as u64, "pacing slack method tier");
            tokio::time::sleep_until(oldest + minute).await;
        }
    }

    /// Wait for the channel's turn: messages to one channel leave in call order, at most one per
    /// interval. The returned turn must be kept until the request is sent.
    pub(crate) async fn channel(&self, channel: &str) -> ChannelTurn {
        if !self.enabled || self.message_interval.is_zero() {
            return ChannelTurn { guard: None };
        }
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            gates.entry(channel.to_owned()).or_default().clone()
        };
        let guard = gate.lock_owned().await;
        if let Some(last) = *guard {
            let next = last + self.message_interval;
            if next > Instant::now() {
                tracing::debug!(channel, "pacing chat.postMessage: one message per second per channel");
                tokio::time::sleep_until(next).await;
            }
        }
        ChannelTurn { guard: Some(guard) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn messages_to_one_channel_are_spaced_and_ordered() {
        let pacer = Arc::new(Pacer::new(true, Duration::from_secs(1)));
        let start = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let pacer = pacer.clone();
            let order = order.clone();
            tasks.push(tokio::spawn(async move {
                let mut turn = pacer.channel("C1").await;
                turn.sent_now();
                order.lock().unwrap_or_else(|e| e.into_inner()).push((i, start.elapsed()));
            }));
            tokio::task::yield_now().await;
        }
        // another channel is not held up
        let mut other = pacer.channel("C2").await;
        other.sent_now();
        assert_eq!(start.elapsed(), Duration::ZERO);
        for t in tasks {
            t.await.expect("task");
        }
        let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(order.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(order[1].1 - order[0].1, Duration::from_secs(1));
        assert_eq!(order[2].1 - order[1].1, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn tier_two_admits_twenty_per_minute() {
        let pacer = Pacer::new(true, Duration::from_secs(1));
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(pacer.method("conversations.list").await, Ok(()));
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        // the 21st would wait a minute: refused at once with that wait, nothing taken
        assert_eq!(pacer.method("conversations.list").await, Err(Duration::from_secs(60)));
        assert_eq!(start.elapsed(), Duration::ZERO);
        // a short wait is taken: 57 s later the first slot frees within MAX_PACING_WAIT
        tokio::time::sleep(Duration::from_secs(57)).await;
        assert_eq!(pacer.method("conversations.list").await, Ok(()));
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        let disabled = Pacer::new(false, Duration::from_secs(1));
        for _ in 0..100 {
            assert_eq!(disabled.method("conversations.list").await, Ok(()));
        }
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
