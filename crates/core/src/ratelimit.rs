//! Rate limiting per connection. The executor asks a [`RateLimiter`] for a permit before every
//! upstream attempt; the limiter answers at once (admit, or wait this long), so a shared limiter on
//! Redis can implement the same trait with one round trip.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota as GovernorQuota};

use crate::error::IntegrationError;

/// How many calls a connection may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Calls per minute, sustained.
    pub per_minute: u32,
    /// Calls admitted at once after a quiet period.
    pub burst: u32,
}

impl Quota {
    /// `per_minute` calls per minute with a burst of the same size (at most `per_minute` calls at
    /// once, then one every `60 s / per_minute`).
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        Self { per_minute, burst: per_minute }
    }

    /// The time between two calls at the sustained rate.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }
}

/// The answer of a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A permit was taken.
    Allowed,
    /// No permit now; try again after this long.
    Wait(Duration),
}

/// Admits calls per key (a connection name) under a quota.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Take a permit for `key` under `quota`, or say how long to wait. Never blocks.
    async fn try_acquire(&self, key: &str, quota: Quota) -> Result<Decision, IntegrationError>;

    /// A short description for status pages (`memory`, `redis`, `redis (fallback: memory)`).
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    /// Permits `key` could take right now under `quota`, without taking one; `None` when the
    /// limiter cannot tell.
    async fn remaining(&self, key: &str, quota: Quota) -> Option<u32> {
        let _ = (key, quota);
        None
    }
}

/// An in-process GCRA limiter (governor), one cell per key and quota.
#[derive(Default)]
pub struct InMemoryRateLimiter {
    cells: Mutex<HashMap<String, (Quota, Arc<DefaultDirectRateLimiter>)>>,
}

impl std::fmt::Debug for InMemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryRateLimiter").finish_non_exhaustive()
    }
}

impl InMemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn cell(&self, key: &str, quota: Quota) -> Arc<DefaultDirectRateLimiter> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        match cells.get(key) {
            Some((q, limiter)) if *q == quota => limiter.clone(),
            _ => {
                let burst = NonZeroU32::new(quota.burst.max(1)).unwrap_or(NonZeroU32::MIN);
                let governor_quota = GovernorQuota::with_period(quota.emission_interval())
                    .unwrap_or_else(|| GovernorQuota::per_second(NonZeroU32::MIN))
                    .allow_burst(burst);
                let limiter = Arc::new(DefaultDirectRateLimiter::direct(governor_quota));
                cells.insert(key.to_owned(), (quota, limiter.clone()));
                limiter
            }
        }
    }

    /// Take a permit synchronously (used by other limiters as their fallback).
    pub fn acquire_now(&self, key: &str, quota: Quota) -> Decision {
        let limiter = self.cell(key, quota);
        match limiter.check() {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Wait(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn try_acquire(&self, key: &str, quota: Quota) -> Result<Decision, IntegrationError> {
        Ok(self.acquire_now(key, quota))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_burst_then_asks_to_wait() {
        let limiter = InMemoryRateLimiter::new();
        let quota = Quota { per_minute: 60, burst: 3 };
        for _ in 0..3 {
            assert_eq!(limiter.try_acquire("a", quota).await.ok(), Some(Decision::Allowed));
        }
        match limiter.try_acquire("a", quota).await {
            Ok(Decision::Wait(d)) => assert!(d <= Duration::from_secs(1) && d > Duration::ZERO, "{d:?}"),
            other => panic!("expected a wait, got {other:?}"),
        }
        // other keys are independent
        assert_eq!(limiter.try_acquire("b", quota).await.ok(), Some(Decision::Allowed));
    }
}
