//! The Slack Web API client: slack-morphism's client on our own transport
//! ([`crate::transport`]), with pacing and error classification.
//!
//! Why this shape: slack-morphism provides the client, the token type and the connector contract
//! (`Authorization: Bearer`, JSON bodies for writes, query strings for reads, the `ok: false`
//! envelope handling), which [`SlackTransport`] fulfils on our hyper client so that requests carry
//! the tool call's `traceparent`. slack-morphism's typed request/response models are used where they
//! are complete for our needs (`auth.test`); the other methods go through its generic
//! `http_get_uri` / `http_post_uri` (with each method's URL parsed once, not per call) with our own
//! serde request structs and raw JSON answers, because (a) Block Kit `blocks` must reach Slack as
//! the caller wrote them (round-tripping through the typed `SlackBlock` enum drops or rejects block
//! types and fields it does not know), and (b) tools return Slack's objects unchanged on request.
//!
//! TLS: the transport is built with an explicit rustls **aws-lc-rs** provider and the platform
//! verifier, so no process-wide crypto provider is needed and the `ring` provider is never
//! compiled in by this crate (slack-morphism's `hyper` feature would add it).
//!
//! Every method is one HTTP request: no retries and no time-outs here (the core executor wraps
//! whole tool calls in those). The client only *paces* (see [`crate::pacing`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use integration_core::IntegrationError;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slack_morphism::{SlackApiToken, SlackApiTokenValue};
use url::Url;

use crate::PROVIDER;
use crate::config::SlackConfig;
use crate::error;
use crate::pacing::Pacer;
use crate::transport::SlackTransport;

/// Largest page Slack serves for `conversations.list` and `users.list`.
pub const MAX_PAGE: u32 = 1000;

/// Client behaviour that is not part of a connection.
#[derive(Debug, Clone, Copy)]
pub struct SlackClientOptions {
    /// Pace calls by Slack's per-method tiers and messages by channel (default on).
    pub pacing: bool,
    /// Least time between two `chat.postMessage` calls to one channel (default 1 s).
    pub message_interval: Duration,
}

impl Default for SlackClientOptions {
    fn default() -> Self {
        Self { pacing: true, message_interval: Duration::from_secs(1) }
    }
}

/// One page of a cursor-paginated list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Page {
    /// The items of this page (`channels` or `members`).
    pub items: Vec<Value>,
    /// Slack's `response_metadata.next_cursor`; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// `chat.postMessage` / `chat.postEphemeral` / `chat.update` body.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageRequest {
    /// A conversation id (`C…`, `D…`) — names are resolved before.
    pub channel: String,
    /// The text, or the notification fallback when `blocks` are given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Block Kit blocks, passed through unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Value>,
    /// Reply in this thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
    /// Unfurl text links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfurl_links: Option<bool>,
    /// `chat.update`: the message to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// `chat.postEphemeral`: the user who sees the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Where `chat.postMessage` put a message: what the send tools answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    /// The conversation id the message went to.
    pub channel: String,
    /// The message's timestamp: its id within the conversation.
    pub ts: String,
}

/// `chat.postMessage`'s answer as read off the wire: `ok` and the two ids. The copy of the message
/// Slack echoes back (text, blocks, bot profile) is skipped by the parser instead of being built
/// into a `Value` tree nobody reads (9-13k instructions, 6-8 % of a send; docs/benchmarks.md,
/// thirteenth session). Missing ids are reported by [`PostAnswer::posted`], as for any other method.
#[derive(Debug, Deserialize)]
struct PostAnswer {
    ok: Option<bool>,
    channel: Option<String>,
    ts: Option<String>,
}

impl error::WebApiAnswer for PostAnswer {
    fn is_ok(&self) -> bool {
        self.ok == Some(true)
    }
}

impl PostAnswer {
    fn posted(self, method: &str) -> Result<PostedMessage, IntegrationError> {
        let missing = |name: &str| error::missing_field(method, name);
        Ok(PostedMessage {
            channel: self.channel.ok_or_else(|| missing("channel"))?,
            ts: self.ts.ok_or_else(|| missing("ts"))?,
        })
    }
}

/// A Slack Web API client bound to one workspace token. Cheap to clone; the clones share the
/// connection pool and the pacing state.
#[derive(Clone)]
pub struct SlackClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: slack_morphism::SlackClient<SlackTransport>,
    token: SlackApiToken,
    api_url: String,
    /// `{api_url}/{method}` parsed once per method, as slack-morphism would build it: its
    /// `http_get` / `http_post` parse the URL again on every call (~7k instructions, 4 % of a
    /// send-message; docs/benchmarks.md, eleventh session).
    method_urls: std::sync::RwLock<HashMap<&'static str, Url>>,
    pacer: Pacer,
    generation: AtomicU64,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient").field("api_url", &self.inner.api_url).finish_non_exhaustive()
    }
}

impl SlackClient {
    /// A client for `config`.
    pub fn new(config: SlackConfig) -> Result<Self, IntegrationError> {
        let connector = SlackTransport::new(&config.api_url)?.for_token(config.bot_token.expose_secret())?;
        let token = SlackApiToken::new(SlackApiTokenValue(config.bot_token.expose_secret().to_owned()));
        Ok(Self {
            inner: Arc::new(Inner {
                client: slack_morphism::SlackClient::new(connector),
                token,
                api_url: config.api_url,
                method_urls: std::sync::RwLock::default(),
                pacer: Pacer::new(config.options.pacing, config.options.message_interval),
                generation: AtomicU64::new(0),
            }),
        })
    }

    /// The Web API base URL.
    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    /// A counter bumped by every call that changes channels or memberships; cache keys of
    /// channel lists include it so a change is seen at once by this process.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Relaxed)
    }

    /// The URL of a Web API method (`{api_url}/{method}`, as the connector makes it).
    fn method_url(&self, method: &'static str) -> Result<Url, IntegrationError> {
        // A poisoned lock only means a panic elsewhere while inserting; the map is still whole.
        let known = self
            .inner
            .method_urls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(method)
            .cloned();
        if let Some(url) = known {
            return Ok(url);
        }
        let url: Url = format!("{}/{method}", self.inner.api_url).parse().map_err(|e| {
            IntegrationError::configuration(
                PROVIDER,
                format!("the Slack API URL does not make a method URL: {e}"),
            )
        })?;
        let mut urls = self.inner.method_urls.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        urls.insert(method, url.clone());
        Ok(url)
    }

    /// A read method's URL with its query: as slack-morphism's `http_get` makes it
    /// (`Url::parse_with_params`; `None` values left out), without parsing the URL again.
    fn get_url(
        &self,
        method: &'static str,
        params: &[(&'static str, Option<String>)],
    ) -> Result<Url, IntegrationError> {
        let mut url = self.method_url(method)?;
        url.query_pairs_mut().extend_pairs(params.iter().filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))));
        Ok(url)
    }

    fn changed(&self) {
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Call a read method with query parameters (`None` values are left out). Any Web API method
    /// can be reached this way; the answer is Slack's JSON object.
    pub async fn get(
        &self,
        method: &'static str,
        params: Vec<(&'static str, Option<String>)>,
    ) -> Result<Value, IntegrationError> {
        self.inner.pacer.method(method).await.map_err(|wait| paced_out(method, wait))?;
        let url = self.get_url(method, &params)?;
        let session = self.inner.client.open_session(&self.inner.token);
        let started = std::time::Instant::now();
        // The last two type parameters are unused by this method of slack-morphism's.
        let answer = session.http_session_api.http_get_uri::<Value, (), ()>(url, None).await;
        let status = answer.as_ref().ok().map(|_| 200);
        integration_core::observe_upstream(PROVIDER, method, method, status, started.elapsed());
        answer.map_err(|e| error::from_client_error(method, e)).and_then(|v| error::web_api_answer(method, v))
    }

    /// Call a write method with a JSON body. Any Web API method can be reached this way.
    pub async fn post<RQ: Serialize + Send + Sync>(
        &self,
        method: &'static str,
        body: &RQ,
    ) -> Result<Value, IntegrationError> {
        self.inner.pacer.method(method).await.map_err(|wait| paced_out(method, wait))?;
        self.post_unpaced(method, body).await
    }

    async fn post_unpaced<RQ: Serialize + Send + Sync, RS: DeserializeOwned + error::WebApiAnswer + Send>(
        &self,
        method: &'static str,
        body: &RQ,
    ) -> Result<RS, IntegrationError> {
        let url = self.method_url(method)?;
        let session = self.inner.client.open_session(&self.inner.token);
        let started = std::time::Instant::now();
        let answer = session.http_session_api.http_post_uri(url, body, None).await;
        let status = answer.as_ref().ok().map(|_| 200);
        integration_core::observe_upstream(PROVIDER, method, method, status, started.elapsed());
        answer.map_err(|e| error::from_client_error(method, e)).and_then(|v| error::web_api_answer(method, v))
    }

    /// `auth.test`: who the token authenticates as (slack-morphism's typed call).
    pub async fn auth_test(&self) -> Result<Value, IntegrationError> {
        self.inner.pacer.method("auth.test").await.map_err(|wait| paced_out("auth.test", wait))?;
        let session = self.inner.client.open_session(&self.inner.token);
        let me = session.auth_test().await.map_err(|e| error::from_client_error("auth.test", e))?;
        Ok(serde_json::json!({
            "user_id": me.user_id.0,
            "user": me.user,
            "team_id": me.team_id.0,
            "team": me.team,
            "bot_id": me.bot_id.map(|b| b.0),
            "url": me.url.0.to_string(),
        }))
    }

    /// `chat.postMessage`. Messages to one channel leave in call order, at most one per
    /// message interval: a caller over the budget waits its turn, inside a tool call only while
    /// that leaves the call as long again (else rate limited, nothing sent).
    pub async fn post_message(&self, request: &MessageRequest) -> Result<PostedMessage, IntegrationError> {
        let mut turn = self
            .inner
            .pacer
            .channel(&request.channel)
            .await
            .map_err(|wait| queued_out(&request.channel, wait))?;
        turn.sent_now();
        let result = self.post_unpaced::<_, PostAnswer>("chat.postMessage", request).await;
        if let Some(wait) = result.as_ref().err().and_then(IntegrationError::retry_after) {
            turn.pause(wait, self.inner.pacer.message_interval());
        }
        drop(turn);
        result?.posted("chat.postMessage")
    }

    /// `chat.update`.
    pub async fn update_message(&self, request: &MessageRequest) -> Result<Value, IntegrationError> {
        self.post("chat.update", request).await
    }

    /// `chat.postEphemeral`.
    pub async fn post_ephemeral(&self, request: &MessageRequest) -> Result<Value, IntegrationError> {
        self.post("chat.postEphemeral", request).await
    }

    /// `reactions.add`.
    pub async fn add_reaction(
        &self,
        channel: &str,
        timestamp: &str,
        name: &str,
    ) -> Result<Value, IntegrationError> {
        let body = serde_json::json!({ "channel": channel, "timestamp": timestamp, "name": name });
        self.post("reactions.add", &body).await
    }

    /// `conversations.list`: one page.
    pub async fn list_conversations(
        &self,
        types: Option<&str>,
        exclude_archived: bool,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page, IntegrationError> {
        let params = vec![
            ("types", types.map(str::to_owned)),
            ("exclude_archived", Some(exclude_archived.to_string())),
            ("limit", Some(limit.clamp(1, MAX_PAGE).to_string())),
            ("cursor", cursor.filter(|c| !c.is_empty()).map(str::to_owned)),
        ];
        let answer = self.get("conversations.list", params).await?;
        Ok(page(answer, "channels"))
    }

    /// `conversations.create`.
    pub async fn create_conversation(&self, name: &str, is_private: bool) -> Result<Value, IntegrationError> {
        let body = serde_json::json!({ "name": name, "is_private": is_private });
        let answer = self.post("conversations.create", &body).await;
        self.changed();
        answer
    }

    /// `conversations.archive`.
    pub async fn archive_conversation(&self, channel: &str) -> Result<Value, IntegrationError> {
        let answer = self.post("conversations.archive", &serde_json::json!({ "channel": channel })).await;
        self.changed();
        answer
    }

    /// `conversations.invite` (`users` joined with commas).
    pub async fn invite(&self, channel: &str, users: &[String]) -> Result<Value, IntegrationError> {
        let body = serde_json::json!({ "channel": channel, "users": users.join(",") });
        let answer = self.post("conversations.invite", &body).await;
        self.changed();
        answer
    }

    /// `conversations.setTopic`.
    pub async fn set_topic(&self, channel: &str, topic: &str) -> Result<Value, IntegrationError> {
        let body = serde_json::json!({ "channel": channel, "topic": topic });
        let answer = self.post("conversations.setTopic", &body).await;
        self.changed();
        answer
    }

    /// `conversations.open`: the direct-message conversation with `users` (one user: an IM).
    pub async fn open_conversation(&self, users: &[String]) -> Result<Value, IntegrationError> {
        let body = serde_json::json!({ "users": users.join(","), "return_im": true });
        self.post("conversations.open", &body).await
    }

    /// `conversations.history`: one page, newest first.
    pub async fn history(
        &self,
        channel: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Value, IntegrationError> {
        let params = vec![
            ("channel", Some(channel.to_owned())),
            ("limit", Some(limit.clamp(1, MAX_PAGE).to_string())),
            ("cursor", cursor.filter(|c| !c.is_empty()).map(str::to_owned)),
        ];
        self.get("conversations.history", params).await
    }

    /// `users.list`: one page.
    pub async fn list_users(&self, limit: u32, cursor: Option<&str>) -> Result<Page, IntegrationError> {
        let params = vec![
            ("limit", Some(limit.clamp(1, MAX_PAGE).to_string())),
            ("cursor", cursor.filter(|c| !c.is_empty()).map(str::to_owned)),
        ];
        let answer = self.get("users.list", params).await?;
        Ok(page(answer, "members"))
    }

    /// `users.info`.
    pub async fn user_info(&self, user: &str) -> Result<Value, IntegrationError> {
        let answer = self.get("users.info", vec![("user", Some(user.to_owned()))]).await?;
        Ok(answer.get("user").cloned().unwrap_or(Value::Null))
    }

    /// `users.lookupByEmail`.
    pub async fn lookup_user_by_email(&self, email: &str) -> Result<Value, IntegrationError> {
        let answer = self.get("users.lookupByEmail", vec![("email", Some(email.to_owned()))]).await?;
        Ok(answer.get("user").cloned().unwrap_or(Value::Null))
    }
}

fn page(mut answer: Value, field: &str) -> Page {
    let items = match answer.get_mut(field).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let next_cursor = answer
        .pointer("/response_metadata/next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    Page { items, next_cursor }
}

/// A call refused by the client's own tier pacing: Slack would answer 429 for it.
fn paced_out(method: &str, wait: std::time::Duration) -> IntegrationError {
    refused(
        "tier",
        wait,
        format!(
            "Slack allows no more '{method}' calls this minute (its rate-limit tier); retry in {} s",
            wait.as_secs().max(1)
        ),
    )
}

/// A message refused by the client's per-channel pacing: the messages queued before it for the
/// channel would hold it past the time its call can wait.
fn queued_out(channel: &str, wait: std::time::Duration) -> IntegrationError {
    refused(
        "channel",
        wait,
        format!(
            "not sent: messages queued for channel '{channel}' (Slack takes one per second per channel) \
             would outlast this call's deadline; retry in {} s",
            wait.as_secs().max(1)
        ),
    )
}

/// A call the client's pacing refused unsent: rate limited with the wait as `Retry-After`, and
/// counted as a pacing refusal of `scope`.
fn refused(scope: &'static str, wait: std::time::Duration, message: String) -> IntegrationError {
    integration_core::observe_pacing_refusal(PROVIDER, scope);
    IntegrationError::new(
        integration_core::ErrorKind::RateLimited { retry_after: Some(wait) },
        PROVIDER,
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WebApiAnswer;

    /// Slack's own example answer of `chat.postMessage` (its Web API OpenAPI description): the
    /// ids are read, the echoed message with its attachments is skipped; answers without `ok` or
    /// without an id are errors, as they were when the answer was a `Value`.
    #[test]
    fn post_message_answers_read_the_ids_and_skip_the_echoed_message() {
        let example = r#"{"channel": "C1H9RESGL", "message": {"attachments": [{"fallback": "This is an
            attachment's fallback", "id": 1, "text": "This is an attachment"}], "bot_id": "B19LU7CSY",
            "subtype": "bot_message", "text": "Here's a message for you", "ts": "1503435956.000247",
            "type": "message", "username": "ecto1"}, "ok": true, "ts": "1503435956.000247"}"#
            .replace('\n', " ");
        let answer: PostAnswer = serde_json::from_str(&example).expect("slack's example");
        assert!(answer.is_ok());
        let posted = answer.posted("chat.postMessage").expect("ids");
        assert_eq!(posted, PostedMessage { channel: "C1H9RESGL".into(), ts: "1503435956.000247".into() });

        // what slack-morphism hands back for a 200 that is not JSON
        let empty: PostAnswer = serde_json::from_str("{}").expect("empty");
        assert!(!empty.is_ok());
        let refused: PostAnswer = serde_json::from_str(r#"{"ok": false, "error": "x"}"#).expect("refused");
        assert!(!refused.is_ok());
        let no_ts: PostAnswer = serde_json::from_str(r#"{"ok": true, "channel": "C1"}"#).expect("no ts");
        let error = no_ts.posted("chat.postMessage").expect_err("no ts");
        assert_eq!(error.kind(), &integration_core::ErrorKind::Upstream { status: Some(200) });
        assert!(error.to_string().contains("without 'ts'"), "{error}");
    }

    #[test]
    fn pages_read_the_next_cursor() {
        let p = page(
            serde_json::json!({"ok": true, "channels": [{"id": "C1"}], "response_metadata": {"next_cursor": "abc"}}),
            "channels",
        );
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.next_cursor.as_deref(), Some("abc"));
        let last = page(
            serde_json::json!({"ok": true, "channels": [], "response_metadata": {"next_cursor": ""}}),
            "channels",
        );
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn method_urls_are_the_ones_slack_morphism_would_make() {
        use slack_morphism::SlackClientHttpApiUri;
        let config = SlackConfig::new("xoxb-t").with_api_url("http://127.0.0.1:9/api/").expect("url");
        let base = config.api_url.clone();
        let client = config.build().expect("client");
        let theirs = |method: &str, params: &[(&'static str, Option<String>)]| {
            let url: Url = format!("{base}/{method}").parse().expect("url");
            SlackClientHttpApiUri::create_url_with_params(url, &params.to_vec()).expect("url")
        };
        let first = [
            ("types", Some("public_channel,private_channel".to_owned())),
            ("cursor", None),
            ("q", Some("a b&c=d/é?#".to_owned())),
        ];
        assert_eq!(
            client.get_url("conversations.list", &first).expect("url"),
            theirs("conversations.list", &first)
        );
        // The cached method URL keeps no query of an earlier call.
        let second = [("cursor", Some("dXNlcjpVMDYx==".to_owned()))];
        assert_eq!(
            client.get_url("conversations.list", &second).expect("url"),
            theirs("conversations.list", &second)
        );
        assert_eq!(
            client.get_url("conversations.list", &[]).expect("url"),
            theirs("conversations.list", &[])
        );
        assert_eq!(
            client.method_url("chat.postMessage").expect("url"),
            format!("{base}/chat.postMessage").parse::<Url>().expect("url")
        );
    }

    #[test]
    fn debug_hides_the_token() {
        let client = SlackConfig::new("xoxb-very-secret").build().expect("client");
        assert!(!format!("{client:?}").contains("very-secret"));
    }
}
