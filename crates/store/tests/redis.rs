//! Redis cache and shared rate limiter, on the real Redis at 127.0.0.1:6379 (unique key prefixes
//! per run), plus their behaviour when Redis is unreachable.

mod common;

use std::time::{Duration, Instant};

use integration_core::{Cache, Decision, Quota, RateLimiter};
use integration_store::redis::{RedisCache, RedisConnection, RedisRateLimiter};

const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Nothing listens here.
const DOWN_URL: &str = "redis://127.0.0.1:1";

fn prefix() -> String {
    format!("{}:", common::unique("itest"))
}

#[tokio::test]
async fn cache_stores_expires_and_removes() {
    let cache = RedisCache::from_url(REDIS_URL).expect("url").with_prefix(prefix());
    assert!(cache.connection().ping().await, "redis at {REDIS_URL}");
    assert_eq!(cache.get("projects").await, None);
    cache.set("projects", b"[1,2]".to_vec(), Duration::from_millis(300)).await;
    assert_eq!(cache.get("projects").await.as_deref(), Some(&b"[1,2]"[..]));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(cache.get("projects").await, None, "expired");

    cache.set("users", b"x".to_vec(), Duration::from_secs(60)).await;
    cache.remove("users").await;
    assert_eq!(cache.get("users").await, None);

    // typed helpers of core work on it
    integration_core::cache::set_json(&cache, "json", &vec!["a"], Duration::from_secs(60)).await;
    let back: Option<Vec<String>> = integration_core::cache::get_json(&cache, "json").await;
    assert_eq!(back, Some(vec!["a".to_owned()]));
    cache.remove("json").await;
}

#[tokio::test]
async fn cache_with_redis_down_is_a_fast_miss() {
    let cache = RedisCache::from_url(DOWN_URL).expect("url");
    let started = Instant::now();
    for _ in 0..50 {
        cache.set("k", b"v".to_vec(), Duration::from_secs(60)).await;
        assert_eq!(cache.get("k").await, None);
        cache.remove("k").await;
    }
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(!cache.connection().is_available());
}

/// Three limiters (three "replicas", each with its own connection) hammer one key for a window;
/// together they admit at most burst + window / interval calls.
#[tokio::test]
async fn three_limiters_share_one_budget() {
    let prefix = prefix();
    let limiters: Vec<RedisRateLimiter> = (0..3)
        .map(|_| RedisRateLimiter::from_url(REDIS_URL).expect("url").with_prefix(prefix.clone()))
        .collect();
    let quota = Quota { per_minute: 600, burst: 5 }; // one per 100 ms after a burst of 5
    let window = Duration::from_millis(1500);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for limiter in limiters {
        tasks.push(tokio::spawn(async move {
            let mut admitted = 0u32;
            while started.elapsed() < window {
                match limiter.try_acquire("jira", quota).await.expect("never an error") {
                    Decision::Allowed => admitted += 1,
                    Decision::Wait(d) => {
                        assert!(d <= Duration::from_millis(100), "wait {d:?}");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            assert_eq!(limiter.describe(), "redis");
            admitted
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("join");
    }
    let elapsed = started.elapsed();
    let max = quota.burst + (elapsed.as_millis() / 100) as u32 + 1;
    println!("admitted {total} in {elapsed:?} (bound {max})");
    assert!(total <= max, "admitted {total}, bound {max}");
    assert!(total >= quota.burst + 10, "admitted only {total}: the limiter is too strict");
}

#[tokio::test]
async fn limiter_keys_are_independent_and_quota_changes_apply() {
    let limiter = RedisRateLimiter::from_url(REDIS_URL).expect("url").with_prefix(prefix());
    let quota = Quota { per_minute: 60, burst: 2 };
    assert_eq!(limiter.remaining("a", quota).await, Some(2));
    assert_eq!(limiter.try_acquire("a", quota).await.ok(), Some(Decision::Allowed));
    assert_eq!(limiter.remaining("a", quota).await, Some(1));
    assert_eq!(limiter.try_acquire("a", quota).await.ok(), Some(Decision::Allowed));
    match limiter.try_acquire("a", quota).await {
        Ok(Decision::Wait(d)) => {
            assert!(d > Duration::from_millis(900) && d <= Duration::from_secs(1), "{d:?}")
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    assert_eq!(limiter.try_acquire("b", quota).await.ok(), Some(Decision::Allowed));
    // the quota is passed per call: a connection reconfigured to a larger budget is admitted at
    // once (the debt of 2 s is within the new tolerance of 30 x 100 ms)
    let bigger = Quota { per_minute: 600, burst: 30 };
    assert_eq!(limiter.try_acquire("a", bigger).await.ok(), Some(Decision::Allowed));
}

#[tokio::test]
async fn limiter_falls_back_to_memory_when_redis_is_down() {
    let limiter = RedisRateLimiter::new(RedisConnection::open(DOWN_URL).expect("url"));
    let quota = Quota { per_minute: 60, burst: 3 };
    let started = Instant::now();
    let decisions: Vec<Decision> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(limiter.try_acquire("jira", quota).await.expect("never an error"));
        }
        v
    };
    assert_eq!(&decisions[..3], &[Decision::Allowed; 3]);
    assert!(matches!(decisions[3], Decision::Wait(_)), "the local limiter still limits");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(limiter.describe(), "redis (fallback: memory)");
    assert!(limiter.is_fallback());
}
