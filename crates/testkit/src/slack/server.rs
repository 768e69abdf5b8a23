//! The HTTP side of the fake: one route `/api/{method}`, parameters from the query, form or JSON
//! body, then authentication, scope, rate limit and the method itself.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxumState};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

use super::{EphemeralMessage, FakeChannel, FakeSlack, FakeUser, SlackMessage, State};

/// The router of a fake Slack: the Web API under `/api/{method}`.
pub fn router(state: FakeSlack) -> Router {
    Router::new()
        .route("/api/{method}", any(handle))
        .fallback(|| async {
            (StatusCode::NOT_FOUND, "fake slack: no such path (the Web API is under /api/)")
        })
        .with_state(state)
}

/// Request parameters, whatever their encoding.
struct Params(Map<String, Value>);

impl Params {
    fn parse(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<Self, &'static str> {
        let mut map = Map::new();
        if let Some(q) = query {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                map.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
        let content_type =
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !body.is_empty() {
            if content_type.starts_with("application/json") {
                match serde_json::from_slice::<Value>(body) {
                    Ok(Value::Object(obj)) => map.extend(obj),
                    Ok(_) => return Err("json_not_object"),
                    Err(_) => return Err("invalid_json"),
                }
            } else if content_type.starts_with("application/x-www-form-urlencoded") || content_type.is_empty()
            {
                for (k, v) in url::form_urlencoded::parse(body) {
                    map.insert(k.into_owned(), Value::String(v.into_owned()));
                }
            } else {
                return Err("invalid_post_type");
            }
        }
        Ok(Self(map))
    }

    fn str(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.0.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => Some(s == "true" || s == "1"),
            Value::Number(n) => Some(n.as_u64() == Some(1)),
            _ => None,
        }
    }

    fn usize(&self, key: &str) -> Option<usize> {
        self.str(key).and_then(|s| s.parse().ok())
    }

    /// `blocks`: an array, or a JSON string of one (form bodies).
    fn blocks(&self) -> Result<Option<Value>, &'static str> {
        let value = match self.0.get("blocks") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) if s.is_empty() => return Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|_| "invalid_blocks_format")?,
            Some(v) => v.clone(),
        };
        const KNOWN: [&str; 12] = [
            "section",
            "divider",
            "header",
            "actions",
            "context",
            "image",
            "input",
            "rich_text",
            "file",
            "video",
            "markdown",
            "call",
        ];
        let Value::Array(blocks) = &value else { return Err("invalid_blocks_format") };
        if blocks.len() > 50 {
            return Err("invalid_blocks");
        }
        let valid =
            blocks.iter().all(|b| b.get("type").and_then(Value::as_str).is_some_and(|t| KNOWN.contains(&t)));
        if valid { Ok(Some(value)) } else { Err("invalid_blocks") }
    }
}

fn ok(mut body: Value) -> Response {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("ok".into(), Value::Bool(true));
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn fail(code: &str) -> Response {
    (StatusCode::OK, axum::Json(json!({ "ok": false, "error": code }))).into_response()
}

/// Which scope a method needs.
fn scope_of(method: &str) -> Option<&'static str> {
    Some(match method {
        "chat.postMessage" | "chat.update" | "chat.postEphemeral" => "chat:write",
        "reactions.add" => "reactions:write",
        "conversations.list" => "channels:read",
        "conversations.history" => "channels:history",
        "conversations.create"
        | "conversations.archive"
        | "conversations.invite"
        | "conversations.setTopic" => "channels:manage",
        "conversations.open" => "im:write",
        "users.list" | "users.info" => "users:read",
        "users.lookupByEmail" => "users:read.email",
        _ => return None,
    })
}

async fn handle(
    AxumState(fake): AxumState<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = match Params::parse(&headers, query.as_deref(), &body) {
        Ok(p) => p,
        Err(code) => return fail(code),
    };
    let mut s = fake.lock();
    s.calls.push(method.clone());
    const METHODS: [&str; 15] = [
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "reactions.add",
        "conversations.list",
        "conversations.history",
        "conversations.create",
        "conversations.archive",
        "conversations.invite",
        "conversations.setTopic",
        "conversations.open",
        "users.list",
        "users.info",
        "users.lookupByEmail",
    ];
    if !METHODS.contains(&method.as_str()) {
        return (StatusCode::NOT_FOUND, axum::Json(json!({ "ok": false, "error": "unknown_method" })))
            .into_response();
    }

    // Authentication: the Bearer header, else a `token` parameter.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let Some(token) = bearer.or_else(|| params.str("token")) else { return fail("not_authed") };
    let Some(token) = s.tokens.get(&token).cloned() else { return fail("invalid_auth") };
    if token.inactive {
        return fail("account_inactive");
    }
    if let (Some(needed), Some(scopes)) = (scope_of(&method), &token.scopes)
        && !scopes.contains(needed)
    {
        let provided = scopes.iter().cloned().collect::<Vec<_>>().join(",");
        return axum::Json(
            json!({ "ok": false, "error": "missing_scope", "needed": needed, "provided": provided }),
        )
        .into_response();
    }

    // Per-method rate limit.
    if let Some((max, window)) = s.limits.get(&method).copied() {
        let now = Instant::now();
        let hits = s.hits.entry(method.clone()).or_default();
        while hits.front().is_some_and(|t| now.duration_since(*t) >= window) {
            hits.pop_front();
        }
        if hits.len() >= max {
            let wait = hits.front().map(|t| window.saturating_sub(now.duration_since(*t))).unwrap_or(window);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({ "ok": false, "error": "ratelimited" })))
                    .into_response();
            if let Ok(v) = secs.max(1).to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        hits.push_back(now);
    }

    let email_scope = token.scopes.as_ref().is_none_or(|s| s.contains("users:read.email"));
    match method.as_str() {
        "auth.test" => auth_test(&s),
        "chat.postMessage" => post_message(&mut s, &params),
        "chat.update" => update_message(&mut s, &params),
        "chat.postEphemeral" => post_ephemeral(&mut s, &params),
        "reactions.add" => add_reaction(&mut s, &params),
        "conversations.list" => list_conversations(&s, &params),
        "conversations.history" => history(&s, &params),
        "conversations.create" => create(&mut s, &params),
        "conversations.archive" => archive(&mut s, &params),
        "conversations.invite" => invite(&mut s, &params),
        "conversations.setTopic" => set_topic(&mut s, &params),
        "conversations.open" => open(&mut s, &params),
        "users.list" => list_users(&s, &params, email_scope),
        "users.info" => user_info(&s, &params, email_scope),
        _ => lookup_by_email(&s, &params, email_scope),
    }
}

/// A conversation object (`objs_conversation`).
pub(crate) fn channel_json(s: &State, c: &FakeChannel) -> Value {
    if c.is_im {
        return json!({
            "id": c.id,
            "created": c.created,
            "is_im": true,
            "is_org_shared": false,
            "user": c.im_user,
            "priority": 0,
            "is_user_deleted": false,
        });
    }
    json!({
        "id": c.id,
        "name": c.name,
        "name_normalized": c.name,
        "created": c.created,
        "creator": c.creator,
        "is_channel": !c.is_private,
        "is_group": false,
        "is_im": false,
        "is_mpim": false,
        "is_private": c.is_private,
        "is_archived": c.is_archived,
        "is_general": c.is_general,
        "is_shared": false,
        "is_org_shared": false,
        "is_ext_shared": false,
        "is_pending_ext_shared": false,
        "is_member": c.members.contains(&s.bot_user),
        "num_members": c.members.len(),
        "unlinked": 0,
        "topic": { "value": c.topic.0, "creator": c.topic.1, "last_set": c.topic.2 },
        "purpose": { "value": c.purpose, "creator": "", "last_set": 0 },
        "previous_names": [],
    })
}

/// A user object (`objs_user`); the e-mail only with the `users:read.email` scope.
pub(crate) fn user_json(s: &State, u: &FakeUser, with_email: bool) -> Value {
    let mut profile = json!({
        "real_name": u.real_name,
        "real_name_normalized": u.real_name,
        "display_name": u.name,
        "display_name_normalized": u.name,
        "avatar_hash": "g0000000000a",
        "title": if u.is_bot { "" } else { "Engineer" },
        "phone": "",
        "skype": "",
        "status_text": "",
        "status_emoji": "",
        "fields": null,
        "team": s.team_id,
        "image_72": format!("https://avatars.example.com/{}_72.png", u.id),
    });
    if with_email && let Some(email) = &u.email {
        profile["email"] = Value::String(email.clone());
    }
    if u.is_bot {
        profile["bot_id"] = Value::String(s.bot_id.clone());
    }
    json!({
        "id": u.id,
        "team_id": s.team_id,
        "name": u.name,
        "deleted": u.deleted,
        "color": "9f69e7",
        "real_name": u.real_name,
        "tz": "Europe/Kyiv",
        "tz_label": "Eastern European Time",
        "tz_offset": 7200,
        "profile": profile,
        "is_admin": u.is_admin,
        "is_owner": false,
        "is_primary_owner": false,
        "is_restricted": false,
        "is_ultra_restricted": false,
        "is_bot": u.is_bot,
        "is_app_user": false,
        "updated": 1_700_000_000,
    })
}

fn message_json(s: &State, m: &SlackMessage) -> Value {
    let mut v = json!({ "type": "message", "user": m.user, "ts": m.ts, "team": s.team_id, "text": m.text.clone().unwrap_or_default() });
    if m.user == s.bot_user {
        v["bot_id"] = Value::String(s.bot_id.clone());
    }
    if let Some(blocks) = &m.blocks {
        v["blocks"] = blocks.clone();
    }
    if let Some(t) = &m.thread_ts {
        v["thread_ts"] = Value::String(t.clone());
    }
    if !m.reactions.is_empty() {
        v["reactions"] = m
            .reactions
            .iter()
            .map(|(name, users)| json!({ "name": name, "count": users.len(), "users": users }))
            .collect();
    }
    v
}

fn auth_test(s: &State) -> Response {
    ok(json!({
        "url": "https://fake-workspace.slack.com/",
        "team": s.team,
        "user": "integrations-bot",
        "team_id": s.team_id,
        "user_id": s.bot_user,
        "bot_id": s.bot_id,
        "is_enterprise_install": false,
    }))
}

/// The channel a message goes to: an id or name, or a user id (the bot's DM with the user).
fn target_channel(s: &mut State, key: &str) -> Result<usize, &'static str> {
    if key.starts_with('U') || key.starts_with('W') {
        if s.user(key).is_none() {
            return Err("channel_not_found");
        }
        return Ok(s.open_im(key).0);
    }
    s.channel_index(key).ok_or("channel_not_found")
}

fn post_message(s: &mut State, p: &Params) -> Response {
    let Some(channel) = p.str("channel") else { return fail("channel_not_found") };
    let blocks = match p.blocks() {
        Ok(b) => b,
        Err(code) => return fail(code),
    };
    let text = p.str("text");
    if text.is_none() && blocks.is_none() {
        return fail("no_text");
    }
    if text.as_ref().is_some_and(|t| t.chars().count() > 40_000) {
        return fail("msg_too_long");
    }
    let index = match target_channel(s, &channel) {
        Ok(i) => i,
        Err(code) => return fail(code),
    };
    if s.channels[index].is_archived {
        return fail("is_archived");
    }
    let ts = s.ts();
    let message = SlackMessage {
        ts: ts.clone(),
        user: s.bot_user.clone(),
        text,
        blocks,
        thread_ts: p.str("thread_ts"),
        reactions: BTreeMap::new(),
        unfurl_links: p.bool("unfurl_links"),
    };
    let body = message_json(s, &message);
    s.channels[index].messages.push(message);
    ok(json!({ "channel": s.channels[index].id, "ts": ts, "message": body }))
}

fn update_message(s: &mut State, p: &Params) -> Response {
    let Some(index) = p.str("channel").and_then(|c| s.channel_index(&c)) else {
        return fail("channel_not_found");
    };
    let Some(ts) = p.str("ts") else { return fail("message_not_found") };
    let blocks = match p.blocks() {
        Ok(b) => b,
        Err(code) => return fail(code),
    };
    let text = p.str("text");
    if text.is_none() && blocks.is_none() {
        return fail("no_text");
    }
    let bot = s.bot_user.clone();
    let Some(message) = s.channels[index].messages.iter_mut().find(|m| m.ts == ts) else {
        return fail("message_not_found");
    };
    if message.user != bot {
        return fail("cant_update_message");
    }
    message.text = text;
    if blocks.is_some() {
        message.blocks = blocks;
    }
    let message = message.clone();
    let body = message_json(s, &message);
    ok(
        json!({ "channel": s.channels[index].id, "ts": ts, "text": message.text.unwrap_or_default(), "message": body }),
    )
}

fn post_ephemeral(s: &mut State, p: &Params) -> Response {
    let Some(index) = p.str("channel").and_then(|c| s.channel_index(&c)) else {
        return fail("channel_not_found");
    };
    let Some(user) = p.str("user").filter(|u| s.user(u).is_some()) else { return fail("user_not_found") };
    if !s.channels[index].members.contains(&user) {
        return fail("user_not_in_channel");
    }
    let blocks = match p.blocks() {
        Ok(b) => b,
        Err(code) => return fail(code),
    };
    let text = p.str("text");
    if text.is_none() && blocks.is_none() {
        return fail("no_text");
    }
    let ts = s.ts();
    let channel = s.channels[index].id.clone();
    s.ephemeral.push(EphemeralMessage { channel, user, text, ts: ts.clone() });
    ok(json!({ "message_ts": ts }))
}

fn add_reaction(s: &mut State, p: &Params) -> Response {
    let Some(index) = p.str("channel").and_then(|c| s.channel_index(&c)) else {
        return fail("channel_not_found");
    };
    let Some(name) = p.str("name").filter(|n| !n.contains(' ') && !n.contains(':')) else {
        return fail("invalid_name");
    };
    let Some(ts) = p.str("timestamp") else { return fail("no_item_specified") };
    let bot = s.bot_user.clone();
    let Some(message) = s.channels[index].messages.iter_mut().find(|m| m.ts == ts) else {
        return fail("message_not_found");
    };
    let users = message.reactions.entry(name).or_default();
    if users.contains(&bot) {
        return fail("already_reacted");
    }
    users.push(bot);
    ok(json!({}))
}

/// Offset cursors: `next_{offset}`.
fn decode_cursor(p: &Params) -> Result<usize, &'static str> {
    match p.str("cursor") {
        None => Ok(0),
        Some(c) => c.strip_prefix("next_").and_then(|n| n.parse().ok()).ok_or("invalid_cursor"),
    }
}

fn page<T: Clone>(
    s: &State,
    items: &[T],
    p: &Params,
    default_limit: usize,
) -> Result<(Vec<T>, String), &'static str> {
    let offset = decode_cursor(p)?;
    let limit = match p.usize("limit") {
        Some(0) | None => default_limit,
        Some(n) => n.min(1000),
    }
    .min(s.max_page);
    let end = (offset + limit).min(items.len());
    let slice = items.get(offset.min(items.len())..end).unwrap_or_default().to_vec();
    let next = if end < items.len() { format!("next_{end}") } else { String::new() };
    Ok((slice, next))
}

fn list_conversations(s: &State, p: &Params) -> Response {
    let types = p.str("types").unwrap_or_else(|| "public_channel".into());
    let types: Vec<&str> = types.split(',').map(str::trim).collect();
    let exclude_archived = p.bool("exclude_archived").unwrap_or(false);
    let visible: Vec<&FakeChannel> = s
        .channels
        .iter()
        .filter(|c| {
            let kind = if c.is_im {
                "im"
            } else if c.is_private {
                "private_channel"
            } else {
                "public_channel"
            };
            types.contains(&kind) && !(exclude_archived && c.is_archived)
        })
        .collect();
    match page(s, &visible, p, 100) {
        Ok((items, next)) => ok(json!({
            "channels": items.iter().map(|c| channel_json(s, c)).collect::<Vec<_>>(),
            "response_metadata": { "next_cursor": next },
        })),
        Err(code) => fail(code),
    }
}

fn history(s: &State, p: &Params) -> Response {
    let Some(index) = p.str("channel").and_then(|c| s.channel_index(&c)) else {
        return fail("channel_not_found");
    };
    // Newest first; thread replies stay in their threads.
    let messages: Vec<&SlackMessage> = s.channels[index]
        .messages
        .iter()
        .rev()
        .filter(|m| m.thread_ts.as_ref().is_none_or(|t| *t == m.ts))
        .collect();
    match page(s, &messages, p, 100) {
        Ok((items, next)) => {
            let mut body = json!({
                "messages": items.iter().map(|m| message_json(s, m)).collect::<Vec<_>>(),
                "has_more": !next.is_empty(),
                "pin_count": 0,
                "channel_actions_ts": null,
                "channel_actions_count": 0,
            });
            if !next.is_empty() {
                body["response_metadata"] = json!({ "next_cursor": next });
            }
            ok(body)
        }
        Err(code) => fail(code),
    }
}

fn create(s: &mut State, p: &Params) -> Response {
    let Some(name) = p.str("name") else { return fail("invalid_name_required") };
    if name.chars().count() > 80 {
        return fail("invalid_name_maxlength");
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return fail("invalid_name_specials");
    }
    if s.channels.iter().any(|c| !c.is_im && c.name == name) {
        return fail("name_taken");
    }
    let is_private = p.bool("is_private").unwrap_or(false);
    let id = s.add_channel(&name, is_private, &[]);
    let channel = s.channels.iter().find(|c| c.id == id).map(|c| channel_json(s, c)).unwrap_or_default();
    ok(json!({ "channel": channel }))
}

fn archive(s: &mut State, p: &Params) -> Response {
    let Some(index) = p.str("channel").and_then(|c| s.channel_index(&c)) else {
        return fail("channel_not_found");
    };
    let channel = &mut s.channels[index];
    if channel.is_im {
        return fail("method_not_supported_for_channel_type");
    }
    if channel.is_general {
        return fail("cant_archive_general");
    }
    if channel.is_archived {
        return fail("already_archived");
    }
    channel.is_archived = true;
    ok(json!({}))
}

fn invite(s: &mut State, p: &Params) -> Response {
    let Some(index) = p.str("channel").and_then(|c| s.channel_index(&c)) else {
        return fail("channel_not_found");
    };
    let users: Vec<String> = p
        .str("users")
        .unwrap_or_default()
        .split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    if users.is_empty() {
        return fail("no_user");
    }
    if users.iter().any(|u| s.user(u).is_none()) {
        return fail("user_not_found");
    }
    if users.contains(&s.bot_user) {
        return fail("cant_invite_self");
    }
    if s.channels[index].is_archived {
        return fail("is_archived");
    }
    if users.iter().all(|u| s.channels[index].members.contains(u)) {
        return fail("already_in_channel");
    }
    s.channels[index].members.extend(users);
    let channel = channel_json(s, &s.channels[index]);
    ok(json!({ "channel": channel }))
}

fn set_topic(s: &mut State, p: &Params) -> Response {
    let Some(index) = p.str("channel").and_then(|c| s.channel_index(&c)) else {
        return fail("channel_not_found");
    };
    let topic = p.str("topic").unwrap_or_default();
    if topic.chars().count() > 250 {
        return fail("too_long");
    }
    if s.channels[index].is_archived {
        return fail("is_archived");
    }
    let now = s.now();
    let bot = s.bot_user.clone();
    s.channels[index].topic = (topic, bot, now);
    let channel = channel_json(s, &s.channels[index]);
    ok(json!({ "channel": channel }))
}

fn open(s: &mut State, p: &Params) -> Response {
    let users: Vec<String> = p
        .str("users")
        .unwrap_or_default()
        .split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    match users.as_slice() {
        [] => fail("users_list_not_supplied"),
        [user] => {
            if s.user(user).is_none_or(|u| u.deleted) {
                return fail("user_not_found");
            }
            let (index, already) = s.open_im(user);
            let channel = if p.bool("return_im").unwrap_or(false) {
                channel_json(s, &s.channels[index])
            } else {
                json!({ "id": s.channels[index].id })
            };
            ok(json!({ "channel": channel, "already_open": already, "no_op": already }))
        }
        _ => fail("method_not_supported_for_channel_type"),
    }
}

fn list_users(s: &State, p: &Params, with_email: bool) -> Response {
    match page(s, &s.users, p, 200) {
        Ok((items, next)) => ok(json!({
            "members": items.iter().map(|u| user_json(s, u, with_email)).collect::<Vec<_>>(),
            "cache_ts": s.now(),
            "response_metadata": { "next_cursor": next },
        })),
        Err(code) => fail(code),
    }
}

fn user_info(s: &State, p: &Params, with_email: bool) -> Response {
    match p.str("user").and_then(|id| s.user(&id)) {
        Some(u) => ok(json!({ "user": user_json(s, u, with_email) })),
        None => fail("user_not_found"),
    }
}

fn lookup_by_email(s: &State, p: &Params, with_email: bool) -> Response {
    let email = p.str("email").unwrap_or_default().to_lowercase();
    match s.users.iter().find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email))) {
        Some(u) => ok(json!({ "user": user_json(s, u, with_email) })),
        None => fail("users_not_found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    async fn call(
        app: &Router,
        method: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder()
            .method("POST")
            .uri(format!("/api/{method}"))
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let response = app
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).expect("request"))
            .await
            .expect("answer");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(app: &Router, uri: &str) -> Value {
        let req = Request::builder().uri(uri).body(Body::empty()).expect("request");
        let response = app.clone().oneshot(req).await.expect("answer");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    const T: Option<&str> = Some(FakeSlack::BOT_TOKEN);

    #[tokio::test]
    async fn messages_land_in_the_history() {
        let fake = FakeSlack::demo();
        let app = router(fake.clone());
        let (_, _, sent) =
            call(&app, "chat.postMessage", T, json!({"channel": "#general", "text": "hello"})).await;
        assert_eq!(sent["ok"], true, "{sent}");
        let general = fake.channel_id("general").expect("general");
        assert_eq!(sent["channel"], general);
        let history = call(&app, "conversations.history", T, json!({"channel": general})).await.2;
        assert_eq!(history["messages"][0]["text"], "hello");
        assert_eq!(history["messages"][0]["ts"], sent["ts"]);
        assert_eq!(fake.messages_in("#general").len(), 1);
    }

    #[tokio::test]
    async fn tokens_scopes_and_errors() {
        let fake = FakeSlack::demo();
        fake.add_token("xoxb-readonly", Some(&["users:read"]));
        let app = router(fake.clone());
        assert_eq!(call(&app, "auth.test", None, json!({})).await.2["error"], "not_authed");
        assert_eq!(call(&app, "auth.test", Some("xoxb-nope"), json!({})).await.2["error"], "invalid_auth");
        let denied =
            call(&app, "chat.postMessage", Some("xoxb-readonly"), json!({"channel": "general", "text": "x"}))
                .await
                .2;
        assert_eq!(denied["error"], "missing_scope");
        assert_eq!(denied["needed"], "chat:write");
        let lost = call(&app, "chat.postMessage", T, json!({"channel": "#nope", "text": "x"})).await.2;
        assert_eq!(lost["error"], "channel_not_found");
        // the token may also come as a form field
        let form = Request::builder()
            .method("POST")
            .uri("/api/auth.test")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={}", FakeSlack::BOT_TOKEN)))
            .expect("request");
        let response = app.clone().oneshot(form).await.expect("answer");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert_eq!(serde_json::from_slice::<Value>(&bytes).expect("json")["ok"], true);
        assert_eq!(
            get(&app, &format!("/api/users.list?token={}&limit=2", FakeSlack::BOT_TOKEN)).await["members"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[tokio::test]
    async fn pages_and_rate_limits() {
        let fake = FakeSlack::demo();
        let app = router(fake.clone());
        let first = call(&app, "conversations.list", T, json!({"limit": 2})).await.2;
        assert_eq!(first["channels"].as_array().map(Vec::len), Some(2));
        let cursor = first["response_metadata"]["next_cursor"].as_str().expect("cursor").to_owned();
        let second = call(&app, "conversations.list", T, json!({"limit": 10, "cursor": cursor})).await.2;
        // public channels: general, random, engineering, old-project
        assert_eq!(second["channels"].as_array().map(Vec::len), Some(2));
        assert_eq!(second["response_metadata"]["next_cursor"], "");

        fake.set_rate_limit("users.info", 1, std::time::Duration::from_secs(30));
        let alice = fake.user_id("alice").expect("alice");
        assert_eq!(call(&app, "users.info", T, json!({"user": alice})).await.2["ok"], true);
        let (status, headers, body) = call(&app, "users.info", T, json!({"user": alice})).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"], "ratelimited");
        assert!(headers.get("retry-after").is_some());
    }

    /// Validate a sample of each answer against the official Web API description.
    #[tokio::test]
    async fn answers_follow_the_web_api_description() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/specs/slack-slack_web_openapi_v2_without_examples.json"
        );
        let Ok(raw) = std::fs::read_to_string(path) else {
            eprintln!("skipped: {path} not found");
            return;
        };
        let spec: Value = serde_json::from_str(&raw).expect("spec JSON");
        let fake = FakeSlack::demo();
        let app = router(fake.clone());
        let general = fake.channel_id("general").expect("general");
        let alice = fake.user_id("alice").expect("alice");
        let sent = call(
            &app,
            "chat.postMessage",
            T,
            json!({"channel": general, "text": "hi", "blocks": [{"type": "divider"}]}),
        )
        .await
        .2;
        // The 2020 description types chat.update's `message.blocks` as an object (Slack sends an
        // array), so the update sample edits a message without blocks.
        let plain = call(&app, "chat.postMessage", T, json!({"channel": general, "text": "plain"})).await.2;
        let samples = [
            ("/auth.test", "get", call(&app, "auth.test", T, json!({})).await.2),
            ("/chat.postMessage", "post", sent.clone()),
            (
                "/chat.update",
                "post",
                call(
                    &app,
                    "chat.update",
                    T,
                    json!({"channel": general, "ts": plain["ts"], "text": "edited"}),
                )
                .await
                .2,
            ),
            (
                "/chat.postEphemeral",
                "post",
                call(
                    &app,
                    "chat.postEphemeral",
                    T,
                    json!({"channel": general, "user": alice, "text": "psst"}),
                )
                .await
                .2,
            ),
            (
                "/reactions.add",
                "post",
                call(
                    &app,
                    "reactions.add",
                    T,
                    json!({"channel": general, "timestamp": sent["ts"], "name": "tada"}),
                )
                .await
                .2,
            ),
            ("/conversations.list", "get", call(&app, "conversations.list", T, json!({"limit": 2})).await.2),
            (
                "/conversations.history",
                "get",
                call(&app, "conversations.history", T, json!({"channel": general})).await.2,
            ),
            (
                "/conversations.create",
                "post",
                call(&app, "conversations.create", T, json!({"name": "new-one"})).await.2,
            ),
            (
                "/conversations.setTopic",
                "post",
                call(&app, "conversations.setTopic", T, json!({"channel": general, "topic": "t"})).await.2,
            ),
            ("/users.list", "get", call(&app, "users.list", T, json!({"limit": 2})).await.2),
            ("/users.info", "get", call(&app, "users.info", T, json!({"user": alice})).await.2),
            (
                "/users.lookupByEmail",
                "get",
                call(&app, "users.lookupByEmail", T, json!({"email": "alice@example.com"})).await.2,
            ),
            (
                "/conversations.open",
                "post",
                call(&app, "conversations.open", T, json!({"users": alice})).await.2,
            ),
            (
                "/chat.postMessage",
                "default",
                call(&app, "chat.postMessage", T, json!({"channel": "#nope", "text": "x"})).await.2,
            ),
        ];
        let definitions = spec["definitions"].clone();
        let check = |schema: &Value, instance: &Value, what: &str| {
            let mut schema = schema.clone();
            schema["definitions"] = definitions.clone();
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .build(&schema)
                .expect("schema compiles");
            let errors: Vec<String> =
                validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{what}: {errors:?}\n{instance}");
        };
        for (path, verb, answer) in &samples {
            let op = &spec["paths"][path];
            let op = if *verb == "default" {
                &op["post"]["responses"]["default"]
            } else {
                &op[verb]["responses"]["200"]
            };
            check(&op["schema"], answer, path);
        }
        // Swagger 2 lists object alternatives as `items` (ignored for objects by JSON Schema):
        // check channels and users against their first alternative explicitly.
        let list = &samples[5].2;
        for channel in list["channels"].as_array().expect("channels") {
            check(&definitions["objs_conversation"]["items"][0], channel, "objs_conversation");
        }
        check(&definitions["objs_user"]["items"][0], &samples[10].2["user"], "objs_user");
    }
}
