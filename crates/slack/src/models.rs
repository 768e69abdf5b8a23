//! Trimmed views of Slack's objects, for tool results: the fields an agent needs, in a stable
//! shape, read leniently from Slack's JSON (missing fields stay `None`).

use serde::Serialize;
use serde_json::Value;

fn s(v: &Value, pointer: &str) -> Option<String> {
    integration_core::json_at(v, pointer).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn b(v: &Value, pointer: &str) -> bool {
    integration_core::json_at(v, pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// A conversation (channel, private channel, DM).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    /// `C…` / `G…` / `D…`.
    pub id: String,
    /// The name without `#` (absent for DMs).
    pub name: Option<String>,
    /// Private channel.
    pub is_private: bool,
    /// Archived.
    pub is_archived: bool,
    /// The bot is a member.
    pub is_member: bool,
    /// A direct message.
    pub is_im: bool,
    /// Member count, when Slack says.
    pub num_members: Option<u64>,
    /// The topic text.
    pub topic: Option<String>,
    /// The purpose text.
    pub purpose: Option<String>,
    /// Creation time (Unix seconds).
    pub created: Option<i64>,
}

impl Channel {
    /// Read a Slack conversation object.
    pub fn from_value(v: &Value) -> Self {
        Self {
            id: s(v, "/id").unwrap_or_default(),
            name: s(v, "/name"),
            is_private: b(v, "/is_private"),
            is_archived: b(v, "/is_archived"),
            is_member: b(v, "/is_member"),
            is_im: b(v, "/is_im"),
            num_members: v.get("num_members").and_then(Value::as_u64),
            topic: s(v, "/topic/value"),
            purpose: s(v, "/purpose/value"),
            created: v.get("created").and_then(Value::as_i64),
        }
    }
}

/// A workspace member.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    /// `U…` / `W…`.
    pub id: String,
    /// The handle.
    pub name: Option<String>,
    /// The full name.
    pub real_name: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// The e-mail address (needs the `users:read.email` scope).
    pub email: Option<String>,
    /// The job title.
    pub title: Option<String>,
    /// A bot user.
    pub is_bot: bool,
    /// Deactivated.
    pub deleted: bool,
    /// An admin of the workspace.
    pub is_admin: bool,
    /// Time zone name (`Europe/Kyiv`).
    pub tz: Option<String>,
    /// The team.
    pub team_id: Option<String>,
}

impl User {
    /// Read a Slack user object.
    pub fn from_value(v: &Value) -> Self {
        Self {
            id: s(v, "/id").unwrap_or_default(),
            name: s(v, "/name"),
            real_name: s(v, "/real_name").or_else(|| s(v, "/profile/real_name")),
            display_name: s(v, "/profile/display_name"),
            email: s(v, "/profile/email"),
            title: s(v, "/profile/title"),
            is_bot: b(v, "/is_bot"),
            deleted: b(v, "/deleted"),
            is_admin: b(v, "/is_admin"),
            tz: s(v, "/tz"),
            team_id: s(v, "/team_id"),
        }
    }
}

/// A message of a conversation's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// The message timestamp (its id within the channel).
    pub ts: String,
    /// The author (a user id), when a user wrote it.
    pub user: Option<String>,
    /// The bot, when a bot wrote it.
    pub bot_id: Option<String>,
    /// The text.
    pub text: Option<String>,
    /// The thread it belongs to.
    pub thread_ts: Option<String>,
    /// Block Kit blocks, when present.
    pub blocks: Option<Value>,
}

impl Message {
    /// Read a Slack message object.
    pub fn from_value(v: &Value) -> Self {
        Self {
            ts: s(v, "/ts").unwrap_or_default(),
            user: s(v, "/user"),
            bot_id: s(v, "/bot_id"),
            text: s(v, "/text"),
            thread_ts: s(v, "/thread_ts"),
            blocks: v.get("blocks").filter(|b| b.is_array()).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fixture_shapes() {
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/slack/java-slack-sdk-samples/api_users.info.json"
        ));
        // The fixtures live beside the repository; skip quietly where they are not checked out.
        let Ok(raw) = raw else { return };
        let v: Value = serde_json::from_str(&raw).expect("fixture JSON");
        let user = User::from_value(&v["user"]);
        assert_eq!(user.id, "U00000000");
        assert_eq!(user.team_id.as_deref(), Some("T00000000"));
        let c = Channel::from_value(
            &serde_json::json!({"id": "C1", "name": "general", "topic": {"value": "hi"}}),
        );
        assert_eq!(c.topic.as_deref(), Some("hi"));
        assert!(!c.is_private);
    }
}
