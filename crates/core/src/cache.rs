//! A small cache interface for read-mostly upstream lookups (project lists, channel lists, user
//! info). The store crate implements it on Redis; [`InMemoryCache`] (moka) is the embedded default.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A byte cache with per-entry time to live. Failures are never fatal: an implementation that
/// cannot reach its backend answers `None` / ignores the write and logs.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Store `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration);
    /// Drop `key`.
    async fn remove(&self, key: &str);
}

/// Read a JSON value from the cache; a malformed entry counts as a miss.
pub async fn get_json<T: DeserializeOwned>(cache: &dyn Cache, key: &str) -> Option<T> {
    let bytes = cache.get(key).await?;
    serde_json::from_slice(&bytes).ok()
}

/// Write a JSON value to the cache.
pub async fn set_json<T: Serialize + ?Sized>(cache: &dyn Cache, key: &str, value: &T, ttl: Duration) {
    if let Ok(bytes) = serde_json::to_vec(value) {
        cache.set(key, bytes, ttl).await;
    }
}

#[derive(Clone)]
struct Entry {
    value: std::sync::Arc<Vec<u8>>,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// An in-process cache (moka) bounded by total bytes.
#[derive(Clone)]
pub struct InMemoryCache {
    inner: moka::future::Cache<String, Entry>,
}

impl std::fmt::Debug for InMemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryCache").field("entries", &self.inner.entry_count()).finish()
    }
}

impl InMemoryCache {
    /// A cache holding at most `max_bytes` of values.
    pub fn new(max_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .weigher(|k: &String, v: &Entry| u32::try_from(k.len() + v.value.len()).unwrap_or(u32::MAX))
            .max_capacity(max_bytes)
            .expire_after(PerEntryTtl)
            .build();
        Self { inner }
    }
}

impl Default for InMemoryCache {
    fn default() -> Self {
        Self::new(64 * 1024 * 1024)
    }
}

#[async_trait]
impl Cache for InMemoryCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.inner.get(key).await.map(|e| e.value.as_ref().clone())
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        self.inner.insert(key.to_owned(), Entry { value: std::sync::Arc::new(value), ttl }).await;
    }

    async fn remove(&self, key: &str) {
        self.inner.invalidate(key).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_reads_and_expires() {
        let cache = InMemoryCache::default();
        set_json(&cache, "k", &vec![1, 2, 3], Duration::from_millis(200)).await;
        assert_eq!(get_json::<Vec<i32>>(&cache, "k").await, Some(vec![1, 2, 3]));
        assert_eq!(get_json::<String>(&cache, "k").await, None, "wrong type is a miss");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(cache.get("k").await, None);
        cache.set("a", b"x".to_vec(), Duration::from_secs(60)).await;
        cache.remove("a").await;
        assert_eq!(cache.get("a").await, None);
    }
}
