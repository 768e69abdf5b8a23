//! The api's own dependencies failing under load, for real: PostgreSQL is stopped with
//! `pg_ctlcluster ... stop -m immediate` (a crash, as far as the api can tell) and started again,
//! then Redis is shut down and started again, while eight loops keep calling a tool.
//!
//! * While PostgreSQL is down every answer is a quick `503 unavailable` (or a success served from
//!   the connection resolved moments before): no hang, no 500. Five seconds after it is back there
//!   is no 5xx at all.
//! * While Redis is down calls go on (cache misses, the documented per-process rate limiter), a
//!   configured rate limit is still enforced, and `status` names the fallback; once Redis is back it
//!   is used again.
//!
//! This is the only test of its binary, so no other test of this workspace runs beside it in the
//! same process; other processes using these services see the outage too, so run it sparingly.
//! Every service stopped is started again, also when the test fails (guards started on drop).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_testkit::FakeServer;
use integration_testkit::jira::{FakeJira, router as jira_router};
use integrations_e2e::{Api, PgSchema, REDIS_URL, json_of, unique};
use serde_json::{Value, json};

// ---- the services -----------------------------------------------------------------------------

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).status().map(|s| s.success()).unwrap_or(false)
}

/// Start a daemon in a session of its own (`setsid -w`), so that whatever ends this test's process
/// group later (a harness cancelling the run) does not take the restarted service with it.
fn run_detached(program: &str, args: &[&str]) -> bool {
    let mut all = vec!["-w", program];
    all.extend_from_slice(args);
    Command::new("setsid")
        .args(&all)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn pg_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a PostgreSQL cluster under /etc/postgresql")
}

fn pg_up() -> bool {
    run("pg_isready", &["-q", "-h", "127.0.0.1", "-p", "5432", "-t", "1"])
}

fn pg_start() {
    if !pg_up() {
        let version = pg_version();
        run_detached("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "start"]);
    }
}

fn pg_stop_immediate() {
    let version = pg_version();
    assert!(
        run("pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "stop", "-m", "immediate"]),
        "pg_ctlcluster stop"
    );
}

fn redis_up() -> bool {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "ping"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
        .unwrap_or(false)
}

fn redis_start() {
    if !redis_up() {
        run_detached(
            "redis-server",
            &[
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                "/var/lib/redis",
                "--logfile",
                "/var/log/redis/ci.log",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis_up() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn redis_stop() {
    // `shutdown nosave` closes the connection without a reply: its exit status says nothing
    let _ = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"]).output();
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis_up() {
        assert!(Instant::now() < deadline, "redis did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a service again when dropped (also while a failed test unwinds).
struct Restore(&'static str, fn());

impl Drop for Restore {
    fn drop(&mut self) {
        (self.1)();
        eprintln!("{} is running again", self.0);
    }
}

// ---- the load ---------------------------------------------------------------------------------

/// One answer: when the call started and ended (since the test's start), status and error type.
#[derive(Debug, Clone)]
struct Sample {
    start: Duration,
    end: Duration,
    status: u16,
    kind: String,
    /// The error's message (empty on success): what a failed assertion shows (through `Debug`).
    #[expect(dead_code, reason = "read only through Debug, in assertion messages")]
    message: String,
}

/// `loops` tasks calling `url` back to back until stopped; every answer is recorded. A call that
/// takes more than 20 s is recorded as status 0 (a hang).
struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, loops: usize, origin: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
        let tasks = (0..loops)
            .map(|_| {
                let (stop, samples, client, url) =
                    (stop.clone(), samples.clone(), client.clone(), url.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let start = origin.elapsed();
                        let (status, kind, message) = match client.get(&url).send().await {
                            Ok(response) => {
                                let (status, body) = json_of(response).await;
                                let kind = body["error"]["type"].as_str().unwrap_or_default().to_owned();
                                let message =
                                    body["error"]["message"].as_str().unwrap_or_default().to_owned();
                                (
                                    status,
                                    if kind.is_empty() && status != 200 { body.to_string() } else { kind },
                                    message,
                                )
                            }
                            Err(e) => (
                                0,
                                if e.is_timeout() { "hang".into() } else { format!("client: {e}") },
                                String::new(),
                            ),
                        };
                        let end = origin.elapsed();
                        samples.lock().unwrap_or_else(|e| e.into_inner()).push(Sample {
                            start,
                            end,
                            status,
                            kind,
                            message,
                        });
                        if status != 200 {
                            // failing answers come fast: do not spin
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Self { stop, samples, tasks }
    }

    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn between(samples: &[Sample], from: Duration, to: Duration) -> Vec<Sample> {
    samples.iter().filter(|s| s.start >= from && s.end <= to).cloned().collect()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

async fn configure(client: &reqwest::Client, api: &Api, name: &str, body: Value) {
    let (status, answer) = json_of(
        client
            .post(api.url(&format!("/api/integrations/{name}/configure")))
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

async fn limiter(client: &reqwest::Client, api: &Api, name: &str) -> Value {
    let (status, body) =
        json_of(client.get(api.url(&format!("/api/integrations/{name}/status"))).send().await.expect("send"))
            .await;
    assert_eq!(status, 200, "{body}");
    body["rate_limit"].clone()
}

#[tokio::test]
async fn postgres_restart_and_redis_outage_under_load() {
    let origin = Instant::now();
    assert!(pg_up() && redis_up(), "PostgreSQL and Redis run before the test");
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let schema = PgSchema::create().await.expect("schema");
    let url = schema.url();
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let api = Api::start(&[
        "--database-url",
        url.as_str(),
        "--master-key",
        key,
        "--redis-url",
        REDIS_URL,
        "--rate-limit-per-minute",
        "1000000",
        "--max-retry-attempts",
        "0",
    ])
    .await
    .expect("api");
    let client = reqwest::Client::new();
    // connection names unique to this run: the Redis limiter keys are shared by every api on it
    let busy = unique("jira-load").replace('_', "-");
    let limited = unique("jira-limited").replace('_', "-");
    let base = json!({"provider": "jira", "base_url": server.base_url(), "username": FakeJira::USERNAME, "api_token": FakeJira::API_TOKEN});
    configure(&client, &api, &busy, base.clone()).await;
    let mut slow = base.clone();
    slow["rate_limit_per_minute"] = json!(30);
    slow["timeout_seconds"] = json!(1);
    configure(&client, &api, &limited, slow).await;
    let call_url =
        |name: &str| api.url(&format!("/api/integrations/jira/projects/ENG?connection={name}&cache=false"));

    // ---- PostgreSQL: stopped hard, started again ----------------------------------------------------
    let load = Load::start(call_url(&busy), 8, origin);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warm = load.samples();
    assert!(warm.len() > 8 && warm.iter().all(|s| s.status == 200), "healthy before: {:?}", warm.last());

    let restore_pg = Restore("postgresql", pg_start);
    let stopped_at = origin.elapsed();
    tokio::task::spawn_blocking(pg_stop_immediate).await.expect("stop");
    let stop_returned = origin.elapsed();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let start_at = origin.elapsed();
    tokio::task::spawn_blocking(pg_start).await.expect("start");
    let back_at = origin.elapsed();
    assert!(pg_up(), "postgresql started again");
    drop(restore_pg);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let pg_samples = load.stop().await;

    // while down (calls started between the stop and the start): only `503 unavailable`, or a success
    // on the connection resolved just before, or one that ended once the database was coming back
    let down: Vec<Sample> =
        pg_samples.iter().filter(|s| s.start >= stop_returned && s.start < start_at).cloned().collect();
    let wrong: Vec<&Sample> =
        down.iter().filter(|s| !(s.status == 200 || (s.status == 503 && s.kind == "unavailable"))).collect();
    assert!(wrong.is_empty(), "only 503 unavailable while the database is down: {wrong:?}");
    let longest_down = down.iter().map(|s| s.end - s.start).max().unwrap_or_default();
    assert!(longest_down < Duration::from_secs(6), "no hang: the longest answer took {}", secs(longest_down));
    // past the resolver's 2 s cache, a call that ended before the start command needed the database
    let settled: Vec<&Sample> = down
        .iter()
        .filter(|s| s.start >= stop_returned + Duration::from_millis(2500) && s.end < start_at)
        .collect();
    assert!(settled.iter().all(|s| s.status == 503), "every call is 503 once the cache expired: {settled:?}");
    let unavailable = down.iter().filter(|s| s.status == 503).count();
    assert!(unavailable >= 8, "the outage was seen: {unavailable} answers 503");
    let first_503 = pg_samples.iter().filter(|s| s.status == 503).map(|s| s.end).min().unwrap_or_default();
    // anything between the stop and five seconds after the start is 200 or 503, never another 5xx
    let around = between(&pg_samples, stopped_at, back_at + Duration::from_secs(5));
    assert!(
        around.iter().all(|s| s.status == 200 || (s.status == 503 && s.kind == "unavailable")),
        "no 500 and no hang around the restart: {:?}",
        around.iter().filter(|s| s.status != 200 && s.status != 503).collect::<Vec<_>>()
    );
    // five seconds after it is back: no 5xx
    let after = between(&pg_samples, back_at + Duration::from_secs(5), origin.elapsed());
    assert!(after.len() >= 8, "calls were made after the recovery: {}", after.len());
    let failing: Vec<&Sample> = after.iter().filter(|s| s.status != 200).collect();
    assert!(failing.is_empty(), "no failure 5 s after the database is back: {failing:?}");
    let recovered = pg_samples.iter().filter(|s| s.start >= start_at && s.status == 200).map(|s| s.end).min();
    let last_failure = pg_samples.iter().filter(|s| s.status != 200).map(|s| s.end).max().unwrap_or_default();
    println!(
        "postgresql: stop took {}, first 503 {} after the stop, {} calls started while down ({} answered 503, {} \
         200), longest answer while down {}, start command took {}, first success {} after the start command \
         was issued, last failure {} after it was issued, {} calls from 5 s after it returned on all 200",
        secs(stop_returned - stopped_at),
        secs(first_503.saturating_sub(stopped_at)),
        down.len(),
        down.iter().filter(|s| s.status == 503).count(),
        down.iter().filter(|s| s.status == 200).count(),
        secs(longest_down),
        secs(back_at - start_at),
        secs(recovered.map(|r| r.saturating_sub(start_at)).unwrap_or_default()),
        secs(last_failure.saturating_sub(start_at)),
        after.len(),
    );
    assert_eq!(limiter(&client, &api, &busy).await["limiter"], "redis", "redis in use before its outage");

    // ---- Redis: shut down, started again ---------------------------------------------------------------
    let load = Load::start(call_url(&busy), 8, origin);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restore_redis = Restore("redis", redis_start);
    let redis_stopped = origin.elapsed();
    tokio::task::spawn_blocking(redis_stop).await.expect("stop redis");
    tokio::time::sleep(Duration::from_secs(1)).await;

    // the limit of `limited` (30 per minute, burst 30, 1 s deadline) holds on the fallback
    let (mut admitted, mut refused) = (0, 0);
    for _ in 0..45 {
        let (status, body) = json_of(client.get(call_url(&limited)).send().await.expect("send")).await;
        match status {
            200 => admitted += 1,
            429 => {
                assert_eq!(body["error"]["type"], "rate_limited", "{body}");
                refused += 1;
            }
            other => panic!("only 200 or 429 on the fallback limiter, got {other}: {body}"),
        }
    }
    assert!((30..=32).contains(&admitted), "the burst of 30 is admitted, then the rate: {admitted} admitted");
    assert!(refused >= 13, "calls over the limit are refused: {refused}");
    let fallback = limiter(&client, &api, &limited).await;
    assert_eq!(fallback["limiter"], "redis (fallback: memory)", "{fallback}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let redis_start_at = origin.elapsed();
    tokio::task::spawn_blocking(redis_start).await.expect("start redis");
    assert!(redis_up(), "redis started again");
    drop(restore_redis);
    let redis_back = origin.elapsed();
    // used again: the limiter reports redis and its budget, and the bucket is back in Redis
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut redis_client =
        redis::Client::open(REDIS_URL).expect("url").get_multiplexed_async_connection().await.expect("redis");
    let bucket = format!("integrations:ratelimit:{busy}");
    let used_again = loop {
        let state = limiter(&client, &api, &busy).await;
        let exists: bool =
            redis::cmd("EXISTS").arg(&bucket).query_async(&mut redis_client).await.unwrap_or(false);
        if state["limiter"] == "redis" && state["remaining"].is_number() && exists {
            break origin.elapsed();
        }
        assert!(Instant::now() < deadline, "redis is not used again: {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let redis_samples = load.stop().await;
    let during = between(&redis_samples, redis_stopped, redis_back);
    let failed: Vec<&Sample> = redis_samples.iter().filter(|s| s.status != 200).collect();
    assert!(failed.is_empty(), "calls keep working without redis: {failed:?}");
    let longest_redis = redis_samples.iter().map(|s| s.end - s.start).max().unwrap_or_default();
    assert!(
        longest_redis < Duration::from_secs(3),
        "no stall: the longest answer took {}",
        secs(longest_redis)
    );
    println!(
        "redis: {} calls while down, all 200, longest answer {}; fallback limiter admitted {admitted} of 45 \
         (limit 30/min) and refused {refused} with 429; used again {} after it started ({} down in all)",
        during.len(),
        secs(longest_redis),
        secs(used_again.saturating_sub(redis_back)),
        secs(redis_start_at - redis_stopped),
    );
    api.app.store.close().await;
    drop(schema);
}
