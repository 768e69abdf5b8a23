//! Message tools: send, update, ephemeral, react, notify a user, read a channel's history.

use std::sync::Arc;

use integration_core::{IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, typed_tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Block, ROUTE, Shared, field, limit, message_content, tolerate};
use crate::PROVIDER;
use crate::client::MessageRequest;
use crate::models::Message;

/// Parameters of `slack_send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    /// The channel: an id (`C024BE91L`) or a name (`#general`).
    #[schemars(length(min = 1))]
    channel: String,
    /// The message text (mrkdwn); with `blocks`, the notification fallback.
    text: Option<String>,
    /// Block Kit blocks: an array of block objects, each with a `type`.
    #[schemars(length(max = 50))]
    blocks: Option<Vec<Block>>,
    /// Reply in the thread of this message timestamp.
    thread_ts: Option<String>,
    /// Unfurl links in the text.
    unfurl_links: Option<bool>,
}

/// Parameters of `slack_update_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateMessage {
    /// The channel of the message: an id or `#name`.
    #[schemars(length(min = 1))]
    channel: String,
    /// The timestamp of the message to change.
    #[schemars(length(min = 1))]
    ts: String,
    /// The new text.
    text: Option<String>,
    /// The new Block Kit blocks.
    #[schemars(length(max = 50))]
    blocks: Option<Vec<Block>>,
}

/// Parameters of `slack_post_ephemeral`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PostEphemeral {
    /// The channel: an id or `#name`.
    #[schemars(length(min = 1))]
    channel: String,
    /// Who sees the message: a user id or an e-mail address.
    #[schemars(length(min = 1))]
    user: String,
    /// The message text.
    text: Option<String>,
    /// Block Kit blocks.
    #[schemars(length(max = 50))]
    blocks: Option<Vec<Block>>,
    /// Show it in the thread of this message timestamp.
    thread_ts: Option<String>,
}

/// Parameters of `slack_add_reaction`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddReaction {
    /// The channel of the message: an id or `#name`.
    #[schemars(length(min = 1))]
    channel: String,
    /// The timestamp of the message.
    #[schemars(length(min = 1))]
    timestamp: String,
    /// The emoji name, without colons (`thumbsup`).
    #[schemars(length(min = 1))]
    name: String,
}

/// Parameters of `slack_notify_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NotifyUser {
    /// The user: a user id (`U…`) or an e-mail address.
    #[schemars(length(min = 1))]
    user: String,
    /// The message text.
    text: Option<String>,
    /// Block Kit blocks.
    #[schemars(length(max = 50))]
    blocks: Option<Vec<Block>>,
}

/// Parameters of `slack_list_messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListMessages {
    /// The channel: an id or `#name`.
    #[schemars(length(min = 1))]
    channel: String,
    /// Most messages to return, newest first (default 20, at most 200).
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer.
    cursor: Option<String>,
}

pub(super) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let (s1, s2, s3, s4, s5, s6) =
        (shared.clone(), shared.clone(), shared.clone(), shared.clone(), shared.clone(), shared.clone());
    vec![
        typed_tool(
            ToolSpec::new(
                "slack_send_message",
                PROVIDER,
                "Send a message to a Slack channel (by id or #name), optionally with Block Kit blocks or as a \
                 thread reply. Messages to one channel are sent in order, at most one per second. Returns the \
                 channel id and the message timestamp (ts).",
            )
            .hints(ToolHints::write())
            .route(Method::Post, format!("{ROUTE}/message")),
            move |ctx: ToolContext, p: SendMessage| {
                let shared = s1.clone();
                async move { send_message(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_update_message",
                PROVIDER,
                "Replace the text and/or blocks of a message the bot sent, by channel and ts.",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Put, format!("{ROUTE}/message")),
            move |ctx: ToolContext, p: UpdateMessage| {
                let shared = s2.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let (text, blocks) = message_content(p.text, p.blocks)?;
                    let channel = shared.resolve_channel(&ctx, &client, &p.channel).await?;
                    let request = MessageRequest { channel, text, blocks, ts: Some(p.ts), ..Default::default() };
                    let answer = client.update_message(&request).await?;
                    Ok(json!({
                        "channel": field(&answer, "channel", "chat.update")?,
                        "ts": field(&answer, "ts", "chat.update")?,
                        "text": answer.get("text"),
                    }))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_post_ephemeral",
                PROVIDER,
                "Show a message to one user in a channel, visible only to them (not kept in the history).",
            )
            .hints(ToolHints::write())
            .route(Method::Post, format!("{ROUTE}/message/ephemeral")),
            move |ctx: ToolContext, p: PostEphemeral| {
                let shared = s3.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let (text, blocks) = message_content(p.text, p.blocks)?;
                    let channel = shared.resolve_channel(&ctx, &client, &p.channel).await?;
                    let user = shared.resolve_user(&ctx, &client, &p.user).await?;
                    let request = MessageRequest {
                        channel: channel.clone(),
                        text,
                        blocks,
                        thread_ts: p.thread_ts,
                        user: Some(user.clone()),
                        ..Default::default()
                    };
                    let answer = client.post_ephemeral(&request).await?;
                    Ok(json!({
                        "channel": channel,
                        "user": user,
                        "message_ts": field(&answer, "message_ts", "chat.postEphemeral")?,
                    }))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_add_reaction",
                PROVIDER,
                "Add an emoji reaction to a message (by channel and message ts). Adding a reaction that is \
                 already there succeeds.",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Post, format!("{ROUTE}/reactions")),
            move |ctx: ToolContext, p: AddReaction| {
                let shared = s4.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let channel = shared.resolve_channel(&ctx, &client, &p.channel).await?;
                    let name = p.name.trim().trim_matches(':').to_owned();
                    let (_, already) =
                        tolerate(client.add_reaction(&channel, &p.timestamp, &name).await, "already_reacted")?;
                    Ok(json!({ "channel": channel, "timestamp": p.timestamp, "name": name, "already_reacted": already }))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_notify_user",
                PROVIDER,
                "Send a direct message to a Slack user, given a user id or an e-mail address: opens the DM \
                 conversation and posts to it. Returns the DM channel id and the message ts.",
            )
            .hints(ToolHints::write())
            .route(Method::Post, format!("{ROUTE}/notify")),
            move |ctx: ToolContext, p: NotifyUser| {
                let shared = s5.clone();
                async move { notify_user(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_list_messages",
                PROVIDER,
                "Read the latest messages of a channel (conversations.history), newest first; pages with \
                 limit and cursor.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/channels/{{channel}}/messages")),
            move |ctx: ToolContext, p: ListMessages| {
                let shared = s6.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let channel = shared.resolve_channel(&ctx, &client, &p.channel).await?;
                    let answer = client.history(&channel, limit(p.limit, 20, 200), p.cursor.as_deref()).await?;
                    let messages: Vec<Message> = answer
                        .get("messages")
                        .and_then(Value::as_array)
                        .map(|m| m.iter().map(Message::from_value).collect())
                        .unwrap_or_default();
                    let next = answer
                        .pointer("/response_metadata/next_cursor")
                        .and_then(Value::as_str)
                        .filter(|c| !c.is_empty());
                    Ok(json!({ "channel": channel, "messages": messages, "next_cursor": next }))
                }
            },
        ),
    ]
}

async fn send_message(shared: &Shared, ctx: &ToolContext, p: SendMessage) -> Result<Value, IntegrationError> {
    let client = shared.client(ctx)?;
    let (text, blocks) = message_content(p.text, p.blocks)?;
    let channel = shared.resolve_channel(ctx, &client, &p.channel).await?;
    let request = MessageRequest {
        channel,
        text,
        blocks,
        thread_ts: p.thread_ts.filter(|t| !t.is_empty()),
        unfurl_links: p.unfurl_links,
        ..Default::default()
    };
    let posted = client.post_message(&request).await?;
    Ok(json!({ "channel": posted.channel, "ts": posted.ts, "thread_ts": request.thread_ts }))
}

async fn notify_user(shared: &Shared, ctx: &ToolContext, p: NotifyUser) -> Result<Value, IntegrationError> {
    let client = shared.client(ctx)?;
    let (text, blocks) = message_content(p.text, p.blocks)?;
    let user = shared.resolve_user(ctx, &client, &p.user).await?;
    let opened = client.open_conversation(std::slice::from_ref(&user)).await?;
    let channel = opened
        .pointer("/channel/id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            IntegrationError::new(
                integration_core::ErrorKind::Upstream { status: Some(200) },
                PROVIDER,
                "conversations.open answered without a channel id",
            )
        })?
        .to_owned();
    let request = MessageRequest { channel, text, blocks, ..Default::default() };
    let posted = client.post_message(&request).await?;
    Ok(json!({ "user": user, "channel": posted.channel, "ts": posted.ts }))
}
