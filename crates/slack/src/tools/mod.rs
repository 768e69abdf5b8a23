//! The tools: one file per resource. Every tool is a typed async function (`typed_tool`), so its
//! parameter schema comes from its parameter struct.
//!
//! Every Slack method is an HTTP POST or GET whatever it does, so retries are decided by each
//! tool's hints: sending a message or creating a channel is a plain write (retried only when Slack
//! certainly did nothing: connect failures, 429); reactions, topics, archiving and invitations are
//! idempotent writes; reads are read-only.

use std::borrow::Cow;
use std::sync::Arc;

use integration_core::cache::{FillLocks, get_json, set_json};
use integration_core::search::closest;
use integration_core::{IntegrationError, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::client::SlackClient;
use crate::{ClientCache, PROVIDER, SlackOptions};

mod channels;
mod messages;
mod users;

/// Route prefix of every Slack tool.
const ROUTE: &str = "/api/integrations/slack";

/// Most blocks Slack accepts in one message.
const MAX_BLOCKS: usize = 50;

/// What the tools share: the client cache, the provider options and the cache's fill locks.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) clients: Arc<ClientCache>,
    pub(crate) options: SlackOptions,
    pub(crate) fills: Arc<FillLocks>,
}

impl Shared {
    fn client(&self, ctx: &ToolContext) -> Result<SlackClient, IntegrationError> {
        self.clients.client_for(&ctx.connection)
    }

    /// A cache key scoped to the connection, its revision and the client's change counter.
    fn cache_key(&self, ctx: &ToolContext, client: &SlackClient, what: &str) -> String {
        format!("slack:{}:r{}:g{}:{what}", ctx.connection.name, ctx.connection.revision, client.generation())
    }

    async fn cached<T: Serialize + for<'de> Deserialize<'de>>(
        &self,
        ctx: &ToolContext,
        key: &str,
    ) -> Option<T> {
        if ctx.use_cache { get_json(ctx.cache.as_ref(), key).await } else { None }
    }

    async fn store<T: Serialize>(&self, ctx: &ToolContext, key: &str, value: &T, ttl: std::time::Duration) {
        set_json(ctx.cache.as_ref(), key, value, ttl).await;
    }

    /// A conversation id for `channel`: an id (`C…`, `G…`, `D…`, or a user id `U…` for the app's
    /// DM) passes through; `#name` or `name` is looked up in the channel directory.
    ///
    /// A name found is cached on its own (`channel-id:<name>`, same scope and time to live as the
    /// directory): the next message to it reads one short entry instead of the whole directory,
    /// which in a workspace of thousands of channels is hundreds of kilobytes, parsed (or fetched
    /// from Redis) on every message. A name cached just before the directory expires may outlive
    /// it by up to one time to live; any change made through these tools bumps the client's
    /// generation and so drops both.
    async fn resolve_channel(
        &self,
        ctx: &ToolContext,
        client: &SlackClient,
        channel: &str,
    ) -> Result<String, IntegrationError> {
        let channel = channel.trim();
        if channel.is_empty() {
            return Err(IntegrationError::invalid_input(PROVIDER, "channel must not be empty"));
        }
        if looks_like_id(channel, &['C', 'G', 'D', 'U', 'W']) {
            return Ok(channel.to_owned());
        }
        let name = channel.trim_start_matches('#').to_lowercase();
        let key = self.cache_key(ctx, client, &format!("channel-id:{name}"));
        if let Some(id) = self.cached::<String>(ctx, &key).await {
            return Ok(id);
        }
        let directory = self.channel_directory(ctx, client).await?;
        if let Some((id, _)) = directory.iter().find(|(_, n)| *n == name) {
            // Only names that exist are cached: a caller cannot fill the cache with made-up ones.
            self.store(ctx, &key, id, self.options.directory_cache_ttl).await;
            return Ok(id.clone());
        }
        let suggestions = closest(&name, directory.iter().map(|(_, n)| n.as_str()), 3);
        Err(IntegrationError::not_found(
            PROVIDER,
            format!("no channel named '#{name}' is visible to the bot"),
        )
        .with_details(json!({ "channel": channel, "did_you_mean": suggestions })))
    }

    /// `(id, name)` of every unarchived public and private channel the bot can see. Concurrent
    /// misses fetch it once ([`FillLocks`]; a failed fetch fails them all).
    async fn channel_directory(
        &self,
        ctx: &ToolContext,
        client: &SlackClient,
    ) -> Result<Vec<(String, String)>, IntegrationError> {
        let key = self.cache_key(ctx, client, "channel-directory");
        let cached = || self.cached::<Vec<(String, String)>>(ctx, &key);
        let fill = || async {
            let directory = fetch_directory(client).await?;
            self.store(ctx, &key, &directory, self.options.directory_cache_ttl).await;
            Ok(directory)
        };
        self.fills.get_or_fill(&key, ctx.use_cache, cached, fill).await
    }

    /// A user id for `user`: an id (`U…`, `W…`) passes through, an e-mail address is looked up.
    async fn resolve_user(
        &self,
        ctx: &ToolContext,
        client: &SlackClient,
        user: &str,
    ) -> Result<String, IntegrationError> {
        let user = user.trim().trim_start_matches('@');
        if looks_like_id(user, &['U', 'W']) {
            return Ok(user.to_owned());
        }
        if !user.contains('@') {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                format!("'{user}' is neither a slack user id (U…) nor an e-mail address"),
            ));
        }
        let email = user.to_lowercase();
        let key = self.cache_key(ctx, client, &format!("user-by-email:{email}"));
        if let Some(id) = self.cached::<String>(ctx, &key).await {
            return Ok(id);
        }
        let found = client.lookup_user_by_email(&email).await?;
        let id = found
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                IntegrationError::not_found(PROVIDER, format!("no slack user with e-mail '{email}'"))
            })?
            .to_owned();
        self.store(ctx, &key, &id, self.options.directory_cache_ttl).await;
        Ok(id)
    }
}

/// `(id, name)` of every unarchived channel the bot can see, page by page (at most 20,000).
async fn fetch_directory(client: &SlackClient) -> Result<Vec<(String, String)>, IntegrationError> {
    let mut directory = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let page = client
            .list_conversations(Some("public_channel,private_channel"), true, 1000, cursor.as_deref())
            .await?;
        directory.extend(page.items.iter().filter_map(|c| {
            Some((c.get("id")?.as_str()?.to_owned(), c.get("name")?.as_str()?.to_lowercase()))
        }));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    Ok(directory)
}

/// Every Slack tool.
pub(crate) fn all(shared: Shared) -> Vec<Arc<dyn Tool>> {
    let mut tools = messages::tools(&shared);
    tools.extend(channels::tools(&shared));
    tools.extend(users::tools(&shared));
    tools
}

/// A Slack id: a type letter then upper-case letters and digits (`C024BE91L`). Channel names are
/// lower case, so they never look like ids.
fn looks_like_id(text: &str, prefixes: &[char]) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| prefixes.contains(&c))
        && text.len() >= 3
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// One value or several (`"U1"` or `["U1", "U2"]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    /// One value (a comma-separated list is split).
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        let items = match self {
            OneOrMany::One(s) => s.split(',').map(str::to_owned).collect(),
            OneOrMany::Many(v) => v,
        };
        items.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
    }
}

/// A Block Kit block: a JSON object with a string `type`; everything else is passed to Slack
/// unchanged (Slack validates the block's own fields and answers `invalid_blocks`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Block(Map<String, Value>);

impl JsonSchema for Block {
    fn schema_name() -> Cow<'static, str> {
        "SlackBlock".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A Block Kit block (https://api.slack.com/reference/block-kit/blocks)",
            "required": ["type"],
            "properties": { "type": { "type": "string", "minLength": 1 } }
        })
    }
}

/// Check a message's content: text or blocks (at most 50, each an object with a `type`).
fn message_content(
    text: Option<String>,
    blocks: Option<Vec<Block>>,
) -> Result<(Option<String>, Option<Value>), IntegrationError> {
    let text = text.filter(|t| !t.trim().is_empty());
    let blocks = blocks.filter(|b| !b.is_empty());
    if let Some(blocks) = &blocks {
        if blocks.len() > MAX_BLOCKS {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                format!("a message takes at most {MAX_BLOCKS} blocks, got {}", blocks.len()),
            ));
        }
        for (i, block) in blocks.iter().enumerate() {
            if block.0.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(IntegrationError::invalid_input(
                    PROVIDER,
                    format!("block {i} has no string 'type'"),
                )
                .with_details(json!({ "pointer": format!("/blocks/{i}/type") })));
            }
        }
    }
    if text.is_none() && blocks.is_none() {
        return Err(IntegrationError::invalid_input(PROVIDER, "a message needs text or blocks"));
    }
    let blocks = blocks.map(|b| Value::Array(b.into_iter().map(|b| Value::Object(b.0)).collect()));
    Ok((text, blocks))
}

/// Clamp an optional limit.
fn limit(value: Option<u32>, default: u32, max: u32) -> u32 {
    value.unwrap_or(default).clamp(1, max)
}

/// A string field of a Slack answer, or an upstream error naming it.
fn field(answer: &Value, name: &str, method: &str) -> Result<String, IntegrationError> {
    answer
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| crate::error::missing_field(method, name))
}

/// Treat the Slack error `code` as success (idempotent tools: `already_reacted`, ...).
fn tolerate(result: Result<Value, IntegrationError>, code: &str) -> Result<(Value, bool), IntegrationError> {
    match result {
        Ok(v) => Ok((v, false)),
        Err(e) if e.details().and_then(|d| d.get("error")).and_then(Value::as_str) == Some(code) => {
            Ok((Value::Null, true))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        assert!(looks_like_id("C024BE91L", &['C', 'G', 'D']));
        assert!(!looks_like_id("general", &['C', 'G', 'D']));
        assert!(!looks_like_id("C", &['C']));
        assert!(!looks_like_id("Cats", &['C']));
    }

    #[test]
    fn content_rules() {
        let block = |v: Value| serde_json::from_value::<Block>(v).expect("object");
        assert!(message_content(None, None).is_err());
        assert!(message_content(Some("  ".into()), Some(vec![])).is_err());
        assert!(message_content(None, Some(vec![block(json!({"text": "no type"}))])).is_err());
        let (text, blocks) =
            message_content(Some("hi".into()), Some(vec![block(json!({"type": "divider"}))])).expect("ok");
        assert_eq!(text.as_deref(), Some("hi"));
        assert_eq!(blocks, Some(json!([{"type": "divider"}])));
        assert!(
            message_content(None, Some((0..51).map(|_| block(json!({"type": "divider"}))).collect()))
                .is_err()
        );
        assert_eq!(OneOrMany::One("U1, U2".into()).into_vec(), vec!["U1", "U2"]);
    }
}
