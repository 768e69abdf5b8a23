//! The fake's answers against the schemas of GitHub's OpenAPI description
//! (`../shared/specs/github-api.github.com.json`), and its token, rate-limit and paging behaviour.

use serde_json::{Value, json};

use super::{FakeGitHub, router};
use crate::FakeServer;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/github-api.github.com.json");

/// OpenAPI 3.0 → JSON Schema: `nullable: true` becomes `anyOf [schema, null]`, recursively.
fn convert(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k == "nullable" || k == "discriminator" || k == "example" || k == "examples" {
                    continue;
                }
                out.insert(k.clone(), convert(v));
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                json!({"anyOf": [Value::Object(out), {"type": "null"}]})
            } else {
                Value::Object(out)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
        other => other.clone(),
    }
}

struct Spec {
    doc: Value,
    components: Value,
}

impl Spec {
    fn load() -> Option<Self> {
        let text = std::fs::read_to_string(SPEC).ok()?;
        let doc: Value = serde_json::from_str(&text).ok()?;
        let components = convert(&doc["components"]);
        Some(Self { doc, components })
    }

    /// Validate `body` against the response schema of `method path` for `status`.
    fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "no operation {method} {path} in the spec");
        let mut response = op["responses"][status.to_string()].clone();
        if let Some(r) = response.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            response = self.doc["components"]["responses"][name].clone();
        }
        let schema = convert(&response["content"]["application/json"]["schema"]);
        assert!(schema.is_object(), "no schema for {method} {path} {status}");
        let mut root = schema.as_object().cloned().unwrap_or_default();
        root.insert("components".into(), self.components.clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&Value::Object(root))
            .expect("schema compiles");
        let errors: Vec<String> =
            validator.iter_errors(body).take(10).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{method} {path} ({status}) does not match the spec:\n{}",
            errors.join("\n")
        );
    }
}

async fn fake() -> (FakeGitHub, FakeServer, reqwest::Client) {
    let gh = FakeGitHub::demo();
    let server = FakeServer::start(router(gh.clone())).await.expect("server starts");
    (gh, server, reqwest::Client::new())
}

async fn call(
    client: &reqwest::Client,
    server: &FakeServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = client
        .request(method, format!("{}{path}", server.base_url()))
        .header("authorization", format!("Bearer {}", FakeGitHub::TOKEN));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn answers_match_the_official_schemas() {
    let Some(spec) = Spec::load() else {
        eprintln!("skipping: {SPEC} not found");
        return;
    };
    // The check bites: a repository without its required fields is refused.
    let broken =
        std::panic::catch_unwind(|| spec.check("get", "/repos/{owner}/{repo}", 200, &json!({"id": 1})));
    assert!(broken.is_err(), "an incomplete repository must fail validation");
    let (_gh, server, client) = fake().await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;
    let cases: Vec<(reqwest::Method, String, &str, Option<Value>, u16)> = vec![
        (get.clone(), "/user".into(), "/user", None, 200),
        (get.clone(), "/rate_limit".into(), "/rate_limit", None, 200),
        (get.clone(), "/search/repositories?q=rust".into(), "/search/repositories", None, 200),
        (get.clone(), "/repos/octocat/hello-world".into(), "/repos/{owner}/{repo}", None, 200),
        (get.clone(), "/repos/octocat/nope".into(), "/repos/{owner}/{repo}", None, 404),
        (
            get.clone(),
            "/repos/octocat/hello-world/languages".into(),
            "/repos/{owner}/{repo}/languages",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/commits".into(),
            "/repos/{owner}/{repo}/commits",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/commits/main".into(),
            "/repos/{owner}/{repo}/commits/{ref}",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/commits/feature%2Fshout/status".into(),
            "/repos/{owner}/{repo}/commits/{ref}/status",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/commits/feature%2Fshout/check-runs".into(),
            "/repos/{owner}/{repo}/commits/{ref}/check-runs",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/compare/main...feature%2Fshout".into(),
            "/repos/{owner}/{repo}/compare/{basehead}",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/contents/src/main.rs".into(),
            "/repos/{owner}/{repo}/contents/{path}",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/contents/src".into(),
            "/repos/{owner}/{repo}/contents/{path}",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/pulls?state=all".into(),
            "/repos/{owner}/{repo}/pulls",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/pulls/1".into(),
            "/repos/{owner}/{repo}/pulls/{pull_number}",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/pulls/1/files".into(),
            "/repos/{owner}/{repo}/pulls/{pull_number}/files",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/pulls/1/commits".into(),
            "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
            None,
            200,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/pulls/1/reviews".into(),
            "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
            None,
            200,
        ),
        (
            post.clone(),
            "/repos/octocat/hello-world/issues".into(),
            "/repos/{owner}/{repo}/issues",
            Some(
                json!({"title": "From the test", "labels": ["bug"], "assignees": ["hubot"], "milestone": 1}),
            ),
            201,
        ),
        (
            post.clone(),
            "/repos/octocat/hello-world/issues".into(),
            "/repos/{owner}/{repo}/issues",
            Some(json!({})),
            422,
        ),
        (
            get.clone(),
            "/repos/octocat/hello-world/issues?state=all".into(),
            "/repos/{owner}/{repo}/issues",
            None,
            200,
        ),
        (
            patch.clone(),
            "/repos/octocat/hello-world/issues/2".into(),
            "/repos/{owner}/{repo}/issues/{issue_number}",
            Some(json!({
                "title": "Edited by the test",
                "body": null,
                "state": "closed",
                "state_reason": "not_planned",
                "labels": ["bug", {"name": "p1"}],
                "assignees": ["hubot"],
                "milestone": 1,
            })),
            200,
        ),
        (
            patch.clone(),
            "/repos/octocat/hello-world/issues/2".into(),
            "/repos/{owner}/{repo}/issues/{issue_number}",
            Some(json!({"state": "shut"})),
            422,
        ),
        (
            patch.clone(),
            "/repos/octocat/hello-world/issues/999".into(),
            "/repos/{owner}/{repo}/issues/{issue_number}",
            Some(json!({"title": "x"})),
            404,
        ),
        (
            post.clone(),
            "/repos/octocat/hello-world/issues/1/comments".into(),
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            Some(json!({"body": "Thanks!"})),
            201,
        ),
    ];
    for (method, url, spec_path, body, expected) in cases {
        let (status, _, answer) = call(&client, &server, method.clone(), &url, body).await;
        assert_eq!(status, expected, "{method} {url}: {answer}");
        spec.check(&method.as_str().to_lowercase(), spec_path, status, &answer);
    }
}

#[tokio::test]
async fn bad_tokens_rate_limits_and_paging() {
    let (gh, server, client) = fake().await;
    let resp = client
        .get(format!("{}/user", server.base_url()))
        .header("authorization", "token wrong")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["message"], "Bad credentials");
    assert!(body["documentation_url"].is_string());

    let (status, headers, _) =
        call(&client, &server, reqwest::Method::GET, "/repos/octocat/hello-world", None).await;
    assert_eq!(status, 200);
    let remaining: u64 =
        headers["x-ratelimit-remaining"].to_str().ok().and_then(|v| v.parse().ok()).expect("header");
    assert_eq!(headers["x-ratelimit-limit"], "5000");
    let (_, headers, _) =
        call(&client, &server, reqwest::Method::GET, "/repos/octocat/hello-world", None).await;
    assert_eq!(
        headers["x-ratelimit-remaining"].to_str().ok().and_then(|v| v.parse().ok()),
        Some(remaining - 1)
    );

    gh.exhaust_rate_limit("core", 120);
    let (status, headers, body) =
        call(&client, &server, reqwest::Method::GET, "/repos/octocat/hello-world", None).await;
    assert_eq!(status, 403);
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(body["message"].as_str().unwrap_or_default().contains("rate limit"));
    gh.set_rate_limit("core", 5000, 3600);

    let (status, headers, page1) =
        call(&client, &server, reqwest::Method::GET, "/repos/octocat/big-history/commits?per_page=100", None)
            .await;
    assert_eq!(status, 200);
    assert_eq!(page1.as_array().map(Vec::len), Some(100));
    let link = headers["link"].to_str().unwrap_or_default().to_owned();
    assert!(link.contains("rel=\"next\"") && link.contains("page=2"), "{link}");
    let (_, headers, page2) = call(
        &client,
        &server,
        reqwest::Method::GET,
        "/repos/octocat/big-history/commits?per_page=100&page=2",
        None,
    )
    .await;
    assert_eq!(page2.as_array().map(Vec::len), Some(30));
    assert!(!headers["link"].to_str().unwrap_or_default().contains("rel=\"next\""));
}

#[tokio::test]
async fn issues_are_edited_in_place() {
    let (gh, server, client) = fake().await;
    let (get, patch) = (reqwest::Method::GET, reqwest::Method::PATCH);
    let number = gh.add_issue(FakeGitHub::REPO, "Edit me", "hubot", &["bug", "ci"]);
    let path = format!("/repos/octocat/hello-world/issues/{number}");
    let open_count = |repo: &Value| repo["open_issues_count"].as_u64().expect("open_issues_count");
    let (_, _, repo) = call(&client, &server, get.clone(), "/repos/octocat/hello-world", None).await;
    let open_before = open_count(&repo);
    let (_, _, before) = call(&client, &server, get.clone(), &path, None).await;

    // Title and body; the rest stays.
    let (status, _, edited) =
        call(&client, &server, patch.clone(), &path, Some(json!({"title": "Edited", "body": "New text"})))
            .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!((&edited["title"], &edited["body"]), (&json!("Edited"), &json!("New text")));
    assert_eq!(edited["labels"], before["labels"]);
    assert_eq!(edited["created_at"], before["created_at"]);
    assert!(edited["updated_at"].as_str() > before["updated_at"].as_str(), "{before} then {edited}");
    let (_, _, got) = call(&client, &server, get.clone(), &path, None).await;
    assert_eq!(got, edited, "GET answers the edited issue");

    // Close as not planned: closed_at, and one open issue fewer.
    let (_, _, closed) = call(
        &client,
        &server,
        patch.clone(),
        &path,
        Some(json!({"state": "closed", "state_reason": "not_planned"})),
    )
    .await;
    assert_eq!((&closed["state"], &closed["state_reason"]), (&json!("closed"), &json!("not_planned")));
    assert_eq!(closed["closed_at"], closed["updated_at"]);
    let (_, _, repo) = call(&client, &server, get.clone(), "/repos/octocat/hello-world", None).await;
    assert_eq!(open_count(&repo), open_before - 1);
    // Closed again: closed_at stays.
    let (_, _, again) = call(&client, &server, patch.clone(), &path, Some(json!({"state": "closed"}))).await;
    assert_eq!(again["closed_at"], closed["closed_at"]);
    assert_eq!(again["state_reason"], "not_planned");

    // Reopen: closed_at null, reason `reopened` by default.
    let (_, _, reopened) = call(&client, &server, patch.clone(), &path, Some(json!({"state": "open"}))).await;
    assert_eq!((&reopened["state"], &reopened["state_reason"]), (&json!("open"), &json!("reopened")));
    assert!(reopened["closed_at"].is_null());

    // Labels (names or objects) and assignees replace; `[]` and `null` clear.
    let v2 = gh.add_milestone(FakeGitHub::REPO, "v2.0");
    let (_, _, replaced) = call(
        &client,
        &server,
        patch.clone(),
        &path,
        Some(json!({"labels": ["p1", {"name": "P1"}, {"name": "docs"}], "assignees": ["monalisa"], "milestone": v2})),
    )
    .await;
    let names: Vec<&str> =
        replaced["labels"].as_array().expect("labels").iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names, ["p1", "docs"], "one of each label, in order");
    assert_eq!(replaced["assignee"]["login"], "monalisa");
    assert_eq!(replaced["assignees"][0]["login"], "monalisa");
    assert_eq!(replaced["milestone"]["title"], "v2.0");
    let (_, _, cleared) = call(
        &client,
        &server,
        patch.clone(),
        &path,
        Some(json!({"labels": [], "assignees": [], "milestone": null, "body": null})),
    )
    .await;
    assert_eq!((&cleared["labels"], &cleared["assignees"]), (&json!([]), &json!([])));
    assert!(cleared["milestone"].is_null() && cleared["assignee"].is_null() && cleared["body"].is_null());
    assert_eq!(gh.issue_fields(FakeGitHub::REPO, number), Some((vec![], vec![], None)));

    // A wrong value is a 422 naming the field, and nothing of the edit is applied.
    for (edit, field) in [
        (json!({"title": "Half", "assignees": ["nobody-here"]}), "assignees"),
        (json!({"title": "Half", "milestone": 42}), "milestone"),
        (json!({"title": "Half", "state": "closed", "state_reason": "sleepy"}), "state_reason"),
        (json!({"title": "Half", "state": "closed", "state_reason": "reopened"}), "state_reason"),
        (json!({"title": "  "}), "title"),
        (json!({"title": "Half", "labels": "bug"}), "labels"),
    ] {
        let (status, _, body) = call(&client, &server, patch.clone(), &path, Some(edit.clone())).await;
        assert_eq!(status, 422, "{edit}: {body}");
        assert_eq!(body["message"], "Validation Failed");
        assert_eq!(body["errors"][0]["field"], field, "{edit}: {body}");
    }
    let (_, _, after) = call(&client, &server, get.clone(), &path, None).await;
    assert_eq!(after["title"], "Edited");

    // Unknown issue, repository, or a body that is not JSON.
    let (status, _, _) =
        call(&client, &server, patch.clone(), "/repos/octocat/nope/issues/2", Some(json!({"title": "x"})))
            .await;
    assert_eq!(status, 404);
    let resp = client
        .patch(format!("{}{path}", server.base_url()))
        .header("authorization", format!("Bearer {}", FakeGitHub::TOKEN))
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn pull_requests_are_issues_on_the_issue_endpoints() {
    let (gh, server, client) = fake().await;
    let (get, patch) = (reqwest::Method::GET, reqwest::Method::PATCH);
    let (_, _, pulls) = call(&client, &server, get.clone(), "/repos/octocat/hello-world/pulls", None).await;
    let number = pulls[0]["number"].as_u64().expect("a pull request in the demo");
    let path = format!("/repos/octocat/hello-world/issues/{number}");

    // Listed among the issues and read by number, with GitHub's `pull_request` object.
    let (_, _, all) =
        call(&client, &server, get.clone(), "/repos/octocat/hello-world/issues?state=all&per_page=100", None)
            .await;
    let listed = all.as_array().expect("issues").iter().find(|i| i["number"] == number).cloned();
    let listed = listed.unwrap_or_else(|| panic!("pull request {number} listed in {all}"));
    let (status, _, issue) = call(&client, &server, get.clone(), &path, None).await;
    assert_eq!(status, 200, "{issue}");
    assert_eq!(issue, listed);
    assert_eq!(issue["title"], pulls[0]["title"]);
    assert_eq!(issue["pull_request"]["url"], pulls[0]["url"]);
    assert_eq!(issue["pull_request"]["html_url"], pulls[0]["html_url"]);
    assert_eq!(issue["html_url"], pulls[0]["html_url"]);
    assert!(issue["pull_request"]["merged_at"].is_null());
    let plain = all.as_array().expect("issues").iter().find(|i| i["number"] != number).expect("an issue");
    assert!(plain.get("pull_request").is_none(), "{plain}");

    // Edited through the issue endpoint: the pull request changes.
    let v1 = gh.add_milestone(FakeGitHub::REPO, "v1.1");
    let edit = json!({"title": "Shout louder", "labels": ["ready"], "assignees": ["hubot"], "milestone": v1});
    let (status, _, edited) = call(&client, &server, patch.clone(), &path, Some(edit)).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["title"], "Shout louder");
    assert!(edited["pull_request"].is_object(), "{edited}");
    let pull_path = format!("/repos/octocat/hello-world/pulls/{number}");
    let (_, _, pull) = call(&client, &server, get.clone(), &pull_path, None).await;
    assert_eq!(pull["title"], "Shout louder");
    assert_eq!(pull["labels"][0]["name"], "ready");
    assert_eq!(pull["assignees"][0]["login"], "hubot");
    assert_eq!(pull["milestone"]["title"], "v1.1");
    assert_eq!(pull["updated_at"], edited["updated_at"]);
    assert_eq!(
        gh.issue_fields(FakeGitHub::REPO, number),
        Some((vec!["ready".into()], vec!["hubot".into()], Some(v1)))
    );

    // Closed and reopened through it.
    let (_, _, closed) = call(&client, &server, patch.clone(), &path, Some(json!({"state": "closed"}))).await;
    assert_eq!(closed["state"], "closed");
    let (_, _, pull) = call(&client, &server, get.clone(), &pull_path, None).await;
    assert_eq!((&pull["state"], &pull["merged_at"]), (&json!("closed"), &Value::Null));
    let (_, _, reopened) = call(&client, &server, patch.clone(), &path, Some(json!({"state": "open"}))).await;
    assert_eq!(reopened["state"], "open");

    // A merged pull request cannot change state; its other fields can.
    gh.set_pull_state(FakeGitHub::REPO, number, "merged", None, "unknown");
    let (status, _, refused) =
        call(&client, &server, patch.clone(), &path, Some(json!({"state": "open"}))).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "state");
    let (_, _, merged) = call(&client, &server, get.clone(), &path, None).await;
    assert_eq!(merged["state"], "closed");
    assert!(merged["pull_request"]["merged_at"].is_string(), "{merged}");
    let (status, _, _) = call(&client, &server, patch, &path, Some(json!({"body": "Shipped."}))).await;
    assert_eq!(status, 200);
}

#[test]
fn iso_round_trips() {
    assert_eq!(super::iso(1_296_068_472), "2011-01-26T19:01:12Z");
    assert_eq!(super::parse_iso("2011-01-26T19:01:12Z"), Some(1_296_068_472));
    assert_eq!(super::parse_iso("2011-01-26"), Some(1_296_000_000));
}
