//! The REST front door, driven in-process with test-only tools defined here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use integration_core::{
    Connection, Executor, ExecutorConfig, Health, InMemoryConnections, Integration, IntegrationError,
    IntegrationInfo, Method, Registry, Tool, ToolContext, ToolHints, ToolSpec, typed_tool,
};
use integration_http::{AppState, HttpConfig};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Deserialize, JsonSchema)]
struct ListParams {
    query: Option<String>,
    limit: Option<u32>,
    labels: Option<Vec<String>>,
}

#[derive(Deserialize, JsonSchema)]
struct FindParams {
    name: String,
}

#[derive(Deserialize, JsonSchema)]
struct GetParams {
    key: String,
    raw: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
struct CreateParams {
    key: String,
    title: String,
}

struct Demo {
    creates: Arc<AtomicU32>,
}

#[async_trait]
impl Integration for Demo {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: "demo".into(),
            display_name: "Demo".into(),
            description: "test provider".into(),
            config_schema: json!({"type": "object"}),
            env_vars: vec![],
        }
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let creates = self.creates.clone();
        vec![
            typed_tool(
                ToolSpec::new("demo_list", "demo", "List things")
                    .route(Method::Get, "/api/integrations/demo/things"),
                |_ctx: ToolContext, p: ListParams| async move {
                    Ok::<_, IntegrationError>(json!({"query": p.query, "limit": p.limit, "labels": p.labels}))
                },
            ),
            typed_tool(
                ToolSpec::new("demo_find", "demo", "Find a thing by name")
                    .route(Method::Get, "/api/integrations/demo/things"),
                |_ctx: ToolContext, p: FindParams| async move {
                    if p.name == "missing" {
                        return Err(IntegrationError::not_found("demo", "no thing named 'missing'")
                            .with_details(json!({"closest": ["mission"]})));
                    }
                    Ok(json!({"found": p.name}))
                },
            ),
            typed_tool(
                ToolSpec::new("demo_get", "demo", "Get a thing")
                    .route(Method::Get, "/api/integrations/demo/things/{key}"),
                |ctx: ToolContext, p: GetParams| async move {
                    Ok::<_, IntegrationError>(
                        json!({"key": p.key, "raw": p.raw, "connection": ctx.connection.name}),
                    )
                },
            ),
            typed_tool(
                ToolSpec::new("demo_create", "demo", "Create a thing")
                    .hints(ToolHints::write())
                    .route(Method::Post, "/api/integrations/demo/things/{key}"),
                move |_ctx: ToolContext, p: CreateParams| {
                    let creates = creates.clone();
                    async move {
                        creates.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, IntegrationError>(json!({"key": p.key, "title": p.title}))
                    }
                },
            ),
        ]
    }

    async fn check(&self, _connection: &Connection) -> Result<Health, IntegrationError> {
        Ok(Health { identity: None, details: json!({}) })
    }
}

fn app() -> (axum::Router, Arc<AtomicU32>) {
    app_with(HttpConfig { max_body_bytes: 1024, ..HttpConfig::default() })
}

fn app_with(config: HttpConfig) -> (axum::Router, Arc<AtomicU32>) {
    let creates = Arc::new(AtomicU32::new(0));
    let registry = Arc::new(Registry::new());
    registry.add(Arc::new(Demo { creates: creates.clone() })).expect("registers");
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(Connection::new("demo", "demo", json!({})));
    connections.insert(Connection::new("demo", "demo-eu", json!({})));
    let executor = Executor::new(registry, connections, ExecutorConfig::default());
    integration_http::install_metrics_recorder();
    (integration_http::router(AppState::new(executor), &config), creates)
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body, headers)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

fn assert_error(body: &Value, kind: &str) {
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"]["retryable"].is_boolean(), "{body}");
}

#[tokio::test]
async fn tool_routes_coerce_query_and_path_parameters() {
    let (app, _) = app();
    let (status, body, _) = send(&app, get("/api/integrations/demo/things?query=x&limit=5&labels=a,b")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"query": "x", "limit": 5, "labels": ["a", "b"]}));

    let (status, body, _) = send(&app, get("/api/integrations/demo/things/ABC-1?raw=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"key": "ABC-1", "raw": true, "connection": "demo"}));

    let (_, body, _) = send(&app, get("/api/integrations/demo/things/ABC-1?connection=demo-eu")).await;
    assert_eq!(body["connection"], "demo-eu");
}

#[tokio::test]
async fn an_empty_connection_name_means_the_default_connection() {
    // Found by schemathesis: `?connection=` and `"connection": ""` named a connection '' (424).
    let (app, _) = app();
    let (status, body, _) = send(&app, get("/api/integrations/demo/things/ABC-1?connection=")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connection"], "demo");
    let req = Request::get("/api/integrations/demo/things/ABC-1?connection=")
        .header("x-integration-connection", "demo-eu")
        .body(Body::empty())
        .expect("request");
    let (_, body, _) = send(&app, req).await;
    assert_eq!(body["connection"], "demo-eu", "an empty query does not override the header");
    let (status, body, _) = send(
        &app,
        post_json(
            "/api/tools/demo_get/invoke",
            r#"{"parameters": {"key": "A"}, "connection": "", "idempotency_key": ""}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["connection"], "demo");
    assert_eq!(body["meta"]["connection"], "demo");
}

#[tokio::test]
async fn shared_route_picks_the_most_specific_tool() {
    let (app, _) = app();
    let (status, body, _) = send(&app, get("/api/integrations/demo/things?name=widget")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"found": "widget"}));

    let (status, body, _) = send(&app, get("/api/integrations/demo/things?name=missing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    assert_eq!(body["error"]["details"]["closest"][0], "mission");
}

#[tokio::test]
async fn invalid_parameters_list_every_violation() {
    let (app, creates) = app();
    let (status, body, _) = send(&app, get("/api/integrations/demo/things?limit=-3")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "invalid_input");
    assert_eq!(body["error"]["details"]["violations"][0]["pointer"], "/limit");

    let (status, body, _) =
        send(&app, post_json("/api/tools/demo_create/invoke", r#"{"parameters": {"title": 5}}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let violations = body["error"]["details"]["violations"].as_array().expect("violations");
    assert_eq!(violations.len(), 2, "missing key and wrong type of title: {body}");
    assert_eq!(creates.load(Ordering::SeqCst), 0, "nothing was created");
}

#[tokio::test]
async fn post_route_merges_body_and_answers_created() {
    let (app, creates) = app();
    let (status, body, _) =
        send(&app, post_json("/api/integrations/demo/things/K-9", r#"{"title": "hello"}"#)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"key": "K-9", "title": "hello"}));
    assert_eq!(creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invoke_endpoint_runs_tools_by_name() {
    let (app, _) = app();
    let (status, body, headers) = send(
        &app,
        post_json("/api/tools/demo_get/invoke", r#"{"parameters": {"key": "A"}, "connection": "demo-eu"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    assert_eq!(body["result"]["connection"], "demo-eu");
    assert_eq!(body["meta"]["attempts"], 1);
    assert_eq!(body["meta"]["tool"], "demo_get");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "only result and meta: {body}");

    let (status, body, _) = send(&app, post_json("/api/tools/nope/invoke", "{}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");

    let (status, body, _) = send(
        &app,
        post_json("/api/tools/demo_get/invoke", r#"{"parameters": {"key": "A"}, "connection": "ghost"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::FAILED_DEPENDENCY, "{body}");
    assert_error(&body, "configuration");
}

#[tokio::test]
async fn bad_requests_get_the_error_body_never_a_500() {
    let (app, _) = app();
    let (status, body, _) = send(&app, post_json("/api/tools/demo_get/invoke", "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");

    let req = Request::post("/api/tools/demo_get/invoke")
        .header("content-type", "text/plain")
        .body(Body::from("hi"))
        .expect("request");
    let (status, body, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&body, "unsupported_media_type");

    let (status, body, _) =
        send(&app, post_json("/api/tools/demo_get/invoke", r#"{"parameters": [1]}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");

    let (status, body, _) = send(&app, post_json("/api/integrations/demo/things/K", "[1,2]")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");

    let (status, body, _) = send(&app, get("/api/nothing/here")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");

    let req = Request::delete("/api/tools").body(Body::empty()).expect("request");
    let (status, body, _) = send(&app, req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");

    let big = format!(r#"{{"parameters": {{"key": "{}"}}}}"#, "x".repeat(4096));
    let (status, body, _) = send(&app, post_json("/api/tools/demo_get/invoke", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "payload_too_large");

    let (status, body, _) = send(&app, get("/api/tools?format=yaml")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_request");
}

#[tokio::test]
async fn every_answer_carries_a_fresh_request_id_or_the_callers() {
    let (app, _) = app();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let (_, _, headers) = send(&app, get("/healthz")).await;
        let id = headers["x-request-id"].to_str().expect("ascii").to_owned();
        let uuid = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 4, "{id}");
        assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
        assert_eq!(id, uuid.hyphenated().to_string(), "lower-case, hyphenated");
        assert!(seen.insert(id), "ids repeat");
    }
    let req =
        Request::get("/healthz").header("x-request-id", "caller-chosen-7").body(Body::empty()).expect("req");
    let (_, _, headers) = send(&app, req).await;
    assert_eq!(headers["x-request-id"], "caller-chosen-7", "a caller's id is kept");
}

#[tokio::test]
async fn lists_tools_in_registry_and_openai_form() {
    let (app, _) = app();
    let (status, body, headers) = send(&app, get("/api/tools")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("x-request-id"));
    let tools = body["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 4);
    let find = tools.iter().find(|t| t["name"] == "demo_find").expect("demo_find");
    assert_eq!(find["service"], "integrations");
    assert_eq!(find["endpoint"], "/api/integrations/demo/things");
    assert_eq!(find["parameters_schema"]["required"], json!(["name"]));
    assert_eq!(find["hints"]["read_only"], true);

    let (_, body, _) = send(&app, get("/api/tools?format=openai")).await;
    let first = &body.as_array().expect("array")[0];
    assert_eq!(first["type"], "function");
    assert!(first["function"]["parameters"]["properties"].is_object());

    let (_, body, _) = send(&app, get("/api/integrations")).await;
    assert_eq!(body["integrations"][0]["name"], "demo");
    assert_eq!(body["integrations"][0]["configured"], true);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (app, _) = app();
    let (status, _, _) = send(&app, get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = send(&app, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    send(&app, get("/api/integrations/demo/things")).await;
    let (status, body, headers) = send(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().expect("ascii").starts_with("text/plain"));
    let text = body.as_str().expect("text");
    assert!(text.contains("integration_tool_calls_total"), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn made_up_methods_are_counted_as_other() {
    // Any token is a valid HTTP method: as a label value each would add series to `/metrics`.
    let (app, _) = app();
    let frob =
        Request::builder().method("FROBNICATE4711").uri("/healthz").body(Body::empty()).expect("request");
    let (status, body, _) = send(&app, frob).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let (_, body, _) = send(&app, get("/metrics")).await;
    let text = body.as_str().expect("text");
    assert!(!text.contains("FROBNICATE4711"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"method="other""#)
            && l.contains(r#"route="/healthz""#)
            && l.contains(r#"status="405""#)),
        "{text}"
    );
}

#[tokio::test]
async fn answers_of_layers_and_extractors_get_the_error_body() {
    // Found with schemathesis and hostile deliveries: the body-limit layer answered `413 length
    // limit exceeded` in text/plain, axum's body extractor likewise; every error has one body.
    let (app, creates) = app();
    let at_limit = format!(r#"{{"key": "K", "title": "{}"}}"#, "t".repeat(1024 - 25));
    assert_eq!(at_limit.len(), 1024);
    let over = format!(r#"{{"key": "K", "title": "{}"}}"#, "t".repeat(1024 - 24));
    for (declared, with_length) in [(true, at_limit.clone()), (false, at_limit.clone())] {
        let mut req =
            Request::post("/api/integrations/demo/things/K").header("content-type", "application/json");
        if declared {
            req = req.header("content-length", with_length.len());
        }
        let (status, body, _) = send(&app, req.body(Body::from(with_length)).expect("request")).await;
        assert_eq!(status, StatusCode::CREATED, "a body of exactly the limit is accepted: {body}");
    }
    assert_eq!(creates.load(Ordering::SeqCst), 2);
    for declared in [true, false] {
        let mut req =
            Request::post("/api/integrations/demo/things/K").header("content-type", "application/json");
        if declared {
            req = req.header("content-length", over.len());
        }
        let (status, body, headers) = send(&app, req.body(Body::from(over.clone())).expect("request")).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "one byte over (content-length {declared})");
        assert_error(&body, "payload_too_large");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("1024"), "{body}");
        assert!(headers["content-type"].to_str().unwrap_or_default().starts_with("application/json"));
    }
    assert_eq!(creates.load(Ordering::SeqCst), 2, "nothing created by the oversized bodies");
    // The answers of the body-limit layer are counted under their route and status.
    let (_, body, _) = send(&app, get("/metrics")).await;
    let text = body.as_str().expect("text");
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"route="/api/integrations/demo/things/{key}""#)
            && l.contains(r#"status="413""#)),
        "{text}"
    );
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    // Found by schemathesis: `CORS_ORIGINS=""` (the default, one empty origin) switched CORS on and
    // every `OPTIONS` answered 200 without a key.
    let preflight = |uri: &str| {
        Request::options(uri)
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .expect("request")
    };
    for origins in [vec![], vec![String::new()], vec![" ".to_owned()]] {
        let (app, _) = app_with(HttpConfig { cors_origins: origins.clone(), ..HttpConfig::default() });
        let (status, body, headers) = send(&app, preflight("/api/tools")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{origins:?}: {body}");
        assert_error(&body, "method_not_allowed");
        assert!(!headers.contains_key("access-control-allow-origin"), "{origins:?}");
    }
    let (app, _) =
        app_with(HttpConfig { cors_origins: vec!["https://app.example".into()], ..HttpConfig::default() });
    let (status, _, headers) = send(&app, preflight("/api/tools")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "https://app.example");
}
