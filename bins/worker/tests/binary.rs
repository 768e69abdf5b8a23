//! The real `integrations-worker` binary (also built here for tests/readme.rs): its help lists the
//! `call` command and the OpenTelemetry endpoint, and `call` fails cleanly when no broker answers.

use std::process::Command;

#[test]
fn help_lists_call_and_the_otlp_endpoint() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-worker")).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    assert!(help.contains("call"), "{help}");
    assert!(help.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{help}");
}

#[test]
fn call_without_a_broker_fails_with_a_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-worker"))
        .env_clear()
        .args([
            "--amqp-url",
            &format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            "call",
            "jira_list_projects",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("calling jira_list_projects over the bus"), "{stderr}");
}

/// A malformed `AMQP_URL` ends the worker at start-up (no retry loop over a URL no retry can fix),
/// naming the variable and not the password.
#[test]
fn a_malformed_amqp_url_is_refused_at_start_without_echoing_it() {
    let dir = std::env::temp_dir().join(format!("integrations-worker-bad-url-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-worker"))
        .env_clear()
        .current_dir(&dir)
        .env("AMQP_URL", "http://rabbit:s3cret@broker:5672/")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout} {stderr}");
    assert!(stderr.contains("AMQP_URL") && stderr.contains("invalid broker URL"), "{stderr}");
    assert!(!stderr.contains("s3cret") && !stdout.contains("s3cret"), "{stdout} {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
