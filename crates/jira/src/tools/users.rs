//! User tools: list / search users, find one user; and the account resolution other tools use.

use std::sync::Arc;

use integration_core::{IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, typed_tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ROUTE, Shared, check_key, closest, encode_cursor, eq_ci, limit, offset_cursor};
use crate::PROVIDER;
use crate::client::JiraClient;
use crate::models::User;

/// Parameters of `jira_list_users`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListUsers {
    /// Text matched against display names and e-mail addresses; all users when absent.
    query: Option<String>,
    /// Only users assignable to issues of this project.
    project_key: Option<String>,
    /// Only users assignable to this issue.
    issue_key: Option<String>,
    /// Most users to return (default 50, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
}

/// Parameters of `jira_find_user`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindUser {
    /// E-mail address, display name or account id of the user.
    #[schemars(length(min = 1))]
    query: String,
}

pub(super) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let s1 = shared.clone();
    let s2 = shared.clone();
    vec![
        typed_tool(
            ToolSpec::new(
                "jira_list_users",
                PROVIDER,
                "List Jira users, optionally matching a text, or those assignable in a project or on an issue.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/users")),
            move |ctx: ToolContext, p: ListUsers| {
                let shared = s1.clone();
                async move { list_users(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "jira_find_user",
                PROVIDER,
                "Find exactly one Jira user by e-mail, display name or account id; the error lists close \
                 matches when there is no single one.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/users/find")),
            move |ctx: ToolContext, p: FindUser| {
                let shared = s2.clone();
                async move {
                    let client = shared.client(&ctx)?;
                    let user = find_one(&client, p.query.trim()).await?;
                    Ok(json!(User::from_value(&user)))
                }
            },
        ),
    ]
}

async fn list_users(shared: &Shared, ctx: &ToolContext, p: ListUsers) -> Result<Value, IntegrationError> {
    let limit = limit(p.limit, 50, 1000);
    let start = u32::try_from(offset_cursor("u", p.cursor.as_deref())?)
        .map_err(|_| IntegrationError::invalid_input(PROVIDER, "invalid cursor"))?;
    let client = shared.client(ctx)?;
    let query = p.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let users = if p.project_key.is_some() || p.issue_key.is_some() {
        if let Some(k) = &p.project_key {
            check_key("project key", k)?;
        }
        if let Some(k) = &p.issue_key {
            check_key("issue key", k)?;
        }
        if start > 0 {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                "assignable users are not paged: raise limit",
            ));
        }
        client.assignable_users(p.project_key.as_deref(), p.issue_key.as_deref(), query, limit).await?
    } else if let Some(q) = query {
        client.find_users(q, start, limit).await?
    } else {
        client.all_users(start, limit).await?
    };
    let full_page = users.len() as u32 >= limit && p.project_key.is_none() && p.issue_key.is_none();
    let next = start + users.len() as u32;
    let users: Vec<User> = users.iter().map(User::from_value).collect();
    Ok(json!({
        "users": users,
        "next_cursor": full_page.then(|| encode_cursor("u", &next.to_string())),
    }))
}

/// Exactly one user matching `query` by account id, e-mail or display name (case-insensitive).
async fn find_one(client: &JiraClient, query: &str) -> Result<Value, IntegrationError> {
    if query.is_empty() {
        return Err(IntegrationError::invalid_input(PROVIDER, "query must not be empty"));
    }
    let candidates = client.find_users(query, 0, 50).await?;
    let field = |u: &Value, k: &str| u.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let exact: Vec<&Value> = candidates
        .iter()
        .filter(|u| {
            field(u, "accountId") == query
                || eq_ci(&field(u, "emailAddress"), query)
                || eq_ci(&field(u, "displayName"), query)
        })
        .collect();
    match exact.as_slice() {
        [one] => Ok((*one).clone()),
        [] if candidates.len() == 1 => Ok(candidates[0].clone()),
        [] => {
            let names: Vec<String> = candidates.iter().map(|u| field(u, "displayName")).collect();
            let close = closest(query, names.iter().map(String::as_str), 5);
            Err(IntegrationError::not_found(PROVIDER, format!("no Jira user matches '{query}'"))
                .with_details(json!({ "query": query, "closest": close })))
        }
        many => {
            let users: Vec<User> = many.iter().map(|u| User::from_value(u)).collect();
            Err(IntegrationError::invalid_input(
                PROVIDER,
                format!("{} Jira users match '{query}': use an account id or e-mail", users.len()),
            )
            .with_details(json!({ "query": query, "candidates": users })))
        }
    }
}

/// The account id for an assignee parameter: `unassigned`/`none` is `None`, `me` the connection's
/// user, an e-mail or display name is looked up; a value no search finds is taken as an account id
/// when it looks like one (no spaces, no `@`).
pub(super) async fn resolve_account(
    client: &JiraClient,
    value: &str,
) -> Result<Option<String>, IntegrationError> {
    let value = value.trim();
    if value.is_empty() || eq_ci(value, "unassigned") || eq_ci(value, "none") {
        return Ok(None);
    }
    if eq_ci(value, "me") || eq_ci(value, "currentUser()") {
        let me = client.myself().await?;
        return Ok(User::from_value(&me).account_id);
    }
    match find_one(client, value).await {
        Ok(user) => Ok(User::from_value(&user).account_id),
        Err(e)
            if e.kind() == &integration_core::ErrorKind::NotFound
                && !value.contains('@')
                && !value.chars().any(char::is_whitespace) =>
        {
            Ok(Some(value.to_owned()))
        }
        Err(e) => Err(e),
    }
}
