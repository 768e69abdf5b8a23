//! jq transformations under load, through REST with the api in-process: a burst beyond the
//! transformation threads is served in turn, and a delivery or custom tool call that finds no
//! thread free within its time bound is told 503 (nothing recorded, so the retry counts).
//!
//! Its own test binary: it takes every transformation thread of the process for a while, which
//! would starve the transformations of tests running beside it.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hmac::{Hmac, KeyInit, Mac};
use integration_testkit::FakeServer;
use integrations_e2e::{Api, json_of};
use reqwest::Client;
use serde_json::{Value, json};
use sha2::Sha256;

/// The transformation threads of a process (`integration_webhook::transform::MAX_CONCURRENT_RUNS`).
const THREADS: usize = 8;

async fn define(client: &Client, api: &Api, name: &str, def: Value) {
    let url = api.url(&format!("/api/integrations/webhook/{name}"));
    let (status, body) = json_of(client.put(url).json(&def).send().await.expect("send")).await;
    assert_eq!(status, 201, "{body}");
}

fn deliver(
    client: &Client,
    api: &Api,
    name: &str,
    body: String,
    headers: &[(&str, String)],
) -> impl Future<Output = (u16, Value, Option<String>)> + Send + 'static {
    let mut request = client
        .post(api.url(&format!("/api/integrations/webhook/{name}")))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    async move {
        let response = request.send().await.expect("send");
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (status, body) = json_of(response).await;
        (status, body, retry_after)
    }
}

fn github_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn deliveries(client: &Client, api: &Api, name: &str) -> Vec<Value> {
    let url = api.url(&format!("/api/integrations/webhook/{name}/logs"));
    let (status, body) = json_of(client.get(url).send().await.expect("send")).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn transformations_queue_for_a_thread_and_refuse_when_none_comes_free() {
    let upstream = FakeServer::start(
        Router::new().route("/status", get(|| async { axum::Json(json!({"status": "operational"})) })),
    )
    .await
    .expect("fake");
    let api = Api::start(&["--custom-http-allowlist", "127.0.0.1"]).await.expect("api");
    let client = Client::new();

    // A burst of five times as many deliveries as there are threads, all at once: each waits its
    // turn and is processed. The bound covers the wait in the queue, so it is the longest allowed:
    // with the default 2 s, a debug build on a loaded CI machine timed out the last ones (422).
    define(
        &client,
        &api,
        "burst",
        json!({"verification": {"scheme": "none"}, "transform": "{n: .n, sum: ([range(20000)] | add)}",
               "transform_timeout_ms": 30_000}),
    )
    .await;
    let burst: Vec<_> = (0..5 * THREADS)
        .map(|n| tokio::spawn(deliver(&client, &api, "burst", json!({"n": n}).to_string(), &[])))
        .collect();
    for (n, delivery) in burst.into_iter().enumerate() {
        let (status, body, _) = delivery.await.expect("delivery task");
        assert_eq!(status, 202, "delivery {n}: {body}");
        assert_eq!(body["status"], "processed", "delivery {n}: {body}");
    }
    let recorded = deliveries(&client, &api, "burst").await;
    assert_eq!(recorded.len(), 5 * THREADS);
    assert!(recorded.iter().all(|d| d["status"] == "processed"), "{recorded:?}");

    // Every thread taken by a filter that runs until its 20 s bound (longer than the custom tool's
    // call below takes to give up: four attempts that each wait 2 s for a thread, and the backoff
    // between them; with 10 s a loaded CI machine saw the last attempt find a thread) ...
    define(
        &client,
        &api,
        "spin",
        json!({"verification": {"scheme": "none"}, "transform": "range(1e15) | select(. % 1000000 == 0)", "transform_timeout_ms": 20_000}),
    )
    .await;
    let spinning: Vec<_> =
        (0..THREADS).map(|_| tokio::spawn(deliver(&client, &api, "spin", "{}".to_owned(), &[]))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // ... a delivery waits its 300 ms bound in the queue and is refused: 503, come back in a
    // second, nothing recorded.
    let secret = "busy-SECRET";
    define(
        &client,
        &api,
        "quick",
        json!({"verification": {"scheme": "github", "secret": secret}, "transform": "{action}",
               "transform_timeout_ms": 300}),
    )
    .await;
    let payload = r#"{"action":"opened"}"#.to_owned();
    let headers = [
        ("x-hub-signature-256", github_signature(secret, &payload)),
        ("x-github-delivery", "d-1".to_owned()),
    ];
    let (status, body, retry_after) = deliver(&client, &api, "quick", payload.clone(), &headers).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "unavailable", "{body}");
    assert_eq!(body["error"]["retryable"], true, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(deliveries(&client, &api, "quick").await.is_empty());

    // A custom tool's response transformation finds no thread either: 503, `unavailable`.
    let tool = json!({
        "name": "status_page",
        "description": "Status of the service",
        "method": "GET",
        "url": format!("{}/status", upstream.base_url()),
        "parameters_schema": {"type": "object", "properties": {}},
        "response_transform": ".status",
    });
    let (status, body) = json_of(
        client.post(api.url("/api/integrations/custom/tools")).json(&tool).send().await.expect("send"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let invoke = || async {
        json_of(
            client
                .post(api.url("/api/tools/status_page/invoke"))
                .json(&json!({"parameters": {}}))
                .send()
                .await
                .expect("send"),
        )
        .await
    };
    let (status, body) = invoke().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "unavailable", "{body}");

    // Once the spinning filters reach their bound the threads serve again, and the sender's retry
    // of the refused delivery is processed as new, not ignored as a duplicate.
    for spin in spinning {
        let (status, body, _) = spin.await.expect("spin task");
        assert_eq!(status, 422, "{body}");
    }
    // (A stopped filter gives its thread back within a term, but its caller's answer may come
    // first: the retry comes back as `Retry-After` says, a bounded number of times.)
    let mut retries = 0;
    let (status, body) = loop {
        let (status, body, _) = deliver(&client, &api, "quick", payload.clone(), &headers).await;
        if status != 503 || retries == 60 {
            break (status, body);
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["duplicate"], false, "{body}");
    let (status, body) = invoke().await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("operational"), "{body}");

    // The runs by outcome and the waits for a thread are on /metrics.
    let metrics = client.get(api.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let runs = |outcome: &str| -> f64 {
        let series = format!("integration_transform_runs_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(runs("ok") >= (5 * THREADS + 2) as f64, "{metrics}");
    assert!(runs("busy") >= 2.0, "{metrics}");
    assert!(runs("timeout") >= THREADS as f64, "{metrics}");
    assert!(metrics.contains("integration_transform_wait_seconds_count"), "{metrics}");
    // The refused delivery is counted as such, the burst's as processed.
    for line in [
        format!(
            "integration_webhook_deliveries_total{{webhook=\"burst\",outcome=\"processed\"}} {}\n",
            5 * THREADS
        ),
        "integration_webhook_deliveries_total{webhook=\"quick\",outcome=\"unavailable\"} ".to_owned(),
        "integration_webhook_deliveries_total{webhook=\"spin\",outcome=\"failed\"} ".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line} not in:\n{metrics}");
    }
}
