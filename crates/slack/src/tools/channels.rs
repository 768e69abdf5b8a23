//! Channel tools: list, create, archive, invite, set the topic.

use std::sync::Arc;

use integration_core::{IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, typed_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{OneOrMany, ROUTE, Shared, limit, tolerate};
use crate::PROVIDER;
use crate::client::MAX_PAGE;
use crate::models::Channel;

/// Most channels one call of `slack_list_channels` returns.
const MAX_CHANNELS: u32 = 1000;
/// Conversation types Slack knows.
const TYPES: [&str; 4] = ["public_channel", "private_channel", "mpim", "im"];

/// Parameters of `slack_list_channels`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListChannels {
    /// Conversation types: `public_channel` (default), `private_channel`, `mpim`, `im`; one, a
    /// comma-separated list or an array.
    types: Option<OneOrMany>,
    /// Leave archived channels out.
    #[serde(default)]
    exclude_archived: bool,
    /// Most channels to return (default 200, at most 1000); Slack's pages are followed until reached.
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
}

/// Parameters of `slack_create_channel`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateChannel {
    /// The channel name: lower case letters, digits, `-` and `_`, at most 80 characters.
    #[schemars(length(min = 1, max = 81))]
    name: String,
    /// Create a private channel.
    #[serde(default)]
    is_private: bool,
}

/// Parameters of `slack_archive_channel`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ArchiveChannel {
    /// The channel: an id or `#name`.
    #[schemars(length(min = 1))]
    channel: String,
}

/// Parameters of `slack_invite_to_channel`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InviteToChannel {
    /// The channel: an id or `#name`.
    #[schemars(length(min = 1))]
    channel: String,
    /// The users to invite: user ids or e-mail addresses (one, comma-separated, or an array).
    users: OneOrMany,
}

/// Parameters of `slack_set_channel_topic`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SetChannelTopic {
    /// The channel: an id or `#name`.
    #[schemars(length(min = 1))]
    channel: String,
    /// The new topic (at most 250 characters; empty clears it).
    #[schemars(length(max = 250))]
    topic: String,
}

/// The answer of `slack_list_channels` (also what is cached).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChannelList {
    channels: Vec<Value>,
    next_cursor: Option<String>,
}

pub(super) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let (s1, s2, s3, s4, s5) =
        (shared.clone(), shared.clone(), shared.clone(), shared.clone(), shared.clone());
    vec![
        typed_tool(
            ToolSpec::new(
                "slack_list_channels",
                PROVIDER,
                "List Slack channels visible to the bot (id, name, privacy, archived, membership, topic); \
                 filters by type, pages with limit and cursor.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/channels")),
            move |ctx: ToolContext, p: ListChannels| {
                let shared = s1.clone();
                async move { list_channels(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_create_channel",
                PROVIDER,
                "Create a public (or private) Slack channel; the bot becomes its first member.",
            )
            .hints(ToolHints::write())
            .route(Method::Post, format!("{ROUTE}/channels")),
            move |ctx: ToolContext, p: CreateChannel| {
                let shared = s2.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let name = p.name.trim().trim_start_matches('#');
                    let answer = client.create_conversation(name, p.is_private).await?;
                    Ok(json!({ "channel": Channel::from_value(&answer["channel"]) }))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_archive_channel",
                PROVIDER,
                "Archive a Slack channel. Archiving an archived channel succeeds.",
            )
            .hints(ToolHints::idempotent_write().destructive())
            .route(Method::Post, format!("{ROUTE}/channels/{{channel}}/archive")),
            move |ctx: ToolContext, p: ArchiveChannel| {
                let shared = s3.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let channel = shared.resolve_channel(&ctx, &client, &p.channel).await?;
                    let (_, already) =
                        tolerate(client.archive_conversation(&channel).await, "already_archived")?;
                    Ok(json!({ "channel": channel, "archived": true, "already_archived": already }))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_invite_to_channel",
                PROVIDER,
                "Invite users (ids or e-mail addresses) to a Slack channel. Users already in the channel are \
                 not an error.",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Post, format!("{ROUTE}/channels/{{channel}}/invite")),
            move |ctx: ToolContext, p: InviteToChannel| {
                let shared = s4.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let wanted = p.users.into_vec();
                    if wanted.is_empty() {
                        return Err(IntegrationError::invalid_input(
                            PROVIDER,
                            "users must name at least one user",
                        ));
                    }
                    if wanted.len() > 1000 {
                        return Err(IntegrationError::invalid_input(
                            PROVIDER,
                            "at most 1000 users per invitation",
                        ));
                    }
                    let channel = shared.resolve_channel(&ctx, &client, &p.channel).await?;
                    let mut users = Vec::with_capacity(wanted.len());
                    for user in &wanted {
                        users.push(shared.resolve_user(&ctx, &client, user).await?);
                    }
                    let (answer, already) =
                        tolerate(client.invite(&channel, &users).await, "already_in_channel")?;
                    let channel_out = if already {
                        json!({ "id": channel })
                    } else {
                        json!(Channel::from_value(&answer["channel"]))
                    };
                    Ok(json!({ "channel": channel_out, "users": users, "already_in_channel": already }))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_set_channel_topic",
                PROVIDER,
                "Set (or clear) the topic of a Slack channel.",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Put, format!("{ROUTE}/channels/{{channel}}/topic")),
            move |ctx: ToolContext, p: SetChannelTopic| {
                let shared = s5.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let channel = shared.resolve_channel(&ctx, &client, &p.channel).await?;
                    let answer = client.set_topic(&channel, &p.topic).await?;
                    Ok(json!({ "channel": Channel::from_value(&answer["channel"]), "topic": p.topic }))
                }
            },
        ),
    ]
}

async fn list_channels(
    shared: &Shared,
    ctx: &ToolContext,
    p: ListChannels,
) -> Result<ChannelList, IntegrationError> {
    let client = shared.client(ctx)?;
    let types = p.types.map(OneOrMany::into_vec).unwrap_or_default();
    if let Some(bad) = types.iter().find(|t| !TYPES.contains(&t.as_str())) {
        return Err(IntegrationError::invalid_input(
            PROVIDER,
            format!("unknown conversation type '{bad}' (known: {})", TYPES.join(", ")),
        ));
    }
    let types = (!types.is_empty()).then(|| types.join(","));
    let wanted = limit(p.limit, 200, MAX_CHANNELS);
    let key = shared.cache_key(
        ctx,
        &client,
        &format!(
            "channels:{}:{}:{wanted}:{}",
            types.as_deref().unwrap_or("-"),
            p.exclude_archived,
            p.cursor.as_deref().unwrap_or("-")
        ),
    );
    if let Some(hit) = shared.cached::<ChannelList>(ctx, &key).await {
        return Ok(hit);
    }
    let mut channels = Vec::new();
    let mut cursor = p.cursor.filter(|c| !c.is_empty());
    loop {
        let remaining = wanted.saturating_sub(u32::try_from(channels.len()).unwrap_or(u32::MAX));
        if remaining == 0 {
            break;
        }
        let page = client
            .list_conversations(
                types.as_deref(),
                p.exclude_archived,
                remaining.min(MAX_PAGE),
                cursor.as_deref(),
            )
            .await?;
        channels.extend(page.items.iter().map(|c| json!(Channel::from_value(c))));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let list = ChannelList { channels, next_cursor: cursor };
    shared.store(ctx, &key, &list, shared.options.list_cache_ttl).await;
    Ok(list)
}
