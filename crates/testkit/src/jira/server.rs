//! The fake's HTTP side: routes, authentication, Jira-shaped answers and errors.

#![allow(
    clippy::result_large_err,
    reason = "handlers return error responses through `?`; a test fake, not a hot path"
)]

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::jql;
use super::{
    FakeComment, FakeIssue, FakeJira, ISSUE_TYPES, IssueType, PRIORITIES, STATUSES, State, Status,
    TRANSITIONS,
};

/// The authenticated caller's account id.
#[derive(Debug, Clone)]
struct Caller(String);

/// The site URL as the client sees it (from the `Host` header), for `self` links.
#[derive(Debug, Clone)]
struct Site(String);

type Answer = Result<Response, Response>;

/// The fake Jira as an axum router. Keep a clone of `state` to seed and inspect it.
pub fn router(state: FakeJira) -> Router {
    let api = Router::new()
        .route("/rest/api/3/myself", get(myself))
        .route("/rest/api/3/project/search", get(search_projects))
        .route("/rest/api/3/project/{key}", get(get_project))
        .route("/rest/api/3/project/{key}/statuses", get(project_statuses))
        .route("/rest/api/3/search/jql", post(search_jql))
        .route("/rest/api/3/search", get(removed_search).post(removed_search))
        .route("/rest/api/3/issue", post(create_issue))
        .route("/rest/api/3/issue/{key}", get(get_issue).put(edit_issue))
        .route("/rest/api/3/issue/{key}/comment", post(add_comment))
        .route("/rest/api/3/issue/{key}/transitions", get(list_transitions).post(do_transition))
        .route("/rest/api/3/issue/{key}/assignee", put(assign_issue))
        .route("/rest/api/3/user/search", get(find_users))
        .route("/rest/api/3/users/search", get(all_users))
        .route("/rest/api/3/user/assignable/search", get(assignable_users))
        .fallback(unhandled)
        .layer(middleware::from_fn_with_state(state.clone(), gate));
    api.with_state(state)
}

/// Jira's `ErrorCollection` answer.
fn error(status: StatusCode, messages: &[&str], errors: Value) -> Response {
    let body = json!({ "errorMessages": messages, "errors": errors });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, &[message], json!({}))
}

fn field_errors(errors: Map<String, Value>) -> Response {
    error(StatusCode::BAD_REQUEST, &[], Value::Object(errors))
}

fn ok_json(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn no_issue() -> Response {
    error(
        StatusCode::NOT_FOUND,
        &["Issue does not exist or you do not have permission to see it."],
        json!({}),
    )
}

/// Checks credentials and records authenticated calls.
async fn gate(AxumState(jira): AxumState<FakeJira>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("fake-jira.invalid")
        .to_owned();
    let account = {
        let s = jira.peek();
        let account = authenticate(&s, request.headers());
        if account.is_some() {
            s.calls.lock().unwrap_or_else(|e| e.into_inner()).push((request.method().to_string(), path));
        }
        account
    };
    let Some(account) = account else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            &["Client must be authenticated to access this resource."],
            json!({}),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"protected-area\""),
        );
        return response;
    };
    request.extensions_mut().insert(Caller(account));
    request.extensions_mut().insert(Site(format!("http://{host}")));
    next.run(request).await
}

fn authenticate(s: &State, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, token) = decoded.split_once(':')?;
        return s.basic.get(&(user.to_owned(), token.to_owned())).cloned();
    }
    if let Some(token) = value.strip_prefix("Bearer ") {
        return s.bearer.get(token.trim()).cloned();
    }
    None
}

async fn unhandled(request: Request) -> Response {
    let message = format!("fake jira has no route for {} {}", request.method(), request.uri().path());
    (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
}

async fn removed_search() -> Response {
    error(
        StatusCode::GONE,
        &["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. \
           A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"],
        json!({}),
    )
}

// ---------------------------------------------------------------------------------------------
// JSON shapes (components/schemas of the official description)

fn avatars(site: &str, kind: &str, id: &str) -> Value {
    let mut out = Map::new();
    for (size, px) in [("16x16", "xsmall"), ("24x24", "small"), ("32x32", "medium"), ("48x48", "large")] {
        out.insert(size.into(), json!(format!("{site}/secure/{kind}avatar?size={px}&id={id}")));
    }
    Value::Object(out)
}

/// A `User` (also valid as `UserDetails`).
fn user_json(s: &State, site: &str, account_id: &str) -> Value {
    let (name, email, active) = s
        .user(account_id)
        .map(|u| (u.display_name.clone(), u.email.clone(), u.active))
        .unwrap_or_else(|| ("Former user".to_owned(), String::new(), false));
    json!({
        "self": format!("{site}/rest/api/3/user?accountId={account_id}"),
        "accountId": account_id,
        "accountType": "atlassian",
        "emailAddress": email,
        "displayName": name,
        "active": active,
        "timeZone": "Etc/UTC",
        "avatarUrls": avatars(site, "user", account_id),
    })
}

fn user_details(s: &State, site: &str, account_id: &str) -> Value {
    let mut v = user_json(s, site, account_id);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("locale");
    }
    v
}

fn status_json(site: &str, status: &Status) -> Value {
    json!({
        "self": format!("{site}/rest/api/3/status/{}", status.id),
        "description": "",
        "iconUrl": format!("{site}/images/icons/statuses/generic.png"),
        "name": status.name,
        "id": status.id,
        "statusCategory": {
            "self": format!("{site}/rest/api/3/statuscategory/{}", status.category_id),
            "id": status.category_id,
            "key": status.category_key,
            "colorName": status.color,
            "name": status.category_name,
        }
    })
}

fn issue_type_json(site: &str, t: &IssueType) -> Value {
    json!({
        "self": format!("{site}/rest/api/3/issuetype/{}", t.id),
        "id": t.id,
        "description": format!("A {}", t.name.to_lowercase()),
        "iconUrl": format!("{site}/images/icons/issuetypes/{}.svg", t.name.to_lowercase()),
        "name": t.name,
        "subtask": t.subtask,
        "avatarId": 10300,
        "hierarchyLevel": t.level,
    })
}

fn project_json(s: &State, site: &str, p: &super::FakeProject, expand: &str) -> Value {
    let mut v = json!({
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
        "self": format!("{site}/rest/api/3/project/{}", p.id),
        "id": p.id,
        "key": p.key,
        "name": p.name,
        "avatarUrls": avatars(site, "project", &p.id),
        "projectTypeKey": "software",
        "simplified": false,
        "style": "classic",
        "isPrivate": false,
        "properties": {},
    });
    let full = expand.is_empty();
    if full || expand.contains("description") {
        v["description"] = json!(p.description);
    }
    if full || expand.contains("lead") {
        v["lead"] = user_json(s, site, &p.lead);
    }
    if full || expand.contains("issueTypes") {
        v["issueTypes"] = json!(ISSUE_TYPES.iter().map(|t| issue_type_json(site, t)).collect::<Vec<_>>());
    }
    v
}

fn comment_json(s: &State, site: &str, issue: &FakeIssue, c: &FakeComment) -> Value {
    json!({
        "self": format!("{site}/rest/api/3/issue/{}/comment/{}", issue.id, c.id),
        "id": c.id,
        "author": user_details(s, site, &c.author),
        "body": c.body,
        "updateAuthor": user_details(s, site, &c.author),
        "created": timestamp(c.created),
        "updated": timestamp(c.created),
        "jsdPublic": true,
    })
}

/// All fields of an issue, by field id.
fn issue_fields(s: &State, site: &str, issue: &FakeIssue) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("summary".into(), json!(issue.summary));
    f.insert("description".into(), issue.description.clone().unwrap_or(Value::Null));
    f.insert("status".into(), status_json(site, issue.status));
    f.insert("issuetype".into(), issue_type_json(site, issue.issue_type));
    if let Some(p) = s.project(&issue.project) {
        f.insert(
            "project".into(),
            json!({
                "self": format!("{site}/rest/api/3/project/{}", p.id),
                "id": p.id, "key": p.key, "name": p.name,
                "projectTypeKey": "software", "simplified": false,
                "avatarUrls": avatars(site, "project", &p.id),
            }),
        );
    }
    let user = |id: &Option<String>| id.as_deref().map(|a| user_details(s, site, a)).unwrap_or(Value::Null);
    f.insert("assignee".into(), user(&issue.assignee));
    f.insert("reporter".into(), user(&issue.reporter));
    f.insert("creator".into(), user(&issue.reporter));
    f.insert(
        "priority".into(),
        issue
            .priority
            .map(|p| {
                json!({"self": format!("{site}/rest/api/3/priority/{}", p.id), "id": p.id, "name": p.name,
                       "iconUrl": format!("{site}/images/icons/priorities/{}.svg", p.name.to_lowercase())})
            })
            .unwrap_or(Value::Null),
    );
    f.insert("labels".into(), json!(issue.labels));
    if let Some(parent) = issue.parent.as_deref().and_then(|k| s.issue_index(k)).map(|i| &s.issues[i]) {
        f.insert(
            "parent".into(),
            json!({"id": parent.id, "key": parent.key, "self": format!("{site}/rest/api/3/issue/{}", parent.id),
                   "fields": {"summary": parent.summary, "status": status_json(site, parent.status)}}),
        );
    }
    f.insert("created".into(), json!(timestamp(issue.created)));
    f.insert("updated".into(), json!(timestamp(issue.updated)));
    let comments: Vec<Value> = issue.comments.iter().map(|c| comment_json(s, site, issue, c)).collect();
    f.insert(
        "comment".into(),
        json!({"comments": comments, "self": format!("{site}/rest/api/3/issue/{}/comment", issue.id),
               "maxResults": comments.len(), "total": comments.len(), "startAt": 0}),
    );
    for (k, v) in &issue.extra {
        f.insert(k.clone(), v.clone());
    }
    f
}

/// Which fields a `fields` list selects: `*all`/`*navigable`, names, `-name` exclusions.
fn select_fields(all: Map<String, Value>, wanted: &[String]) -> Map<String, Value> {
    let everything = wanted.iter().any(|w| w == "*all" || w == "*navigable");
    let excluded: Vec<&str> = wanted.iter().filter_map(|w| w.strip_prefix('-')).collect();
    all.into_iter()
        .filter(|(k, _)| (everything || wanted.iter().any(|w| w == k)) && !excluded.contains(&k.as_str()))
        .collect()
}

/// An `IssueBean`.
fn issue_json(s: &State, site: &str, issue: &FakeIssue, fields: &[String]) -> Value {
    let all = issue_fields(s, site, issue);
    let selected = if fields.is_empty() { all } else { select_fields(all, fields) };
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": issue.id,
        "key": issue.key,
        "self": format!("{site}/rest/api/3/issue/{}", issue.id),
        "fields": selected,
    })
}

// ---------------------------------------------------------------------------------------------
// Time

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Jira's timestamp format: `2024-01-31T12:34:56.789+0000`.
pub(crate) fn timestamp(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, sec, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.{milli:03}+0000")
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| bad_request(&format!("Unexpected character in request body: {e}")))
}

fn number(q: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, Response> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| bad_request(&format!("The '{name}' parameter must be a number."))),
    }
}

async fn myself(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Caller(me)): Extension<Caller>,
    Extension(Site(site)): Extension<Site>,
) -> Response {
    let s = jira.peek();
    let mut user = user_json(&s, &site, &me);
    user["locale"] = json!("en_US");
    ok_json(StatusCode::OK, user)
}

async fn search_projects(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let start = number(&q, "startAt", 0)?;
    let max = number(&q, "maxResults", 50)?.min(100);
    let query = q.get("query").map(|v| v.to_lowercase()).unwrap_or_default();
    let expand = q.get("expand").cloned().unwrap_or_else(|| "none".to_owned());
    let s = jira.peek();
    let mut matching: Vec<&super::FakeProject> = s
        .projects
        .iter()
        .filter(|p| {
            query.is_empty()
                || p.key.to_lowercase().contains(&query)
                || p.name.to_lowercase().contains(&query)
        })
        .collect();
    match q.get("orderBy").map(String::as_str) {
        Some("name" | "+name") => matching.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("-name") => matching.sort_by(|a, b| b.name.cmp(&a.name)),
        Some("-key") => matching.sort_by(|a, b| b.key.cmp(&a.key)),
        _ => matching.sort_by(|a, b| a.key.cmp(&b.key)),
    }
    let total = matching.len() as u64;
    let page: Vec<Value> = matching
        .iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .map(|p| project_json(&s, &site, p, &expand))
        .collect();
    let is_last = start + page.len() as u64 >= total;
    let mut body = json!({
        "self": format!("{site}/rest/api/3/project/search?startAt={start}&maxResults={max}"),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": page,
    });
    if !is_last {
        body["nextPage"] =
            json!(format!("{site}/rest/api/3/project/search?startAt={}&maxResults={max}", start + max));
    }
    Ok(ok_json(StatusCode::OK, body))
}

async fn get_project(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Path(key): Path<String>,
) -> Response {
    let s = jira.peek();
    match s.project(&key) {
        Some(p) => ok_json(StatusCode::OK, project_json(&s, &site, p, "")),
        None => error(
            StatusCode::NOT_FOUND,
            &[&format!("No project could be found with key '{key}'.")],
            json!({}),
        ),
    }
}

async fn project_statuses(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Path(key): Path<String>,
) -> Response {
    let s = jira.peek();
    if s.project(&key).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            &[&format!("No project could be found with key '{key}'.")],
            json!({}),
        );
    }
    let types: Vec<Value> = ISSUE_TYPES
        .iter()
        .map(|t| {
            json!({
                "self": format!("{site}/rest/api/3/issuetype/{}", t.id),
                "id": t.id,
                "name": t.name,
                "subtask": t.subtask,
                "statuses": STATUSES.iter().map(|st| status_json(&site, st)).collect::<Vec<_>>(),
            })
        })
        .collect();
    ok_json(StatusCode::OK, json!(types))
}

const SEARCH_KEYS: &[&str] = &[
    "expand",
    "fields",
    "fieldsByKeys",
    "jql",
    "maxResults",
    "nextPageToken",
    "properties",
    "reconcileIssues",
];

async fn search_jql(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Caller(me)): Extension<Caller>,
    Extension(Site(site)): Extension<Site>,
    body: Bytes,
) -> Answer {
    let body = parse_body(&body)?;
    let Some(obj) = body.as_object() else { return Err(bad_request("The request body must be an object.")) };
    if let Some(unknown) = obj.keys().find(|k| !SEARCH_KEYS.contains(&k.as_str())) {
        return Err(bad_request(&format!(
            "Unrecognized field \"{unknown}\" (class com.atlassian.jira.rest.v2.search.SearchAndReconcileRequestBean), not marked as ignorable"
        )));
    }
    let text = obj.get("jql").and_then(Value::as_str).unwrap_or_default();
    let fields: Vec<String> = match obj.get("fields") {
        None => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .collect(),
        Some(_) => return Err(bad_request("The 'fields' property must be an array of strings.")),
    };
    let id_only = fields.is_empty() || fields == ["id"];
    let cap = if id_only { 5000 } else { 100 };
    let max = obj
        .get("maxResults")
        .map(|v| v.as_u64().ok_or(()))
        .transpose()
        .map_err(|()| bad_request("maxResults must be an integer."))?;
    let max = max.unwrap_or(50).clamp(1, cap) as usize;
    let offset = match obj.get("nextPageToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => decode_token(token)
            .ok_or_else(|| bad_request("The provided next page token is invalid or expired."))?,
    };
    let query = jql::parse(text).map_err(|e| bad_request(&format!("Error in the JQL Query: {e}")))?;
    // A search reads: searches run side by side and keep the rendered-issue cache.
    let s = jira.peek();
    let now = s.current();
    if let Some(filter) = &query.filter {
        jql::validate(filter, &s).map_err(|e| bad_request(&e))?;
    }
    let mut found: Vec<&FakeIssue> = s
        .issues
        .iter()
        .filter(|i| query.filter.as_ref().is_none_or(|f| jql::matches(f, i, &s, &me, now)))
        .collect();
    for (field, asc) in query.order.iter().rev() {
        found.sort_by(|a, b| {
            let ord = match field.as_str() {
                "created" => a.created.cmp(&b.created),
                "updated" => a.updated.cmp(&b.updated),
                "priority" => a.priority.map(|p| p.id).cmp(&b.priority.map(|p| p.id)),
                "summary" => a.summary.cmp(&b.summary),
                "status" => a.status.name.cmp(b.status.name),
                _ => a.id.parse::<u64>().unwrap_or(0).cmp(&b.id.parse::<u64>().unwrap_or(0)),
            };
            if *asc { ord } else { ord.reverse() }
        });
    }
    let page: Vec<Value> = found
        .iter()
        .skip(offset)
        .take(max)
        .map(|i| if id_only { json!({"id": i.id}) } else { issue_json(&s, &site, i, &fields) })
        .collect();
    let next = offset + page.len();
    let is_last = next >= found.len();
    let mut out = json!({ "issues": page, "isLast": is_last });
    if !is_last {
        out["nextPageToken"] = json!(encode_token(next));
    }
    Ok(ok_json(StatusCode::OK, out))
}

fn encode_token(offset: usize) -> String {
    format!("CAEaAggD{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset={offset}")))
}

fn decode_token(token: &str) -> Option<usize> {
    let raw =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.strip_prefix("CAEaAggD")?).ok()?;
    String::from_utf8(raw).ok()?.strip_prefix("offset=")?.parse().ok()
}

async fn get_issue(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = jira.peek();
    let Some(i) = s.issue_index(&key) else { return no_issue() };
    let cache_key = (site, s.issues[i].key.clone(), q.get("fields").cloned().unwrap_or_default());
    let cached = s.rendered.lock().unwrap_or_else(|e| e.into_inner()).get(&cache_key).cloned();
    let body = match cached {
        Some(body) => body,
        None => {
            // Rendered outside the cache's lock; two readers may render the same issue once each.
            let fields: Vec<String> =
                cache_key.2.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect();
            let body = bytes::Bytes::from(issue_json(&s, &cache_key.0, &s.issues[i], &fields).to_string());
            s.rendered.lock().unwrap_or_else(|e| e.into_inner()).insert(cache_key, body.clone());
            body
        }
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn is_adf(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").is_some()
        && v.get("content").is_some_and(Value::is_array)
}

fn pick<'a, T>(
    items: &'a [T],
    v: &Value,
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    if let Some(want) = v.get("id").and_then(Value::as_str) {
        return items.iter().find(|t| id(t) == want);
    }
    let want = v.get("name").and_then(Value::as_str)?;
    items.iter().find(|t| name(t).eq_ignore_ascii_case(want))
}

/// Apply `fields` of a create or edit to an issue; field errors are collected Jira-style.
fn apply_fields(
    s: &State,
    issue: &mut FakeIssue,
    fields: &Map<String, Value>,
    errors: &mut Map<String, Value>,
) {
    for (name, value) in fields {
        match name.as_str() {
            "project" | "issuetype" => {} // handled by create
            "summary" => match value.as_str().map(str::trim) {
                Some(v) if !v.is_empty() && v.chars().count() <= 255 => issue.summary = v.to_owned(),
                Some(v) if !v.is_empty() => {
                    errors.insert("summary".into(), json!("Summary must be less than 255 characters."));
                }
                _ => {
                    errors.insert("summary".into(), json!("You must specify a summary of the issue."));
                }
            },
            "description" => {
                if value.is_null() {
                    issue.description = None;
                } else if is_adf(value) {
                    issue.description = Some(value.clone());
                } else {
                    errors.insert(
                        "description".into(),
                        json!("Operation value must be an Atlassian Document (see the Atlassian Document Format)"),
                    );
                }
            }
            "assignee" => match value.get("accountId") {
                Some(Value::Null) => issue.assignee = None,
                Some(Value::String(id)) if s.user(id).is_some() => issue.assignee = Some(id.clone()),
                _ if value.is_null() => issue.assignee = None,
                _ => {
                    errors.insert("assignee".into(), json!("Specify a valid value for assignee"));
                }
            },
            "priority" => match pick(&PRIORITIES, value, |p| p.id, |p| p.name) {
                Some(p) => issue.priority = Some(p),
                None => {
                    errors.insert(
                        "priority".into(),
                        json!("Specify the Priority (id or name) in the string format"),
                    );
                }
            },
            "labels" => match value.as_array() {
                Some(labels) => {
                    let labels: Vec<String> =
                        labels.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect();
                    if let Some(bad) =
                        labels.iter().find(|l| l.is_empty() || l.chars().any(char::is_whitespace))
                    {
                        errors.insert(
                            "labels".into(),
                            json!(format!("The label '{bad}' contains spaces which is invalid.")),
                        );
                    } else {
                        issue.labels = labels;
                    }
                }
                None => {
                    errors.insert("labels".into(), json!("data was not an array"));
                }
            },
            "parent" => {
                let key =
                    value.get("key").or_else(|| value.get("id")).and_then(Value::as_str).unwrap_or_default();
                match s.issue_index(key) {
                    Some(i) => issue.parent = Some(s.issues[i].key.clone()),
                    None => {
                        errors.insert("parent".into(), json!("Could not find issue by id or key."));
                    }
                }
            }
            "duedate" | "environment" | "components" | "fixVersions" | "versions" => {
                issue.extra.insert(name.clone(), value.clone());
            }
            custom if custom.starts_with("customfield_") => {
                issue.extra.insert(name.clone(), value.clone());
            }
            other => {
                errors.insert(
                    other.to_owned(),
                    json!(format!(
                        "Field '{other}' cannot be set. It is not on the appropriate screen, or unknown."
                    )),
                );
            }
        }
    }
}

async fn create_issue(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Caller(me)): Extension<Caller>,
    Extension(Site(site)): Extension<Site>,
    body: Bytes,
) -> Answer {
    let body = parse_body(&body)?;
    let Some(fields) = body.get("fields").and_then(Value::as_object) else {
        return Err(bad_request("Can not deserialize instance of IssueUpdateBean: 'fields' is missing"));
    };
    let mut s = jira.lock();
    let mut errors = Map::new();
    let project = fields
        .get("project")
        .and_then(|p| p.get("key").or_else(|| p.get("id")))
        .and_then(Value::as_str)
        .and_then(|k| s.project(k))
        .map(|p| p.key.clone());
    if project.is_none() {
        errors.insert("project".into(), json!("valid project is required"));
    }
    let issue_type = match fields.get("issuetype") {
        None => {
            errors.insert("issuetype".into(), json!("Specify an issue type"));
            None
        }
        Some(v) => {
            let t = pick(&ISSUE_TYPES, v, |t| t.id, |t| t.name);
            if t.is_none() {
                errors.insert("issuetype".into(), json!("The issue type selected is invalid."));
            }
            t
        }
    };
    if !fields.contains_key("summary") {
        errors.insert("summary".into(), json!("You must specify a summary of the issue."));
    }
    let now = s.now();
    let mut issue = FakeIssue {
        id: String::new(),
        key: String::new(),
        project: project.clone().unwrap_or_default(),
        summary: String::new(),
        description: None,
        issue_type: issue_type.unwrap_or(&ISSUE_TYPES[0]),
        status: &STATUSES[0],
        assignee: None,
        reporter: Some(me),
        priority: Some(&PRIORITIES[2]),
        labels: vec![],
        parent: None,
        created: now,
        updated: now,
        comments: vec![],
        extra: Map::new(),
    };
    apply_fields(&s, &mut issue, fields, &mut errors);
    if !errors.is_empty() {
        return Err(field_errors(errors));
    }
    s.next_issue_id += 1;
    issue.id = (10000 + s.next_issue_id).to_string();
    let Some(p) = s.projects.iter_mut().find(|p| Some(&p.key) == project.as_ref()) else {
        return Err(field_errors(Map::from_iter([(
            "project".to_owned(),
            json!("valid project is required"),
        )])));
    };
    issue.key = format!("{}-{}", p.key, p.next_number);
    p.next_number += 1;
    let out = json!({
        "id": issue.id,
        "key": issue.key,
        "self": format!("{site}/rest/api/3/issue/{}", issue.id),
    });
    s.issues.push(issue);
    Ok(ok_json(StatusCode::CREATED, out))
}

async fn edit_issue(AxumState(jira): AxumState<FakeJira>, Path(key): Path<String>, body: Bytes) -> Answer {
    let body = parse_body(&body)?;
    let mut s = jira.lock();
    let Some(i) = s.issue_index(&key) else { return Err(no_issue()) };
    let mut issue = s.issues[i].clone();
    let mut errors = Map::new();
    let fields = body.get("fields").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(bad) = fields.keys().find(|k| *k == "project" || *k == "issuetype") {
        errors.insert(
            bad.clone(),
            json!(format!("Field '{bad}' cannot be set. It is not on the appropriate screen, or unknown.")),
        );
    }
    apply_fields(&s, &mut issue, &fields, &mut errors);
    if let Some(update) = body.get("update").and_then(Value::as_object) {
        for (name, ops) in update {
            if name != "labels" {
                errors.insert(
                    name.clone(),
                    json!(format!("Field '{name}' cannot be updated with operations here.")),
                );
                continue;
            }
            for op in ops.as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(l) = op.get("add").and_then(Value::as_str) {
                    if !issue.labels.iter().any(|x| x == l) {
                        issue.labels.push(l.to_owned());
                    }
                } else if let Some(l) = op.get("remove").and_then(Value::as_str) {
                    issue.labels.retain(|x| x != l);
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(field_errors(errors));
    }
    issue.updated = s.now();
    s.issues[i] = issue;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn add_comment(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Caller(me)): Extension<Caller>,
    Extension(Site(site)): Extension<Site>,
    Path(key): Path<String>,
    body: Bytes,
) -> Answer {
    let body = parse_body(&body)?;
    let mut s = jira.lock();
    let Some(i) = s.issue_index(&key) else { return Err(no_issue()) };
    let Some(adf) = body.get("body").filter(|b| is_adf(b)) else {
        return Err(field_errors(Map::from_iter([(
            "comment".to_owned(),
            json!("Comment body is not valid: it must be an Atlassian Document"),
        )])));
    };
    let now = s.now();
    s.next_comment_id += 1;
    let comment = FakeComment {
        id: (10000 + s.next_comment_id).to_string(),
        author: me,
        body: adf.clone(),
        created: now,
    };
    s.issues[i].comments.push(comment.clone());
    s.issues[i].updated = now;
    let out = comment_json(&s, &site, &s.issues[i], &comment);
    Ok(ok_json(StatusCode::CREATED, out))
}

fn available(status: &Status) -> impl Iterator<Item = &'static super::WorkflowTransition> + '_ {
    TRANSITIONS.iter().filter(move |t| t.from.contains(&status.name))
}

async fn list_transitions(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Path(key): Path<String>,
) -> Response {
    let s = jira.peek();
    let Some(i) = s.issue_index(&key) else { return no_issue() };
    let transitions: Vec<Value> = available(s.issues[i].status)
        .filter_map(|t| {
            let to = super::status_named(t.to)?;
            Some(json!({
                "id": t.id, "name": t.name, "to": status_json(&site, to),
                "hasScreen": false, "isGlobal": false, "isInitial": false,
                "isAvailable": true, "isConditional": false, "isLooped": false,
            }))
        })
        .collect();
    ok_json(StatusCode::OK, json!({ "expand": "transitions", "transitions": transitions }))
}

async fn do_transition(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Caller(me)): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Answer {
    let body = parse_body(&body)?;
    let mut s = jira.lock();
    let Some(i) = s.issue_index(&key) else { return Err(no_issue()) };
    let Some(id) = body.pointer("/transition/id").and_then(Value::as_str) else {
        return Err(bad_request("Missing 'transition' identifier"));
    };
    let Some(transition) = available(s.issues[i].status).find(|t| t.id == id) else {
        return Err(bad_request(&format!("Transition id '{id}' is not valid for this issue.")));
    };
    let Some(to) = super::status_named(transition.to) else {
        return Err(bad_request("workflow misconfigured"));
    };
    let mut issue = s.issues[i].clone();
    let mut errors = Map::new();
    if let Some(fields) = body.get("fields").and_then(Value::as_object) {
        apply_fields(&s, &mut issue, fields, &mut errors);
    }
    let now = s.now();
    for op in body.pointer("/update/comment").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
    {
        match op.pointer("/add/body") {
            Some(b) if is_adf(b) => {
                s.next_comment_id += 1;
                let id = (10000 + s.next_comment_id).to_string();
                issue.comments.push(FakeComment { id, author: me.clone(), body: b.clone(), created: now });
            }
            _ => {
                errors.insert(
                    "comment".into(),
                    json!("Comment body is not valid: it must be an Atlassian Document"),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(field_errors(errors));
    }
    issue.status = to;
    issue.updated = now;
    s.issues[i] = issue;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn assign_issue(AxumState(jira): AxumState<FakeJira>, Path(key): Path<String>, body: Bytes) -> Answer {
    let body = parse_body(&body)?;
    let mut s = jira.lock();
    let Some(i) = s.issue_index(&key) else { return Err(no_issue()) };
    let assignee = match body.get("accountId") {
        Some(Value::Null) | None if body.get("name").is_none() => None,
        Some(Value::String(id)) if s.user(id).is_some() => Some(id.clone()),
        Some(Value::String(id)) => {
            return Err(bad_request(&format!("User '{id}' cannot be assigned issues.")));
        }
        _ => return Err(bad_request("'accountId' must be a string or null")),
    };
    s.issues[i].assignee = assignee;
    s.issues[i].updated = s.last_time + 1;
    s.last_time += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn users_page(s: &State, site: &str, ids: Vec<String>, q: &HashMap<String, String>, max_cap: u64) -> Answer {
    let start = number(q, "startAt", 0)?;
    let max = number(q, "maxResults", 50)?.min(max_cap);
    let users: Vec<Value> = ids
        .iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .map(|id| user_json(s, site, id))
        .collect();
    Ok(ok_json(StatusCode::OK, json!(users)))
}

fn matching_users(s: &State, query: Option<&str>) -> Vec<String> {
    let query = query.map(str::to_lowercase).unwrap_or_default();
    s.users
        .iter()
        .filter(|u| {
            query.is_empty()
                || u.display_name.to_lowercase().contains(&query)
                || u.email.to_lowercase().contains(&query)
        })
        .map(|u| u.account_id.clone())
        .collect()
}

async fn find_users(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let s = jira.peek();
    let ids = match (q.get("query"), q.get("accountId")) {
        (Some(_), Some(_)) => {
            return Err(bad_request("The 'query' and 'accountId' parameters cannot be used together."));
        }
        (None, Some(id)) => s.user(id).map(|u| vec![u.account_id.clone()]).unwrap_or_default(),
        (Some(query), None) => matching_users(&s, Some(query)),
        (None, None) => {
            return Err(bad_request("One of 'accountId', 'query' or 'property' must be specified."));
        }
    };
    users_page(&s, &site, ids, &q, 1000)
}

async fn all_users(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let s = jira.peek();
    let ids = matching_users(&s, None);
    users_page(&s, &site, ids, &q, 1000)
}

async fn assignable_users(
    AxumState(jira): AxumState<FakeJira>,
    Extension(Site(site)): Extension<Site>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let s = jira.peek();
    match (q.get("project"), q.get("issueKey")) {
        (None, None) => {
            return Err(bad_request("One of 'issueKey', 'issueId' or 'project' must be specified."));
        }
        (Some(p), _) if s.project(p).is_none() => {
            return Err(error(
                StatusCode::NOT_FOUND,
                &[&format!("No project could be found with key '{p}'.")],
                json!({}),
            ));
        }
        (_, Some(k)) if s.issue_index(k).is_none() => return Err(no_issue()),
        _ => {}
    }
    let ids = matching_users(&s, q.get("query").map(String::as_str));
    users_page(&s, &site, ids, &q, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_tokens() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(timestamp(1_706_704_496_789), "2024-01-31T12:34:56.789+0000");
        assert_eq!(days_from_civil(2024, 1, 31), 19_753);
        assert_eq!(decode_token(&encode_token(150)), Some(150));
        assert_eq!(decode_token("garbage"), None);
    }

    async fn get(app: &Router, uri: &str, host: &str) -> Value {
        use tower::ServiceExt as _;
        let request = Request::builder()
            .uri(uri)
            .header(header::HOST, host)
            .header(header::AUTHORIZATION, format!("Bearer {}", FakeJira::PERSONAL_ACCESS_TOKEN))
            .body(axum::body::Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn rendered_issues_are_never_served_stale() {
        let jira = FakeJira::demo();
        let app = router(jira.clone());
        let first = get(&app, "/rest/api/3/issue/ENG-1?fields=summary,labels", "a.test").await;
        assert_eq!(first["fields"]["summary"], "Login page crashes on submit");
        assert!(first["fields"].get("status").is_none(), "only the fields asked for");
        // Cached per site and field list.
        let other = get(&app, "/rest/api/3/issue/ENG-1", "b.test").await;
        assert!(other["self"].as_str().is_some_and(|s| s.starts_with("http://b.test/")), "{other}");
        assert!(other["fields"].get("status").is_some());
        // Any change through the state drops the cache.
        jira.lock().issues[0].summary = "Changed".to_owned();
        let again = get(&app, "/rest/api/3/issue/ENG-1?fields=summary,labels", "a.test").await;
        assert_eq!(again["fields"]["summary"], "Changed");
    }

    #[tokio::test]
    #[expect(clippy::await_holding_lock, reason = "the test holds a reader on purpose while requests run")]
    async fn reads_do_not_wait_for_each_other() {
        use tower::ServiceExt as _;
        let jira = FakeJira::demo();
        let app = router(jira.clone());
        // Another reader holds the state for the whole time: a search and an issue read still
        // answer (under one exclusive lock they would wait for it, and time out here).
        let reader = jira.peek();
        let search = Request::post("/rest/api/3/search/jql")
            .header(header::HOST, "a.test")
            .header(header::AUTHORIZATION, format!("Bearer {}", FakeJira::PERSONAL_ACCESS_TOKEN))
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(r#"{"jql": "project = ENG", "fields": ["summary"]}"#))
            .expect("request");
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), app.clone().oneshot(search))
            .await
            .expect("the search did not wait for the other reader")
            .expect("infallible");
        assert_eq!(answer.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20).await.expect("body");
        let found: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(found["issues"].as_array().map(Vec::len), Some(3), "{found}");
        let issue = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            get(&app, "/rest/api/3/issue/ENG-2?fields=summary", "a.test"),
        )
        .await
        .expect("the issue read did not wait for the other reader");
        assert_eq!(issue["fields"]["summary"], "Upgrade the database driver");
        assert_eq!(jira.calls_to("/rest/api/3/"), 2, "both calls recorded");
        drop(reader);
    }
}
