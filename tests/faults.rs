//! Dependencies failing under the api: the database behind a fault proxy goes away and comes back.

use std::time::{Duration, Instant};

use integration_testkit::jira::{FakeJira, router as jira_router};
use integration_testkit::{FakeServer, FaultProxy};
use integrations_e2e::{Api, PgSchema, json_of};
use serde_json::json;

#[tokio::test]
async fn database_outage_answers_503_then_recovers() {
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let schema = PgSchema::create().await.expect("schema");
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().expect("addr")).await.expect("proxy");
    let url = schema.url().replace("127.0.0.1:5432", &proxy.addr().to_string());
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let api = Api::start(&["--database-url", url.as_str(), "--master-key", key]).await.expect("api");
    let client = reqwest::Client::new();
    let config = json!({"base_url": server.base_url(), "username": FakeJira::USERNAME, "api_token": FakeJira::API_TOKEN});
    let (status, body) = json_of(
        client.post(api.url("/api/integrations/jira/configure")).json(&config).send().await.expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let call = || client.get(api.url("/api/integrations/jira/projects/ENG")).send();
    assert_eq!(call().await.expect("send").status(), 200);

    // the database disappears: existing connections are cut, new ones refused
    proxy.refuse(true);
    proxy.reset_all();
    tokio::time::sleep(Duration::from_secs(3)).await; // past the resolver's 2 s cache
    let (status, body) = json_of(call().await.expect("send")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "unavailable");
    assert_eq!(body["error"]["retryable"], true);
    let ready = client.get(api.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 503, "readiness reports the database");
    let health = client.get(api.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200, "the process itself is alive");

    // it comes back: calls succeed again within a few seconds, no restart
    proxy.refuse(false);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = call().await.expect("send").status();
        if status == 200 {
            break;
        }
        assert!(status == 503, "only 503 while recovering, got {status}");
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(client.get(api.url("/readyz")).send().await.expect("readyz").status(), 200);
    // release the database sessions before the schema is dropped
    api.app.store.close().await;
}
