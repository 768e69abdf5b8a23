//! deploy/ checked without a Docker engine: the compose file, the Kubernetes manifests, the
//! Prometheus and Grafana provisioning parse and hold what the deployment needs; every metric the
//! dashboard queries is exported by a running api (and the bus metrics by an in-process worker);
//! the OpenAPI document of the real api lists every tool route.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_bus::{MemoryOutcomes, Publisher, Topology, Worker, WorkerConfig};
use integration_testkit::github::{FakeGitHub, router as github_router};
use integration_testkit::jira::{FakeJira, router as jira_router};
use integration_testkit::slack::{FakeSlack, router as slack_router};
use integration_testkit::{FakeServer, Fault};
use integrations_e2e::{Api, create_api_key, json_of, unique};
use serde_json::{Value, json};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &str) -> String {
    let full = deploy_dir().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Parse every YAML document of a file (merge keys `<<` applied) into JSON values.
fn yaml_documents(path: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let mut value = serde_norway::Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}"));
            value.apply_merge().unwrap_or_else(|e| panic!("{path}: merge keys: {e}"));
            serde_json::to_value(value).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml(path: &str) -> Value {
    let mut docs = yaml_documents(path);
    assert_eq!(docs.len(), 1, "{path}: one document expected");
    docs.remove(0)
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

#[test]
fn compose_file_describes_the_scaled_out_deployment() {
    let compose = yaml("docker-compose.yml");
    for key in keys(&compose) {
        assert!(
            ["name", "services", "volumes", "networks", "configs", "secrets"].contains(&key)
                || key.starts_with("x-"),
            "unknown top-level key {key}"
        );
    }
    let services = &compose["services"];
    let known = [
        "image",
        "build",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "volumes",
        "ports",
        "expose",
        "depends_on",
        "deploy",
        "healthcheck",
        "restart",
        "networks",
        "user",
        "labels",
    ];
    for (name, service) in services.as_object().expect("services") {
        for key in keys(service) {
            assert!(known.contains(&key), "service {name}: unknown key {key}");
        }
        assert!(service.get("image").is_some() || service.get("build").is_some(), "{name}: image or build");
        for dependency in keys(&service["depends_on"]) {
            assert!(services.get(dependency).is_some(), "{name} depends on unknown {dependency}");
        }
        for dependency in service["depends_on"].as_array().into_iter().flatten() {
            assert!(services.get(dependency.as_str().unwrap_or_default()).is_some(), "{name}: {dependency}");
        }
        // Every bind-mounted file is in the repository.
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume.as_str().and_then(|v| v.split(':').next()).unwrap_or_default();
            if source.starts_with("./") {
                assert!(deploy_dir().join(source).exists(), "{name}: {source} missing");
            } else {
                assert!(compose["volumes"].get(source).is_some(), "{name}: named volume {source} undeclared");
            }
        }
    }
    for name in ["postgres", "redis", "rabbitmq", "api", "worker", "lb", "prometheus", "grafana"] {
        assert!(services.get(name).is_some(), "service {name} missing");
    }
    for (name, target) in [("api", "api"), ("worker", "worker")] {
        let service = &services[name];
        assert_eq!(service["deploy"]["replicas"], 2, "two {name} replicas");
        assert_eq!(service["build"]["target"], target);
        assert_eq!(service["build"]["dockerfile"], "deploy/Dockerfile");
        let env = &service["environment"];
        for var in ["DATABASE_URL", "REDIS_URL", "INTEGRATIONS_MASTER_KEY", "LOG_FORMAT"] {
            assert!(env.get(var).is_some(), "{name}: {var} (from the x-common-env anchor)");
        }
        assert!(env["DATABASE_URL"].as_str().is_some_and(|u| u.starts_with("postgres://")));
    }
    assert!(services["worker"]["environment"].get("AMQP_URL").is_some());
    assert_eq!(services["worker"]["environment"]["WORKER_METRICS_BIND"], "0.0.0.0:9090");
    assert_eq!(services["api"]["environment"]["INTEGRATIONS_BIND"], "0.0.0.0:8080");

    // The load balancer proxies to the api service with a keep-alive pool.
    let nginx = read("nginx/nginx.conf");
    assert!(nginx.contains("server api:8080") && nginx.contains("keepalive") && nginx.contains("proxy_pass"));

    // Prometheus scrapes both binaries.
    let prometheus = yaml("prometheus/prometheus.yml");
    let jobs: Vec<&Value> = prometheus["scrape_configs"].as_array().expect("scrape_configs").iter().collect();
    for (job, host, port) in [("integrations-api", "api", 8080), ("integrations-worker", "worker", 9090)] {
        let config = jobs.iter().find(|j| j["job_name"] == job).unwrap_or_else(|| panic!("job {job}"));
        assert_eq!(config["dns_sd_configs"][0]["names"][0], host);
        assert_eq!(config["dns_sd_configs"][0]["port"], port);
    }

    // Prometheus loads the alerting rules from where compose mounts them.
    assert_eq!(prometheus["rule_files"], serde_json::json!(["alerts.yml"]));
    let mounts = services["prometheus"]["volumes"].to_string();
    assert!(mounts.contains("./prometheus/alerts.yml:/etc/prometheus/alerts.yml"), "{mounts}");
    assert!(mounts.contains("./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml"), "{mounts}");

    // Grafana: the datasource and the dashboard provider point where compose mounts them.
    let datasources = yaml("grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(datasources["datasources"][0]["url"], "http://prometheus:9090");
    let providers = yaml("grafana/provisioning/dashboards/dashboards.yml");
    assert_eq!(providers["providers"][0]["options"]["path"], "/var/lib/grafana/dashboards");
    let mounts = services["grafana"]["volumes"].to_string();
    assert!(mounts.contains("./grafana/dashboards:/var/lib/grafana/dashboards"), "{mounts}");

    // The Dockerfile builds both binaries in a cached dependency layer and runs them as non-root.
    let dockerfile = read("Dockerfile");
    for needle in [
        "FROM ${RUST_IMAGE} AS chef",
        "cargo chef cook",
        "AS api",
        "AS worker",
        "USER 65532",
        "rust:1.95-bookworm",
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle}");
    }
    // Every path the root manifest patches a dependency with is in the builder before the
    // dependency layer is cooked (the recipe carries workspace members only).
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).expect("Cargo.toml");
    let patches = manifest.split("[patch.crates-io]").nth(1).unwrap_or_default();
    let patched: Vec<&str> = patches
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| line.split("path = \"").nth(1)?.split('"').next())
        .collect();
    assert!(!patched.is_empty(), "the root manifest patches nothing: this check is stale");
    let cook = dockerfile.find("cargo chef cook").expect("cook");
    for path in patched {
        // the directory itself or one that holds it
        let copied =
            std::path::Path::new(path).ancestors().filter(|dir| !dir.as_os_str().is_empty()).any(|dir| {
                let dir = dir.display();
                dockerfile.find(&format!("COPY {dir} {dir}\n")).is_some_and(|at| at < cook)
            });
        assert!(copied, "the builder stage does not copy {path} before cooking");
    }
}

/// Every document of the resources `deploy/k8s/kustomization.yaml` lists.
fn kubernetes_documents() -> Vec<Value> {
    let kustomization = yaml("k8s/kustomization.yaml");
    let mut docs = Vec::new();
    for resource in kustomization["resources"].as_array().expect("resources") {
        let file = format!("k8s/{}", resource.as_str().expect("file name"));
        docs.extend(yaml_documents(&file));
    }
    docs
}

/// Every variable the deployment sets for the api and the worker is one they read: a misspelt name
/// would be ignored without a word, and the default used.
#[test]
fn deployed_variables_are_read_by_the_binaries() {
    use clap::CommandFactory as _;
    let mut known: BTreeSet<String> =
        integration_http::cli::environment_variables(&integrations_api::Cli::command()).into_iter().collect();
    known.extend(integration_http::cli::environment_variables(&integrations_worker::Cli::command()));
    known.extend(integrations_api::providers::all().iter().flat_map(|p| p.info().env_vars));
    // Read outside the command line: the worker's older keys during a rotation, the log filter.
    known.extend(["INTEGRATIONS_MASTER_KEY_PREVIOUS", "RUST_LOG"].map(String::from));

    let mut deployed: Vec<(String, String)> = Vec::new();
    let compose = yaml("docker-compose.yml");
    for name in ["api", "worker"] {
        for var in keys(&compose["services"][name]["environment"]) {
            deployed.push((format!("docker-compose.yml {name}"), var.to_owned()));
        }
    }
    for doc in kubernetes_documents() {
        let name = format!("k8s {} {}", doc["kind"].as_str().unwrap_or_default(), doc["metadata"]["name"]);
        let mut vars: Vec<&str> = match doc["kind"].as_str() {
            Some("ConfigMap") => keys(&doc["data"]).into_iter().collect(),
            Some("Secret") => keys(&doc["stringData"]).into_iter().chain(keys(&doc["data"])).collect(),
            _ => Vec::new(),
        };
        for container in doc["spec"]["template"]["spec"]["containers"].as_array().into_iter().flatten() {
            let env = container["env"].as_array().into_iter().flatten();
            vars.extend(env.filter_map(|e| e["name"].as_str()));
        }
        deployed.extend(vars.into_iter().map(|v| (name.clone(), v.to_owned())));
    }
    assert!(deployed.len() >= 30, "{deployed:?}");
    let unknown: Vec<&(String, String)> = deployed.iter().filter(|(_, var)| !known.contains(var)).collect();
    assert!(unknown.is_empty(), "set by the deployment, read by neither binary: {unknown:?}");
}

#[test]
fn kubernetes_manifests_hold_together() {
    let docs = kubernetes_documents();
    for doc in &docs {
        assert!(doc["apiVersion"].is_string() && doc["kind"].is_string(), "{doc}");
        assert!(doc["metadata"]["name"].is_string(), "{doc}");
        if doc["kind"] != "Namespace" {
            assert_eq!(doc["metadata"]["namespace"], "integrations", "{}", doc["metadata"]["name"]);
        }
    }
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} missing"))
    };
    let config = find("ConfigMap", "integrations-config");
    let secret = find("Secret", "integrations-secrets");
    assert!(secret["stringData"].get("INTEGRATIONS_MASTER_KEY").is_some());
    assert!(secret["stringData"].get("DATABASE_URL").is_some());
    for value in config["data"].as_object().expect("data").values() {
        assert!(value.is_string(), "ConfigMap values are strings: {value}");
    }

    for (deployment, port) in [("integrations-api", 8080), ("integrations-worker", 9090)] {
        let d = find("Deployment", deployment);
        assert_eq!(d["apiVersion"], "apps/v1");
        let selector = &d["spec"]["selector"]["matchLabels"];
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        for (k, v) in selector.as_object().expect("matchLabels") {
            assert_eq!(&labels[k], v, "{deployment}: selector matches the pod labels");
        }
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let container = &pod["containers"][0];
        assert_eq!(container["ports"][0]["containerPort"], port);
        let port_name = &container["ports"][0]["name"];
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{deployment}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{deployment}");
        assert_eq!(&container["readinessProbe"]["httpGet"]["port"], port_name);
        let env_from = container["envFrom"].to_string();
        assert!(env_from.contains("integrations-config") && env_from.contains("integrations-secrets"));

        let service = find("Service", deployment);
        for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
            assert_eq!(&labels[k], v, "Service {deployment} selects the pods");
        }
        assert_eq!(&service["spec"]["ports"][0]["targetPort"], port_name);
    }
    let hpa = find("HorizontalPodAutoscaler", "integrations-worker");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "integrations-worker");
    assert!(hpa["spec"]["minReplicas"].as_u64() <= hpa["spec"]["maxReplicas"].as_u64());
}

/// The metric names the dashboard's PromQL expressions use.
fn dashboard_metrics() -> BTreeSet<String> {
    let dashboard: Value = serde_json::from_str(&read("grafana/dashboards/integrations.json")).expect("JSON");
    assert_eq!(dashboard["uid"], "integrations-service");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = variable["definition"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    assert!(exprs.len() >= 10, "the dashboard has its panels");
    metric_names(exprs.iter().map(String::as_str))
}

/// The alerting rules' expressions (deploy/prometheus/alerts.yml), each with its alert's name.
fn alert_expressions() -> Vec<(String, String)> {
    let rules = yaml("prometheus/alerts.yml");
    let mut exprs = Vec::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().expect("an alerting rule").to_owned();
            let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
            assert!(["critical", "warning"].contains(&severity), "{name}: severity {severity}");
            assert!(rule["annotations"]["summary"].is_string(), "{name}: a summary");
            exprs.push((name, rule["expr"].as_str().expect("expr").to_owned()));
        }
    }
    assert!(exprs.len() >= 10, "the rules are there");
    exprs
}

/// The metric names of ours in PromQL expressions.
fn metric_names<'a>(exprs: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for expr in exprs {
        for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if ["integration_", "http_request", "bus_", "auth_"].iter().any(|p| token.starts_with(p)) {
                names.insert(token.to_owned());
            }
        }
    }
    names
}

/// The alerts match only label values the code gives: an alert on `error_kind="timout"` would
/// never fire.
#[test]
fn alerts_use_label_values_that_exist() {
    use integration_core::ErrorKind;
    let kinds: BTreeSet<&str> = [
        ErrorKind::Authentication,
        ErrorKind::Permission,
        ErrorKind::NotFound,
        ErrorKind::InvalidInput,
        ErrorKind::Conflict,
        ErrorKind::RateLimited { retry_after: None },
        ErrorKind::Network,
        ErrorKind::Timeout,
        ErrorKind::Upstream { status: None },
        ErrorKind::CircuitOpen { retry_after: None },
        ErrorKind::Unavailable,
        ErrorKind::Configuration,
        ErrorKind::Internal,
    ]
    .iter()
    .map(ErrorKind::as_str)
    .collect();
    let known: [(&str, BTreeSet<&str>); 5] = [
        ("error_kind", kinds),
        (
            "outcome",
            // tool calls, then webhook deliveries (WebhookError kinds for the refused ones)
            ["success", "failure", "processed", "duplicate", "failed", "rejected"]
                .into_iter()
                .chain([
                    "not_found",
                    "payload_too_large",
                    "unsupported_media_type",
                    "unavailable",
                    "internal",
                ])
                .collect(),
        ),
        ("disposition", ["ack", "requeue", "dead_letter"].into_iter().collect()),
        (
            "reason",
            [
                "no_keys_configured",
                "missing_key",
                "invalid_key",
                "insufficient_scope",
                "rate_limited",
                "unavailable",
            ]
            .into_iter()
            .collect(),
        ),
        ("status", BTreeSet::new()),
    ];
    for (alert, expr) in alert_expressions() {
        for (label, values) in &known {
            for op in ["=\"", "=~\""] {
                for (at, _) in expr.match_indices(&format!("{label}{op}")) {
                    let rest = &expr[at + label.len() + op.len()..];
                    let value = &rest[..rest.find('"').expect("closing quote")];
                    if *label == "status" {
                        assert!(value == "5.." || value.parse::<u16>().is_ok(), "{alert}: status {value}");
                        continue;
                    }
                    for v in value.split('|') {
                        assert!(values.contains(v), "{alert}: {label} value '{v}' is never given");
                    }
                }
            }
        }
    }
}

/// The metric names present in a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn call(client: &reqwest::Client, request: reqwest::RequestBuilder) -> (u16, Value) {
    let _ = client;
    json_of(request.send().await.expect("send")).await
}

async fn configure(client: &reqwest::Client, api: &Api, name: &str, body: Value) {
    let (status, answer) =
        call(client, client.post(api.url(&format!("/api/integrations/{name}/configure"))).json(&body)).await;
    assert_eq!(status, 200, "configure {name}: {answer}");
}

#[tokio::test]
async fn every_dashboard_metric_is_exported() {
    let wanted = dashboard_metrics();
    let jira = FakeServer::start(jira_router(FakeJira::demo())).await.expect("fake jira");
    let github = FakeServer::start(github_router(FakeGitHub::demo())).await.expect("fake github");
    let slack = FakeServer::start(slack_router(FakeSlack::demo())).await.expect("fake slack");
    // A circuit opens after two consecutive upstream failures (the "jira-down" connection below).
    let api =
        Api::start(&["--max-retry-attempts", "2", "--circuit-breaker-threshold", "2"]).await.expect("api");
    let client = reqwest::Client::new();

    let jira_config = |extra: Value| {
        let mut body = json!({"provider": "jira", "base_url": jira.base_url(), "username": FakeJira::USERNAME,
                              "api_token": FakeJira::API_TOKEN});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    configure(&client, &api, "jira", jira_config(json!({}))).await;
    // A connection whose quota makes the 61st call wait about a second (a rate-limit wait) ...
    configure(
        &client,
        &api,
        "jira-wait",
        jira_config(json!({"rate_limit_per_minute": 60, "timeout_seconds": 10})),
    )
    .await;
    // ... and one whose second call would wait a minute, past its deadline (a rejection).
    configure(
        &client,
        &api,
        "jira-tight",
        jira_config(json!({"rate_limit_per_minute": 1, "timeout_seconds": 1})),
    )
    .await;
    configure(&client, &api, "github", json!({"token": FakeGitHub::TOKEN, "api_url": github.base_url()}))
        .await;
    configure(
        &client,
        &api,
        "slack",
        json!({"bot_token": FakeSlack::BOT_TOKEN, "api_url": format!("{}/api/", slack.base_url())}),
    )
    .await;
    // ... and a Slack connection whose calls may last a second: a second message to a channel
    // within the second is refused by the client's pacing (a pacing refusal).
    configure(
        &client,
        &api,
        "slack-tight",
        json!({"provider": "slack", "bot_token": FakeSlack::BOT_TOKEN,
               "api_url": format!("{}/api/", slack.base_url()), "timeout_seconds": 1}),
    )
    .await;

    let projects = "/api/integrations/jira/projects?project_name=Engineering&cache=false";
    let (status, body) = call(&client, client.get(api.url(projects))).await;
    assert_eq!(status, 200, "{body}");
    // a failure (not_found) and a retry after one injected 503
    let (status, _) = call(&client, client.get(api.url("/api/integrations/jira/issues/ENG-99999"))).await;
    assert_eq!(status, 404);
    jira.faults().push(Fault::status(503).on_path("/rest/api/3/project"));
    let (status, body) = call(&client, client.get(api.url(projects))).await;
    assert_eq!(status, 200, "retried after the 503: {body}");
    for _ in 0..61 {
        let (status, body) =
            call(&client, client.get(api.url(&format!("{projects}&connection=jira-wait")))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = call(&client, client.get(api.url(&format!("{projects}&connection=jira-tight")))).await;
    assert_eq!(status, 200);
    let (status, body) =
        call(&client, client.get(api.url(&format!("{projects}&connection=jira-tight")))).await;
    assert_eq!(status, 429, "{body}");
    let (owner, repo) = FakeGitHub::REPO.split_once('/').expect("owner/repo");
    let (status, body) = call(
        &client,
        client.get(api.url(&format!("/api/integrations/github/repos/{owner}/{repo}?cache=false"))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The second message to the channel waits for Slack's one-per-second turn: a pacing wait.
    for text in ["metrics", "metrics, paced"] {
        let message = json!({"channel": "#general", "text": text});
        let (status, body) =
            call(&client, client.post(api.url("/api/integrations/slack/message")).json(&message)).await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }
    // With a one-second deadline the second one's turn is past halfway to it: refused, unsent.
    let tight = api.url("/api/integrations/slack/message?connection=slack-tight");
    let message = json!({"channel": "#random", "text": "tight"});
    let (status, body) = call(&client, client.post(&tight).json(&message)).await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, body) = call(&client, client.post(&tight).json(&message)).await;
    assert_eq!(status, 429, "{body}");

    // Two 503s in a row open the circuit of "jira-down"; the call's third attempt is refused by it.
    configure(&client, &api, "jira-down", jira_config(json!({}))).await;
    jira.faults().push(Fault::status(503).times(2).on_path("/rest/api/3/project"));
    let (status, body) =
        call(&client, client.get(api.url(&format!("{projects}&connection=jira-down")))).await;
    assert_eq!(body["error"]["type"], "circuit_open", "{status} {body}");

    // A webhook delivery through a jq transformation.
    let (status, body) = call(
        &client,
        client
            .put(api.url("/api/integrations/webhook/deploy-hook"))
            .json(&json!({"verification": {"scheme": "none"}, "transform": "{action}"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &client,
        client.post(api.url("/api/integrations/webhook/deploy-hook")).json(&json!({"action": "opened"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    // The bus metrics come from the worker: run one in-process (same recorder) on a private topology.
    run_one_bus_command(&api).await;

    // With a key in the store, a request without one is refused (and counted); /metrics is then
    // read with the admin key.
    let key = create_api_key(&api, "deploy-metrics", &["admin"]).await.expect("key");
    let refused = client.get(api.url("/api/tools")).send().await.expect("send");
    assert_eq!(refused.status(), 401);
    let text = client
        .get(api.url("/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("auth_failures_total{reason=\"missing_key\"} 1"), "{text}");
    let have = exported(&text);
    let missing: Vec<&String> = wanted.iter().filter(|m| !have.contains(*m)).collect();
    assert!(missing.is_empty(), "dashboard metrics not exported: {missing:?}\n(wanted {wanted:?})");
    let alerts = alert_expressions();
    let alerted = metric_names(alerts.iter().map(|(_, e)| e.as_str()));
    let missing: Vec<&String> = alerted.iter().filter(|m| !have.contains(*m)).collect();
    assert!(missing.is_empty(), "alerting rules' metrics not exported: {missing:?}");
    // The metric families the issue names are all on the dashboard.
    for family in [
        "integration_tool_calls_total",
        "integration_tool_call_duration_seconds_bucket",
        "integration_tool_retries_total",
        "integration_rate_limit_permits_total",
        "integration_rate_limit_rejections_total",
        "integration_rate_limit_wait_seconds_bucket",
        "integration_upstream_request_duration_seconds_bucket",
        "integration_upstream_budget_remaining",
        "http_request_duration_seconds_bucket",
        "bus_commands_total",
        // and the families added since: webhooks, jq, circuit breakers, API keys
        "integration_webhook_deliveries_total",
        "integration_transform_runs_total",
        "integration_transform_wait_seconds_bucket",
        "integration_circuit_opened_total",
        "integration_circuit_rejections_total",
        "auth_failures_total",
    ] {
        assert!(wanted.contains(family), "the dashboard does not chart {family}");
    }
    for line in [
        "integration_webhook_deliveries_total{webhook=\"deploy-hook\",outcome=\"processed\"} 1",
        "integration_circuit_opened_total{connection=\"jira-down\"} 1",
    ] {
        assert!(text.contains(line), "{line} is not exported");
    }
    assert!(
        text.contains("integration_upstream_pacing_wait_seconds_count{provider=\"slack\",scope=\"channel\"}"),
        "the second message's pacing wait is not exported"
    );
    assert!(
        text.contains("integration_upstream_pacing_refusals_total{provider=\"slack\",scope=\"channel\"} 1"),
        "the refused message is not counted"
    );
    // Upstream calls of all three providers are timed.
    for provider in ["jira", "github", "slack"] {
        let needle = format!("integration_upstream_request_duration_seconds_count{{provider=\"{provider}\"");
        assert!(text.contains(&needle), "no upstream timing for {provider}");
    }
}

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Publish one command to a worker sharing the api's executor and wait for its event.
async fn run_one_bus_command(api: &Api) {
    let topology = Topology::prefixed(&unique("deploy-e2e"));
    let mut config = WorkerConfig::new(AMQP);
    config.topology = topology.clone();
    config.concurrency = 2;
    config.prefetch = 4;
    config.shutdown_grace = Duration::from_secs(5);
    let worker = Worker::new(api.app.executor.clone(), Arc::new(MemoryOutcomes::default()), config);
    let status = worker.status();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(async move { worker.run(stopped).await });
    let deadline = Instant::now() + Duration::from_secs(15);
    while !status.connected() {
        assert!(Instant::now() < deadline, "worker did not connect to RabbitMQ");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connection =
        lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()).await.expect("rabbitmq");
    let publisher = Publisher::open(&connection).await.expect("publisher");
    let body = json!({"task_id": "t", "step_id": "s", "tool_name": "jira_project_finder",
                      "parameters": {"project_name": "Engineering"}});
    publisher
        .publish_json(
            &topology.commands_exchange,
            "integrations.jira",
            "deploy-e2e",
            body.to_string().as_bytes(),
        )
        .await
        .expect("publish");
    let client = reqwest::Client::new();
    loop {
        let text =
            client.get(api.url("/metrics")).send().await.expect("metrics").text().await.unwrap_or_default();
        if text.contains("bus_events_published_total") {
            break;
        }
        assert!(Instant::now() < deadline, "no event published for the command");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let _ = handle.await;
    let channel = connection.create_channel().await.expect("channel");
    for q in [&topology.commands_queue, &topology.dead_letter_queue] {
        let _ = channel.queue_delete(q.as_str().into(), lapin::options::QueueDeleteOptions::default()).await;
    }
    for e in [&topology.commands_exchange, &topology.events_exchange, &topology.dead_letter_exchange] {
        let _ = channel
            .exchange_delete(e.as_str().into(), lapin::options::ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_tool_route_of_the_real_api() {
    let api = Api::start(&[]).await.expect("api");
    let client = reqwest::Client::new();
    let (status, doc) = call(&client, client.get(api.url("/api/openapi.json"))).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let (_, tools) = call(&client, client.get(api.url("/api/tools"))).await;
    let tools = tools["tools"].as_array().expect("tools");
    assert!(tools.len() >= 30, "all providers compiled in");
    for tool in tools {
        let (mut path, method) =
            (tool["endpoint"].as_str().expect("endpoint"), tool["method"].as_str().expect("method"));
        if path.starts_with("/api/tools/") && path.ends_with("/invoke") {
            path = "/api/tools/{name}/invoke";
        }
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} ({}) missing", tool["name"]);
        let listed =
            op["x-tools"].as_array().is_some_and(|t| t.contains(&tool["name"])) || path.ends_with("/invoke");
        assert!(listed, "{} not on {method} {path}", tool["name"]);
    }
    // every $ref resolves
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        assert!(r.strip_prefix('#').and_then(|p| doc.pointer(p)).is_some(), "unresolved {r}");
    }
    let page = client.get(api.url("/docs")).send().await.expect("docs");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("/api/openapi.json"));
}
