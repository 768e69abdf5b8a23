//! API keys on every route: who may call what.
//!
//! Key design decisions:
//!
//! * **Deny by default.** The middleware runs after routing (so it knows the route template, never
//!   guesses from the raw path) and asks [`access_for`] what the route needs: a short list of
//!   public routes (health, readiness, the OpenAPI document, the signature-authenticated inbound
//!   webhooks), tool routes by the tools' hints, and `admin` for everything else — a route added
//!   tomorrow is admin-only until someone decides otherwise.
//! * **Open until the first key exists.** With no active key every route is open (the binary then
//!   refuses to bind anything but loopback); as soon as one key exists, every non-public route
//!   needs `Authorization: Bearer isk_...`.
//! * **No database round trip per request.** Key records are cached for a few seconds
//!   ([`AuthConfig::cache_ttl`]), so a revocation reaches every replica within that time.
//! * **Per-key rate limit** on the executor's limiter (shared through Redis when configured), 429
//!   with `Retry-After`.
//! * Every refusal is logged with its reason, route and key id — never the key — and counted in
//!   `auth_failures_total{reason}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use integration_core::{Decision, ErrorKind, IntegrationError, Quota};
use integration_store::{ApiKeyRecord, ApiKeyStore};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

/// A permission a key carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Configure connections, manage keys, webhook and custom-tool definitions, metrics.
    Admin,
    /// Call read-only tools, list tools.
    ToolsRead,
    /// Call every tool (implies `tools:read`).
    ToolsWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 3] = [Scope::Admin, Scope::ToolsRead, Scope::ToolsWrite];

    /// The scope's name (`admin`, `tools:read`, `tools:write`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::ToolsRead => "tools:read",
            Scope::ToolsWrite => "tools:write",
        }
    }

    /// Parse one scope name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name.trim())
    }
}

/// Parse a comma-separated (or repeated) scope list; unknown names are an error naming the
/// valid ones.
pub fn parse_scopes<S: AsRef<str>>(names: &[S]) -> Result<Vec<Scope>, String> {
    let mut scopes = Vec::new();
    for name in names.iter().flat_map(|n| n.as_ref().split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let scope = Scope::parse(name).ok_or_else(|| {
            format!("unknown scope '{name}': use admin, tools:read or tools:write (comma-separated)")
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err("at least one scope is required: admin, tools:read or tools:write".to_owned());
    }
    Ok(scopes)
}

/// Who is calling. The middleware puts it into the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No API key exists: the service is open (and bound to loopback only).
    Open,
    /// A valid key.
    Key {
        /// The key's public id.
        id: String,
        /// The key's name.
        name: String,
        /// Its scopes.
        scopes: Vec<Scope>,
    },
}

impl Caller {
    /// Whether the caller holds `scope` (`tools:write` implies `tools:read`).
    pub fn allows(&self, scope: Scope) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key { scopes, .. } => {
                scopes.contains(&scope) || (scope == Scope::ToolsRead && scopes.contains(&Scope::ToolsWrite))
            }
        }
    }

    /// The scope needed to call a tool with these hints.
    pub fn scope_for_tool(read_only: bool) -> Scope {
        if read_only { Scope::ToolsRead } else { Scope::ToolsWrite }
    }
}

/// What a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No key (health, readiness, OpenAPI, signature-authenticated inbound endpoints).
    Public,
    /// A key with this scope.
    Scope(Scope),
}

/// Settings of the authentication layer.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Requests per minute per key (`API_KEY_RATE_LIMIT_PER_MINUTE`); 0 disables the limit.
    pub rate_limit_per_minute: u32,
    /// `/metrics` without a key (`METRICS_PUBLIC=true`).
    pub metrics_public: bool,
    /// How long a key lookup is cached (revocations take at most this long to apply).
    pub cache_ttl: Duration,
    /// With no active key, serve every route openly (true when bound to loopback, or explicitly
    /// insecure); false: refuse everything until a key exists, so revoking the last key of a
    /// public deployment never opens it.
    pub open_without_keys: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            metrics_public: false,
            cache_ttl: Duration::from_secs(5),
            open_without_keys: true,
        }
    }
}

type Cached<T> = Mutex<HashMap<String, (Instant, T)>>;

/// The key store with a short-lived cache in front of it.
pub struct Auth {
    keys: ApiKeyStore,
    config: AuthConfig,
    records: Cached<Option<ApiKeyRecord>>,
    any_key: Mutex<Option<(Instant, bool)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why a request was refused (the `reason` label of `auth_failures_total`).
#[derive(Debug, Clone, Copy)]
enum Refusal {
    NoKeys,
    MissingKey,
    InvalidKey,
    InsufficientScope(Scope),
    RateLimited(Duration),
    Unavailable,
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::NoKeys => "no_keys_configured",
            Refusal::MissingKey => "missing_key",
            Refusal::InvalidKey => "invalid_key",
            Refusal::InsufficientScope(_) => "insufficient_scope",
            Refusal::RateLimited(_) => "rate_limited",
            Refusal::Unavailable => "unavailable",
        }
    }

    fn response(self) -> Response {
        let error = match self {
            Refusal::NoKeys => IntegrationError::new(
                ErrorKind::Authentication,
                "api",
                "no API key exists yet: create one with `integrations-api keys create --name N --scopes S`",
            ),
            Refusal::MissingKey => IntegrationError::new(
                ErrorKind::Authentication,
                "api",
                "an API key is required: send 'Authorization: Bearer isk_...'",
            ),
            Refusal::InvalidKey => IntegrationError::new(
                ErrorKind::Authentication,
                "api",
                "the API key is not valid or was revoked",
            ),
            Refusal::InsufficientScope(scope) => IntegrationError::new(
                ErrorKind::Permission,
                "api",
                format!("this request needs a key with the '{}' scope", scope.as_str()),
            )
            .with_details(json!({ "required_scope": scope.as_str() })),
            Refusal::RateLimited(wait) => IntegrationError::new(
                ErrorKind::RateLimited { retry_after: Some(wait) },
                "api",
                "too many requests with this API key",
            ),
            Refusal::Unavailable => IntegrationError::new(
                ErrorKind::Unavailable,
                "api",
                "API keys cannot be checked right now (the database is unavailable)",
            ),
        };
        let mut response = ApiError::from(error).into_response();
        if matches!(self, Refusal::NoKeys | Refusal::MissingKey | Refusal::InvalidKey) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"integrations\""));
        }
        response
    }
}

impl Auth {
    /// Authentication against `keys`.
    pub fn new(keys: ApiKeyStore, config: AuthConfig) -> Self {
        Self { keys, config, records: Mutex::new(HashMap::new()), any_key: Mutex::new(None) }
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The key store.
    pub fn keys(&self) -> &ApiKeyStore {
        &self.keys
    }

    /// Whether at least one active key exists (cached).
    pub async fn keys_exist(&self) -> Result<bool, integration_store::StoreError> {
        let cached = *self.any_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, exists)) = cached
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(exists);
        }
        match self.keys.active_count().await {
            Ok(count) => {
                *self.any_key.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), count > 0));
                Ok(count > 0)
            }
            // Fail closed: once keys existed, a database hiccup must not open the service.
            Err(error) => match cached {
                Some((_, true)) => Ok(true),
                _ => Err(error),
            },
        }
    }

    /// The caller a presented key stands for; `Ok(None)` for an unknown, wrong or revoked key.
    pub async fn authenticate(
        &self,
        presented: &str,
    ) -> Result<Option<Caller>, integration_store::StoreError> {
        let Some(id) = integration_store::api_keys::key_id_of(presented) else {
            return Ok(None);
        };
        let cached = {
            let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
            records.get(id).filter(|(at, _)| at.elapsed() < self.config.cache_ttl).map(|(_, r)| r.clone())
        };
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self.keys.get(id).await?;
                let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
                if records.len() > 10_000 {
                    records.clear();
                }
                records.insert(id.to_owned(), (Instant::now(), record.clone()));
                record
            }
        };
        Ok(record.filter(|r| r.active() && r.matches(presented)).map(|r| Caller::Key {
            scopes: r.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            id: r.id,
            name: r.name,
        }))
    }

    /// Drop cached state (after a key is created or revoked here; other replicas catch up within
    /// the cache TTL).
    pub fn forget(&self) {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).clear();
        *self.any_key.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Whether a route template has the shape `pattern`, where `{}` in the pattern stands for any
/// `{param}` segment of the template (compared segment by segment, without allocating).
fn has_shape(template: &str, pattern: &str) -> bool {
    // Checked on every request against each listed route: most patterns are literal, and the
    // part before the first `{}` rejects most templates without splitting them.
    // A byte scan: `split_once("{}")` set up a substring searcher per call (8 patterns a request).
    let Some(at) = pattern.as_bytes().windows(2).position(|w| w == b"{}") else {
        return template == pattern;
    };
    let literal = &pattern[..at];
    if !template.starts_with(literal) {
        return false;
    }
    let mut segments = template.split('/');
    let mut wanted = pattern.split('/');
    loop {
        match (segments.next(), wanted.next()) {
            (None, None) => return true,
            (Some(seg), Some("{}")) if seg.starts_with('{') && seg.ends_with('}') => {}
            (Some(seg), Some(want)) if seg == want => {}
            _ => return false,
        }
    }
}

/// Routes anyone may call.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api-docs/openapi.json"),
    ("GET", "/docs"),
    // Authenticated by their signatures instead of a key.
    ("POST", "/api/integrations/webhook/{}"),
    ("POST", "/api/integrations/slack/webhook"),
];

/// Management routes any tool user may read.
const TOOLS_READ: &[(&str, &str)] = &[("GET", "/api/tools"), ("GET", "/api/integrations")];

/// What a request needs: by its route template (from the router), method and, for
/// `POST /api/tools/{name}/invoke`, the tool named in the path. Anything not listed is admin.
pub fn access_for(
    state: &AppState,
    method: &Method,
    template: &str,
    path: &str,
    metrics_public: bool,
) -> Access {
    let listed =
        |list: &[(&str, &str)]| list.iter().any(|(m, t)| *m == method.as_str() && has_shape(template, t));
    if listed(PUBLIC) || (metrics_public && method == Method::GET && template == "/metrics") {
        return Access::Public;
    }
    if listed(TOOLS_READ) || template == "/mcp" || template.starts_with("/mcp/") {
        // MCP checks each tool call against the caller's scopes itself.
        return Access::Scope(Scope::ToolsRead);
    }
    let registry = state.executor.registry();
    if method == Method::POST && has_shape(template, "/api/tools/{}/invoke") {
        let name = path.trim_end_matches("/invoke").rsplit('/').next().unwrap_or_default();
        let name = percent_decode(name);
        let read_only = registry.get(&name).map(|t| t.spec().hints.read_only).unwrap_or(true);
        return Access::Scope(Caller::scope_for_tool(read_only));
    }
    match registry.route_read_only(method.as_str(), template) {
        Some(read_only) => Access::Scope(Caller::scope_for_tool(read_only)),
        None => Access::Scope(Scope::Admin),
    }
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| segment.to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn refuse(refusal: Refusal, method: &Method, route: &str, key_id: Option<&str>) -> Response {
    metrics::counter!("auth_failures_total", "reason" => refusal.reason()).increment(1);
    tracing::warn!(
        reason = refusal.reason(),
        method = %method,
        route,
        key_id = key_id.unwrap_or("-"),
        "request refused by API key authentication"
    );
    refusal.response()
}

/// The middleware (installed with `route_layer`, so the matched route template is known).
pub(crate) async fn middleware(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(auth) = state.auth.clone() else {
        return next.run(request).await;
    };
    let template =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let method = request.method().clone();
    let access = access_for(&state, &method, &template, request.uri().path(), auth.config.metrics_public);
    let Access::Scope(required) = access else {
        return next.run(request).await;
    };
    match auth.keys_exist().await {
        Ok(false) if auth.config.open_without_keys => {
            request.extensions_mut().insert(Caller::Open);
            return next.run(request).await;
        }
        Ok(false) => return refuse(Refusal::NoKeys, &method, &template, None),
        Ok(true) => {}
        Err(error) => {
            tracing::error!(%error, "cannot count API keys");
            return refuse(Refusal::Unavailable, &method, &template, None);
        }
    }
    let Some(presented) = bearer(request.headers()) else {
        return refuse(Refusal::MissingKey, &method, &template, None);
    };
    let key_id = integration_store::api_keys::key_id_of(presented).map(str::to_owned);
    let caller = match auth.authenticate(presented).await {
        Ok(Some(caller)) => caller,
        Ok(None) => return refuse(Refusal::InvalidKey, &method, &template, key_id.as_deref()),
        Err(error) => {
            tracing::error!(%error, "cannot look up an API key");
            return refuse(Refusal::Unavailable, &method, &template, key_id.as_deref());
        }
    };
    if !caller.allows(required) {
        return refuse(Refusal::InsufficientScope(required), &method, &template, key_id.as_deref());
    }
    if auth.config.rate_limit_per_minute > 0
        && let Caller::Key { id, .. } = &caller
    {
        let quota = Quota::per_minute(auth.config.rate_limit_per_minute);
        match state.executor.rate_limiter().try_acquire(&format!("api-key:{id}"), quota).await {
            Ok(Decision::Allowed) => {}
            Ok(Decision::Wait(wait)) => {
                return refuse(Refusal::RateLimited(wait), &method, &template, Some(id));
            }
            // The limiter failing must not lock everyone out.
            Err(error) => tracing::warn!(%error, "API key rate limiter unavailable; request admitted"),
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn auth_of(state: &AppState) -> Result<&Arc<Auth>, ApiError> {
    state.auth.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, "configuration", "this server has no API key store")
    })
}

fn key_json(record: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "id": record.id,
        "name": record.name,
        "scopes": record.scopes,
        "active": record.active(),
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    })
}

/// Body of `POST /api/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    scopes: ScopeList,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeList {
    One(String),
    Many(Vec<String>),
}

/// `GET /api/keys`
pub(crate) async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    let auth = auth_of(&state)?;
    let keys = auth.keys().list().await.map_err(IntegrationError::from)?;
    Ok(Json(json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() })).into_response())
}

/// `POST /api/keys`: the key is in this answer and nowhere else, ever.
pub(crate) async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let auth = auth_of(&state)?;
    let body: CreateKey = crate::tools::parse_json_body(&headers, &body)?
        .ok_or_else(|| ApiError::bad_request("a body {\"name\": ..., \"scopes\": [...]} is required"))?;
    let names = match body.scopes {
        ScopeList::One(s) => vec![s],
        ScopeList::Many(list) => list,
    };
    let scopes = parse_scopes(&names).map_err(ApiError::bad_request)?;
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let (record, key) = auth.keys().create(&body.name, &scopes).await.map_err(IntegrationError::from)?;
    auth.forget();
    tracing::info!(key_id = %record.id, name = %record.name, scopes = %scopes.join(","), "API key created");
    let mut out = key_json(&record);
    out["key"] = json!(key.expose_secret());
    out["note"] = json!("store the key now: it is shown once and cannot be recovered");
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `DELETE /api/keys/{id}` (an id or a name)
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let auth = auth_of(&state)?;
    let revoked = auth.keys().revoke(&id).await.map_err(IntegrationError::from)?;
    auth.forget();
    if revoked.is_empty() {
        return Err(ApiError::not_found(format!("no active API key with id or name '{id}'")));
    }
    tracing::info!(key_ids = %revoked.join(","), "API key revoked");
    Ok(Json(json!({ "revoked": revoked })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_imply() {
        assert_eq!(parse_scopes(&["admin,tools:read"]), Ok(vec![Scope::Admin, Scope::ToolsRead]));
        assert!(parse_scopes(&["tools:admin"]).is_err());
        assert!(parse_scopes::<&str>(&[]).is_err());
        let writer = Caller::Key { id: "x".into(), name: "w".into(), scopes: vec![Scope::ToolsWrite] };
        assert!(
            writer.allows(Scope::ToolsRead)
                && writer.allows(Scope::ToolsWrite)
                && !writer.allows(Scope::Admin)
        );
        let admin = Caller::Key { id: "y".into(), name: "a".into(), scopes: vec![Scope::Admin] };
        assert!(admin.allows(Scope::Admin) && !admin.allows(Scope::ToolsRead));
        assert!(Caller::Open.allows(Scope::Admin));
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer isk_abc"));
        assert_eq!(bearer(&headers), Some("isk_abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  isk_abc "));
        assert_eq!(bearer(&headers), Some("isk_abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic eDp5"));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn template_shapes() {
        assert!(has_shape("/api/integrations/webhook/{endpoint}", "/api/integrations/webhook/{}"));
        assert!(has_shape("/healthz", "/healthz"));
        assert!(!has_shape("/api/integrations/webhook/static", "/api/integrations/webhook/{}"));
        assert!(!has_shape("/api/integrations/webhook/{endpoint}/x", "/api/integrations/webhook/{}"));
        assert!(!has_shape("/api/integrations/webhook", "/api/integrations/webhook/{}"));
        assert!(has_shape("/api/tools/{name}/invoke", "/api/tools/{}/invoke"));
        assert!(!has_shape("/api/tools/{name}/other", "/api/tools/{}/invoke"));
        assert!(!has_shape("/api/tools/name/invoke", "/api/tools/{}/invoke"));
        assert!(!has_shape("/healthz/", "/healthz"));
        assert_eq!(percent_decode("jira%5Fget"), "jira_get");
    }
}
