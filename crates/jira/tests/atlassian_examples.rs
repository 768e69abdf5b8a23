//! The Jira tools against Atlassian's own example answers (the examples of the Jira Cloud OpenAPI
//! description, `tests/fixtures/SOURCE`), served unchanged by a plain HTTP server. The fake Jira of
//! the testkit writes the shapes we expect; these are the shapes Atlassian documents, so a reader
//! that only fits the fake fails here (the `comment` field of "Get issue" is a bare array in
//! Atlassian's example, a page in Jira's answers; both must read).

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use integration_core::{Connection, ErrorKind, ExecutorConfig, ToolCall};
use integration_testkit::FakeServer;
use serde_json::{Value, json};

const GET_ISSUE: &str = include_str!("fixtures/get_issue_200.json");
const GET_TRANSITIONS: &str = include_str!("fixtures/get_transitions_200.json");
const ADD_COMMENT: &str = include_str!("fixtures/add_comment_201.json");
const MYSELF: &str = include_str!("fixtures/myself_200.json");
const CREATE_ISSUE_400: &str = include_str!("fixtures/create_issue_400.json");

fn answer(status: StatusCode, body: &'static str) -> axum::response::Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// Each example on the path Atlassian gives it, whatever the request asks.
async fn examples() -> (FakeServer, Connection) {
    let router = Router::new()
        .route("/rest/api/3/issue/{key}", get(|| async { answer(StatusCode::OK, GET_ISSUE) }))
        .route(
            "/rest/api/3/issue/{key}/transitions",
            get(|| async { answer(StatusCode::OK, GET_TRANSITIONS) }),
        )
        .route("/rest/api/3/issue/{key}/comment", post(|| async { answer(StatusCode::CREATED, ADD_COMMENT) }))
        .route("/rest/api/3/myself", get(|| async { answer(StatusCode::OK, MYSELF) }))
        .route("/rest/api/3/issue", post(|| async { answer(StatusCode::BAD_REQUEST, CREATE_ISSUE_400) }));
    let server = FakeServer::start(router).await.expect("server starts");
    let connection = Connection::new(
        "jira",
        "jira",
        json!({"base_url": server.base_url(), "username": "bot@example.com"}),
    )
    .with_secret("api_token", "token");
    (server, connection)
}

async fn call(
    connection: &Connection,
    tool: &str,
    params: Value,
) -> Result<Value, integration_core::IntegrationError> {
    let config = ExecutorConfig { max_retry_attempts: 0, ..ExecutorConfig::default() };
    let executor =
        integration_testkit::executor_for(integration_jira::provider(), connection.clone(), config);
    executor.execute(ToolCall::new(tool, params)).await.result
}

#[tokio::test]
async fn get_issue_reads_atlassians_example() {
    let (_server, connection) = examples().await;
    let issue = call(&connection, "jira_get_issue", json!({"key": "ED-1"})).await.expect("get issue");
    assert_eq!(issue["key"], "ED-1");
    assert_eq!(issue["project"], "EX");
    assert!(issue["description"].as_str().is_some_and(|d| d.contains("Main order flow broken")), "{issue}");
    assert_eq!(issue["comment_count"], 1, "{issue}");
    assert_eq!(issue["comments"][0]["author"], "Mia Krystof");
    assert!(
        issue["comments"][0]["body"].as_str().is_some_and(|b| b.starts_with("Lorem ipsum dolor sit amet"))
    );
    assert_eq!(issue["comments"][0]["created"], "2021-01-17T12:34:00.000+0000");
}

#[tokio::test]
async fn transitions_and_a_new_comment_read_atlassians_examples() {
    let (_server, connection) = examples().await;
    let listed =
        call(&connection, "jira_list_transitions", json!({"key": "ED-1"})).await.expect("transitions");
    assert_eq!(
        listed["transitions"],
        json!([
            {"id": "2", "name": "Close Issue", "to_status": "In Progress", "to_status_category": "in-flight"},
            {"id": "711", "name": "QA Review", "to_status": "Closed", "to_status_category": "completed"},
        ])
    );
    let comment = call(&connection, "jira_add_comment", json!({"key": "ED-1", "body": "Looks good"}))
        .await
        .expect("comment");
    assert_eq!(comment["id"], "10000");
    assert_eq!(comment["author"], "Mia Krystof");
    assert!(comment["body"].as_str().is_some_and(|b| b.starts_with("Lorem ipsum")), "{comment}");
}

#[tokio::test]
async fn check_and_a_refused_create_read_atlassians_examples() {
    let (_server, connection) = examples().await;
    let health = integration_jira::provider().check(&connection).await.expect("check");
    assert_eq!(health.identity.as_deref(), Some("Mia Krystof <mia@example.com>"));
    assert_eq!(health.details["account_id"], "5b10a2844c20165700ede21g");
    assert_eq!(health.details["time_zone"], "Australia/Sydney");

    let refused = integration_jira::error::from_response(
        StatusCode::BAD_REQUEST,
        &axum::http::HeaderMap::new(),
        CREATE_ISSUE_400.as_bytes(),
    );
    assert_eq!(*refused.kind(), ErrorKind::InvalidInput);
    assert!(!refused.retryable());
    assert_eq!(refused.message(), "Field 'priority' is required");
}
