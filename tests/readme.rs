//! The README's "Try it offline" section, run as written: its `sh` blocks are extracted from
//! README.md and run by bash against the binaries this build made (`cargo run -p X` runs
//! `target/<profile>/X`), with the fakes, REST, MCP and the bus on the local RabbitMQ. Only the
//! fixed ports become free ones and the bus topology gets a unique prefix (environment), so runs do
//! not collide; `curl` fails on HTTP errors. Any failing command fails the test.
//!
//! The binaries are the ones `cargo test --workspace` builds (the api, worker and testkit packages
//! have binary tests); after `cargo test -p integrations-e2e --test readme` alone they may be stale.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integrations_e2e::{free_port, unique};

const BINARIES: [&str; 3] = ["integrations-fakes", "integrations-api", "integrations-worker"];

/// The fenced `sh` blocks of the README section `heading`, in order.
fn section_commands(readme: &str, heading: &str) -> String {
    let start = readme.find(heading).unwrap_or_else(|| panic!("README has no {heading:?} section"));
    let mut script = String::new();
    let mut inside = false;
    for line in readme[start + heading.len()..].lines() {
        if !inside && line.starts_with('#') {
            break; // the next heading
        } else if inside && line.starts_with("```") {
            inside = false;
        } else if inside {
            script.push_str(line);
            script.push('\n');
        } else if line.trim() == "```sh" {
            inside = true;
        }
    }
    script
}

/// Where cargo put the binaries: the test executable is `target/<profile>/deps/readme-<hash>`.
fn binary_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

const PRELUDE: &str = r#"set -euo pipefail
# `cargo run -p PACKAGE [--bin NAME] [-- ARGS]` runs the binary cargo already built.
cargo() {
  [[ "${1:-}" == run ]] || { echo "readme test: only 'cargo run' is supported: cargo $*" >&2; return 2; }
  shift
  local bin=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -p|--package|--bin) bin="$2"; shift 2 ;;
      --) shift; break ;;
      *) shift ;;
    esac
  done
  "$README_BIN_DIR/$bin" "$@"
}
curl() { command curl --fail-with-body --max-time 60 "$@"; echo; }
"#;

/// Kills the whole process group of the script (its background servers) when dropped.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-s", "TERM", "--", &format!("-{}", self.0)]).status();
    }
}

#[test]
fn the_try_it_offline_commands_of_the_readme_work() {
    use std::os::unix::process::CommandExt as _;
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README");
    let mut commands = section_commands(&readme, "### Try it offline");
    for needle in [
        "integrations-fakes",
        "/api/integrations/jira",
        "/api/integrations/github",
        "/api/integrations/slack",
        "/mcp",
        "integrations-worker -- call jira_",
        "integrations-worker -- call github_",
        "integrations-worker -- call slack_",
    ] {
        assert!(commands.contains(needle), "the section no longer shows {needle}");
    }
    // The api listens on its default address, 127.0.0.1:8080: moved with INTEGRATIONS_BIND.
    let api = format!("127.0.0.1:{}", free_port());
    commands = commands.replace("127.0.0.1:8080", &api);
    for port in [9101, 9102, 9103] {
        commands = commands.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{}", free_port()));
    }
    let bin_dir = binary_dir();
    for binary in BINARIES {
        assert!(
            bin_dir.join(binary).is_file(),
            "{} is missing: run `cargo test --workspace` (or `cargo build -p integrations-api -p integrations-worker -p integration-testkit`)",
            bin_dir.join(binary).display()
        );
    }

    let work = tempfile::tempdir().expect("temp dir");
    let script = work.path().join("try-offline.sh");
    std::fs::write(&script, format!("{PRELUDE}\n{commands}")).expect("script");
    let log = work.path().join("output.log");
    let log_file = std::fs::File::create(&log).expect("log");
    let prefix = unique("readme");
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work.path())
        .env("README_BIN_DIR", &bin_dir)
        .env("LOG_LEVEL", "warn")
        .env("INTEGRATIONS_BIND", &api)
        .env("WORKER_METRICS_BIND", format!("127.0.0.1:{}", free_port()))
        .env("BUS_COMMANDS_EXCHANGE", format!("{prefix}.commands"))
        .env("BUS_EVENTS_EXCHANGE", format!("{prefix}.events"))
        .env("BUS_COMMANDS_QUEUE", format!("{prefix}.commands"))
        .env("BUS_DEAD_LETTER_EXCHANGE", format!("{prefix}.dlx"))
        .env("BUS_DEAD_LETTER_QUEUE", format!("{prefix}.dead"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .process_group(0);
    let mut child = command.spawn().expect("bash");
    let group = Group(child.id());
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(group); // stop the servers before removing their topology
    delete_topology(&prefix);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.is_some(), "the README commands did not finish within 240 s:\n{output}");
    assert!(status.is_some_and(|s| s.success()), "a README command failed ({status:?}):\n{output}");
    // Each front door answered with the fakes' data; the bus completed one command per provider.
    for expected in ["Engineering", "hello-world", "\"completed\""] {
        assert!(output.contains(expected), "no {expected} in the output:\n{output}");
    }
    let completed = output.matches("\"completed\"").count();
    assert!(completed >= 3, "{completed} completed bus commands, expected one per provider:\n{output}");
    assert!(!output.replace(' ', "").contains("\"isError\":true"), "the MCP call failed:\n{output}");
}

/// Remove the exchanges and queues the worker declared under `prefix`.
fn delete_topology(prefix: &str) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    runtime.block_on(async {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        let Ok(connection) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
        else {
            return;
        };
        if let Ok(channel) = connection.create_channel().await {
            for queue in ["commands", "dead"] {
                let _ = channel
                    .queue_delete(format!("{prefix}.{queue}").as_str().into(), Default::default())
                    .await;
            }
            for exchange in ["commands", "events", "dlx"] {
                let _ = channel
                    .exchange_delete(format!("{prefix}.{exchange}").as_str().into(), Default::default())
                    .await;
            }
        }
        let _ = connection.close(200, "done".into()).await;
    });
}
