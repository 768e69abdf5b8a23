//! The REST API end to end: connection management on SQLite and PostgreSQL, the Jira tools against
//! the fake Jira, caching (in memory and on Redis shared by two replicas), errors and retries.

use std::time::{Duration, Instant};

use integration_testkit::jira::{FakeJira, router as jira_router};
use integration_testkit::{FakeServer, Fault};
use integrations_e2e::{Api, PgSchema, REDIS_URL, json_of};
use serde_json::{Value, json};

const SEARCH: &str = "/rest/api/3/project/search";

async fn fake_jira() -> (FakeJira, FakeServer) {
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    (jira, server)
}

fn jira_config(server: &FakeServer) -> Value {
    json!({"base_url": server.base_url(), "username": FakeJira::USERNAME, "api_token": FakeJira::API_TOKEN})
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    json_of(client.post(url).json(&body).send().await.expect("send")).await
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    json_of(client.get(url).send().await.expect("send")).await
}

#[tokio::test]
async fn jira_tools_through_rest_on_the_embedded_store() {
    let (jira, server) = fake_jira().await;
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();

    // not configured yet: a clear 424 naming the connection
    let (status, body) = get(&client, api.url("/api/integrations/jira/projects/ENG")).await;
    assert_eq!(status, 424, "{body}");
    assert_eq!(body["error"]["type"], "configuration");

    // configure with a connection check
    let (status, body) =
        post(&client, api.url("/api/integrations/jira/configure?test=true"), jira_config(&server)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["check"]["ok"], true);
    assert!(!body.to_string().contains(FakeJira::API_TOKEN), "the token is never read back: {body}");
    assert_eq!(body["connection"]["secret_fields"], json!(["api_token"]));

    // find a project twice: the second answer comes from the cache
    let (status, first) =
        get(&client, api.url("/api/integrations/jira/projects?project_name=engineering")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["key"], "ENG");
    let (_, second) = get(&client, api.url("/api/integrations/jira/projects?project_name=Engineering")).await;
    assert_eq!(second["key"], "ENG");
    assert_eq!(server.calls_to(SEARCH), 1, "project list served from the cache the second time");
    let (_, _) = get(&client, api.url("/api/integrations/jira/projects?project_name=ENG&cache=false")).await;
    assert_eq!(server.calls_to(SEARCH), 2, "cache=false bypasses the cache");

    // unknown project: 404 with the closest names
    let (status, body) =
        get(&client, api.url("/api/integrations/jira/projects?project_name=Enginering")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["type"], "not_found");
    assert!(body["error"]["details"].to_string().contains("Engineering"), "{body}");

    // create an issue, then find it by search
    let issues_before = jira.issue_count();
    let (status, created) = post(
        &client,
        api.url("/api/integrations/jira/issues"),
        json!({"project_key": "ENG", "summary": "Rotate the API keys", "description": "Do it *today*.\n\n- first\n- second", "labels": ["security"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key").to_owned();
    assert_eq!(jira.issue_count(), issues_before + 1);
    let (status, found) =
        get(&client, api.url("/api/integrations/jira/issues?project_key=ENG&labels=security")).await;
    assert_eq!(status, 200, "{found}");
    assert!(found.to_string().contains(&key), "{found}");

    // a hostile filter value stays a value
    let (status, body) = get(
        &client,
        api.url("/api/integrations/jira/issues?project_key=ENG&status=Done%22%20OR%20project%20%3D%20MKT"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("MKT-"), "no injection: {body}");

    // invalid parameters: 422 listing the violation
    let (status, body) = get(&client, api.url("/api/integrations/jira/issues?limit=-1")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["violations"][0]["pointer"], "/limit");

    // 429 twice with Retry-After, then success after the retries
    server
        .faults()
        .push(Fault::status(429).header("retry-after", "1").times(2).on_path("/rest/api/3/search/jql"));
    let before = server.calls_to("/rest/api/3/search/jql");
    let started = Instant::now();
    let (status, body) = get(&client, api.url("/api/integrations/jira/issues?project_key=ENG")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.calls_to("/rest/api/3/search/jql") - before, 3);
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After honoured");

    // an invalid transition is the caller's error, not ours
    let (status, body) = post(
        &client,
        api.url(&format!("/api/integrations/jira/issues/{key}/transitions")),
        json!({"transition_id": "999"}),
    )
    .await;
    assert!(status == 400 || status == 409 || status == 422, "{status} {body}");

    // status shows the calls, the source and the last check; no secret
    let (status, body) = get(&client, api.url("/api/integrations/jira/status")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "store");
    assert_eq!(body["last_check"]["ok"], true);
    assert!(body["last_15_minutes"]["calls"].as_u64().unwrap_or(0) >= 5, "{body}");
    assert!(!body.to_string().contains(FakeJira::API_TOKEN));

    // delete: the next call is a configuration error again
    let response = client.delete(api.url("/api/integrations/jira")).send().await.expect("delete");
    assert_eq!(response.status(), 204);
    let (status, _) = get(&client, api.url("/api/integrations/jira/projects/ENG")).await;
    assert_eq!(status, 424);
}

#[tokio::test]
async fn bad_credentials_and_unknown_names() {
    let (_jira, server) = fake_jira().await;
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();
    let mut wrong = jira_config(&server);
    wrong["api_token"] = json!("not-the-token");
    wrong["provider"] = json!("jira");

    // ?test=true with bad credentials: 401 and nothing saved
    let (status, body) =
        post(&client, api.url("/api/integrations/jira-eu/configure?test=true"), wrong.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "authentication");
    let (status, _) = get(&client, api.url("/api/integrations/jira-eu/status")).await;
    assert_eq!(status, 404, "nothing was saved");

    // saved without a check, a call fails as authentication, exactly one upstream attempt
    let (status, _) = post(&client, api.url("/api/integrations/jira-eu/configure"), wrong).await;
    assert_eq!(status, 200);
    let before = server.calls();
    let (status, body) =
        get(&client, api.url("/api/integrations/jira/projects/ENG?connection=jira-eu")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(server.calls() - before, 1, "authentication errors are not retried");
    let (status, body) = post(&client, api.url("/api/integrations/jira-eu/test"), json!({})).await;
    assert_eq!(status, 401, "{body}");
    let (_, status_body) = get(&client, api.url("/api/integrations/jira-eu/status")).await;
    assert_eq!(status_body["last_check"]["ok"], false, "{status_body}");

    // a non-provider name without "provider", an unknown provider, a bad body
    let (status, body) =
        post(&client, api.url("/api/integrations/mystery/configure"), jira_config(&server)).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("jira"),
        "names the known ones: {body}"
    );
    let mut other = jira_config(&server);
    other["provider"] = json!("trello");
    let (status, _) = post(&client, api.url("/api/integrations/x/configure"), other).await;
    assert_eq!(status, 404);
    let (status, body) = post(
        &client,
        api.url("/api/integrations/jira/configure"),
        json!({"base_url": 3, "api_token": "secret-canary-1", "extra": true}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["details"]["violations"].as_array().map(|v| v.len() >= 2).unwrap_or(false),
        "{body}"
    );
    assert!(!body.to_string().contains("secret-canary-1"), "values are never echoed");

    // URLs no call could use are refused when configured, and the working connection stays.
    let mut good = jira_config(&server);
    good["provider"] = json!("jira");
    let (status, body) = post(&client, api.url("/api/integrations/jira-eu/configure"), good).await;
    assert_eq!(status, 200, "{body}");
    for (provider, field, url) in [
        ("jira", "base_url", "file:///etc/passwd"),
        ("jira", "base_url", "not a url"),
        ("jira", "base_url", "https://bot:url-canary-2@example.atlassian.net"),
        ("github", "api_url", "ftp://github.example.com"),
        ("slack", "api_url", "https://slack.example.com/api/?token=xoxb-canary"),
    ] {
        let mut body = match provider {
            "jira" => jira_config(&server),
            "github" => json!({"token": "ghp_canary"}),
            _ => json!({"bot_token": "xoxb-canary"}),
        };
        body["provider"] = json!(provider);
        body[field] = json!(url);
        let (status, answer) = post(&client, api.url("/api/integrations/jira-eu/configure"), body).await;
        assert_eq!(status, 422, "{url}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_input", "{answer}");
        assert_eq!(answer["error"]["details"]["violations"][0]["pointer"], format!("/{field}"), "{answer}");
        assert!(!answer.to_string().contains("canary"), "{answer}");
    }
    // So are tokens no HTTP header can carry (a line break pasted with them): every call would
    // fail inside the HTTP client (GitHub's panicked, answering nothing).
    for (provider, field, body) in [
        ("jira", "api_token", json!({"api_token": "canary-token\n"})),
        ("jira", "personal_access_token", json!({"personal_access_token": "canary\r\ntoken"})),
        ("github", "token", json!({"token": "ghp_canary\n"})),
        ("slack", "bot_token", json!({"bot_token": "xoxb-canary\u{0}"})),
    ] {
        let mut config = if provider == "jira" { jira_config(&server) } else { json!({}) };
        for (key, value) in body.as_object().into_iter().flatten() {
            config[key] = value.clone();
        }
        config["provider"] = json!(provider);
        let body = config;
        let (status, answer) = post(&client, api.url("/api/integrations/jira-eu/configure"), body).await;
        assert_eq!(status, 422, "{provider} {field}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_input", "{answer}");
        assert_eq!(answer["error"]["details"]["violations"][0]["pointer"], format!("/{field}"), "{answer}");
        assert!(!answer.to_string().contains("canary"), "{answer}");
    }
    let (_, status_body) = get(&client, api.url("/api/integrations/jira-eu/status")).await;
    assert_eq!(status_body["stored"]["provider"], "jira", "{status_body}");
    assert_eq!(status_body["stored"]["config"]["base_url"], json!(server.base_url()), "{status_body}");

    let response = client
        .post(api.url("/api/integrations/jira/configure"))
        .header("content-type", "application/json")
        .body("{\"base_url\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let response = client.delete(api.url("/api/integrations/never-was")).send().await.expect("send");
    assert_eq!(response.status(), 404);

    // An idempotency key is 1-255 printable ASCII characters, in the body or the header, on the
    // invoke endpoint and the tool routes (it travels on as an upstream header).
    let invoke = api.url("/api/tools/jira_project_finder/invoke");
    for key in ["k".repeat(256), "line\nbreak".to_owned(), "tab\there".to_owned()] {
        let body = json!({"parameters": {"project_name": "Engineering"}, "idempotency_key": key});
        let (status, answer) = post(&client, invoke.clone(), body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap_or_default().contains("idempotency key"),
            "{answer}"
        );
    }
    let long = "k".repeat(256);
    let answer = client
        .get(api.url("/api/integrations/jira/projects?project_name=Engineering"))
        .header("idempotency-key", &long)
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), 400);
    let body = json!({"parameters": {"project_name": "Engineering"}, "idempotency_key": "k".repeat(255)});
    let (status, answer) = post(&client, invoke, body).await;
    assert_ne!(status, 400, "255 characters are a key: {answer}");
}

#[tokio::test]
async fn postgres_replicas_share_configuration_and_the_redis_cache() {
    let (_jira, server) = fake_jira().await;
    let schema = PgSchema::create().await.expect("schema");
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // base64 of 32 bytes
    let url = schema.url();
    let options = ["--database-url", url.as_str(), "--master-key", key, "--redis-url", REDIS_URL];
    let a = Api::start(&options).await.expect("replica a");
    let b = Api::start(&options).await.expect("replica b");
    assert_eq!(a.app.store.backend(), "postgres");
    let client = reqwest::Client::new();

    let (status, body) = post(&client, a.url("/api/integrations/jira/configure"), jira_config(&server)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&client, a.url("/api/integrations/jira/projects?project_name=Operations")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.calls_to(SEARCH), 1);

    // replica b sees the new connection within a few seconds, and its answer comes from Redis
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) =
            get(&client, b.url("/api/integrations/jira/projects?project_name=Operations")).await;
        if status == 200 {
            assert_eq!(body["key"], "OPS");
            break;
        }
        assert!(Instant::now() < deadline, "replica b never saw the connection: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.calls_to(SEARCH), 1, "replica b was served from the shared cache");
    let (_, status_b) = get(&client, b.url("/api/integrations/jira/status")).await;
    assert_eq!(status_b["rate_limit"]["limiter"], "redis", "{status_b}");
    assert!(status_b["rate_limit"]["remaining"].as_u64().is_some(), "{status_b}");

    // a delete on a reaches b too
    let response = client.delete(a.url("/api/integrations/jira")).send().await.expect("delete");
    assert_eq!(response.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = get(&client, b.url("/api/integrations/jira/projects/ENG")).await;
        if status == 424 {
            break;
        }
        assert!(Instant::now() < deadline, "replica b still uses the deleted connection");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.app.store.close().await;
    b.app.store.close().await;
}

#[tokio::test]
async fn postgres_without_a_master_key_refuses_to_start() {
    let schema = PgSchema::create().await.expect("schema");
    let url = schema.url();
    let error = match Api::start(&["--database-url", url.as_str()]).await {
        Ok(_) => panic!("started without a master key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("INTEGRATIONS_MASTER_KEY"), "{error}");
}
