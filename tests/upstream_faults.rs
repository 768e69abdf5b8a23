//! Upstreams failing under the api: tool calls through the REST API (PostgreSQL store, Redis rate
//! limiter and cache) against the testkit fakes, which record every request they get.
//!
//! Each scenario checks the answer the caller sees (success after retry, or the error type, status
//! and `retryable` flag) and, from the fake's records, how many attempts reached the upstream and
//! when: never more than the configured maximum, never a retry before the advertised
//! `Retry-After` or rate-limit reset, exactly one attempt for final errors and for a write that may
//! have reached the upstream. Measured figures are printed with a `figure:` prefix
//! (`cargo test -p integrations-e2e --test upstream_faults -- --nocapture`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use integration_testkit::github::{FakeGitHub, router as github_router};
use integration_testkit::jira::{FakeJira, router as jira_router};
use integration_testkit::slack::{FakeSlack, router as slack_router};
use integration_testkit::{FakeServer, Fault, FaultProxy, RecordedRequest};
use integrations_e2e::{Api, PgSchema, REDIS_URL, json_of, unique};
use serde_json::{Value, json};

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const JIRA_PROJECT: &str = "/rest/api/3/project/ENG";
const JIRA_ISSUE: &str = "/rest/api/3/issue";
const GITHUB_REPO: &str = "/repos/octocat/hello-world";

/// An api on a fresh PostgreSQL schema with Redis, and a client.
struct Env {
    api: Api,
    client: reqwest::Client,
    _schema: PgSchema,
}

/// What the caller saw of one call.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    elapsed: Duration,
}

impl Answer {
    fn error_type(&self) -> &str {
        self.body["error"]["type"].as_str().unwrap_or_default()
    }

    fn retryable(&self) -> Option<bool> {
        self.body["error"]["retryable"].as_bool()
    }

    fn attempts(&self) -> u64 {
        self.body["meta"]["attempts"].as_u64().unwrap_or_default()
    }
}

impl Env {
    /// The api with `--max-retry-attempts 3`, a 20 s deadline and `extra` options.
    async fn start(extra: &[&str]) -> Self {
        let schema = PgSchema::create().await.expect("schema");
        let url = schema.url();
        let mut options = vec![
            "--database-url",
            url.as_str(),
            "--master-key",
            MASTER_KEY,
            "--redis-url",
            REDIS_URL,
            "--max-retry-attempts",
            "3",
            "--integration-timeout",
            "20",
        ];
        options.extend_from_slice(extra);
        let api = Api::start(&options).await.expect("api");
        Self { api, client: reqwest::Client::new(), _schema: schema }
    }

    /// Save a connection of `provider` under a unique name (limits in Redis are per connection
    /// name, shared with every other test process); returns the name.
    async fn connect(&self, provider: &str, mut config: Value) -> String {
        let name = unique(provider);
        config["provider"] = json!(provider);
        let url = self.api.url(&format!("/api/integrations/{name}/configure"));
        let (status, body) = json_of(self.client.post(url).json(&config).send().await.expect("send")).await;
        assert_eq!(status, 200, "configure {name}: {body}");
        name
    }

    async fn jira(&self, server: &FakeServer, settings: Value) -> String {
        let mut config = json!({
            "base_url": server.base_url(),
            "username": FakeJira::USERNAME,
            "api_token": FakeJira::API_TOKEN,
        });
        merge(&mut config, settings);
        self.connect("jira", config).await
    }

    async fn github(&self, server: &FakeServer, settings: Value) -> String {
        let mut config = json!({"token": FakeGitHub::TOKEN, "api_url": server.base_url()});
        merge(&mut config, settings);
        self.connect("github", config).await
    }

    async fn slack(&self, server: &FakeServer, settings: Value) -> String {
        let mut config =
            json!({"bot_token": FakeSlack::BOT_TOKEN, "api_url": format!("{}/api/", server.base_url())});
        merge(&mut config, settings);
        self.connect("slack", config).await
    }

    /// `POST /api/tools/{tool}/invoke` on `connection`, uncached.
    async fn invoke(&self, tool: &str, connection: &str, parameters: Value) -> Answer {
        let started = Instant::now();
        let response = self
            .client
            .post(self.api.url(&format!("/api/tools/{tool}/invoke")))
            .json(&json!({"parameters": parameters, "connection": connection, "cache": false}))
            .send()
            .await
            .expect("send");
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let (status, body) = json_of(response).await;
        let elapsed = started.elapsed();
        // never an internal error, whatever the upstream did
        assert_ne!(status, 500, "{tool}: {body}");
        assert_ne!(body["error"]["type"], "internal", "{tool}: {body}");
        Answer { status, body, retry_after, elapsed }
    }

    /// Close the store's sessions before the schema is dropped.
    async fn finish(self) {
        self.api.app.store.close().await;
    }
}

fn merge(config: &mut Value, settings: Value) {
    if let (Some(config), Value::Object(settings)) = (config.as_object_mut(), settings) {
        config.extend(settings);
    }
}

/// The requests `server` received for exactly `method path`, in arrival order.
fn hits(server: &FakeServer, method: &str, path: &str) -> Vec<RecordedRequest> {
    server.requests().into_iter().filter(|r| r.method == method && r.path == path).collect()
}

/// Time between consecutive requests.
fn gaps(hits: &[RecordedRequest]) -> Vec<Duration> {
    hits.windows(2).map(|pair| pair[1].at.duration_since(pair[0].at)).collect()
}

fn millis(gaps: &[Duration]) -> Vec<u128> {
    gaps.iter().map(Duration::as_millis).collect()
}

/// Assert that no retry came before `advertised` after the answer that asked for it.
fn assert_spacing(what: &str, hits: &[RecordedRequest], advertised: Duration) {
    let gaps = gaps(hits);
    for gap in &gaps {
        assert!(
            *gap >= advertised,
            "{what}: a retry came {gap:?} after the previous attempt, {advertised:?} asked"
        );
    }
    println!(
        "figure: {what}: {} attempts, gaps {:?} ms, advertised {} ms",
        hits.len(),
        millis(&gaps),
        advertised.as_millis()
    );
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[tokio::test]
async fn jira_429_storms_honour_retry_after_and_the_maximum() {
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let env = Env::start(&[]).await;
    let conn = env.jira(&server, json!({})).await;
    let one_retry = env.jira(&server, json!({"max_retry_attempts": 1})).await;
    let short = env.jira(&server, json!({"timeout_seconds": 3})).await;
    let limited = |times| {
        Fault::status(429)
            .header("retry-after", "1")
            .body(r#"{"errorMessages":["Rate limit exceeded."]}"#)
            .times(times)
            .on_path(JIRA_PROJECT)
    };

    // two 429s, then the answer: success on the third attempt, each retry a second later
    server.faults().push(limited(2));
    let answer = env.invoke("jira_get_project", &conn, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["result"]["key"], "ENG");
    assert_eq!(answer.attempts(), 3);
    let got = hits(&server, "GET", JIRA_PROJECT);
    assert_eq!(got.len(), 3);
    assert_spacing("jira 429 x2 then 200", &got, Duration::from_secs(1));

    // a storm longer than the connection's maximum (1 retry): rate_limited after exactly 2 attempts
    server.reset_requests();
    server.faults().push(limited(10));
    let answer = env.invoke("jira_get_project", &one_retry, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.error_type(), "rate_limited");
    assert_eq!(answer.retryable(), Some(true));
    assert_eq!(answer.retry_after, Some(1), "the caller learns the wait");
    let got = hits(&server, "GET", JIRA_PROJECT);
    assert_eq!(got.len(), 2, "max_retry_attempts 1: two attempts");
    assert_spacing("jira 429 storm, max_retry_attempts 1", &got, Duration::from_secs(1));
    server.faults().clear();

    // a create is retried after 429 (Jira did nothing), and created once
    server.reset_requests();
    let before = jira.issue_count();
    server.faults().push(
        Fault::status(429)
            .header("retry-after", "1")
            .body(r#"{"errorMessages":["Rate limit exceeded."]}"#)
            .on_path(JIRA_ISSUE),
    );
    let answer =
        env.invoke("jira_create_issue", &conn, json!({"project_key": "ENG", "summary": "after 429"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.attempts(), 2);
    assert_eq!(jira.issue_count(), before + 1, "created exactly once");
    assert_spacing("jira create after 429", &hits(&server, "POST", JIRA_ISSUE), Duration::from_secs(1));

    // a Retry-After beyond the deadline: no waiting, the caller gets the wait at once
    server.reset_requests();
    server.faults().push(Fault::status(429).header("retry-after", "30").times(5).on_path(JIRA_PROJECT));
    let answer = env.invoke("jira_get_project", &short, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.retry_after, Some(30));
    assert!(answer.elapsed < Duration::from_secs(3), "did not sleep: {:?}", answer.elapsed);
    assert_eq!(hits(&server, "GET", JIRA_PROJECT).len(), 1);
    server.faults().clear();
    env.finish().await;
}

#[tokio::test]
async fn github_secondary_and_primary_rate_limits() {
    let github = FakeGitHub::demo();
    let server = FakeServer::start(github_router(github.clone())).await.expect("fake github");
    let env = Env::start(&[]).await;
    let conn = env.github(&server, json!({})).await;
    let repo = json!({"owner": "octocat", "repo": "hello-world"});

    // secondary limit: 403 with retry-after
    server.faults().push(
        Fault::status(403)
            .header("retry-after", "1")
            .body(r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#)
            .on_path(GITHUB_REPO),
    );
    let answer = env.invoke("github_get_repository", &conn, repo.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.attempts(), 2);
    let got = hits(&server, "GET", GITHUB_REPO);
    assert_eq!(got.len(), 2);
    assert_spacing("github 403 secondary limit, retry-after 1", &got, Duration::from_secs(1));

    // 429 with retry-after, the same
    server.reset_requests();
    server.faults().push(
        Fault::status(429)
            .header("retry-after", "1")
            .body(r#"{"message":"Too many requests"}"#)
            .on_path(GITHUB_REPO),
    );
    let answer = env.invoke("github_get_repository", &conn, repo.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_spacing("github 429, retry-after 1", &hits(&server, "GET", GITHUB_REPO), Duration::from_secs(1));

    // primary limit: the fake answers 403 with x-ratelimit-remaining 0 until its reset; the retry
    // must not arrive before the reset second
    server.reset_requests();
    // a lower bound of the fake's reset second (a retry before the fake's own reset would be
    // answered 403 again, and counted below)
    let reset = epoch_secs() + 1;
    github.exhaust_rate_limit("core", 1);
    let answer = env.invoke("github_get_repository", &conn, repo.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let got = hits(&server, "GET", GITHUB_REPO);
    assert_eq!(got.len(), 2, "one 403, then the answer: {:?}", got.len());
    let retried_at = got[1].wall.duration_since(UNIX_EPOCH).expect("after the epoch");
    assert!(
        retried_at >= Duration::from_secs(reset),
        "the retry came at {retried_at:?}, before the reset at {reset} s"
    );
    println!(
        "figure: github primary limit: 2 attempts, retry {} ms after the first, {} ms after the advertised reset",
        got[1].at.duration_since(got[0].at).as_millis(),
        (retried_at - Duration::from_secs(reset)).as_millis()
    );

    // a plain 403 is a permission error, one attempt
    server.reset_requests();
    server.faults().push(
        Fault::status(403)
            .body(r#"{"message":"Resource not accessible by integration"}"#)
            .on_path(GITHUB_REPO),
    );
    let answer = env.invoke("github_get_repository", &conn, repo).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.error_type(), "permission");
    assert_eq!(answer.retryable(), Some(false));
    assert_eq!(hits(&server, "GET", GITHUB_REPO).len(), 1);
    env.finish().await;
}

#[tokio::test]
async fn slack_429_and_ratelimited_answers() {
    let slack = FakeSlack::demo();
    let server = FakeServer::start(slack_router(slack.clone())).await.expect("fake slack");
    let env = Env::start(&[]).await;
    let conn = env.slack(&server, json!({})).await;
    let one_retry = env.slack(&server, json!({"max_retry_attempts": 1})).await;
    let alice = slack.user_id("alice").expect("alice");
    let general = slack.channel_id("general").expect("general");
    let limited = |times| {
        Fault::status(429)
            .header("retry-after", "1")
            .body(r#"{"ok":false,"error":"ratelimited"}"#)
            .times(times)
    };

    // HTTP 429 with Retry-After
    server.faults().push(limited(2).on_path("/api/users.info"));
    let answer = env.invoke("slack_get_user", &conn, json!({"user_id": alice})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.attempts(), 3);
    let got = hits(&server, "GET", "/api/users.info");
    assert_eq!(got.len(), 3);
    assert_spacing("slack 429 x2, retry-after 1", &got, Duration::from_secs(1));

    // 200 {"ok": false, "error": "ratelimited"}: no advertised wait, retried with backoff
    server.reset_requests();
    server.faults().push(
        Fault::status(200).body(r#"{"ok":false,"error":"ratelimited"}"#).times(2).on_path("/api/users.info"),
    );
    let answer = env.invoke("slack_get_user", &conn, json!({"user_id": alice})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.attempts(), 3);
    let got = hits(&server, "GET", "/api/users.info");
    assert_eq!(got.len(), 3);
    println!(
        "figure: slack ok:false ratelimited x2: 3 attempts, gaps {:?} ms (backoff, no advertised wait)",
        millis(&gaps(&got))
    );

    // a storm on chat.postMessage beyond the maximum: 429 after exactly 2 attempts, nothing posted
    server.reset_requests();
    let before = slack.messages_in(&general).len();
    server.faults().push(limited(10).on_path("/api/chat.postMessage"));
    let answer =
        env.invoke("slack_send_message", &one_retry, json!({"channel": general, "text": "storm"})).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.error_type(), "rate_limited");
    assert_eq!(answer.retryable(), Some(true));
    assert!(answer.retry_after.is_some(), "Retry-After passed on");
    let got = hits(&server, "POST", "/api/chat.postMessage");
    assert_eq!(got.len(), 2, "max_retry_attempts 1: two attempts");
    assert_spacing("slack chat.postMessage 429 storm, max_retry_attempts 1", &got, Duration::from_secs(1));
    assert_eq!(slack.messages_in(&general).len(), before);
    server.faults().clear();
    env.finish().await;
}

#[tokio::test]
async fn server_error_bursts() {
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let env = Env::start(&[]).await;
    let conn = env.jira(&server, json!({})).await;
    let two_retries = env.jira(&server, json!({"max_retry_attempts": 2})).await;

    // two 503s, then the answer
    server.faults().push(Fault::status(503).times(2).on_path(JIRA_PROJECT));
    let answer = env.invoke("jira_get_project", &conn, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.attempts(), 3);
    let got = hits(&server, "GET", JIRA_PROJECT);
    assert_eq!(got.len(), 3);
    println!("figure: jira 503 x2 then 200: 3 attempts, gaps {:?} ms (backoff)", millis(&gaps(&got)));

    // a burst longer than the maximum: upstream error after exactly max attempts
    server.reset_requests();
    server.faults().push(
        Fault::status(502)
            .content_type("text/html")
            .body("<html>bad gateway</html>")
            .times(10)
            .on_path(JIRA_PROJECT),
    );
    let answer = env.invoke("jira_get_project", &two_retries, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.error_type(), "upstream");
    assert_eq!(answer.retryable(), Some(true));
    assert_eq!(hits(&server, "GET", JIRA_PROJECT).len(), 3, "max_retry_attempts 2: three attempts");
    server.faults().clear();

    // 503 with Retry-After: the retry waits for it
    server.reset_requests();
    server.faults().push(Fault::status(503).header("retry-after", "1").on_path(JIRA_PROJECT));
    let answer = env.invoke("jira_get_project", &conn, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let got = hits(&server, "GET", JIRA_PROJECT);
    assert_eq!(got.len(), 2);
    assert_spacing("jira 503 with retry-after 1", &got, Duration::from_secs(1));

    // a create answered 500 may have happened: one attempt, and the error says so
    server.reset_requests();
    server.faults().push(Fault::status(500).on_path(JIRA_ISSUE));
    let answer =
        env.invoke("jira_create_issue", &conn, json!({"project_key": "ENG", "summary": "once"})).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.error_type(), "upstream");
    assert_eq!(hits(&server, "POST", JIRA_ISSUE).len(), 1, "a create that may have happened is not repeated");
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not retried") && message.contains("not idempotent"), "{message}");
    assert_eq!(answer.body["error"]["details"]["effect"], "unknown", "{}", answer.body);
    env.finish().await;
}

#[tokio::test]
async fn responses_slower_than_the_deadline_time_out() {
    let jira = FakeJira::demo();
    let jira_server = FakeServer::start(jira_router(jira)).await.expect("fake jira");
    let github_server = FakeServer::start(github_router(FakeGitHub::demo())).await.expect("fake github");
    let env = Env::start(&[]).await;
    let jira_conn = env.jira(&jira_server, json!({"timeout_seconds": 1})).await;
    let github_conn = env.github(&github_server, json!({"timeout_seconds": 1})).await;
    jira_server.faults().push(Fault::delay(Duration::from_secs(4)).times(10).on_path(JIRA_PROJECT));
    github_server.faults().push(Fault::delay(Duration::from_secs(4)).times(10).on_path(GITHUB_REPO));

    let (jira_answer, github_answer) = tokio::join!(
        env.invoke("jira_get_project", &jira_conn, json!({"key": "ENG"})),
        env.invoke("github_get_repository", &github_conn, json!({"owner": "octocat", "repo": "hello-world"})),
    );
    for (what, answer, server, path) in [
        ("jira", jira_answer, &jira_server, JIRA_PROJECT),
        ("github", github_answer, &github_server, GITHUB_REPO),
    ] {
        assert_eq!(answer.status, 504, "{what}: {}", answer.body);
        assert_eq!(answer.error_type(), "timeout");
        assert_eq!(answer.retryable(), Some(true));
        assert!(
            answer.elapsed >= Duration::from_millis(950) && answer.elapsed < Duration::from_secs(3),
            "{what}: ended at the 1 s deadline, not with the 4 s answer: {:?}",
            answer.elapsed
        );
        assert_eq!(hits(server, "GET", path).len(), 1, "{what}: no retry past the deadline");
        println!(
            "figure: {what} answer 4 s, deadline 1 s: 504 timeout after {} ms, 1 attempt",
            answer.elapsed.as_millis()
        );
    }
    env.finish().await;
}

#[tokio::test]
async fn connection_resets() {
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let env = Env::start(&[]).await;
    let conn = env.jira(&server, json!({})).await;
    let two_retries = env.jira(&server, json!({"max_retry_attempts": 2})).await;
    let proxied_config = |settings: Value| {
        let mut config = json!({
            "base_url": format!("http://{}", proxy.addr()),
            "username": FakeJira::USERNAME,
            "api_token": FakeJira::API_TOKEN,
        });
        merge(&mut config, settings);
        config
    };
    let refused = env.connect("jira", proxied_config(json!({"max_retry_attempts": 2}))).await;
    let reset = env.connect("jira", proxied_config(json!({}))).await;

    // a read whose connection is dropped is retried
    server.faults().push(Fault::drop_connection().on_path(JIRA_PROJECT));
    let answer = env.invoke("jira_get_project", &conn, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.attempts(), 2);
    assert_eq!(hits(&server, "GET", JIRA_PROJECT).len(), 2);

    // ... up to the maximum
    server.reset_requests();
    server.faults().push(Fault::drop_connection().times(10).on_path(JIRA_PROJECT));
    let answer = env.invoke("jira_get_project", &two_retries, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.error_type(), "network");
    assert_eq!(answer.retryable(), Some(true));
    assert_eq!(hits(&server, "GET", JIRA_PROJECT).len(), 3, "max_retry_attempts 2: three attempts");
    server.faults().clear();

    // a create whose connection broke after the request arrived: one attempt, and the error says so
    server.reset_requests();
    let before = jira.issue_count();
    server.faults().push(Fault::drop_connection().on_path(JIRA_ISSUE));
    let answer =
        env.invoke("jira_create_issue", &conn, json!({"project_key": "ENG", "summary": "reset"})).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.error_type(), "network");
    assert_eq!(hits(&server, "POST", JIRA_ISSUE).len(), 1, "never repeated");
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("may have reached jira") && message.contains("not idempotent"), "{message}");
    assert_eq!(answer.body["error"]["details"]["effect"], "unknown");
    assert_eq!(jira.issue_count(), before);

    // the proxy resets every new connection at once (a refusal): a read is retried up to the
    // maximum and nothing reaches the fake
    server.reset_requests();
    proxy.refuse(true);
    let accepted = proxy.accepted();
    let answer = env.invoke("jira_get_project", &refused, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.error_type(), "network");
    assert_eq!(answer.retryable(), Some(true));
    assert_eq!(proxy.accepted() - accepted, 3, "max_retry_attempts 2: three attempts");
    assert_eq!(server.calls(), 0);
    proxy.refuse(false);

    // a reset in the middle of a slow exchange: the read is retried and succeeds
    proxy.set_latency(Duration::from_millis(1500));
    let accepted = proxy.accepted();
    let call = env.invoke("jira_get_project", &reset, json!({"key": "ENG"}));
    let cut = async {
        // once the first attempt's connection is open (its data held by the latency), break it
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.accepted() == accepted && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.reset_all();
        proxy.set_latency(Duration::ZERO);
    };
    let (answer, ()) = tokio::join!(call, cut);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.attempts(), 2, "{}", answer.body);
    assert_eq!(hits(&server, "GET", JIRA_PROJECT).len(), 1, "only the retry reached jira");
    env.finish().await;
}

#[tokio::test]
async fn bodies_that_are_cut_off_or_not_json() {
    let jira = FakeJira::demo();
    let jira_server = FakeServer::start(jira_router(jira)).await.expect("fake jira");
    let github_server = FakeServer::start(github_router(FakeGitHub::demo())).await.expect("fake github");
    let slack = FakeSlack::demo();
    let slack_server = FakeServer::start(slack_router(slack.clone())).await.expect("fake slack");
    let env = Env::start(&[]).await;
    let jira_conn = env.jira(&jira_server, json!({})).await;
    let github_conn = env.github(&github_server, json!({})).await;
    let slack_conn = env.slack(&slack_server, json!({})).await;
    let alice = slack.user_id("alice").expect("alice");
    let html = "<!DOCTYPE html><html><body>Please log in</body></html>";
    let project = r#"{"id":"10000","key":"ENG","name":"Engineering","projectTypeKey":"software"}"#;

    let cases: Vec<(&str, &FakeServer, &str, &str, &str, Value)> = vec![
        ("jira", &jira_server, JIRA_PROJECT, "jira_get_project", jira_conn.as_str(), json!({"key": "ENG"})),
        (
            "github",
            &github_server,
            GITHUB_REPO,
            "github_get_repository",
            github_conn.as_str(),
            json!({"owner": "octocat", "repo": "hello-world"}),
        ),
        (
            "slack",
            &slack_server,
            "/api/users.info",
            "slack_get_user",
            slack_conn.as_str(),
            json!({"user_id": alice}),
        ),
    ];
    for (what, server, path, tool, conn, params) in cases {
        // 200 with an HTML page: an upstream error, not retried, never a 500
        server.reset_requests();
        server.faults().push(Fault::status(200).content_type("text/html").body(html).on_path(path));
        let answer = env.invoke(tool, conn, params.clone()).await;
        assert_eq!(answer.status, 502, "{what} html: {}", answer.body);
        assert_eq!(answer.error_type(), "upstream", "{what} html: {}", answer.body);
        assert_eq!(hits(server, "GET", path).len(), 1, "{what} html: one attempt");

        // 200 with a JSON document cut short (complete on the wire): the same
        server.reset_requests();
        server.faults().push(Fault::status(200).body(&project[..30]).on_path(path));
        let answer = env.invoke(tool, conn, params.clone()).await;
        assert_eq!(answer.status, 502, "{what} truncated json: {}", answer.body);
        assert_eq!(answer.error_type(), "upstream", "{what} truncated json: {}", answer.body);
        assert_eq!(hits(server, "GET", path).len(), 1, "{what} truncated json: one attempt");

        // a body cut off on the wire: the connection broke, a read is retried and succeeds
        server.reset_requests();
        server.faults().push(Fault::truncated(200, project, 25).on_path(path));
        let answer = env.invoke(tool, conn, params.clone()).await;
        assert_eq!(answer.status, 200, "{what} cut off: {}", answer.body);
        assert_eq!(hits(server, "GET", path).len(), 2, "{what} cut off: retried once");

        // cut off every time: a network error after the maximum
        server.reset_requests();
        server.faults().push(Fault::truncated(200, project, 25).times(10).on_path(path));
        let answer = env.invoke(tool, conn, params).await;
        assert_eq!(answer.status, 502, "{what} always cut off: {}", answer.body);
        assert_eq!(answer.error_type(), "network", "{what} always cut off: {}", answer.body);
        assert_eq!(answer.retryable(), Some(true));
        assert_eq!(hits(server, "GET", path).len(), 4, "{what}: max_retry_attempts 3, four attempts");
        server.faults().clear();
    }
    env.finish().await;
}

#[tokio::test]
async fn final_errors_get_exactly_one_attempt() {
    let jira_server = FakeServer::start(jira_router(FakeJira::demo())).await.expect("fake jira");
    let github_server = FakeServer::start(github_router(FakeGitHub::demo())).await.expect("fake github");
    let slack = FakeSlack::demo();
    let slack_server = FakeServer::start(slack_router(slack.clone())).await.expect("fake slack");
    let env = Env::start(&[]).await;
    let jira_conn = env.jira(&jira_server, json!({})).await;
    let github_conn = env.github(&github_server, json!({})).await;
    let slack_conn = env.slack(&slack_server, json!({})).await;
    let repo = json!({"owner": "octocat", "repo": "hello-world"});

    let statuses = [
        (400, "invalid_input", 422),
        (401, "authentication", 401),
        (404, "not_found", 404),
        (409, "conflict", 409),
        (422, "invalid_input", 422),
    ];
    for (upstream, kind, status) in statuses {
        jira_server.reset_requests();
        jira_server.faults().push(
            Fault::status(upstream)
                .body(r#"{"errorMessages":["injected"],"errors":{}}"#)
                .on_path(JIRA_PROJECT),
        );
        let answer = env.invoke("jira_get_project", &jira_conn, json!({"key": "ENG"})).await;
        assert_eq!((answer.status, answer.error_type()), (status, kind), "jira {upstream}: {}", answer.body);
        assert_eq!(answer.retryable(), Some(false));
        assert_eq!(hits(&jira_server, "GET", JIRA_PROJECT).len(), 1, "jira {upstream}: one attempt");

        github_server.reset_requests();
        github_server
            .faults()
            .push(Fault::status(upstream).body(r#"{"message":"injected"}"#).on_path(GITHUB_REPO));
        let answer = env.invoke("github_get_repository", &github_conn, repo.clone()).await;
        assert_eq!(
            (answer.status, answer.error_type()),
            (status, kind),
            "github {upstream}: {}",
            answer.body
        );
        assert_eq!(answer.retryable(), Some(false));
        assert_eq!(hits(&github_server, "GET", GITHUB_REPO).len(), 1, "github {upstream}: one attempt");
    }

    // Slack says it in the body of a 200
    let alice = slack.user_id("alice").expect("alice");
    for (code, kind, status) in [
        ("invalid_auth", "authentication", 401),
        ("missing_scope", "permission", 403),
        ("user_not_found", "not_found", 404),
        ("invalid_arguments", "invalid_input", 422),
    ] {
        slack_server.reset_requests();
        slack_server.faults().push(
            Fault::status(200)
                .body(&format!(r#"{{"ok":false,"error":"{code}"}}"#))
                .on_path("/api/users.info"),
        );
        let answer = env.invoke("slack_get_user", &slack_conn, json!({"user_id": alice})).await;
        assert_eq!((answer.status, answer.error_type()), (status, kind), "slack {code}: {}", answer.body);
        assert_eq!(answer.retryable(), Some(false));
        assert_eq!(hits(&slack_server, "GET", "/api/users.info").len(), 1, "slack {code}: one attempt");
    }
    env.finish().await;
}

#[tokio::test]
async fn circuit_breaker_fails_fast_and_probes_after_the_cool_down() {
    let down = FakeServer::start(jira_router(FakeJira::demo())).await.expect("fake jira");
    let healthy = FakeServer::start(jira_router(FakeJira::demo())).await.expect("fake jira");
    let cool_down = Duration::from_secs(2);
    let env =
        Env::start(&["--circuit-breaker-threshold", "3", "--circuit-breaker-cool-down-ms", "2000"]).await;
    let conn = env.jira(&down, json!({"max_retry_attempts": 0})).await;
    let other = env.jira(&healthy, json!({"max_retry_attempts": 0})).await;
    let get = || env.invoke("jira_get_project", &conn, json!({"key": "ENG"}));

    // the upstream is fully down: three failures reach it and open the circuit
    down.faults().push(Fault::status(503).times(1000).on_path(JIRA_PROJECT));
    for i in 0..3 {
        let answer = get().await;
        assert_eq!((answer.status, answer.error_type()), (502, "upstream"), "call {i}: {}", answer.body);
    }
    let opened = Instant::now();
    assert_eq!(down.calls(), 3);

    // open: calls fail at once, without reaching the upstream (as many as fit well inside the
    // cool-down, however slow this machine is)
    let mut latencies = Vec::new();
    while latencies.len() < 20 && opened.elapsed() < cool_down / 2 {
        let answer = get().await;
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(answer.error_type(), "circuit_open");
        assert_eq!(answer.retryable(), Some(true));
        let retry_after = answer.retry_after.expect("Retry-After: when the probe will be let through");
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        latencies.push(answer.elapsed);
    }
    assert_eq!(down.calls(), 3, "no call reached the upstream while the circuit was open");
    assert!(latencies.len() >= 5, "only {} calls in a second", latencies.len());
    latencies.sort();
    let (p50, max) = (latencies[latencies.len() / 2], latencies[latencies.len() - 1]);
    println!(
        "figure: circuit open: {} calls, client-side latency p50 {:.2} ms, max {:.2} ms",
        latencies.len(),
        p50.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0
    );
    // generous bounds for a loaded 2-core machine (measured figures are printed above)
    assert!(p50 < Duration::from_millis(50), "p50 {p50:?}");
    assert!(max < Duration::from_millis(500), "max {max:?}");

    // another connection is not affected
    let answer = env.invoke("jira_get_project", &other, json!({"key": "ENG"})).await;
    assert_eq!(answer.status, 200, "per connection: {}", answer.body);

    // after the cool-down one probe reaches the upstream; it fails, the circuit opens again
    tokio::time::sleep(cool_down + Duration::from_millis(100)).await;
    let answer = get().await;
    assert_eq!(answer.error_type(), "upstream", "the probe reached the upstream: {}", answer.body);
    assert_eq!(down.calls(), 4);
    let answer = get().await;
    assert_eq!(answer.error_type(), "circuit_open", "re-opened by the failed probe: {}", answer.body);
    assert_eq!(down.calls(), 4);

    // the upstream is back: after the cool-down the probe succeeds and closes the circuit
    down.faults().clear();
    tokio::time::sleep(cool_down + Duration::from_millis(100)).await;
    let answer = get().await;
    assert_eq!(answer.status, 200, "the probe: {}", answer.body);
    assert_eq!(down.calls(), 5);
    for _ in 0..3 {
        assert_eq!(get().await.status, 200, "closed again");
    }
    assert_eq!(down.calls(), 8);
    env.finish().await;
}
