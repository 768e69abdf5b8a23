//! Custom tools against a local fake server: templates, credentials, transforms, errors, redirects.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use integration_core::{Connection, ErrorKind, InMemoryCache, ToolContext};
use integration_testkit::FakeServer;
use serde_json::{Value, json};

use super::*;

fn ctx() -> ToolContext {
    ToolContext {
        connection: Arc::new(Connection::new(PROVIDER, PROVIDER, json!({}))),
        cache: Arc::new(InMemoryCache::default()),
        use_cache: true,
        deadline: Instant::now() + Duration::from_secs(10),
        attempt: 1,
        idempotency_key: None,
    }
}

fn tools(allow: &str) -> CustomTools {
    CustomTools::new(SsrfGuard::new(Allowlist::parse(allow).expect("allowlist"))).expect("client")
}

async fn fake() -> FakeServer {
    let router = Router::new()
        .route(
            "/api/{component}",
            get(
                |Path(c): Path<String>,
                 Query(q): Query<std::collections::BTreeMap<String, String>>,
                 h: HeaderMap| async move {
                    axum::Json(json!({
                        "component": c,
                        "query": q,
                        "auth": h.get("authorization").and_then(|v| v.to_str().ok()),
                        "key": h.get("x-api-key").and_then(|v| v.to_str().ok()),
                        "status": "operational",
                    }))
                },
            ),
        )
        .route("/echo", post(|body: axum::Json<Value>| async move { axum::Json(json!({"got": body.0})) }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, axum::Json(json!({"error": "nope"}))) }))
        .route(
            "/busy",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "3")], "slow down") }),
        )
        .route("/big", get(|| async { "x".repeat(10_000) }))
        .route("/hop", get(|| async { Redirect::temporary("/api/hopped") }))
        .route(
            "/evil",
            get(|h: HeaderMap| async move {
                let target = h.get("x-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                Redirect::temporary(&target).into_response()
            }),
        );
    FakeServer::start(router).await.expect("fake server")
}

fn def(server: &FakeServer, extra: Value) -> CustomToolDefinition {
    let mut base = json!({
        "name": "status_page",
        "description": "Status of a component",
        "method": "GET",
        "url": format!("{}/api/{{component}}", server.base_url()),
        "parameters_schema": {"type": "object", "properties": {"component": {"type": "string"}, "verbose": {"type": "boolean"}},
                              "required": ["component"]},
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    CustomToolDefinition::parse(&base).expect("definition")
}

#[tokio::test]
async fn calls_with_templates_credentials_and_transform() {
    let server = fake().await;
    let t = tools("127.0.0.1");
    let d = def(
        &server,
        json!({"query": {"v": "{verbose}", "fixed": "1"}, "auth": {"type": "bearer", "token": "tok-123"},
                                "response_transform": "{c: .component, q: .query, auth: .auth}"}),
    );
    let tool = t.build(&d).expect("tool");
    let out = tool.call(&ctx(), json!({"component": "db/../x y"})).await.expect("call");
    assert_eq!(out["c"], "db/../x y");
    assert_eq!(out["q"], json!({"fixed": "1"}));
    assert_eq!(out["auth"], "Bearer tok-123");
    let out = tool.call(&ctx(), json!({"component": "a", "verbose": true})).await.expect("call");
    assert_eq!(out["q"], json!({"fixed": "1", "v": "true"}));

    let d = def(
        &server,
        json!({"name": "k", "auth": {"type": "api_key_header", "header": "X-API-Key", "key": "k-9"},
                                "response_transform": ".key"}),
    );
    assert_eq!(
        t.build(&d).expect("tool").call(&ctx(), json!({"component": "a"})).await.expect("call"),
        json!("k-9")
    );
    let d = def(
        &server,
        json!({"name": "q", "auth": {"type": "api_key_query", "param": "api_key", "key": "s&=x"},
                                "response_transform": ".query.api_key"}),
    );
    assert_eq!(
        t.build(&d).expect("tool").call(&ctx(), json!({"component": "a"})).await.expect("call"),
        json!("s&=x")
    );
    let d = def(
        &server,
        json!({"name": "b", "auth": {"type": "basic", "username": "u", "password": "p"}, "response_transform": ".auth"}),
    );
    assert_eq!(
        t.build(&d).expect("tool").call(&ctx(), json!({"component": "a"})).await.expect("call"),
        json!("Basic dTpw")
    );

    let echo = CustomToolDefinition::parse(&json!({
        "name": "echo", "description": "echo", "method": "POST", "url": format!("{}/echo", server.base_url()),
        "body": {"title": "{title}", "n": "{n}", "text": "say {title}"},
        "parameters_schema": {"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}}},
    }))
    .expect("definition");
    let hostile = "\",\"admin\":true,\"x\":\"";
    let out =
        t.build(&echo).expect("tool").call(&ctx(), json!({"title": hostile, "n": 5})).await.expect("call");
    assert_eq!(out["got"], json!({"title": hostile, "n": 5, "text": format!("say {hostile}")}));
}

#[tokio::test]
async fn classifies_upstream_errors_and_bounds() {
    let server = fake().await;
    let t = tools("127.0.0.1");
    let url = |p: &str| format!("{}{p}", server.base_url());
    let simple = |name: &str, path: &str, extra: Value| {
        let mut d = json!({"name": name, "description": "d", "method": "GET", "url": url(path)});
        if let (Some(b), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        CustomToolDefinition::parse(&d).expect("definition")
    };
    let err = t
        .build(&simple("m", "/missing", json!({})))
        .expect("tool")
        .call(&ctx(), json!({}))
        .await
        .expect_err("404");
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let err = t
        .build(&simple("r", "/busy", json!({})))
        .expect("tool")
        .call(&ctx(), json!({}))
        .await
        .expect_err("429");
    assert_eq!(err.kind(), &ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(3)) });
    let err = t
        .build(&simple("g", "/big", json!({"max_response_bytes": 1000})))
        .expect("tool")
        .call(&ctx(), json!({}))
        .await
        .expect_err("too big");
    assert!(err.message().contains("1000 bytes"), "{err}");
    let out = t
        .build(&simple("h", "/hop", json!({})))
        .expect("tool")
        .call(&ctx(), json!({}))
        .await
        .expect("redirect");
    assert_eq!(out["component"], "hopped");
}

#[tokio::test]
async fn refuses_ssrf_targets_and_redirects_to_them() {
    let canary = tokio::net::TcpListener::bind("127.0.0.2:0").await.expect("canary on 127.0.0.2");
    let canary_port = canary.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = canary.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let server = fake().await;
    let t = tools("127.0.0.1/32");
    let direct = CustomToolDefinition::parse(&json!({
        "name": "direct", "description": "d", "method": "GET", "url": format!("http://127.0.0.2:{canary_port}/x"),
    }))
    .expect("definition");
    // a literal address is refused when the tool is defined
    let Err(err) = t.build(&direct) else { panic!("a literal loopback address was accepted") };
    assert_eq!(err.pointer, "/url");
    assert!(err.message.contains("address 127.0.0.2 is in the loopback range (127.0.0.0/8)"), "{err}");
    // a host name when a call connects (what it resolves to may change after the definition):
    // here one that resolves to the canary's address
    struct ToCanary;
    #[async_trait]
    impl Resolver for ToCanary {
        async fn resolve(&self, _host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
            Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 2], port))])
        }
    }
    let guard = SsrfGuard::new(Allowlist::parse("127.0.0.1/32").expect("allowlist"))
        .with_resolver(Arc::new(ToCanary));
    let named = CustomToolDefinition::parse(&json!({
        "name": "named", "description": "d", "method": "GET",
        "url": format!("http://status.example.com:{canary_port}/x"),
    }))
    .expect("definition");
    let tool = CustomTools::new(guard)
        .expect("client")
        .build(&named)
        .expect("a host name is not resolved when defined");
    let err = tool.call(&ctx(), json!({})).await.expect_err("refused");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert!(err.message().contains("is in the loopback range"), "{err}");

    let redirect = CustomToolDefinition::parse(&json!({
        "name": "redirect", "description": "d", "method": "GET", "url": format!("{}/evil", server.base_url()),
        "headers": {"X-Target": format!("http://127.0.0.2:{canary_port}/stolen")},
    }))
    .expect("definition");
    let err = t.build(&redirect).expect("tool").call(&ctx(), json!({})).await.expect_err("refused");
    assert!(err.message().contains("loopback range"), "{err}");
    let metadata = CustomToolDefinition::parse(&json!({
        "name": "meta", "description": "d", "method": "GET", "url": format!("{}/evil", server.base_url()),
        "headers": {"X-Target": "http://169.254.169.254/latest/meta-data/"},
    }))
    .expect("definition");
    let err = t.build(&metadata).expect("tool").call(&ctx(), json!({})).await.expect_err("refused");
    assert!(err.message().contains("cloud metadata"), "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the canary saw a connection");
}

#[test]
fn definitions_validate() {
    let t = tools("");
    let bad = |d: Value, pointer: &str| {
        let result = CustomToolDefinition::parse(&d).and_then(|d| t.build(&d).map(|_| ()));
        match result {
            Err(e) => assert_eq!(e.pointer, pointer, "{d}: {e}"),
            Ok(()) => panic!("{d} should be refused"),
        }
    };
    let base = |extra: Value| {
        let mut d = json!({"name": "t", "description": "d", "method": "GET", "url": "https://api.example.com/x/{id}",
                           "parameters_schema": {"type": "object", "properties": {"id": {"type": "string"}}}});
        if let (Some(b), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        d
    };
    bad(base(json!({"name": "Bad-Name"})), "/name");
    bad(base(json!({"url": "https://{host}/x"})), "/url");
    bad(base(json!({"url": "file:///etc/passwd"})), "/url");
    bad(base(json!({"url": "gopher://x/"})), "/url");
    bad(base(json!({"url": "https://u:p@api.example.com/"})), "/url");
    bad(base(json!({"url": "https://api.example.com/{other}"})), "/parameters_schema");
    bad(base(json!({"auth": {"type": "bearer"}})), "/auth");
    bad(base(json!({"response_transform": ".a |"})), "/response_transform");
    bad(base(json!({"timeout_seconds": 0})), "/timeout_seconds");
    bad(base(json!({"headers": {"bad header": "x"}})), "/headers");
    bad(base(json!({"surprise": 1})), "");
    // literal addresses the SSRF guard refuses, IPv4-mapped and bracketed IPv6 included
    bad(base(json!({"url": "http://169.254.169.254/latest/meta-data/"})), "/url");
    bad(base(json!({"url": "http://10.0.0.7:8080/x"})), "/url");
    bad(base(json!({"url": "http://[::ffff:127.0.0.1]/x"})), "/url");
    bad(base(json!({"url": "http://[fd00:ec2::254]/x"})), "/url");
    bad(base(json!({"url": "http://0x7f.1/x"})), "/url");
    // a public literal address is fine, and so is an allowlisted private one
    let public =
        CustomToolDefinition::parse(&base(json!({"url": "https://93.184.215.14/x/{id}"}))).expect("ok");
    assert!(t.build(&public).is_ok());
    let private =
        CustomToolDefinition::parse(&base(json!({"url": "http://10.0.0.7:8080/x/{id}"}))).expect("ok");
    assert!(tools("10.0.0.0/8").build(&private).is_ok());
    let ok = CustomToolDefinition::parse(&base(json!({"auth": {"type": "bearer", "token": "sekret"}})))
        .expect("ok");
    assert!(t.build(&ok).is_ok());
    let view = ok.public_view().to_string();
    assert!(!view.contains("sekret") && view.contains("secret_set"), "{view}");
    let stored: CustomToolDefinition =
        serde_json::from_value(serde_json::to_value(&ok).expect("json")).expect("back");
    assert_eq!(stored.clone().with_secrets(&ok.secrets()), ok);
    assert!(!format!("{ok:?}").contains("sekret"));
}

#[test]
fn render_fills_the_request_without_sending_it() {
    let def = CustomToolDefinition::parse(&json!({
        "name": "status_lookup", "description": "d", "method": "POST",
        "url": "https://status.example.com/api/{component}?fixed=1",
        "query": {"q": "{q}", "opt": "{opt}"},
        "headers": {"X-Trace": "t-{q}"},
        "body": {"c": "{component}", "n": "{n}"},
        "parameters_schema": {"type": "object", "properties": {
            "component": {"type": "string"}, "q": {"type": "string"}, "opt": {"type": "string"},
            "n": {"type": "integer"}}},
        "auth": {"type": "api_key_query", "param": "api_key", "key": "k3y"},
    }))
    .expect("definition");
    let hostile = "../x/@evil.example:1/?#";
    let r = def.render(&json!({"component": hostile, "q": "a&b=c", "n": 7})).expect("renders");
    assert_eq!(r.method, HttpMethod::Post);
    assert_eq!(r.url.host_str(), Some("status.example.com"));
    assert_eq!(r.url.path(), "/api/..%2Fx%2F%40evil.example%3A1%2F%3F%23");
    let pairs: Vec<(String, String)> = r.url.query_pairs().into_owned().collect();
    let expected = [("fixed", "1"), ("q", "a&b=c"), ("api_key", "k3y")];
    assert_eq!(pairs, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
    assert_eq!(r.headers.get("x-trace").and_then(|v| v.to_str().ok()), Some("t-a&b=c"));
    assert_eq!(r.body, Some(json!({"c": hostile, "n": 7})));
    // a header value that cannot be a header is refused, not sent
    let err = def.render(&json!({"component": "c", "q": "line\r\nX-Injected: 1"})).expect_err("crlf");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    // an invalid definition says where
    let mut bad = def.clone();
    bad.url = "https://{host}/x".into();
    let err = bad.render(&json!({})).expect_err("invalid");
    assert!(err.to_string().contains("/url"), "{err}");
}

#[test]
fn dot_segment_values_cannot_change_the_path() {
    let def = CustomToolDefinition::parse(&json!({
        "name": "file_get", "description": "d", "method": "GET",
        "url": "https://files.example.com/users/{user}/files/{name}?v=1",
        "parameters_schema": {"type": "object", "properties": {"user": {"type": "string"}, "name": {"type": "string"}}},
    }))
    .expect("definition");
    let url =
        |user: &str, name: &str| def.render(&json!({"user": user, "name": name})).map(|r| r.url.to_string());
    assert_eq!(url("u1", "a.txt").expect("plain"), "https://files.example.com/users/u1/files/a.txt?v=1");
    assert_eq!(
        url("u1", "...").expect("three dots are a name"),
        "https://files.example.com/users/u1/files/...?v=1"
    );
    assert_eq!(url("u1", "").expect("empty"), "https://files.example.com/users/u1/files/?v=1");
    // '..' would have been resolved to https://files.example.com/users/files/x (another user's tree)
    for (user, name) in [("..", "x"), (".", "x"), ("u1", ".."), ("u1", ".")] {
        let err = url(user, name).expect_err("dot segment");
        assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{user}/{name}");
        assert!(err.to_string().contains("'.' or '..'"), "{err}");
    }
    // a template whose own path has dot segments or backslashes is refused when it is defined
    for bad in ["https://h.example/a/../b/{x}", "https://h.example/a/./{x}", "https://h.example/a\\b/{x}"] {
        let mut d = def.clone();
        d.url = bad.to_owned();
        d.parameters_schema = json!({"type": "object", "properties": {"x": {}}});
        let err = d.render(&json!({"x": "1"})).expect_err(bad);
        assert!(err.to_string().contains("'.' or '..' segments"), "{bad}: {err}");
    }
    // control characters in the template itself are refused (URL parsing would drop some of them)
    for bad in ["https://h.example/a\tb/{x}", "https://h.example/a?q={x}\u{0}"] {
        let mut d = def.clone();
        d.url = bad.to_owned();
        d.parameters_schema = json!({"type": "object", "properties": {"x": {}}});
        let err = d.render(&json!({"x": ""})).expect_err(bad);
        assert!(err.to_string().contains("control characters"), "{bad:?}: {err}");
    }
    // no path at all, a query right after the host
    let mut d = def.clone();
    d.url = "https://h.example?q={x}".into();
    d.parameters_schema = json!({"type": "object", "properties": {"x": {}}});
    assert_eq!(d.render(&json!({"x": ".."})).expect("query value").url.as_str(), "https://h.example/?q=..");
}
