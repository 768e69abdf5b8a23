//! A cache that records the keys read and written, for tests that check what a tool looks up.

use std::sync::Mutex;
use std::time::Duration;

use integration_core::cache::{Cache, InMemoryCache};

/// What a [`RecordingCache`] was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOp {
    /// A read (`get`, or `get_value` through it).
    Get,
    /// A write (`set`, or `set_value` through it).
    Set,
}

/// An in-memory cache ([`InMemoryCache`]) that logs every key read and written, in order. Parsed
/// values go through bytes (the trait's default `get_value` / `set_value`), as with Redis.
#[derive(Default)]
pub struct RecordingCache {
    inner: InMemoryCache,
    log: Mutex<Vec<(CacheOp, String)>>,
}

impl std::fmt::Debug for RecordingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingCache").field("log", &self.log()).finish_non_exhaustive()
    }
}

impl RecordingCache {
    /// Every operation so far, in order.
    pub fn log(&self) -> Vec<(CacheOp, String)> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many reads were of a key ending with `suffix`.
    pub fn reads(&self, suffix: &str) -> usize {
        self.log().iter().filter(|(op, key)| *op == CacheOp::Get && key.ends_with(suffix)).count()
    }

    /// Whether a key ending with `suffix` was written.
    pub fn written(&self, suffix: &str) -> bool {
        self.log().iter().any(|(op, key)| *op == CacheOp::Set && key.ends_with(suffix))
    }

    fn record(&self, op: CacheOp, key: &str) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push((op, key.to_owned()));
    }
}

#[async_trait::async_trait]
impl Cache for RecordingCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.record(CacheOp::Get, key);
        self.inner.get(key).await
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        self.record(CacheOp::Set, key);
        self.inner.set(key, value, ttl).await;
    }

    async fn remove(&self, key: &str) {
        self.inner.remove(key).await;
    }
}
