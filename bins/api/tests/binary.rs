//! The real `integrations-api` binary: start it on a free port, talk to it over HTTP, stop it with
//! SIGTERM and check it exits cleanly.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    /// The data directory it was started with (unless `envs` named another).
    data: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

async fn start(envs: &[(&str, &str)]) -> Running {
    let port = free_port();
    let data = std::env::temp_dir().join(format!("integrations-api-test-{port}"));
    let log = std::env::temp_dir().join(format!("integrations-api-test-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_integrations-api"));
    command
        .env_clear()
        .env("INTEGRATIONS_BIND", format!("127.0.0.1:{port}"))
        .env("INTEGRATIONS_DATA_DIR", &data)
        .env("LOG_FORMAT", "json")
        .current_dir(std::env::temp_dir())
        .stdout(log_file.try_clone().expect("clone"))
        .stderr(log_file);
    for (k, v) in envs {
        command.env(k, v);
    }
    let child = command.spawn().expect("spawn integrations-api");
    let running = Running { child, base: format!("http://127.0.0.1:{port}"), log, data };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{}/healthz", running.base)).send().await
            && r.status().is_success()
        {
            return running;
        }
        assert!(Instant::now() < deadline, "integrations-api did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serves_tools_metrics_and_error_bodies_then_stops_on_sigterm() {
    let mut api = start(&[]).await;
    let client = reqwest::Client::new();

    let tools = client.get(format!("{}/api/tools", api.base)).send().await.expect("tools");
    assert_eq!(tools.status(), 200);
    assert!(tools.headers()["content-type"].to_str().expect("ascii").starts_with("application/json"));
    let body: serde_json::Value = tools.json().await.expect("json");
    assert!(body["tools"].is_array());

    let ready = client.get(format!("{}/readyz", api.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);

    let bad = client
        .post(format!("{}/api/tools/nothing/invoke", api.base))
        .header("content-type", "application/json")
        .body("{\"parameters\": ")
        .send()
        .await
        .expect("bad request");
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request");
    assert_eq!(body["error"]["retryable"], false);

    let metrics = client.get(format!("{}/metrics", api.base)).send().await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(text.contains("http_requests_total"), "{text}");

    let pid = api.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = api.child.try_wait().expect("wait") {
            assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `RUST_LOG=info,tower_http=debug` turns on the access log: one JSON line per request with its
/// status and latency in microseconds, in the request's span, without the query string.
#[tokio::test]
async fn the_access_log_names_status_and_latency() {
    let api = start(&[("RUST_LOG", "info,tower_http=debug")]).await;
    let client = reqwest::Client::new();
    let answer =
        client.get(format!("{}/api/tools/nothing?token=q-s3cret", api.base)).send().await.expect("get");
    assert_eq!(answer.status(), 404);
    let log = stop(api);
    let line: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "finished processing request" && l["status"] == 404)
        .unwrap_or_else(|| panic!("no access log line:\n{log}"));
    assert_eq!(line["span"]["path"], "/api/tools/nothing", "{line}");
    let latency = line["latency"].as_str().unwrap_or_default();
    assert!(latency.ends_with(" μs") && latency.len() > 3, "{line}");
    assert!(!log.contains("q-s3cret"), "{log}");
}

/// `TRANSFORM_MEMORY_MB` bounds a jq transformation's heap in the binary (which installs
/// jemalloc's meter): a run building 48 MB fails under a 32 MiB bound, naming it, and a small one
/// is served.
#[tokio::test]
async fn transform_memory_mb_bounds_a_transformation() {
    let api = start(&[("TRANSFORM_MEMORY_MB", "32")]).await;
    let client = reqwest::Client::new();
    for (name, transform) in [("big", "[range(4) | \"x\" * 12000000] | length"), ("small", ".n + 1")] {
        let definition = serde_json::json!({"verification": {"scheme": "none"}, "publish": false,
                                            "transform": transform});
        let url = format!("{}/api/integrations/webhook/{name}", api.base);
        let defined = client.put(&url).json(&definition).send().await.expect("define");
        assert_eq!(defined.status(), 201, "{name}");
    }
    let test = |name: &str| {
        client
            .post(format!("{}/api/integrations/webhook/{name}/test", api.base))
            .json(&serde_json::json!({"body": {"n": 1}}))
            .send()
    };
    let answer = test("big").await.expect("big");
    assert_eq!(answer.status(), 422);
    let body: serde_json::Value = answer.json().await.expect("json");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("used more than 32 MiB of memory"), "{body}");
    let answer = test("small").await.expect("small");
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(body["output"], 2, "{body}");
}

/// No memory at all for transformations is a configuration mistake, refused at start.
#[test]
fn a_zero_transform_memory_bound_refuses_to_start() {
    let stderr = refused_at_start("zero-transform-memory", &[("TRANSFORM_MEMORY_MB", "0")], "\u{0}");
    assert!(stderr.contains("transform-memory-mb") && stderr.contains("0 is not in 1.."), "{stderr}");
}

/// Every variable the api reads, its options' and its providers', with the providers' ones.
fn variables() -> (Vec<String>, Vec<String>) {
    use clap::CommandFactory as _;
    let options = integration_http::cli::environment_variables(&integrations_api::Cli::command());
    let providers = integrations_api::providers::all().iter().flat_map(|p| p.info().env_vars).collect();
    (options, providers)
}

#[test]
fn help_lists_the_providers_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-api")).arg("--help").output().expect("help");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let (options, providers) = variables();
    assert!(providers.len() >= 10, "jira, github, slack and webhook are compiled in: {providers:?}");
    let expected =
        providers.iter().map(String::as_str).chain(["INTEGRATIONS_BIND", "INTEGRATION_TIMEOUT", "RUST_LOG"]);
    for var in expected {
        assert!(text.contains(var), "--help does not mention {var}");
    }
    assert!(options.len() >= 30, "{options:?}");
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Provider connections"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let expected: Vec<String> = integrations_api::providers::all()
        .iter()
        .map(|p| p.info())
        .filter(|i| !i.env_vars.is_empty())
        .map(|i| format!("  {}: {}", i.name, i.env_vars.join(", ")))
        .collect();
    assert_eq!(section, expected, "one line per compiled-in provider:\n{text}");
}

#[test]
fn every_variable_is_in_the_configuration_reference() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md"))
        .expect("docs/configuration.md");
    let (options, providers) = variables();
    let missing: Vec<&String> =
        options.iter().chain(&providers).filter(|v| !doc.contains(&format!("`{v}`"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not list {missing:?}");
}

/// A provider reads its default connection only from the variables it declares (the ones
/// `--help` and the configuration reference list).
#[test]
fn providers_read_only_the_variables_they_declare() {
    for provider in integrations_api::providers::all() {
        let declared = provider.info().env_vars;
        for set in [false, true] {
            let asked = std::sync::Mutex::new(Vec::new());
            let env = |name: &str| {
                asked.lock().expect("lock").push(name.to_owned());
                set.then(
                    || if name.ends_with("_URL") { "http://127.0.0.1:1/".into() } else { "value".into() },
                )
            };
            let connection = provider.connection_from_env(&env);
            let asked = asked.into_inner().expect("lock");
            let undeclared: Vec<&String> = asked.iter().filter(|v| !declared.contains(v)).collect();
            assert!(
                undeclared.is_empty(),
                "{}: reads {undeclared:?} without declaring them",
                provider.info().name
            );
            if set && !asked.is_empty() {
                assert!(
                    connection.is_some(),
                    "{}: every variable set gives a connection",
                    provider.info().name
                );
            }
        }
    }
}

fn api_command(envs: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_integrations-api"));
    command.env_clear().args(args).current_dir(std::env::temp_dir());
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("run integrations-api")
}

fn stop(mut api: Running) -> String {
    let pid = api.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = api.child.wait();
    std::fs::read_to_string(&api.log).unwrap_or_default()
}

#[tokio::test]
async fn master_key_rotation_and_no_secret_in_any_log_line() {
    const CANARY: &str = "canary-token-5e1f0a9d";
    let data = tempfile_dir("rotate");
    let data_str = data.to_str().expect("utf-8 path");
    let generate = api_command(&[], &["master-key", "generate"]);
    assert!(generate.status.success());
    let key1 = String::from_utf8(generate.stdout).expect("utf-8").trim().to_owned();
    let key2 = String::from_utf8(api_command(&[], &["master-key", "generate"]).stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_ne!(key1, key2);
    assert_eq!(key1.len(), 44, "base64 of 32 bytes");

    // configure a connection under key 1, at trace level, and make a call that fails upstream
    let api = start(&[
        ("INTEGRATIONS_DATA_DIR", data_str),
        ("INTEGRATIONS_MASTER_KEY", &key1),
        ("LOG_LEVEL", "trace"),
    ])
    .await;
    let client = reqwest::Client::new();
    let configure = client
        .post(format!("{}/api/integrations/jira/configure", api.base))
        .json(&serde_json::json!({"base_url": "http://127.0.0.1:9", "username": "bot@example.com", "api_token": CANARY}))
        .send()
        .await
        .expect("configure");
    assert_eq!(configure.status(), 200);
    let body = configure.text().await.expect("body");
    assert!(!body.contains(CANARY));
    let call =
        client.get(format!("{}/api/integrations/jira/projects/ENG", api.base)).send().await.expect("call");
    let call_body = call.text().await.expect("body");
    assert!(!call_body.contains(CANARY), "{call_body}");
    let status =
        client.get(format!("{}/api/integrations/jira/status", api.base)).send().await.expect("status");
    assert!(!status.text().await.expect("body").contains(CANARY));
    let log = stop(api);
    assert!(log.contains("TRACE") || log.contains("\"level\":\"TRACE\""), "trace logging was on");
    assert!(!log.contains(CANARY), "the token appears in a log line");
    use base64_check::encoded_forms;
    for form in encoded_forms("bot@example.com", CANARY) {
        assert!(!log.contains(&form), "an encoded form of the token appears in a log line");
    }

    // rotate to key 2 while key 1 is still accepted
    let rotate = api_command(
        &[
            ("INTEGRATIONS_DATA_DIR", data_str),
            ("INTEGRATIONS_MASTER_KEY", &key2),
            ("INTEGRATIONS_MASTER_KEY_PREVIOUS", &key1),
        ],
        &["master-key", "rotate"],
    );
    let out = String::from_utf8_lossy(&rotate.stdout).to_string();
    assert!(rotate.status.success(), "{out} {}", String::from_utf8_lossy(&rotate.stderr));
    assert!(out.contains("rotated 1"), "{out}");

    // key 2 alone opens every row
    let api = start(&[("INTEGRATIONS_DATA_DIR", data_str), ("INTEGRATIONS_MASTER_KEY", &key2)]).await;
    let status: serde_json::Value = client
        .get(format!("{}/api/integrations/jira/status", api.base))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert!(status["credentials_error"].is_null(), "{status}");
    stop(api);

    // key 1 alone no longer does: a clear error for that connection, the service keeps serving
    let api = start(&[("INTEGRATIONS_DATA_DIR", data_str), ("INTEGRATIONS_MASTER_KEY", &key1)]).await;
    let status: serde_json::Value = client
        .get(format!("{}/api/integrations/jira/status", api.base))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert!(status["credentials_error"].is_string(), "{status}");
    let call =
        client.get(format!("{}/api/integrations/jira/projects/ENG", api.base)).send().await.expect("call");
    assert_eq!(call.status(), 424, "a configuration error, not a 500");
    let tools = client.get(format!("{}/api/tools", api.base)).send().await.expect("tools");
    assert_eq!(tools.status(), 200);
    stop(api);
    let _ = std::fs::remove_dir_all(&data);
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("integrations-api-{name}-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

mod base64_check {
    /// The forms a Basic credential could take in a log: `user:token` and its base64.
    pub(super) fn encoded_forms(user: &str, token: &str) -> Vec<String> {
        use base64::Engine as _;
        let pair = format!("{user}:{token}");
        vec![base64::engine::general_purpose::STANDARD.encode(&pair), pair]
    }
}

/// Run the api with `envs` (on a free port, in a data directory of its own), expect it to refuse to
/// start, and return its standard error, checked to name none of the `secret`.
fn refused_at_start(name: &str, envs: &[(&str, &str)], secret: &str) -> String {
    let bind = format!("127.0.0.1:{}", free_port());
    let data = tempfile_dir(name);
    let mut all =
        vec![("INTEGRATIONS_BIND", bind.as_str()), ("INTEGRATIONS_DATA_DIR", data.to_str().expect("utf-8"))];
    all.extend_from_slice(envs);
    let output = api_command(&all, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout} {stderr}");
    assert!(!stderr.contains(secret) && !stdout.contains(secret), "{stdout} {stderr}");
    stderr
}

/// A malformed `AMQP_URL` stops the start-up with a message naming the variable and not the
/// password (the outbox relay would otherwise retry it forever in the background, silently).
#[test]
fn a_malformed_amqp_url_refuses_to_start_without_echoing_it() {
    let stderr = refused_at_start("bad-amqp", &[("AMQP_URL", "rabbit:s3cret@broker:5672")], "s3cret");
    assert!(stderr.contains("AMQP_URL") && stderr.contains("invalid broker URL"), "{stderr}");
}

/// Provider variables that make a connection no call could use stop the start-up with a message
/// naming the variables, and not the password a URL carried.
#[test]
fn a_provider_url_no_call_could_use_refuses_to_start_without_echoing_it() {
    for url in ["https://bot:s3cret@example.atlassian.net", "file:///etc/passwd"] {
        let envs = [
            ("JIRA_BASE_URL", url),
            ("JIRA_USERNAME", "bot@example.com"),
            ("JIRA_API_TOKEN", "token-s3cret"),
        ];
        let stderr = refused_at_start("bad-jira-url", &envs, "s3cret");
        assert!(stderr.contains("JIRA_BASE_URL") && stderr.contains("base_url"), "{url}: {stderr}");
    }
}

/// One JSON-RPC line from an MCP server's stdout, skipping nothing: every line must be protocol.
async fn next_message(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> serde_json::Value {
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a message within 10 s")
        .expect("read stdout")
        .expect("stdout still open");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout carries only JSON-RPC, got {line:?}: {e}"))
}

#[tokio::test]
async fn mcp_over_stdio_lists_tools_and_hears_of_a_tool_made_by_another_process() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let upstream = integration_testkit::FakeServer::start(
        axum::Router::new().route("/v", axum::routing::get(|| async { "{}" })),
    )
    .await
    .expect("fake");
    // An HTTP replica and a stdio session on one SQLite store (same data directory and key).
    let shared = [("CUSTOM_HTTP_ALLOWLIST", "127.0.0.1"), ("CUSTOM_TOOLS_SYNC_SECONDS", "1")];
    let http = start(&shared).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_integrations-api"))
        .args(["mcp", "--stdio"])
        .env_clear()
        .env("INTEGRATIONS_DATA_DIR", &http.data)
        .envs(shared)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mcp --stdio");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut send = async |message: serde_json::Value| {
        stdin.write_all(format!("{message}\n").as_bytes()).await.expect("write");
        stdin.flush().await.expect("flush");
    };

    send(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}))
    .await;
    let init = next_message(&mut lines).await;
    assert_eq!(init["id"], 1, "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "integrations", "{init}");
    assert_eq!(init["result"]["capabilities"]["tools"]["listChanged"], true, "{init}");
    send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    send(serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let listed = next_message(&mut lines).await;
    let names = |m: &serde_json::Value| -> Vec<String> {
        m["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(names(&listed).contains(&"tool_search".to_owned()), "{listed}");
    assert!(!names(&listed).contains(&"version".to_owned()));

    // A custom tool created through the HTTP process reaches the stdio process's registry by the
    // store, and its client is told.
    let created = reqwest::Client::new()
        .post(format!("{}/api/integrations/custom/tools", http.base))
        .json(&serde_json::json!({"name": "version", "description": "which version", "method": "GET",
                                  "url": format!("{}/v", upstream.base_url())}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let note = next_message(&mut lines).await;
    assert_eq!(note["method"], "notifications/tools/list_changed", "{note}");
    send(serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"})).await;
    let again = next_message(&mut lines).await;
    assert_eq!(again["id"], 3, "{again}");
    assert!(names(&again).contains(&"version".to_owned()), "{again}");

    // The client closes stdin: the process ends, cleanly.
    drop(stdin);
    let exit =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exits").expect("wait");
    assert!(exit.success(), "{exit}");
    drop(http);
}
