//! User tools: list, get by id, find by e-mail.

use std::sync::Arc;

use integration_core::{IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, typed_tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ROUTE, Shared, limit, looks_like_id};
use crate::PROVIDER;
use crate::client::MAX_PAGE;
use crate::models::User;

/// Most users one call of `slack_list_users` returns.
const MAX_USERS: u32 = 1000;

/// Parameters of `slack_list_users`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListUsers {
    /// Most users to read (default 200, at most 1000); Slack's pages are followed until reached.
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
    /// Include deactivated users.
    #[serde(default)]
    include_deleted: bool,
    /// Include bot users (default true).
    include_bots: Option<bool>,
}

/// Parameters of `slack_get_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetUser {
    /// The user id (`U…` or `W…`).
    #[schemars(length(min = 1))]
    user_id: String,
}

/// Parameters of `slack_find_user_by_email`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindUserByEmail {
    /// The e-mail address.
    #[schemars(length(min = 3))]
    email: String,
}

/// The answer of `slack_list_users` (also what is cached).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserList {
    users: Vec<Value>,
    next_cursor: Option<String>,
}

pub(super) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let (s1, s2, s3) = (shared.clone(), shared.clone(), shared.clone());
    vec![
        typed_tool(
            ToolSpec::new(
                "slack_list_users",
                PROVIDER,
                "List the members of the Slack workspace (id, names, e-mail, bot/deleted flags); pages with \
                 limit and cursor.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/users")),
            move |ctx: ToolContext, p: ListUsers| {
                let shared = s1.clone();
                async move { list_users(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new("slack_get_user", PROVIDER, "Get one Slack user by id (users.info).")
                .hints(ToolHints::read_only())
                .route(Method::Get, format!("{ROUTE}/users/{{user_id}}")),
            move |ctx: ToolContext, p: GetUser| {
                let shared = s2.clone();
                async move {
                    let user_id = p.user_id.trim();
                    if !looks_like_id(user_id, &['U', 'W', 'B']) {
                        return Err(IntegrationError::invalid_input(
                            PROVIDER,
                            format!("'{user_id}' is not a slack user id (U…)"),
                        ));
                    }
                    let client = shared.client(&ctx)?;
                    let user = client.user_info(user_id).await?;
                    Ok(json!({ "user": User::from_value(&user) }))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "slack_find_user_by_email",
                PROVIDER,
                "Find the Slack user with an e-mail address (users.lookupByEmail).",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/users")),
            move |ctx: ToolContext, p: FindUserByEmail| {
                let shared = s3.clone();
                async move {
                    let email = p.email.trim().to_lowercase();
                    if !email.contains('@') {
                        return Err(IntegrationError::invalid_input(
                            PROVIDER,
                            format!("'{email}' is not an e-mail address"),
                        ));
                    }
                    let client = shared.client(&ctx)?;
                    let user = client.lookup_user_by_email(&email).await?;
                    Ok(json!({ "user": User::from_value(&user) }))
                }
            },
        ),
    ]
}

async fn list_users(shared: &Shared, ctx: &ToolContext, p: ListUsers) -> Result<UserList, IntegrationError> {
    let client = shared.client(ctx)?;
    let wanted = limit(p.limit, 200, MAX_USERS);
    let include_bots = p.include_bots.unwrap_or(true);
    let key = shared.cache_key(
        ctx,
        &client,
        &format!(
            "users:{wanted}:{}:{}:{include_bots}",
            p.cursor.as_deref().unwrap_or("-"),
            p.include_deleted
        ),
    );
    if let Some(hit) = shared.cached::<UserList>(ctx, &key).await {
        return Ok(hit);
    }
    let mut read = 0u32;
    let mut users = Vec::new();
    let mut cursor = p.cursor.filter(|c| !c.is_empty());
    while read < wanted {
        let page = client.list_users((wanted - read).min(MAX_PAGE), cursor.as_deref()).await?;
        read = read.saturating_add(u32::try_from(page.items.len()).unwrap_or(u32::MAX)).max(read + 1);
        users.extend(
            page.items
                .iter()
                .map(User::from_value)
                .filter(|u| (p.include_deleted || !u.deleted) && (include_bots || !u.is_bot))
                .map(|u| json!(u)),
        );
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let list = UserList { users, next_cursor: cursor };
    shared.store(ctx, &key, &list, shared.options.list_cache_ttl).await;
    Ok(list)
}
