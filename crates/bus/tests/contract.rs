//! The JSON Schemas published in `docs/bus.md` against what the code produces and accepts: a
//! change to the envelope that the documentation does not follow fails here.

use integration_bus::{Command, Event, parse_command};
use integration_core::{ErrorKind, IntegrationError};
use serde_json::{Value, json};

fn schema(marker: &str) -> jsonschema::Validator {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/bus.md"))
        .expect("docs/bus.md");
    let after = doc.split(&format!("<!-- schema:{marker} -->")).nth(1).expect("schema marker");
    let block = after.split("```json").nth(1).and_then(|b| b.split("```").next()).expect("json block");
    let schema: Value = serde_json::from_str(block).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// Every JSON example of a section (blocks after the schema, one object per paragraph).
fn examples(section: &str) -> Vec<Value> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/bus.md"))
        .expect("docs/bus.md");
    let after = doc.split(&format!("<!-- schema:{section} -->")).nth(1).expect("marker");
    let block = after.split("```json").nth(2).and_then(|b| b.split("```").next()).expect("examples");
    block.split("\n\n").map(|text| serde_json::from_str(text).expect("example is JSON")).collect()
}

fn check(validator: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{instance} does not match the documented schema: {errors:?}");
}

fn command() -> Command {
    Command {
        task_id: "task-42".into(),
        step_id: "3".into(),
        tool_name: "jira_create_issue".into(),
        parameters: json!({"project_key": "ENG"}),
        connection: None,
    }
}

#[test]
fn every_event_the_worker_produces_matches_the_documented_schema() {
    let validator = schema("event");
    let cmd = command();
    let invalid = IntegrationError::new(ErrorKind::InvalidInput, "jira", "bad parameters")
        .with_details(json!({"violations": [{"pointer": "/summary"}]}));
    let unknown = IntegrationError::not_found("core", "unknown tool 'x'")
        .with_details(json!({"error_type": "unknown_tool"}));
    let limited = IntegrationError::new(ErrorKind::RateLimited { retry_after: None }, "jira", "slow down");
    let events = [
        Event::completed(&cmd, json!({"key": "ENG-4"}), 184),
        Event::completed(&cmd, Value::Null, 0),
        Event::from_error(&cmd, &invalid, 0),
        Event::from_error(&cmd, &unknown, 0),
        Event::from_error(&cmd, &limited, 12),
        Event::failed("t", "s", "unknown", "invalid_command", "malformed command"),
        Event::failed("t", "s", "jira_create_issue", "unknown_outcome", "check the upstream"),
    ];
    for event in &events {
        check(&validator, &serde_json::to_value(event).expect("json"));
    }
    for example in examples("event") {
        check(&validator, &example);
        let _: Event = serde_json::from_value(example).expect("examples are events");
    }
    // The schema is not vacuous.
    let mut broken = serde_json::to_value(&events[0]).expect("json");
    broken["status"] = json!("done");
    assert!(!validator.is_valid(&broken));
    let mut mixed = serde_json::to_value(&events[0]).expect("json");
    mixed["error"] = json!("x");
    assert!(!validator.is_valid(&mixed), "completed events carry no error");
    let mut extra = serde_json::to_value(&events[2]).expect("json");
    extra.as_object_mut().expect("object").remove("retryable");
    assert!(!validator.is_valid(&extra), "failed events say whether they are retryable");
}

#[test]
fn the_command_schema_accepts_what_the_worker_accepts() {
    let validator = schema("command");
    let bodies = [
        (json!({"task_id": "t", "step_id": "s", "tool_name": "x"}), true),
        (json!({"task_id": "t", "step_id": "s", "tool_name": "x", "parameters": null}), true),
        (
            json!({"task_id": "t", "step_id": "s", "tool_name": "x", "parameters": {"a": 1}, "connection": "jira-eu"}),
            true,
        ),
        (json!({"task_id": "t", "step_id": "s", "tool_name": "x", "extra": 1}), true),
        (json!({"task_id": "t", "step_id": "s"}), false),
        (json!({"task_id": "", "step_id": "s", "tool_name": "x"}), false),
        (json!({"task_id": 7, "step_id": "s", "tool_name": "x"}), false),
        (json!({"task_id": "t", "step_id": "s", "tool_name": "x", "parameters": [1]}), false),
    ];
    for (body, valid) in bodies {
        assert_eq!(validator.is_valid(&body), valid, "schema on {body}");
        assert_eq!(parse_command(body.to_string().as_bytes()).is_ok(), valid, "worker on {body}");
    }
    for example in examples("command") {
        check(&validator, &example);
        assert!(parse_command(example.to_string().as_bytes()).is_ok());
    }
}
