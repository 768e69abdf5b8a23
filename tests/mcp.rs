//! Agents' front doors end to end: the MCP server at `/mcp` driven by the official rmcp client
//! (initialize, tools/list with schemas and annotations, tools/call success and failure, per-tool
//! scopes, output budget, tool_search and the search mode), the REST registry export and search,
//! toolsets and read-only mode, and the registration with an external tool registry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_testkit::FakeServer;
use integration_testkit::jira::{FakeJira, IssueSeed, router as jira_router};
use integrations_e2e::{Api, create_api_key, json_of};
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value, json};

async fn api_with_jira(options: &[&str]) -> (Api, FakeJira, FakeServer) {
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let api = Api::start(options).await.expect("api");
    let body = json!({"base_url": server.base_url(), "username": FakeJira::USERNAME, "api_token": FakeJira::API_TOKEN});
    let response = reqwest::Client::new()
        .post(api.url("/api/integrations/jira/configure"))
        .json(&body)
        .send()
        .await
        .expect("configure");
    assert_eq!(response.status(), 200);
    (api, jira, server)
}

async fn mcp_client(api: &Api, key: Option<&str>) -> anyhow::Result<RunningService<RoleClient, ()>> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(api.url("/mcp"));
    if let Some(key) = key {
        config = config.auth_header(key);
    }
    Ok(().serve(StreamableHttpClientTransport::from_config(config)).await?)
}

fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

async fn call<H: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .expect("tools/call")
}

/// The structured body of a result (the JSON text content when there is none).
fn body(result: &CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or_else(|| {
        let text = serde_json::to_value(&result.content).unwrap_or_default();
        serde_json::from_str(text[0]["text"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
    })
}

#[tokio::test]
async fn mcp_lists_and_calls_the_registry_tools_through_the_executor() {
    let (api, jira, _server) = api_with_jira(&[]).await;
    for i in 0..40 {
        jira.add_issue(IssueSeed::new(
            "ENG",
            &format!("Issue number {i} {}", "with a long summary ".repeat(8)),
        ));
    }
    let writer = create_api_key(&api, "agent", &["tools:write"]).await.expect("key");
    let reader = create_api_key(&api, "viewer", &["tools:read"]).await.expect("key");

    // initialize
    let client = mcp_client(&api, Some(&writer)).await.expect("initialize");
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().map(|s| s.name.as_str()), Some("integrations"));
    assert!(info.capabilities.tools.is_some());
    let list_changed = info.capabilities.tools.as_ref().and_then(|t| t.list_changed);
    assert_ne!(
        list_changed,
        Some(true),
        "stateless HTTP cannot push tools/list_changed, so does not claim it"
    );

    // tools/list: every registry tool with its schema and annotations, plus tool_search
    let tools = client.list_all_tools().await.expect("tools/list");
    let registry = api.app.executor.registry();
    assert_eq!(tools.len(), registry.tools().len() + 1);
    let by_name = |name: &str| tools.iter().find(|t| t.name == name).cloned().expect(name);
    let create = by_name("jira_create_issue");
    let annotations = create.annotations.clone().expect("annotations");
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.idempotent_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(false));
    let required = create.input_schema.get("required").cloned().unwrap_or_default();
    assert!(required.as_array().expect("required").contains(&json!("summary")), "{required}");
    assert!(create.input_schema["properties"].get("fields").is_some(), "output options are advertised");
    let get = by_name("jira_get_project");
    assert_eq!(get.annotations.expect("annotations").read_only_hint, Some(true));
    assert!(tools.iter().any(|t| t.name == "tool_search"));

    // tools/call: success
    let result = call(&client, "jira_get_project", json!({"key": "ENG"})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(body(&result)["key"], "ENG");

    // failures come back as isError results with kind and message
    let result = call(&client, "jira_get_project", json!({"key": "NOPE"})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(body(&result)["error"]["type"], "not_found", "{:?}", body(&result));
    let result = call(&client, "jira_create_issue", json!({"project_key": "ENG"})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(body(&result)["error"]["type"], "invalid_input");
    assert!(body(&result)["error"]["message"].as_str().unwrap_or_default().contains("summary"));
    let result = call(&client, "no_such_tool", json!({})).await;
    assert_eq!(body(&result)["error"]["type"], "not_found");

    // a write through MCP reaches the upstream once
    let before = jira.issue_count();
    let result =
        call(&client, "jira_create_issue", json!({"project_key": "ENG", "summary": "From MCP"})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(jira.issue_count(), before + 1);

    // the output budget: projection and a byte limit, cut explicitly
    let result = call(&client, "jira_get_project", json!({"key": "ENG", "fields": ["key", "name"]})).await;
    let projected = body(&result);
    assert_eq!(projected.as_object().map(|o| o.len()), Some(2), "{projected}");
    let result =
        call(&client, "jira_search_issues", json!({"project_key": "ENG", "max_output_bytes": 2000})).await;
    let text =
        serde_json::to_value(&result.content).expect("content")[0]["text"].as_str().expect("text").len();
    assert!(text <= 2000, "{text} bytes");
    let cut = body(&result);
    assert_eq!(cut["truncated"], true, "{cut}");
    assert!(cut["omitted"]["items"].as_u64().unwrap_or_default() > 0, "{cut}");

    // tool_search ranks the tool an agent needs
    let result = call(&client, "tool_search", json!({"query": "create a jira issue", "limit": 3})).await;
    let found = body(&result);
    assert_eq!(found["tools"][0]["name"], "jira_create_issue", "{found}");
    assert!(found["tools"][0]["inputSchema"].is_object());
    client.cancel().await.expect("close");

    // a tools:read key sees and calls only read-only tools
    let client = mcp_client(&api, Some(&reader)).await.expect("initialize");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true)));
    assert!(tools.iter().any(|t| t.name == "jira_get_project"));
    let result = call(&client, "jira_create_issue", json!({"project_key": "ENG", "summary": "nope"})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(body(&result)["error"]["type"], "permission");
    assert_eq!(jira.issue_count(), before + 1, "nothing created");
    client.cancel().await.expect("close");

    // no key, no session
    assert!(mcp_client(&api, None).await.is_err());
    assert!(mcp_client(&api, Some("isk_000000000000_wrong")).await.is_err());
}

#[tokio::test]
async fn search_mode_lists_only_the_meta_tools() {
    let (api, _jira, _server) = api_with_jira(&["--mcp-tool-mode", "search"]).await;
    let client = mcp_client(&api, None).await.expect("initialize");
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, vec!["tool_call", "tool_search"]);
    let found = body(&call(&client, "tool_search", json!({"query": "jira project by key"})).await);
    assert_eq!(found["tools"][0]["name"], "jira_get_project", "{found}");
    let result =
        call(&client, "tool_call", json!({"name": "jira_get_project", "arguments": {"key": "ENG"}})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(body(&result)["key"], "ENG");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn rest_exports_searches_and_budgets_tools() {
    let (api, jira, _server) = api_with_jira(&[]).await;
    for i in 0..40 {
        jira.add_issue(IssueSeed::new("ENG", &format!("Issue {i} {}", "padding ".repeat(20))));
    }
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(api.url(path)).send();

    let (status, listed) = json_of(get("/api/tools").await.expect("send")).await;
    assert_eq!(status, 200);
    let entry =
        listed["tools"].as_array().expect("tools").iter().find(|t| t["name"] == "jira_create_issue").cloned();
    let entry = entry.expect("jira_create_issue");
    assert_eq!(entry["service"], "integrations");
    assert_eq!(entry["provider"], "jira");
    assert_eq!(entry["endpoint"], "/api/integrations/jira/issues");
    assert!(entry["parameters_schema"]["properties"]["summary"].is_object());
    assert_eq!(entry["hints"]["read_only"], false);

    let (_, mcp) = json_of(get("/api/tools?format=mcp").await.expect("send")).await;
    assert!(mcp["tools"][0]["annotations"]["readOnlyHint"].is_boolean(), "{}", mcp["tools"][0]);

    let (status, found) =
        json_of(get("/api/tools?q=send%20a%20slack%20message&limit=3").await.expect("send")).await;
    assert_eq!(status, 200);
    let hits = found["tools"].as_array().expect("tools");
    assert!(!hits.is_empty() && hits.len() <= 3, "{found}");
    assert_eq!(hits[0]["provider"], "slack", "{found}");
    assert!(hits[0]["score"].as_f64().unwrap_or_default() > 0.0);

    // REST tool routes and invoke honour fields and max_output_bytes
    let (status, project) =
        json_of(get("/api/integrations/jira/projects/ENG?fields=key,name").await.expect("send")).await;
    assert_eq!(status, 200, "{project}");
    assert_eq!(project.as_object().map(|o| o.len()), Some(2), "{project}");
    let (status, cut) = json_of(
        get("/api/integrations/jira/issues?project_key=ENG&max_output_bytes=1500").await.expect("send"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cut["truncated"], true, "{cut}");
    assert!(serde_json::to_vec(&cut).expect("json").len() <= 1500);
    let response = client
        .post(api.url("/api/tools/jira_search_issues/invoke"))
        .json(&json!({"parameters": {"project_key": "ENG"}, "max_output_bytes": 1500}))
        .send()
        .await
        .expect("send");
    let (status, invoked) = json_of(response).await;
    assert_eq!(status, 200, "{invoked}");
    assert_eq!(invoked["result"]["truncated"], true);
    assert!(invoked["result"]["omitted"]["items"].as_u64().unwrap_or_default() > 0);
}

#[tokio::test]
async fn toolsets_and_read_only_mode_apply_to_every_front_door() {
    let (api, jira, _server) =
        api_with_jira(&["--toolsets", "jira.read,github", "--tools-exclude", "jira_find_user"]).await;
    let names: Vec<String> =
        api.app.executor.registry().tools().iter().map(|t| t.spec().name.clone()).collect();
    assert!(names.iter().all(|n| n.starts_with("jira_") || n.starts_with("github_")), "{names:?}");
    assert!(names.contains(&"jira_get_project".to_owned()));
    assert!(!names.contains(&"jira_create_issue".to_owned()));
    assert!(!names.contains(&"jira_find_user".to_owned()));
    assert!(names.iter().any(|n| n.starts_with("github_create")), "github write tools stay: {names:?}");

    let client = reqwest::Client::new();
    // REST: the tool route and invoke are gone
    let before = jira.issue_count();
    let response = client
        .post(api.url("/api/integrations/jira/issues"))
        .json(&json!({"project_key": "ENG", "summary": "x"}))
        .send()
        .await
        .expect("send");
    assert!([404, 405].contains(&response.status().as_u16()), "{}", response.status());
    let response = client
        .post(api.url("/api/tools/jira_create_issue/invoke"))
        .json(&json!({"parameters": {"project_key": "ENG", "summary": "x"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
    assert_eq!(jira.issue_count(), before);
    // MCP: not listed, not callable
    let mcp = mcp_client(&api, None).await.expect("initialize");
    let tools = mcp.list_all_tools().await.expect("list");
    assert!(!tools.iter().any(|t| t.name == "jira_create_issue"));
    let result = call(&mcp, "jira_create_issue", json!({"project_key": "ENG", "summary": "x"})).await;
    assert_eq!(body(&result)["error"]["type"], "not_found");
    mcp.cancel().await.expect("close");

    // global read-only mode
    let api = Api::start(&["--read-only"]).await.expect("api");
    let tools = api.app.executor.registry().tools();
    assert!(!tools.is_empty());
    assert!(tools.iter().all(|t| t.spec().hints.read_only));

    // a toolset naming a provider that is not compiled in stops the start
    assert!(Api::start(&["--toolsets", "jra"]).await.is_err());
}

#[tokio::test]
async fn tools_are_registered_with_an_external_registry_in_the_background() {
    use axum::routing::post;
    #[derive(Clone, Default)]
    struct Seen {
        attempts: Arc<Mutex<u32>>,
        names: Arc<Mutex<Vec<String>>>,
    }
    let seen = Seen::default();
    let state = seen.clone();
    // the registry fails the first two attempts: registration retries
    let app = axum::Router::new().route(
        "/tools",
        post(move |axum::Json(body): axum::Json<Value>| {
            let state = state.clone();
            async move {
                let attempt = {
                    let mut attempts = state.attempts.lock().unwrap_or_else(|e| e.into_inner());
                    *attempts += 1;
                    *attempts
                };
                if attempt <= 2 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let name = body["name"].as_str().unwrap_or_default().to_owned();
                assert_eq!(body["service"], "integrations");
                assert!(body["parameters_schema"].is_object());
                state.names.lock().unwrap_or_else(|e| e.into_inner()).push(name);
                axum::http::StatusCode::CREATED
            }
        }),
    );
    let server = FakeServer::start(app).await.expect("registry");
    let url = format!("{}/tools", server.base_url());
    let api = Api::start(&["--tool-registry-url", &url]).await.expect("api");
    let expected = api.app.executor.registry().tools().len();

    let started = Instant::now();
    loop {
        let count = seen.names.lock().unwrap_or_else(|e| e.into_inner()).len();
        if count == expected {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{count} of {expected} registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // and the event is queued for events.exchange
    let started = Instant::now();
    loop {
        let queued = api.app.store.outbox().fetch_unpublished(100).await.expect("outbox");
        if let Some(event) = queued.iter().find(|m| m.routing_key == "integrations.tools_registered") {
            assert_eq!(event.exchange, "events.exchange");
            let payload: Value = serde_json::from_slice(&event.payload).expect("json");
            assert_eq!(payload["count"], expected);
            assert_eq!(payload["external_registry"]["registered"], expected);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no tools_registered event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a custom tool created at run time is announced again
    let created = reqwest::Client::new()
        .post(api.url("/api/integrations/custom/tools"))
        .json(&json!({
            "name": "status_page",
            "description": "Status of one component",
            "method": "GET",
            "url": "https://status.example.com/api/{component}",
            "parameters_schema": {"type": "object", "properties": {"component": {"type": "string"}}, "required": ["component"]}
        }))
        .send()
        .await
        .expect("create custom tool");
    assert_eq!(created.status(), 201);
    let started = Instant::now();
    while !seen.names.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|n| n == "status_page") {
        assert!(started.elapsed() < Duration::from_secs(30), "the custom tool was never announced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // an unreachable registry never stops the start
    let port = integrations_e2e::free_port();
    let api = Api::start(&["--tool-registry-url", &format!("http://127.0.0.1:{port}/tools")]).await;
    assert!(api.is_ok());
}

/// An MCP client that counts `notifications/tools/list_changed`.
#[derive(Clone)]
struct Watcher(tokio::sync::mpsc::UnboundedSender<()>);

impl rmcp::ClientHandler for Watcher {
    async fn on_tool_list_changed(&self, _context: rmcp::service::NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

#[tokio::test]
async fn a_session_is_told_when_the_tools_change_and_lists_them_again() {
    use axum::routing::get;
    let upstream =
        FakeServer::start(axum::Router::new().route("/v", get(|| async { axum::Json(json!({"v": 7})) })))
            .await
            .expect("fake");
    let api = Api::start(&["--custom-http-allowlist", "127.0.0.1"]).await.expect("api");

    // One session over a pair of in-memory pipes, served as over stdio.
    let (server_end, client_end) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(integration_http::mcp::serve_session(
        api.app.state.clone(),
        tokio::io::split(server_end),
    ));
    let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let client = Watcher(notified).serve(tokio::io::split(client_end)).await.expect("initialize");
    let tools = client.peer_info().and_then(|i| i.capabilities.tools.clone()).expect("tools capability");
    assert_eq!(tools.list_changed, Some(true), "a session claims tools/list_changed");
    let names =
        |tools: Vec<rmcp::model::Tool>| tools.into_iter().map(|t| t.name.to_string()).collect::<Vec<_>>();
    let before = names(client.list_all_tools().await.expect("tools/list"));
    assert!(!before.contains(&"version".to_owned()));

    // A custom HTTP tool created through REST: the session hears of it and lists and calls it.
    let rest = reqwest::Client::new();
    let definition = json!({"name": "version", "description": "which version", "method": "GET",
                            "url": format!("{}/v", upstream.base_url())});
    let created =
        rest.post(api.url("/api/integrations/custom/tools")).json(&definition).send().await.expect("send");
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    tokio::time::timeout(Duration::from_secs(5), notifications.recv())
        .await
        .expect("notified within 5 s")
        .expect("notification");
    let after = names(client.list_all_tools().await.expect("tools/list"));
    assert_eq!(after.len(), before.len() + 1);
    assert!(after.contains(&"version".to_owned()), "{after:?}");
    let result = call(&client, "version", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(body(&result)["v"], 7, "{result:?}");

    // Deleted: told again, and gone from the list.
    let deleted = rest.delete(api.url("/api/integrations/custom/tools/version")).send().await.expect("send");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    tokio::time::timeout(Duration::from_secs(5), notifications.recv())
        .await
        .expect("notified within 5 s")
        .expect("notification");
    assert_eq!(names(client.list_all_tools().await.expect("tools/list")), before);
    assert!(notifications.try_recv().is_err(), "one notification per change");

    // The client goes away: the session ends cleanly.
    client.cancel().await.expect("close");
    tokio::time::timeout(Duration::from_secs(5), session)
        .await
        .expect("session ends")
        .expect("task")
        .expect("clean end");
}

/// Input that is no JSON-RPC message is answered as JSON-RPC says (HTTP 400, `id: null`, -32700
/// for malformed JSON, -32600 for JSON that is no message), not as a wrong content type; a body
/// that is not JSON at all still is one (415), and valid requests pass through.
#[tokio::test]
async fn malformed_mcp_requests_get_json_rpc_errors() {
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();
    let post = |content_type: &'static str, body: &'static str| {
        client
            .post(api.url("/mcp"))
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    for (body, code) in
        [("{garbage", -32700), ("", -32700), ("{}", -32600), (r#"{"id":1,"method":"tools/list"}"#, -32600)]
    {
        let answer = post("application/json", body).await.expect("send");
        assert_eq!(answer.status(), 400, "{body}");
        let answer: serde_json::Value = answer.json().await.expect("a JSON-RPC error");
        assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
        assert_eq!(answer["id"], serde_json::Value::Null, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    assert_eq!(post("text/plain", "{}").await.expect("send").status(), 415);
    let list =
        post("application/json", r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).await.expect("send");
    assert_eq!(list.status(), 200);
    let list: serde_json::Value = list.json().await.expect("json");
    assert_eq!(list["id"], 7, "{list}");
    assert!(list["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{list}");
}
