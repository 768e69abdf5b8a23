//! Client-side pacing: Slack's per-method rate-limit tiers and `chat.postMessage`'s "one message
//! per second per channel". Calls over the budget *wait their turn* (first come, first served)
//! instead of failing, as long as the wait leaves the tool call at least as long again before its
//! deadline ([`integration_core::deadline`]); past that they fail at once as rate limited, with the
//! wait as `Retry-After` and nothing sent, instead of timing out with an unknown effect.
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

/// Halfway from now to the deadline of the tool call running on this task, if there is one: a
/// pacing wait must end by then, so the call keeps at least as long again for Slack's answer.
fn halfway_to_deadline() -> Option<Instant> {
    integration_core::deadline::wait_budget().map(|budget| Instant::now() + budget)
}

/// Lock `mutex`, queueing behind its holder until `until` at the latest (`None`: for as long as it
/// takes); the guard and whether it had to queue, or `None` when `until` came first.
async fn lock_by<T>(mutex: Arc<AsyncMutex<T>>, until: Option<Instant>) -> Option<(OwnedMutexGuard<T>, bool)> {
    if let Ok(guard) = mutex.clone().try_lock_owned() {
        return Some((guard, false));
    }
    let guard = match until {
        Some(until) => tokio::time::timeout_at(until, mutex.lock_owned()).await.ok()?,
        None => mutex.lock_owned().await,
    };
    Some((guard, true))
}

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
    /// that would end later than [`MAX_PACING_WAIT`] from now, or past halfway to the call's
    /// deadline, is not taken: the answer is `Err(wait)`, for the caller to report as rate limited
    /// with that `Retry-After` (waiting up to a minute for a tier-2 slot would outlast the call's
    /// deadline and end as a timeout).
    pub(crate) async fn method(&self, method: &'static str) -> Result<(), Duration> {
        let Some(limit) = tier_of(method).per_minute().filter(|_| self.enabled) else { return Ok(()) };
        let window = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            windows.entry(method).or_default().clone()
        };
        let mut wait_until = Instant::now() + MAX_PACING_WAIT;
        if let Some(halfway) = halfway_to_deadline() {
            wait_until = wait_until.min(halfway);
        }
        // Earlier callers hold the window while they wait for a slot: queue behind them only as
        // long as this call may wait at all.
        let started = Instant::now();
        let Some((mut calls, mut paced)) = lock_by(window, Some(wait_until)).await else {
            tracing::debug!(method, "slack method tier exhausted (callers queued before this one)");
            return Err(Duration::from_secs(1));
        };
        let minute = Duration::from_secs(60);
        loop {
            let now = Instant::now();
            while calls.front().is_some_and(|t| now.duration_since(*t) >= minute) {
                calls.pop_front();
            }
            if calls.len() < limit {
                calls.push_back(now);
                if paced {
                    integration_core::observe_pacing_wait(crate::PROVIDER, "tier", now - started);
                }
                return Ok(());
            }
            let Some(oldest) = calls.front().copied() else { return Ok(()) };
            let wait = oldest + minute - now;
            if oldest + minute > wait_until {
                tracing::debug!(method, wait_ms = wait.as_millis() as u64, "slack method tier exhausted");
                return Err(wait);
            }
            tracing::debug!(method, wait_ms = wait.as_millis() as u64, "pacing slack method tier");
            tokio::time::sleep_until(oldest + minute).await;
            paced = true;
        }
    }

    /// Wait for the channel's turn: messages to one channel leave in call order, at most one per
    /// interval. The returned turn must be kept until the request is sent. Inside a tool call the
    /// wait must end halfway to its deadline at the latest; otherwise `Err(wait)` (nothing is sent,
    /// the channel's order is kept for the others).
    pub(crate) async fn channel(&self, channel: &str) -> Result<ChannelTurn, Duration> {
        if !self.enabled || self.message_interval.is_zero() {
            return Ok(ChannelTurn { guard: None });
        }
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            gates.entry(channel.to_owned()).or_default().clone()
        };
        let halfway = halfway_to_deadline();
        let started = Instant::now();
        let Some((guard, mut paced)) = lock_by(gate, halfway).await else {
            tracing::debug!(channel, "chat.postMessage queue of the channel outlasts the call");
            return Err(self.message_interval);
        };
        if let Some(last) = *guard {
            let next = last + self.message_interval;
            let now = Instant::now();
            if next > now {
                if halfway.is_some_and(|halfway| next > halfway) {
                    return Err(next - now);
                }
                tracing::debug!(channel, "pacing chat.postMessage: one message per second per channel");
                tokio::time::sleep_until(next).await;
                paced = true;
            }
        }
        if paced {
            integration_core::observe_pacing_wait(crate::PROVIDER, "channel", started.elapsed());
        }
        Ok(ChannelTurn { guard: Some(guard) })
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
                let mut turn = pacer.channel("C1").await.expect("no deadline: waits its turn");
                turn.sent_now();
                order.lock().unwrap_or_else(|e| e.into_inner()).push((i, start.elapsed()));
            }));
            tokio::task::yield_now().await;
        }
        // another channel is not held up
        let mut other = pacer.channel("C2").await.expect("its own channel");
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

    #[tokio::test(start_paused = true)]
    async fn inside_a_call_a_wait_must_end_halfway_to_its_deadline() {
        let pacer = Arc::new(Pacer::new(true, Duration::from_secs(1)));
        let start = Instant::now();
        let within = |secs: u64| std::time::Instant::now() + Duration::from_secs(secs);
        // tier 2: the 21st call's slot is 3 s away; a call with 4 s left may not wait for it (it
        // would keep 1 s), one with 10 s left may (the 5 s cap still applies)
        for _ in 0..20 {
            assert_eq!(pacer.method("conversations.list").await, Ok(()));
        }
        tokio::time::sleep(Duration::from_secs(57)).await;
        let short = integration_core::deadline::scope(within(4), pacer.method("conversations.list")).await;
        assert_eq!(short, Err(Duration::from_secs(3)));
        assert_eq!(start.elapsed(), Duration::from_secs(57), "refused without waiting");
        let long = integration_core::deadline::scope(within(10), pacer.method("conversations.list")).await;
        assert_eq!(long, Ok(()));
        assert_eq!(start.elapsed(), Duration::from_secs(60));

        // one message per second per channel: the next turn is 1 s away
        let mut first = pacer.channel("C1").await.expect("free channel");
        first.sent_now();
        drop(first);
        let refused = integration_core::deadline::scope(within(1), pacer.channel("C1")).await;
        assert_eq!(refused.map(|_| ()), Err(Duration::from_secs(1)));
        let mut second =
            integration_core::deadline::scope(within(3), pacer.channel("C1")).await.expect("fits");
        assert_eq!(start.elapsed(), Duration::from_secs(61), "waited for its turn");
        second.sent_now();
        // while an earlier message holds the channel, a call queues only until halfway
        let before = Instant::now();
        let queued = integration_core::deadline::scope(within(2), pacer.channel("C1")).await;
        assert_eq!(queued.map(|_| ()), Err(Duration::from_secs(1)), "Retry-After: the message interval");
        assert_eq!(before.elapsed(), Duration::from_secs(1), "gave up halfway to the deadline");
        drop(second);
    }
}
