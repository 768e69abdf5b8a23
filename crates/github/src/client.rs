//! The GitHub client: octocrab underneath, raw requests on top.
//!
//! Typed octocrab calls drop the headers of successful answers, and the provider needs them on
//! every answer (`x-ratelimit-*` for the budget, `Link` for paging), so every request goes through
//! octocrab's raw `_get` / `_post` / `_patch` and the JSON body is read here. octocrab still does
//! what it is good at: the base URI (a GitHub Enterprise path prefix is kept), the auth header,
//! GitHub App JWTs and cached, renewed installation tokens. Its own retry layer is compiled out (the
//! `retry` feature is off): the core executor retries.
//!
//! Before each request the client looks at the last budget GitHub reported for the resource
//! (`core`, `search`): when it is spent and the reset is ahead, the call fails at once as
//! `RateLimited` with `retry_after` = reset − now, without spending a request. The executor then
//! waits for the reset when it falls before the call's deadline, or hands the error back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use integration_core::reexports::http::{self, HeaderMap, HeaderName, StatusCode};
use integration_core::{ErrorKind, IntegrationError};
use octocrab::Octocrab;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PROVIDER;
use crate::config::{GitHubAuth, GitHubConfig, Limits};
use crate::error;

/// Largest page GitHub serves.
pub const MAX_PAGE: usize = 100;

/// The rate-limit budget GitHub last reported for one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateBudget {
    /// The resource (`core`, `search`, `graphql`, ...).
    pub resource: String,
    /// Calls allowed per window.
    pub limit: u64,
    /// Calls left in this window.
    pub remaining: u64,
    /// Calls spent in this window.
    pub used: u64,
    /// When the window resets, in epoch seconds.
    pub reset: u64,
}

/// The JSON of a 2xx body (`null` when empty).
fn parse_body(status: StatusCode, text: &str) -> Result<Value, IntegrationError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| {
        IntegrationError::new(
            ErrorKind::Upstream { status: Some(status.as_u16()) },
            PROVIDER,
            format!("github answered an unexpected body: {e}"),
        )
    })
}

/// A successful answer: status, headers and the JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

impl Answer {
    /// The `rel="next"` target of the `Link` header, as a path and query under the API root.
    pub fn next_page(&self) -> Option<String> {
        let link = self.headers.get("link")?.to_str().ok()?;
        link.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if !is_next {
                return None;
            }
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            let url = url::Url::parse(target).ok()?;
            Some(match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            })
        })
    }
}

/// One page of items and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page {
    /// The items kept.
    pub items: Vec<Value>,
    /// An opaque cursor for the next call, when there is more.
    pub next_cursor: Option<String>,
    /// The body of the first page read (for `total_count` of searches).
    pub first_body: Value,
}

/// A position in a paged list: the page's path and the items of it already handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Path and query of the page.
    p: String,
    /// Items of that page already returned.
    s: usize,
}

/// Encode a cursor (URL-safe base64 of a small JSON object).
fn encode_cursor(path: &str, skip: usize) -> String {
    let json = serde_json::to_vec(&Cursor { p: path.to_owned(), s: skip }).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Decode a cursor and check that it points into a list of the same kind as `expected_path` (same
/// last segment: GitHub's `Link`s may name a repository by id, `/repositories/1/issues`), so a
/// cursor cannot be used to reach another endpoint with the connection's credentials.
fn decode_cursor(cursor: &str, expected_path: &str) -> Result<(String, usize), IntegrationError> {
    let bad = || {
        IntegrationError::invalid_input(PROVIDER, "invalid cursor: pass the next_cursor of a previous answer")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let path = c.p.split('?').next().unwrap_or_default();
    let tail = expected_path.rsplit('/').next().unwrap_or_default();
    if !path.ends_with(&format!("/{tail}"))
        || !path.starts_with('/')
        || c.p.contains("..")
        || c.p.contains('#')
    {
        return Err(bad());
    }
    Ok((c.p, c.s))
}

/// A GitHub REST client bound to one API root and one set of credentials. Cheap to clone; clones
/// share the installation token and the rate-limit budget.
#[derive(Clone)]
pub struct GitHubClient {
    // Behind an `Arc`: cloning an `Octocrab` deep-copies its cached installation token, so clones
    // would each mint their own.
    octo: Arc<Octocrab>,
    api_url: String,
    auth_kind: &'static str,
    limits: Limits,
    budgets: Arc<Mutex<BTreeMap<String, RateBudget>>>,
    /// A GitHub App's first installation token, minted once however many requests start together:
    /// octocrab mints one per request that finds no token, so concurrent first calls each minted
    /// one. Set when the first mint succeeds; later renewals are octocrab's (30 s before expiry).
    first_token: Arc<tokio::sync::OnceCell<()>>,
}

impl std::fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubClient")
            .field("api_url", &self.api_url)
            .field("auth", &self.auth_kind)
            .finish_non_exhaustive()
    }
}

impl GitHubClient {
    /// A client for `config`. Must run inside a Tokio runtime.
    pub fn new(config: GitHubConfig) -> Result<Self, IntegrationError> {
        let cfg_err = |what: &str, e: octocrab::Error| {
            IntegrationError::configuration(PROVIDER, format!("{what}: {}", first_line(&e.to_string())))
        };
        let builder = Octocrab::builder()
            .base_uri(config.api_url.as_str())
            .map_err(|e| cfg_err("invalid api_url", e))?
            .add_header(
                integration_core::reexports::http::header::ACCEPT,
                "application/vnd.github+json".to_owned(),
            );
        let (octo, auth_kind) = match &config.auth {
            GitHubAuth::Token(token) => {
                let octo = builder
                    .personal_token(token.clone())
                    .build()
                    .map_err(|e| cfg_err("cannot build client", e))?;
                (octo, "token")
            }
            GitHubAuth::App { app_id, private_key, installation_id } => {
                use secrecy::ExposeSecret;
                let app = builder
                    .app_from_rsa_pem(
                        octocrab::models::AppId(*app_id),
                        private_key.expose_secret().as_bytes(),
                    )
                    .map_err(|e| cfg_err("invalid GitHub App private key (an RSA PEM is expected)", e))?
                    .build()
                    .map_err(|e| cfg_err("cannot build client", e))?;
                let octo = app
                    .installation(octocrab::models::InstallationId(*installation_id))
                    .map_err(|e| cfg_err("cannot use the installation", e))?;
                (octo, "github_app")
            }
        };
        Ok(Self {
            octo: Arc::new(octo),
            api_url: config.api_url,
            auth_kind,
            limits: config.limits,
            budgets: Arc::default(),
            first_token: Arc::default(),
        })
    }

    /// The API root.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// `token` or `github_app`.
    pub fn auth_kind(&self) -> &'static str {
        self.auth_kind
    }

    /// Output limits of the connection.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The last budget GitHub reported, per resource.
    pub fn budgets(&self) -> BTreeMap<String, RateBudget> {
        self.budgets.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The underlying octocrab client, for calls this crate does not wrap.
    pub fn octocrab(&self) -> &Octocrab {
        &self.octo
    }

    /// `GET` a path (with query) under the API root.
    pub async fn get(&self, path_and_query: &str) -> Result<Answer, IntegrationError> {
        self.send(http::Method::GET, path_and_query, None).await
    }

    /// `POST` a JSON body to a path under the API root.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer, IntegrationError> {
        self.send(http::Method::POST, path, Some(body)).await
    }

    /// `PATCH` a JSON body to a path under the API root (same headers, budget check and error
    /// mapping as [`Self::post`]; like every request, never retried here: whether a call may be
    /// repeated is the tool's `idempotent` hint, which the executor reads).
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Answer, IntegrationError> {
        self.send(http::Method::PATCH, path, Some(body)).await
    }

    /// `GET` a path and read the body as `T` (a typed view that skips what it does not keep, far
    /// cheaper than building a `Value` of GitHub's large objects); `Err` with the body as a `Value`
    /// when it is not a `T`, so the caller can read it the way [`Self::get`]'s callers do.
    pub(crate) async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<Result<T, Value>, IntegrationError> {
        let (status, _headers, text) = self.send_text(http::Method::GET, path_and_query, None).await?;
        match serde_json::from_str::<T>(&text) {
            Ok(typed) => Ok(Ok(typed)),
            Err(_) => Ok(Err(parse_body(status, &text)?)),
        }
    }

    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, IntegrationError> {
        let (status, headers, text) = self.send_text(method, path, body).await?;
        let body = parse_body(status, &text)?;
        Ok(Answer { status, headers, body })
    }

    /// One request: the budget check, trace context, metrics, and the error mapping of a non-2xx
    /// answer; the body of a 2xx answer as text. `body` is sent only with a method other than `GET`.
    async fn send_text(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, String), IntegrationError> {
        let resource = if path.starts_with("/search/") { "search" } else { "core" };
        // `GET /rate_limit` costs nothing and answers with a spent budget too.
        if path != "/rate_limit" {
            self.check_budget(resource)?;
        }
        if self.auth_kind == "github_app" {
            let octo = &self.octo;
            self.first_token
                .get_or_try_init(|| async { octo.installation_token().await.map(|_| ()) })
                .await
                .map_err(error::from_octocrab)?;
        }
        let started = std::time::Instant::now();
        let body = if method == http::Method::GET { None } else { body };
        let observe = |status: Option<u16>| {
            integration_core::observe_upstream(PROVIDER, method.as_str(), path, status, started.elapsed())
        };
        // octocrab's `_get` / `_post` / `_patch`, with the trace context of the current span in
        // the headers.
        let mut builder = http::Request::builder().method(method.clone()).uri(path);
        if let Some(headers) = builder.headers_mut() {
            integration_core::propagation::inject(headers);
        }
        let request = self.octo.build_request(builder, body);
        let mut response = match request {
            Ok(request) => self.octo.execute(request).await,
            Err(error) => Err(error),
        }
        .inspect_err(|_| observe(None))
        .map_err(error::from_octocrab)?;
        let status = response.status();
        // Taken, not cloned: reading the body does not need them.
        let headers = std::mem::take(response.headers_mut());
        self.record_budget(&headers, resource);
        let text = self.octo.body_to_string(response).await.map_err(error::from_octocrab);
        observe(text.as_ref().ok().map(|_| status.as_u16()));
        let text = text?;
        if !status.is_success() {
            tracing::debug!(provider = PROVIDER, status = status.as_u16(), "github answered an error");
            return Err(error::from_response(status, &headers, text.as_bytes()));
        }
        Ok((status, headers, text))
    }

    /// Fail fast when the last answer said the budget of `resource` is spent until a later reset.
    fn check_budget(&self, resource: &str) -> Result<(), IntegrationError> {
        let budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = budgets.get(resource)
            && b.remaining == 0
        {
            let wait = error::until(b.reset);
            if !wait.is_zero() {
                return Err(IntegrationError::new(
                    ErrorKind::RateLimited { retry_after: Some(wait + Duration::from_secs(1)) },
                    PROVIDER,
                    format!("github rate limit for '{resource}' is spent until epoch second {}", b.reset),
                ));
            }
        }
        Ok(())
    }

    fn record_budget(&self, headers: &HeaderMap, fallback_resource: &str) {
        // Names made once: a `&str` name is parsed and checked on every lookup.
        const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
        const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
        const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
        const RESOURCE: HeaderName = HeaderName::from_static("x-ratelimit-resource");
        const USED: HeaderName = HeaderName::from_static("x-ratelimit-used");
        let (Some(limit), Some(remaining), Some(reset)) = (
            error::header_u64(headers, &LIMIT),
            error::header_u64(headers, &REMAINING),
            error::header_u64(headers, &RESET),
        ) else {
            return;
        };
        let resource = headers.get(&RESOURCE).and_then(|v| v.to_str().ok()).unwrap_or(fallback_resource);
        let used = error::header_u64(headers, &USED).unwrap_or(limit.saturating_sub(remaining));
        integration_core::observe_upstream_budget(PROVIDER, resource, remaining);
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        match budgets.get_mut(resource) {
            Some(known) => {
                (known.limit, known.remaining, known.used, known.reset) = (limit, remaining, used, reset)
            }
            None => {
                let budget = RateBudget { resource: resource.to_owned(), limit, remaining, used, reset };
                budgets.insert(resource.to_owned(), budget);
            }
        }
    }

    /// Take the budgets of a `GET /rate_limit` body (`resources.core`, `resources.search`, ...).
    pub fn record_rate_limit_body(&self, body: &Value) {
        let Some(resources) = body.get("resources").and_then(Value::as_object) else { return };
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        for (name, r) in resources {
            let num = |k: &str| r.get(k).and_then(Value::as_u64);
            if let (Some(limit), Some(remaining), Some(reset)) =
                (num("limit"), num("remaining"), num("reset"))
            {
                let used = num("used").unwrap_or(limit.saturating_sub(remaining));
                budgets.insert(
                    name.clone(),
                    RateBudget { resource: name.clone(), limit, remaining, used, reset },
                );
            }
        }
    }

    /// Read a paged list: up to `limit` items starting at `cursor` (or at `first`), following
    /// `Link: rel="next"`. `items_key` names the array in an object body (`items` for searches);
    /// `keep` filters items (skipped ones do not count towards `limit`). `first` must already
    /// carry `per_page`. The returned cursor resumes exactly after the last item returned.
    pub async fn collect(
        &self,
        first: &str,
        list_path: &str,
        cursor: Option<&str>,
        limit: usize,
        items_key: Option<&str>,
        keep: &(dyn Fn(&Value) -> bool + Send + Sync),
    ) -> Result<Page, IntegrationError> {
        let (mut path, mut skip) = match cursor.filter(|c| !c.trim().is_empty()) {
            Some(c) => decode_cursor(c, list_path)?,
            None => (first.to_owned(), 0),
        };
        let mut items = Vec::new();
        let mut first_body = Value::Null;
        let mut next_cursor = None;
        loop {
            let answer = self.get(&path).await?;
            let next = answer.next_page();
            let mut body = answer.body;
            let page: Vec<Value> = match items_key {
                Some(key) => match body.get_mut(key).map(Value::take) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                },
                None => match body.take() {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                },
            };
            if first_body.is_null() {
                first_body = body;
            }
            let page_len = page.len();
            let mut stopped_at = None;
            for (index, item) in page.into_iter().enumerate().skip(skip) {
                if items.len() >= limit {
                    stopped_at = Some(index);
                    break;
                }
                if keep(&item) {
                    items.push(item);
                }
            }
            skip = 0;
            if let Some(index) = stopped_at.filter(|i| *i < page_len) {
                next_cursor = Some(encode_cursor(&path, index));
                break;
            }
            match next {
                Some(n) if items.len() < limit => path = n,
                Some(n) => {
                    next_cursor = Some(encode_cursor(&n, 0));
                    break;
                }
                None => break,
            }
        }
        Ok(Page { items, next_cursor, first_body })
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Percent-encode one path segment (owner, repository, ref).
pub fn segment(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Build `path?k=v&...` from the pairs whose value is present.
pub fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            query.append_pair(k, v);
            any = true;
        }
    }
    if any { format!("{path}?{}", query.finish()) } else { path.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next_page() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            "<https://api.github.com/repositories/1/issues?per_page=2&page=2>; rel=\"next\", \
             <https://api.github.com/repositories/1/issues?per_page=2&page=5>; rel=\"last\""
                .parse()
                .expect("header"),
        );
        let answer = Answer { status: StatusCode::OK, headers, body: Value::Null };
        assert_eq!(answer.next_page().as_deref(), Some("/repositories/1/issues?per_page=2&page=2"));
    }

    #[test]
    fn cursors_round_trip_and_stay_on_their_list() {
        let c = encode_cursor("/repos/a/b/commits?per_page=100&page=2", 40);
        assert_eq!(
            decode_cursor(&c, "/repos/a/b/commits").expect("valid"),
            ("/repos/a/b/commits?per_page=100&page=2".to_owned(), 40)
        );
        assert!(decode_cursor(&c, "/repos/a/b/issues").is_err());
        let by_id = encode_cursor("/repositories/1/commits?page=2", 0);
        assert!(decode_cursor(&by_id, "/repos/a/b/commits").is_ok());
        assert!(decode_cursor("garbage", "/x").is_err());
    }

    #[test]
    fn query_building() {
        assert_eq!(
            with_query("/search/repositories", &[("q", Some("rust lang:x".into())), ("sort", None)]),
            "/search/repositories?q=rust+lang%3Ax"
        );
        assert_eq!(segment("feature/a b"), "feature%2Fa%20b");
    }
}
