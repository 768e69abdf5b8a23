//! The Webhook Handler module through REST, with the api running in-process: endpoints with each
//! verification scheme, good and bad deliveries, logs, test, replay, duplicates, size limits and
//! events in the outbox; custom HTTP tools against a fake server, and the SSRF guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use integration_testkit::FakeServer;
use integrations_e2e::{Api, json_of};
use reqwest::Client;
use serde_json::{Value, json};
use sha2::Sha256;

/// jemalloc, as in the binaries: the transformation pool's memory bound reads its counters.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn define(client: &Client, api: &Api, name: &str, def: Value) -> (u16, Value) {
    json_of(
        client
            .put(api.url(&format!("/api/integrations/webhook/{name}")))
            .json(&def)
            .send()
            .await
            .expect("send"),
    )
    .await
}

async fn post(
    client: &Client,
    api: &Api,
    name: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = client
        .post(api.url(&format!("/api/integrations/webhook/{name}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    json_of(request.send().await.expect("send")).await
}

async fn logs(client: &Client, api: &Api, name: &str, query: &str) -> Value {
    let (status, body) = json_of(
        client
            .get(api.url(&format!("/api/integrations/webhook/{name}/logs{query}")))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn webhook_endpoints_end_to_end() {
    let api = Api::start(&[]).await.expect("api");
    let client = Client::new();

    // GitHub preset, with a transform
    let secret = "gh-SECRET-do-not-log";
    let (status, body) = define(
        &client,
        &api,
        "gh",
        json!({"verification": {"scheme": "github", "secret": secret},
        "transform": "{action, repo: .repository.name}", "max_body_bytes": 256}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(secret));
    let (status, body) = define(
        &client,
        &api,
        "gh",
        json!({"verification": {"scheme": "github"},
        "transform": "{action, repo: .repository.name}", "max_body_bytes": 256}),
    )
    .await;
    assert_eq!(status, 200, "redefinition keeps the secret: {body}");
    let (status, body) =
        json_of(client.get(api.url("/api/integrations/webhook/gh")).send().await.expect("send")).await;
    assert_eq!(status, 200);
    assert_eq!(body["definition"]["verification"], json!({"scheme": "github", "secret_set": true}));

    let payload = r#"{"action":"opened","repository":{"name":"widgets"}}"#;
    let sig = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), payload.as_bytes())));
    let headers = vec![("x-hub-signature-256", sig.clone()), ("x-github-delivery", "delivery-1".to_owned())];
    let (status, first) = post(&client, &api, "gh", payload, &headers).await;
    assert_eq!(status, 202, "{first}");
    let first_id = first["delivery_id"].as_str().expect("id").to_owned();
    // the same delivery again is recorded once
    let (status, again) = post(&client, &api, "gh", payload, &headers).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["delivery_id"], first_id.as_str());
    assert_eq!(again["duplicate"], true);
    assert_eq!(
        (&again["status"], &again["publish_status"]),
        (&first["status"], &first["publish_status"]),
        "{again}"
    );
    // tampered body, missing signature
    let (status, body) = post(&client, &api, "gh", &payload.replace("opened", "closed"), &headers[..1]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "authentication");
    let (status, _) = post(&client, &api, "gh", payload, &[]).await;
    assert_eq!(status, 401);
    // one byte over the endpoint's limit
    let big = format!("\"{}\"", "x".repeat(255));
    assert_eq!(big.len(), 257);
    let big_sig = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), big.as_bytes())));
    let (status, body) = post(&client, &api, "gh", &big, &[("x-hub-signature-256", big_sig)]).await;
    assert_eq!(status, 413, "{body}");
    let at_limit = format!("\"{}\"", "x".repeat(254));
    let sig_ok = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), at_limit.as_bytes())));
    let (status, body) = post(&client, &api, "gh", &at_limit, &[("x-hub-signature-256", sig_ok)]).await;
    assert_eq!(status, 422, "a string has no .action, the transform fails: {body}");
    let failed_id = body["error"]["details"]["delivery_id"].as_str().expect("recorded").to_owned();
    // unknown endpoint, unsupported type
    let (status, _) = post(&client, &api, "nope", payload, &[]).await;
    assert_eq!(status, 404);
    let (status, body) = json_of(
        client
            .post(api.url("/api/integrations/webhook/gh"))
            .header("content-type", "application/xml")
            .header(
                "x-hub-signature-256",
                format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), b"<a/>"))),
            )
            .body("<a/>")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 415, "{body}");

    // logs: newest first, filters, pagination, no secret anywhere
    let all = logs(&client, &api, "gh", "").await;
    let deliveries = all["deliveries"].as_array().expect("array");
    assert_eq!(deliveries.len(), 4, "{all}");
    assert_eq!(deliveries[0]["id"], failed_id.as_str());
    assert_eq!(deliveries[0]["status"], "failed");
    assert!(all.to_string().contains("widgets"));
    assert!(!all.to_string().contains(secret));
    let processed = logs(&client, &api, "gh", "?status=processed").await;
    assert_eq!(processed["deliveries"][0]["id"], first_id.as_str());
    assert_eq!(processed["deliveries"][0]["output"], json!({"action": "opened", "repo": "widgets"}));
    assert_eq!(processed["deliveries"][0]["publish_status"], "queued");
    assert_eq!(processed["deliveries"][0]["verification"], "passed");
    let rejected = logs(&client, &api, "gh", "?status=rejected").await;
    assert_eq!(rejected["deliveries"].as_array().map(Vec::len), Some(2));
    let page = logs(&client, &api, "gh", "?limit=3").await;
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let rest = logs(&client, &api, "gh", &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(rest["deliveries"].as_array().map(Vec::len), Some(1));
    let future = logs(&client, &api, "gh", "?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["deliveries"].as_array().map(Vec::len), Some(0));

    // the event is in the outbox under integrations.webhook.gh
    let outbox = api.app.store.outbox().fetch_unpublished(100).await.expect("outbox");
    let event = outbox.iter().find(|m| m.routing_key == "integrations.webhook.gh").expect("event queued");
    assert_eq!(event.exchange, "events.exchange");
    let event: Value = serde_json::from_slice(&event.payload).expect("json");
    assert_eq!(event["payload"], json!({"action": "opened", "repo": "widgets"}));
    assert_eq!(event["delivery_id"], first_id.as_str());

    // fix the transform, replay the failed delivery
    let (status, _) = define(
        &client,
        &api,
        "gh",
        json!({"verification": {"scheme": "github"},
        "transform": "if type == \"object\" then {action} else {text: .} end", "max_body_bytes": 256}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, replayed) = json_of(
        client
            .post(api.url(&format!("/api/integrations/webhook/gh/deliveries/{failed_id}/replay")))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 202, "{replayed}");
    let replays = logs(&client, &api, "gh", "?limit=1").await;
    assert_eq!(replays["deliveries"][0]["replay_of"], failed_id.parse::<i64>().expect("int"));
    assert_eq!(replays["deliveries"][0]["output"]["text"].as_str().map(str::len), Some(254));
    let rejected_id = rejected["deliveries"][0]["id"].as_str().expect("id");
    let (status, _) = json_of(
        client
            .post(api.url(&format!("/api/integrations/webhook/gh/deliveries/{rejected_id}/replay")))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 409, "a rejected delivery is not replayed");

    // test: verify when headers are given, transform, store nothing
    let before = logs(&client, &api, "gh", "").await["deliveries"].as_array().map(Vec::len);
    let (status, result) = json_of(
        client
            .post(api.url("/api/integrations/webhook/gh/test"))
            .json(&json!({"body": payload, "headers": {"X-Hub-Signature-256": sig, "content-type": "application/json"}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["verification"], "passed");
    assert_eq!(result["output"], json!({"action": "opened"}));
    let (status, result) = json_of(
        client
            .post(api.url("/api/integrations/webhook/gh/test"))
            .json(&json!({"body": {"action": "x"}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((status, result["verification"].clone()), (200, json!("skipped")));
    let (status, _) = json_of(
        client
            .post(api.url("/api/integrations/webhook/gh/test"))
            .json(&json!({"body": payload, "headers": {"X-Hub-Signature-256": "sha256=00"}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(logs(&client, &api, "gh", "").await["deliveries"].as_array().map(Vec::len), before);

    // a transform that does not compile points at the position
    let (status, body) = define(
        &client,
        &api,
        "broken",
        json!({"verification": {"scheme": "none"}, "transform": ".a | nosuch"}),
    )
    .await;
    assert_eq!(status, 422);
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("line 1, column 6"), "{body}");
    // none must be explicit
    let (status, _) = define(&client, &api, "implicit", json!({"transform": "."})).await;
    assert_eq!(status, 422);

    // delete
    let status = client.delete(api.url("/api/integrations/webhook/gh")).send().await.expect("send").status();
    assert_eq!(status, 204);
    let (status, _) = post(&client, &api, "gh", payload, &headers).await;
    assert_eq!(status, 404);

    // The body over the limit, refused before it was read, is counted with the others.
    let metrics = client.get(api.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = "integration_webhook_deliveries_total{webhook=\"gh\",outcome=\"payload_too_large\"} 1\n";
    assert!(metrics.contains(line), "{line} not in:\n{metrics}");
}

/// Transformations that used to take the api down or hold its transformation threads for good:
/// unbounded recursion overflowed a thread's stack (aborting the process: this test binary), a
/// filter that never outputs held one of the 8 pool threads until the process ended, a string
/// repetition asked for one allocation of any size, freeing a deeply nested value recursed past the
/// end of the stack, and memory built within the time bound was not bounded. Each now fails its
/// delivery (422, recorded as failed) and the api serves on; more runaway filters than the pool has
/// threads leave it free.
/// The tests that build hundreds of MiB in transformations, one at a time: the memory bound is
/// shared by every run in the process, so one test's runs would be stopped for the other's.
static MEMORY_HUNGRY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn hostile_transformations_fail_their_delivery_and_the_api_serves_on() {
    let _alone = MEMORY_HUNGRY.lock().await;
    // as the binaries do at start-up
    integration_webhook::transform::set_memory_meter(integration_http::cli::jemalloc_thread_heap_bytes);
    let api = Api::start(&[]).await.expect("api");
    let client = Client::new();
    for (name, transform, timeout_ms, message) in [
        ("recursion", "def f: 1 + f; f", 30_000, "recursed too deeply"),
        ("repetition", "\"x\" * 1000000000000", 30_000, "may not exceed 67108864 bytes"),
        ("spin", "[range(1e15)] | length", 100, "did not finish within 100ms"),
        // a value 400,000 levels deep: freeing it overflowed the pool thread's stack
        ("deep_value", "reduce range(400000) as $x (.n; [.])", 30_000, "nested deeper than 128 levels"),
        // 20 strings of 60 MB: 1.2 GB within its time bound, now at most 256 MiB
        ("memory", "[limit(20; repeat(\"x\" * 60000000))] | length", 30_000, "used more than 256 MiB"),
    ] {
        let def = json!({"verification": {"scheme": "none"}, "transform": transform, "publish": false,
                         "transform_timeout_ms": timeout_ms});
        let (status, body) = define(&client, &api, name, def).await;
        assert_eq!(status, 201, "{name}: {body}");
        // the test endpoint, then real deliveries: more than the pool's 8 threads for the spinner
        let (status, body) = json_of(
            client
                .post(api.url(&format!("/api/integrations/webhook/{name}/test")))
                .json(&json!({"body": {"n": 1}}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 422, "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains(message), "{name}: {body}");
        for i in 0..10 {
            let (status, body) = post(&client, &api, name, &format!("{{\"n\": {i}}}"), &[]).await;
            assert_eq!(status, 422, "{name} #{i}: {body}");
            assert!(
                body["error"]["message"].as_str().unwrap_or_default().contains(message),
                "{name}: {body}"
            );
        }
        let failed = logs(&client, &api, name, "?status=failed").await;
        assert_eq!(failed["deliveries"].as_array().map(Vec::len), Some(10), "{name}: {failed}");
    }
    // Definitions whose filter nests deep: a thousand parentheses overflowed the runtime thread
    // that compiled it and aborted the api; now it compiles (and its run is bounded like any
    // other), and a filter longer than the limit is refused with the limit named.
    let deep = format!("{}.n{}", "(".repeat(1000), ")".repeat(1000));
    let def = json!({"verification": {"scheme": "none"}, "transform": deep, "publish": false});
    let (status, body) = define(&client, &api, "deep", def).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(&client, &api, "deep", "{\"n\": 7}", &[]).await;
    assert_eq!(status, 202, "{body}");
    let long = format!(".n{}", " ".repeat(20_000));
    let def = json!({"verification": {"scheme": "none"}, "transform": long, "publish": false});
    let (status, body) = define(&client, &api, "long", def).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("at most 16384 bytes"), "{body}");

    // every pool thread is free: a quick transformation is served at once, not refused as busy
    let def = json!({"verification": {"scheme": "none"}, "transform": ".n + 1", "publish": false});
    assert_eq!(define(&client, &api, "quick", def).await.0, 201);
    let (status, body) = post(&client, &api, "quick", "{\"n\": 41}", &[]).await;
    assert_eq!(status, 202, "{body}");
    let delivered = logs(&client, &api, "quick", "").await;
    assert_eq!(delivered["deliveries"][0]["output"], json!(42), "{delivered}");
}

/// The memory bound (256 MiB by default) holds for the runs in progress together: while one run
/// holds 180 MB, a second one building as much is stopped when its growth passes the bound, its
/// delivery answered 503 (try again) and not recorded as failed; alone, the same filter succeeds.
#[tokio::test]
async fn transformations_share_one_memory_bound() {
    let _alone = MEMORY_HUNGRY.lock().await;
    integration_webhook::transform::set_memory_meter(integration_http::cli::jemalloc_thread_heap_bytes);
    let api = Api::start(&[]).await.expect("api");
    let client = Client::new();
    // three strings of 60 MB each
    let build = "[range(3) | \"x\" * 60000000]";
    let holder = json!({"verification": {"scheme": "none"}, "publish": false, "transform_timeout_ms": 8_000,
                        "transform": format!("{build} as $held | reduce range(1e15) as $i (0; .)")});
    assert_eq!(define(&client, &api, "holder", holder).await.0, 201);
    let grower = json!({"verification": {"scheme": "none"}, "publish": false, "transform_timeout_ms": 30_000,
                        "transform": format!("{build} | length")});
    assert_eq!(define(&client, &api, "grower", grower).await.0, 201);
    let test = |name: &'static str| {
        let (client, url) = (client.clone(), api.url(&format!("/api/integrations/webhook/{name}/test")));
        async move { json_of(client.post(url).json(&json!({"body": {"n": 1}})).send().await.expect("send")).await }
    };

    // the holder builds its 180 MB, then spins until its time bound
    let holding = tokio::spawn(test("holder"));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (status, body) = test("grower").await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("running at once held more than 256 MiB of memory"), "{body}");
    assert_eq!(body["error"]["retryable"], true, "{body}");
    let (status, body) = post(&client, &api, "grower", "{\"n\": 2}", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(logs(&client, &api, "grower", "").await["deliveries"].as_array().map(Vec::len), Some(0));

    let (status, body) = holding.await.expect("holder");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("did not finish within"),
        "{body}"
    );
    // alone, the same filter stays within the bound
    let (status, body) = test("grower").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!(3), "{body}");
    let metrics = client.get(api.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = "integration_transform_runs_total{outcome=\"memory_busy\"} 2\n";
    assert!(metrics.contains(line), "{line} not in:\n{metrics}");
}

#[tokio::test]
async fn every_verification_scheme() {
    let api = Api::start(&[]).await.expect("api");
    let client = Client::new();
    let body = r#"{"event":"ping"}"#;

    // shared token
    define(
        &client,
        &api,
        "tok",
        json!({"verification": {"scheme": "token", "header": "X-Webhook-Token", "secret": "tok-123"}}),
    )
    .await;
    assert_eq!(post(&client, &api, "tok", body, &[("x-webhook-token", "tok-123".into())]).await.0, 202);
    assert_eq!(post(&client, &api, "tok", body, &[("x-webhook-token", "tok-124".into())]).await.0, 401);
    let tok_logs = logs(&client, &api, "tok", "").await.to_string();
    assert!(
        !tok_logs.contains("tok-123") && !tok_logs.contains("tok-124"),
        "token header redacted: {tok_logs}"
    );

    // generic HMAC (sha1, base64, prefix)
    define(
        &client,
        &api,
        "hm",
        json!({"verification": {"scheme": "hmac", "secret": "k3y", "header": "X-Sig",
        "algorithm": "sha1", "prefix": "sha1=", "encoding": "base64"}}),
    )
    .await;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"k3y").expect("key");
    mac.update(body.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(post(&client, &api, "hm", body, &[("x-sig", format!("sha1={sig}"))]).await.0, 202);
    assert_eq!(post(&client, &api, "hm", body, &[("x-sig", sig.clone())]).await.0, 401);

    // Slack v0 with its 5-minute window
    define(&client, &api, "sl", json!({"verification": {"scheme": "slack", "secret": "slack-s3cret"}})).await;
    let slack_sig =
        |ts: i64| format!("v0={}", hex(&hmac_sha256(b"slack-s3cret", format!("v0:{ts}:{body}").as_bytes())));
    let ts = now();
    let good = [("x-slack-request-timestamp", ts.to_string()), ("x-slack-signature", slack_sig(ts))];
    assert_eq!(post(&client, &api, "sl", body, &good).await.0, 202);
    let stale = now() - 600;
    let old = [("x-slack-request-timestamp", stale.to_string()), ("x-slack-signature", slack_sig(stale))];
    let (status, err) = post(&client, &api, "sl", body, &old).await;
    assert_eq!(status, 401);
    assert!(err["error"]["message"].as_str().unwrap_or_default().contains("tolerance"), "{err}");

    // Standard Webhooks, with webhook-id de-duplication
    let key = b"standard-webhooks-key-0123456789";
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
    define(&client, &api, "sw", json!({"verification": {"scheme": "standard_webhooks", "secret": secret}}))
        .await;
    let ts = now();
    let sw_sig = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(key, format!("msg_1.{ts}.{body}").as_bytes()))
    );
    let sw = [
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sw_sig),
    ];
    let (status, first) = post(&client, &api, "sw", body, &sw).await;
    assert_eq!(status, 202, "{first}");
    let (status, dup) = post(&client, &api, "sw", body, &sw).await;
    assert_eq!((status, dup["delivery_id"].clone()), (200, first["delivery_id"].clone()));
    let wrong = [
        ("webhook-id", "msg_2".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", "v1,AAAA".to_owned()),
    ];
    assert_eq!(post(&client, &api, "sw", body, &wrong).await.0, 401);

    // none, form and text bodies
    define(&client, &api, "open", json!({"verification": {"scheme": "none"}, "transform": "."})).await;
    let (status, _) = json_of(
        client
            .post(api.url("/api/integrations/webhook/open"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("a=1&b=two")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = post(&client, &api, "open", "{not json", &[]).await;
    assert_eq!(status, 422);
    let open_logs = logs(&client, &api, "open", "").await;
    assert_eq!(open_logs["deliveries"][0]["status"], "failed");
    assert_eq!(open_logs["deliveries"][0]["body_preview"], "{not json");
    assert_eq!(open_logs["deliveries"][1]["output"], json!({"a": "1", "b": "two"}));

    // Every delivery is counted by endpoint and outcome; a name that is no endpoint's is one label.
    let (status, _) = post(&client, &api, "no-such-endpoint", body, &[]).await;
    assert_eq!(status, 404);
    let metrics = client.get(api.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    for (webhook, outcome, count) in [
        ("sw", "processed", 1),
        ("sw", "duplicate", 1),
        ("sw", "rejected", 1),
        ("open", "processed", 1),
        ("open", "failed", 1),
    ] {
        let line = format!(
            "integration_webhook_deliveries_total{{webhook=\"{webhook}\",outcome=\"{outcome}\"}} {count}\n"
        );
        assert!(metrics.contains(&line), "{line} not in:\n{metrics}");
    }
    assert!(
        metrics.contains("integration_webhook_deliveries_total{webhook=\"(unknown)\",outcome=\"not_found\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("no-such-endpoint"), "a made-up name became a label");
}

#[tokio::test]
async fn custom_tools_and_the_ssrf_guard() {
    let upstream = FakeServer::start(Router::new().route(
        "/api/{component}",
        get(|axum::extract::Path(c): axum::extract::Path<String>, h: axum::http::HeaderMap| async move {
            let authorized =
                h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer tool-T0KEN");
            axum::Json(
                json!({"component": c, "status": if authorized { "operational" } else { "unauthorized" }}),
            )
        }),
    ))
    .await
    .expect("fake");
    let canary = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("canary");
    let canary_port = canary.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = canary.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    // allow only the fake's port-less address: 127.0.0.1 (the canary is on 127.0.0.1 too, so the
    // refused targets below are other loopback and private addresses)
    let api = Api::start(&["--custom-http-allowlist", "127.0.0.1"]).await.expect("api");
    let client = Client::new();
    let def = json!({
        "name": "status_page",
        "description": "Status of a component",
        "method": "GET",
        "url": format!("{}/api/{{component}}", upstream.base_url()),
        "parameters_schema": {"type": "object", "properties": {"component": {"type": "string"}}, "required": ["component"]},
        "auth": {"type": "bearer", "token": "tool-T0KEN"},
        "response_transform": ".status",
    });
    let (status, body) = json_of(
        client.post(api.url("/api/integrations/custom/tools")).json(&def).send().await.expect("send"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains("tool-T0KEN"));
    let (status, _) = json_of(
        client.post(api.url("/api/integrations/custom/tools")).json(&def).send().await.expect("send"),
    )
    .await;
    assert_eq!(status, 409);

    let (status, out) = json_of(
        client
            .post(api.url("/api/tools/status_page/invoke"))
            .json(&json!({"parameters": {"component": "db"}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert!(out.to_string().contains("operational"), "{out}");
    let (status, listed) =
        json_of(client.get(api.url("/api/integrations/custom/tools")).send().await.expect("send")).await;
    assert_eq!(status, 200);
    assert_eq!(listed["tools"][0]["registered"], true);
    assert!(!listed.to_string().contains("tool-T0KEN"));

    // literal addresses the guard refuses are refused when defined: 422 naming the rule and `/url`,
    // nothing registered, nothing connects (host names are checked when a call connects: crate tests)
    for (name, url, rule) in [
        ("to_private", "http://10.0.0.1/x", "address 10.0.0.1 is in a private range (10.0.0.0/8)"),
        ("to_metadata", "http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("to_loopback2", &format!("http://127.0.0.2:{canary_port}/"), "loopback range"),
        ("to_mapped", &format!("http://[::ffff:127.0.0.1]:{canary_port}/"), "IPv4-mapped"),
        ("to_localhost6", &format!("http://[::1]:{canary_port}/"), "loopback range"),
    ] {
        let def = json!({"name": name, "description": "d", "method": "GET", "url": url});
        let (status, body) = json_of(
            client.post(api.url("/api/integrations/custom/tools")).json(&def).send().await.expect("send"),
        )
        .await;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["error"]["type"], "invalid_input", "{name}: {body}");
        assert_eq!(body["error"]["details"]["pointer"], "/url", "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains(rule), "{name}: {body}");
        let (status, body) = json_of(
            client
                .post(api.url(&format!("/api/tools/{name}/invoke")))
                .json(&json!({"parameters": {}}))
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 404, "{name}: {body}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the canary saw a connection");
    let (status, _) = json_of(
        client
            .post(api.url("/api/integrations/custom/tools"))
            .json(&json!({"name": "file_tool", "description": "d", "method": "GET", "url": "file:///etc/passwd"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 422);

    // update keeps the credential; delete removes it everywhere
    let mut update = def.clone();
    if let Some(o) = update.as_object_mut() {
        o.remove("auth");
        o.insert("auth".into(), json!({"type": "bearer"}));
        o.insert("response_transform".into(), json!("{s: .status}"));
    }
    let (status, body) = json_of(
        client
            .put(api.url("/api/integrations/custom/tools/status_page"))
            .json(&update)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, out) = json_of(
        client
            .post(api.url("/api/tools/status_page/invoke"))
            .json(&json!({"parameters": {"component": "db"}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(out.to_string().contains("operational"), "{out}");
    assert_eq!(
        client
            .delete(api.url("/api/integrations/custom/tools/status_page"))
            .send()
            .await
            .expect("send")
            .status(),
        204
    );
    let (status, _) = json_of(
        client
            .post(api.url("/api/tools/status_page/invoke"))
            .json(&json!({"parameters": {"component": "db"}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn custom_tools_are_loaded_at_start_up() {
    let upstream =
        FakeServer::start(Router::new().route("/ping", get(|| async { axum::Json(json!({"pong": true})) })))
            .await
            .expect("fake");
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_str().expect("utf-8").to_owned();
    let options = ["--custom-http-allowlist", "127.0.0.1", "--data-dir", data_dir.as_str()];
    {
        let api = Api::start(&options).await.expect("api");
        let def = json!({"name": "ping", "description": "ping", "method": "GET", "url": format!("{}/ping", upstream.base_url())});
        let (status, _) = json_of(
            Client::new()
                .post(api.url("/api/integrations/custom/tools"))
                .json(&def)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 201);
        api.app.store.close().await;
    }
    let api = Api::start(&options).await.expect("api again");
    let (status, out) = json_of(
        Client::new()
            .post(api.url("/api/tools/ping/invoke"))
            .json(&json!({"parameters": {}}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert!(out.to_string().contains("pong"));
}

/// Poll `f` every 100 ms until it is true or `within` has passed.
async fn eventually<F, Fut>(within: std::time::Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `{"version": n}` for the tool's bearer token, 401 without it.
fn versioned(headers: &axum::http::HeaderMap, n: u32) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if headers.get("authorization").is_some_and(|v| v == "Bearer tool-SECRET-5") {
        axum::Json(json!({ "version": n })).into_response()
    } else {
        axum::http::StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn invoke(api: &Api, tool: &str) -> (u16, Value) {
    json_of(
        Client::new()
            .post(api.url(&format!("/api/tools/{tool}/invoke")))
            .json(&json!({"parameters": {}}))
            .send()
            .await
            .expect("send"),
    )
    .await
}

/// Two api replicas and a bus worker on one PostgreSQL database: a custom tool created, changed
/// and deleted through replica a is callable, changed and gone on replica b and on the bus, without
/// a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_tools_reach_every_replica_and_the_bus() {
    use clap::Parser as _;
    let upstream = FakeServer::start(
        Router::new()
            .route("/v1", get(|headers: axum::http::HeaderMap| async move { versioned(&headers, 1) }))
            .route("/v2", get(|headers: axum::http::HeaderMap| async move { versioned(&headers, 2) })),
    )
    .await
    .expect("fake");
    let schema = integrations_e2e::PgSchema::create().await.expect("schema");
    let url = schema.url();
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let shared = [
        "--database-url",
        url.as_str(),
        "--master-key",
        key,
        "--custom-http-allowlist",
        "127.0.0.1",
        "--custom-tools-sync-seconds",
        "1",
    ];
    let a = Api::start(&shared).await.expect("replica a");
    let b = Api::start(&shared).await.expect("replica b");

    let topology = integration_bus::Topology::prefixed(&integrations_e2e::unique("custom-tools"));
    let amqp = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let mut argv =
        vec!["integrations-worker", "--amqp-url", amqp, "--commands-queue", &topology.commands_queue];
    argv.extend([
        "--commands-exchange",
        &topology.commands_exchange,
        "--events-exchange",
        &topology.events_exchange,
    ]);
    argv.extend(["--dead-letter-exchange", &topology.dead_letter_exchange]);
    argv.extend(["--dead-letter-queue", &topology.dead_letter_queue, "--log-level", "warn"]);
    argv.extend(shared);
    let cli = integrations_worker::Cli::try_parse_from(argv).expect("worker options");
    let worker = integrations_worker::build(&cli).await.expect("worker");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.worker.run(stopped));
    let call = |n: u32| {
        let command = integration_bus::Command {
            task_id: integrations_e2e::unique("task"),
            step_id: n.to_string(),
            tool_name: "version".into(),
            parameters: json!({}),
            connection: None,
        };
        let topology = topology.clone();
        async move { integration_bus::call(amqp, &topology, &command, std::time::Duration::from_secs(10)).await }
    };

    let define = |path: &str| {
        json!({"name": "version", "description": "which version", "method": "GET",
               "url": format!("{}{path}", upstream.base_url()), "auth": {"type": "bearer", "token": "tool-SECRET-5"}})
    };
    let client = Client::new();
    let (status, body) = json_of(
        client.post(a.url("/api/integrations/custom/tools")).json(&define("/v1")).send().await.expect("send"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let wait = std::time::Duration::from_secs(10);
    assert!(
        eventually(wait, || async { invoke(&b, "version").await.1.to_string().contains("\"version\":1") })
            .await,
        "replica b never ran the tool created on replica a"
    );
    let step = AtomicUsize::new(0);
    let on_the_bus = |check: fn(&integration_bus::Event) -> bool| {
        let (call, step) = (&call, &step);
        eventually(wait, move || {
            let reply = call(step.fetch_add(1, Ordering::SeqCst) as u32 + 1);
            async move { reply.await.is_ok_and(|event| check(&event)) }
        })
    };
    fn answered(event: &integration_bus::Event, needle: &str) -> bool {
        event.status == integration_bus::Status::Completed
            && serde_json::to_string(&event.result).is_ok_and(|r| r.contains(needle))
    }
    assert!(
        on_the_bus(|e| answered(e, "\"version\":1")).await,
        "the worker never ran the tool created on replica a"
    );

    // a change through a reaches b and the worker
    let (status, body) = json_of(
        client
            .put(a.url("/api/integrations/custom/tools/version"))
            .json(&define("/v2"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(wait, || async { invoke(&b, "version").await.1.to_string().contains("\"version\":2") })
            .await,
        "replica b still runs the old definition"
    );
    assert!(on_the_bus(|e| answered(e, "\"version\":2")).await, "the worker still runs the old definition");
    // the bearer token reached every replica (the upstream answers 401 without it) and no answer
    let (status, answer) = invoke(&b, "version").await;
    assert_eq!(status, 200, "{answer}");
    assert!(!answer.to_string().contains("tool-SECRET-5"), "{answer}");

    // a delete through a removes it from b and the worker
    let response = client.delete(a.url("/api/integrations/custom/tools/version")).send().await.expect("send");
    assert_eq!(response.status(), 204);
    assert!(
        eventually(wait, || async { invoke(&b, "version").await.0 == 404 }).await,
        "replica b kept the tool"
    );
    assert!(
        on_the_bus(|e| e.status == integration_bus::Status::Failed
            && e.error_type.as_deref() == Some("unknown_tool"))
        .await,
        "the worker kept the tool"
    );

    stop.send(true).expect("stop");
    running.await.expect("join").expect("worker stops cleanly");
    integrations_e2e::delete_topology(amqp, &topology).await;
    a.app.store.close().await;
    b.app.store.close().await;
    worker.store.close().await;
}

#[tokio::test]
async fn a_custom_tool_whose_credentials_do_not_open_holds_back_no_other() {
    let schema = integrations_e2e::PgSchema::create().await.expect("schema");
    let url = schema.url();
    let shared = [
        "--database-url",
        url.as_str(),
        "--master-key",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "--custom-http-allowlist",
        "127.0.0.1",
    ];
    let a = Api::start(&shared).await.expect("replica a");
    let client = Client::new();
    for name in ["good", "bad"] {
        let definition = json!({"name": name, "description": name, "method": "GET", "url": "http://127.0.0.1:9/x",
                                "auth": {"type": "bearer", "token": format!("{name}-SECRET-7")}});
        let (status, body) = json_of(
            client
                .post(a.url("/api/integrations/custom/tools"))
                .json(&definition)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // `bad`'s sealed credentials damaged in the database (a restore gone wrong, say).
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await.expect("connect");
    let damaged = sqlx::query("UPDATE custom_tools SET credentials = $1 WHERE name = 'bad'")
        .bind(vec![0u8; 40])
        .execute(&pool)
        .await
        .expect("update");
    assert_eq!(damaged.rows_affected(), 1);
    pool.close().await;

    // A replica starting now loads `good`, and reports `bad` without taking the others down with it.
    let b = Api::start(&shared).await.expect("replica b");
    let registry = b.app.executor.registry();
    assert!(registry.get("good").is_some(), "the readable tool is loaded");
    assert!(registry.get("bad").is_none(), "the unreadable tool is not");
}
