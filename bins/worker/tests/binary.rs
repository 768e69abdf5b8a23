//! The real `integrations-worker` binary (also built here for tests/readme.rs): its help lists the
//! `call` command, the OpenTelemetry endpoint and the providers' variables, every variable is in the
//! configuration reference, and `call` fails cleanly when no broker answers.

use std::process::Command;

#[test]
fn help_lists_call_and_the_otlp_endpoint() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-worker")).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    assert!(help.contains("call"), "{help}");
    assert!(help.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{help}");
    let providers = integrations_worker::providers::all();
    assert!(providers.len() >= 3, "jira, github and slack are compiled in");
    for provider in providers {
        let info = provider.info();
        if info.env_vars.is_empty() {
            continue;
        }
        let line = format!("  {}: {}", info.name, info.env_vars.join(", "));
        assert!(help.contains(&line), "--help lacks {line:?}:\n{help}");
    }
}

#[test]
fn every_variable_is_in_the_configuration_reference() {
    use clap::CommandFactory as _;
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md"))
        .expect("docs/configuration.md");
    let options = integration_http::cli::environment_variables(&integrations_worker::Cli::command());
    assert!(options.len() >= 20, "{options:?}");
    let providers =
        integrations_worker::providers::all().iter().flat_map(|p| p.info().env_vars).collect::<Vec<_>>();
    let missing: Vec<&String> =
        options.iter().chain(&providers).filter(|v| !doc.contains(&format!("`{v}`"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not list {missing:?}");
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

/// Run the worker with `envs` in a directory of its own, expect it to refuse to start, and return
/// its standard error, checked to name none of the `secret`.
fn refused_at_start(name: &str, envs: &[(&str, &str)], secret: &str) -> String {
    let dir = std::env::temp_dir().join(format!("integrations-worker-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-worker"))
        .env_clear()
        .current_dir(&dir)
        .env("INTEGRATIONS_DATA_DIR", dir.join("data"))
        .envs(envs.iter().copied())
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout} {stderr}");
    assert!(!stderr.contains(secret) && !stdout.contains(secret), "{stdout} {stderr}");
    stderr
}

/// A malformed `AMQP_URL` ends the worker at start-up (no retry loop over a URL no retry can fix),
/// naming the variable and not the password.
#[test]
fn a_malformed_amqp_url_is_refused_at_start_without_echoing_it() {
    let stderr = refused_at_start("bad-url", &[("AMQP_URL", "http://rabbit:s3cret@broker:5672/")], "s3cret");
    assert!(stderr.contains("AMQP_URL") && stderr.contains("invalid broker URL"), "{stderr}");
}

/// Provider variables that make a connection no call could use end the worker at start-up too,
/// naming the variables and not the password the URL carried.
#[test]
fn a_provider_url_no_call_could_use_is_refused_at_start_without_echoing_it() {
    let envs =
        [("GITHUB_TOKEN", "ghp_s3cret"), ("GITHUB_API_URL", "https://octo:s3cret@github.example.com/api/v3")];
    let stderr = refused_at_start("bad-github", &envs, "s3cret");
    assert!(stderr.contains("GITHUB_API_URL") && stderr.contains("api_url"), "{stderr}");
}
