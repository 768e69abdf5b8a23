//! OpenTelemetry (feature `otel`): a fake OTLP/HTTP collector receives the spans of a REST call,
//! an MCP call and a bus command, each continuing its caller's W3C trace, and the fake Jira receives a
//! `traceparent` of the same trace (as do the fake GitHub and Slack for REST calls of theirs). Its own
//! test binary: it installs the process-wide subscriber.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::routing::post;
use integration_bus::{MemoryOutcomes, Topology, Worker, WorkerConfig};
use integration_testkit::FakeServer;
use integration_testkit::github::{FakeGitHub, router as github_router};
use integration_testkit::jira::{FakeJira, router as jira_router};
use integration_testkit::slack::{FakeSlack, router as slack_router};
use integrations_e2e::{Api, unique};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use serde_json::json;
use tracing::Instrument as _;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Spans received by the fake collector: (trace id in hex, span name).
type Spans = Arc<Mutex<Vec<(String, String)>>>;

async fn collect(State(spans): State<Spans>, body: axum::body::Bytes) -> axum::http::StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let mut spans = spans.lock().unwrap_or_else(|e| e.into_inner());
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for span in scope.spans {
                let trace: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                spans.push((trace, span.name));
            }
        }
    }
    axum::http::StatusCode::OK
}

/// `traceparent` headers the fake Jira received.
type Seen = Arc<Mutex<Vec<String>>>;

async fn record_traceparent(
    State(seen): State<Seen>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    if let Some(value) = request.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(value.to_owned());
    }
    next.run(request).await
}

/// A fake upstream that records the `traceparent` of every request it receives.
async fn recording(router: axum::Router) -> (FakeServer, Seen) {
    let seen: Seen = Arc::default();
    let server = FakeServer::start(
        router.layer(axum::middleware::from_fn_with_state(seen.clone(), record_traceparent)),
    )
    .await
    .expect("fake upstream");
    (server, seen)
}

/// Whether `seen` holds a `traceparent` of `trace`.
fn carried(seen: &Seen, trace: &str) -> bool {
    seen.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|tp| tp.contains(trace))
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", fastrand::u8(..))).collect()
}

async fn wait_for_span(
    telemetry: &integration_http::telemetry::Telemetry,
    spans: &Spans,
    trace: &str,
    name: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        telemetry.flush().await;
        let found =
            spans.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|(t, n)| t == trace && n == name);
        if found {
            return;
        }
        let received = spans.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(Instant::now() < deadline, "no {name} span of trace {trace} among {received:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_mcp_and_bus_calls_continue_the_callers_trace_up_to_jira_and_the_collector() {
    let spans: Spans = Arc::default();
    let collector =
        FakeServer::start(axum::Router::new().route("/v1/traces", post(collect)).with_state(spans.clone()))
            .await
            .expect("collector");
    let telemetry = integration_http::telemetry::init_tracing(&integration_http::telemetry::TracingConfig {
        json: false,
        level: "warn",
        otlp_endpoint: Some(collector.base_url()),
        otlp_traces_endpoint: None,
        service_name: "integrations-e2e",
    })
    .expect("the otel feature is on and the exporter starts");
    assert!(integration_core::propagation::installed());

    let (jira, seen) = recording(jira_router(FakeJira::demo())).await;
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();
    let configured = client
        .post(api.url("/api/integrations/jira/configure"))
        .json(&json!({"base_url": jira.base_url(), "username": FakeJira::USERNAME, "api_token": FakeJira::API_TOKEN}))
        .send()
        .await
        .expect("configure");
    assert!(configured.status().is_success(), "configure: {}", configured.status());
    let (github, github_seen) = recording(github_router(FakeGitHub::demo())).await;
    let slack_fake = FakeSlack::demo();
    let (slack, slack_seen) = recording(slack_router(slack_fake.clone())).await;
    for (provider, config) in [
        ("github", json!({"token": FakeGitHub::TOKEN, "api_url": github.base_url()})),
        (
            "slack",
            json!({"bot_token": FakeSlack::BOT_TOKEN, "api_url": format!("{}/api/", slack.base_url())}),
        ),
    ] {
        let configured = client
            .post(api.url(&format!("/api/integrations/{provider}/configure")))
            .json(&config)
            .send()
            .await
            .expect("configure");
        assert!(configured.status().is_success(), "configure {provider}: {}", configured.status());
    }

    // REST: the caller's trace id reaches the collector and, in a new span id, the fake Jira.
    let trace = random_hex(16);
    let caller_span = random_hex(8);
    let response = client
        .get(api.url("/api/integrations/jira/projects?project_name=Engineering"))
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .send()
        .await
        .expect("rest call");
    assert!(response.status().is_success(), "rest call: {}", response.status());
    let upstream = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let forwarded = upstream
        .iter()
        .find(|tp| tp.contains(&trace))
        .unwrap_or_else(|| panic!("the fake Jira got no traceparent of trace {trace}: {upstream:?}"));
    assert!(
        !forwarded.contains(&caller_span),
        "the upstream's parent is our span, not the caller's: {forwarded}"
    );
    wait_for_span(&telemetry, &spans, &trace, "http_request").await;
    wait_for_span(&telemetry, &spans, &trace, "tool_call").await;

    // REST calls of the other providers carry the caller's trace to their upstreams too.
    let alice = slack_fake.user_id("alice").expect("alice");
    for (path, seen, name) in [
        (format!("/api/integrations/github/repos/{}", FakeGitHub::REPO), &github_seen, "GitHub"),
        (format!("/api/integrations/slack/users/{alice}"), &slack_seen, "Slack"),
    ] {
        let trace = random_hex(16);
        let response = client
            .get(api.url(&path))
            .header("traceparent", format!("00-{trace}-{}-01", random_hex(8)))
            .send()
            .await
            .expect("rest call");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        let received = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(carried(seen, &trace), "the fake {name} got no traceparent of trace {trace}: {received:?}");
    }

    // MCP: the tool call of a `tools/call` request continues the request's trace.
    let mcp_trace = random_hex(16);
    let response = client
        .post(api.url("/mcp"))
        .header("traceparent", format!("00-{mcp_trace}-{}-01", random_hex(8)))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "jira_get_project", "arguments": {"key": "ENG"}}}))
        .send()
        .await
        .expect("mcp call");
    assert!(response.status().is_success(), "mcp call: {}", response.status());
    let body = response.text().await.unwrap_or_default();
    assert!(body.contains("\"isError\":false"), "{body}");
    let upstream = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        upstream.iter().any(|tp| tp.contains(&mcp_trace)),
        "the fake Jira got no traceparent of the MCP trace {mcp_trace}: {upstream:?}"
    );
    wait_for_span(&telemetry, &spans, &mcp_trace, "tool_call").await;

    // Bus: a command whose `traceparent` header carries another trace (a tool call not cached yet).
    let topology = Topology::prefixed(&unique("otel"));
    let mut config = WorkerConfig::new(AMQP);
    config.topology = topology.clone();
    let worker = Worker::new(api.app.executor.clone(), Arc::new(MemoryOutcomes::default()), config);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));
    let bus_trace = random_hex(16);
    let agent = tracing::info_span!(target: "integration_e2e", "agent");
    integration_core::propagation::set_parent(&agent, &|name| {
        (name == "traceparent").then(|| format!("00-{bus_trace}-{}-01", random_hex(8)))
    });
    let command = integration_bus::Command {
        task_id: unique("otel-task"),
        step_id: "1".into(),
        tool_name: "jira_list_projects".into(),
        parameters: json!({}),
        connection: None,
    };
    let event = integration_bus::call(AMQP, &topology, &command, Duration::from_secs(60))
        .instrument(agent)
        .await
        .expect("bus call");
    assert_eq!(event.status, integration_bus::Status::Completed, "{event:?}");
    let _ = stop.send(true);
    let _ = running.await;
    wait_for_span(&telemetry, &spans, &bus_trace, "bus_command").await;
    wait_for_span(&telemetry, &spans, &bus_trace, "tool_call").await;
    let upstream = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        upstream.iter().any(|tp| tp.contains(&bus_trace)),
        "the fake Jira got no traceparent of the bus trace {bus_trace}: {upstream:?}"
    );

    // Clean up the prefixed topology.
    if let Ok(connection) = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()).await
        && let Ok(channel) = connection.create_channel().await
    {
        for queue in [&topology.commands_queue, &topology.dead_letter_queue] {
            let _ = channel.queue_delete(queue.as_str().into(), Default::default()).await;
        }
        for exchange in
            [&topology.commands_exchange, &topology.events_exchange, &topology.dead_letter_exchange]
        {
            let _ = channel.exchange_delete(exchange.as_str().into(), Default::default()).await;
        }
    }
    telemetry.shutdown().await;
}
