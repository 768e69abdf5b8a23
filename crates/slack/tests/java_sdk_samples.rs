//! The provider's check and tools against the Web API answers recorded by Slack's Java SDK
//! (`tests/fixtures/SOURCE`), served by a plain HTTP server on the paths our client calls. The fake
//! Slack of the testkit writes the shapes we expect; these are the shapes Slack's SDK records, with
//! every member it knows of.
//!
//! The samples are field supersets with placeholder values, and they say `"ok": false` with an
//! empty `"error"`. Served unchanged, each must be a refusal (an `ok: false` answer is never a
//! success, whatever else it holds). Served as a success (`ok` true and the `error` member that
//! Slack sends only on failure removed, every other member as recorded), the tools must read the
//! members that are there: placeholder ids, and empty strings as absent.
//!
//! The server is the testkit's harness; each recorded answer is a fault with that body on the
//! method's path. Anything else reaches the fake Slack behind it, which does not know the
//! connection's token and answers `invalid_auth`: a call to a method without a recorded answer
//! fails the test instead of being answered by the fake.

use integration_core::{Connection, ErrorKind, ExecutorConfig, Integration, IntegrationError, ToolCall};
use integration_slack::Slack;
use integration_testkit::slack::{FakeSlack, router};
use integration_testkit::{FakeServer, Fault};
use serde_json::{Value, json};

const AUTH_TEST: &str = include_str!("fixtures/api_auth.test.json");
const CONVERSATIONS_INFO: &str = include_str!("fixtures/api_conversations.info.json");
const LOOKUP_BY_EMAIL: &str = include_str!("fixtures/api_users.lookupByEmail.json");

/// A token the fake Slack behind the recorded answers does not know.
const TOKEN: &str = "xoxb-recorded-samples";

/// The sample as a success: `ok` true, the empty `error` member (sent by Slack only with
/// `ok: false`) removed, every other member as recorded.
fn as_success(sample: &str) -> String {
    let mut answer: Value = serde_json::from_str(sample).expect("sample is JSON");
    let members = answer.as_object_mut().expect("sample is an object");
    assert_eq!(members.remove("error"), Some(json!("")), "the sample's error member");
    assert_eq!(members.insert("ok".to_owned(), json!(true)), Some(json!(false)), "the sample's ok member");
    answer.to_string()
}

/// A server answering each `(method, body)` on `/api/{method}` (any HTTP method, any query).
async fn serve(answers: &[(&str, String)]) -> (FakeServer, Connection) {
    let server = FakeServer::start(router(FakeSlack::demo())).await.expect("server starts");
    for (method, body) in answers {
        server
            .faults()
            .push(Fault::status(200).body(body).on_path(&format!("/api/{method}")).times(u32::MAX));
    }
    let connection =
        Connection::new("slack", "slack", json!({ "api_url": format!("{}/api/", server.base_url()) }))
            .with_secret("bot_token", TOKEN);
    (server, connection)
}

async fn call(connection: &Connection, tool: &str, params: Value) -> Result<Value, IntegrationError> {
    let config = ExecutorConfig { max_retry_attempts: 0, ..ExecutorConfig::default() };
    let executor =
        integration_testkit::executor_for(integration_slack::provider(), connection.clone(), config);
    executor.execute(ToolCall::new(tool, params)).await.result
}

/// `(HTTP method, path, query)` of every request the server received.
fn requests(server: &FakeServer) -> Vec<(String, String, Option<String>)> {
    server.requests().into_iter().map(|r| (r.method, r.path, r.query)).collect()
}

fn request(method: &str, path: &str, query: Option<&str>) -> (String, String, Option<String>) {
    (method.to_owned(), path.to_owned(), query.map(str::to_owned))
}

/// The channel every conversation sample reads as: its placeholder id, counts and times; its
/// empty name, topic and purpose as absent.
fn sample_channel() -> Value {
    json!({
        "id": "C00000000",
        "name": null,
        "is_private": false,
        "is_archived": false,
        "is_member": false,
        "is_im": false,
        "num_members": 12345,
        "topic": null,
        "purpose": null,
        "created": 12345,
    })
}

#[tokio::test]
async fn check_reads_the_auth_test_sample() {
    let (server, connection) = serve(&[("auth.test", as_success(AUTH_TEST))]).await;
    let health = Slack::new().check(&connection).await.expect("check");
    // "user" and "team" are empty in the sample: the identity falls back to the user id.
    assert_eq!(health.identity.as_deref(), Some("U00000000"));
    assert_eq!(health.details["user_id"], "U00000000");
    assert_eq!(health.details["team_id"], "T00000000");
    assert_eq!(health.details["team"], "");
    assert_eq!(health.details["bot_id"], "B00000000");
    assert_eq!(health.details["url"], "https://www.example.com/");
    assert_eq!(health.details["api_url"], format!("{}/api", server.base_url()));
    // slack-morphism's typed auth.test: a GET with an empty query ("/api/auth.test?").
    assert_eq!(requests(&server), vec![request("GET", "/api/auth.test", Some(""))]);
}

#[tokio::test]
async fn the_auth_test_sample_unchanged_is_a_refusal() {
    let (server, connection) = serve(&[("auth.test", AUTH_TEST.to_owned())]).await;
    let refused = Slack::new().check(&connection).await.expect_err("ok: false");
    assert_eq!(refused.kind(), &ErrorKind::Upstream { status: Some(200) });
    assert!(!refused.retryable());
    let details = refused.details().expect("details");
    assert_eq!(details["method"], "auth.test");
    assert_eq!(details["error"], "");
    // empty needed/provided are left out
    assert_eq!(details.get("needed"), None, "{details}");
    assert_eq!(server.calls_to("/api/auth.test"), 1);
}

#[tokio::test]
async fn find_user_by_email_reads_the_lookup_sample() {
    let (server, connection) = serve(&[("users.lookupByEmail", as_success(LOOKUP_BY_EMAIL))]).await;
    let found = call(&connection, "slack_find_user_by_email", json!({"email": "Someone@Example.com"}))
        .await
        .expect("found");
    assert_eq!(
        found,
        json!({"user": {
            "id": "U00000000",
            "name": null,
            "real_name": null,
            "display_name": null,
            "email": null,
            "title": null,
            "is_bot": false,
            "deleted": false,
            "is_admin": false,
            "tz": null,
            "team_id": "T00000000",
        }})
    );
    assert_eq!(
        requests(&server),
        vec![request("GET", "/api/users.lookupByEmail", Some("email=someone%40example.com"))]
    );
}

#[tokio::test]
async fn channel_tools_read_the_conversation_sample() {
    // conversations.setTopic, .create and .invite answer `{ok, channel}` with the conversation
    // object of conversations.info (Slack's Web API OpenAPI description: `objs_conversation`).
    let conversation = as_success(CONVERSATIONS_INFO);
    let (server, connection) = serve(&[
        ("conversations.setTopic", conversation.clone()),
        ("conversations.create", conversation.clone()),
        ("conversations.invite", conversation),
        ("users.lookupByEmail", as_success(LOOKUP_BY_EMAIL)),
    ])
    .await;

    let topic =
        call(&connection, "slack_set_channel_topic", json!({"channel": "C00000000", "topic": "Deploys"}))
            .await
            .expect("topic");
    assert_eq!(topic, json!({"channel": sample_channel(), "topic": "Deploys"}));

    let created =
        call(&connection, "slack_create_channel", json!({"name": "deploys"})).await.expect("create");
    assert_eq!(created, json!({"channel": sample_channel()}));

    // The e-mail address is resolved by users.lookupByEmail to the sample's user id.
    let invited = call(
        &connection,
        "slack_invite_to_channel",
        json!({"channel": "C00000000", "users": ["someone@example.com"]}),
    )
    .await
    .expect("invite");
    assert_eq!(
        invited,
        json!({"channel": sample_channel(), "users": ["U00000000"], "already_in_channel": false})
    );

    assert_eq!(
        requests(&server),
        vec![
            request("POST", "/api/conversations.setTopic", None),
            request("POST", "/api/conversations.create", None),
            request("GET", "/api/users.lookupByEmail", Some("email=someone%40example.com")),
            request("POST", "/api/conversations.invite", None),
        ]
    );
}

/// An answer naming no user (an empty id) resolves no one: nothing is sent to an empty id, and
/// nothing is cached for the address.
#[tokio::test]
async fn a_lookup_answer_with_an_empty_id_is_not_found() {
    let mut nobody: Value = serde_json::from_str(&as_success(LOOKUP_BY_EMAIL)).expect("json");
    nobody["user"]["id"] = json!("");
    let (server, connection) = serve(&[
        ("users.lookupByEmail", nobody.to_string()),
        ("conversations.invite", as_success(CONVERSATIONS_INFO)),
    ])
    .await;
    for _ in 0..2 {
        let err = call(
            &connection,
            "slack_invite_to_channel",
            json!({"channel": "C00000000", "users": ["someone@example.com"]}),
        )
        .await
        .expect_err("no user");
        assert_eq!(*err.kind(), ErrorKind::NotFound, "{err:?}");
        assert!(err.message().contains("someone@example.com"), "{}", err.message());
    }
    let lookup = request("GET", "/api/users.lookupByEmail", Some("email=someone%40example.com"));
    assert_eq!(
        requests(&server),
        vec![lookup.clone(), lookup],
        "asked again: nothing was cached, nothing invited"
    );
}

#[tokio::test]
async fn tools_refuse_the_samples_unchanged() {
    let (server, connection) = serve(&[
        ("users.lookupByEmail", LOOKUP_BY_EMAIL.to_owned()),
        ("conversations.setTopic", CONVERSATIONS_INFO.to_owned()),
    ])
    .await;
    for (tool, params, method) in [
        ("slack_find_user_by_email", json!({"email": "someone@example.com"}), "users.lookupByEmail"),
        (
            "slack_set_channel_topic",
            json!({"channel": "C00000000", "topic": "Deploys"}),
            "conversations.setTopic",
        ),
    ] {
        let refused = call(&connection, tool, params).await.expect_err(tool);
        assert_eq!(refused.kind(), &ErrorKind::Upstream { status: Some(200) }, "{tool}: {refused}");
        let details = refused.details().expect("details");
        assert_eq!(details["method"], method);
        assert_eq!(details["error"], "");
    }
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn a_method_without_a_recorded_answer_is_refused_by_the_fake() {
    // The guard of every test above: calls that reach the fake behind the recorded answers fail.
    let (server, connection) = serve(&[]).await;
    let refused = Slack::new().check(&connection).await.expect_err("unknown token");
    assert_eq!(refused.kind(), &ErrorKind::Authentication);
    assert_eq!(server.calls_to("/api/auth.test"), 1);
}
