//! The OpenAPI 3.1 document of the REST API, generated from the tool registry at start-up, and a
//! small browsable page at `/docs`.
//!
//! Nothing here is written per tool: each tool route becomes one operation whose path and query
//! parameters and JSON request body come from the tool's parameter JSON Schema (draft 2020-12, which
//! OpenAPI 3.1 embeds as is). A schema's local `$defs` move to `components/schemas` under a prefix
//! (`jira_create_issue.IssueFields`) and its `#/$defs/...` references are rewritten to point there,
//! so every `$ref` resolves against the whole document. The management routes are described by hand
//! below, next to the one error body.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use integration_core::{Method, RegisteredTool, Registry};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::tools::CONNECTION_HEADER;

/// Path of the JSON document.
pub const OPENAPI_PATH: &str = "/api/openapi.json";
/// Path of the browsable page.
pub const DOCS_PATH: &str = "/docs";

/// The routes `/api/openapi.json` and `/docs`, serving a document built once, now.
pub(crate) fn routes(registry: &Registry) -> Router<AppState> {
    let body: Arc<str> = Arc::from(openapi_document(registry).to_string());
    Router::new()
        .route(
            OPENAPI_PATH,
            get(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response() }
            }),
        )
        .route(DOCS_PATH, get(docs_page))
}

async fn docs_page() -> Response {
    Html(DOCS_HTML).into_response()
}

/// The OpenAPI 3.1 document of every route the REST API serves for this registry.
pub fn openapi_document(registry: &Registry) -> Value {
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();

    management(registry, &mut paths, &mut schemas);

    for ((method, path), group) in registry.routes() {
        let operation = tool_operation(method, &path, &group, &mut schemas);
        paths.entry(path).or_default().insert(method.as_str().to_ascii_lowercase(), operation);
    }

    let mut tags: Vec<Value> = vec![
        json!({"name": "management", "description": "Providers, connections and the tool registry"}),
        json!({"name": "operations", "description": "Health, readiness, metrics and this document"}),
    ];
    for integration in registry.integrations() {
        let info = integration.info();
        tags.push(
            json!({"name": info.name, "description": format!("{}: {}", info.display_name, info.description)}),
        );
    }

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Integrations Service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tools over Jira, GitHub, Slack and HTTP systems. Every tool is reachable on its \
                own route and through `POST /api/tools/{name}/invoke`; all errors share one body \
                (`#/components/schemas/Error`). Generated from the tool registry at start-up.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": tags,
        "paths": paths.into_iter().map(|(k, v)| (k, Value::Object(v))).collect::<Map<_, _>>(),
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "An error: `invalid_request` 400, `invalid_input` 422 (`details.violations`), \
                        `authentication` 401, `permission` 403, `not_found` 404, `conflict` 409, \
                        `payload_too_large` 413, `unsupported_media_type` 415, `configuration` 424, \
                        `rate_limited` 429 (with `Retry-After`), `network`/`upstream` 502, `timeout` 504, \
                        `internal` 500",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
            "parameters": {
                "connection": {
                    "name": "connection", "in": "query", "required": false,
                    "description": "The connection to use (default: the provider's own, e.g. `jira`)",
                    "schema": {"type": "string"},
                },
                "connectionHeader": {
                    "name": CONNECTION_HEADER, "in": "header", "required": false,
                    "description": "The connection to use, as a header",
                    "schema": {"type": "string"},
                },
                "cache": {
                    "name": "cache", "in": "query", "required": false,
                    "description": "`false` bypasses cached upstream answers",
                    "schema": {"type": "boolean", "default": true},
                },
                "idempotencyKey": {
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "A caller-chosen key identifying this logical call (1-255 printable ASCII characters)",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
                },
                "name": {
                    "name": "name", "in": "path", "required": true,
                    "description": "A provider (`jira`) or a connection name (`jira-eu`)",
                    "schema": {"type": "string"},
                },
            },
        },
    })
}

/// The one error body.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message", "retryable"],
                "properties": {
                    "type": {"type": "string", "examples": ["invalid_input", "not_found", "rate_limited"]},
                    "message": {"type": "string"},
                    "retryable": {"type": "boolean"},
                    "details": {"description": "Kind-specific details, e.g. `violations` for `invalid_input`"},
                },
            },
        },
    })
}

fn error_responses(mut responses: Map<String, Value>) -> Value {
    responses.insert("default".into(), json!({"$ref": "#/components/responses/Error"}));
    Value::Object(responses)
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn management(
    registry: &Registry,
    paths: &mut BTreeMap<String, Map<String, Value>>,
    schemas: &mut Map<String, Value>,
) {
    let mut put = |path: &str, method: &str, op: Value| {
        paths.entry(path.to_owned()).or_default().insert(method.to_owned(), op);
    };
    let any_object = json!({"type": "object"});
    let name_param = json!({"$ref": "#/components/parameters/name"});

    // Configure bodies: one schema per provider.
    let mut configs = Vec::new();
    for integration in registry.integrations() {
        let info = integration.info();
        let key = component_key(&format!("{}.config", info.name));
        let schema = lift_defs(&info.config_schema, &key, schemas);
        schemas.insert(key.clone(), schema);
        configs.push(json!({"$ref": format!("#/components/schemas/{key}")}));
    }
    // `anyOf`: the provider is chosen by the path (or `provider`), not by which schema matches, and a
    // body may match several providers' schemas (a `oneOf` would call it invalid).
    let configure_body = if configs.is_empty() { any_object.clone() } else { json!({ "anyOf": configs }) };

    put(
        "/api/integrations",
        "get",
        json!({
            "tags": ["management"], "operationId": "listIntegrations",
            "summary": "Providers compiled in, their tools and connections",
            "responses": error_responses(Map::from_iter([("200".into(), json_response("The providers", any_object.clone()))])),
        }),
    );
    put(
        "/api/integrations/{name}",
        "delete",
        json!({
            "tags": ["management"], "operationId": "deleteConnection",
            "summary": "Delete a stored connection",
            "parameters": [name_param],
            "responses": error_responses(Map::from_iter([("200".into(), json_response("Deleted", any_object.clone()))])),
        }),
    );
    put(
        "/api/integrations/{name}/configure",
        "post",
        json!({
            "tags": ["management"], "operationId": "configureConnection",
            "summary": "Save a connection (flat provider settings; secrets are write-only)",
            "description": "Settings are checked against the provider's schema, then read as a call would read them (URLs http or https, without credentials, a query or a fragment): a connection no call could use is refused with 422 and the stored one, if any, stays.",
            "parameters": [name_param, {
                "name": "test", "in": "query", "required": false, "schema": {"type": "boolean", "default": false},
                "description": "Check the connection first and save nothing if the check fails",
            }],
            "requestBody": {"required": true, "content": {"application/json": {"schema": configure_body}}},
            "responses": error_responses(Map::from_iter([("200".into(), json_response("Saved", any_object.clone()))])),
        }),
    );
    put(
        "/api/integrations/{name}/status",
        "get",
        json!({
            "tags": ["management"], "operationId": "connectionStatus",
            "summary": "Configured or not, source, last check, rate-limit budget, recent calls and failures",
            "parameters": [name_param],
            "responses": error_responses(Map::from_iter([("200".into(), json_response("The status", any_object.clone()))])),
        }),
    );
    put(
        "/api/integrations/{name}/test",
        "post",
        json!({
            "tags": ["management"], "operationId": "testConnection",
            "summary": "Run the provider's connection check",
            "parameters": [name_param],
            "responses": error_responses(Map::from_iter([("200".into(), json_response("The check passed", any_object.clone()))])),
        }),
    );
    put(
        "/api/tools",
        "get",
        json!({
            "tags": ["management"], "operationId": "listTools",
            "summary": "Every tool in registry form, or as OpenAI functions",
            "parameters": [{
                "name": "format", "in": "query", "required": false,
                "schema": {"type": "string", "enum": ["registry", "openai"], "default": "registry"},
            }],
            "responses": error_responses(Map::from_iter([("200".into(), json_response("The tools", json!({"type": ["object", "array"]})))])),
        }),
    );
    let tool_names: Vec<String> = registry.tools().iter().map(|t| t.spec().name.clone()).collect();
    put(
        "/api/tools/{name}/invoke",
        "post",
        json!({
            "tags": ["management"], "operationId": "invokeTool",
            "summary": "Run any tool by name",
            "parameters": [
                {"name": "name", "in": "path", "required": true, "schema": {"type": "string", "enum": tool_names}},
                {"$ref": "#/components/parameters/connectionHeader"},
                {"$ref": "#/components/parameters/idempotencyKey"},
            ],
            "requestBody": {"required": false, "content": {"application/json": {"schema": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "parameters": {"type": "object", "description": "The tool's parameters (see its route's schema)"},
                    "connection": {"type": "string"},
                    "cache": {"type": "boolean", "default": true},
                    "idempotency_key": {"type": "string", "maxLength": 255, "pattern": "^[ -~]*$"},
                },
            }}}},
            "responses": error_responses(Map::from_iter([("200".into(), json_response("The result and call metadata", json!({
                "type": "object",
                "required": ["result", "meta"],
                "properties": {
                    "result": {},
                    "meta": {"type": "object", "properties": {
                        "tool": {"type": "string"}, "provider": {"type": "string"},
                        "connection": {"type": ["string", "null"]}, "attempts": {"type": "integer"},
                        "duration_ms": {"type": "integer"},
                    }},
                },
            })))])),
        }),
    );
    let text = |description: &str| json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}});
    put(
        "/healthz",
        "get",
        json!({"tags": ["operations"], "operationId": "healthz", "summary": "Liveness",
               "responses": {"200": json_response("Alive", any_object.clone())}}),
    );
    put(
        "/readyz",
        "get",
        json!({"tags": ["operations"], "operationId": "readyz", "summary": "Readiness (database and other dependencies)",
               "responses": {"200": json_response("Ready", any_object.clone()),
                             "503": json_response("A dependency is unavailable", any_object.clone())}}),
    );
    put(
        "/metrics",
        "get",
        json!({"tags": ["operations"], "operationId": "metrics", "summary": "Prometheus metrics (text format 0.0.4)",
               "responses": {"200": text("The metrics")}}),
    );
    put(
        OPENAPI_PATH,
        "get",
        json!({"tags": ["operations"], "operationId": "openapi", "summary": "This document",
               "responses": {"200": json_response("OpenAPI 3.1", any_object.clone())}}),
    );
    put(
        DOCS_PATH,
        "get",
        json!({"tags": ["operations"], "operationId": "docs", "summary": "A browsable page of this document",
               "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}),
    );
}

/// One operation for the tools sharing `(method, path)` (usually one tool).
fn tool_operation(
    method: Method,
    path: &str,
    group: &[RegisteredTool],
    schemas: &mut Map<String, Value>,
) -> Value {
    let path_params: Vec<&str> =
        path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
    let has_body = matches!(method, Method::Post | Method::Put | Method::Patch);

    let mut parameters: Vec<Value> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut bodies: Vec<Value> = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    let mut takes_connection = false;
    let mut takes_cache = false;

    for tool in group {
        let spec = tool.spec();
        let key = component_key(&spec.name);
        let params = lift_defs(&spec.parameters, &key, schemas);
        let required: Vec<&str> = params
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let empty = Map::new();
        let props = params.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        takes_connection |= props.contains_key("connection");
        takes_cache |= props.contains_key("cache");

        for name in &path_params {
            if seen.iter().any(|s| s == name) {
                continue;
            }
            seen.push((*name).to_owned());
            let mut p = json!({"name": name, "in": "path", "required": true,
                               "schema": props.get(*name).cloned().unwrap_or(json!({"type": "string"}))});
            copy_description(&mut p, props.get(*name));
            parameters.push(p);
        }
        let mut body_props = Map::new();
        let mut body_required = Vec::new();
        for (name, schema) in props {
            if path_params.contains(&name.as_str()) {
                continue;
            }
            if has_body {
                body_props.insert(name.clone(), schema.clone());
                if required.contains(&name.as_str()) {
                    body_required.push(Value::String(name.clone()));
                }
                continue;
            }
            if seen.iter().any(|s| s == name) {
                continue;
            }
            seen.push(name.clone());
            // Several tools on one route: a parameter is required only if one tool alone is served.
            let mut p = json!({"name": name, "in": "query",
                               "required": group.len() == 1 && required.contains(&name.as_str()),
                               "schema": schema});
            if is_array(schema) {
                p["style"] = json!("form");
                p["explode"] = json!(false);
            }
            copy_description(&mut p, Some(schema));
            parameters.push(p);
        }
        if has_body {
            let mut body = json!({"type": "object", "properties": body_props});
            if !body_required.is_empty() {
                body["required"] = Value::Array(body_required);
            }
            if let Some(extra) = params.get("additionalProperties") {
                body["additionalProperties"] = extra.clone();
            }
            schemas.insert(format!("{key}.body"), body);
            bodies.push(json!({"$ref": format!("#/components/schemas/{key}.body")}));
        }
        if let Some(result) = &spec.result {
            let result_key = format!("{key}.result");
            let result = lift_defs(result, &result_key, schemas);
            schemas.insert(result_key.clone(), result);
            results.push(json!({"$ref": format!("#/components/schemas/{result_key}")}));
        }
    }
    if !takes_connection {
        parameters.push(json!({"$ref": "#/components/parameters/connection"}));
    }
    if !takes_cache && method == Method::Get {
        parameters.push(json!({"$ref": "#/components/parameters/cache"}));
    }
    parameters.push(json!({"$ref": "#/components/parameters/connectionHeader"}));
    if has_body {
        parameters.push(json!({"$ref": "#/components/parameters/idempotencyKey"}));
    }

    let first = group.first().map(RegisteredTool::spec);
    let names: Vec<&str> = group.iter().map(|t| t.spec().name.as_str()).collect();
    let description = if group.len() == 1 {
        first.map(|s| s.description.clone()).unwrap_or_default()
    } else {
        let mut text = String::from(
            "Several tools share this route; the first whose required parameters are all given runs:\n",
        );
        for tool in group {
            let spec = tool.spec();
            text.push_str(&format!(
                "- `{}` (requires {:?}): {}\n",
                spec.name,
                spec.required_params(),
                spec.description
            ));
        }
        text
    };
    let creates = first.is_some_and(|s| method == Method::Post && !s.hints.idempotent && !s.hints.read_only);
    let success = if creates { "201" } else { "200" };
    let result_schema = match results.len() {
        0 => json!({}),
        1 => results.remove(0),
        _ => json!({ "oneOf": results }),
    };
    let mut operation = json!({
        "tags": [first.map(|s| s.provider.clone()).unwrap_or_default()],
        "operationId": names.join("__"),
        "summary": first.map(|s| summary(&s.description)).unwrap_or_default(),
        "description": description,
        "parameters": parameters,
        "responses": error_responses(Map::from_iter([(success.to_owned(), json_response("The tool's result", result_schema))])),
        "x-tools": names,
    });
    if let Some(hints) = first.map(|s| s.hints) {
        operation["x-hints"] = json!(hints);
    }
    if has_body {
        let schema = match bodies.len() {
            1 => bodies.remove(0),
            _ => json!({ "oneOf": bodies }),
        };
        operation["requestBody"] = json!({
            "required": false,
            "description": "Parameters not in the path; query parameters of the same names are accepted too",
            "content": {"application/json": {"schema": schema}},
        });
    }
    operation
}

fn summary(description: &str) -> String {
    let first = description.split(['\n', '.']).next().unwrap_or(description).trim();
    first.chars().take(120).collect()
}

fn copy_description(parameter: &mut Value, schema: Option<&Value>) {
    if let Some(d) = schema.and_then(|s| s.get("description")).and_then(Value::as_str) {
        parameter["description"] = json!(d);
    }
}

fn is_array(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "array",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
        _ => false,
    }
}

/// A component name OpenAPI accepts (`^[a-zA-Z0-9._-]+$`).
fn component_key(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect()
}

/// Move `$defs` (and legacy `definitions`) of `schema` into `components/schemas` as
/// `{prefix}.{name}`, rewrite local references to them, and return the schema without them.
fn lift_defs(schema: &Value, prefix: &str, schemas: &mut Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    let mut defs = Map::new();
    if let Some(obj) = schema.as_object_mut() {
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(d)) = obj.remove(key) {
                for (name, def) in d {
                    defs.insert(
                        format!("#/{key}/{name}"),
                        Value::Object(Map::from_iter([("def".into(), def), ("name".into(), json!(name))])),
                    );
                }
            }
        }
        obj.remove("$schema");
    }
    let rename = |reference: &str| -> Option<String> {
        let (_, name) = reference.rsplit_once('/')?;
        let decoded = name.replace("~1", "/").replace("~0", "~");
        defs.contains_key(reference)
            .then(|| format!("#/components/schemas/{prefix}.{}", component_key(&decoded)))
    };
    rewrite_refs(&mut schema, &rename);
    for (reference, entry) in &defs {
        let Some(mut def) = entry.get("def").cloned() else { continue };
        rewrite_refs(&mut def, &rename);
        if let Some(target) = rename(reference)
            && let Some(name) = target.strip_prefix("#/components/schemas/")
        {
            schemas.insert(name.to_owned(), def);
        }
    }
    schema
}

fn rewrite_refs(value: &mut Value, rename: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(new) = rename(reference)
            {
                *reference = new;
            }
            for (key, child) in map.iter_mut() {
                // `properties`, `$defs`, ... hold names, not schemas keyed by `$ref`: recurse anyway,
                // a property literally named `$ref` is a string value only inside a schema.
                if key != "$ref" {
                    rewrite_refs(child, rename);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, rename)),
        _ => {}
    }
}

/// A page that renders the document with a few lines of script: no CDN, no build step.
const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Integrations Service API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;color:#222}
h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
details{border:1px solid #ddd;border-radius:6px;margin:.4rem 0;padding:.3rem .6rem}
summary{cursor:pointer}
.m{display:inline-block;min-width:4.2rem;font-weight:600;font-family:monospace;text-align:center;border-radius:4px;color:#fff;margin-right:.5rem}
.get{background:#2b7bb9}.post{background:#2e9e5b}.put{background:#c98a1c}.patch{background:#8a5bc9}.delete{background:#c33}
code,pre{font-family:ui-monospace,monospace;font-size:12.5px}pre{background:#f6f8fa;padding:.5rem;overflow:auto;max-height:28rem}
table{border-collapse:collapse}td,th{border:1px solid #e2e2e2;padding:.2rem .5rem;text-align:left;vertical-align:top}
#filter{width:100%;padding:.4rem;font-size:14px}
</style></head><body>
<h1>Integrations Service API</h1>
<p>Generated from the tool registry: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1).</p>
<input id="filter" placeholder="filter by path, tool or summary">
<div id="out">loading…</div>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
const pre = v => "<pre>" + esc(JSON.stringify(v, null, 2)) + "</pre>";
let doc;
function deref(v) { return v && v.$ref ? v.$ref.slice(2).split("/").reduce((o, k) => o && o[k.replace(/~1/g,"/").replace(/~0/g,"~")], doc) : v; }
function render() {
  const q = document.getElementById("filter").value.toLowerCase();
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    const text = (path + " " + op.operationId + " " + (op.summary || "")).toLowerCase();
    if (q && !text.includes(q)) continue;
    (byTag[(op.tags || ["other"])[0]] ||= []).push([method, path, op]);
  }
  let html = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    html += "<h2>" + esc(tag) + "</h2>";
    for (const [method, path, op] of ops) {
      const params = (op.parameters || []).map(deref);
      html += "<details><summary><span class='m " + method + "'>" + method.toUpperCase() + "</span><code>" + esc(path) +
        "</code> — " + esc(op.summary) + "</summary><p>" + esc(op.description || "").replace(/\n/g, "<br>") + "</p>";
      if (params.length) html += "<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>" +
        params.map(p => "<tr><td><code>" + esc(p.name) + "</code></td><td>" + esc(p.in) + "</td><td>" + (p.required ? "yes" : "") +
          "</td><td><code>" + esc(JSON.stringify(p.schema)) + "</code></td><td>" + esc(p.description) + "</td></tr>").join("") + "</table>";
      const body = op.requestBody && op.requestBody.content["application/json"];
      if (body) html += "<p><b>JSON body</b></p>" + pre(deref(body.schema));
      html += "<p><b>Responses</b>: " + Object.keys(op.responses).map(esc).join(", ") + "</p></details>";
    }
  }
  document.getElementById("out").innerHTML = html || "no operation matches";
}
fetch("/api/openapi.json").then(r => r.json()).then(d => { doc = d; render(); })
  .catch(e => { document.getElementById("out").textContent = "could not load the document: " + e; });
document.getElementById("filter").addEventListener("input", () => doc && render());
</script></body></html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use integration_core::{
        Health, Integration, IntegrationError, IntegrationInfo, Tool, ToolHints, ToolSpec, typed_tool,
    };

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code, reason = "fields exist for the schema")]
    struct GetThing {
        /// The thing's key.
        key: String,
        /// Kinds to include.
        kinds: Option<Vec<Kind>>,
        limit: Option<u32>,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code, reason = "variants exist for the schema")]
    enum Kind {
        Small,
        Large,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code, reason = "fields exist for the schema")]
    struct CreateThing {
        project: String,
        fields: Fields,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code, reason = "fields exist for the schema")]
    struct Fields {
        title: String,
        kind: Kind,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code, reason = "fields exist for the schema")]
    struct ListThings {
        query: Option<String>,
    }

    struct Demo;

    #[async_trait::async_trait]
    impl Integration for Demo {
        fn info(&self) -> IntegrationInfo {
            IntegrationInfo {
                name: "demo".into(),
                display_name: "Demo".into(),
                description: "A demo provider".into(),
                config_schema: json!({"type": "object", "properties": {"token": {"type": "string", "writeOnly": true}}}),
                env_vars: vec![],
            }
        }

        fn tools(&self) -> Vec<Arc<dyn Tool>> {
            let ok =
                |_: integration_core::ToolContext, _: Value| async { Ok::<_, IntegrationError>(Value::Null) };
            vec![
                typed_tool(
                    ToolSpec::new("demo_get_thing", "demo", "Get one thing. By key.")
                        .route(Method::Get, "/api/integrations/demo/things/{key}"),
                    move |c, _: GetThing| ok(c, Value::Null),
                ),
                typed_tool(
                    ToolSpec::new("demo_create_thing", "demo", "Create a thing")
                        .hints(ToolHints::write())
                        .route(Method::Post, "/api/integrations/demo/projects/{project}/things")
                        .result(json!({"$defs": {"Out": {"type": "string"}}, "type": "object",
                                       "properties": {"id": {"$ref": "#/$defs/Out"}}})),
                    move |c, _: CreateThing| ok(c, Value::Null),
                ),
                typed_tool(
                    ToolSpec::new("demo_list_things", "demo", "List things")
                        .route(Method::Get, "/api/integrations/demo/things"),
                    move |c, _: ListThings| ok(c, Value::Null),
                ),
                typed_tool(
                    ToolSpec::new("demo_search_things", "demo", "Search things")
                        .route(Method::Get, "/api/integrations/demo/things"),
                    move |c, _: GetThing| ok(c, Value::Null),
                ),
                typed_tool(
                    ToolSpec::new("demo_no_route", "demo", "Only through invoke"),
                    move |c, _: ListThings| ok(c, Value::Null),
                ),
            ]
        }

        async fn check(&self, _: &integration_core::Connection) -> Result<Health, IntegrationError> {
            Ok(Health { identity: None, details: Value::Null })
        }
    }

    fn registry() -> Registry {
        let registry = Registry::new();
        registry.add(Arc::new(Demo)).expect("demo registers");
        registry
    }

    /// Every `$ref` in `value` that points into the document resolves.
    fn unresolved_refs(doc: &Value, value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let resolved = r.strip_prefix('#').and_then(|p| doc.pointer(p));
                    if resolved.is_none() {
                        out.push(r.clone());
                    }
                }
                map.values().for_each(|v| unresolved_refs(doc, v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| unresolved_refs(doc, v, out)),
            _ => {}
        }
    }

    /// The structural checks OpenAPI 3.1 requires of what this module writes.
    pub(crate) fn check_document(doc: &Value) {
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        let paths = doc["paths"].as_object().expect("paths");
        let mut operation_ids = std::collections::HashSet::new();
        let key_ok = |k: &str| k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        for key in doc["components"]["schemas"].as_object().expect("schemas").keys() {
            assert!(key_ok(key), "component name {key}");
        }
        for (path, item) in paths {
            assert!(path.starts_with('/'), "{path}");
            let item = item.as_object().expect("path item");
            assert!(!item.is_empty(), "{path} has no operation");
            let template: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            for (method, op) in item {
                assert!(["get", "post", "put", "patch", "delete"].contains(&method.as_str()), "{method}");
                let id = op["operationId"].as_str().expect("operationId");
                assert!(operation_ids.insert(id.to_owned()), "duplicate operationId {id}");
                assert!(!op["responses"].as_object().expect("responses").is_empty());
                let params: Vec<Value> = op["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|p| match p.get("$ref").and_then(Value::as_str) {
                        Some(r) => doc.pointer(&r[1..]).cloned().unwrap_or(Value::Null),
                        None => p.clone(),
                    })
                    .collect();
                for name in &template {
                    assert!(
                        params
                            .iter()
                            .any(|p| p["in"] == "path" && p["name"] == *name && p["required"] == true),
                        "{method} {path}: path parameter {name} undeclared"
                    );
                }
                let mut seen = std::collections::HashSet::new();
                for p in &params {
                    assert!(p["name"].is_string() && p["in"].is_string(), "{method} {path}: {p}");
                    assert!(p.get("schema").is_some(), "{method} {path}: {p}");
                    assert!(
                        seen.insert((p["name"].to_string(), p["in"].to_string())),
                        "{method} {path}: duplicate {p}"
                    );
                    if p["in"] == "path" {
                        assert!(
                            template.contains(&p["name"].as_str().unwrap_or_default()),
                            "{p} not in {path}"
                        );
                    }
                }
            }
        }
        let mut missing = Vec::new();
        unresolved_refs(doc, doc, &mut missing);
        assert!(missing.is_empty(), "unresolved $ref: {missing:?}");
    }

    #[test]
    fn document_is_structurally_valid_and_lists_every_tool_route() {
        let registry = registry();
        let doc = openapi_document(&registry);
        let text = doc.to_string();
        let doc: Value = serde_json::from_str(&text).expect("the document parses");
        check_document(&doc);
        for ((method, path), tools) in registry.routes() {
            let op = &doc["paths"][&path][method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{method:?} {path} missing");
            for tool in tools {
                assert!(op["x-tools"].as_array().expect("x-tools").contains(&json!(tool.spec().name)));
            }
        }
        for path in [
            "/api/integrations",
            "/api/integrations/{name}/configure",
            "/api/tools/{name}/invoke",
            "/healthz",
            "/metrics",
        ] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
    }

    #[test]
    fn parameters_come_from_the_schema() {
        let doc = openapi_document(&registry());
        let get = &doc["paths"]["/api/integrations/demo/things/{key}"]["get"];
        let params = get["parameters"].as_array().expect("params");
        let key = params.iter().find(|p| p["name"] == "key").expect("key");
        assert_eq!(key["in"], "path");
        assert_eq!(key["description"], "The thing's key.");
        let kinds = params.iter().find(|p| p["name"] == "kinds").expect("kinds");
        assert_eq!(kinds["in"], "query");
        assert_eq!(kinds["explode"], false);
        assert!(kinds["schema"].to_string().contains("#/components/schemas/demo_get_thing.Kind"));
        assert_eq!(doc["components"]["schemas"]["demo_get_thing.Kind"]["enum"], json!(["Small", "Large"]));

        let post = &doc["paths"]["/api/integrations/demo/projects/{project}/things"]["post"];
        assert!(post["responses"]["201"].is_object(), "a create answers 201");
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/demo_create_thing.body"
        );
        let body = &doc["components"]["schemas"]["demo_create_thing.body"];
        assert!(body["properties"]["fields"].is_object());
        assert!(body["properties"].get("project").is_none(), "path parameters are not in the body");
        assert_eq!(body["required"], json!(["fields"]));
        assert_eq!(
            doc["components"]["schemas"]["demo_create_thing.result"]["properties"]["id"]["$ref"],
            "#/components/schemas/demo_create_thing.result.Out"
        );

        let shared = &doc["paths"]["/api/integrations/demo/things"]["get"];
        assert_eq!(shared["x-tools"].as_array().map(Vec::len), Some(2));
        assert!(shared["parameters"].as_array().expect("params").iter().all(|p| p["required"] != true));
        assert!(doc["components"]["schemas"]["demo.config"]["properties"]["token"]["writeOnly"] == true);
        let configure = &doc["paths"]["/api/integrations/{name}/configure"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert_eq!(configure["anyOf"][0]["$ref"], "#/components/schemas/demo.config", "{configure}");
    }

    #[tokio::test]
    async fn routes_serve_the_document_and_the_page() {
        use tower::ServiceExt as _;
        let registry = Arc::new(registry());
        let executor = integration_core::Executor::new(
            registry,
            Arc::new(integration_core::InMemoryConnections::default()),
            integration_core::ExecutorConfig::default(),
        );
        let app = crate::router(AppState::new(executor), &crate::HttpConfig::default());
        let get = |uri: &str| axum::http::Request::get(uri).body(axum::body::Body::empty()).expect("request");
        let response = app.clone().oneshot(get(OPENAPI_PATH)).await.expect("response");
        assert_eq!(response.status(), 200);
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
        let doc: Value = serde_json::from_slice(&bytes).expect("json");
        check_document(&doc);
        let response = app.oneshot(get(DOCS_PATH)).await.expect("response");
        assert_eq!(response.status(), 200);
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains("/api/openapi.json"));
    }
}
