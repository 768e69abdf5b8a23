//! Tool endpoints: the registry listing, the generic invoke endpoint, and every tool's own REST
//! route, mounted from its spec (no handler is written per endpoint).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use integration_core::{Method, RegisteredTool, Source, ToolCall, ToolOutcome};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::params;

/// Query keys every tool route understands besides the tool's own parameters.
const CONNECTION_PARAM: &str = "connection";
const CACHE_PARAM: &str = "cache";
/// Header naming the connection a call should use.
pub const CONNECTION_HEADER: &str = "x-integration-connection";

/// `?format=` of the tool listing.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    format: Option<String>,
    /// A search query: rank the tools and return the best (`tool_search`).
    q: Option<String>,
    /// Most results of a search (default 10).
    limit: Option<usize>,
}

/// The registry form of one tool (the specification's `register_tool` dict plus hints).
pub fn registry_entry(tool: &RegisteredTool) -> Value {
    let spec = tool.spec();
    json!({
        "name": spec.name,
        "description": spec.description,
        "service": "integrations",
        "provider": spec.provider,
        "endpoint": spec.route.as_ref().map(|r| r.path.clone())
            .unwrap_or_else(|| format!("/api/tools/{}/invoke", spec.name)),
        "method": spec.route.as_ref().map(|r| r.method.as_str()).unwrap_or("POST"),
        "parameters_schema": spec.parameters,
        "result_schema": spec.result,
        "hints": spec.hints,
    })
}

/// The OpenAI function-calling form of one tool.
pub fn openai_entry(tool: &RegisteredTool) -> Value {
    let spec = tool.spec();
    json!({
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        }
    })
}

/// The MCP `tools/list` form of one tool (JSON Schema input and behaviour annotations).
pub fn mcp_entry(tool: &RegisteredTool) -> Value {
    let spec = tool.spec();
    json!({
        "name": spec.name,
        "description": spec.description,
        "inputSchema": spec.parameters,
        "annotations": {
            "readOnlyHint": spec.hints.read_only,
            "destructiveHint": spec.hints.destructive,
            "idempotentHint": spec.hints.idempotent,
            "openWorldHint": true,
        },
    })
}

/// `GET /api/tools`
pub(crate) async fn list_tools(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let registry = state.executor.registry();
    let (tools, scores): (Vec<RegisteredTool>, Option<Vec<f64>>) = match query.q.as_deref() {
        Some(q) => {
            let hits = crate::agent::search_tools(registry, q, query.limit.unwrap_or(10).clamp(1, 100));
            let scores = hits.iter().map(|(_, s)| *s).collect();
            (hits.into_iter().map(|(t, _)| t).collect(), Some(scores))
        }
        None => (registry.tools(), None),
    };
    let body = match query.format.as_deref() {
        None | Some("registry") => {
            let mut entries: Vec<Value> = tools.iter().map(registry_entry).collect();
            if let Some(scores) = &scores {
                entries.iter_mut().zip(scores).for_each(|(e, s)| e["score"] = json!(s));
            }
            integration_core::json_object([("tools", Value::Array(entries))])
        }
        Some("openai") => Value::Array(tools.iter().map(openai_entry).collect()),
        Some("mcp") => integration_core::json_object([("tools", tools.iter().map(mcp_entry).collect())]),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown format '{other}': use 'registry' (default), 'openai' or 'mcp'"
            )));
        }
    };
    Ok(Json(body).into_response())
}

/// Body of `POST /api/tools/{name}/invoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvokeBody {
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    cache: Option<bool>,
    #[serde(default)]
    idempotency_key: Option<String>,
    /// Largest result in bytes (default: `MAX_OUTPUT_BYTES`).
    #[serde(default)]
    max_output_bytes: Option<usize>,
    /// Paths of the result to keep.
    #[serde(default)]
    fields: Option<Vec<String>>,
}

/// `POST /api/tools/{name}/invoke`
pub(crate) async fn invoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: InvokeBody = parse_json_body(&headers, &body)?.unwrap_or(InvokeBody {
        parameters: None,
        connection: None,
        cache: None,
        idempotency_key: None,
        max_output_bytes: None,
        fields: None,
    });
    let output = integration_core::OutputOptions {
        max_output_bytes: body.max_output_bytes,
        fields: body.fields.unwrap_or_default(),
    };
    let params = match body.parameters {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(ApiError::bad_request("'parameters' must be a JSON object")),
    };
    // An empty name or key means "none given", as for the headers: the default connection, and a
    // call of its own (an empty key shared by every caller would make unrelated calls one).
    let call = ToolCall {
        tool: name,
        connection: non_empty(body.connection).or_else(|| header_connection(&headers)),
        params,
        idempotency_key: checked_key(
            non_empty(body.idempotency_key).or_else(|| header_str(&headers, IDEMPOTENCY_HEADER)),
        )?,
        source: Source::Rest,
        use_cache: body.cache.unwrap_or(true),
    };
    let outcome = state.executor.execute(call).await;
    let meta = json!({
        "tool": outcome.tool,
        "provider": outcome.provider,
        "connection": outcome.connection,
        "attempts": outcome.attempts,
        "duration_ms": outcome.duration.as_millis() as u64,
    });
    // `{"result": ..., "meta": ...}` around the result's text: serialized once, as on the routes
    // (shaping a `Value` measured it by serializing, then the envelope serialized it again).
    let result = state.agent.shape_json(outcome.result?, &output);
    let mut body = Vec::with_capacity(result.len() + 160);
    body.extend_from_slice(b"{\"result\":");
    // (`shape_json` is empty only if a `Value` failed to serialize, which it cannot; keep JSON valid.)
    body.extend_from_slice(if result.is_empty() { b"null".as_slice() } else { result.as_slice() });
    body.extend_from_slice(b",\"meta\":");
    body.extend_from_slice(meta.to_string().as_bytes());
    body.push(b'}');
    Ok((JSON_BODY, body).into_response())
}

/// The handler of one `(method, path)` route shared by one or more tools.
pub(crate) async fn route_call(
    state: AppState,
    method: Method,
    tools: Arc<Vec<RegisteredTool>>,
    path: BTreeMap<String, String>,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut query = params::parse_query(query.as_deref());
    let body = match parse_json_body::<Value>(&headers, &body)? {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::bad_request("the request body must be a JSON object")),
    };
    let fallback = tools.last().ok_or_else(|| ApiError::not_found("no tool on this route"))?;
    // Options of the call itself, unless a tool takes a parameter of that name.
    let takes = |tool: &RegisteredTool, key: &str| {
        tool.spec().parameters.get("properties").and_then(|p| p.get(key)).is_some()
    };
    let mut connection = header_connection(&headers);
    // The query is asked first: `takes` looks the name up in the schema (two hashed lookups).
    if query.contains_key(CONNECTION_PARAM)
        && !takes(fallback, CONNECTION_PARAM)
        && let Some(mut values) = query.remove(CONNECTION_PARAM)
        && let Some(named) = non_empty(values.pop())
    {
        // `?connection=` (empty) means the default connection, like an empty header.
        connection = Some(named);
    }
    let output = crate::agent::options_from_query(&mut query, |key| takes(fallback, key))?;
    let mut use_cache = true;
    if query.contains_key(CACHE_PARAM)
        && !takes(fallback, CACHE_PARAM)
        && let Some(values) = query.remove(CACHE_PARAM)
    {
        use_cache = !values.iter().any(|v| v == "false" || v == "0");
    }
    // Pick the most specific tool whose required parameters are all present.
    let mut chosen = None;
    for tool in tools.iter() {
        let merged = params::merge(&tool.spec().parameters, body.clone(), &query, &path);
        let complete =
            tool.spec().required_params().iter().all(|r| merged.get(r).is_some_and(|v| !v.is_null()));
        if complete {
            chosen = Some((tool, merged));
            break;
        }
    }
    let (tool, merged) = match chosen {
        Some(found) => found,
        None => {
            let merged = params::merge(&fallback.spec().parameters, body, &query, &path);
            (fallback, merged)
        }
    };
    let spec = tool.spec();
    let call = ToolCall {
        tool: spec.name.clone(),
        connection,
        params: Value::Object(merged),
        idempotency_key: checked_key(header_str(&headers, IDEMPOTENCY_HEADER))?,
        source: Source::Rest,
        use_cache,
    };
    let outcome: ToolOutcome = state.executor.execute(call).await;
    let result = state.agent.shape_json(outcome.result?, &output);
    let status = if method == Method::Post && !spec.hints.idempotent && !spec.hints.read_only {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, JSON_BODY, result).into_response())
}

/// The header of an answer whose body is JSON already serialized.
const JSON_BODY: [(header::HeaderName, HeaderValue); 1] =
    [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];

/// Header of the caller's idempotency key.
const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Longest idempotency key (as Stripe's): it travels on as an upstream header.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An idempotency key is 1-255 printable ASCII characters: it is passed on as the
/// `Idempotency-Key` header of custom HTTP tools, where a control character could not go.
fn checked_key(key: Option<String>) -> Result<Option<String>, ApiError> {
    match key {
        Some(k) if k.len() > MAX_IDEMPOTENCY_KEY || !k.bytes().all(|b| (0x20..=0x7e).contains(&b)) => {
            Err(ApiError::bad_request(format!(
                "an idempotency key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            )))
        }
        other => Ok(other),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned).filter(|s| !s.is_empty())
}

fn header_connection(headers: &HeaderMap) -> Option<String> {
    header_str(headers, CONNECTION_HEADER)
}

/// Parse an optional JSON body: empty is `None`; a non-empty body must say it is JSON.
pub(crate) fn parse_json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !crate::error::is_json(headers) {
        return Err(ApiError::unsupported_media_type("expected a body with content-type application/json"));
    }
    integration_core::json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}
