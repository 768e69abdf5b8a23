//! Redis: a shared [`Cache`] and a shared GCRA [`RateLimiter`] for all replicas.
//!
//! Both use one `aio::ConnectionManager` (multiplexed, reconnecting, created lazily so the service
//! starts while Redis is down) with short timeouts, and a small circuit breaker: after a failure
//! Redis is skipped for [`RETRY_AFTER_FAILURE`], so an outage costs no latency per call. While
//! Redis is unreachable:
//!
//! * [`RedisCache`] answers every `get` with a miss and drops writes: calls go on uncached.
//! * [`RedisRateLimiter`] falls back to a per-process [`InMemoryRateLimiter`] with the same quota;
//!   the budget is then per replica (N replicas admit up to N times the rate), and
//!   [`RateLimiter::describe`] says `redis (fallback: memory)` so `status` shows it.
//!
//! Either logs one warning per outage (then at most one per minute), never per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands as _, Script};
use async_trait::async_trait;
use integration_core::{Cache, Decision, InMemoryRateLimiter, IntegrationError, Quota, RateLimiter};

use crate::error::StoreError;
use crate::store::now_ms;

/// How long Redis is skipped after a failed command.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);
const WARN_EVERY_MS: i64 = 60_000;
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// A lazily connecting Redis connection with an outage breaker, shared by cache and limiter.
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    health: Arc<Health>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection").field("available", &self.health.available()).finish()
    }
}

#[derive(Default)]
struct Health {
    /// Epoch ms before which Redis is not tried again.
    down_until: AtomicI64,
    /// Epoch ms of the last warning.
    last_warning: AtomicI64,
    /// Whether the last command failed (so recovery is logged once).
    failing: AtomicBool,
}

impl Health {
    fn available(&self) -> bool {
        now_ms() >= self.down_until.load(Ordering::Relaxed)
    }

    fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        let now = now_ms();
        self.down_until.store(now + RETRY_AFTER_FAILURE.as_millis() as i64, Ordering::Relaxed);
        let first = !self.failing.swap(true, Ordering::Relaxed);
        let last = self.last_warning.load(Ordering::Relaxed);
        if (first || now - last >= WARN_EVERY_MS)
            && self.last_warning.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(%error, "redis is unreachable: {what}");
        }
    }

    fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("redis is reachable again");
        }
    }
}

impl RedisConnection {
    /// A connection to `url` (`redis://host:port/db`). Only the URL is checked here: the
    /// connection is made on first use and re-made after failures.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { manager, health: Arc::new(Health::default()) })
    }

    /// Whether Redis answered the last command (false during an outage).
    pub fn is_available(&self) -> bool {
        self.health.available() && !self.health.failing()
    }

    /// Run `f` unless the breaker is open; record the result. `None` when skipped or failed.
    async fn run<T, F, Fut>(&self, what: &str, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        if !self.health.available() {
            return None;
        }
        match tokio::time::timeout(COMMAND_TIMEOUT * 2, f(self.manager.clone())).await {
            Ok(Ok(value)) => {
                self.health.succeeded();
                Some(value)
            }
            Ok(Err(error)) => {
                self.health.failed(what, &error);
                None
            }
            Err(_) => {
                self.health.failed(what, &"command timed out");
                None
            }
        }
    }

    /// PING; true when Redis answered.
    pub async fn ping(&self) -> bool {
        self.run(
            "ping failed",
            |mut c| async move { ::redis::cmd("PING").query_async::<String>(&mut c).await },
        )
        .await
        .is_some()
    }
}

/// A [`Cache`] on Redis with per-entry TTLs (`SET .. PX`). Keys are prefixed
/// (`integrations:cache:` by default).
#[derive(Debug, Clone)]
pub struct RedisCache {
    conn: RedisConnection,
    prefix: String,
}

impl RedisCache {
    /// A cache on `REDIS_URL`.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(RedisConnection::open(url)?))
    }

    /// A cache on an existing connection.
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn, prefix: "integrations:cache:".into() }
    }

    /// Use another key prefix (tests, several services on one Redis).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The connection (to share with a [`RedisRateLimiter`]).
    pub fn connection(&self) -> &RedisConnection {
        &self.conn
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = format!("{}{key}", self.prefix);
        self.conn
            .run("cache reads miss until it is back", |mut c| async move {
                c.get::<_, Option<Vec<u8>>>(key).await
            })
            .await
            .flatten()
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let ms = ttl.as_millis().min(u128::from(u64::MAX)) as u64;
        if ms == 0 {
            return;
        }
        let key = format!("{}{key}", self.prefix);
        self.conn
            .run("cache writes are dropped until it is back", |mut c| async move {
                c.pset_ex::<_, _, ()>(key, value, ms).await
            })
            .await;
    }

    async fn remove(&self, key: &str) {
        let key = format!("{}{key}", self.prefix);
        self.conn
            .run(
                "cache removals are dropped until it is back",
                |mut c| async move { c.del::<_, ()>(key).await },
            )
            .await;
    }
}

/// GCRA in one atomic script. Time comes from Redis (`TIME`) so replicas' clocks do not matter.
/// KEYS[1]: the bucket; ARGV[1]: emission interval (µs); ARGV[2]: burst.
/// Returns {1, 0} when admitted, {0, wait µs} otherwise.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
";

/// The budget left without taking a permit. Returns the calls admitted right now.
const GCRA_PEEK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local left = math.floor((now - (tat - burst * interval)) / interval)
if left < 0 then left = 0 end
if left > burst then left = burst end
return left
";

/// A [`RateLimiter`] on Redis shared by all replicas: GCRA in one Lua script, one key per
/// connection (`integrations:ratelimit:{connection}`), the quota passed on every call (so a
/// reconfigured limit applies at once). Falls back to an in-process limiter while Redis is
/// unreachable (see the module docs).
pub struct RedisRateLimiter {
    conn: RedisConnection,
    prefix: String,
    script: Script,
    peek: Script,
    fallback: InMemoryRateLimiter,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter").field("conn", &self.conn).field("prefix", &self.prefix).finish()
    }
}

impl RedisRateLimiter {
    /// A limiter on `REDIS_URL`.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(RedisConnection::open(url)?))
    }

    /// A limiter on an existing connection.
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            prefix: "integrations:ratelimit:".into(),
            script: Script::new(GCRA),
            peek: Script::new(GCRA_PEEK),
            fallback: InMemoryRateLimiter::new(),
        }
    }

    /// Use another key prefix (tests, several services on one Redis).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The calls `key` may make right now under `quota` (for `status`), without taking a permit.
    /// `None` while Redis is unreachable.
    pub async fn remaining(&self, key: &str, quota: Quota) -> Option<u32> {
        let bucket = format!("{}{key}", self.prefix);
        let interval_us = quota.emission_interval().as_micros().max(1) as u64;
        let burst = quota.burst.max(1);
        let peek = &self.peek;
        self.conn
            .run("rate-limit budgets are unknown until it is back", |mut c| async move {
                peek.key(bucket).arg(interval_us).arg(burst).invoke_async::<i64>(&mut c).await
            })
            .await
            .map(|left| u32::try_from(left.max(0)).unwrap_or(0))
    }

    /// Whether decisions currently come from the in-process fallback.
    pub fn is_fallback(&self) -> bool {
        !self.conn.is_available()
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn try_acquire(&self, key: &str, quota: Quota) -> Result<Decision, IntegrationError> {
        let bucket = format!("{}{key}", self.prefix);
        let interval_us = quota.emission_interval().as_micros().max(1) as u64;
        let burst = quota.burst.max(1);
        let script = &self.script;
        let answer = self
            .conn
            .run("rate limits fall back to a per-process limiter", |mut c| async move {
                script.key(bucket).arg(interval_us).arg(burst).invoke_async::<(i64, i64)>(&mut c).await
            })
            .await;
        match answer {
            Some((1, _)) => Ok(Decision::Allowed),
            Some((_, wait_us)) => Ok(Decision::Wait(Duration::from_micros(wait_us.max(1) as u64))),
            None => Ok(self.fallback.acquire_now(key, quota)),
        }
    }

    fn describe(&self) -> String {
        if self.is_fallback() { "redis (fallback: memory)".to_owned() } else { "redis".to_owned() }
    }

    async fn remaining(&self, key: &str, quota: Quota) -> Option<u32> {
        RedisRateLimiter::remaining(self, key, quota).await
    }
}
