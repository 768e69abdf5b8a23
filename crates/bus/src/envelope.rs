//! The bus contract: commands in, events out (documented with JSON Schemas in `docs/bus.md`).

use chrono::{DateTime, SecondsFormat, Utc};
use integration_core::{IntegrationError, ToolOutcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A tool command published by the agent on `commands.exchange` (routing key `integrations.*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The agent's task.
    pub task_id: String,
    /// The step within the task; (task_id, step_id) identifies the command.
    pub step_id: String,
    /// The tool to run.
    pub tool_name: String,
    /// The tool's parameters object.
    #[serde(default)]
    pub parameters: Value,
    /// The connection to use; the provider's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

impl Command {
    /// The idempotency key of the command.
    pub fn key(&self) -> String {
        idempotency_key(&self.task_id, &self.step_id)
    }
}

/// The idempotency key of (task_id, step_id).
pub fn idempotency_key(task_id: &str, step_id: &str) -> String {
    format!("bus:{}:{task_id}:{step_id}", task_id.len())
}

/// `completed` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The tool returned a result.
    Completed,
    /// The command failed; `error_type` says why.
    Failed,
}

impl Status {
    /// `completed` / `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }
}

/// The result event published on `events.exchange` with routing key
/// `integrations.{tool_name}_{status}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable id derived from task_id and step_id: a consumer drops duplicates by it.
    pub event_id: String,
    /// From the command.
    pub task_id: String,
    /// From the command.
    pub step_id: String,
    /// From the command.
    pub tool_name: String,
    /// Completed or failed.
    pub status: Status,
    /// The tool's result (completed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error message (failed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error kind (`not_found`, `rate_limited`, ..., or `invalid_command`, `unknown_tool`,
    /// `unknown_outcome`); failed only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Whether sending the command again may succeed (failed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Structured error details (validation violations, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Time spent executing, in milliseconds.
    pub duration_ms: u64,
    /// When the outcome was produced, RFC 3339 UTC.
    pub timestamp: String,
}

impl Event {
    /// The routing key `integrations.{tool_name}_{status}`.
    pub fn routing_key(&self) -> String {
        format!("integrations.{}_{}", routing_safe(&self.tool_name), self.status.as_str())
    }

    /// A completed or failed event from an executor outcome.
    pub fn from_outcome(command: &Command, outcome: &ToolOutcome) -> Self {
        let duration_ms = u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX);
        match &outcome.result {
            Ok(result) => Self::completed(command, result.clone(), duration_ms),
            Err(error) => Self::from_error(command, error, duration_ms),
        }
    }

    /// A completed event.
    pub fn completed(command: &Command, result: Value, duration_ms: u64) -> Self {
        let mut event = Self::base(&command.task_id, &command.step_id, &command.tool_name, Status::Completed);
        event.result = Some(result);
        event.duration_ms = duration_ms;
        event
    }

    /// A failed event for a classified error. An unknown tool gets `error_type` `unknown_tool`.
    pub fn from_error(command: &Command, error: &IntegrationError, duration_ms: u64) -> Self {
        let unknown_tool =
            error.details().and_then(|d| d.get("error_type")).and_then(Value::as_str) == Some("unknown_tool");
        let error_type = if unknown_tool { "unknown_tool" } else { error.kind().as_str() };
        let mut event =
            Self::failed(&command.task_id, &command.step_id, &command.tool_name, error_type, error.message());
        event.retryable = Some(error.retryable());
        event.details = error.details().cloned().filter(|_| !unknown_tool);
        event.duration_ms = duration_ms;
        event
    }

    /// A failed event with an explicit error type.
    pub fn failed(task_id: &str, step_id: &str, tool_name: &str, error_type: &str, message: &str) -> Self {
        let mut event = Self::base(task_id, step_id, tool_name, Status::Failed);
        event.error = Some(message.to_owned());
        event.error_type = Some(error_type.to_owned());
        event.retryable = Some(false);
        event
    }

    fn base(task_id: &str, step_id: &str, tool_name: &str, status: Status) -> Self {
        Self {
            event_id: event_id(task_id, step_id),
            task_id: task_id.to_owned(),
            step_id: step_id.to_owned(),
            tool_name: tool_name.to_owned(),
            status,
            result: None,
            error: None,
            error_type: None,
            retryable: None,
            details: None,
            duration_ms: 0,
            timestamp: now_rfc3339(),
        }
    }
}

/// The stable event id of (task_id, step_id): the first 128 bits of SHA-256, as 32 hex digits.
pub fn event_id(task_id: &str, step_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update((task_id.len() as u64).to_be_bytes());
    hasher.update(task_id.as_bytes());
    hasher.update(step_id.as_bytes());
    let digest = hasher.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn now_rfc3339() -> String {
    let now: DateTime<Utc> = Utc::now();
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Routing keys are dot-separated words; keep tool names from adding words or wildcards.
pub(crate) fn routing_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// What could be read of a body that is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialIds {
    /// task_id, if readable.
    pub task_id: Option<String>,
    /// step_id, if readable.
    pub step_id: Option<String>,
    /// tool_name, if readable.
    pub tool_name: Option<String>,
}

/// Parse a command body. On failure, return what ids could be read and why it failed.
pub fn parse_command(body: &[u8]) -> Result<Command, (PartialIds, String)> {
    match integration_core::json::from_slice::<Command>(body) {
        Ok(command)
            if command.task_id.is_empty() || command.step_id.is_empty() || command.tool_name.is_empty() =>
        {
            let ids = PartialIds {
                task_id: Some(command.task_id).filter(|s| !s.is_empty()),
                step_id: Some(command.step_id).filter(|s| !s.is_empty()),
                tool_name: Some(command.tool_name).filter(|s| !s.is_empty()),
            };
            Err((ids, "task_id, step_id and tool_name must be non-empty strings".to_owned()))
        }
        Ok(command) if !(command.parameters.is_object() || command.parameters.is_null()) => {
            let ids = PartialIds {
                task_id: Some(command.task_id.clone()),
                step_id: Some(command.step_id.clone()),
                tool_name: Some(command.tool_name.clone()),
            };
            Err((ids, "parameters must be a JSON object".to_owned()))
        }
        Ok(mut command) => {
            if command.parameters.is_null() {
                command.parameters = Value::Object(Default::default());
            }
            Ok(command)
        }
        Err(error) => {
            let value: Option<Value> = serde_json::from_slice(body).ok();
            let field = |name: &str| {
                value
                    .as_ref()
                    .and_then(|v| v.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .filter(|s| !s.is_empty())
            };
            let ids = PartialIds {
                task_id: field("task_id"),
                step_id: field("step_id"),
                tool_name: field("tool_name"),
            };
            Err((ids, format!("malformed command: {error}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id("t", "s"), event_id("t", "s"));
        assert_ne!(event_id("t", "s1"), event_id("t", "s2"));
        assert_ne!(event_id("ab", "c"), event_id("a", "bc"), "no ambiguity across the boundary");
        assert_eq!(event_id("t", "s").len(), 32);
    }

    #[test]
    fn routing_keys_follow_the_contract() {
        let cmd = Command {
            task_id: "t".into(),
            step_id: "s".into(),
            tool_name: "jira_create_issue".into(),
            parameters: json!({}),
            connection: None,
        };
        let event = Event::completed(&cmd, json!({"key": "A-1"}), 12);
        assert_eq!(event.routing_key(), "integrations.jira_create_issue_completed");
        let failed = Event::failed("t", "s", "a.b*#", "invalid_command", "bad");
        assert_eq!(failed.routing_key(), "integrations.a_b___failed");
        let body = serde_json::to_value(&event).expect("json");
        assert_eq!(body["status"], "completed");
        assert!(body.get("error").is_none());
        assert!(body["timestamp"].as_str().expect("ts").ends_with('Z'));
    }

    #[test]
    fn parses_commands_and_reports_partial_ids() {
        let ok = parse_command(br#"{"task_id":"t","step_id":"s","tool_name":"x"}"#).expect("valid");
        assert_eq!(ok.parameters, json!({}));
        let (ids, why) = parse_command(br#"{"task_id":"t","step_id":"s"}"#).expect_err("no tool");
        assert_eq!(ids.task_id.as_deref(), Some("t"));
        assert_eq!(ids.tool_name, None);
        assert!(why.contains("tool_name"), "{why}");
        let (ids, _) = parse_command(b"{not json").expect_err("malformed");
        assert_eq!(ids, PartialIds { task_id: None, step_id: None, tool_name: None });
        let (ids, why) = parse_command(br#"{"task_id":"t","step_id":"s","tool_name":"x","parameters":[1]}"#)
            .expect_err("array");
        assert_eq!(ids.step_id.as_deref(), Some("s"));
        assert!(why.contains("object"));
        let (ids, _) =
            parse_command(br#"{"task_id":7,"step_id":"s","tool_name":"x"}"#).expect_err("number id");
        assert_eq!(ids.step_id.as_deref(), Some("s"));
        assert_eq!(ids.task_id, None);
    }
}
