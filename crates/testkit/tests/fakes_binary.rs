//! The `integrations-fakes` binary (also built here for tests/readme.rs): it refuses to start with
//! nothing to serve, and holds answers back by `--latency-ms`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn refuses_to_start_with_nothing_to_serve() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-fakes")).env_clear().output().expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to serve"));
}

#[tokio::test]
async fn latency_ms_holds_every_answer_back() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_integrations-fakes"))
        .env_clear()
        .args(["--github", "127.0.0.1:0", "--latency-ms", "250"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    let base = line.trim().strip_prefix("github=").expect("github=<url>").trim_end_matches('/').to_owned();
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let started = Instant::now();
        let answer = client
            .get(format!("{base}/repos/octocat/hello-world"))
            .bearer_auth("ghp_fakeOctocatToken0000000000000000000")
            .send()
            .await
            .expect("answer");
        // A lower bound only: the delay is what the flag promises, however busy the machine.
        assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["full_name"], "octocat/hello-world");
    }
    child.kill().expect("kill");
    child.wait().expect("reaped");
}
