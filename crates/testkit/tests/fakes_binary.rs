//! The `integrations-fakes` binary (also built here for tests/readme.rs): it refuses to start with
//! nothing to serve.

use std::process::Command;

#[test]
fn refuses_to_start_with_nothing_to_serve() {
    let output = Command::new(env!("CARGO_BIN_EXE_integrations-fakes")).env_clear().output().expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to serve"));
}
