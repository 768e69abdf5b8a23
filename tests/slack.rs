//! Slack through the REST API: a tool call against the fake Slack, and the signed inbound endpoint
//! (verification, url_verification, dedup of retries, events queued in the store's outbox).

use hmac::{Hmac, KeyInit, Mac};
use integration_testkit::FakeServer;
use integration_testkit::slack::{FakeSlack, router as slack_router};
use integrations_e2e::{Api, json_of};
use serde_json::{Value, json};
use sha2::Sha256;

const SIGNING_SECRET: &str = "e2e-signing-secret-8f74";

fn sign(timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!("v0={}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn deliver(
    client: &reqwest::Client,
    api: &Api,
    body: &str,
    timestamp: i64,
    signature: Option<String>,
    retry: Option<&str>,
) -> (u16, Value) {
    let mut request = client
        .post(api.url("/api/integrations/slack/webhook"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", timestamp.to_string())
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("x-slack-signature", signature);
    }
    if let Some(n) = retry {
        request = request.header("x-slack-retry-num", n).header("x-slack-retry-reason", "http_timeout");
    }
    json_of(request.send().await.expect("send")).await
}

#[tokio::test]
async fn slack_tools_and_signed_events() {
    let slack = FakeSlack::demo();
    let server = FakeServer::start(slack_router(slack.clone())).await.expect("fake slack");
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();

    let config = json!({
        "bot_token": FakeSlack::BOT_TOKEN,
        "signing_secret": SIGNING_SECRET,
        "api_url": format!("{}/api/", server.base_url()),
    });
    let (status, body) = json_of(
        client
            .post(api.url("/api/integrations/slack/configure?test=true"))
            .json(&config)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(SIGNING_SECRET) && !body.to_string().contains(FakeSlack::BOT_TOKEN));

    // a message through the REST route
    let (status, sent) = json_of(
        client
            .post(api.url("/api/integrations/slack/message"))
            .json(&json!({"channel": "#general", "text": "deploy finished"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let general = slack.channel_id("general").expect("general");
    assert_eq!(sent["channel"], general.as_str());
    let messages = slack.messages_in(&general);
    assert_eq!(messages.last().and_then(|m| m.text.clone()).as_deref(), Some("deploy finished"));

    // unknown channel
    let (status, body) = json_of(
        client
            .post(api.url("/api/integrations/slack/message"))
            .json(&json!({"channel": "#nope", "text": "x"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // url_verification answers the challenge
    let challenge = r#"{"type":"url_verification","token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let (status, body) = deliver(&client, &api, challenge, now(), Some(sign(now(), challenge)), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");

    let outbox = api.app.store.outbox();
    let queued = |rows: Vec<integration_store::OutboxMessage>| {
        rows.into_iter().filter(|r| r.routing_key.starts_with("integrations.slack.")).count()
    };
    assert_eq!(queued(outbox.fetch_unpublished(100).await.expect("outbox")), 0);

    // a signed event is queued once, even when Slack retries it
    let event = r#"{"token":"t","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"Ev0E2E","event_time":1700000000,"event":{"type":"app_mention","user":"U1","text":"<@U0> hi","ts":"1700000000.000100","channel":"C1","event_ts":"1700000000.000100"}}"#;
    let ts = now();
    let (status, _) = deliver(&client, &api, event, ts, Some(sign(ts, event)), None).await;
    assert_eq!(status, 200);
    let (status, _) = deliver(&client, &api, event, ts, Some(sign(ts, event)), Some("1")).await;
    assert_eq!(status, 200, "a retry is acknowledged");
    let rows = outbox.fetch_unpublished(100).await.expect("outbox");
    let mentions: Vec<_> =
        rows.iter().filter(|r| r.routing_key == "integrations.slack.app_mention").collect();
    assert_eq!(mentions.len(), 1, "recorded once: {rows:?}");
    assert_eq!(mentions[0].exchange, "events.exchange");
    let payload: Value = serde_json::from_slice(&mentions[0].payload).expect("json");
    assert_eq!(payload["payload"]["event"]["text"], "<@U0> hi");

    // tampered, stale and unsigned requests are refused and change nothing
    let tampered = event.replace("hi", "rm -rf");
    let (status, body) = deliver(&client, &api, &tampered, ts, Some(sign(ts, event)), None).await;
    assert_eq!(status, 401, "{body}");
    let stale = now() - 301;
    let (status, _) = deliver(&client, &api, event, stale, Some(sign(stale, event)), None).await;
    assert_eq!(status, 401);
    let (status, _) = deliver(&client, &api, event, ts, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(queued(outbox.fetch_unpublished(100).await.expect("outbox")), 1);
}
