//! The HTTP side of the fake GitHub: routes, the token and rate-limit gate, paging.

use std::collections::HashMap;

use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{self as j, PullDetail, Urls};
use super::{
    FakeComment, FakeGitHub, FakeIssue, FakePull, FakeRepo, InstallationToken, State as Inner, now, parse_iso,
};

const DOCS: &str = "https://docs.github.com/rest";

/// Who a request authenticated as.
#[derive(Debug, Clone)]
struct Identity(String);

type Q = Query<HashMap<String, String>>;

/// The router of the fake GitHub over `state`.
pub fn router(state: FakeGitHub) -> Router {
    Router::new()
        .route("/user", get(current_user))
        .route("/rate_limit", get(rate_limit))
        .route("/app/installations/{id}/access_tokens", post(installation_token))
        .route("/search/repositories", get(search_repositories))
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/repos/{owner}/{repo}/languages", get(languages))
        .route("/repos/{owner}/{repo}/commits", get(list_commits))
        .route("/repos/{owner}/{repo}/commits/{sha}", get(get_commit))
        .route("/repos/{owner}/{repo}/commits/{sha}/status", get(combined_status))
        .route("/repos/{owner}/{repo}/commits/{sha}/check-runs", get(check_runs))
        .route("/repos/{owner}/{repo}/compare/{basehead}", get(compare))
        .route("/repos/{owner}/{repo}/contents/{*path}", get(contents))
        .route("/repos/{owner}/{repo}/pulls", get(list_pulls))
        .route("/repos/{owner}/{repo}/pulls/{number}", get(get_pull))
        .route("/repos/{owner}/{repo}/pulls/{number}/files", get(pull_files))
        .route("/repos/{owner}/{repo}/pulls/{number}/commits", get(pull_commits))
        .route("/repos/{owner}/{repo}/pulls/{number}/reviews", get(pull_reviews))
        .route("/repos/{owner}/{repo}/issues", get(list_issues).post(create_issue))
        .route("/repos/{owner}/{repo}/issues/{number}", get(get_issue).patch(update_issue))
        .route("/repos/{owner}/{repo}/issues/{number}/comments", get(list_comments).post(create_comment))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not Found") })
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "documentation_url": DOCS, "status": status.as_u16().to_string()})),
    )
        .into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

fn validation(resource: &str, field: &str, code: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": field, "code": code}],
            "documentation_url": DOCS,
            "status": "422",
        })),
    )
        .into_response()
}

fn urls(headers: &HeaderMap) -> Urls {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    Urls::new(&format!("http://{host}"))
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = raw.split_once(' ')?;
    matches!(scheme.to_ascii_lowercase().as_str(), "bearer" | "token").then(|| token.trim().to_owned())
}

/// Token check and rate-limit accounting in front of every route.
async fn gate(State(gh): State<FakeGitHub>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path.starts_with("/app/") {
        return next.run(request).await;
    }
    let Some(token) = token_of(request.headers()) else {
        return error(StatusCode::UNAUTHORIZED, "Requires authentication");
    };
    let resource = if path.starts_with("/search/") { "search" } else { "core" };
    let t = now();
    let (login, bucket) = {
        let mut s = gh.lock();
        let login = match s.tokens.get(&token) {
            Some(login) => Some(login.clone()),
            None => s
                .installation_tokens
                .get(&token)
                .filter(|it| it.expires_at > t)
                .and_then(|it| s.installations.get(&it.installation))
                .map(|(_, account)| format!("{account}-app[bot]")),
        };
        let Some(login) = login else {
            drop(s);
            return error(StatusCode::UNAUTHORIZED, "Bad credentials");
        };
        if path == "/rate_limit" {
            (login, None)
        } else {
            let bucket =
                s.buckets.entry(resource.to_owned()).or_insert_with(|| super::Bucket::new(5000, 3600));
            bucket.refresh(t);
            let spent = bucket.remaining == 0;
            if !spent {
                bucket.remaining -= 1;
            }
            (login, Some((bucket.clone(), spent)))
        }
    };
    let mut response = match &bucket {
        Some((_, true)) => error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
        ),
        _ => {
            request.extensions_mut().insert(Identity(login));
            next.run(request).await
        }
    };
    if let Some((b, _)) = bucket {
        let h = response.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", b.limit.to_string()),
            ("x-ratelimit-remaining", b.remaining.to_string()),
            ("x-ratelimit-reset", b.reset.to_string()),
            ("x-ratelimit-used", (b.limit - b.remaining).to_string()),
            ("x-ratelimit-resource", resource.to_owned()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
    }
    response.headers_mut().insert("x-github-api-version-selected", HeaderValue::from_static("2022-11-28"));
    response
}

async fn current_user(
    State(gh): State<FakeGitHub>,
    Extension(id): Extension<Identity>,
    headers: HeaderMap,
) -> Response {
    let u = gh.lock().user(&id.0);
    Json(j::private_user(&urls(&headers), &u)).into_response()
}

async fn rate_limit(State(gh): State<FakeGitHub>) -> Response {
    let mut s = gh.lock();
    let t = now();
    let mut resources = serde_json::Map::new();
    for (name, b) in s.buckets.iter_mut() {
        b.refresh(t);
        resources.insert(name.clone(), j::rate(b.limit, b.remaining, b.reset));
    }
    let core = resources.get("core").cloned().unwrap_or_else(|| j::rate(5000, 5000, t + 3600));
    Json(json!({"resources": resources, "rate": core})).into_response()
}

#[derive(Deserialize)]
struct JwtClaims {
    iss: Value,
    exp: u64,
}

async fn installation_token(
    State(gh): State<FakeGitHub>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let claims = token_of(&headers).and_then(|jwt| {
        let payload = jwt.split('.').nth(1)?.to_owned();
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        serde_json::from_slice::<JwtClaims>(&bytes).ok()
    });
    let Some(claims) = claims else {
        return error(StatusCode::UNAUTHORIZED, "A JSON web token could not be decoded");
    };
    let t = now();
    if claims.exp <= t {
        return error(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        );
    }
    let iss = match &claims.iss {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let mut s = gh.lock();
    match s.installations.get(&id) {
        Some((app, _)) if Some(*app) == iss => {}
        Some(_) => {
            drop(s);
            return error(StatusCode::UNAUTHORIZED, "Integration not found");
        }
        None => {
            drop(s);
            return not_found();
        }
    }
    let lifetime = s.installation_token_lifetime;
    let n = s.installation_tokens.len();
    let token = format!("ghs_fake{id}x{n:04}{}", &super::long_hash(format!("{id}{n}{t}").as_bytes())[..24]);
    s.installation_tokens
        .insert(token.clone(), InstallationToken { installation: id, expires_at: t + lifetime });
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expires_at": super::iso(t + lifetime),
            "permissions": {"contents": "read", "issues": "write", "pull_requests": "read", "metadata": "read"},
            "repository_selection": "all",
        })),
    )
        .into_response()
}

/// Page `items` by `page`/`per_page` with GitHub's `Link` header.
fn paged(
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
    q: &HashMap<String, String>,
    items: Vec<Value>,
) -> Response {
    let (page, per_page) = page_params(q);
    let (slice, link) = page_slice(headers, path, raw_query, page, per_page, items);
    let mut response = Json(Value::Array(slice)).into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert("link", link);
    }
    response
}

fn page_params(q: &HashMap<String, String>) -> (usize, usize) {
    let page = q.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let per_page = q.get("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(30).clamp(1, 100);
    (page, per_page)
}

fn page_slice(
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
    page: usize,
    per_page: usize,
    items: Vec<Value>,
) -> (Vec<Value>, Option<String>) {
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let base = urls(headers).api;
    let kept: Vec<&str> =
        raw_query.unwrap_or("").split('&').filter(|p| !p.is_empty() && !p.starts_with("page=")).collect();
    let link_to = |n: usize| {
        let mut parts = kept.clone();
        let page = format!("page={n}");
        parts.push(&page);
        format!("{base}{path}?{}", parts.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    }
    (slice, (!links.is_empty()).then(|| links.join(", ")))
}

fn with_repo<T>(
    gh: &FakeGitHub,
    owner: &str,
    repo: &str,
    f: impl FnOnce(&Inner, &FakeRepo) -> T,
) -> Option<T> {
    let s = gh.lock();
    let full = format!("{owner}/{repo}");
    // GitHub matches owner and repository names case-insensitively.
    let r = s.repos.values().find(|r| r.full_name().eq_ignore_ascii_case(&full))?;
    Some(f(&s, r))
}

async fn search_repositories(
    State(gh): State<FakeGitHub>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(text) = q.get("q").filter(|t| !t.trim().is_empty()) else {
        return validation("Search", "q", "missing");
    };
    let u = urls(&headers);
    let mut terms = Vec::new();
    let mut filters = Vec::new();
    for word in text.split_whitespace() {
        match word.split_once(':') {
            Some((k, v)) => filters.push((k.to_ascii_lowercase(), v.to_ascii_lowercase())),
            None => terms.push(word.to_ascii_lowercase()),
        }
    }
    let s = gh.lock();
    let mut hits: Vec<(&FakeRepo, f64)> = s
        .repos
        .values()
        .filter_map(|r| {
            let name = r.name.to_ascii_lowercase();
            let haystack =
                format!("{} {} {}", name, r.description.clone().unwrap_or_default(), r.topics.join(" "))
                    .to_lowercase();
            if !terms.iter().all(|t| haystack.contains(t.as_str())) {
                return None;
            }
            for (k, v) in &filters {
                let ok = match k.as_str() {
                    "user" | "org" => r.owner.eq_ignore_ascii_case(v),
                    "repo" => r.full_name().eq_ignore_ascii_case(v),
                    "language" => r.language.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(v)),
                    "topic" => r.topics.iter().any(|t| t.eq_ignore_ascii_case(v)),
                    "is" => (v == "private") == r.private,
                    "stars" => match v.strip_prefix(">=").or(v.strip_prefix('>')) {
                        Some(n) => n.parse::<u64>().is_ok_and(|n| r.stars >= n),
                        None => v.parse::<u64>().is_ok_and(|n| r.stars == n),
                    },
                    _ => true,
                };
                if !ok {
                    return None;
                }
            }
            let score =
                terms.iter().map(|t| if name.contains(t.as_str()) { 10.0 } else { 1.0 }).sum::<f64>() + 1.0;
            Some((r, score))
        })
        .collect();
    let desc = q.get("order").map(String::as_str) != Some("asc");
    match q.get("sort").map(String::as_str) {
        Some("stars") => hits.sort_by_key(|(r, _)| r.stars),
        Some("forks") => hits.sort_by_key(|(r, _)| r.forks),
        Some("updated") => hits.sort_by_key(|(r, _)| r.pushed_at),
        _ => hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.stars.cmp(&b.0.stars))),
    }
    if desc {
        hits.reverse();
    }
    let total = hits.len();
    let items: Vec<Value> =
        hits.iter().map(|(r, score)| j::search_item(&u, r, &s.user(&r.owner), *score)).collect();
    drop(s);
    let (page, per_page) = page_params(&q);
    let (slice, link) = page_slice(&headers, "/search/repositories", raw.as_deref(), page, per_page, items);
    let mut response =
        Json(json!({"total_count": total, "incomplete_results": false, "items": slice})).into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert("link", link);
    }
    response
}

async fn get_repo(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    with_repo(&gh, &owner, &repo, |s, r| Json(j::full_repo(&u, r, &s.user(&r.owner))).into_response())
        .unwrap_or_else(not_found)
}

async fn languages(State(gh): State<FakeGitHub>, Path((owner, repo)): Path<(String, String)>) -> Response {
    with_repo(&gh, &owner, &repo, |_, r| {
        let map: serde_json::Map<String, Value> =
            r.languages.iter().map(|(l, n)| (l.clone(), json!(n))).collect();
        Json(Value::Object(map)).into_response()
    })
    .unwrap_or_else(not_found)
}

async fn list_commits(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let path = format!("/repos/{owner}/{repo}/commits");
    let items = with_repo(&gh, &owner, &repo, |s, r| {
        let start = q.get("sha").cloned().unwrap_or_else(|| r.default_branch.clone());
        let Some(sha) = r.resolve(&start) else {
            return Err(format!("No commit found for SHA: {start}"));
        };
        let since = q.get("since").and_then(|t| parse_iso(t));
        let until = q.get("until").and_then(|t| parse_iso(t));
        Ok(r.history(&sha)
            .into_iter()
            .filter(|c| {
                q.get("path").is_none_or(|p| c.files.iter().any(|f| f.filename.starts_with(p.as_str())))
            })
            .filter(|c| {
                q.get("author").is_none_or(|a| {
                    c.author_login.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(a))
                        || c.author_email.eq_ignore_ascii_case(a)
                })
            })
            .filter(|c| since.is_none_or(|t| c.date >= t) && until.is_none_or(|t| c.date <= t))
            .map(|c| j::commit(&u, r, c, c.author_login.as_deref().map(|l| s.user(l)).as_ref(), false))
            .collect::<Vec<_>>())
    });
    match items {
        None => not_found(),
        Some(Err(message)) => error(StatusCode::NOT_FOUND, &message),
        Some(Ok(items)) => paged(&headers, &path, raw.as_deref(), &q, items),
    }
}

async fn get_commit(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    with_repo(&gh, &owner, &repo, |s, r| {
        let Some(c) = r.resolve(&sha).and_then(|full| r.commits.get(&full)) else {
            return validation("Commit", "sha", "invalid");
        };
        Json(j::commit(&u, r, c, c.author_login.as_deref().map(|l| s.user(l)).as_ref(), true)).into_response()
    })
    .unwrap_or_else(not_found)
}

async fn combined_status(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, git_ref)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    with_repo(&gh, &owner, &repo, |s, r| match r.resolve(&git_ref) {
        Some(sha) => Json(j::combined_status(&u, r, &s.user(&r.owner), &sha)).into_response(),
        None => not_found(),
    })
    .unwrap_or_else(not_found)
}

async fn check_runs(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, git_ref)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    with_repo(&gh, &owner, &repo, |s, r| match r.resolve(&git_ref) {
        Some(sha) => {
            let owner = s.user(&r.owner);
            let runs: Vec<Value> = r
                .checks
                .get(&sha)
                .map(|cs| {
                    cs.iter().enumerate().map(|(i, c)| j::check_run(&u, r, &owner, &sha, i, c)).collect()
                })
                .unwrap_or_default();
            Json(json!({"total_count": runs.len(), "check_runs": runs})).into_response()
        }
        None => validation("Commit", "sha", "invalid"),
    })
    .unwrap_or_else(not_found)
}

/// Files of a range: the changes of each file summed over the commits, oldest first.
fn range_files(u: &Urls, r: &FakeRepo, commits: &[&super::FakeCommit], head: &str) -> Vec<Value> {
    let mut order: Vec<String> = Vec::new();
    let mut merged: HashMap<String, super::FakeFile> = HashMap::new();
    for c in commits {
        for f in &c.files {
            match merged.get_mut(&f.filename) {
                Some(m) => {
                    m.additions += f.additions;
                    m.deletions += f.deletions;
                    m.content = f.content.clone();
                    if f.status == "removed" {
                        m.status = "removed".to_owned();
                    }
                    m.patch = match (&m.patch, &f.patch) {
                        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
                        _ => None,
                    };
                }
                None => {
                    order.push(f.filename.clone());
                    merged.insert(f.filename.clone(), f.clone());
                }
            }
        }
    }
    order.iter().filter_map(|name| merged.get(name)).map(|f| j::diff_entry(u, r, head, f)).collect()
}

async fn compare(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, basehead)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let Some((base, head)) = basehead.split_once("...") else { return not_found() };
    with_repo(&gh, &owner, &repo, |s, r| {
        let (Some(base_sha), Some(head_sha)) = (r.resolve(base), r.resolve(head)) else { return not_found() };
        let (merge_base, ahead, behind) = r.compare(&base_sha, &head_sha);
        let commit_json = |c: &super::FakeCommit| {
            j::commit(&u, r, c, c.author_login.as_deref().map(|l| s.user(l)).as_ref(), false)
        };
        let status = match (ahead.len(), behind) {
            (0, 0) => "identical",
            (_, 0) => "ahead",
            (0, _) => "behind",
            _ => "diverged",
        };
        let full = r.full_name();
        let base_commit = r.commits.get(&base_sha).map(commit_json).unwrap_or(Value::Null);
        let mb = merge_base
            .as_ref()
            .and_then(|m| r.commits.get(m))
            .map(commit_json)
            .unwrap_or(base_commit.clone());
        Json(json!({
            "url": format!("{}/repos/{full}/compare/{basehead}", u.api),
            "html_url": format!("{}/{full}/compare/{basehead}", u.web),
            "permalink_url": format!("{}/{full}/compare/{base_sha}...{head_sha}", u.web),
            "diff_url": format!("{}/{full}/compare/{basehead}.diff", u.web),
            "patch_url": format!("{}/{full}/compare/{basehead}.patch", u.web),
            "base_commit": base_commit,
            "merge_base_commit": mb,
            "status": status,
            "ahead_by": ahead.len(),
            "behind_by": behind,
            "total_commits": ahead.len(),
            "commits": ahead.iter().map(|c| commit_json(c)).collect::<Vec<_>>(),
            "files": range_files(&u, r, &ahead, &head_sha),
        }))
        .into_response()
    })
    .unwrap_or_else(not_found)
}

async fn contents(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    with_repo(&gh, &owner, &repo, |_, r| {
        let git_ref = q.get("ref").cloned().unwrap_or_else(|| r.default_branch.clone());
        let Some(sha) = r.resolve(&git_ref) else {
            return error(StatusCode::NOT_FOUND, &format!("No commit found for the ref {git_ref}"));
        };
        let tree = r.tree(&sha);
        let path = path.trim_matches('/');
        if let Some(bytes) = tree.get(path) {
            let mut v = j::content_file(&u, r, &git_ref, path, bytes);
            if bytes.len() > 1_048_576 {
                // Like GitHub: files of 1-100 MB come without content.
                v["content"] = json!("");
                v["encoding"] = json!("none");
            }
            return Json(v).into_response();
        }
        let prefix = format!("{path}/");
        let mut entries: Vec<Value> = Vec::new();
        let mut dirs = std::collections::BTreeSet::new();
        for (name, bytes) in tree.range(prefix.clone()..) {
            let Some(rest) = name.strip_prefix(&prefix) else { break };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    dirs.insert(dir.to_owned());
                }
                None => {
                    let mut v = j::content_file(&u, r, &git_ref, name, bytes);
                    if let Some(o) = v.as_object_mut() {
                        o.remove("content");
                        o.remove("encoding");
                    }
                    entries.push(v);
                }
            }
        }
        if entries.is_empty() && dirs.is_empty() {
            return not_found();
        }
        for d in dirs {
            let p = format!("{prefix}{d}");
            let mut v = j::content_file(&u, r, &git_ref, &p, b"");
            v["type"] = json!("dir");
            v["download_url"] = Value::Null;
            if let Some(o) = v.as_object_mut() {
                o.remove("content");
                o.remove("encoding");
            }
            entries.push(v);
        }
        Json(Value::Array(entries)).into_response()
    })
    .unwrap_or_else(not_found)
}

fn pull_shas(r: &FakeRepo, p: &super::FakePull) -> (String, String) {
    (r.resolve(&p.base).unwrap_or_default(), r.resolve(&p.head).unwrap_or_default())
}

async fn list_pulls(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let path = format!("/repos/{owner}/{repo}/pulls");
    let items = with_repo(&gh, &owner, &repo, |s, r| {
        let state = q.get("state").map(String::as_str).unwrap_or("open");
        let mut pulls: Vec<&super::FakePull> = r
            .pulls
            .iter()
            .filter(|p| match state {
                "all" => true,
                "closed" => p.state != "open",
                _ => p.state == "open",
            })
            .filter(|p| q.get("base").is_none_or(|b| &p.base == b))
            .filter(|p| {
                q.get("head").is_none_or(|h| {
                    let branch = h.split_once(':').map(|(_, b)| b).unwrap_or(h);
                    p.head == branch
                })
            })
            .collect();
        match q.get("sort").map(String::as_str) {
            Some("updated") => pulls.sort_by_key(|p| p.updated_at),
            Some("popularity") => pulls.sort_by_key(|p| r.comments.get(&p.number).map(Vec::len).unwrap_or(0)),
            _ => pulls.sort_by_key(|p| p.created_at),
        }
        if q.get("direction").map(String::as_str) != Some("asc") {
            pulls.reverse();
        }
        let lookup = |l: &str| s.user(l);
        pulls
            .into_iter()
            .map(|p| {
                let (b, h) = pull_shas(r, p);
                j::pull(&u, r, p, &lookup, (&b, &h), None)
            })
            .collect::<Vec<_>>()
    });
    match items {
        None => not_found(),
        Some(items) => paged(&headers, &path, raw.as_deref(), &q, items),
    }
}

async fn get_pull(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    with_repo(&gh, &owner, &repo, |s, r| {
        let Some(p) = r.pulls.iter().find(|p| p.number == number) else { return not_found() };
        let (b, h) = pull_shas(r, p);
        let (_, ahead, _) = r.compare(&b, &h);
        let files = range_files(&u, r, &ahead, &h);
        let detail = PullDetail {
            commits: ahead.len(),
            additions: files.iter().filter_map(|f| f["additions"].as_u64()).sum(),
            deletions: files.iter().filter_map(|f| f["deletions"].as_u64()).sum(),
            changed_files: files.len(),
        };
        let lookup = |l: &str| s.user(l);
        Json(j::pull(&u, r, p, &lookup, (&b, &h), Some(detail))).into_response()
    })
    .unwrap_or_else(not_found)
}

async fn pull_files(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let path = format!("/repos/{owner}/{repo}/pulls/{number}/files");
    let items = with_repo(&gh, &owner, &repo, |_, r| {
        let p = r.pulls.iter().find(|p| p.number == number)?;
        let (b, h) = pull_shas(r, p);
        let (_, ahead, _) = r.compare(&b, &h);
        Some(range_files(&u, r, &ahead, &h))
    });
    match items.flatten() {
        None => not_found(),
        Some(items) => paged(&headers, &path, raw.as_deref(), &q, items),
    }
}

async fn pull_commits(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let path = format!("/repos/{owner}/{repo}/pulls/{number}/commits");
    let items = with_repo(&gh, &owner, &repo, |s, r| {
        let p = r.pulls.iter().find(|p| p.number == number)?;
        let (b, h) = pull_shas(r, p);
        let (_, ahead, _) = r.compare(&b, &h);
        Some(
            ahead
                .iter()
                .map(|c| j::commit(&u, r, c, c.author_login.as_deref().map(|l| s.user(l)).as_ref(), false))
                .collect::<Vec<_>>(),
        )
    });
    match items.flatten() {
        None => not_found(),
        Some(items) => paged(&headers, &path, raw.as_deref(), &q, items),
    }
}

async fn pull_reviews(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let path = format!("/repos/{owner}/{repo}/pulls/{number}/reviews");
    let items = with_repo(&gh, &owner, &repo, |s, r| {
        let p = r.pulls.iter().find(|p| p.number == number)?;
        Some(
            p.reviews
                .iter()
                .enumerate()
                .map(|(i, rv)| {
                    j::review(&u, r, number, 6000 + number * 100 + i as u64, rv, &s.user(&rv.user))
                })
                .collect::<Vec<_>>(),
        )
    });
    match items.flatten() {
        None => not_found(),
        Some(items) => paged(&headers, &path, raw.as_deref(), &q, items),
    }
}

async fn list_issues(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let path = format!("/repos/{owner}/{repo}/issues");
    let items = with_repo(&gh, &owner, &repo, |s, r| {
        let state = q.get("state").map(String::as_str).unwrap_or("open");
        let labels: Vec<&str> =
            q.get("labels").map(|l| l.split(',').map(str::trim).collect()).unwrap_or_default();
        let since = q.get("since").and_then(|t| parse_iso(t));
        // Pull requests are issues too on GitHub, listed with their `pull_request` object.
        let pull_views: Vec<FakeIssue> = r.pulls.iter().map(FakePull::as_issue).collect();
        let mut issues: Vec<&FakeIssue> = r
            .issues
            .iter()
            .chain(&pull_views)
            .filter(|i| state == "all" || i.state == state)
            .filter(|i| {
                labels.iter().all(|l| l.is_empty() || i.labels.iter().any(|il| il.eq_ignore_ascii_case(l)))
            })
            .filter(|i| {
                q.get("assignee").is_none_or(|a| match a.as_str() {
                    "*" => !i.assignees.is_empty(),
                    "none" => i.assignees.is_empty(),
                    a => i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)),
                })
            })
            .filter(|i| q.get("creator").is_none_or(|c| i.user.eq_ignore_ascii_case(c)))
            .filter(|i| since.is_none_or(|t| i.updated_at >= t))
            .collect();
        match q.get("sort").map(String::as_str) {
            Some("updated") => issues.sort_by_key(|i| (i.updated_at, i.number)),
            Some("comments") => {
                issues.sort_by_key(|i| (r.comments.get(&i.number).map(Vec::len).unwrap_or(0), i.number))
            }
            _ => issues.sort_by_key(|i| (i.created_at, i.number)),
        }
        if q.get("direction").map(String::as_str) != Some("asc") {
            issues.reverse();
        }
        let lookup = |l: &str| s.user(l);
        issues
            .into_iter()
            .map(|i| match r.pulls.iter().find(|p| p.number == i.number) {
                Some(p) => j::pull_issue(&u, r, p, &lookup),
                None => j::issue(&u, r, i, &lookup),
            })
            .collect::<Vec<_>>()
    });
    match items {
        None => not_found(),
        Some(items) => paged(&headers, &path, raw.as_deref(), &q, items),
    }
}

async fn get_issue(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    with_repo(&gh, &owner, &repo, |s, r| {
        let lookup = |l: &str| s.user(l);
        if let Some(i) = r.issues.iter().find(|i| i.number == number) {
            Json(j::issue(&u, r, i, &lookup)).into_response()
        } else if let Some(p) = r.pulls.iter().find(|p| p.number == number) {
            Json(j::pull_issue(&u, r, p, &lookup)).into_response()
        } else {
            not_found()
        }
    })
    .unwrap_or_else(not_found)
}

#[derive(Deserialize)]
struct NewIssue {
    title: Option<Value>,
    body: Option<String>,
    #[serde(default)]
    labels: Vec<Value>,
    #[serde(default)]
    assignees: Vec<String>,
    assignee: Option<String>,
    milestone: Option<Value>,
}

async fn create_issue(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Extension(id): Extension<Identity>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(new) = serde_json::from_slice::<NewIssue>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let title = match &new.title {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return validation("Issue", "title", "missing_field"),
    };
    let u = urls(&headers);
    let mut s = gh.lock();
    let t = {
        s.clock += 60;
        s.clock.max(now())
    };
    let users: Vec<String> = s.users.keys().cloned().collect();
    let full = format!("{owner}/{repo}");
    let Some(key) = s.repos.keys().find(|k| k.eq_ignore_ascii_case(&full)).cloned() else {
        drop(s);
        return not_found();
    };
    let mut assignees = new.assignees.clone();
    assignees.extend(new.assignee.clone());
    if let Some(bad) = assignees.iter().find(|a| !users.iter().any(|u| u.eq_ignore_ascii_case(a))) {
        drop(s);
        let _ = bad;
        return validation("Issue", "assignees", "invalid");
    }
    let milestone = match &new.milestone {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n) => Some(n),
            None => {
                drop(s);
                return validation("Issue", "milestone", "invalid");
            }
        },
    };
    let Some(r) = s.repos.get_mut(&key) else { return not_found() };
    if let Some(m) = milestone
        && !r.milestones.iter().any(|(n, _)| *n == m)
    {
        drop(s);
        return validation("Issue", "milestone", "invalid");
    }
    let number = r.next_number;
    r.next_number += 1;
    let labels = new
        .labels
        .iter()
        .filter_map(|l| l.as_str().map(str::to_owned).or_else(|| l.get("name")?.as_str().map(str::to_owned)))
        .collect();
    let issue = FakeIssue {
        number,
        title,
        body: new.body,
        state: "open".to_owned(),
        state_reason: None,
        user: id.0.clone(),
        labels,
        assignees,
        milestone,
        created_at: t,
        updated_at: t,
        closed_at: None,
    };
    r.issues.push(issue.clone());
    let r = r.clone();
    let lookup = |l: &str| s.user(l);
    let v = j::issue(&u, &r, &issue, &lookup);
    let location = v["url"].as_str().unwrap_or_default().to_owned();
    let mut response = (StatusCode::CREATED, Json(v)).into_response();
    if let Ok(l) = HeaderValue::from_str(&location) {
        response.headers_mut().insert("location", l);
    }
    response
}

/// The label names of a request (`"bug"` or `{"name": "bug"}`), in order, without repeats (GitHub
/// keeps one of each, whatever the case); `None` when an item is neither.
fn label_names(items: &[Value]) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let name = item.as_str().or_else(|| item.get("name")?.as_str())?;
        if name.trim().is_empty() {
            return None;
        }
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    }
    Some(names)
}

/// The edit of `PATCH /repos/{owner}/{repo}/issues/{number}`, checked: `None` for a field left
/// out (and for a `null` title, state or state reason), `Some(None)` for a body or milestone set
/// to `null` (cleared).
struct IssueEdit {
    title: Option<String>,
    body: Option<Option<String>>,
    state: Option<String>,
    state_reason: Option<String>,
    labels: Option<Vec<String>>,
    assignees: Option<Vec<String>>,
    milestone: Option<Option<u64>>,
}

/// Read and check an edit against the repository and its users; `Err` names the field and code
/// of the 422 (GitHub's `Validation Failed` shape) for a wrong value.
fn issue_edit(
    edit: &serde_json::Map<String, Value>,
    repo: &FakeRepo,
    users: &[String],
) -> Result<IssueEdit, (&'static str, &'static str)> {
    let field = |name: &str| edit.get(name).filter(|v| !v.is_null());
    let title = match field("title") {
        None => None,
        Some(Value::String(t)) if !t.trim().is_empty() => Some(t.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(_)) => return Err(("title", "missing_field")),
        Some(_) => return Err(("title", "invalid")),
    };
    let body = match edit.get("body") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(b)) => Some(Some(b.clone())),
        Some(_) => return Err(("body", "invalid")),
    };
    let state = match field("state") {
        None => None,
        Some(Value::String(s)) if s == "open" || s == "closed" => Some(s.clone()),
        Some(_) => return Err(("state", "invalid")),
    };
    let state_reason = match field("state_reason") {
        None => None,
        Some(Value::String(r))
            if ["completed", "not_planned", "duplicate", "reopened"].contains(&r.as_str()) =>
        {
            Some(r.clone())
        }
        Some(_) => return Err(("state_reason", "invalid")),
    };
    // A reason that contradicts the state asked for (the fake's choice: GitHub's answer to it is
    // not documented).
    if let (Some(s), Some(r)) = (&state, &state_reason)
        && (r == "reopened") != (s == "open")
    {
        return Err(("state_reason", "invalid"));
    }
    let labels = match edit.get("labels") {
        None => None,
        Some(Value::Array(items)) => match label_names(items) {
            Some(names) => Some(names),
            None => return Err(("labels", "invalid")),
        },
        Some(_) => return Err(("labels", "invalid")),
    };
    let assignees = match edit.get("assignees") {
        None => None,
        Some(Value::Array(items)) => {
            let mut logins: Vec<String> = Vec::new();
            for item in items {
                let Some(login) = item.as_str().or_else(|| item.get("login")?.as_str()) else {
                    return Err(("assignees", "invalid"));
                };
                let Some(known) = users.iter().find(|u| u.eq_ignore_ascii_case(login)) else {
                    return Err(("assignees", "invalid"));
                };
                if !logins.contains(known) {
                    logins.push(known.clone());
                }
            }
            Some(logins)
        }
        Some(_) => return Err(("assignees", "invalid")),
    };
    let milestone = match edit.get("milestone") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(m) if repo.milestones.iter().any(|(n, _)| *n == m) => Some(Some(m)),
            _ => return Err(("milestone", "invalid")),
        },
    };
    Ok(IssueEdit { title, body, state, state_reason, labels, assignees, milestone })
}

/// `PATCH /repos/{owner}/{repo}/issues/{number}`: change the fields given, bump `updated_at` and
/// answer 200 with the issue. Closing sets `closed_at` (and `state_reason`, `completed` unless
/// given); reopening clears `closed_at` (`state_reason` `reopened` unless given).
async fn update_issue(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let edit = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(edit)) => edit,
            _ => return error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        }
    };
    let u = urls(&headers);
    let mut s = gh.lock();
    let users: Vec<String> = s.users.keys().cloned().collect();
    let full = format!("{owner}/{repo}");
    let Some(key) = s.repos.keys().find(|k| k.eq_ignore_ascii_case(&full)).cloned() else {
        drop(s);
        return not_found();
    };
    let clock = {
        s.clock += 60;
        s.clock.max(now())
    };
    let Some(r) = s.repos.get_mut(&key) else { return not_found() };
    let is_pull = r.pulls.iter().any(|p| p.number == number);
    if !is_pull && !r.issues.iter().any(|i| i.number == number) {
        drop(s);
        return not_found();
    }
    let edit = match issue_edit(&edit, r, &users) {
        Ok(edit) => edit,
        Err((field, code)) => {
            drop(s);
            return validation("Issue", field, code);
        }
    };
    if is_pull {
        return match edit_pull(r, number, edit, clock) {
            Ok(p) => {
                let r = r.clone();
                let lookup = |l: &str| s.user(l);
                Json(j::pull_issue(&u, &r, &p, &lookup)).into_response()
            }
            Err((field, code)) => {
                drop(s);
                validation("Issue", field, code)
            }
        };
    }
    let Some(i) = r.issues.iter_mut().find(|i| i.number == number) else { return not_found() };
    // Strictly later than the last change, also within one second of the wall clock.
    let t = clock.max(i.updated_at + 1);
    if let Some(title) = edit.title {
        i.title = title;
    }
    if let Some(body) = edit.body {
        i.body = body;
    }
    if let Some(state) = edit.state {
        let was_closed = i.state == "closed";
        match (state.as_str(), was_closed) {
            ("closed", false) => {
                i.closed_at = Some(t);
                i.state_reason = Some(edit.state_reason.unwrap_or_else(|| "completed".to_owned()));
            }
            ("open", true) => {
                i.closed_at = None;
                i.state_reason = Some(edit.state_reason.unwrap_or_else(|| "reopened".to_owned()));
            }
            // No change of state: a reason given replaces the last one.
            _ => {
                if let Some(reason) = edit.state_reason {
                    i.state_reason = Some(reason);
                }
            }
        }
        i.state = state;
    }
    if let Some(labels) = edit.labels {
        i.labels = labels;
    }
    if let Some(assignees) = edit.assignees {
        i.assignees = assignees;
    }
    if let Some(milestone) = edit.milestone {
        i.milestone = milestone;
    }
    i.updated_at = t;
    let issue = i.clone();
    let r = r.clone();
    let lookup = |l: &str| s.user(l);
    Json(j::issue(&u, &r, &issue, &lookup)).into_response()
}

/// The edit of `PATCH /repos/{owner}/{repo}/issues/{number}` applied to a pull request (GitHub's
/// issue endpoints edit pull requests too): title, body, open or closed, labels, assignees and
/// milestone. A merged pull request cannot be reopened or closed again; `state_reason` is not kept
/// (GitHub's pull requests have none).
fn edit_pull(
    r: &mut FakeRepo,
    number: u64,
    edit: IssueEdit,
    clock: u64,
) -> Result<FakePull, (&'static str, &'static str)> {
    let Some(p) = r.pulls.iter_mut().find(|p| p.number == number) else { return Err(("number", "invalid")) };
    if let Some(state) = &edit.state {
        match (p.state.as_str(), state.as_str()) {
            ("merged", _) => return Err(("state", "custom")),
            (_, new) => p.state = new.to_owned(),
        }
    }
    if let Some(title) = edit.title {
        p.title = title;
    }
    if let Some(body) = edit.body {
        p.body = body;
    }
    if let Some(labels) = edit.labels {
        p.labels = labels;
    }
    if let Some(assignees) = edit.assignees {
        p.assignees = assignees;
    }
    if let Some(milestone) = edit.milestone {
        p.milestone = milestone;
    }
    p.updated_at = clock.max(p.updated_at + 1);
    Ok(p.clone())
}

async fn list_comments(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Q,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let u = urls(&headers);
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    let items = with_repo(&gh, &owner, &repo, |s, r| {
        r.comments
            .get(&number)
            .map(|cs| {
                cs.iter().map(|c| j::issue_comment(&u, r, number, c, &s.user(&c.user))).collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    match items {
        None => not_found(),
        Some(items) => paged(&headers, &path, raw.as_deref(), &q, items),
    }
}

async fn create_comment(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Extension(id): Extension<Identity>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let text =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("body")?.as_str().map(str::to_owned));
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return validation("IssueComment", "body", "missing_field");
    };
    let u = urls(&headers);
    let mut s = gh.lock();
    s.next_id += 1;
    let cid = s.next_id;
    let full = format!("{owner}/{repo}");
    let Some(key) = s.repos.keys().find(|k| k.eq_ignore_ascii_case(&full)).cloned() else {
        drop(s);
        return not_found();
    };
    let author = s.user(&id.0);
    let Some(r) = s.repos.get_mut(&key) else { return not_found() };
    let exists = r.issues.iter().any(|i| i.number == number) || r.pulls.iter().any(|p| p.number == number);
    if !exists {
        drop(s);
        return not_found();
    }
    let comment = FakeComment { id: cid, user: id.0.clone(), body: text, created_at: now() };
    r.comments.entry(number).or_default().push(comment.clone());
    let v = j::issue_comment(&u, r, number, &comment, &author);
    (StatusCode::CREATED, Json(v)).into_response()
}
