//! What the front doors do for agents besides calling tools: the output budget of every result
//! (`max_output_bytes`, `fields`) and tool search.

use std::collections::BTreeMap;

use integration_core::{OutputOptions, RegisteredTool, Registry, shape};
use serde_json::{Value, json};

use crate::error::ApiError;

/// Call option naming the largest result in bytes.
pub const MAX_OUTPUT_BYTES_PARAM: &str = "max_output_bytes";
/// Call option naming the paths to keep.
pub const FIELDS_PARAM: &str = "fields";

/// How the MCP server lists tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum McpToolMode {
    /// Every tool, plus `tool_search`.
    #[default]
    All,
    /// Only `tool_search` and the `tool_call` dispatcher: the agent loads schemas on demand.
    Search,
}

impl std::str::FromStr for McpToolMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => Ok(McpToolMode::All),
            "search" => Ok(McpToolMode::Search),
            other => Err(format!("unknown MCP tool mode '{other}': use 'all' or 'search'")),
        }
    }
}

/// Settings of the agent-facing behaviour.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Default largest tool result in bytes (`MAX_OUTPUT_BYTES`); a call may ask for another.
    pub max_output_bytes: usize,
    /// `Host` values the MCP endpoint accepts (DNS-rebinding protection); empty accepts any.
    pub mcp_allowed_hosts: Vec<String>,
    /// How MCP lists tools.
    pub mcp_tool_mode: McpToolMode,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            max_output_bytes: 64 * 1024,
            mcp_allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            mcp_tool_mode: McpToolMode::All,
        }
    }
}

impl AgentConfig {
    /// Shape a tool result with the call's options and this default budget.
    pub fn shape(&self, value: Value, options: &OutputOptions) -> Value {
        let max = options.max_output_bytes.unwrap_or(self.max_output_bytes);
        shape(value, &options.fields, max)
    }

    /// [`Self::shape`], as the JSON text of the result (serialized once).
    pub fn shape_json(&self, value: Value, options: &OutputOptions) -> Vec<u8> {
        let max = options.max_output_bytes.unwrap_or(self.max_output_bytes);
        integration_core::shape_json(value, &options.fields, max)
    }
}

/// Take `max_output_bytes` and `fields` out of a query string (unless the tool itself has
/// parameters of those names). `fields` may be repeated or comma-separated.
pub(crate) fn options_from_query(
    query: &mut BTreeMap<String, Vec<String>>,
    takes: impl Fn(&str) -> bool,
) -> Result<OutputOptions, ApiError> {
    let mut options = OutputOptions::default();
    if query.contains_key(MAX_OUTPUT_BYTES_PARAM)
        && !takes(MAX_OUTPUT_BYTES_PARAM)
        && let Some(values) = query.remove(MAX_OUTPUT_BYTES_PARAM)
        && let Some(last) = values.last()
    {
        let n = last
            .trim()
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("max_output_bytes must be a positive integer"))?;
        options.max_output_bytes = Some(n);
    }
    if query.contains_key(FIELDS_PARAM)
        && !takes(FIELDS_PARAM)
        && let Some(values) = query.remove(FIELDS_PARAM)
    {
        options.fields = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
    }
    Ok(options)
}

/// Take `max_output_bytes` and `fields` out of a JSON arguments object (MCP), unless the tool has
/// parameters of those names.
pub(crate) fn options_from_arguments(
    args: &mut serde_json::Map<String, Value>,
    takes: impl Fn(&str) -> bool,
) -> Result<OutputOptions, String> {
    let mut options = OutputOptions::default();
    if !takes(MAX_OUTPUT_BYTES_PARAM)
        && let Some(value) = args.remove(MAX_OUTPUT_BYTES_PARAM)
        && !value.is_null()
    {
        let n = value.as_u64().ok_or("max_output_bytes must be a positive integer")?;
        options.max_output_bytes = Some(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if !takes(FIELDS_PARAM)
        && let Some(value) = args.remove(FIELDS_PARAM)
    {
        options.fields = match value {
            Value::Null => Vec::new(),
            Value::String(s) => {
                s.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect()
            }
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or("fields must be strings"))
                .collect::<Result<_, _>>()?,
            _ => return Err("fields must be an array of paths".into()),
        };
    }
    Ok(options)
}

/// Whether a tool's parameter schema has a property of this name.
pub(crate) fn takes(tool: &RegisteredTool, name: &str) -> bool {
    tool.spec().parameters.get("properties").and_then(|p| p.get(name)).is_some()
}

/// The JSON Schema properties describing the output options, added to MCP input schemas.
pub(crate) fn option_properties() -> Value {
    json!({
        FIELDS_PARAM: {
            "type": "array",
            "items": {"type": "string"},
            "description": "Return only these paths of the result (dotted 'a.b' or JSON pointers '/a/b'; arrays are mapped)"
        },
        MAX_OUTPUT_BYTES_PARAM: {
            "type": "integer",
            "minimum": 512,
            "description": "Largest result in bytes; a larger result is cut and marked \"truncated\": true"
        }
    })
}

/// Rank the registry's tools for `query`: `(tool, score)`, best first.
pub fn search_tools(registry: &Registry, query: &str, limit: usize) -> Vec<(RegisteredTool, f64)> {
    let tools = registry.tools();
    let specs: Vec<_> = tools.iter().map(|t| t.spec()).collect();
    let hits = integration_core::search(specs.iter().copied(), query, limit);
    hits.into_iter()
        .filter_map(|h| {
            let tool = tools.iter().find(|t| t.spec().name == h.spec.name)?;
            Some((tool.clone(), (h.score * 1000.0).round() / 1000.0))
        })
        .collect()
}
