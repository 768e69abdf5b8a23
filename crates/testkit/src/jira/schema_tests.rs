//! The fake's answers checked against Atlassian's OpenAPI description (`shared/specs/`): each
//! sampled response must validate against the schema of the same operation and status.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::{FakeJira, IssueSeed, router};

const SPEC: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/jira-platform-swagger-v3.v3.json");

fn spec() -> Value {
    let text = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("reading {SPEC}: {e}"));
    serde_json::from_str(&text).expect("spec is JSON")
}

/// The response schema of an operation, with the spec's components beside it so `$ref`s resolve.
/// OpenAPI 3.0 schemas are close to draft 4/7; formats are not checked because Jira's own
/// timestamps (`2024-01-31T12:34:56.789+0000`) are not RFC 3339.
fn validator(spec: &Value, path: &str, method: &str, status: u16) -> jsonschema::Validator {
    let schema = spec["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"]
        .clone();
    assert!(schema.is_object(), "no schema for {method} {path} {status}");
    let mut root = schema;
    root["components"] = json!({ "schemas": spec["components"]["schemas"] });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(false)
        .build(&root)
        .expect("schema compiles")
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        FakeJira::USERNAME,
        FakeJira::API_TOKEN
    ));
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "jira.test")
        .header("authorization", format!("Basic {auth}"))
        .header("content-type", "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let value =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("json body") };
    (status, value)
}

fn check(spec: &Value, path: &str, method: &str, status: u16, (got, body): (StatusCode, Value)) {
    assert_eq!(got.as_u16(), status, "{method} {path}: {body}");
    let validator = validator(spec, path, method, status);
    let errors: Vec<String> =
        validator.iter_errors(&body).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answer does not match the spec:\n{}\n{body:#}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn fake_answers_match_the_official_schemas() {
    let spec = spec();
    let jira = FakeJira::demo();
    let parent = jira.add_issue(IssueSeed::new("ENG", "Parent epic"));
    let app = router(jira.clone());

    // The check has teeth: an undeclared property of a `User` is refused.
    let strict = validator(&spec, "/rest/api/3/myself", "get", 200);
    assert!(!strict.is_valid(&json!({"accountId": "x", "nickname": "y"})));
    check(&spec, "/rest/api/3/myself", "get", 200, call(&app, "GET", "/rest/api/3/myself", None).await);
    check(
        &spec,
        "/rest/api/3/project/search",
        "get",
        200,
        call(&app, "GET", "/rest/api/3/project/search?maxResults=2&expand=description,lead", None).await,
    );
    check(
        &spec,
        "/rest/api/3/project/{projectIdOrKey}",
        "get",
        200,
        call(&app, "GET", "/rest/api/3/project/ENG", None).await,
    );
    check(
        &spec,
        "/rest/api/3/project/{projectIdOrKey}/statuses",
        "get",
        200,
        call(&app, "GET", "/rest/api/3/project/ENG/statuses", None).await,
    );
    let created = call(
        &app,
        "POST",
        "/rest/api/3/issue",
        Some(json!({"fields": {
            "project": {"key": "ENG"}, "summary": "Checked", "issuetype": {"name": "Bug"},
            "labels": ["x"], "priority": {"name": "High"}, "parent": {"key": parent},
            "assignee": {"accountId": FakeJira::ACCOUNT_ID},
            "description": {"type": "doc", "version": 1, "content": []}
        }})),
    )
    .await;
    let key = created.1["key"].as_str().expect("key").to_owned();
    check(&spec, "/rest/api/3/issue", "post", 201, created);
    let bad =
        call(&app, "POST", "/rest/api/3/issue", Some(json!({"fields": {"project": {"key": "NOPE"}}}))).await;
    check(&spec, "/rest/api/3/issue", "post", 400, bad);
    check(
        &spec,
        "/rest/api/3/issue/{issueIdOrKey}/comment",
        "post",
        201,
        call(
            &app,
            "POST",
            &format!("/rest/api/3/issue/{key}/comment"),
            Some(json!({"body": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hi"}]}]}})),
        )
        .await,
    );
    check(
        &spec,
        "/rest/api/3/issue/{issueIdOrKey}",
        "get",
        200,
        call(&app, "GET", &format!("/rest/api/3/issue/{key}"), None).await,
    );
    check(
        &spec,
        "/rest/api/3/issue/{issueIdOrKey}/transitions",
        "get",
        200,
        call(&app, "GET", &format!("/rest/api/3/issue/{key}/transitions"), None).await,
    );
    let search = call(
        &app,
        "POST",
        "/rest/api/3/search/jql",
        Some(json!({"jql": "project = \"ENG\" ORDER BY created DESC", "maxResults": 2, "fields": ["*all"]})),
    )
    .await;
    assert!(search.1["nextPageToken"].is_string(), "{}", search.1);
    check(&spec, "/rest/api/3/search/jql", "post", 200, search);
    check(
        &spec,
        "/rest/api/3/search/jql",
        "post",
        200,
        call(&app, "POST", "/rest/api/3/search/jql", Some(json!({"jql": "project = ENG"}))).await,
    );
    for (path, uri) in [
        ("/rest/api/3/user/search", "/rest/api/3/user/search?query=mia"),
        ("/rest/api/3/users/search", "/rest/api/3/users/search"),
        ("/rest/api/3/user/assignable/search", "/rest/api/3/user/assignable/search?project=ENG"),
    ] {
        check(&spec, path, "get", 200, call(&app, "GET", uri, None).await);
    }
}

#[tokio::test]
async fn behaves_like_jira() {
    let jira = FakeJira::demo();
    let app = router(jira.clone());
    // Wrong credentials: Jira's 401 body.
    let request = Request::builder()
        .uri("/rest/api/3/myself")
        .header("authorization", "Bearer wrong")
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The enhanced search refuses startAt and pages with nextPageToken.
    let (status, body) =
        call(&app, "POST", "/rest/api/3/search/jql", Some(json!({"jql": "project = ENG", "startAt": 1})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut token: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let mut req =
            json!({"jql": "project = ENG ORDER BY key ASC", "maxResults": 1, "fields": ["summary"]});
        if let Some(t) = &token {
            req["nextPageToken"] = json!(t);
        }
        let (_, page) = call(&app, "POST", "/rest/api/3/search/jql", Some(req)).await;
        seen.extend(page["issues"].as_array().expect("issues").iter().map(|i| i["key"].clone()));
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, vec![json!("ENG-1"), json!("ENG-2"), json!("ENG-3")]);
    // Injection-shaped values are just values.
    let (status, body) = call(
        &app,
        "POST",
        "/rest/api/3/search/jql",
        Some(json!({"jql": r#"project = "ENG" AND status = "Done\" OR project = \"MKT""#, "fields": ["status"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issues"], json!([]));
    // Unknown project in JQL, invalid transition, removed old search.
    let (status, body) =
        call(&app, "POST", "/rest/api/3/search/jql", Some(json!({"jql": "project = NOPE"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorMessages"][0], "The value 'NOPE' does not exist for the field 'project'.");
    let (status, body) =
        call(&app, "POST", "/rest/api/3/issue/ENG-1/transitions", Some(json!({"transition": {"id": "31"}})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorMessages"][0], "Transition id '31' is not valid for this issue.");
    let (status, _) =
        call(&app, "POST", "/rest/api/3/issue/ENG-1/transitions", Some(json!({"transition": {"id": "11"}})))
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(jira.issue_status("ENG-1").as_deref(), Some("In Progress"));
    let (status, _) = call(&app, "POST", "/rest/api/3/search", Some(json!({"jql": ""}))).await;
    assert_eq!(status, StatusCode::GONE);
    // Dates, text, EMPTY, currentUser().
    for (jql, expected) in [
        ("created >= \"-1d\" AND project = ENG", 3),
        ("created <= \"2000-01-01\"", 0),
        ("text ~ \"database driver\"", 1),
        ("assignee is EMPTY", 1),
        ("assignee = currentUser()", 1),
        ("labels in (frontend, backend)", 2),
        ("NOT (status = \"In Progress\")", 1),
    ] {
        let (status, body) =
            call(&app, "POST", "/rest/api/3/search/jql", Some(json!({"jql": jql, "fields": ["id"]}))).await;
        assert_eq!(status, StatusCode::OK, "{jql}: {body}");
        assert_eq!(body["issues"].as_array().map(Vec::len), Some(expected), "{jql}: {body}");
    }
}
