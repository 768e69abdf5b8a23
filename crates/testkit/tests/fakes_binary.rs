//! The `integrations-fakes` binary (also built here for tests/readme.rs): it refuses to start with
//! nothing to serve, holds answers back by `--latency-ms` and seeds `--slack-channels`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Start the binary serving one fake on a free port; its base URL, read from the line it prints.
fn serve(fake: &str, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_integrations-fakes"))
        .env_clear()
        .arg(format!("--{fake}"))
        .arg("127.0.0.1:0")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    let base = line.trim().strip_prefix(&format!("{fake}=")).expect("<fake>=<url>").trim_end_matches('/');
    (child, base.to_owned())
}

#[test]
fn refuses_to_start_with_nothing_to_serve() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-fakes")).env_clear().output().expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to serve"));
}

#[tokio::test]
async fn latency_ms_holds_every_answer_back() {
    let (mut child, base) = serve("github", &["--latency-ms", "250"]);
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

#[tokio::test]
async fn slack_channels_are_added_to_the_demo_workspace() {
    let (mut child, base) = serve("slack", &["--slack-channels", "1500"]);
    let client = reqwest::Client::new();
    let mut names = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page: serde_json::Value = client
            .get(format!("{base}/api/conversations.list?limit=1000&exclude_archived=true&cursor={cursor}"))
            .bearer_auth("xoxb-fake-bot-token")
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        assert_eq!(page["ok"], true, "{page}");
        let channels = page["channels"].as_array().expect("channels");
        names.extend(channels.iter().filter_map(|c| c["name"].as_str().map(str::to_owned)));
        cursor = page["response_metadata"]["next_cursor"].as_str().unwrap_or_default().to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    child.kill().expect("kill");
    child.wait().expect("reaped");
    // the demo's three unarchived public channels and the 1,500 added, over two pages
    assert_eq!(names.len(), 3 + 1500, "{:?}", &names[..names.len().min(8)]);
    assert!(names.iter().any(|n| n == "general"));
    assert!(names.iter().any(|n| n == "bench-00000") && names.iter().any(|n| n == "bench-01499"));
}

#[test]
fn every_variable_of_its_help_is_in_the_configuration_reference() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-fakes")).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    let variables: Vec<&str> =
        help.split("[env: ").skip(1).filter_map(|rest| rest.split(['=', ']']).next()).collect();
    assert!(variables.contains(&"FAKE_LATENCY_MS") && variables.len() >= 6, "{variables:?}\n{help}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md"))
        .expect("docs/configuration.md");
    let missing: Vec<&&str> = variables.iter().filter(|v| !doc.contains(&format!("`{v}`"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not list {missing:?}");
}
