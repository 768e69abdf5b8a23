//! The real `integrations-api` binary: start it on a free port, talk to it over HTTP, stop it with
//! SIGTERM and check it exits cleanly.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    base: String,
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_integrations-api"));
    command
        .env_clear()
        .env("INTEGRATIONS_BIND", format!("127.0.0.1:{port}"))
        .env("INTEGRATIONS_DATA_DIR", &data)
        .env("LOG_FORMAT", "json")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    let child = command.spawn().expect("spawn integrations-api");
    let running = Running { child, base: format!("http://127.0.0.1:{port}") };
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

#[tokio::test]
async fn help_lists_every_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-api")).arg("--help").output().expect("help");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for var in [
        "INTEGRATIONS_BIND",
        "LOG_FORMAT",
        "INTEGRATION_TIMEOUT",
        "MAX_RETRY_ATTEMPTS",
        "RATE_LIMIT_PER_MINUTE",
        "JIRA_BASE_URL",
        "GITHUB_TOKEN",
        "SLACK_BOT_TOKEN",
    ] {
        assert!(text.contains(var), "--help does not mention {var}");
    }
}
