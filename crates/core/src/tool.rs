//! Tools: what an agent can call. A [`Tool`] has a [`ToolSpec`] (name, description, JSON Schemas,
//! hints and REST route) and an async `call`. Providers usually write tools with [`typed_tool`], so the
//! parameter schema is derived from the Rust type and cannot drift from the code.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::Cache;
use crate::connection::Connection;
use crate::error::IntegrationError;

/// Behaviour hints an agent (and the executor) relies on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolHints {
    /// The tool only reads; it changes nothing upstream.
    pub read_only: bool,
    /// The tool may destroy or overwrite data upstream.
    pub destructive: bool,
    /// Calling the tool twice with the same parameters has the effect of calling it once: the
    /// executor may retry it after an error that may have reached the upstream.
    pub idempotent: bool,
}

impl ToolHints {
    /// A read-only tool: idempotent, not destructive.
    pub const fn read_only() -> Self {
        Self { read_only: true, destructive: false, idempotent: true }
    }

    /// A tool that creates something: neither read-only nor idempotent.
    pub const fn write() -> Self {
        Self { read_only: false, destructive: false, idempotent: false }
    }

    /// A tool that changes state but may safely be repeated (set a field, add a reaction, ...).
    pub const fn idempotent_write() -> Self {
        Self { read_only: false, destructive: false, idempotent: true }
    }

    /// Mark the tool destructive.
    pub const fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }
}

/// HTTP methods a tool route may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET: parameters from the path and query.
    Get,
    /// POST: parameters from the path, query and JSON body.
    Post,
    /// PUT: parameters from the path, query and JSON body.
    Put,
    /// PATCH: parameters from the path, query and JSON body.
    Patch,
    /// DELETE: parameters from the path and query (and a JSON body if given).
    Delete,
}

impl Method {
    /// The method's name in upper case.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The REST route of a tool: a method and a path template such as
/// `/api/integrations/jira/projects/{key}`. Path parameters carry the tool's parameter names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path template with `{name}` segments.
    pub path: String,
}

impl Route {
    /// A new route.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into() }
    }

    /// The names of the `{param}` segments of the path template.
    pub fn path_params(&self) -> Vec<&str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

/// Everything known about a tool without calling it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// Unique name, `provider_verb_noun` (`jira_create_issue`).
    pub name: String,
    /// What the tool does, written for an agent choosing a tool.
    pub description: String,
    /// The provider (integration) the tool belongs to.
    pub provider: String,
    /// JSON Schema of the parameters object.
    pub parameters: Value,
    /// JSON Schema of the result, when known.
    pub result: Option<Value>,
    /// Behaviour hints.
    pub hints: ToolHints,
    /// The REST route, when the tool has one of its own.
    pub route: Option<Route>,
}

impl ToolSpec {
    /// Start a spec; the parameter schema is an empty object until set.
    pub fn new(name: impl Into<String>, provider: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            provider: provider.into(),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
            result: None,
            hints: ToolHints::read_only(),
            route: None,
        }
    }

    /// Set the hints.
    pub fn hints(mut self, hints: ToolHints) -> Self {
        self.hints = hints;
        self
    }

    /// Set the REST route.
    pub fn route(mut self, method: Method, path: impl Into<String>) -> Self {
        self.route = Some(Route::new(method, path));
        self
    }

    /// Set the parameter schema.
    pub fn parameters(mut self, schema: Value) -> Self {
        self.parameters = schema;
        self
    }

    /// Set the result schema.
    pub fn result(mut self, schema: Value) -> Self {
        self.result = Some(schema);
        self
    }

    /// The names listed as `required` in the parameter schema.
    pub fn required_params(&self) -> Vec<String> {
        self.parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// What a tool gets besides its parameters: the resolved connection, a cache, the call's deadline.
#[derive(Clone)]
pub struct ToolContext {
    /// The connection (config and decrypted credentials) the call runs against.
    pub connection: Arc<Connection>,
    /// A cache for read-mostly upstream lookups; tools opt in.
    pub cache: Arc<dyn Cache>,
    /// Whether the caller allowed cached answers (`cache: false` bypasses).
    pub use_cache: bool,
    /// The deadline of the whole call, retries included.
    pub deadline: Instant,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// The caller's idempotency key, if any.
    pub idempotency_key: Option<String>,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("connection", &self.connection.name)
            .field("use_cache", &self.use_cache)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// A callable tool. Object-safe: the registry holds `Arc<dyn Tool>`.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The tool's description.
    fn spec(&self) -> &ToolSpec;

    /// Run the tool once. Parameters were validated against the spec's schema; the tool never
    /// retries on its own (the executor does).
    async fn call(&self, ctx: &ToolContext, params: Value) -> Result<Value, IntegrationError>;
}

#[allow(dead_code, reason = "compile-time check that Tool stays object-safe")]
fn _tool_is_object_safe(_: Box<dyn Tool>) {}

/// The JSON Schema of `T`, as a `serde_json::Value` (draft 2020-12, no `$schema` key).
pub fn schema_of<T: JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    value
}

/// A tool made from an async function over typed parameters. See [`typed_tool`].
pub struct TypedTool<P, R, F> {
    spec: ToolSpec,
    func: F,
    _types: PhantomData<fn(P) -> R>,
}

/// Make a tool from an async function taking a `Deserialize + JsonSchema` parameter struct and
/// returning a `Serialize` result. The parameter schema of `spec` is replaced by the schema of `P`.
///
/// ```
/// use integration_core::{typed_tool, ToolSpec, ToolContext, IntegrationError};
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Echo { text: String }
/// let tool = typed_tool(
///     ToolSpec::new("demo_echo", "demo", "Echo the text back"),
///     |_ctx: ToolContext, p: Echo| async move { Ok::<_, IntegrationError>(p.text) },
/// );
/// assert_eq!(tool.spec().parameters["required"][0], "text");
/// ```
pub fn typed_tool<P, R, F, Fut>(spec: ToolSpec, func: F) -> Arc<dyn Tool>
where
    P: DeserializeOwned + JsonSchema + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(ToolContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, IntegrationError>> + Send + 'static,
{
    let spec = spec.parameters(schema_of::<P>());
    Arc::new(TypedTool { spec, func, _types: PhantomData })
}

#[async_trait]
impl<P, R, F, Fut> Tool for TypedTool<P, R, F>
where
    P: DeserializeOwned + JsonSchema + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(ToolContext, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, IntegrationError>> + Send + 'static,
{
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &ToolContext, params: Value) -> Result<Value, IntegrationError> {
        let params: P = serde_json::from_value(params).map_err(|e| {
            IntegrationError::invalid_input(self.spec.provider.clone(), format!("invalid parameters: {e}"))
        })?;
        let result = (self.func)(ctx.clone(), params).await?;
        into_value(result).map_err(|e| {
            IntegrationError::internal(self.spec.provider.clone(), format!("result not serialisable: {e}"))
        })
    }
}

/// A tool's result as a `Value`: moved when it already is one (most tools build their answer as a
/// `Value`, and `serde_json::to_value` would copy it node by node), serialized otherwise.
fn into_value<R: Serialize + 'static>(result: R) -> Result<Value, serde_json::Error> {
    let mut slot = Some(result);
    if let Some(value) =
        (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Value>>().and_then(Option::take)
    {
        return Ok(value);
    }
    serde_json::to_value(&slot)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::into_value;

    #[test]
    fn a_value_result_is_moved_and_anything_else_serialized() {
        let value = json!({"b": [1, 2.5, null], "a": {"nested": "text"}});
        assert_eq!(into_value(value.clone()).expect("value"), value);
        #[derive(serde::Serialize)]
        struct Out {
            id: u32,
            name: &'static str,
        }
        assert_eq!(into_value(Out { id: 7, name: "x" }).expect("struct"), json!({"id": 7, "name": "x"}));
        assert_eq!(into_value(Some(3)).expect("option"), json!(3));
        assert_eq!(into_value(None::<u8>).expect("none"), json!(null));
        // A map with keys JSON cannot hold is an error, not a panic.
        let bad: BTreeMap<(u8, u8), u8> = BTreeMap::from([((1, 2), 3)]);
        assert!(into_value(bad).is_err());
    }
}
