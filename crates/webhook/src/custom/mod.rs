//! Custom outbound HTTP tools: a user definition (method, URL template, headers, query, body
//! template, parameters schema, credentials, response transformation, timeout, size limit) turned
//! into an `Arc<dyn Tool>` that joins the registry at run time, behind the [`SsrfGuard`].

pub mod ssrf;
pub mod sync;
mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use integration_core::{
    Connection, Effect, ErrorKind, Health, Integration, IntegrationError, IntegrationInfo, Tool, ToolContext,
    ToolHints, ToolSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use url::Url;

use crate::definition::DefinitionError;
use crate::secret::Secret;
use crate::transform::{Limits, Transform, TransformError};
pub use ssrf::{Allowlist, Resolver, SsrfError, SsrfGuard, SystemResolver};
use template::{Template, body_params, encode_component, render_body};

/// The provider name of custom tools (and of their connection).
pub const PROVIDER: &str = "custom";
/// Redirects followed at most (each target checked by the guard).
pub const MAX_REDIRECTS: usize = 5;

/// HTTP methods of custom tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl HttpMethod {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

/// Credentials of a custom tool. Secret fields are write-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        #[serde(default, skip_serializing)]
        token: Option<Secret>,
    },
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name (not secret).
        username: String,
        /// The password.
        #[serde(default, skip_serializing)]
        password: Option<Secret>,
    },
    /// An API key in a header.
    ApiKeyHeader {
        /// The header (`X-API-Key`).
        header: String,
        /// The key.
        #[serde(default, skip_serializing)]
        key: Option<Secret>,
    },
    /// An API key in a query parameter.
    ApiKeyQuery {
        /// The parameter (`api_key`).
        param: String,
        /// The key.
        #[serde(default, skip_serializing)]
        key: Option<Secret>,
    },
}

impl Auth {
    fn secret(&self) -> Option<&Secret> {
        match self {
            Auth::Bearer { token: s } | Auth::Basic { password: s, .. } => s.as_ref(),
            Auth::ApiKeyHeader { key, .. } | Auth::ApiKeyQuery { key, .. } => key.as_ref(),
        }
    }

    fn slot(&mut self) -> &mut Option<Secret> {
        match self {
            Auth::Bearer { token: s } | Auth::Basic { password: s, .. } => s,
            Auth::ApiKeyHeader { key, .. } | Auth::ApiKeyQuery { key, .. } => key,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::ApiKeyHeader { .. } => "api_key_header",
            Auth::ApiKeyQuery { .. } => "api_key_query",
        }
    }
}

fn default_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

fn default_timeout() -> u64 {
    30
}

fn default_max_response() -> usize {
    1024 * 1024
}

/// A custom HTTP tool as its author writes it (`POST /api/integrations/custom/tools`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomToolDefinition {
    /// The tool name (unique among all tools).
    pub name: String,
    /// What the tool does, for an agent choosing a tool.
    pub description: String,
    /// The HTTP method.
    pub method: HttpMethod,
    /// The URL template; `{param}` placeholders (path and query part only) are percent-encoded.
    pub url: String,
    /// Header templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Query parameter templates; a parameter given as exactly `{p}` is left out when `p` is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// A JSON body template (strings `"{p}"` become the parameter's JSON value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// JSON Schema of the parameters object.
    #[serde(default = "default_schema")]
    pub parameters_schema: Value,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// A jq filter applied to the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_transform: Option<String>,
    /// Timeout of one request in seconds (1-300, 30 by default).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Largest response body read, in bytes (1 MiB by default, at most 16 MiB).
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
}

impl CustomToolDefinition {
    /// Parse a definition body.
    pub fn parse(body: &Value) -> Result<Self, DefinitionError> {
        serde_json::from_value(body.clone())
            .map_err(|e| DefinitionError::new("", format!("invalid custom tool definition: {e}")))
    }

    /// The secrets by field (`auth`), for sealed storage.
    pub fn secrets(&self) -> BTreeMap<String, Secret> {
        self.auth
            .as_ref()
            .and_then(Auth::secret)
            .map(|s| BTreeMap::from([("auth".to_owned(), s.clone())]))
            .unwrap_or_default()
    }

    /// Put sealed secrets back.
    pub fn with_secrets(mut self, secrets: &BTreeMap<String, Secret>) -> Self {
        if let (Some(auth), Some(secret)) = (self.auth.as_mut(), secrets.get("auth")) {
            *auth.slot() = Some(secret.clone());
        }
        self
    }

    /// Keep the credential of `previous` when this definition gives none of the same type.
    pub fn inherit_secret(mut self, previous: &CustomToolDefinition) -> Self {
        if let (Some(auth), Some(old)) = (self.auth.as_mut(), previous.auth.as_ref())
            && auth.kind() == old.kind()
            && auth.secret().is_none()
        {
            *auth.slot() = old.secret().cloned();
        }
        self
    }

    /// The definition as shown: no secrets; `auth.secret_set` says whether one is stored.
    pub fn public_view(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let (Some(auth), Some(obj)) = (&self.auth, value.get_mut("auth").and_then(Value::as_object_mut)) {
            obj.insert("secret_set".into(), Value::Bool(auth.secret().is_some()));
        }
        value
    }

    /// Validate the definition and render the request its tool would send first for `params`:
    /// the URL with path values percent-encoded and the query appended, the headers (credentials
    /// included) and the JSON body. Nothing is sent and the SSRF guard is not consulted (it checks
    /// the host when a call connects); parameters are not validated against the schema.
    pub fn render(&self, params: &Value) -> Result<RenderedRequest, IntegrationError> {
        let (url, _, _) = self.validate().map_err(|e| {
            IntegrationError::invalid_input(PROVIDER, format!("invalid definition at '{}': {e}", e.pointer))
        })?;
        let requests = Requests::new(self, url);
        let params = params.as_object().cloned().unwrap_or_default();
        Ok(RenderedRequest {
            method: self.method,
            url: requests.request_url(&params)?,
            headers: requests.headers(&params, true)?,
            body: self.body.as_ref().map(|t| render_body(t, &params)),
        })
    }

    /// Check the definition; returns the URL template, the URL as a call with no parameters would
    /// send it (its scheme and host are the definition's own: no placeholder may stand there) and
    /// the compiled response transform.
    fn validate(&self) -> Result<(Template, Url, Option<Transform>), DefinitionError> {
        let tool_name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && self.name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if !tool_name_ok {
            return Err(DefinitionError::new(
                "/name",
                "a tool name must be 1-64 lowercase ASCII letters, digits or '_', starting with a letter",
            ));
        }
        if self.description.trim().is_empty() {
            return Err(DefinitionError::new("/description", "a description is required"));
        }
        let authority_end = self.url.find("://").map(|i| {
            let rest = &self.url[i + 3..];
            i + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len())
        });
        let Some(authority_end) = authority_end else {
            return Err(DefinitionError::new("/url", "the URL must be absolute (http:// or https://)"));
        };
        if self.url.chars().any(char::is_control) {
            // URL parsing drops some (tabs, newlines, trailing controls), so a value next to one
            // would decide whether the template's own text survives
            return Err(DefinitionError::new("/url", "the URL may not contain control characters"));
        }
        if self.url[..authority_end].contains('{') {
            return Err(DefinitionError::new("/url", "placeholders are not allowed in the scheme or host"));
        }
        let template = Template::parse(&self.url);
        let sample = template.render(&Map::new(), encode_component);
        let parsed =
            Url::parse(&sample).map_err(|e| DefinitionError::new("/url", format!("invalid URL: {e}")))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(DefinitionError::new(
                "/url",
                format!("scheme '{}' is not allowed (only http and https)", parsed.scheme()),
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(DefinitionError::new("/url", "credentials in the URL are not allowed; use 'auth'"));
        }
        if !keeps_path_segments(&sample, &parsed) {
            return Err(DefinitionError::new(
                "/url",
                "the URL path may not contain '.' or '..' segments or backslashes",
            ));
        }
        for name in self.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(DefinitionError::new("/headers", format!("'{name}' is not a valid header name")));
            }
        }
        match &self.auth {
            Some(Auth::ApiKeyHeader { header, .. })
                if http::HeaderName::from_bytes(header.as_bytes()).is_err() =>
            {
                return Err(DefinitionError::new(
                    "/auth/header",
                    format!("'{header}' is not a valid header name"),
                ));
            }
            Some(auth) if auth.secret().is_none_or(|s| s.expose().is_empty()) => {
                return Err(DefinitionError::new(
                    "/auth",
                    format!("'{}' credentials need their secret", auth.kind()),
                ));
            }
            _ => {}
        }
        if self.parameters_schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(DefinitionError::new(
                "/parameters_schema",
                "the parameters schema must have \"type\": \"object\"",
            ));
        }
        let declared: Vec<&String> = self
            .parameters_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().collect())
            .unwrap_or_default();
        let mut used: Vec<String> = template.params().map(str::to_owned).collect();
        for t in self.headers.values().chain(self.query.values()) {
            used.extend(Template::parse(t).params().map(str::to_owned));
        }
        if let Some(body) = &self.body {
            body_params(body, &mut used);
        }
        if let Some(missing) = used.iter().find(|p| !declared.contains(p)) {
            return Err(DefinitionError::new(
                "/parameters_schema",
                format!("placeholder '{{{missing}}}' is not a property of the parameters schema"),
            ));
        }
        if !(1..=300).contains(&self.timeout_seconds) {
            return Err(DefinitionError::new("/timeout_seconds", "timeout_seconds must be from 1 to 300"));
        }
        if !(1..=16 * 1024 * 1024).contains(&self.max_response_bytes) {
            return Err(DefinitionError::new(
                "/max_response_bytes",
                "max_response_bytes must be from 1 to 16777216",
            ));
        }
        let transform = match &self.response_transform {
            Some(code) if !code.trim().is_empty() => Some(
                Transform::compile(code)
                    .map_err(|e| DefinitionError::new("/response_transform", e.to_string()))?,
            ),
            _ => None,
        };
        Ok((template, parsed, transform))
    }
}

/// Builds custom tools: the shared HTTP client whose DNS resolver is the SSRF guard.
#[derive(Clone)]
pub struct CustomTools {
    guard: SsrfGuard,
    client: reqwest::Client,
}

impl std::fmt::Debug for CustomTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomTools").field("guard", &self.guard).finish_non_exhaustive()
    }
}

impl CustomTools {
    /// A builder guarded by `guard`.
    pub fn new(guard: SsrfGuard) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(ssrf::GuardedDns(guard.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("integrations-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self { guard, client })
    }

    /// Validate a definition and build its tool. A URL whose host is a literal address the SSRF
    /// guard refuses is refused here, when it is defined, rather than on every call (a host name is
    /// checked when a call connects: what it resolves to may change).
    pub fn build(&self, definition: &CustomToolDefinition) -> Result<Arc<dyn Tool>, DefinitionError> {
        let (url, sample, transform) = definition.validate()?;
        let literal = match sample.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(address) = literal {
            self.guard
                .check_addr(address, None)
                .map_err(|e| DefinitionError::new("/url", format!("refused by the SSRF guard: {e}")))?;
        }
        let method = definition.method;
        let hints = match method {
            HttpMethod::Get => ToolHints::read_only(),
            HttpMethod::Put => ToolHints::idempotent_write(),
            HttpMethod::Delete => ToolHints::idempotent_write().destructive(),
            HttpMethod::Post | HttpMethod::Patch => ToolHints::write(),
        };
        let spec = ToolSpec::new(&definition.name, PROVIDER, &definition.description)
            .parameters(definition.parameters_schema.clone())
            .hints(hints);
        Ok(Arc::new(CustomTool {
            spec,
            requests: Requests::new(definition, url),
            transform,
            tools: self.clone(),
        }))
    }
}

/// A definition with its templates parsed: renders the request of a call (used by the tool and by
/// [`CustomToolDefinition::render`], so both fill templates the same way).
struct Requests {
    definition: CustomToolDefinition,
    url: Template,
    headers: Vec<(String, Template)>,
    query: Vec<(String, Template)>,
}

impl Requests {
    fn new(definition: &CustomToolDefinition, url: Template) -> Self {
        Self {
            definition: definition.clone(),
            url,
            headers: definition.headers.iter().map(|(k, v)| (k.clone(), Template::parse(v))).collect(),
            query: definition.query.iter().map(|(k, v)| (k.clone(), Template::parse(v))).collect(),
        }
    }

    fn request_url(&self, params: &Map<String, Value>) -> Result<Url, IntegrationError> {
        let rendered = self.url.render(params, encode_component);
        let mut url = Url::parse(&rendered).map_err(|e| {
            IntegrationError::invalid_input(
                PROVIDER,
                format!("{}: the filled URL is invalid: {e}", self.definition.name),
            )
        })?;
        if !keeps_path_segments(&rendered, &url) {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                format!(
                    "{}: a path parameter may not be '.' or '..' (it would change the request path)",
                    self.definition.name
                ),
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, t) in &self.query {
            if let Some(p) = t.sole_param()
                && params.get(p).is_none_or(Value::is_null)
            {
                continue;
            }
            pairs.push((name.clone(), t.render(params, str::to_owned)));
        }
        if let Some(Auth::ApiKeyQuery { param, key: Some(key) }) = &self.definition.auth {
            pairs.push((param.clone(), key.expose().to_owned()));
        }
        if !pairs.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn headers(
        &self,
        params: &Map<String, Value>,
        same_origin: bool,
    ) -> Result<reqwest::header::HeaderMap, IntegrationError> {
        use reqwest::header::{HeaderName, HeaderValue};
        let mut map = reqwest::header::HeaderMap::new();
        for (name, t) in &self.headers {
            let value = t.render(params, str::to_owned);
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                IntegrationError::invalid_input(PROVIDER, format!("bad header name '{name}'"))
            })?;
            let value = HeaderValue::from_str(&value).map_err(|_| {
                IntegrationError::invalid_input(
                    PROVIDER,
                    format!(
                        "{}: the value of header {name} contains characters not allowed in a header",
                        self.definition.name
                    ),
                )
            })?;
            map.insert(name, value);
        }
        if !same_origin {
            return Ok(map);
        }
        let sensitive = |v: String| {
            HeaderValue::from_str(&v).map(|mut h| {
                h.set_sensitive(true);
                h
            })
        };
        let bad_secret = || {
            IntegrationError::configuration(
                PROVIDER,
                format!("{}: the stored credential is not a valid header value", self.definition.name),
            )
        };
        match &self.definition.auth {
            Some(Auth::Bearer { token: Some(t) }) => {
                map.insert(
                    reqwest::header::AUTHORIZATION,
                    sensitive(format!("Bearer {}", t.expose())).map_err(|_| bad_secret())?,
                );
            }
            Some(Auth::Basic { username, password: Some(p) }) => {
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", p.expose()));
                map.insert(
                    reqwest::header::AUTHORIZATION,
                    sensitive(format!("Basic {encoded}")).map_err(|_| bad_secret())?,
                );
            }
            Some(Auth::ApiKeyHeader { header, key: Some(k) }) => {
                let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| bad_secret())?;
                map.insert(name, sensitive(k.expose().to_owned()).map_err(|_| bad_secret())?);
            }
            _ => {}
        }
        Ok(map)
    }
}

/// Whether parsing `rendered` kept every path segment written in it. URL parsing resolves `.` and
/// `..` segments (`%2e` spelled or not), so a value that is exactly `.` or `..` — percent-encoding
/// cannot stop it — would remove a segment of the template's path; a backslash would add one.
fn keeps_path_segments(rendered: &str, url: &Url) -> bool {
    let after_scheme = rendered.find("://").map_or(rendered, |i| &rendered[i + 3..]);
    let path = match after_scheme.find(['/', '?', '#']) {
        Some(i) if after_scheme[i..].starts_with('/') => {
            let rest = &after_scheme[i..];
            &rest[..rest.find(['?', '#']).unwrap_or(rest.len())]
        }
        _ => "",
    };
    let written: Vec<&str> = if path.is_empty() { vec![""] } else { path.split('/').skip(1).collect() };
    let is_dot =
        |s: &&str| matches!(s.to_ascii_lowercase().as_str(), "." | ".." | "%2e" | ".%2e" | "%2e." | "%2e%2e");
    !written.iter().any(is_dot) && url.path_segments().map_or(0, Iterator::count) == written.len()
}

/// The first request a custom tool sends for some parameters (before any redirect), as
/// [`CustomToolDefinition::render`] builds it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RenderedRequest {
    /// The method.
    pub method: HttpMethod,
    /// The URL: path values percent-encoded, then the query parameters (and an API key in the query).
    pub url: Url,
    /// The headers, credentials included (marked sensitive).
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body.
    pub body: Option<Value>,
}

struct CustomTool {
    spec: ToolSpec,
    requests: Requests,
    transform: Option<Transform>,
    tools: CustomTools,
}

fn ssrf_error(tool: &str, error: &SsrfError) -> IntegrationError {
    IntegrationError::invalid_input(PROVIDER, format!("{tool}: refused by the SSRF guard: {error}"))
        .with_details(json!({ "error_type": "ssrf_refused", "rule": error.to_string() }))
}

fn find_ssrf(error: &(dyn std::error::Error + 'static)) -> Option<SsrfError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<SsrfError>() {
            return Some(found.clone());
        }
        current = e.source();
    }
    None
}

impl CustomTool {
    fn scrub(&self, text: &str) -> String {
        let mut out: String = text.chars().take(500).collect();
        if let Some(secret) = self.requests.definition.auth.as_ref().and_then(Auth::secret)
            && !secret.expose().is_empty()
        {
            out = out.replace(secret.expose(), "[REDACTED]");
        }
        out
    }

    fn transport_error(&self, error: reqwest::Error) -> IntegrationError {
        if let Some(ssrf) = find_ssrf(&error) {
            return ssrf_error(&self.spec.name, &ssrf);
        }
        let error = error.without_url();
        let message = self.scrub(&format!("{}: {error}", self.spec.name));
        if error.is_timeout() {
            IntegrationError::new(ErrorKind::Timeout, PROVIDER, message)
        } else if error.is_connect() {
            IntegrationError::connect(PROVIDER, message)
        } else {
            IntegrationError::new(ErrorKind::Network, PROVIDER, message)
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, IntegrationError> {
        let limit = self.requests.definition.max_response_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(e))? {
            if body.len() + chunk.len() > limit {
                return Err(IntegrationError::new(
                    ErrorKind::Upstream { status: Some(response.status().as_u16()) },
                    PROVIDER,
                    format!("{}: the response exceeds the tool's limit of {limit} bytes", self.spec.name),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl Tool for CustomTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, ctx: &ToolContext, params: Value) -> Result<Value, IntegrationError> {
        let params = params.as_object().cloned().unwrap_or_default();
        let mut url = self.requests.request_url(&params)?;
        let origin = url.origin();
        let mut method = self.requests.definition.method.as_reqwest();
        let mut body = self.requests.definition.body.as_ref().map(|t| render_body(t, &params));
        let remaining = ctx.deadline.saturating_duration_since(Instant::now());
        let timeout = Duration::from_secs(self.requests.definition.timeout_seconds)
            .min(remaining.max(Duration::from_millis(1)));
        let mut redirects = 0;
        let response = loop {
            self.tools.guard.check_url(&url).await.map_err(|e| ssrf_error(&self.spec.name, &e))?;
            let same_origin = url.origin() == origin;
            let mut request = self
                .tools
                .client
                .request(method.clone(), url.clone())
                .headers(self.requests.headers(&params, same_origin)?)
                .timeout(timeout);
            if let Some(b) = &body {
                request = request.json(b);
            }
            if let Some(key) = &ctx.idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            let mut trace = reqwest::header::HeaderMap::new();
            integration_core::propagation::inject(&mut trace);
            let response = request.headers(trace).send().await.map_err(|e| self.transport_error(e))?;
            let status = response.status();
            if !status.is_redirection() {
                break response;
            }
            let Some(location) =
                response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok())
            else {
                break response;
            };
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(IntegrationError::new(
                    ErrorKind::Upstream { status: Some(status.as_u16()) },
                    PROVIDER,
                    format!("{}: more than {MAX_REDIRECTS} redirects", self.spec.name),
                ));
            }
            url = url.join(location).map_err(|e| {
                IntegrationError::new(
                    ErrorKind::Upstream { status: Some(status.as_u16()) },
                    PROVIDER,
                    format!("{}: invalid redirect location: {e}", self.spec.name),
                )
            })?;
            if matches!(status.as_u16(), 301..=303) && method != reqwest::Method::HEAD {
                method = reqwest::Method::GET;
                body = None;
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let is_json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = self.read_body(response).await?;
        if !status.is_success() {
            let snippet = self.scrub(&String::from_utf8_lossy(&bytes));
            return Err(IntegrationError::from_status(
                PROVIDER,
                status,
                &headers,
                format!("{}: upstream answered {status}", self.spec.name),
            )
            .with_details(json!({ "status": status.as_u16(), "body": snippet })));
        }
        let value = if bytes.is_empty() {
            Value::Null
        } else if is_json {
            serde_json::from_slice(&bytes).map_err(|e| {
                IntegrationError::new(
                    ErrorKind::Upstream { status: Some(status.as_u16()) },
                    PROVIDER,
                    format!("{}: the response is not valid JSON: {e}", self.spec.name),
                )
            })?
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        match &self.transform {
            Some(t) => {
                let limits = Limits {
                    time: Duration::from_secs(2),
                    max_output_bytes: self.requests.definition.max_response_bytes,
                };
                t.run(&value, limits).await.map_err(|e| {
                    let message = format!("{}: response_transform: {e}", self.spec.name);
                    match e {
                        // The upstream has answered, so the call may have acted: retried only
                        // when the tool is idempotent.
                        TransformError::Busy | TransformError::MemoryBusy(_) => {
                            IntegrationError::new(ErrorKind::Unavailable, PROVIDER, message)
                                .with_effect(Effect::Unknown)
                        }
                        _ => IntegrationError::configuration(PROVIDER, message),
                    }
                })
            }
            None => Ok(value),
        }
    }
}

/// The `custom` integration: owns the custom tools (added to the registry at run time) and
/// provides their (empty) default connection.
#[derive(Debug, Default)]
pub struct CustomIntegration;

#[async_trait]
impl Integration for CustomIntegration {
    fn info(&self) -> IntegrationInfo {
        IntegrationInfo {
            name: PROVIDER.into(),
            display_name: "Custom HTTP tools".into(),
            description: "User-defined HTTP tools created through /api/integrations/custom/tools".into(),
            config_schema: json!({"type": "object", "properties": {}}),
            // The tools come from the store and the SSRF allowlist is the binaries' own option
            // (`CUSTOM_HTTP_ALLOWLIST`): the default connection reads no variable.
            env_vars: vec![],
        }
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        Vec::new()
    }

    async fn check(&self, _connection: &Connection) -> Result<Health, IntegrationError> {
        Ok(Health { identity: None, details: json!({}) })
    }

    fn connection_from_env(&self, _env: &dyn Fn(&str) -> Option<String>) -> Option<Connection> {
        Some(Connection::new(PROVIDER, PROVIDER, json!({})))
    }
}

#[cfg(test)]
mod tests;
