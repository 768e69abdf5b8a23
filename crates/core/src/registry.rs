//! The tool registry: every tool of every registered integration, by name, with its compiled
//! parameter validator. Duplicate names and ambiguous routes are start-up errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::connection::Connection;
use crate::error::IntegrationError;
use crate::integration::Integration;
use crate::tool::{Method, Tool, ToolSpec};

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two tools share a name.
    #[error("duplicate tool name '{0}'")]
    DuplicateTool(String),
    /// Two integrations share a name.
    #[error("duplicate integration '{0}'")]
    DuplicateIntegration(String),
    /// Two tools on one route cannot be told apart by their required parameters.
    #[error(
        "tools '{first}' and '{second}' share the route {route} and their required parameters do not tell them apart"
    )]
    AmbiguousRoute {
        /// The route (`GET /path`).
        route: String,
        /// One tool.
        first: String,
        /// The other tool.
        second: String,
    },
    /// A route's path parameter is not a parameter of the tool.
    #[error("route {route} of tool '{tool}' has path parameter '{param}' that is not a tool parameter")]
    UnknownPathParam {
        /// The route.
        route: String,
        /// The tool.
        tool: String,
        /// The parameter.
        param: String,
    },
    /// A tool's parameter schema is not a valid JSON Schema.
    #[error("tool '{tool}' has an invalid parameter schema: {message}")]
    InvalidSchema {
        /// The tool.
        tool: String,
        /// What the schema compiler said.
        message: String,
    },
}

/// A registered tool with its compiled validator.
#[derive(Clone)]
pub struct RegisteredTool {
    /// The tool.
    pub tool: Arc<dyn Tool>,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for RegisteredTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredTool").field("name", &self.tool.spec().name).finish()
    }
}

impl RegisteredTool {
    /// The tool's spec.
    pub fn spec(&self) -> &ToolSpec {
        self.tool.spec()
    }

    /// Validate parameters; the error lists every violation with its JSON pointer.
    pub fn validate(&self, params: &Value) -> Result<(), IntegrationError> {
        let violations: Vec<Value> = self
            .validator
            .iter_errors(params)
            .map(|e| {
                serde_json::json!({
                    "pointer": e.instance_path().to_string(),
                    "message": e.to_string(),
                })
            })
            .collect();
        if violations.is_empty() {
            return Ok(());
        }
        let summary = violations
            .iter()
            .map(|v| {
                let pointer = v["pointer"].as_str().unwrap_or_default();
                let pointer = if pointer.is_empty() { "/" } else { pointer };
                format!("{pointer}: {}", v["message"].as_str().unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(IntegrationError::invalid_input(
            self.spec().provider.clone(),
            format!("invalid parameters for '{}': {summary}", self.spec().name),
        )
        .with_details(serde_json::json!({ "violations": violations })))
    }
}

#[derive(Default)]
struct Inner {
    integrations: BTreeMap<String, Arc<dyn Integration>>,
    tools: BTreeMap<String, RegisteredTool>,
    filter: Option<ToolFilter>,
    /// Per REST route template: each method with whether all its tools are read-only. Rebuilt
    /// whenever `tools` changes (the auth check asks per request).
    routes_read_only: HashMap<String, Vec<(&'static str, bool)>>,
}

impl Inner {
    fn set_tools(&mut self, tools: BTreeMap<String, RegisteredTool>) {
        self.tools = tools;
        self.reindex();
    }

    fn reindex(&mut self) {
        let mut index: HashMap<String, Vec<(&'static str, bool)>> = HashMap::new();
        for tool in self.tools.values() {
            let spec = tool.spec();
            let Some(route) = &spec.route else { continue };
            let methods = index.entry(route.path.clone()).or_default();
            let method = route.method.as_str();
            match methods.iter_mut().find(|(m, _)| *m == method) {
                Some((_, read_only)) => *read_only &= spec.hints.read_only,
                None => methods.push((method, spec.hints.read_only)),
            }
        }
        self.routes_read_only = index;
    }
}

/// Decides which tools exist (see [`Registry::set_filter`]).
pub type ToolFilter = Arc<dyn Fn(&ToolSpec) -> bool + Send + Sync>;

fn admitted(inner: &Inner, tool: &Arc<dyn Tool>) -> bool {
    let ok = inner.filter.as_ref().is_none_or(|f| f(tool.spec()));
    if !ok {
        tracing::debug!(tool = %tool.spec().name, "tool left out by the tool selection");
    }
    ok
}

/// All integrations and their tools. Cheap to share (`Arc<Registry>`); tools can be added and
/// removed at run time (custom HTTP tools), integrations only at start-up.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<Inner>,
    /// Bumped on every change of the tool set, for [`Registry::watch`].
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("Registry")
            .field("integrations", &inner.integrations.keys().collect::<Vec<_>>())
            .field("tools", &inner.tools.len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Tell the watchers that the tool set changed.
    fn changed(&self) {
        self.changes.send_modify(|version| *version = version.wrapping_add(1));
    }

    /// A receiver that sees the tool set change: a tool added, replaced or removed, at start-up
    /// or later (custom HTTP tools, a filter). Front doors that keep a session open (MCP over
    /// stdio) use it to tell their client to list the tools again. The value is a counter of
    /// changes; only its moving means anything.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Register an integration and all its tools, atomically: on error nothing is added.
    pub fn add(&self, integration: Arc<dyn Integration>) -> Result<(), RegistryError> {
        let name = integration.info().name;
        let tools = integration.tools();
        let mut inner = self.write();
        if inner.integrations.contains_key(&name) {
            return Err(RegistryError::DuplicateIntegration(name));
        }
        let mut staged = inner.tools.clone();
        for tool in tools.into_iter().filter(|t| admitted(&inner, t)) {
            stage(&mut staged, tool)?;
        }
        check_routes(&staged)?;
        inner.set_tools(staged);
        inner.integrations.insert(name, integration);
        drop(inner);
        self.changed();
        Ok(())
    }

    /// Register one tool that belongs to no integration's static list (custom HTTP tools).
    pub fn add_tool(&self, tool: Arc<dyn Tool>) -> Result<(), RegistryError> {
        let mut inner = self.write();
        if !admitted(&inner, &tool) {
            return Ok(());
        }
        let mut staged = inner.tools.clone();
        stage(&mut staged, tool)?;
        check_routes(&staged)?;
        inner.set_tools(staged);
        drop(inner);
        self.changed();
        Ok(())
    }

    /// Register a tool, replacing one of the same name (a tool the filter leaves out removes it).
    pub fn upsert_tool(&self, tool: Arc<dyn Tool>) -> Result<(), RegistryError> {
        self.upsert_tools(vec![tool]).pop().unwrap_or(Ok(()))
    }

    /// Register many tools, replacing those of the same names, in one change of the tool set: each
    /// tool gets the answer it would get alone, and a refused tool leaves the one of its name as it
    /// was. One copy of the tool map for the lot (loading N stored tools one by one copies and
    /// re-indexes the map N times).
    pub fn upsert_tools(&self, tools: Vec<Arc<dyn Tool>>) -> Vec<Result<(), RegistryError>> {
        let mut inner = self.write();
        let mut staged = inner.tools.clone();
        let mut changed = false;
        let mut results = Vec::with_capacity(tools.len());
        for tool in &tools {
            let name = tool.spec().name.clone();
            if !admitted(&inner, tool) {
                changed |= staged.remove(&name).is_some();
                results.push(Ok(()));
                continue;
            }
            let previous = staged.remove(&name);
            match stage(&mut staged, tool.clone()) {
                Ok(()) => {
                    changed = true;
                    results.push(Ok(()));
                }
                Err(error) => {
                    if let Some(previous) = previous {
                        staged.insert(name, previous);
                    }
                    results.push(Err(error));
                }
            }
        }
        if let Err(error) = check_routes(&staged) {
            drop(inner);
            if tools.len() == 1 {
                return vec![Err(error)];
            }
            // Some tool's route is ambiguous with another's: one by one, so that only it is refused.
            return tools.into_iter().map(|tool| self.upsert_tool(tool)).collect();
        }
        inner.set_tools(staged);
        drop(inner);
        if changed {
            self.changed();
        }
        results
    }

    /// Decide which tools exist (toolsets, read-only mode): tools already registered that the filter
    /// refuses are removed (their names are returned), and tools registered later are left out
    /// silently, so no front door can list or call them.
    pub fn set_filter(&self, filter: ToolFilter) -> Vec<String> {
        let mut inner = self.write();
        let removed: Vec<String> =
            inner.tools.values().filter(|t| !filter(t.spec())).map(|t| t.spec().name.clone()).collect();
        for name in &removed {
            inner.tools.remove(name);
        }
        inner.reindex();
        inner.filter = Some(filter);
        drop(inner);
        if !removed.is_empty() {
            self.changed();
        }
        removed
    }

    /// Remove a tool by name; true if it was there.
    pub fn remove_tool(&self, name: &str) -> bool {
        let mut inner = self.write();
        let removed = inner.tools.remove(name).is_some();
        inner.reindex();
        drop(inner);
        if removed {
            self.changed();
        }
        removed
    }

    /// Look a tool up by name.
    pub fn get(&self, name: &str) -> Option<RegisteredTool> {
        self.read().tools.get(name).cloned()
    }

    /// Every tool, sorted by name.
    pub fn tools(&self) -> Vec<RegisteredTool> {
        self.read().tools.values().cloned().collect()
    }

    /// Every integration, sorted by name.
    pub fn integrations(&self) -> Vec<Arc<dyn Integration>> {
        self.read().integrations.values().cloned().collect()
    }

    /// The providers' default connections from their environment variables (`JIRA_BASE_URL`,
    /// ...; `env` looks one up), each logged. Settings that no call could use (see
    /// [`Integration::validate`]) are an error naming the provider's variables, for the binaries to
    /// refuse to start with, as they do for a malformed broker or database URL.
    pub fn connections_from_env(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<Connection>, IntegrationError> {
        let mut connections = Vec::new();
        for integration in self.integrations() {
            let Some(connection) = integration.connection_from_env(env) else { continue };
            integration.validate(&connection).map_err(|e| {
                let variables = integration.info().env_vars.join(", ");
                IntegrationError::configuration(
                    connection.provider.clone(),
                    format!(
                        "the environment ({variables}) configures a connection no call can use: {}",
                        e.message()
                    ),
                )
            })?;
            tracing::info!(
                provider = %connection.provider,
                connection = %connection.name,
                "connection configured from the environment"
            );
            connections.push(connection);
        }
        Ok(connections)
    }

    /// An integration by name.
    pub fn integration(&self, name: &str) -> Option<Arc<dyn Integration>> {
        self.read().integrations.get(name).cloned()
    }

    /// Whether every tool on the REST route `method path` (`"GET"`, a route template) is
    /// read-only; `None` when no tool has that route. Allocates nothing (the auth check runs it per
    /// request).
    pub fn route_read_only(&self, method: &str, path: &str) -> Option<bool> {
        let inner = self.read();
        let methods = inner.routes_read_only.get(path)?;
        methods.iter().find(|(m, _)| *m == method).map(|(_, read_only)| *read_only)
    }

    /// Tools with a REST route, grouped by (method, path), most specific (most required
    /// parameters) first. The router mounts one handler per group.
    pub fn routes(&self) -> BTreeMap<(Method, String), Vec<RegisteredTool>> {
        let inner = self.read();
        group_routes(&inner.tools)
    }
}

fn stage(tools: &mut BTreeMap<String, RegisteredTool>, tool: Arc<dyn Tool>) -> Result<(), RegistryError> {
    let spec = tool.spec();
    if tools.contains_key(&spec.name) {
        return Err(RegistryError::DuplicateTool(spec.name.clone()));
    }
    let validator = jsonschema::validator_for(&spec.parameters)
        .map_err(|e| RegistryError::InvalidSchema { tool: spec.name.clone(), message: e.to_string() })?;
    if let Some(route) = &spec.route {
        let props = spec.parameters.get("properties").and_then(Value::as_object);
        for param in route.path_params() {
            if !props.is_some_and(|p| p.contains_key(param)) {
                return Err(RegistryError::UnknownPathParam {
                    route: format!("{} {}", route.method.as_str(), route.path),
                    tool: spec.name.clone(),
                    param: param.to_owned(),
                });
            }
        }
    }
    tools.insert(spec.name.clone(), RegisteredTool { tool: tool.clone(), validator: Arc::new(validator) });
    Ok(())
}

fn group_routes(tools: &BTreeMap<String, RegisteredTool>) -> BTreeMap<(Method, String), Vec<RegisteredTool>> {
    let mut groups: BTreeMap<(Method, String), Vec<RegisteredTool>> = BTreeMap::new();
    for tool in tools.values() {
        if let Some(route) = &tool.spec().route {
            groups.entry((route.method, route.path.clone())).or_default().push(tool.clone());
        }
    }
    for group in groups.values_mut() {
        group.sort_by_key(|t| std::cmp::Reverse(t.spec().required_params().len()));
    }
    groups
}

/// Every pair of tools on one route must be ordered by strict inclusion of their required
/// parameters, so "the most specific tool whose required parameters are all present" is unique.
fn check_routes(tools: &BTreeMap<String, RegisteredTool>) -> Result<(), RegistryError> {
    for ((method, path), group) in group_routes(tools) {
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                let ra: BTreeSet<String> = a.spec().required_params().into_iter().collect();
                let rb: BTreeSet<String> = b.spec().required_params().into_iter().collect();
                let ordered = ra != rb && (ra.is_superset(&rb) || rb.is_superset(&ra));
                if !ordered {
                    return Err(RegistryError::AmbiguousRoute {
                        route: format!("{} {path}", method.as_str()),
                        first: a.spec().name.clone(),
                        second: b.spec().name.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}
