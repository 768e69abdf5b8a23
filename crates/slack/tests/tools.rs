//! Every tool end to end through the core executor against the fake Slack.

use std::sync::Arc;
use std::time::Duration;

use integration_core::{
    Connection, ErrorKind, Executor, ExecutorConfig, InMemoryConnections, Integration, IntegrationError,
    Method, Registry, ToolCall, ToolOutcome,
};
use integration_slack::{Slack, SlackOptions};
use integration_testkit::cache::RecordingCache;
use integration_testkit::slack::{FakeSlack, router};
use integration_testkit::{FakeServer, Fault};
use serde_json::{Value, json};

struct Env {
    fake: FakeSlack,
    server: FakeServer,
    executor: Executor,
    slack: Slack,
}

fn connection(server: &FakeServer, token: &str) -> Connection {
    Connection::new("slack", "slack", json!({ "api_url": format!("{}/api/", server.base_url()) }))
        .with_secret("bot_token", token)
}

async fn env_with(fake: FakeSlack, token: &str, options: SlackOptions) -> Env {
    let server = FakeServer::start(router(fake.clone())).await.expect("fake slack");
    let slack = Slack::with_options(options);
    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(slack.clone())).expect("slack registers");
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(connection(&server, token));
    let config = ExecutorConfig {
        timeout: Duration::from_secs(30),
        max_retry_attempts: 3,
        rate_limit_per_minute: 10_000,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ExecutorConfig::default()
    };
    let executor = Executor::new(registry, connections, config);
    Env { fake, server, executor, slack }
}

async fn env() -> Env {
    env_with(FakeSlack::demo(), FakeSlack::BOT_TOKEN, SlackOptions::default()).await
}

impl Env {
    async fn run(&self, tool: &str, params: Value) -> ToolOutcome {
        self.executor.execute(ToolCall::new(tool, params)).await
    }

    async fn ok(&self, tool: &str, params: Value) -> Value {
        let outcome = self.run(tool, params.clone()).await;
        outcome.result.unwrap_or_else(|e| panic!("{tool} {params}: {e} ({:?}) {:?}", e.kind(), e.details()))
    }

    async fn err(&self, tool: &str, params: Value) -> IntegrationError {
        match self.run(tool, params.clone()).await.result {
            Ok(v) => panic!("{tool} {params} succeeded: {v}"),
            Err(e) => e,
        }
    }

    fn id(&self, channel: &str) -> String {
        self.fake.channel_id(channel).expect("channel")
    }

    /// An executor over the same tools whose connection turns the client's pacing off
    /// (`"pacing": false`), with default settings.
    fn unpaced_executor(&self) -> Executor {
        let mut unpaced = connection(&self.server, FakeSlack::BOT_TOKEN);
        unpaced.config["pacing"] = json!(false);
        let connections = Arc::new(InMemoryConnections::new());
        connections.insert(unpaced);
        Executor::new(self.executor.registry().clone(), connections, ExecutorConfig::default())
    }
}

fn texts(fake: &FakeSlack, channel: &str) -> Vec<String> {
    fake.messages_in(channel).into_iter().map(|m| m.text.unwrap_or_default()).collect()
}

#[tokio::test]
async fn tools_have_routes_and_hints() {
    let slack = Slack::new();
    let tools = slack.tools();
    let by_name = |n: &str| tools.iter().find(|t| t.spec().name == n).map(|t| t.spec().clone()).expect(n);
    for tool in &tools {
        let route = tool.spec().route.clone().expect("every slack tool has a route");
        assert!(route.path.starts_with("/api/integrations/slack/"), "{}", route.path);
        assert_ne!(route.path, "/api/integrations/slack/webhook");
    }
    let send = by_name("slack_send_message");
    assert_eq!(
        send.route.as_ref().map(|r| (r.method, r.path.as_str())),
        Some((Method::Post, "/api/integrations/slack/message"))
    );
    assert!(!send.hints.idempotent && !send.hints.read_only);
    assert_eq!(
        by_name("slack_list_channels").route.map(|r| (r.method, r.path)),
        Some((Method::Get, "/api/integrations/slack/channels".into()))
    );
    assert_eq!(
        by_name("slack_list_users").route.map(|r| (r.method, r.path)),
        Some((Method::Get, "/api/integrations/slack/users".into()))
    );
    assert!(by_name("slack_add_reaction").hints.idempotent);
    assert!(by_name("slack_archive_channel").hints.destructive);
    assert!(by_name("slack_get_user").hints.read_only);
    assert!(!by_name("slack_create_channel").hints.idempotent);
    let schema = &send.parameters;
    assert_eq!(schema["required"], json!(["channel"]));
    for p in ["channel", "text", "blocks", "thread_ts", "unfurl_links"] {
        assert!(schema["properties"].get(p).is_some(), "send_message lacks {p}");
    }
}

#[tokio::test]
async fn check_runs_auth_test() {
    let env = env().await;
    let health = env.slack.check(&connection(&env.server, FakeSlack::BOT_TOKEN)).await.expect("healthy");
    assert_eq!(health.identity.as_deref(), Some("integrations-bot @ Fake Workspace"));
    assert_eq!(health.details["user_id"], env.fake.bot_user_id());
    let bad = env.slack.check(&connection(&env.server, "xoxb-wrong")).await.expect_err("bad token");
    assert_eq!(bad.kind(), &ErrorKind::Authentication);
    assert!(!bad.message().contains("xoxb-wrong"));
}

#[tokio::test]
async fn send_message_by_name_and_id_lands_in_history() {
    let env = env().await;
    let general = env.id("general");
    let sent = env.ok("slack_send_message", json!({"channel": "#general", "text": "Deployed v1.2"})).await;
    assert_eq!(sent["channel"], general);
    let ts = sent["ts"].as_str().expect("ts").to_owned();
    let by_id = env
        .ok(
            "slack_send_message",
            json!({
                "channel": general, "text": "fallback", "thread_ts": ts, "unfurl_links": false,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Done*"}}]
            }),
        )
        .await;
    assert_eq!(by_id["thread_ts"], ts);
    let messages = env.fake.messages_in(&general);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].ts, ts);
    assert_eq!(messages[1].thread_ts.as_deref(), Some(ts.as_str()));
    assert_eq!(messages[1].unfurl_links, Some(false));
    assert_eq!(
        messages[1].blocks,
        Some(json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*Done*"}}]))
    );

    // the message is in conversations.history, through the history tool too
    let history = env.ok("slack_list_messages", json!({"channel": "general"})).await;
    assert_eq!(history["messages"][0]["text"], "Deployed v1.2");
}

#[tokio::test]
async fn unknown_channels_are_not_found() {
    let env = env().await;
    let by_name = env.err("slack_send_message", json!({"channel": "#genral", "text": "x"})).await;
    assert_eq!(by_name.kind(), &ErrorKind::NotFound);
    assert_eq!(by_name.details().map(|d| d["did_you_mean"][0].clone()), Some(json!("general")));
    let by_id = env.err("slack_send_message", json!({"channel": "C0NOSUCH1", "text": "x"})).await;
    assert_eq!(by_id.kind(), &ErrorKind::NotFound);
    assert_eq!(by_id.details().map(|d| d["error"].clone()), Some(json!("channel_not_found")));
    assert!(!by_id.retryable());
    assert_eq!(env.server.calls_to("/api/chat.postMessage"), 1, "not retried");
}

#[tokio::test]
async fn bad_token_inactive_account_and_missing_scope() {
    let fake = FakeSlack::demo();
    fake.add_token("xoxb-read-only", Some(&["users:read", "channels:read"]));
    fake.add_token("xoxb-gone", None);
    fake.deactivate_token("xoxb-gone");

    let env = env_with(fake.clone(), "xoxb-wrong", SlackOptions::default()).await;
    let err = env.err("slack_send_message", json!({"channel": "C0000001", "text": "x"})).await;
    assert_eq!(err.kind(), &ErrorKind::Authentication);
    assert_eq!(env.server.calls_to("/api/chat.postMessage"), 1, "authentication errors are not retried");

    let env = env_with(fake.clone(), "xoxb-gone", SlackOptions::default()).await;
    let err = env.err("slack_list_users", json!({})).await;
    assert_eq!(err.kind(), &ErrorKind::Authentication);
    assert_eq!(err.details().map(|d| d["error"].clone()), Some(json!("account_inactive")));

    let env = env_with(fake, "xoxb-read-only", SlackOptions::default()).await;
    let err = env.err("slack_send_message", json!({"channel": "#general", "text": "x"})).await;
    assert_eq!(err.kind(), &ErrorKind::Permission);
    assert!(err.message().contains("chat:write"), "{}", err.message());
    assert_eq!(err.details().map(|d| d["needed"].clone()), Some(json!("chat:write")));
    // without users:read.email the lookup names that scope
    let err = env.err("slack_find_user_by_email", json!({"email": "alice@example.com"})).await;
    assert_eq!(err.details().map(|d| d["needed"].clone()), Some(json!("users:read.email")));
}

#[tokio::test]
async fn invalid_messages_are_invalid_input() {
    let env = env().await;
    // schema: a block needs a string type
    let err = env.err("slack_send_message", json!({"channel": "#general", "blocks": [{"text": "x"}]})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err =
        env.err("slack_send_message", json!({"channel": "#general", "blocks": {"type": "section"}})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    // no content at all
    let err = env.err("slack_send_message", json!({"channel": "#general"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(env.server.calls_to("/api/chat.postMessage"), 0, "refused before reaching slack");
    // slack's own refusals
    let err =
        env.err("slack_send_message", json!({"channel": "#general", "blocks": [{"type": "bogus"}]})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(err.details().map(|d| d["error"].clone()), Some(json!("invalid_blocks")));
    let err = env.err("slack_send_message", json!({"channel": "#general", "text": "x".repeat(40_001)})).await;
    assert_eq!(err.details().map(|d| d["error"].clone()), Some(json!("msg_too_long")));
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn update_ephemeral_and_reactions() {
    let env = env().await;
    let sent =
        env.ok("slack_send_message", json!({"channel": "#engineering", "text": "build started"})).await;
    let ts = sent["ts"].clone();
    let updated = env
        .ok("slack_update_message", json!({"channel": "#engineering", "ts": ts, "text": "build passed"}))
        .await;
    assert_eq!(updated["text"], "build passed");
    assert_eq!(texts(&env.fake, "engineering"), vec!["build passed"]);
    let err = env
        .err(
            "slack_update_message",
            json!({"channel": "#engineering", "ts": "1700000000.999999", "text": "x"}),
        )
        .await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);

    let eph = env
        .ok(
            "slack_post_ephemeral",
            json!({"channel": "#engineering", "user": "bob@example.com", "text": "only you"}),
        )
        .await;
    assert_eq!(eph["user"], env.fake.user_id("bob").expect("bob"));
    assert!(eph["message_ts"].is_string());
    assert_eq!(env.fake.ephemeral_messages().len(), 1);
    let err = env
        .err(
            "slack_post_ephemeral",
            json!({"channel": "#engineering", "user": "carol@example.com", "text": "x"}),
        )
        .await;
    assert_eq!(err.kind(), &ErrorKind::Permission, "carol is not in #engineering");

    let first = env
        .ok(
            "slack_add_reaction",
            json!({"channel": "#engineering", "timestamp": ts, "name": ":white_check_mark:"}),
        )
        .await;
    assert_eq!(first["already_reacted"], false);
    let again = env
        .ok(
            "slack_add_reaction",
            json!({"channel": "#engineering", "timestamp": ts, "name": "white_check_mark"}),
        )
        .await;
    assert_eq!(again["already_reacted"], true, "idempotent");
    let message = &env.fake.messages_in("engineering")[0];
    assert_eq!(message.reactions.get("white_check_mark").map(Vec::len), Some(1));
}

#[tokio::test]
async fn list_channels_follows_cursors_and_caches() {
    let fake = FakeSlack::demo();
    for i in 0..7 {
        fake.add_channel(&format!("team-{i}"), false);
    }
    fake.set_max_page(3);
    let env = env_with(fake, FakeSlack::BOT_TOKEN, SlackOptions::default()).await;
    // 4 demo public channels + 7: Slack serves 3 a page, the tool follows next_cursor
    let all = env.ok("slack_list_channels", json!({})).await;
    let names: Vec<&str> =
        all["channels"].as_array().expect("channels").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names.len(), 11, "{names:?}");
    assert!(names.contains(&"old-project") && !names.contains(&"leads"));
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(env.server.calls_to("/api/conversations.list"), 4);

    // the same call again is answered from the cache
    env.ok("slack_list_channels", json!({})).await;
    assert_eq!(env.server.calls_to("/api/conversations.list"), 4);
    // ... unless the caller opts out
    let mut fresh = ToolCall::new("slack_list_channels", json!({}));
    fresh.use_cache = false;
    assert!(env.executor.execute(fresh).await.result.is_ok());
    assert_eq!(env.server.calls_to("/api/conversations.list"), 8);

    // a page of 5, then the rest from its cursor
    let first = env.ok("slack_list_channels", json!({"limit": 5, "exclude_archived": true})).await;
    assert_eq!(first["channels"].as_array().map(Vec::len), Some(5));
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    let rest = env.ok("slack_list_channels", json!({"cursor": cursor, "exclude_archived": true})).await;
    assert_eq!(rest["channels"].as_array().map(Vec::len), Some(5), "10 unarchived public channels");

    let private = env.ok("slack_list_channels", json!({"types": "private_channel"})).await;
    assert_eq!(private["channels"][0]["name"], "leads");
    assert_eq!(private["channels"][0]["is_private"], true);
    let err = env.err("slack_list_channels", json!({"types": ["public_channel", "nonsense"]})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn channel_management() {
    let env = env().await;
    let before = env.ok("slack_list_channels", json!({})).await;
    let created = env.ok("slack_create_channel", json!({"name": "#incident-42"})).await;
    let id = created["channel"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created["channel"]["name"], "incident-42");
    // the list cache does not hide the new channel
    let after = env.ok("slack_list_channels", json!({})).await;
    assert_eq!(
        after["channels"].as_array().map(Vec::len),
        before["channels"].as_array().map(|c| c.len() + 1)
    );
    let err = env.err("slack_create_channel", json!({"name": "incident-42"})).await;
    assert_eq!(err.kind(), &ErrorKind::Conflict);
    let err = env.err("slack_create_channel", json!({"name": "Bad Name"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);

    let invited = env.ok("slack_invite_to_channel", json!({"channel": "#incident-42", "users": ["alice@example.com", env.fake.user_id("bob").expect("bob")]})).await;
    assert_eq!(invited["already_in_channel"], false);
    assert_eq!(env.fake.members_of(&id).len(), 3, "bot, alice, bob");
    let again = env.ok("slack_invite_to_channel", json!({"channel": id, "users": "alice@example.com"})).await;
    assert_eq!(again["already_in_channel"], true);
    let err = env.err("slack_invite_to_channel", json!({"channel": id, "users": "nobody@example.com"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);

    let topic =
        env.ok("slack_set_channel_topic", json!({"channel": "#incident-42", "topic": "API latency"})).await;
    assert_eq!(topic["channel"]["topic"], "API latency");
    assert_eq!(env.fake.topic_of(&id).as_deref(), Some("API latency"));

    let archived = env.ok("slack_archive_channel", json!({"channel": id})).await;
    assert_eq!(archived["already_archived"], false);
    assert_eq!(env.fake.is_archived(&id), Some(true));
    let again = env.ok("slack_archive_channel", json!({"channel": id})).await;
    assert_eq!(again["already_archived"], true);
    let err = env.err("slack_archive_channel", json!({"channel": "#general"})).await;
    assert_eq!(err.kind(), &ErrorKind::Permission);
    let err = env.err("slack_send_message", json!({"channel": id, "text": "x"})).await;
    assert_eq!(err.kind(), &ErrorKind::Conflict, "is_archived");
}

#[tokio::test]
async fn users() {
    let env = env().await;
    let alice = env.fake.user_id("alice").expect("alice");
    let all = env.ok("slack_list_users", json!({})).await;
    assert_eq!(all["users"].as_array().map(Vec::len), Some(4));
    let humans = env.ok("slack_list_users", json!({"include_bots": false, "limit": 2})).await;
    assert_eq!(
        humans["users"].as_array().map(Vec::len),
        Some(1),
        "the first page of 2 holds the bot and alice"
    );
    assert!(humans["next_cursor"].is_string());

    let got = env.ok("slack_get_user", json!({"user_id": alice})).await;
    assert_eq!(got["user"]["real_name"], "Alice Archer");
    assert_eq!(got["user"]["email"], "alice@example.com");
    let err = env.err("slack_get_user", json!({"user_id": "U0NOSUCH1"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let err = env.err("slack_get_user", json!({"user_id": "../x"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);

    let found = env.ok("slack_find_user_by_email", json!({"email": "Bob@Example.com"})).await;
    assert_eq!(found["user"]["name"], "bob");
    let err = env.err("slack_find_user_by_email", json!({"email": "nobody@example.com"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn notify_user_by_id_and_email_opens_a_dm() {
    let env = env().await;
    let carol = env.fake.user_id("carol").expect("carol");
    let by_email = env
        .ok("slack_notify_user", json!({"user": "carol@example.com", "text": "Your report is ready"}))
        .await;
    let dm = env.fake.dm_channel(&carol).expect("dm opened");
    assert_eq!(by_email["channel"], dm);
    assert_eq!(by_email["user"], carol);
    let by_id = env.ok("slack_notify_user", json!({"user": carol, "blocks": [{"type": "divider"}]})).await;
    assert_eq!(by_id["channel"], dm, "the same DM");
    assert_eq!(env.fake.messages_in(&dm).len(), 2);
    assert_eq!(texts(&env.fake, &dm)[0], "Your report is ready");
    let err = env.err("slack_notify_user", json!({"user": "nobody@example.com", "text": "x"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let err = env.err("slack_notify_user", json!({"user": "just-a-name", "text": "x"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_429_storm_on_post_message_delivers_everything_in_order() {
    let env = env().await;
    let general = env.id("general");
    env.server.faults().push(
        Fault::status(429)
            .header("retry-after", "1")
            .body(r#"{"ok":false,"error":"ratelimited"}"#)
            .times(3)
            .on_path("/api/chat.postMessage"),
    );
    let mut attempts = Vec::new();
    for i in 0..5 {
        let outcome =
            env.run("slack_send_message", json!({"channel": general, "text": format!("step {i}")})).await;
        assert!(outcome.result.is_ok(), "step {i}: {:?}", outcome.result);
        attempts.push(outcome.attempts);
    }
    assert_eq!(attempts, vec![4, 1, 1, 1, 1], "three 429s, retried after Retry-After");
    assert_eq!(texts(&env.fake, &general), (0..5).map(|i| format!("step {i}")).collect::<Vec<_>>());
    // the retries waited for Retry-After: the four attempts of the first message span >= 3 s
    let posts: Vec<_> =
        env.server.requests().into_iter().filter(|r| r.path == "/api/chat.postMessage").collect();
    assert_eq!(posts.len(), 8);
    for pair in posts[..4].windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(950), "{:?}", pair[1].at - pair[0].at);
    }
}

#[tokio::test]
async fn the_fakes_own_rate_limit_is_honoured() {
    let fake = FakeSlack::demo();
    fake.set_rate_limit("users.info", 2, Duration::from_secs(1));
    let env = env_with(fake, FakeSlack::BOT_TOKEN, SlackOptions::default()).await;
    let alice = env.fake.user_id("alice").expect("alice");
    for _ in 0..4 {
        env.ok("slack_get_user", json!({"user_id": alice})).await;
    }
    assert!(env.server.calls_to("/api/users.info") > 4, "some calls were refused with 429 and retried");
}

#[tokio::test]
async fn messages_to_one_channel_are_paced_one_per_second() {
    let env = Arc::new(env().await);
    let general = env.id("general");
    let mut tasks = Vec::new();
    for i in 0..3 {
        let env = env.clone();
        let general = general.clone();
        tasks.push(tokio::spawn(async move {
            env.ok("slack_send_message", json!({"channel": general, "text": format!("m{i}")})).await
        }));
    }
    // another channel is not held up by #general's queue
    let other = env.ok("slack_send_message", json!({"channel": "#random", "text": "elsewhere"})).await;
    assert!(other["ts"].is_string());
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(env.fake.messages_in(&general).len(), 3);
    let posts: Vec<_> =
        env.server.requests().into_iter().filter(|r| r.path == "/api/chat.postMessage").collect();
    assert_eq!(posts.len(), 4);
    let random_ts = env.fake.messages_in("random")[0].ts.clone();
    let general_ts: Vec<String> = env.fake.messages_in(&general).into_iter().map(|m| m.ts).collect();
    // arrival order in the fake: find #random's request by its place among the message timestamps
    let mut all_ts = general_ts.clone();
    all_ts.push(random_ts.clone());
    all_ts.sort();
    let random_index = all_ts.iter().position(|t| *t == random_ts).expect("random");
    let general_posts: Vec<_> =
        posts.iter().enumerate().filter(|(i, _)| *i != random_index).map(|(_, r)| r.at).collect();
    for pair in general_posts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(950), "messages to one channel {gap:?} apart");
    }
    assert!(random_index < 2, "#random went out without waiting for #general's queue");
}

/// Three messages to `channel` sent at once through `executor`; their results in sending order.
async fn send_three(executor: Executor, channel: &str) -> Vec<Result<Value, IntegrationError>> {
    let executor = Arc::new(executor);
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let executor = executor.clone();
            let params = json!({"channel": channel, "text": format!("m{i}")});
            tokio::spawn(
                async move { executor.execute(ToolCall::new("slack_send_message", params)).await.result },
            )
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

/// With `pacing: false` on the connection (something else keeps to Slack's limits), messages to one
/// channel go out together instead of a second apart.
#[tokio::test]
async fn a_connection_without_pacing_sends_at_once() {
    let env = env().await;
    let executor = env.unpaced_executor();
    let general = env.id("general");
    for result in send_three(executor, &general).await {
        result.expect("sent");
    }
    assert_eq!(env.fake.messages_in(&general).len(), 3);
    // paced, the third would reach Slack two seconds after the first
    let posts: Vec<_> = env
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/chat.postMessage")
        .map(|r| r.at)
        .collect();
    assert_eq!(posts.len(), 3);
    let spread = posts.iter().max().zip(posts.iter().min()).map(|(last, first)| *last - *first);
    assert!(spread.is_some_and(|s| s < Duration::from_secs(1)), "{spread:?}");
}

/// A channel name found once is read back from its own cache entry: the next messages to it do
/// not read the whole channel directory again. Names that do not exist are not cached.
#[tokio::test]
async fn a_channel_name_is_resolved_from_its_own_cache_entry() {
    let env = env().await;
    let cache = Arc::new(RecordingCache::default());
    let executor = env.unpaced_executor().with_cache(cache.clone());
    let send = |channel: &'static str| {
        executor.execute(ToolCall::new("slack_send_message", json!({"channel": channel, "text": "hi"})))
    };
    send("#general").await.result.expect("first");
    let first = cache.reads("channel-directory");
    assert!(first >= 1, "the first message reads the directory");
    send("#General").await.result.expect("second");
    send("general").await.result.expect("third");
    assert_eq!(cache.reads("channel-directory"), first, "later messages do not: {:?}", cache.log());
    assert_eq!(cache.reads("channel-id:general"), 3);
    assert_eq!(env.server.calls_to("/api/conversations.list"), 1);
    assert_eq!(env.fake.messages_in(&env.id("general")).len(), 3);

    let missing = send("#genral").await.result.expect_err("no such channel");
    assert_eq!(missing.kind(), &ErrorKind::NotFound);
    assert!(!cache.written("channel-id:genral"), "{:?}", cache.log());
}

/// Messages by channel name that miss the directory together fetch it once: the others wait for it.
#[tokio::test]
async fn concurrent_directory_misses_fetch_it_once() {
    let env = env().await;
    let executor = env.unpaced_executor();
    env.server.faults().push(Fault::delay(Duration::from_millis(100)).times(1));
    let send = |channel: &'static str| {
        executor.execute(ToolCall::new("slack_send_message", json!({"channel": channel, "text": "hi"})))
    };
    let (a, b, c, d) = tokio::join!(send("#general"), send("#random"), send("engineering"), send("#general"));
    for outcome in [a, b, c, d] {
        outcome.result.expect("sent");
    }
    assert_eq!(env.server.calls_to("/api/conversations.list"), 1, "one fetch for the four misses");
    assert_eq!(env.fake.messages_in(&env.id("general")).len(), 2);
}

/// A message whose turn in the channel's queue would come later than halfway to the call's
/// deadline is refused at once as rate limited (nothing sent), not left to time out with an
/// unknown effect, and counted as a pacing refusal.
#[test]
fn a_message_queued_past_half_its_deadline_is_refused_unsent() {
    let recorder = PacingRefusals::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let env = env().await;
            let config = ExecutorConfig {
                timeout: Duration::from_millis(1500),
                max_retry_attempts: 0,
                rate_limit_per_minute: 10_000,
                ..ExecutorConfig::default()
            };
            let executor =
                Executor::new(env.executor.registry().clone(), env.executor.connections().clone(), config);
            let general = env.id("general");
            let results = send_three(executor, &general).await;
            let mut sent = 0;
            for result in results {
                match result {
                    Ok(_) => sent += 1,
                    Err(e) => {
                        // the next turn is a second away, past the 0.75 s this call may wait
                        assert!(matches!(e.kind(), ErrorKind::RateLimited { .. }), "{e}");
                        let wait = e.retry_after().expect("a Retry-After");
                        assert!(
                            wait > Duration::from_millis(750) && wait <= Duration::from_secs(2),
                            "{wait:?}"
                        );
                        assert_eq!(e.effect(), integration_core::Effect::None, "{e}");
                        assert!(e.to_string().contains("not sent"), "{e}");
                    }
                }
            }
            assert_eq!(sent, 1, "one message goes at once, the others are refused");
            assert_eq!(env.fake.messages_in(&general).len(), 1, "the refused messages were not posted");
        });
    });
    assert_eq!(recorder.count("channel"), 2, "both refusals are counted");
    assert_eq!(recorder.count("tier"), 0);
}

/// Counts `integration_upstream_pacing_refusals_total` by `scope`; every other metric is dropped.
#[derive(Default)]
struct PacingRefusals(std::sync::Mutex<Vec<(String, Arc<std::sync::atomic::AtomicU64>)>>);

impl PacingRefusals {
    fn count(&self, scope: &str) -> u64 {
        let counters = self.0.lock().expect("lock");
        counters
            .iter()
            .filter(|(s, _)| s == scope)
            .map(|(_, c)| c.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    }
}

impl metrics::Recorder for PacingRefusals {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        if key.name() != "integration_upstream_pacing_refusals_total" {
            return metrics::Counter::noop();
        }
        let scope =
            key.labels().find(|l| l.key() == "scope").map(|l| l.value().to_owned()).unwrap_or_default();
        let mut counters = self.0.lock().expect("lock");
        let counter = match counters.iter().find(|(s, _)| *s == scope) {
            Some((_, c)) => c.clone(),
            None => {
                let c = Arc::new(std::sync::atomic::AtomicU64::new(0));
                counters.push((scope, c.clone()));
                c
            }
        };
        metrics::Counter::from_arc(counter)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[tokio::test]
async fn connect_failures_are_network_errors() {
    let env = env().await;
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(
        Connection::new("slack", "slack", json!({"api_url": "http://127.0.0.1:1/api/"}))
            .with_secret("bot_token", "xoxb-x"),
    );
    let config = ExecutorConfig {
        max_retry_attempts: 1,
        backoff_base: Duration::from_millis(1),
        ..ExecutorConfig::default()
    };
    let executor = Executor::new(env.executor.registry().clone(), connections, config);
    let outcome = executor
        .execute(ToolCall::new("slack_send_message", json!({"channel": "C0000001", "text": "x"})))
        .await;
    let err = outcome.result.expect_err("nothing listens on port 1");
    assert_eq!(err.kind(), &ErrorKind::Network);
    assert_eq!(err.effect(), integration_core::Effect::None, "connect failures never reached slack");
    assert_eq!(outcome.attempts, 2, "retried although sending is not idempotent");

    let missing = Arc::new(InMemoryConnections::new());
    missing.insert(Connection::new("slack", "slack", json!({})));
    let executor = Executor::new(env.executor.registry().clone(), missing, ExecutorConfig::default());
    let err =
        executor.execute(ToolCall::new("slack_list_users", json!({}))).await.result.expect_err("no token");
    assert_eq!(err.kind(), &ErrorKind::Configuration);
}

#[tokio::test]
async fn answers_that_are_not_json_or_cut_off() {
    let env = env().await;
    let general = env.id("general");
    let alice = env.fake.user_id("alice").expect("alice");
    // a 200 HTML page (slack-morphism hands back `{}`) is not a success, and a send is not repeated
    env.server.faults().push(
        Fault::status(200)
            .content_type("text/html")
            .body("<html>sign in</html>")
            .on_path("/api/chat.postMessage"),
    );
    let outcome = env.run("slack_send_message", json!({"channel": general, "text": "html"})).await;
    let err = outcome.result.expect_err("not a web api answer");
    assert_eq!(err.kind(), &ErrorKind::Upstream { status: Some(200) }, "{err}");
    assert_eq!(outcome.attempts, 1);
    // a body cut off on the wire: a network error (it was a 500 internal), a read is retried
    let answer = r#"{"ok":true,"user":{"id":"U1","name":"alice"}}"#;
    env.server.faults().push(Fault::truncated(200, answer, 10).on_path("/api/users.info"));
    let outcome = env.run("slack_get_user", json!({"user_id": alice})).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(outcome.attempts, 2);
    env.server.faults().push(Fault::truncated(200, answer, 10).on_path("/api/chat.postMessage"));
    let outcome = env.run("slack_send_message", json!({"channel": general, "text": "cut"})).await;
    let err = outcome.result.expect_err("cut off");
    assert_eq!(err.kind(), &ErrorKind::Network, "{err}");
    assert_eq!(outcome.attempts, 1, "a send that may have happened is not repeated");
    assert!(texts(&env.fake, &general).is_empty(), "the fault answered before the fake");
}
