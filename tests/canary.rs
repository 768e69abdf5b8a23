//! Secret canary: every credential the service holds is set to a unique string, a full scenario runs
//! through every provider (Jira, GitHub, Slack, an inbound webhook, a custom HTTP tool) and every
//! front door (REST, MCP, the bus worker), with the api and the worker as real processes logging at
//! trace level in JSON. Afterwards each canary, and its hex and base64 forms, is looked for in
//! everything the service produced: both processes' logs, every HTTP response (status line, headers,
//! body), every MCP result, every bus event, every Redis key and value, and a `pg_dump` of the
//! test's schema. The expected count is zero everywhere.
//!
//! Upstream error paths are included on purpose, with upstreams that echo the credential they were
//! sent in their error body (some gateways and proxies do): the service must not relay it.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use futures::StreamExt as _;
use hmac::{Hmac, KeyInit, Mac};
use integration_bus::Topology;
use integration_testkit::github::{FakeGitHub, router as github_router};
use integration_testkit::jira::{FakeJira, router as jira_router};
use integration_testkit::slack::{FakeSlack, router as slack_router};
use integration_testkit::{FakeServer, Fault};
use integrations_e2e::{PgSchema, REDIS_URL, free_port, unique, wait_healthy};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ConnectionProperties};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value, json};
use sha2::Sha256;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

// ---- canaries and the forms they could take -------------------------------------------------------

/// A unique secret: `canary-<what>-<24 random hex digits>`.
fn canary(what: &str) -> String {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("urandom");
    format!("canary-{what}-{}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The strings that reveal `secret` wherever it is written: itself, its hex (both cases) and, for
/// each of the three alignments it can have inside a longer base64 text, the part of the standard
/// and the URL-safe base64 encodings that only depends on the secret's own bytes (so `user:secret`
/// in a Basic header is found too).
fn forms(secret: &str) -> Vec<(String, String)> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out = vec![
        ("raw".to_owned(), secret.to_owned()),
        ("hex".to_owned(), hex(secret.as_bytes())),
        ("HEX".to_owned(), hex(secret.as_bytes()).to_uppercase()),
    ];
    for k in 0..3usize {
        let mut bytes = vec![0u8; k];
        bytes.extend_from_slice(secret.as_bytes());
        let first = if k == 0 { 0 } else { 1 };
        let end = bytes.len() / 3;
        for (name, engine) in [("base64", &STANDARD_NO_PAD), ("base64url", &URL_SAFE_NO_PAD)] {
            let encoded = engine.encode(&bytes);
            out.push((format!("{name}+{k}"), encoded[4 * first..4 * end].to_owned()));
        }
    }
    out
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

// ---- what the service produced --------------------------------------------------------------------

/// Every HTTP answer the test received, as text: status, headers, body.
#[derive(Default, Clone)]
struct Transcript(Arc<Mutex<Vec<String>>>);

impl Transcript {
    fn push(&self, text: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    }

    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }

    /// Send, record the whole answer, return status and JSON body.
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("the api answers");
        let status = response.status().as_u16();
        let mut text = format!("HTTP {status} {}\n", response.url());
        for (name, value) in response.headers() {
            text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        let body = response.text().await.unwrap_or_default();
        text.push_str(&body);
        self.push(text);
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }
}

// ---- processes ------------------------------------------------------------------------------------

/// Build the api and worker binaries (a no-op when up to date); returns the directory holding them.
fn binaries() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "integrations-api", "-p", "integrations-worker"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p integrations-api -p integrations-worker");
    let exe = std::env::current_exe().expect("test path");
    // target/<profile>/deps/canary-<hash> -> target/<profile>/
    exe.parent().and_then(|deps| deps.parent()).expect("target dir").to_path_buf()
}

/// A child process whose stdout and stderr go to `log`; killed on drop.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(binary: &Path, env: &[(&str, String)], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("RUST_LOG", "trace")
            .env("LOG_FORMAT", "json")
            .current_dir(std::env::temp_dir())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (name, value) in env {
            command.env(name, value);
        }
        Self { child: command.spawn().expect("process starts"), log }
    }

    /// SIGTERM, wait for the exit (at most 20 s), return the whole log.
    async fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---- the bus --------------------------------------------------------------------------------------

/// The test's own exchanges and queues, and every event published on its events exchange (routing
/// key, headers and raw body).
struct Bus {
    topology: Topology,
    connection: lapin::Connection,
    channel: lapin::Channel,
    events_queue: String,
    events: Arc<Mutex<Vec<String>>>,
    consumer: tokio::task::JoinHandle<()>,
}

impl Bus {
    async fn new() -> Self {
        let topology = Topology::prefixed(&unique("canary"));
        let connection =
            lapin::Connection::connect(AMQP, ConnectionProperties::default()).await.expect("rabbitmq up");
        let channel = connection.create_channel().await.expect("channel");
        topology.declare(&channel).await.expect("declare");
        channel.confirm_select(Default::default()).await.expect("confirms");
        let events_queue = format!("{}.observer", topology.events_exchange);
        channel
            .queue_declare(
                events_queue.as_str().into(),
                QueueDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("events queue");
        channel
            .queue_bind(
                events_queue.as_str().into(),
                topology.events_exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let consume_channel = connection.create_channel().await.expect("channel");
        let mut consumer = consume_channel
            .basic_consume(
                events_queue.as_str().into(),
                "canary".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let consumer = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let text = format!(
                    "{} {:?}\n{}",
                    delivery.routing_key,
                    delivery.properties,
                    String::from_utf8_lossy(&delivery.data)
                );
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(text);
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        });
        Self { topology, connection, channel, events_queue, events, consumer }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let t = &self.topology;
        vec![
            ("AMQP_URL", AMQP.to_owned()),
            ("BUS_COMMANDS_EXCHANGE", t.commands_exchange.clone()),
            ("BUS_EVENTS_EXCHANGE", t.events_exchange.clone()),
            ("BUS_COMMANDS_QUEUE", t.commands_queue.clone()),
            ("BUS_DEAD_LETTER_EXCHANGE", t.dead_letter_exchange.clone()),
            ("BUS_DEAD_LETTER_QUEUE", t.dead_letter_queue.clone()),
        ]
    }

    async fn command(&self, step: &str, tool: &str, parameters: Value) {
        let body =
            json!({"task_id": "canary-task", "step_id": step, "tool_name": tool, "parameters": parameters});
        let confirm = self
            .channel
            .basic_publish(
                self.topology.commands_exchange.as_str().into(),
                "integrations.canary".into(),
                BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish");
        assert!(confirm.await.expect("confirm").is_ack(), "the broker took the command");
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.events().len() < n {
            assert!(Instant::now() < deadline, "{} of {n} bus events", self.events().len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn cleanup(self) {
        self.consumer.abort();
        let t = &self.topology;
        for q in [&t.commands_queue, &t.dead_letter_queue, &self.events_queue] {
            let _ = self.channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for e in [&t.commands_exchange, &t.events_exchange, &t.dead_letter_exchange] {
            let _ = self.channel.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
        let _ = self.connection.close(200, "done".into()).await;
    }
}

// ---- Redis and the database -----------------------------------------------------------------------

/// Every key in Redis with its value (strings, hashes, lists, sets and sorted sets), as text.
async fn redis_dump() -> String {
    let client = redis::Client::open(REDIS_URL).expect("redis url");
    let mut c = client.get_multiplexed_async_connection().await.expect("redis up");
    let mut out = String::new();
    let mut cursor: u64 = 0;
    let mut keys = 0usize;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(1000).query_async(&mut c).await.expect("scan");
        for key in batch {
            keys += 1;
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut c).await.unwrap_or_default();
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<Vec<u8>>>(&mut c)
                    .await
                    .ok()
                    .flatten()
                    .into_iter()
                    .collect(),
                "hash" => redis::cmd("HGETALL").arg(&key).query_async(&mut c).await.unwrap_or_default(),
                "list" => redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default(),
                "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut c).await.unwrap_or_default(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            out.push_str(&String::from_utf8_lossy(&key));
            out.push('\n');
            for value in values {
                out.push_str(&String::from_utf8_lossy(&value));
                out.push('\n');
            }
        }
        cursor = next;
        if cursor == 0 || keys > 500_000 {
            break;
        }
    }
    out
}

/// `pg_dump` of one schema of the test database (bytea columns come out in hex).
fn pg_dump(schema: &str) -> String {
    let output = Command::new("/usr/bin/pg_dump")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "test", "-n", schema, "--no-owner"])
        .output()
        .expect("pg_dump runs");
    assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---- signing helpers ------------------------------------------------------------------------------

fn hmac_hex(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[test]
fn the_forms_find_a_secret_inside_longer_encodings() {
    let secret = canary("self-check");
    let found = |text: &str| forms(&secret).iter().any(|(_, form)| text.contains(form.as_str()));
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    for prefix in ["", "u", "us", "user@example.com:", "Bearer "] {
        let plain = format!("{prefix}{secret}!");
        assert!(found(&STANDARD.encode(&plain)), "base64 with prefix {prefix:?}");
        assert!(found(&URL_SAFE.encode(&plain)), "base64url with prefix {prefix:?}");
        assert!(found(&hex(plain.as_bytes())), "hex with prefix {prefix:?}");
        assert!(found(&hex(plain.as_bytes()).to_uppercase()), "HEX with prefix {prefix:?}");
        assert!(found(&plain));
    }
    assert!(!found("canary-self-check-"), "a prefix of the canary is not the canary");
}

#[tokio::test]
async fn no_secret_reaches_logs_responses_events_redis_or_the_database() {
    // the canaries: every credential the service holds, and the master key
    let jira_token = canary("jira");
    let github_token = canary("github");
    let slack_token = format!("xoxb-{}", canary("slack"));
    let slack_signing = canary("slack-signing");
    let hook_hmac = canary("hook-hmac");
    let hook_token = canary("hook-token");
    let tool_token = canary("tool");
    let master_key = base64::engine::general_purpose::STANDARD.encode({
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)).expect("urandom");
        key
    });
    let canaries: Vec<(&str, String)> = vec![
        ("jira api_token", jira_token.clone()),
        ("github token", github_token.clone()),
        ("slack bot_token", slack_token.clone()),
        ("slack signing_secret", slack_signing.clone()),
        ("webhook hmac secret", hook_hmac.clone()),
        ("webhook token", hook_token.clone()),
        ("custom tool token", tool_token.clone()),
        ("master key", master_key.clone()),
    ];

    // fakes that accept only the canary credentials
    let jira = FakeJira::demo();
    jira.add_credentials(FakeJira::USERNAME, &jira_token, FakeJira::ACCOUNT_ID);
    let jira_server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let github = FakeGitHub::demo();
    github.add_token(&github_token, FakeGitHub::LOGIN);
    let github_server = FakeServer::start(github_router(github.clone())).await.expect("fake github");
    let slack = FakeSlack::demo();
    slack.add_token(&slack_token, None);
    let slack_server = FakeServer::start(slack_router(slack.clone())).await.expect("fake slack");
    let expected = format!("Bearer {tool_token}");
    let status_page = FakeServer::start(Router::new().route(
        "/status/{component}",
        get(move |axum::extract::Path(c): axum::extract::Path<String>, h: axum::http::HeaderMap| {
            let expected = expected.clone();
            async move {
                let auth =
                    h.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                if auth == expected {
                    (axum::http::StatusCode::OK, axum::Json(json!({"component": c, "status": "operational"})))
                } else {
                    // an upstream that echoes the credential it was sent
                    (
                        axum::http::StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": format!("bad credentials: {auth}")})),
                    )
                }
            }
        }),
    ))
    .await
    .expect("fake status page");

    // the real binaries, logging everything at trace level
    let dir = tokio::task::spawn_blocking(binaries).await.expect("build");
    let schema = PgSchema::create().await.expect("schema");
    let schema_name = schema.url().rsplit('=').next().expect("schema name").to_owned();
    let data = tempfile::tempdir().expect("data dir");
    let bus = Bus::new().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let common = vec![
        ("DATABASE_URL", schema.url()),
        ("INTEGRATIONS_MASTER_KEY", master_key.clone()),
        ("INTEGRATIONS_DATA_DIR", data.path().display().to_string()),
        ("REDIS_URL", REDIS_URL.to_owned()),
        ("RATE_LIMIT_PER_MINUTE", "100000".to_owned()),
        ("MAX_RETRY_ATTEMPTS", "1".to_owned()),
    ];
    let mut api_env = common.clone();
    api_env.push(("INTEGRATIONS_BIND", format!("127.0.0.1:{port}")));
    api_env.push(("CUSTOM_HTTP_ALLOWLIST", "127.0.0.1".to_owned()));
    let api = Process::spawn(&dir.join("integrations-api"), &api_env, data.path().join("api.log"));
    wait_healthy(&format!("{base}/readyz"), Duration::from_secs(60)).await.expect("api ready");

    let t = Transcript::default();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{base}{path}");

    // ---- REST: connections, checked on save -------------------------------------------------------
    let jira_config =
        json!({"base_url": jira_server.base_url(), "username": FakeJira::USERNAME, "api_token": jira_token});
    let (status, body) =
        t.send(client.post(url("/api/integrations/jira/configure?test=true")).json(&jira_config)).await;
    assert_eq!(status, 200, "{body}");
    let github_config = json!({"api_url": github_server.base_url(), "token": github_token});
    let (status, body) =
        t.send(client.post(url("/api/integrations/github/configure?test=true")).json(&github_config)).await;
    assert_eq!(status, 200, "{body}");
    let slack_config = json!({"api_url": format!("{}/api/", slack_server.base_url()), "bot_token": slack_token, "signing_secret": slack_signing});
    let (status, body) =
        t.send(client.post(url("/api/integrations/slack/configure?test=true")).json(&slack_config)).await;
    assert_eq!(status, 200, "{body}");
    // a rejected configure names the field, never the value
    let (status, body) = t
        .send(
            client
                .post(url("/api/integrations/jira/configure"))
                .json(&json!({"api_token": jira_token, "base_url": 12})),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    // ---- REST: webhook endpoints and a custom tool ------------------------------------------------
    let (status, body) = t
        .send(client.put(url("/api/integrations/webhook/canary-hmac")).json(&json!({
            "verification": {"scheme": "hmac", "secret": hook_hmac, "header": "X-Signature", "prefix": "sha256="},
            "transform": "{event, n}", "publish": true,
        })))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = t
        .send(client.put(url("/api/integrations/webhook/canary-token")).json(&json!({
            "verification": {"scheme": "token", "header": "X-Origin-Check", "secret": hook_token},
        })))
        .await;
    assert_eq!(status, 201, "{body}");
    let tool = json!({
        "name": "canary_status",
        "description": "Status of a component",
        "method": "GET",
        "url": format!("{}/status/{{component}}", status_page.base_url()),
        "parameters_schema": {"type": "object", "properties": {"component": {"type": "string"}}, "required": ["component"]},
        "auth": {"type": "bearer", "token": tool_token},
    });
    let (status, body) = t.send(client.post(url("/api/integrations/custom/tools")).json(&tool)).await;
    assert_eq!(status, 201, "{body}");
    let echo_tool = json!({
        "name": "canary_echo",
        "description": "An upstream that echoes the credential it got",
        "method": "GET",
        "url": format!("{}/status/{{component}}", status_page.base_url()),
        "parameters_schema": {"type": "object", "properties": {"component": {"type": "string"}}, "required": ["component"]},
        "auth": {"type": "bearer", "token": format!("{tool_token}-wrong")},
    });
    let (status, body) = t.send(client.post(url("/api/integrations/custom/tools")).json(&echo_tool)).await;
    assert_eq!(status, 201, "{body}");

    // ---- REST: every read of configuration --------------------------------------------------------
    for path in [
        "/api/integrations",
        "/api/integrations/jira/status",
        "/api/integrations/github/status",
        "/api/integrations/slack/status",
        "/api/integrations/webhook/canary-hmac",
        "/api/integrations/webhook/canary-token",
        "/api/integrations/custom/tools",
        "/api/tools",
        "/api/openapi.json",
    ] {
        let (status, body) = t.send(client.get(url(path))).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    for provider in ["jira", "github", "slack"] {
        let (status, body) = t.send(client.post(url(&format!("/api/integrations/{provider}/test")))).await;
        assert_eq!(status, 200, "{provider} test: {body}");
    }

    // ---- REST: tool calls, cached reads, writes ---------------------------------------------------
    let (owner, repo) = FakeGitHub::REPO.split_once('/').expect("owner/repo");
    let calls: Vec<(reqwest::Method, String, Option<Value>, u16)> = vec![
        (reqwest::Method::GET, "/api/integrations/jira/projects/ENG".into(), None, 200),
        (reqwest::Method::GET, "/api/integrations/jira/projects/ENG".into(), None, 200),
        (reqwest::Method::GET, "/api/integrations/jira/issues?project_key=ENG".into(), None, 200),
        (
            reqwest::Method::POST,
            "/api/integrations/jira/issues".into(),
            Some(json!({"project_key": "ENG", "summary": "Canary run"})),
            201,
        ),
        (reqwest::Method::GET, "/api/integrations/jira/projects/NOPE".into(), None, 404),
        (reqwest::Method::GET, format!("/api/integrations/github/repos/{owner}/{repo}"), None, 200),
        (reqwest::Method::GET, format!("/api/integrations/github/repos/{owner}/{repo}"), None, 200),
        (reqwest::Method::GET, "/api/integrations/github/repos/octocat/nope".into(), None, 404),
        (
            reqwest::Method::POST,
            "/api/integrations/slack/message".into(),
            Some(json!({"channel": "#general", "text": "canary run"})),
            201,
        ),
        (
            reqwest::Method::POST,
            "/api/integrations/slack/message".into(),
            Some(json!({"channel": "#no-such-channel", "text": "canary run"})),
            404,
        ),
    ];
    for (method, path, body, expected) in &calls {
        let mut request = client.request(method.clone(), url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, answer) = t.send(request).await;
        assert_eq!(status, *expected, "{method} {path}: {answer}");
    }
    for (tool, expected) in [("canary_status", 200), ("canary_echo", 401)] {
        let (status, body) = t
            .send(
                client
                    .post(url(&format!("/api/tools/{tool}/invoke")))
                    .json(&json!({"parameters": {"component": "db"}})),
            )
            .await;
        assert_eq!(status, expected, "{tool}: {body}");
    }

    // ---- REST: upstreams that echo the credential in their error answers --------------------------
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{jira_token}", FakeJira::USERNAME));
    let jira_echo =
        json!({"errorMessages": [format!("token {jira_token} was refused"), format!("Authorization: Basic {basic}")], "errors": {"auth": jira_token}})
            .to_string();
    let github_echo = json!({"message": format!("Bad credentials: token {github_token}"), "documentation_url": "https://docs.github.com"}).to_string();
    let slack_echo = json!({"ok": false, "error": "invalid_auth", "warning": format!("token {slack_token} refused"), "response_metadata": {"messages": [format!("[ERROR] token {slack_token}")]}}).to_string();
    jira_server.faults().push(Fault::status(401).body(&jira_echo).on_path("/rest/api/3/project"));
    let (status, body) = t.send(client.get(url("/api/integrations/jira/projects/ENG?cache=false"))).await;
    assert_eq!(status, 401, "{body}");
    jira_server.faults().push(Fault::status(401).body(&jira_echo).on_path("/rest/api/3/myself"));
    let (status, body) = t.send(client.post(url("/api/integrations/jira/test"))).await;
    assert_eq!(status, 401, "{body}");
    jira_server.faults().push(Fault::status(401).body(&jira_echo).on_path("/rest/api/3/myself"));
    let (status, body) =
        t.send(client.post(url("/api/integrations/jira/configure?test=true")).json(&jira_config)).await;
    assert_eq!(status, 401, "{body}");
    github_server.faults().push(Fault::status(401).body(&github_echo).on_path("/repos"));
    let (status, body) = t
        .send(
            client
                .post(url("/api/tools/github_get_repository/invoke"))
                .json(&json!({"parameters": {"owner": owner, "repo": repo}, "cache": false})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    slack_server.faults().push(Fault::status(200).body(&slack_echo).on_path("/api/chat.postMessage"));
    let (status, body) = t
        .send(
            client
                .post(url("/api/integrations/slack/message"))
                .json(&json!({"channel": "#general", "text": "x"})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = t.send(client.get(url("/api/integrations/jira/status"))).await;
    assert_eq!(status, 200, "{body}");

    // ---- inbound: webhooks and Slack events -------------------------------------------------------
    let payload = r#"{"event":"deploy","n":1}"#;
    let signature = format!("sha256={}", hmac_hex(&hook_hmac, payload));
    let (status, body) = t
        .send(
            client
                .post(url("/api/integrations/webhook/canary-hmac"))
                .header("content-type", "application/json")
                .header("X-Signature", signature)
                .body(payload),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    for token in [hook_token.clone(), format!("{hook_token}-wrong")] {
        let (status, body) = t
            .send(
                client
                    .post(url("/api/integrations/webhook/canary-token"))
                    .header("content-type", "application/json")
                    .header("X-Origin-Check", token.as_str())
                    .body(payload),
            )
            .await;
        assert!(status == 202 || status == 401, "{body}");
    }
    let (status, body) = t
        .send(client.post(url("/api/integrations/webhook/canary-token/test")).json(&json!({
            "body": payload, "headers": {"X-Origin-Check": hook_token, "content-type": "application/json"},
        })))
        .await;
    assert_eq!(status, 200, "{body}");
    for name in ["canary-hmac", "canary-token"] {
        let (status, body) = t.send(client.get(url(&format!("/api/integrations/webhook/{name}/logs")))).await;
        assert_eq!(status, 200, "{body}");
    }
    let event = json!({"type": "event_callback", "event_id": "Ev-canary", "team_id": "T1",
                       "event": {"type": "message", "text": "hello", "channel": "C1", "user": "U1"}})
    .to_string();
    let ts = now();
    let (status, body) = t
        .send(
            client
                .post(url("/api/integrations/slack/webhook"))
                .header("content-type", "application/json")
                .header("x-slack-request-timestamp", ts.to_string())
                .header(
                    "x-slack-signature",
                    format!("v0={}", hmac_hex(&slack_signing, &format!("v0:{ts}:{event}"))),
                )
                .body(event),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // ---- MCP ---------------------------------------------------------------------------------------
    let mcp = ()
        .serve(StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(
            url("/mcp"),
        )))
        .await
        .expect("mcp initialize");
    let listed = mcp.list_all_tools().await.expect("tools/list");
    t.push(serde_json::to_string(&listed).expect("json"));
    let mcp_calls = [
        ("jira_get_project", json!({"key": "ENG"}), false),
        ("jira_get_project", json!({"key": "NOPE"}), true),
        ("github_get_repository", json!({"owner": owner, "repo": repo}), false),
        ("slack_send_message", json!({"channel": "#general", "text": "via mcp"}), false),
        ("canary_status", json!({"component": "api"}), false),
        ("canary_echo", json!({"component": "api"}), true),
    ];
    for (tool, arguments, is_error) in mcp_calls {
        let result = mcp
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
            .await
            .expect("tools/call");
        assert_eq!(result.is_error.unwrap_or(false), is_error, "{tool}: {result:?}");
        t.push(serde_json::to_string(&result).expect("json"));
    }
    // MCP reads may be cached: the echoing failure goes through a write
    jira_server.faults().push(Fault::status(401).body(&jira_echo).on_path("/rest/api/3/issue"));
    let result = mcp
        .call_tool(
            CallToolRequestParams::new("jira_create_issue".to_owned())
                .with_arguments(args(json!({"project_key": "ENG", "summary": "echo"}))),
        )
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(true), "{result:?}");
    t.push(serde_json::to_string(&result).expect("json"));
    let _ = mcp.cancel().await;

    // ---- the bus: the worker binary with the same store (it compiles in Jira only) ----------------
    let mut worker_env = common.clone();
    worker_env.extend(bus.env());
    let worker_port = free_port();
    worker_env.push(("WORKER_METRICS_BIND", format!("127.0.0.1:{worker_port}")));
    worker_env.push(("WORKER_CONCURRENCY", "1".to_owned()));
    let worker =
        Process::spawn(&dir.join("integrations-worker"), &worker_env, data.path().join("worker.log"));
    wait_healthy(&format!("http://127.0.0.1:{worker_port}/readyz"), Duration::from_secs(60))
        .await
        .expect("worker ready");
    // the echoing failure first, alone, so the fault meets this command (a write: reads may be cached)
    jira_server.faults().push(Fault::status(401).body(&jira_echo).on_path("/rest/api/3/issue"));
    bus.command("echo", "jira_create_issue", json!({"project_key": "ENG", "summary": "echo"})).await;
    bus.wait_for(1).await;
    bus.command("jira", "jira_get_project", json!({"key": "ENG"})).await;
    bus.command("jira-create", "jira_create_issue", json!({"project_key": "ENG", "summary": "From the bus"}))
        .await;
    bus.command("missing", "jira_get_project", json!({"key": "NOPE"})).await;
    bus.wait_for(4).await;
    let events = bus.events();
    let completed = events.iter().filter(|e| e.contains("\"status\":\"completed\"")).count();
    assert_eq!(completed, 2, "the worker used the canary credentials: {events:#?}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{worker_port}/metrics")).await.expect("metrics");
    t.push(metrics.text().await.unwrap_or_default());
    let (status, _) = t.send(client.get(url("/metrics"))).await;
    assert_eq!(status, 200);

    // ---- collect everything ------------------------------------------------------------------------
    // Redis while the processes run (rate-limit buckets live for milliseconds) and after they stopped
    let redis_live = redis_dump().await;
    assert!(redis_live.contains("integrations:cache:"), "the service cached through redis: {redis_live}");
    let worker_log = worker.stop().await;
    let api_log = api.stop().await;
    assert!(api_log.contains("\"level\":\"TRACE\""), "the api logged at trace level");
    assert!(worker_log.contains("\"level\":\"TRACE\""), "the worker logged at trace level");
    let redis = format!("{redis_live}\n{}", redis_dump().await);
    let dump = pg_dump(&schema_name);
    assert!(dump.contains("CREATE TABLE") && dump.contains("connections"), "the dump holds the schema");
    let sinks: Vec<(&str, String)> = vec![
        ("api log", api_log),
        ("worker log", worker_log),
        ("http and mcp answers", t.text()),
        ("bus events", events.join("\n")),
        ("redis", redis),
        ("pg_dump", dump),
    ];

    let mut table: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let mut leaks = Vec::new();
    for (name, secret) in &canaries {
        for (sink, text) in &sinks {
            let mut total = 0;
            for (form, pattern) in forms(secret) {
                let n = count(text, &pattern);
                if n > 0 {
                    let at = text.find(&pattern).unwrap_or(0);
                    let start = text[..at].char_indices().rev().nth(200).map(|(i, _)| i).unwrap_or(0);
                    let end = text[at..].char_indices().nth(200).map(|(i, _)| at + i).unwrap_or(text.len());
                    leaks.push(format!("{name} ({form}) x{n} in {sink}: ...{}...", &text[start..end]));
                }
                total += n;
            }
            table.insert((name.to_string(), sink), total);
        }
    }
    let sizes: Vec<String> =
        sinks.iter().map(|(sink, text)| format!("{sink}: {} bytes", text.len())).collect();
    println!(
        "scanned {} canaries x {} forms in: {}",
        canaries.len(),
        forms(&jira_token).len(),
        sizes.join(", ")
    );
    for ((name, sink), n) in &table {
        println!("{name:>22} | {sink:<20} | {n}");
    }

    bus.cleanup().await;
    drop(schema);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}

/// Through the api: a flipped byte in a stored ciphertext, or an intact ciphertext copied onto another
/// connection's row, makes that connection's tool calls answer a clean `424 configuration` (never
/// garbage credentials sent upstream, never a 500), naming neither the secret nor the ciphertext.
#[tokio::test]
async fn tampered_or_moved_credentials_answer_a_clean_424() {
    let token = canary("tamper");
    let jira = FakeJira::demo();
    jira.add_credentials(FakeJira::USERNAME, &token, FakeJira::ACCOUNT_ID);
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let schema = PgSchema::create().await.expect("schema");
    let url = schema.url();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let options = ["--database-url", url.as_str(), "--master-key", key.as_str()];
    let api = integrations_e2e::Api::start(&options).await.expect("api");
    let client = reqwest::Client::new();
    for name in ["jira", "jira-eu"] {
        let body = json!({"provider": "jira", "base_url": server.base_url(), "username": FakeJira::USERNAME, "api_token": token});
        let answer = client
            .post(api.url(&format!("/api/integrations/{name}/configure")))
            .json(&body)
            .send()
            .await
            .expect("configure");
        assert_eq!(answer.status(), 200);
        let call = client
            .get(api.url(&format!("/api/integrations/jira/projects/ENG?connection={name}")))
            .send()
            .await
            .expect("call");
        assert_eq!(call.status(), 200, "{name} works before the tampering");
    }
    api.app.store.close().await;
    drop(api);

    // flip one byte of jira's ciphertext; copy jira's intact ciphertext onto jira-eu's row
    let pool = sqlx::PgPool::connect(&url).await.expect("database");
    let original: Vec<u8> = sqlx::query_scalar("SELECT credentials FROM connections WHERE name = 'jira'")
        .fetch_one(&pool)
        .await
        .expect("row");
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    for (name, blob) in [("jira", &flipped), ("jira-eu", &original)] {
        sqlx::query("UPDATE connections SET credentials = $1 WHERE name = $2")
            .bind(blob)
            .bind(name)
            .execute(&pool)
            .await
            .expect("tamper");
    }
    pool.close().await;

    let api = integrations_e2e::Api::start(&options).await.expect("api again");
    let upstream_calls = server.calls();
    let hex_of = |b: &[u8]| hex(&b[1..]);
    let b64_of = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(&b[1..]);
    for name in ["jira", "jira-eu"] {
        let (status, body) = integrations_e2e::json_of(
            client
                .get(api.url(&format!("/api/integrations/jira/projects/ENG?connection={name}")))
                .send()
                .await
                .expect("call"),
        )
        .await;
        assert_eq!(status, 424, "{name}: {body}");
        assert_eq!(body["error"]["type"], "configuration", "{body}");
        assert_eq!(body["error"]["retryable"], false, "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("'{name}'")) && message.contains("cannot be decrypted"), "{body}");
        let text = body.to_string();
        assert!(!text.contains(&token), "no secret in the answer: {text}");
        for blob in [&original, &flipped] {
            assert!(!text.contains(&hex_of(blob)[..16]) && !text.contains(&b64_of(blob)[..16]), "{text}");
        }
        let (status, body) = integrations_e2e::json_of(
            client.get(api.url(&format!("/api/integrations/{name}/status"))).send().await.expect("status"),
        )
        .await;
        assert_eq!(status, 200, "status still answers: {body}");
        assert!(body["credentials_error"].is_string(), "{body}");
    }
    assert_eq!(server.calls(), upstream_calls, "nothing was sent upstream with broken credentials");
    api.app.store.close().await;
}
