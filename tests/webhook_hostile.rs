//! Hostile inbound deliveries, end to end through the api: replayed, stale, tampered, truncated and
//! oversized requests to the webhook endpoints (every verification scheme) and to the signed Slack
//! events endpoint, and the body limit of every route that reads a body (a body of exactly the
//! limit is accepted, one byte more gets 413). Each case asserts its side effects: deliveries
//! recorded, events in the outbox, calls reaching the fake Slack.
//!
//! The api runs with `--max-body-bytes 4096`, so the limits are crossed with small bodies.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use integration_store::webhooks::DeliveryFilter;
use integration_testkit::FakeServer;
use integration_testkit::slack::{FakeSlack, router as slack_router};
use integrations_e2e::{Api, json_of};
use reqwest::Client;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The server-wide body limit the api runs with.
const LIMIT: usize = 4096;
const SLACK_SECRET: &str = "hostile-slack-signing-secret";
const GH_SECRET: &str = "hostile-github-secret";
const HMAC_SECRET: &str = "hostile-hmac-key";
const SLACK_SCHEME_SECRET: &str = "hostile-slack-scheme-secret";
const SW_KEY: &[u8] = b"hostile-standard-webhooks-key-01";

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

type Headers = Vec<(&'static str, String)>;

/// The headers a legitimate sender of `scheme` would send with `body` at time `ts`.
fn signed(scheme: &str, body: &[u8], ts: i64, id: &str) -> Headers {
    sign(scheme, body, ts, id, None, false)
}

/// Like [`signed`], with another key, or with one bit of the signature flipped.
fn sign(scheme: &str, body: &[u8], ts: i64, id: &str, key: Option<&[u8]>, flip: bool) -> Headers {
    let mac = |default: &[u8], message: &[u8]| {
        let mut sig = hmac_sha256(key.unwrap_or(default), message);
        if flip && let Some(last) = sig.last_mut() {
            *last ^= 1;
        }
        sig
    };
    match scheme {
        "github" => vec![
            ("x-hub-signature-256", format!("sha256={}", hex(&mac(GH_SECRET.as_bytes(), body)))),
            ("x-github-delivery", id.to_owned()),
        ],
        "hmac" => vec![("x-signature", hex(&mac(HMAC_SECRET.as_bytes(), body)))],
        "slack" => {
            let base = [format!("v0:{ts}:").as_bytes(), body].concat();
            vec![
                ("x-slack-request-timestamp", ts.to_string()),
                ("x-slack-signature", format!("v0={}", hex(&mac(SLACK_SCHEME_SECRET.as_bytes(), &base)))),
            ]
        }
        "standard_webhooks" => {
            let base = [format!("{id}.{ts}.").as_bytes(), body].concat();
            vec![
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", ts.to_string()),
                ("webhook-signature", format!("v1,{}", b64(&mac(SW_KEY, &base)))),
            ]
        }
        other => panic!("unknown scheme {other}"),
    }
}

/// Headers of a signed Slack Events API request.
fn slack_signed(body: &[u8], ts: i64) -> Headers {
    let base = [format!("v0:{ts}:").as_bytes(), body].concat();
    vec![
        ("x-slack-request-timestamp", ts.to_string()),
        ("x-slack-signature", format!("v0={}", hex(&hmac_sha256(SLACK_SECRET.as_bytes(), &base)))),
    ]
}

/// A Slack event of exactly `len` bytes (the text is padded).
fn slack_event(event_id: &str, len: usize) -> Vec<u8> {
    let make = |pad: usize| {
        json!({"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
               "event_id": event_id, "event_time": 1_700_000_000,
               "event": {"type": "app_mention", "user": "U1", "text": "x".repeat(pad),
                         "ts": "1700000000.000100", "channel": "C1", "event_ts": "1700000000.000100"}})
        .to_string()
    };
    let base = make(0).len();
    assert!(len >= base, "{len} < {base}");
    let body = make(len - base).into_bytes();
    assert_eq!(body.len(), len);
    body
}

/// A JSON object of exactly `len` bytes: `{"event":"…","pad":"xxx…"}`.
fn json_of_len(event: &str, len: usize) -> Vec<u8> {
    let base = json!({"event": event, "pad": ""}).to_string().len();
    assert!(len >= base);
    let body = json!({"event": event, "pad": "x".repeat(len - base)}).to_string().into_bytes();
    assert_eq!(body.len(), len);
    body
}

struct World {
    api: Api,
    client: Client,
    slack: FakeSlack,
    _slack_server: FakeServer,
}

/// What a delivery can change: deliveries by endpoint and status, events in the outbox, Slack
/// messages sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Effects {
    deliveries: BTreeMap<(String, String), usize>,
    outbox: BTreeMap<String, usize>,
    slack_messages: usize,
}

impl Effects {
    fn count(&self, endpoint: &str, status: &str) -> usize {
        self.deliveries.get(&(endpoint.to_owned(), status.to_owned())).copied().unwrap_or(0)
    }

    fn events(&self, routing_key: &str) -> usize {
        self.outbox.get(routing_key).copied().unwrap_or(0)
    }
}

const ENDPOINTS: [&str; 5] = ["h-github", "h-hmac", "h-slack", "h-standard_webhooks", "h-big"];

impl World {
    async fn start() -> Self {
        let slack = FakeSlack::demo();
        let slack_server = FakeServer::start(slack_router(slack.clone())).await.expect("fake slack");
        let api = Api::start(&["--max-body-bytes", &LIMIT.to_string()]).await.expect("api");
        let client = Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        let world = Self { api, client, slack, _slack_server: slack_server };
        let config = json!({"bot_token": FakeSlack::BOT_TOKEN, "signing_secret": SLACK_SECRET,
                            "api_url": format!("{}/api/", world._slack_server.base_url())});
        let (status, body) = json_of(
            world
                .client
                .post(world.api.url("/api/integrations/slack/configure"))
                .json(&config)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let sw_secret = format!("whsec_{}", b64(SW_KEY));
        for (name, verification, max) in [
            ("h-github", json!({"scheme": "github", "secret": GH_SECRET}), 512),
            ("h-hmac", json!({"scheme": "hmac", "secret": HMAC_SECRET, "header": "X-Signature"}), 512),
            ("h-slack", json!({"scheme": "slack", "secret": SLACK_SCHEME_SECRET}), 512),
            ("h-standard_webhooks", json!({"scheme": "standard_webhooks", "secret": sw_secret}), 512),
            // larger than the server-wide limit: that one applies first
            ("h-big", json!({"scheme": "github", "secret": GH_SECRET}), 1024 * 1024),
        ] {
            let def = json!({"verification": verification, "max_body_bytes": max});
            let (status, body) = json_of(
                world
                    .client
                    .put(world.api.url(&format!("/api/integrations/webhook/{name}")))
                    .json(&def)
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            assert_eq!(status, 201, "{name}: {body}");
        }
        world
    }

    async fn effects(&self) -> Effects {
        let mut deliveries = BTreeMap::new();
        let filter = DeliveryFilter { limit: 1000, ..DeliveryFilter::default() };
        for endpoint in ENDPOINTS {
            let rows =
                self.api.app.store.webhooks().list_deliveries(endpoint, &filter).await.expect("deliveries");
            for row in rows {
                *deliveries.entry((endpoint.to_owned(), row.status)).or_default() += 1;
            }
        }
        let mut outbox = BTreeMap::new();
        for message in self.api.app.store.outbox().fetch_unpublished(10_000).await.expect("outbox") {
            *outbox.entry(message.routing_key).or_default() += 1;
        }
        let general = self.slack.channel_id("general").expect("general");
        Effects { deliveries, outbox, slack_messages: self.slack.messages_in(&general).len() }
    }

    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>, headers: &Headers) -> (u16, Value) {
        let mut request =
            self.client.post(self.api.url(path)).header("content-type", content_type).body(body);
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        json_of(request.send().await.expect("send")).await
    }

    /// The same request with a chunked body (no `Content-Length`): the limit must hold while the
    /// body streams.
    async fn post_chunked(&self, path: &str, body: Vec<u8>, headers: &Headers) -> (u16, Value) {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
        let stream = futures::stream::iter(chunks);
        let mut request = self
            .client
            .post(self.api.url(path))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream));
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        json_of(request.send().await.expect("send")).await
    }

    async fn deliver(&self, endpoint: &str, body: &[u8], headers: &Headers) -> (u16, Value) {
        self.post(
            &format!("/api/integrations/webhook/{endpoint}"),
            "application/json",
            body.to_vec(),
            headers,
        )
        .await
    }

    async fn slack_event(&self, body: &[u8], headers: &Headers) -> (u16, Value) {
        self.post("/api/integrations/slack/webhook", "application/json", body.to_vec(), headers).await
    }

    /// Send the head of a request announcing `declared` bytes, then only `sent`, then close the
    /// sending half: a body cut off in transit. Returns the status, if the server answered at all.
    async fn truncated(&self, path: &str, headers: &Headers, declared: usize, sent: &[u8]) -> Option<u16> {
        let addr = self.api.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n"
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(sent).await.expect("write body");
        stream.shutdown().await.expect("half-close");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the server neither answered nor closed the connection");
        let text = String::from_utf8_lossy(&answer);
        text.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
    }
}

fn assert_error(status: u16, body: &Value, expected: u16, kind: &str, case: &str) {
    assert_eq!(status, expected, "{case}: {body}");
    assert_eq!(body["error"]["type"], kind, "{case}: {body}");
    assert!(
        body["error"]["message"].is_string() && body["error"]["retryable"].is_boolean(),
        "{case}: {body}"
    );
}

#[tokio::test]
async fn replayed_deliveries_take_effect_once() {
    let w = World::start().await;
    for scheme in ["github", "hmac", "slack", "standard_webhooks"] {
        let endpoint = format!("h-{scheme}");
        let key = format!("integrations.webhook.{endpoint}");
        let body = json!({"event": "replay", "scheme": scheme}).to_string().into_bytes();
        let headers = signed(scheme, &body, now(), &format!("id-{scheme}-1"));
        let before = w.effects().await;
        let (status, first) = w.deliver(&endpoint, &body, &headers).await;
        assert_eq!(status, 202, "{scheme}: {first}");
        // the same request again, byte for byte
        let (status, again) = w.deliver(&endpoint, &body, &headers).await;
        assert_eq!(status, 200, "{scheme} replay: {again}");
        assert_eq!(
            (again["duplicate"].clone(), again["delivery_id"].clone()),
            (json!(true), first["delivery_id"].clone())
        );
        let after = w.effects().await;
        assert_eq!(after.count(&endpoint, "processed"), before.count(&endpoint, "processed") + 1, "{scheme}");
        assert_eq!(after.events(&key), before.events(&key) + 1, "{scheme}: one event for two requests");
    }

    // GitHub and HMAC sign the body only: a replay with another (unsigned) delivery id, or none, is
    // still the same delivery.
    let body = br#"{"event":"replay","attempt":"id swapped"}"#.to_vec();
    let mut headers = signed("github", &body, now(), "original-guid");
    let before = w.effects().await;
    let (status, first) = w.deliver("h-github", &body, &headers).await;
    assert_eq!(status, 202, "{first}");
    headers[1].1 = "forged-guid".to_owned();
    let (status, again) = w.deliver("h-github", &body, &headers).await;
    assert_eq!((status, again["delivery_id"].clone()), (200, first["delivery_id"].clone()), "{again}");
    let (status, again) = w.deliver("h-github", &body, &headers[..1].to_vec()).await;
    assert_eq!((status, again["duplicate"].clone()), (200, json!(true)), "no delivery id: {again}");
    // ... and re-encoding the signature (upper-case hex verifies too) does not make it new
    let upper = vec![("x-hub-signature-256", headers[0].1.to_uppercase().replace("SHA256=", "sha256="))];
    let (status, again) = w.deliver("h-github", &body, &upper).await;
    assert_eq!((status, again["duplicate"].clone()), (200, json!(true)), "upper-case signature: {again}");
    let after = w.effects().await;
    assert_eq!(after.count("h-github", "processed"), before.count("h-github", "processed") + 1);
    assert_eq!(
        after.events("integrations.webhook.h-github"),
        before.events("integrations.webhook.h-github") + 1
    );

    // Standard Webhooks: a sender's retry is re-signed with a new timestamp but keeps its id
    let body = br#"{"event":"retry"}"#.to_vec();
    let before = w.effects().await;
    let (status, first) = w
        .deliver("h-standard_webhooks", &body, &signed("standard_webhooks", &body, now(), "msg_retry"))
        .await;
    assert_eq!(status, 202, "{first}");
    let retry = signed("standard_webhooks", &body, now() + 1, "msg_retry");
    let (status, again) = w.deliver("h-standard_webhooks", &body, &retry).await;
    assert_eq!((status, again["delivery_id"].clone()), (200, first["delivery_id"].clone()), "{again}");
    assert_eq!(
        w.effects().await.events("integrations.webhook.h-standard_webhooks"),
        before.events("integrations.webhook.h-standard_webhooks") + 1
    );

    // The Slack events endpoint: the same signed request twice, and Slack's retry of the event
    // (new timestamp, same event id)
    let event = slack_event("EvReplay1", 400);
    let before = w.effects().await;
    let ts = now();
    assert_eq!(w.slack_event(&event, &slack_signed(&event, ts)).await.0, 200);
    assert_eq!(w.slack_event(&event, &slack_signed(&event, ts)).await.0, 200);
    let mut retry = slack_signed(&event, ts + 2);
    retry.push(("x-slack-retry-num", "1".to_owned()));
    assert_eq!(w.slack_event(&event, &retry).await.0, 200);
    assert_eq!(
        w.effects().await.events("integrations.slack.app_mention"),
        before.events("integrations.slack.app_mention") + 1
    );
}

#[tokio::test]
async fn stale_tampered_and_truncated_deliveries_are_refused_without_effect() {
    let w = World::start().await;
    let body = br#"{"event":"pay","amount":10}"#.to_vec();
    let tampered_body = br#"{"event":"pay","amount":99}"#.to_vec();
    let mut cases: Vec<(String, String, Vec<u8>, Headers)> = Vec::new();
    let t = now();
    for scheme in ["github", "hmac", "slack", "standard_webhooks"] {
        let endpoint = format!("h-{scheme}");
        let good = signed(scheme, &body, t, &format!("{scheme}-tamper"));
        let mut add = |case: &str, body: Vec<u8>, headers: Headers| {
            cases.push((format!("{scheme}: {case}"), endpoint.clone(), body, headers));
        };
        add("tampered body", tampered_body.clone(), good.clone());
        add(
            "truncated body (a prefix under the full body's signature)",
            body[..body.len() - 3].to_vec(),
            good.clone(),
        );
        add("body with a byte appended", [body.as_slice(), b" "].concat(), good.clone());
        let id = format!("{scheme}-tamper");
        add("tampered signature (one bit)", body.clone(), sign(scheme, &body, t, &id, None, true));
        add(
            "signature missing",
            body.clone(),
            good.iter().filter(|(n, _)| !n.contains("signature")).cloned().collect(),
        );
        add(
            "signed with another secret",
            body.clone(),
            sign(scheme, &body, t, &id, Some(b"other secret"), false),
        );
        if scheme == "slack" || scheme == "standard_webhooks" {
            for (case, ts) in
                [("stale timestamp (301 s old)", t - 301), ("timestamp 330 s in the future", t + 330)]
            {
                add(case, body.clone(), signed(scheme, &body, ts, "stale-id"));
            }
            // a fresh timestamp on an old signature
            let mut moved = signed(scheme, &body, t - 600, "moved-id");
            for (name, value) in moved.iter_mut() {
                if name.ends_with("timestamp") {
                    *value = t.to_string();
                }
            }
            add("timestamp header changed after signing", body.clone(), moved);
        }
        if scheme == "standard_webhooks" {
            let mut other_id = good.clone();
            other_id[0].1 = "msg_forged".to_owned();
            add("webhook-id changed after signing", body.clone(), other_id);
        }
    }
    // Old timestamps only get older while the test runs; future ones are 330 s ahead (not 301), so
    // that a slow run cannot bring them back into the 300 s window. The unit tests of the
    // verifiers check the boundary to the second.
    let before = w.effects().await;
    for (case, endpoint, body, headers) in &cases {
        let (status, answer) = w.deliver(endpoint, body, headers).await;
        assert_error(status, &answer, 401, "authentication", case);
    }
    let after = w.effects().await;
    for scheme in ["github", "hmac", "slack", "standard_webhooks"] {
        let endpoint = format!("h-{scheme}");
        assert_eq!(after.count(&endpoint, "processed"), before.count(&endpoint, "processed"), "{scheme}");
        assert_eq!(after.count(&endpoint, "failed"), before.count(&endpoint, "failed"), "{scheme}");
        let refused = cases.iter().filter(|(_, e, _, _)| *e == endpoint).count();
        assert_eq!(
            after.count(&endpoint, "rejected"),
            before.count(&endpoint, "rejected") + refused,
            "{scheme}: each refusal is logged as rejected, never replayable"
        );
    }
    assert_eq!(after.outbox, before.outbox, "no event from a refused delivery");

    // the same on the Slack events endpoint
    let event = slack_event("EvHostile1", 300);
    let ts = now();
    let good = slack_signed(&event, ts);
    let tampered = String::from_utf8_lossy(&event).replace("app_mention", "app_mentioN").into_bytes();
    let mut wrong_sig = good.clone();
    wrong_sig[1].1 = format!("v0={}", hex(&hmac_sha256(b"other", &event)));
    let slack_cases: Vec<(&str, Vec<u8>, Headers)> = vec![
        ("tampered body", tampered, good.clone()),
        ("truncated body", event[..event.len() - 1].to_vec(), good.clone()),
        ("signed with another secret", event.clone(), wrong_sig),
        ("stale (301 s)", event.clone(), slack_signed(&event, ts - 301)),
        ("future (330 s)", event.clone(), slack_signed(&event, ts + 330)),
        ("no signature", event.clone(), good[..1].to_vec()),
        ("no timestamp", event.clone(), good[1..].to_vec()),
    ];
    let before = w.effects().await;
    for (case, body, headers) in &slack_cases {
        let (status, answer) = w.slack_event(body, headers).await;
        assert_error(status, &answer, 401, "authentication", &format!("slack events: {case}"));
    }

    // bodies cut off in transit: the server does not act on a partial body
    let full = json_of_len("cut", 300);
    for (path, headers) in [
        ("/api/integrations/webhook/h-github", signed("github", &full, ts, "cut-1")),
        ("/api/integrations/webhook/h-standard_webhooks", signed("standard_webhooks", &full, ts, "cut-2")),
        ("/api/integrations/slack/webhook", slack_signed(&full, ts)),
        ("/api/integrations/slack/message", vec![]),
    ] {
        let status = w.truncated(path, &headers, full.len(), &full[..150]).await;
        assert!(status.is_none_or(|s| (400..500).contains(&s)), "{path}: a cut body answered {status:?}");
    }
    let after = w.effects().await;
    assert_eq!(after.outbox, before.outbox, "no event from a refused or cut request");
    assert_eq!(after.slack_messages, before.slack_messages, "nothing sent upstream");
    for endpoint in ["h-github", "h-standard_webhooks"] {
        assert_eq!(after.count(endpoint, "processed"), before.count(endpoint, "processed"));
        assert_eq!(
            after.count(endpoint, "rejected"),
            before.count(endpoint, "rejected"),
            "a cut body is not even recorded"
        );
    }
}

#[tokio::test]
async fn every_body_limit_holds_to_the_byte() {
    let w = World::start().await;
    let ts = now();

    // each webhook endpoint's own limit (512), and the server-wide one for an endpoint allowing more
    for (endpoint, scheme, limit) in [
        ("h-github", "github", 512),
        ("h-hmac", "hmac", 512),
        ("h-slack", "slack", 512),
        ("h-standard_webhooks", "standard_webhooks", 512),
        ("h-big", "github", LIMIT),
    ] {
        let key = format!("integrations.webhook.{endpoint}");
        let before = w.effects().await;
        let at = json_of_len("at-limit", limit);
        let (status, body) =
            w.deliver(endpoint, &at, &signed(scheme, &at, ts, &format!("{endpoint}-at"))).await;
        assert_eq!(status, 202, "{endpoint}: exactly {limit} bytes is accepted: {body}");
        let over = json_of_len("over-limit", limit + 1);
        let headers = signed(scheme, &over, ts, &format!("{endpoint}-over"));
        let (status, body) = w.deliver(endpoint, &over, &headers).await;
        assert_error(status, &body, 413, "payload_too_large", &format!("{endpoint}: {} bytes", limit + 1));
        let (status, body) =
            w.post_chunked(&format!("/api/integrations/webhook/{endpoint}"), over.clone(), &headers).await;
        assert_error(
            status,
            &body,
            413,
            "payload_too_large",
            &format!("{endpoint}: {} bytes, chunked", limit + 1),
        );
        let after = w.effects().await;
        assert_eq!(after.count(endpoint, "processed"), before.count(endpoint, "processed") + 1, "{endpoint}");
        assert_eq!(
            after.count(endpoint, "rejected"),
            before.count(endpoint, "rejected"),
            "{endpoint}: an oversized body is not recorded"
        );
        assert_eq!(after.events(&key), before.events(&key) + 1, "{endpoint}");
    }

    // the Slack events endpoint: the server-wide limit
    let before = w.effects().await;
    let at = slack_event("EvAtLimit", LIMIT);
    let (status, body) = w.slack_event(&at, &slack_signed(&at, ts)).await;
    assert_eq!(status, 200, "exactly {LIMIT} bytes: {body}");
    let over = slack_event("EvOverLimit", LIMIT + 1);
    let (status, body) = w.slack_event(&over, &slack_signed(&over, ts)).await;
    assert_error(status, &body, 413, "payload_too_large", "slack events, one byte over");
    let (status, body) =
        w.post_chunked("/api/integrations/slack/webhook", over.clone(), &slack_signed(&over, ts)).await;
    assert_error(status, &body, 413, "payload_too_large", "slack events, one byte over, chunked");
    assert_eq!(
        w.effects().await.events("integrations.slack.app_mention"),
        before.events("integrations.slack.app_mention") + 1
    );

    // tool routes (own route and invoke): a message of exactly the limit is sent, one byte more
    // never reaches Slack
    let message = |len: usize, wrap: bool| {
        let make = |pad: usize| {
            let params = json!({"channel": "#general", "text": "y".repeat(pad)});
            if wrap { json!({"parameters": params}) } else { params }.to_string()
        };
        let base = make(0).len();
        let body = make(len - base).into_bytes();
        assert_eq!(body.len(), len);
        body
    };
    for (path, wrap, ok) in
        [("/api/integrations/slack/message", false, 201), ("/api/tools/slack_send_message/invoke", true, 200)]
    {
        let before = w.effects().await;
        let (status, body) = w.post(path, "application/json", message(LIMIT, wrap), &vec![]).await;
        assert_eq!(status, ok, "{path}: exactly {LIMIT} bytes: {body}");
        let (status, body) = w.post(path, "application/json", message(LIMIT + 1, wrap), &vec![]).await;
        assert_error(status, &body, 413, "payload_too_large", &format!("{path}: one byte over"));
        let (status, body) = w.post_chunked(path, message(LIMIT + 1, wrap), &vec![]).await;
        assert_error(status, &body, 413, "payload_too_large", &format!("{path}: one byte over, chunked"));
        assert_eq!(w.effects().await.slack_messages, before.slack_messages + 1, "{path}: one message");
    }

    // every other route answers a declared oversized body with 413 and the error body, whatever
    // its method (the limit is checked before routing and authentication)
    let paths = integrations_e2e::router_paths(&w.api.app.router);
    assert!(paths.len() > 20, "{paths:?}");
    let before = w.effects().await;
    for path in paths.iter().filter(|p| !p.starts_with("/mcp")) {
        let concrete =
            path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for method in [reqwest::Method::POST, reqwest::Method::PUT] {
            let response = w
                .client
                .request(method.clone(), w.api.url(&concrete))
                .header("content-type", "application/json")
                .body(vec![b' '; LIMIT + 1])
                .send()
                .await
                .expect("send");
            let (status, body) = json_of(response).await;
            assert_error(status, &body, 413, "payload_too_large", &format!("{method} {path}"));
        }
    }
    assert_eq!(w.effects().await, before, "no oversized request had an effect");
}
