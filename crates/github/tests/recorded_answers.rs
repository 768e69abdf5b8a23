//! The GitHub tools against answers GitHub really sent: PyGithub's replay recordings and octocrab's
//! webhook payloads (`tests/fixtures/SOURCE`), served unchanged by a plain HTTP server. The fake
//! GitHub of the testkit writes the shapes we expect; these are the shapes GitHub answered (some
//! from 2012: no `html_url` on a new comment, a `pull_request` with null URLs on every issue), so a
//! reader that only fits the fake fails here.
//!
//! A recording is routed on the path and method the tool really sends (a recording of PyGithub's
//! `GET /user` answers our `check`'s `GET /user`; its 422 on `POST /user/keys` answers our
//! `POST /repos/{owner}/{repo}/issues`); the status, the headers that matter (`x-ratelimit-*`,
//! `content-type`, `location`) and the body are the recorded ones.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, patch, post};
use integration_core::{
    Connection, ErrorKind, Executor, ExecutorConfig, Integration, IntegrationError, ToolCall, ToolOutcome,
};
use integration_github::{GitHub, models};
use integration_testkit::FakeServer;
use serde_json::{Value, json};

const CREATE_ISSUE: &str = include_str!("fixtures/Repository.testCreateIssue.txt");
const CREATE_ISSUE_ALL: &str = include_str!("fixtures/Repository.testCreateIssueWithAllArguments.txt");
const CREATE_COMMENT: &str = include_str!("fixtures/Issue.testCreateComment.txt");
const EDIT_ISSUE: &str = include_str!("fixtures/Issue.testEditWithAllParameters.txt");
const GET_PULLS: &str = include_str!("fixtures/Repository.testGetPulls.txt");
const BAD_AUTHENTICATION: &str = include_str!("fixtures/Exceptions.testBadAuthentication.txt");
const UNKNOWN_OBJECT: &str = include_str!("fixtures/Exceptions.testUnknownObject.txt");
const INVALID_INPUT: &str = include_str!("fixtures/Exceptions.testInvalidInput.txt");
const RATE_LIMITING: &str = include_str!("fixtures/RateLimiting.testRateLimiting.txt");
const ISSUES_OPENED: &str = include_str!("fixtures/issues_opened_webhook_event.json");
const ISSUE_COMMENT_CREATED: &str = include_str!("fixtures/issue_comment_created_webhook_event.json");
const PULL_REQUEST_OPENED: &str = include_str!("fixtures/pull_request_opened_webhook_event.json");

/// The token of every connection here: no message or detail may show it.
const TOKEN: &str = "ghp_recordedAnswersToken0123456789abcdef";

/// One recorded exchange of a PyGithub replay file.
#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    path: String,
    /// The request body PyGithub sent (`None` when it sent none).
    request: Option<Value>,
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
}

/// The strings of a Python literal (`[('status', '200 OK'), ('etag', '"x"')]`), in order.
fn python_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            out.push(chars.by_ref().take_while(|d| *d != c).collect());
        }
    }
    out
}

/// The exchanges of a replay file: ten lines each (scheme, method, host, port, path, request
/// headers, request body, status, response headers, response body), separated by blank lines.
fn exchanges(text: &str) -> Vec<Exchange> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let x = &lines[i..i + 10];
        let pairs = python_strings(x[8]);
        out.push(Exchange {
            method: x[1].to_owned(),
            path: x[4].to_owned(),
            request: (x[6] != "None").then(|| serde_json::from_str(x[6]).expect("request body is JSON")),
            status: StatusCode::from_u16(x[7].parse().expect("status")).expect("status"),
            headers: pairs.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect(),
            body: x[9].to_owned(),
        });
        i += 10;
    }
    out
}

/// The exchange of `file` with this method and path.
fn recorded(file: &str, method: &str, path: &str) -> Exchange {
    exchanges(file)
        .into_iter()
        .find(|x| x.method == method && x.path == path)
        .unwrap_or_else(|| panic!("{method} {path} is recorded"))
}

/// The recorded answer: status, the headers that matter, the body unchanged (`content-length`,
/// `content-encoding` and the like describe the recorded transfer, not this one).
fn answer(x: &Exchange) -> Response {
    let mut response = axum::http::Response::builder().status(x.status);
    for (name, value) in &x.headers {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("x-ratelimit-") || lower == "content-type" || lower == "location" {
            response = response.header(name.as_str(), value.as_str());
        }
    }
    response.body(Body::from(x.body.clone())).expect("a recorded answer is a valid response")
}

/// What a tool sent: method, path and query, and the JSON body.
type Sent = Arc<Mutex<Vec<(String, Option<Value>)>>>;

/// Serve each exchange on `(method, path)`; every request that reaches a route is kept in `Sent`.
async fn serve(routes: Vec<(&str, &str, Exchange)>) -> (FakeServer, Connection, Sent) {
    let sent: Sent = Arc::default();
    let mut router = Router::new();
    for (method, path, x) in routes {
        let log = sent.clone();
        let handler = move |uri: Uri, body: Bytes| {
            let x = x.clone();
            async move {
                let json = (!body.is_empty()).then(|| serde_json::from_slice(&body).expect("a JSON body"));
                log.lock().expect("log").push((uri.to_string(), json));
                answer(&x)
            }
        };
        router = match method {
            "GET" => router.route(path, get(handler)),
            "POST" => router.route(path, post(handler)),
            "PATCH" => router.route(path, patch(handler)),
            other => panic!("no route for {other}"),
        };
    }
    let server = FakeServer::start(router).await.expect("server starts");
    let connection = Connection::new("github", "github", json!({ "api_url": server.base_url() }))
        .with_secret("token", TOKEN);
    (server, connection, sent)
}

/// The provider in a registry and an executor that retries (so a retry would show).
fn executor(provider: &GitHub, connection: &Connection) -> Executor {
    let config = ExecutorConfig {
        max_retry_attempts: 3,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..ExecutorConfig::default()
    };
    integration_testkit::executor_for(Arc::new(provider.clone()), connection.clone(), config)
}

async fn outcome(connection: &Connection, tool: &str, params: Value) -> ToolOutcome {
    executor(&GitHub::new(), connection).execute(ToolCall::new(tool, params)).await
}

async fn ok(connection: &Connection, tool: &str, params: Value) -> Value {
    match outcome(connection, tool, params.clone()).await.result {
        Ok(v) => v,
        Err(e) => panic!("{tool} {params} failed: {e} ({:?}, {:?})", e.kind(), e.details()),
    }
}

/// The message, details and debug form of an error do not show the token.
fn assert_no_token(err: &IntegrationError) {
    assert!(!err.message().contains(TOKEN), "{}", err.message());
    assert!(!format!("{:?}", err.details()).contains(TOKEN));
    assert!(!format!("{err:?}").contains(TOKEN));
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn create_issue_reads_the_recorded_issue() {
    let x = recorded(CREATE_ISSUE, "POST", "/repos/PyGithub/PyGithub/issues");
    let (server, connection, sent) =
        serve(vec![("POST", "/repos/PyGithub/PyGithub/issues", x.clone())]).await;
    let issue = ok(
        &connection,
        "github_create_issue",
        json!({"owner": "PyGithub", "repo": "PyGithub", "title": "Issue created by PyGithub"}),
    )
    .await;
    let sent = sent.lock().expect("log").clone();
    assert_eq!(sent, [("/repos/PyGithub/PyGithub/issues".to_owned(), x.request)], "the recorded request");
    assert_eq!(server.calls(), 1);
    assert_eq!(
        issue,
        json!({
            "number": 28,
            "title": "Issue created by PyGithub",
            "state": "open",
            // A 2012 answer: before GitHub had state reasons.
            "state_reason": null,
            "user": "jacquev6",
            "labels": [],
            "assignees": [],
            "milestone": null,
            "comments": 0,
            "body": null,
            // GitHub's 2012 answer has `"pull_request": {"html_url": null, ...}` on a plain issue.
            "is_pull_request": false,
            "html_url": "https://github.com/PyGithub/PyGithub/issues/28",
            "created_at": "2012-05-19T10:38:23Z",
            "updated_at": "2012-05-19T10:38:23Z",
            "closed_at": null,
        })
    );
}

#[tokio::test]
async fn create_issue_with_every_argument_sends_them_and_reads_labels_assignees_milestone() {
    // PyGithub first looked up the user, milestone and label; our tool sends the names as they are.
    let x = recorded(CREATE_ISSUE_ALL, "POST", "/repos/PyGithub/PyGithub/issues");
    let (server, connection, sent) =
        serve(vec![("POST", "/repos/PyGithub/PyGithub/issues", x.clone())]).await;
    let issue = ok(
        &connection,
        "github_create_issue",
        json!({
            "owner": "PyGithub",
            "repo": "PyGithub",
            "title": "Issue also created by PyGithub",
            "body": "Body created by PyGithub",
            "labels": ["Question"],
            "assignees": ["jacquev6", "stuglaser"],
            "milestone": 2,
        }),
    )
    .await;
    // The recorded request less the deprecated single `assignee`.
    let mut expected = x.request.clone().expect("a recorded body");
    expected.as_object_mut().expect("object").remove("assignee");
    assert_eq!(
        sent.lock().expect("log").clone(),
        [("/repos/PyGithub/PyGithub/issues".to_owned(), Some(expected))]
    );
    assert_eq!(server.calls(), 1, "no lookups before the create");
    assert_eq!(issue["number"], 30);
    assert_eq!(issue["title"], "Issue also created by PyGithub");
    assert_eq!(issue["body"], "Body created by PyGithub");
    assert_eq!(issue["user"], "jacquev6");
    assert_eq!(issue["labels"], json!(["Question"]));
    assert_eq!(issue["assignees"], json!(["stuglaser", "jacquev6"]), "in GitHub's order");
    assert_eq!(issue["milestone"], "Version 1.0: coherent public interface");
    assert_eq!(issue["is_pull_request"], false);
    assert_eq!(issue["html_url"], "https://github.com/PyGithub/PyGithub/issues/30");
}

#[tokio::test]
async fn comment_reads_the_recorded_comment() {
    let path = "/repos/PyGithub/PyGithub/issues/28/comments";
    let x = recorded(CREATE_COMMENT, "POST", path);
    let (_server, connection, sent) = serve(vec![("POST", path, x.clone())]).await;
    let comment = ok(
        &connection,
        "github_comment",
        json!({"owner": "PyGithub", "repo": "PyGithub", "issue_number": 28, "body": "Comment created by PyGithub"}),
    )
    .await;
    assert_eq!(sent.lock().expect("log").clone(), [(path.to_owned(), x.request)]);
    assert_eq!(
        comment,
        json!({
            "id": 5808311,
            "issue_number": 28,
            "user": "jacquev6",
            // The 2012 answer has an API `url` but no `html_url`.
            "html_url": null,
            "created_at": "2012-05-20T11:46:42Z",
        })
    );
}

#[tokio::test]
async fn update_issue_sends_the_recorded_edit_and_reads_the_edited_issue() {
    let path = "/repos/PyGithub/PyGithub/issues/28";
    let x = recorded(EDIT_ISSUE, "PATCH", path);
    let (server, connection, sent) = serve(vec![("PATCH", path, x.clone())]).await;
    let issue = ok(
        &connection,
        "github_update_issue",
        json!({
            "owner": "PyGithub",
            "repo": "PyGithub",
            "issue_number": 28,
            "title": "Title edited by PyGithub",
            "body": "Body edited by PyGithub",
            "state": "closed",
            "state_reason": "completed",
            "labels": ["Bug"],
            "assignees": ["jacquev6"],
            "milestone": 2,
        }),
    )
    .await;
    // The very body PyGithub sent, and nothing before it.
    assert_eq!(sent.lock().expect("log").clone(), [(path.to_owned(), x.request.clone())]);
    assert_eq!(server.calls(), 1);
    let edited: Value = serde_json::from_str(&x.body).expect("JSON");
    assert_eq!(issue, models::issue(&edited));
    assert_eq!(issue["number"], 28);
    assert_eq!(issue["title"], "Title edited by PyGithub");
    assert_eq!(issue["body"], "Body edited by PyGithub");
    assert_eq!(issue["state"], "closed");
    assert_eq!(issue["labels"], json!(["Bug"]));
    assert_eq!(issue["assignees"], json!(["jacquev6"]));
    assert_eq!(issue["milestone"], "Version 1.0: coherent public interface");
    assert_eq!(issue["is_pull_request"], false);
    assert!(!models::is_pull_request(&edited));
    assert_eq!(issue["updated_at"], "2012-05-19T10:42:25Z");
    // GitHub in 2012 sent no state reason.
    assert_eq!(issue["state_reason"], Value::Null);

    // Only the fields given are sent; clearing the milestone sends `null`.
    let (_server, connection, sent) = serve(vec![("PATCH", path, x)]).await;
    ok(
        &connection,
        "github_update_issue",
        json!({"owner": "PyGithub", "repo": "PyGithub", "issue_number": 28, "labels": [], "clear_milestone": true}),
    )
    .await;
    assert_eq!(
        sent.lock().expect("log").clone(),
        [(path.to_owned(), Some(json!({"labels": [], "milestone": null})))]
    );
}

#[tokio::test]
async fn list_pull_requests_reads_the_recorded_list() {
    let path = "/repos/PyGithub/PyGithub/pulls";
    let x = recorded(GET_PULLS, "GET", path);
    let (_server, connection, sent) = serve(vec![("GET", path, x.clone())]).await;
    let params = json!({"owner": "PyGithub", "repo": "PyGithub"});
    let listed = ok(&connection, "github_list_pull_requests", params.clone()).await;
    assert_eq!(sent.lock().expect("log").clone(), [(format!("{path}?per_page=30"), None)]);
    assert_eq!(listed["count"], 1);
    assert!(listed["next_cursor"].is_null());
    assert_eq!(
        listed["pull_requests"][0],
        json!({
            "number": 32,
            "title": "Creation of a pull request from an issue is not covered by integration tests",
            "state": "open",
            "draft": null,
            "merged_at": null,
            "user": "jacquev6",
            "head": "master",
            "head_sha": "aff8a573a19f0a42380e1c0cbbc63b6dc719f38e",
            "base": "topic/RewriteWithGeneratedCode",
            "labels": [],
            "requested_reviewers": [],
            "html_url": "https://github.com/PyGithub/PyGithub/pull/32",
            "created_at": "2012-05-27T10:58:41Z",
            "updated_at": "2012-05-27T10:58:41Z",
        })
    );

    let mut raw_params = params;
    raw_params["raw"] = json!(true);
    let raw = ok(&connection, "github_list_pull_requests", raw_params).await;
    let body: Value = serde_json::from_str(&x.body).expect("JSON");
    assert_eq!(raw["pull_requests"], body, "raw is GitHub's list unchanged");
}

#[tokio::test]
async fn bad_credentials_are_an_authentication_error_tried_once() {
    let x = recorded(BAD_AUTHENTICATION, "GET", "/user");
    let (server, connection, _sent) = serve(vec![
        ("POST", "/repos/PyGithub/PyGithub/issues", x.clone()),
        ("GET", "/rate_limit", x.clone()),
        ("GET", "/user", x),
    ])
    .await;
    let outcome = outcome(
        &connection,
        "github_create_issue",
        json!({"owner": "PyGithub", "repo": "PyGithub", "title": "t"}),
    )
    .await;
    let err = outcome.result.expect_err("401");
    assert_eq!(err.kind(), &ErrorKind::Authentication);
    assert!(!err.retryable());
    assert_eq!(err.message(), "github answered 401: Bad credentials");
    assert_no_token(&err);
    assert_eq!(outcome.attempts, 1);
    assert_eq!(server.calls(), 1);

    let err = GitHub::new().check(&connection).await.expect_err("401");
    assert_eq!(err.kind(), &ErrorKind::Authentication);
    assert!(err.message().contains("Bad credentials"), "{}", err.message());
    assert_no_token(&err);
}

#[tokio::test]
async fn an_unknown_repository_is_not_found() {
    // Only the repository is recorded; its `/languages` (also asked for) is not routed: a 404
    // without a body, and the repository's error must win.
    let x = recorded(UNKNOWN_OBJECT, "GET", "/repos/jacquev6/Xxx");
    let (_server, connection, _sent) = serve(vec![("GET", "/repos/jacquev6/Xxx", x)]).await;
    let outcome =
        outcome(&connection, "github_get_repository", json!({"owner": "jacquev6", "repo": "Xxx"})).await;
    let err = outcome.result.expect_err("404");
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(!err.retryable());
    assert_eq!(err.message(), "github answered 404: Not Found");
    assert_no_token(&err);
    assert_eq!(outcome.attempts, 1);
}

#[tokio::test]
async fn a_validation_failure_is_invalid_input_with_githubs_reasons() {
    let x = recorded(INVALID_INPUT, "POST", "/user/keys");
    let (_server, connection, _sent) = serve(vec![("POST", "/repos/PyGithub/PyGithub/issues", x)]).await;
    let outcome = outcome(
        &connection,
        "github_create_issue",
        json!({"owner": "PyGithub", "repo": "PyGithub", "title": "t"}),
    )
    .await;
    let err = outcome.result.expect_err("422");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert!(!err.retryable());
    assert!(
        err.message()
            .starts_with("github answered 422: Validation Failed (key is invalid. It must begin with"),
        "GitHub's reason is in the message: {}",
        err.message()
    );
    let details = err.details().expect("GitHub's errors");
    assert_eq!(details["errors"][0]["field"], "key");
    assert!(
        details["errors"][0]["message"].as_str().is_some_and(|m| m.starts_with("key is invalid.")),
        "{details}"
    );
    assert_no_token(&err);
    assert_eq!(outcome.attempts, 1);
}

#[tokio::test]
async fn check_reads_the_recorded_rate_limits_body_and_headers() {
    let limits = recorded(RATE_LIMITING, "GET", "/rate_limit");
    // PyGithub read `/users/yurinnick`; `check` reads the token's own user at `/user`.
    let user = recorded(RATE_LIMITING, "GET", "/users/yurinnick");
    let (server, connection, _sent) =
        serve(vec![("GET", "/rate_limit", limits), ("GET", "/user", user)]).await;
    let provider = GitHub::new();
    let health = provider.check(&connection).await.expect("check");
    assert_eq!(health.identity.as_deref(), Some("yurinnick"));
    assert_eq!(
        health.details["rate_limit"],
        json!({"limit": 5000, "remaining": 4904, "used": 96, "reset": 1_684_195_041_u64})
    );
    assert_eq!(health.details["rate_limits"]["search"]["limit"], 30);
    // The budgets seen: `/rate_limit`'s body for every resource, then `/user`'s headers for core.
    let seen = &health.details["last_seen"];
    assert_eq!(
        seen["core"],
        json!({"resource": "core", "limit": 5000, "remaining": 4903, "used": 97, "reset": 1_684_195_041_u64})
    );
    assert_eq!(
        seen["search"],
        json!({"resource": "search", "limit": 30, "remaining": 30, "used": 0, "reset": 1_684_191_622_u64})
    );
    let budgets = provider.rate_limits("github").expect("a client of the connection");
    assert_eq!(budgets["core"].remaining, 4903);
    assert_eq!(budgets["dependency_snapshots"].limit, 100);
    assert_eq!(server.calls(), 2);
}

#[test]
fn the_readers_read_octocrabs_webhook_payloads() {
    let opened: Value = serde_json::from_str(ISSUES_OPENED).expect("JSON");
    assert_eq!(
        models::issue(&opened["issue"]),
        json!({
            "number": 1,
            "title": "Add option to remove the notification",
            "state": "open",
            "state_reason": null,
            "user": "gagbo",
            "labels": [],
            "assignees": [],
            "milestone": null,
            "comments": 0,
            "body": "The notification can be annoying for non noice users, so it should be an option in setup to remove it.",
            "is_pull_request": false,
            "html_url": "https://github.com/gagbo/circadian.nvim/issues/1",
            "created_at": "2023-07-13T09:37:01Z",
            "updated_at": "2023-07-13T09:37:01Z",
            "closed_at": null,
        })
    );
    let repo = models::repository(&opened["repository"]);
    assert_eq!(repo["full_name"], "gagbo/circadian.nvim");
    assert_eq!(repo["owner"], "gagbo");
    assert_eq!(repo["description"], "An automatic neovim theme-switcher following the Sun");
    assert_eq!(repo["language"], "Lua");
    assert_eq!(repo["default_branch"], "trunk");
    assert_eq!(repo["topics"], json!(["circadian", "neovim", "neovim-plugin", "neovim-theme"]));
    assert_eq!(repo["open_issues"], 1);
    assert_eq!(repo["license"], Value::Null);

    let commented: Value = serde_json::from_str(ISSUE_COMMENT_CREATED).expect("JSON");
    let issue = models::issue(&commented["issue"]);
    assert_eq!(issue["number"], 1);
    assert_eq!(issue["title"], "Ping");
    assert_eq!(issue["comments"], 1);
    assert_eq!(issue["body"], Value::Null);
    assert_eq!(issue["is_pull_request"], false);
    assert_eq!(issue["html_url"], "https://github.com/gagbo/ouro-closures/issues/1");
    assert_eq!(models::repository(&commented["repository"])["language"], "Rust");

    let pr: Value = serde_json::from_str(PULL_REQUEST_OPENED).expect("JSON");
    let pull = models::pull_request(&pr["pull_request"]);
    assert_eq!(pull["number"], 2);
    assert_eq!(pull["title"], "[do not merge] test commit");
    assert_eq!(pull["draft"], false);
    assert_eq!(pull["user"], "gagbo");
    assert_eq!(pull["head"], "test_pr");
    assert_eq!(pull["head_sha"], "36afaef2afdf0ce794d7e4663e7f327664aaa4d7");
    assert_eq!(pull["base"], "trunk");
    assert_eq!(pull["html_url"], "https://github.com/gagbo/ouro-closures/pull/2");
}

#[test]
fn a_pull_request_listed_as_an_issue_is_one() {
    // The shape of an issue that is a pull request (GitHub's `issue` schema: URLs set), next to the
    // recorded plain issue whose `pull_request` URLs are null.
    let x = recorded(CREATE_ISSUE, "POST", "/repos/PyGithub/PyGithub/issues");
    let mut issue: Value = serde_json::from_str(&x.body).expect("JSON");
    assert!(!models::is_pull_request(&issue));
    issue["pull_request"]["html_url"] = json!("https://github.com/PyGithub/PyGithub/pull/28");
    assert!(models::is_pull_request(&issue));
    assert_eq!(models::issue(&issue)["is_pull_request"], true);
    issue.as_object_mut().expect("object").remove("pull_request");
    assert!(!models::is_pull_request(&issue));
}
