//! GitHub through the REST API against the fake GitHub: routes, parameters, errors, rate limits.

use integration_testkit::github::{FakeGitHub, router as github_router};
use integration_testkit::{FakeServer, Fault};
use integrations_e2e::{Api, json_of};
use serde_json::{Value, json};

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    json_of(client.get(url).send().await.expect("send")).await
}

#[tokio::test]
async fn github_tools_through_rest() {
    let github = FakeGitHub::demo();
    let server = FakeServer::start(github_router(github.clone())).await.expect("fake github");
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();
    let (owner, repo) = FakeGitHub::REPO.split_once('/').expect("owner/repo");

    let (status, body) = json_of(
        client
            .post(api.url("/api/integrations/github/configure?test=true"))
            .json(&json!({"token": FakeGitHub::TOKEN, "api_url": server.base_url()}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(FakeGitHub::TOKEN));

    let (status, body) =
        get(&client, api.url(&format!("/api/integrations/github/repos/{owner}/{repo}"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("Rust"), "languages included: {body}");

    let (status, body) =
        get(&client, api.url(&format!("/api/integrations/github/commits?owner={owner}&repo={repo}&limit=2")))
            .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = get(
        &client,
        api.url(&format!("/api/integrations/github/pullrequests?owner={owner}&repo={repo}&state=all")),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, created) = json_of(
        client
            .post(api.url("/api/integrations/github/issues"))
            .json(&json!({"owner": owner, "repo": repo, "title": "Flaky test in CI", "body": "Seen twice today.", "labels": ["bug"]}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, listed) =
        get(&client, api.url(&format!("/api/integrations/github/issues?owner={owner}&repo={repo}"))).await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed.to_string().contains("Flaky test in CI"), "{listed}");

    let (status, body) = get(&client, api.url("/api/integrations/github/repos/octocat/does-not-exist")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["type"], "not_found");

    // a spent budget far beyond the deadline: 429 with Retry-After, no waiting
    let reset =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
            + 3600;
    server.faults().push(
        Fault::status(403)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset.to_string())
            .body(r#"{"message":"API rate limit exceeded"}"#),
    );
    let response = client
        .get(api.url(&format!("/api/integrations/github/repos/{owner}/{repo}?cache=false")))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 429);
    let retry_after: u64 =
        response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry_after > 3000, "{retry_after}");

    // bad token on another connection
    let (status, _) = json_of(
        client
            .post(api.url("/api/integrations/github-bad/configure"))
            .json(&json!({"provider": "github", "token": "ghp_wrong", "api_url": server.base_url()}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = get(
        &client,
        api.url(&format!("/api/integrations/github/repos/{owner}/{repo}?connection=github-bad")),
    )
    .await;
    assert_eq!(status, 401, "{body}");
}
