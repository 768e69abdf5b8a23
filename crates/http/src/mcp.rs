//! The MCP front door: the same registry and executor as REST and the bus, spoken over the Model
//! Context Protocol with the official SDK (`rmcp`), on Streamable HTTP at `/mcp` and over stdio.
//!
//! Key design decisions:
//!
//! * **Tools are listed at run time from the registry**, not declared with the SDK's macros: every
//!   tool appears with its JSON Schema and its hints as annotations (`readOnlyHint`,
//!   `destructiveHint`, `idempotentHint`), and custom tools added later show up on the next list;
//!   a stdio session is told (`notifications/tools/list_changed`), stateless HTTP cannot be.
//! * **Stateless Streamable HTTP with JSON answers.** No session lives in one replica's memory, so
//!   any replica behind a load balancer answers any request.
//! * **Tool failures are results, not protocol errors**: `isError: true` with the error kind and
//!   message, so the agent can read and react to them.
//! * **The output budget applies** (`fields`, `max_output_bytes` arguments, default
//!   `MAX_OUTPUT_BYTES`), and `tool_search` lets an agent find the few tools it needs; with
//!   `MCP_TOOL_MODE=search` only `tool_search` and the `tool_call` dispatcher are listed.
//! * **Authorization per tool**: listing needs `tools:read` (checked by the HTTP middleware); each
//!   call needs `tools:read` or `tools:write` by the tool's hints. Over stdio the local user owns
//!   the process and its credentials, so every tool is allowed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequest as _;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};

use integration_core::{RegisteredTool, Source, ToolCall};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::agent::{McpToolMode, option_properties, options_from_arguments, search_tools, takes};
use crate::auth::Caller;

/// The meta-tool ranking tools by a query.
pub const TOOL_SEARCH: &str = "tool_search";
/// The meta-tool calling any tool by name (listed with `MCP_TOOL_MODE=search`).
pub const TOOL_CALL: &str = "tool_call";

const INSTRUCTIONS: &str = "Tools of the Integrations Service (Jira, GitHub, Slack, custom HTTP tools). \
Use tool_search to find the right tool by describing the task. Every tool accepts two extra arguments: \
`fields` (paths to keep in the result) and `max_output_bytes`; a result too large is cut and marked \
\"truncated\": true with counts of what was left out. Tool errors come back as results with isError \
and an error object {type, message, retryable}.";

/// Errors of the MCP front door.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The session (stdio or [`serve_session`]) could not start or ended with an error.
    #[error("mcp session failed: {0}")]
    Session(String),
}

/// The MCP server: a view of the application state.
#[derive(Clone)]
pub struct McpServer {
    state: AppState,
    /// Whether this server keeps a session open and tells it when the tools change (stdio and
    /// [`serve_session`]); stateless HTTP cannot, so it does not claim `tools.listChanged`.
    list_changed: bool,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer").finish_non_exhaustive()
    }
}

/// The Streamable HTTP service to mount at `/mcp`.
pub fn service(state: AppState) -> StreamableHttpService<McpServer, LocalSessionManager> {
    let hosts = state.agent.mcp_allowed_hosts.clone();
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None);
    config = if hosts.is_empty() || hosts.iter().any(|h| h == "*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    let server = McpServer { state, list_changed: false };
    StreamableHttpService::new(move || Ok(server.clone()), Arc::new(LocalSessionManager::default()), config)
}

/// In front of [`service`]: a POST whose JSON body is no JSON-RPC message is answered as JSON-RPC
/// says, with HTTP 400 and `{"jsonrpc": "2.0", "id": null, "error": {...}}`: code -32700 (parse
/// error) for malformed JSON, -32600 (invalid request) for JSON that is no message. The SDK answers
/// both with a plain-text 415, which tells a client that its content type is wrong. Other requests
/// pass through untouched (the body re-attached); only MCP requests pay for the extra parse.
pub(crate) async fn json_rpc_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != axum::http::Method::POST || !crate::error::is_json(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // The body limit layer outside bounds the read (a rejection of 413 then).
    let bytes = match axum::body::Bytes::from_request(axum::extract::Request::new(body), &()).await {
        Ok(bytes) => bytes,
        Err(rejection) => {
            let status = rejection.status();
            return json_rpc_error(status, -32600, format!("Invalid request: {}", rejection.body_text()));
        }
    };
    // One parse tells both apart: a syntax error (or a body cut short) is not JSON, a data error
    // is JSON that is no message.
    if let Err(e) = serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(&bytes) {
        return match e.classify() {
            serde_json::error::Category::Data => json_rpc_error(
                StatusCode::BAD_REQUEST,
                -32600,
                format!("Invalid request: not a JSON-RPC 2.0 request, notification or response: {e}"),
            ),
            _ => json_rpc_error(StatusCode::BAD_REQUEST, -32700, format!("Parse error: {e}")),
        };
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn json_rpc_error(status: StatusCode, code: i32, message: String) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// Serve MCP over stdin/stdout until the client closes the stream.
pub async fn serve_stdio(state: AppState) -> Result<(), McpError> {
    serve_session(state, rmcp::transport::io::stdio()).await
}

/// How long a burst of tool changes (a sync loading several custom tools) is gathered into one
/// `notifications/tools/list_changed`.
const LIST_CHANGED_DEBOUNCE: Duration = Duration::from_millis(200);

/// Serve one MCP session over `transport` (stdio, or any pair of byte streams such as a socket's
/// halves) until the client closes it. The session claims `tools.listChanged` and is sent
/// `notifications/tools/list_changed` whenever the registry's tools change (a custom HTTP tool
/// created, replaced or deleted here or on another replica), so the client lists them again.
///
/// There is no HTTP request and so no API key: every tool is listed and allowed, as over stdio,
/// where whoever starts the process owns it and its credentials. Hand it only transports that
/// are as private as that.
pub async fn serve_session<T, E, A>(state: AppState, transport: T) -> Result<(), McpError>
where
    T: rmcp::transport::IntoTransport<RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut changes = state.executor.registry().watch();
    changes.mark_unchanged();
    let server = McpServer { state, list_changed: true };
    let running = server.serve(transport).await.map_err(|e| McpError::Session(e.to_string()))?;
    let peer = running.peer().clone();
    let notifier = tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            tokio::time::sleep(LIST_CHANGED_DEBOUNCE).await;
            changes.mark_unchanged();
            if let Err(error) = peer.notify_tool_list_changed().await {
                tracing::debug!(%error, "mcp session closed; no more tool list notifications");
                break;
            }
        }
    });
    let result = running.waiting().await.map_err(|e| McpError::Session(e.to_string()));
    notifier.abort();
    result.map(drop)
}

impl McpServer {
    /// A server over this state (for embedding with another transport).
    pub fn new(state: AppState) -> Self {
        Self { state, list_changed: false }
    }

    /// Who is calling: over HTTP the auth middleware's verdict; over stdio (no HTTP request) the
    /// local user.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        match context.extensions.get::<http::request::Parts>() {
            None => Caller::Open,
            Some(parts) => match parts.extensions.get::<Caller>() {
                Some(caller) => caller.clone(),
                None if self.state.auth.is_none() => Caller::Open,
                // Authentication is configured but did not run: allow nothing.
                None => Caller::Key { id: "-".into(), name: "-".into(), scopes: Vec::new() },
            },
        }
    }

    fn visible(&self, caller: &Caller) -> Vec<RegisteredTool> {
        self.state
            .executor
            .registry()
            .tools()
            .into_iter()
            .filter(|t| caller.allows(Caller::scope_for_tool(t.spec().hints.read_only)))
            .collect()
    }

    async fn run(&self, caller: &Caller, name: &str, mut args: Map<String, Value>) -> CallToolResult {
        let Some(tool) = self.state.executor.registry().get(name) else {
            return failure(
                "not_found",
                format!("unknown tool '{name}': use tool_search to find tools"),
                false,
            );
        };
        let scope = Caller::scope_for_tool(tool.spec().hints.read_only);
        if !caller.allows(scope) {
            metrics::counter!("auth_failures_total", "reason" => "insufficient_scope").increment(1);
            tracing::warn!(tool = name, reason = "insufficient_scope", "mcp tool call refused");
            return failure(
                "permission",
                format!("calling '{name}' needs an API key with the '{}' scope", scope.as_str()),
                false,
            );
        }
        let output = match options_from_arguments(&mut args, |key| takes(&tool, key)) {
            Ok(output) => output,
            Err(message) => return failure("invalid_input", message, false),
        };
        let connection = if takes(&tool, "connection") {
            None
        } else {
            args.remove("connection").and_then(|v| v.as_str().map(str::to_owned))
        };
        let call = ToolCall {
            tool: name.to_owned(),
            connection,
            params: Value::Object(args),
            idempotency_key: None,
            source: Source::Mcp,
            use_cache: true,
        };
        let outcome = self.state.executor.execute(call).await;
        match outcome.result {
            Ok(value) => success(self.state.agent.shape(value, &output)),
            Err(error) => {
                let mut result = failure(error.kind().as_str(), error.to_string(), error.retryable());
                if let (Some(details), Some(Value::Object(body))) =
                    (error.details(), result.structured_content.as_mut())
                    && let Some(Value::Object(inner)) = body.get_mut("error")
                {
                    inner.insert("details".into(), details.clone());
                }
                result
            }
        }
    }

    fn search(&self, caller: &Caller, args: &Map<String, Value>) -> CallToolResult {
        let Some(query) = args.get("query").and_then(Value::as_str) else {
            return failure("invalid_input", "tool_search needs a 'query' string".into(), false);
        };
        let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(5).clamp(1, 50) as usize;
        let tools: Vec<Value> = search_tools(self.state.executor.registry(), query, 100)
            .into_iter()
            .filter(|(t, _)| caller.allows(Caller::scope_for_tool(t.spec().hints.read_only)))
            .take(limit)
            .map(|(t, score)| {
                let mut entry = crate::tools::mcp_entry(&t);
                entry["score"] = json!(score);
                entry
            })
            .collect();
        let hint = match self.state.agent.mcp_tool_mode {
            McpToolMode::Search => "call one with tool_call {\"name\": ..., \"arguments\": {...}}",
            McpToolMode::All => "call one by its name with arguments matching its inputSchema",
        };
        success(integration_core::json_object([("tools", Value::Array(tools)), ("hint", hint.into())]))
    }
}

fn success(value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_default();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    if value.is_object() {
        result.structured_content = Some(value);
    }
    result
}

fn failure(kind: &str, message: String, retryable: bool) -> CallToolResult {
    let body = json!({ "error": { "type": kind, "message": message, "retryable": retryable } });
    let mut result = CallToolResult::error(vec![ContentBlock::text(body.to_string())]);
    result.structured_content = Some(body);
    result
}

fn object(value: Value) -> Arc<Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(Map::new()),
    }
}

/// A registry tool in MCP form, with the output options added to its input schema.
fn mcp_tool(tool: &RegisteredTool) -> Option<Tool> {
    let mut entry = crate::tools::mcp_entry(tool);
    if let (Some(Value::Object(props)), Value::Object(options)) =
        (entry["inputSchema"].get_mut("properties"), option_properties())
    {
        for (key, schema) in options {
            props.entry(key).or_insert(schema);
        }
    }
    serde_json::from_value(entry).ok()
}

fn search_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What you want to do, in a few words (\"create a jira issue\")"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "Most tools to return (default 5)"}
        },
        "required": ["query"]
    });
    let mut tool = Tool::new(
        TOOL_SEARCH,
        "Find the tools for a task: ranks every available tool by the query and returns the best with their \
         input schemas",
        object(schema),
    );
    tool.annotations = Some(
        rmcp::model::ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    );
    tool
}

fn call_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The tool's name (from tool_search)"},
            "arguments": {"type": "object", "description": "The tool's arguments, matching its inputSchema; may add fields and max_output_bytes"}
        },
        "required": ["name"]
    });
    let mut tool = Tool::new(TOOL_CALL, "Call any tool found with tool_search by its name", object(schema));
    tool.annotations =
        Some(rmcp::model::ToolAnnotations::new().destructive(true).idempotent(false).open_world(true));
    tool
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = if self.list_changed {
            ServerCapabilities::builder().enable_tools().enable_tool_list_changed().build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("integrations", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = self.caller(&context);
        let tools = match self.state.agent.mcp_tool_mode {
            McpToolMode::All => {
                let mut tools: Vec<Tool> = self.visible(&caller).iter().filter_map(mcp_tool).collect();
                tools.push(search_tool());
                tools
            }
            McpToolMode::Search => vec![search_tool(), call_tool()],
        };
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context);
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            TOOL_SEARCH => self.search(&caller, &args),
            TOOL_CALL => {
                let Some(name) = args.get("name").and_then(Value::as_str) else {
                    return Ok(
                        failure("invalid_input", "tool_call needs the tool's 'name'".into(), false).into()
                    );
                };
                let inner = match args.get("arguments") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(_) => {
                        return Ok(
                            failure("invalid_input", "'arguments' must be an object".into(), false).into()
                        );
                    }
                };
                self.run(&caller, name, inner).await
            }
            name => self.run(&caller, name, args).await,
        };
        Ok(result.into())
    }
}
