//! API keys end to end: every route of the router (read from its own route table, so new routes are
//! covered without editing this file) with no key, a wrong key, a key of insufficient scope and a
//! key of the right scope; key management over REST and the CLI's store; revocation; the per-key
//! rate limit; the bind-address safety check.

use std::time::Duration;

use integrations_e2e::{Api, create_api_key, json_of, router_paths};
use reqwest::Method;
use serde_json::json;

const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// What the specification says a route needs — written out here, not asked of the code under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Public,
    ToolsRead,
    ToolsWrite,
    Admin,
}

struct Keys {
    admin: String,
    read: String,
    write: String,
}

fn expected(api: &Api, method: &Method, template: &str, tool: Option<&str>) -> Need {
    let registry = api.app.executor.registry();
    match (method.as_str(), template) {
        ("GET", "/healthz" | "/readyz" | "/api/openapi.json" | "/docs") => return Need::Public,
        ("POST", "/api/integrations/slack/webhook") => return Need::Public,
        ("POST", t) if t.starts_with("/api/integrations/webhook/{") && t.matches('/').count() == 4 => {
            return Need::Public;
        }
        ("GET", "/api/tools" | "/api/integrations") => return Need::ToolsRead,
        (_, "/mcp") => return Need::ToolsRead,
        ("POST", "/api/tools/{name}/invoke") => {
            let read_only = tool.and_then(|t| registry.get(t)).is_some_and(|t| t.spec().hints.read_only);
            return if read_only { Need::ToolsRead } else { Need::ToolsWrite };
        }
        _ => {}
    }
    for ((m, path), group) in registry.routes() {
        if m.as_str() == method.as_str() && path == template {
            return if group.iter().all(|t| t.spec().hints.read_only) {
                Need::ToolsRead
            } else {
                Need::ToolsWrite
            };
        }
    }
    Need::Admin
}

fn concrete(template: &str) -> String {
    template.split('/').map(|seg| if seg.starts_with('{') { "x1" } else { seg }).collect::<Vec<_>>().join("/")
}

async fn send(client: &reqwest::Client, method: &Method, url: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = client.request(method.clone(), url);
    if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        request = request.json(&json!({}));
    }
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("send")
}

async fn keys(api: &Api) -> Keys {
    Keys {
        admin: create_api_key(api, "admin", &["admin"]).await.expect("admin key"),
        read: create_api_key(api, "reader", &["tools:read"]).await.expect("read key"),
        write: create_api_key(api, "writer", &["tools:write"]).await.expect("write key"),
    }
}

#[tokio::test]
async fn every_route_is_covered_by_api_keys() {
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();

    // no key exists yet: open (the server is on loopback)
    let (status, _) = json_of(send(&client, &Method::GET, &api.url("/api/tools"), None).await).await;
    assert_eq!(status, 200);
    let keys = keys(&api).await;

    let registry = api.app.executor.registry();
    let read_tool =
        registry.tools().into_iter().find(|t| t.spec().hints.read_only).expect("a read-only tool");
    let write_tool = registry.tools().into_iter().find(|t| !t.spec().hints.read_only).expect("a write tool");
    let paths = router_paths(&api.app.router);
    for must in ["/healthz", "/api/tools", "/api/tools/{name}/invoke", "/api/keys", "/api/keys/{id}", "/mcp"]
    {
        assert!(paths.iter().any(|p| p == must), "{must} missing from the router table: {paths:?}");
    }
    assert!(paths.len() > 20, "the route table looks incomplete: {paths:?}");

    let mut checked = Vec::new();
    for template in &paths {
        // the invoke route decides by tool: check it with a read-only and a write tool
        let variants: Vec<(String, Option<String>)> = if template == "/api/tools/{name}/invoke" {
            [&read_tool, &write_tool]
                .iter()
                .map(|t| (format!("/api/tools/{}/invoke", t.spec().name), Some(t.spec().name.clone())))
                .collect()
        } else {
            vec![(concrete(template), None)]
        };
        for method in &METHODS {
            for (path, tool) in &variants {
                let url = api.url(path);
                let anonymous = send(&client, method, &url, None).await;
                if anonymous.status() == 405 {
                    continue; // the method is not routed here
                }
                let need = expected(&api, method, template, tool.as_deref());
                let case = format!("{method} {template} ({path}) needs {need:?}");
                if need == Need::Public {
                    // the route's own checks (signatures) may refuse, the API key layer must not
                    let (_, body) = json_of(anonymous).await;
                    assert!(!body.to_string().contains("API key"), "{case}: {body}");
                    checked.push(case);
                    continue;
                }
                // no key
                assert_eq!(anonymous.status(), 401, "{case} without a key");
                assert!(anonymous.headers().contains_key("www-authenticate"), "{case}");
                let (_, body) = json_of(anonymous).await;
                assert_eq!(body["error"]["type"], "authentication", "{case}: {body}");
                // wrong keys
                let mut forged = keys.admin.clone();
                forged.pop();
                forged.push(if keys.admin.ends_with('A') { 'B' } else { 'A' });
                for wrong in [forged.as_str(), "isk_000000000000_nope", "not-a-key"] {
                    let status = send(&client, method, &url, Some(wrong)).await.status();
                    assert_eq!(status, 401, "{case} with a wrong key");
                }
                // insufficient and right scopes
                let (insufficient, right) = match need {
                    Need::Admin => (&keys.write, &keys.admin),
                    Need::ToolsWrite => (&keys.read, &keys.write),
                    Need::ToolsRead => (&keys.admin, &keys.read),
                    Need::Public => unreachable!(),
                };
                let (status, body) = json_of(send(&client, method, &url, Some(insufficient)).await).await;
                assert_eq!(status, 403, "{case} with an insufficient scope: {body}");
                assert_eq!(body["error"]["type"], "permission", "{case}");
                let status = send(&client, method, &url, Some(right)).await.status();
                assert!(![401, 403].contains(&status.as_u16()), "{case} with the right scope: {status}");
                if need == Need::ToolsRead {
                    // tools:write implies tools:read
                    let status = send(&client, method, &url, Some(&keys.write)).await.status();
                    assert!(![401, 403].contains(&status.as_u16()), "{case} with tools:write: {status}");
                }
                checked.push(case);
            }
        }
    }
    assert!(checked.len() > 25, "only {} route/method pairs checked: {checked:#?}", checked.len());
    for must in ["GET /healthz", "POST /api/integrations/{name}/configure", "GET /metrics", "POST /mcp"] {
        assert!(
            checked.iter().any(|c| c.starts_with(&format!("{must} "))),
            "{must} not checked: {checked:#?}"
        );
    }

    // the refusals are counted
    let metrics = client.get(api.url("/metrics")).bearer_auth(&keys.admin).send().await.expect("metrics");
    let text = metrics.text().await.expect("text");
    for reason in ["missing_key", "invalid_key", "insufficient_scope"] {
        assert!(
            text.contains(&format!("auth_failures_total{{reason=\"{reason}\"}}")),
            "{reason} not counted"
        );
    }
}

#[tokio::test]
async fn keys_are_managed_over_rest_and_revocation_applies_within_seconds() {
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();
    let admin = create_api_key(&api, "bootstrap", &["admin"]).await.expect("key");
    // a key that stays: with no active key left a loopback server is open again
    let _ops = create_api_key(&api, "ops", &["admin"]).await.expect("key");

    // create: the key is in this answer only
    let response = client
        .post(api.url("/api/keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "agent", "scopes": "tools:read"}))
        .send()
        .await
        .expect("send");
    let (status, created) = json_of(response).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("isk_"));
    let id = created["id"].as_str().expect("id").to_owned();

    // invalid scopes are refused
    let response = client
        .post(api.url("/api/keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "x", "scopes": ["root"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);

    // listing never shows a secret
    let (status, listed) =
        json_of(client.get(api.url("/api/keys")).bearer_auth(&admin).send().await.expect("send")).await;
    assert_eq!(status, 200);
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(3), "{listed}");
    assert!(!listed.to_string().contains(&key[17..]), "no secret in the listing");
    assert!(!listed.to_string().contains(&admin[17..]), "no secret in the listing");

    // the new key works for tools, not for admin routes
    let ok = client.get(api.url("/api/tools")).bearer_auth(&key).send().await.expect("send");
    assert_eq!(ok.status(), 200);
    let refused = client.get(api.url("/api/keys")).bearer_auth(&key).send().await.expect("send");
    assert_eq!(refused.status(), 403);

    // revoked through the store (as `keys revoke` does): another replica's cache expires within
    // seconds; this one is told at once only when revoking over REST
    api.app.store.api_keys().revoke(&id).await.expect("revoke");
    let started = std::time::Instant::now();
    loop {
        let status = client.get(api.url("/api/tools")).bearer_auth(&key).send().await.expect("send").status();
        if status == 401 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "revocation not applied after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // revoke over REST: immediate
    let response =
        client.delete(api.url("/api/keys/bootstrap")).bearer_auth(&admin).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let refused = client.get(api.url("/api/keys")).bearer_auth(&admin).send().await.expect("send");
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn each_key_has_a_request_rate_limit() {
    let api = Api::start(&["--api-key-rate-limit-per-minute", "3"]).await.expect("api");
    let client = reqwest::Client::new();
    let key = create_api_key(&api, "busy", &["tools:read"]).await.expect("key");
    let other = create_api_key(&api, "calm", &["tools:read"]).await.expect("key");
    for _ in 0..3 {
        let status = client.get(api.url("/api/tools")).bearer_auth(&key).send().await.expect("send").status();
        assert_eq!(status, 200);
    }
    let limited = client.get(api.url("/api/tools")).bearer_auth(&key).send().await.expect("send");
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (_, body) = json_of(limited).await;
    assert_eq!(body["error"]["type"], "rate_limited");
    // another key is not affected
    let status = client.get(api.url("/api/tools")).bearer_auth(&other).send().await.expect("send").status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_keys_only_loopback_is_served() {
    use clap::Parser as _;
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().display().to_string();

    // serve on every interface without a key: refused with a message
    let cli = integrations_api::Cli::try_parse_from([
        "integrations-api",
        "--bind",
        "0.0.0.0:0",
        "--data-dir",
        &data_dir,
        "--log-level",
        "error",
    ])
    .expect("cli");
    let error = tokio::time::timeout(Duration::from_secs(30), integrations_api::run(cli))
        .await
        .expect("refused at once")
        .expect_err("must refuse to start");
    let message = format!("{error:#}");
    assert!(message.contains("refusing to listen on 0.0.0.0:0 without an API key"), "{message}");
    assert!(message.contains("INTEGRATIONS_INSECURE_NO_AUTH"), "{message}");

    // a server configured for a public address refuses everything until a key exists, so revoking
    // the last key never opens it
    let api = Api::start(&["--bind", "0.0.0.0:8080", "--data-dir", &data_dir]).await.expect("api");
    let client = reqwest::Client::new();
    let (status, body) = json_of(client.get(api.url("/api/tools")).send().await.expect("send")).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("keys create"), "{body}");
    let status = client.get(api.url("/healthz")).send().await.expect("send").status();
    assert_eq!(status, 200);

    // with METRICS_PUBLIC the metrics need no key
    let api = Api::start(&["--metrics-public", "true"]).await.expect("api");
    let _key = create_api_key(&api, "k", &["admin"]).await.expect("key");
    let status = client.get(api.url("/metrics")).send().await.expect("send").status();
    assert_eq!(status, 200);
    let status = client.get(api.url("/api/integrations")).send().await.expect("send").status();
    assert_eq!(status, 401);
}
