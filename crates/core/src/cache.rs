//! A small cache interface for read-mostly upstream lookups (project lists, channel lists, user
//! info). The store crate implements it on Redis; [`InMemoryCache`] (moka) is the embedded default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::IntegrationError;

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

    /// The JSON value under `key`, shared; a malformed entry counts as a miss. The default parses
    /// the stored bytes; an in-process cache hands out the value it holds, parsing nothing.
    async fn get_value(&self, key: &str) -> Option<Arc<Value>> {
        let bytes = self.get(key).await?;
        crate::json::from_slice(&bytes).ok().map(Arc::new)
    }

    /// Store a JSON value under `key` for `ttl` (the default stores its JSON text).
    async fn set_value(&self, key: &str, value: Arc<Value>, ttl: Duration) {
        if let Ok(bytes) = serde_json::to_vec(&*value) {
            self.set(key, bytes, ttl).await;
        }
    }
}

/// Read a JSON value from the cache; a malformed entry counts as a miss.
pub async fn get_json<T: DeserializeOwned>(cache: &dyn Cache, key: &str) -> Option<T> {
    let bytes = cache.get(key).await?;
    crate::json::from_slice(&bytes).ok()
}

/// Write a JSON value to the cache.
pub async fn set_json<T: Serialize + ?Sized>(cache: &dyn Cache, key: &str, value: &T, ttl: Duration) {
    if let Ok(bytes) = serde_json::to_vec(value) {
        cache.set(key, bytes, ttl).await;
    }
}

/// One filler per cache key. Callers that miss the same key at once take turns: the first fetches
/// and stores the value, the others look again when their turn comes and find it, instead of each
/// asking the upstream for the same thing (a cache stampede: 64 first calls to a Slack workspace of
/// 5,000 channels fetched its whole channel directory 64 times at once). A fetch that fails hands
/// its error to the callers that waited for it ([`FillTurn::failed`]), so a failing upstream is not
/// asked again by each of them in turn.
///
/// [`FillLocks::get_or_fill`] is the whole sequence; spelled out:
///
/// ```
/// # use integration_core::IntegrationError;
/// # use integration_core::cache::FillLocks;
/// # async fn lookup(
/// #     cached: impl Fn() -> Option<u32>,
/// #     fetch: impl AsyncFn() -> Result<u32, IntegrationError>,
/// # ) -> Result<u32, IntegrationError> {
/// let fills = FillLocks::default();
/// if let Some(hit) = cached() { return Ok(hit); }
/// let mut turn = fills.turn("key", true).await?; // Err: the fetch waited for failed
/// if let Some(hit) = cached() { return Ok(hit); } // filled while this caller waited
/// let fetched = fetch().await.inspect_err(|e| turn.failed(e))?;
/// // store `fetched` in the cache before the turn is dropped
/// # Ok(fetched)
/// # }
/// ```
///
/// Only keys being filled take memory: a key's lock goes when its last holder does.
#[derive(Debug, Default)]
pub struct FillLocks {
    locks: std::sync::Mutex<HashMap<String, Arc<FillLock>>>,
}

/// The last failed fetch of one key, for the callers that waited for it.
type FillLock = tokio::sync::Mutex<Option<IntegrationError>>;

/// The turn to fill one key (see [`FillLocks`]); the next caller's turn starts when this drops.
#[derive(Debug)]
pub struct FillTurn<'a> {
    locks: &'a FillLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<Option<IntegrationError>>>,
}

impl FillLocks {
    /// Wait for the turn to fill `key`.
    pub async fn lock(&self, key: &str) -> FillTurn<'_> {
        let lock = self.map().entry(key.to_owned()).or_default().clone();
        FillTurn { locks: self, key: key.to_owned(), guard: Some(lock.lock_owned().await) }
    }

    /// [`Self::lock`], with the error of the fetch this caller waited for as `Err`. With `coalesce`
    /// false (a call that wants a fresh answer) nothing is waited for: the turn holds no lock and
    /// [`FillTurn::failed`] does nothing.
    pub async fn turn(&self, key: &str, coalesce: bool) -> Result<FillTurn<'_>, IntegrationError> {
        if !coalesce {
            return Ok(FillTurn { locks: self, key: String::new(), guard: None });
        }
        let turn = self.lock(key).await;
        match turn.failure() {
            Some(error) => Err(error),
            None => Ok(turn),
        }
    }

    /// A cached value of `key`, or one `fill` fetched and stored: `cached` is looked at; on a miss
    /// the caller waits for the key's turn (only when `coalesce`: a call that wants a fresh answer
    /// neither waits nor holds others up) and looks again, since the turn before may have filled
    /// it; still missing, `fill` fetches and stores the value while the turn is held, and its error
    /// goes to the callers that waited for it.
    pub async fn get_or_fill<T, Hit, Fill>(
        &self,
        key: &str,
        coalesce: bool,
        cached: impl Fn() -> Hit,
        fill: impl FnOnce() -> Fill,
    ) -> Result<T, IntegrationError>
    where
        Hit: Future<Output = Option<T>>,
        Fill: Future<Output = Result<T, IntegrationError>>,
    {
        if let Some(hit) = cached().await {
            return Ok(hit);
        }
        let mut turn = self.turn(key, coalesce).await?;
        if let Some(hit) = cached().await {
            return Ok(hit);
        }
        fill().await.inspect_err(|error| turn.failed(error))
    }

    /// Keys with a turn held or awaited.
    pub fn pending(&self) -> usize {
        self.map().len()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FillLock>>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FillTurn<'_> {
    /// The error of the fetch this caller waited for, if it failed.
    pub fn failure(&self) -> Option<IntegrationError> {
        self.guard.as_ref().and_then(|failure| (**failure).clone())
    }

    /// This turn's fetch failed with `error`: the callers waiting for it get the same error.
    pub fn failed(&mut self, error: &IntegrationError) {
        if let Some(failure) = self.guard.as_mut() {
            **failure = Some(error.clone());
        }
    }
}

impl Drop for FillTurn<'_> {
    fn drop(&mut self) {
        // The guard holds a reference to the lock: let it go first, then drop the entry if the
        // map's is the last one (a waiter would hold another; clones are made under the map's lock).
        if self.guard.take().is_none() {
            return; // a turn without a lock (`coalesce` false)
        }
        let mut map = self.locks.map();
        if map.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            map.remove(&self.key);
        }
    }
}

/// What an entry holds: bytes as given, or a parsed JSON value (kept parsed, so a hit costs a
/// reference count instead of a parse).
#[derive(Clone)]
enum Stored {
    Bytes(Arc<Vec<u8>>),
    Value(Arc<Value>),
}

#[derive(Clone)]
struct Entry {
    value: Stored,
    /// The weight: the size of the bytes, or of the value's JSON text.
    size: usize,
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
    /// A cache holding at most `max_bytes` of values (parsed values weigh their JSON text).
    pub fn new(max_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .weigher(|k: &String, v: &Entry| u32::try_from(k.len() + v.size).unwrap_or(u32::MAX))
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
        match self.inner.get(key).await?.value {
            Stored::Bytes(bytes) => Some(bytes.as_ref().clone()),
            Stored::Value(value) => serde_json::to_vec(&*value).ok(),
        }
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let size = value.len();
        self.inner.insert(key.to_owned(), Entry { value: Stored::Bytes(Arc::new(value)), size, ttl }).await;
    }

    async fn remove(&self, key: &str) {
        self.inner.invalidate(key).await;
    }

    async fn get_value(&self, key: &str) -> Option<Arc<Value>> {
        match self.inner.get(key).await?.value {
            Stored::Value(value) => Some(value),
            Stored::Bytes(bytes) => crate::json::from_slice(&bytes).ok().map(Arc::new),
        }
    }

    async fn set_value(&self, key: &str, value: Arc<Value>, ttl: Duration) {
        // The weight is measured once, here, on the miss path.
        let size = serde_json::to_vec(&*value).map(|b| b.len()).unwrap_or(usize::MAX / 2);
        self.inner.insert(key.to_owned(), Entry { value: Stored::Value(value), size, ttl }).await;
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

    #[tokio::test]
    async fn concurrent_misses_of_one_key_fill_it_once() {
        let cache = Arc::new(InMemoryCache::default());
        let fills = Arc::new(FillLocks::default());
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let lookup = |key: &'static str| {
            let (cache, fills, fetches) = (cache.clone(), fills.clone(), fetches.clone());
            tokio::spawn(async move {
                if let Some(hit) = get_json::<u32>(cache.as_ref(), key).await {
                    return hit;
                }
                let _turn = fills.lock(key).await;
                if let Some(hit) = get_json::<u32>(cache.as_ref(), key).await {
                    return hit;
                }
                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await; // the upstream's time
                set_json(cache.as_ref(), key, &7_u32, Duration::from_secs(60)).await;
                7
            })
        };
        let tasks: Vec<_> = (0..16).map(|i| lookup(if i % 2 == 0 { "a" } else { "b" })).collect();
        for task in tasks {
            assert_eq!(task.await.expect("joined"), 7);
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2, "one fetch per key");
        assert_eq!(fills.pending(), 0, "no lock is left behind");
    }

    #[tokio::test]
    async fn callers_that_waited_for_a_failed_fetch_get_its_error() {
        let fills = Arc::new(FillLocks::default());
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let lookup = || {
            let (fills, fetches) = (fills.clone(), fetches.clone());
            tokio::spawn(async move {
                let mut turn = fills.turn("down", true).await?;
                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                let error = IntegrationError::new(crate::ErrorKind::Network, "slack", "connection refused");
                turn.failed(&error);
                Err::<u32, _>(error)
            })
        };
        let tasks: Vec<_> = (0..8).map(|_| lookup()).collect();
        for task in tasks {
            let error = task.await.expect("joined").expect_err("failed");
            assert!(error.to_string().contains("connection refused"), "{error}");
        }
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "the upstream was asked once");
        assert_eq!(fills.pending(), 0);
        // a call that wants a fresh answer neither waits nor takes a lock
        let mut fresh = fills.turn("down", false).await.expect("no lock, no failure");
        fresh.failed(&IntegrationError::new(crate::ErrorKind::Network, "slack", "x"));
        drop(fresh);
        assert_eq!(fills.pending(), 0);
        // a caller after the burst tries again
        let again = lookup().await.expect("joined");
        assert!(again.is_err());
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// `get_or_fill` end to end: concurrent misses of one key fill it once and all get the value;
    /// concurrent misses of a failing key ask the upstream once and all get its error; a call that
    /// wants a fresh answer fills without waiting.
    #[tokio::test]
    async fn get_or_fill_fills_each_key_once_and_shares_a_failure() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let cache = Arc::new(InMemoryCache::default());
        let fills = Arc::new(FillLocks::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let lookup = |key: &'static str, coalesce: bool| {
            let (cache, fills, fetches) = (cache.clone(), fills.clone(), fetches.clone());
            tokio::spawn(async move {
                let cached = || get_json::<u32>(cache.as_ref(), key);
                let fill = || async {
                    fetches.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await; // the upstream's time
                    if key == "down" {
                        return Err(IntegrationError::new(crate::ErrorKind::Network, "jira", "refused"));
                    }
                    set_json(cache.as_ref(), key, &7_u32, Duration::from_secs(60)).await;
                    Ok(7)
                };
                fills.get_or_fill(key, coalesce, cached, fill).await
            })
        };
        let tasks: Vec<_> = (0..12).map(|_| lookup("a", true)).collect();
        for task in tasks {
            assert_eq!(task.await.expect("joined").expect("value"), 7);
        }
        assert_eq!(fetches.load(SeqCst), 1, "one fetch for twelve callers");
        let tasks: Vec<_> = (0..6).map(|_| lookup("down", true)).collect();
        for task in tasks {
            let error = task.await.expect("joined").expect_err("the fetch failed");
            assert!(error.to_string().contains("refused"), "{error}");
        }
        assert_eq!(fetches.load(SeqCst), 2, "the failing upstream was asked once");
        assert_eq!(fills.pending(), 0, "no lock is left behind");
        // without coalescing: a hit is still a hit, a miss fetches at once (no turn taken)
        assert_eq!(lookup("a", false).await.expect("joined").expect("value"), 7);
        assert_eq!(fetches.load(SeqCst), 2);
        assert!(lookup("down", false).await.expect("joined").is_err());
        assert_eq!(fetches.load(SeqCst), 3, "without coalescing the caller fetches itself");
    }

    #[tokio::test]
    async fn parsed_values_are_shared_and_readable_as_bytes() {
        let cache = InMemoryCache::default();
        let value = Arc::new(serde_json::json!({"projects": [{"key": "ENG"}]}));
        cache.set_value("v", value.clone(), Duration::from_secs(60)).await;
        let hit = cache.get_value("v").await.expect("hit");
        assert!(Arc::ptr_eq(&hit, &value), "an in-process hit hands out the stored value");
        assert_eq!(get_json::<Value>(&cache, "v").await, Some((*value).clone()));
        // bytes stored by `set` are parsed on a value read; malformed bytes are a miss
        cache.set("b", br#"[1,2]"#.to_vec(), Duration::from_secs(60)).await;
        assert_eq!(cache.get_value("b").await.as_deref(), Some(&serde_json::json!([1, 2])));
        cache.set("bad", b"{".to_vec(), Duration::from_secs(60)).await;
        assert_eq!(cache.get_value("bad").await, None);
        // the weigher counts a value's JSON text: a value bigger than the cache is not kept
        let small = InMemoryCache::new(64);
        small.set_value("big", Arc::new(serde_json::json!("x".repeat(1000))), Duration::from_secs(60)).await;
        small.inner.run_pending_tasks().await;
        assert_eq!(small.get_value("big").await, None);
    }
}
