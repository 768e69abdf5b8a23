//! Project tools: list, find by name, get, statuses.

use std::sync::Arc;

use integration_core::{
    IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, json_object, typed_tool,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ROUTE, Shared, check_key, closest, encode_cursor, eq_ci, folded, limit, offset_cursor};
use crate::PROVIDER;
use crate::client::{JiraClient, MAX_PAGE};
use crate::models::Project;

/// Most projects the finder reads (ten pages).
const FINDER_MAX_PROJECTS: u64 = 1000;

/// Parameters of `jira_list_projects`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListProjects {
    /// Only projects whose key or name contains this text (case-insensitive).
    query: Option<String>,
    /// Most projects to return (default 50, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
    /// Return Jira's full project objects instead of the trimmed ones.
    #[serde(default)]
    raw: bool,
}

/// Parameters of `jira_project_finder`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindProject {
    /// The project's name or key; matched case-insensitively and exactly.
    #[schemars(length(min = 1))]
    project_name: String,
    /// Return Jira's full project object.
    #[serde(default)]
    raw: bool,
}

/// Parameters of `jira_get_project`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetProject {
    /// The project key (`ENG`) or id.
    key: String,
    /// Return Jira's full project object.
    #[serde(default)]
    raw: bool,
}

/// Parameters of `jira_list_project_statuses`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProjectStatuses {
    /// The project key (`ENG`) or id.
    key: String,
}

pub(super) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let s1 = shared.clone();
    let s2 = shared.clone();
    let s3 = shared.clone();
    let s4 = shared.clone();
    vec![
        typed_tool(
            ToolSpec::new(
                "jira_list_projects",
                PROVIDER,
                "List Jira projects visible to the connection, optionally filtered by text in the key or name; \
                 pages with limit and cursor.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/projects")),
            move |ctx: ToolContext, p: ListProjects| {
                let shared = s1.clone();
                async move { list_projects(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "jira_project_finder",
                PROVIDER,
                "Find one Jira project by its name or key (case-insensitive exact match). When none matches, \
                 the error lists the closest project names.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/projects")),
            move |ctx: ToolContext, p: FindProject| {
                let shared = s2.clone();
                async move { find_project(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new("jira_get_project", PROVIDER, "Get one Jira project by key or id.")
                .hints(ToolHints::read_only())
                .route(Method::Get, format!("{ROUTE}/projects/{{key}}")),
            move |ctx: ToolContext, p: GetProject| {
                let shared = s3.clone();
                async move {
                    check_key("project key", &p.key)?;
                    let client = shared.client(&ctx)?;
                    let project = client.get_project(&p.key).await?;
                    Ok(project_out(&project, &client, p.raw))
                }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "jira_list_project_statuses",
                PROVIDER,
                "List the workflow statuses of a Jira project, per issue type.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/projects/{{key}}/statuses")),
            move |ctx: ToolContext, p: ProjectStatuses| {
                let shared = s4.clone();
                async move {
                    check_key("project key", &p.key)?;
                    let client = shared.client(&ctx)?;
                    let types = client.project_statuses(&p.key).await?;
                    let issue_types: Vec<Value> = types
                        .iter()
                        .map(|t| {
                            let statuses: Vec<Value> = t["statuses"]
                                .as_array()
                                .map(Vec::as_slice)
                                .unwrap_or_default()
                                .iter()
                                .map(|s| {
                                    json!({
                                        "id": s["id"], "name": s["name"],
                                        "category": s.pointer("/statusCategory/key"),
                                    })
                                })
                                .collect();
                            json!({"issue_type": t["name"], "subtask": t["subtask"], "statuses": statuses})
                        })
                        .collect();
                    Ok(json!({ "project": p.key, "issue_types": issue_types }))
                }
            },
        ),
    ]
}

fn project_out(project: &Value, client: &JiraClient, raw: bool) -> Value {
    if raw { project.clone() } else { json!(Project::from_value(project, client)) }
}

/// Cache keys are scoped by connection name and revision, so a reconfigured connection never
/// sees another account's projects.
fn cache_key(ctx: &ToolContext, what: &str) -> String {
    format!("jira:{}:{}:{what}", ctx.connection.name, ctx.connection.revision)
}

async fn list_projects(
    shared: &Shared,
    ctx: &ToolContext,
    p: ListProjects,
) -> Result<Value, IntegrationError> {
    let limit = u64::from(limit(p.limit, 50, 1000));
    let start = offset_cursor("p", p.cursor.as_deref())?;
    let query = p.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let key =
        cache_key(ctx, &format!("projects:list:{}:{limit}:{start}:{}", p.raw, query.unwrap_or_default()));
    if ctx.use_cache
        && let Some(hit) = ctx.cache.get_value(&key).await
    {
        return Ok(Arc::unwrap_or_clone(hit));
    }
    let client = shared.client(ctx)?;
    let mut projects = Vec::new();
    let mut next = start;
    let mut more = true;
    let mut total = None;
    while more && (projects.len() as u64) < limit {
        let want = u32::try_from(limit - projects.len() as u64).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let page = client.search_projects(query, next, want).await?;
        total = page.total.or(total);
        let got = page.values.len() as u64;
        next = page.start_at + got;
        more = got > 0 && page.is_last != Some(true) && total.is_none_or(|t| next < t);
        projects.extend(page.values.iter().map(|v| project_out(v, &client, p.raw)));
    }
    let result = json_object([
        ("projects", Value::Array(projects)),
        ("total", total.into()),
        ("next_cursor", more.then(|| encode_cursor("p", &next.to_string())).into()),
    ]);
    if ctx.use_cache {
        ctx.cache.set_value(&key, Arc::new(result.clone()), shared.options.project_cache_ttl).await;
    }
    Ok(result)
}

/// A cached list under `key`, when the call allows cached answers.
async fn cached_list(ctx: &ToolContext, key: &str) -> Option<Arc<Value>> {
    if !ctx.use_cache {
        return None;
    }
    ctx.cache.get_value(key).await.filter(|hit| hit.is_array())
}

/// `list` as a shared array, kept under `key` for the project cache's time when the call allows
/// cached answers.
async fn remember(shared: &Shared, ctx: &ToolContext, key: &str, list: Vec<Value>) -> Arc<Value> {
    let list = Arc::new(Value::Array(list));
    if ctx.use_cache {
        ctx.cache.set_value(key, list.clone(), shared.options.project_cache_ttl).await;
    }
    list
}

/// Every project (up to [`FINDER_MAX_PROJECTS`]), cached per connection when allowed; concurrent
/// misses fetch it once ([`integration_core::cache::FillLocks`]; a failed fetch fails them all).
async fn all_projects(
    shared: &Shared,
    ctx: &ToolContext,
    client: &JiraClient,
) -> Result<Arc<Value>, IntegrationError> {
    let key = cache_key(ctx, "projects:all");
    let fill = || async { Ok(remember(shared, ctx, &key, fetch_all_projects(client).await?).await) };
    shared.fills.get_or_fill(&key, ctx.use_cache, || cached_list(ctx, &key), fill).await
}

/// Every project, page by page, up to [`FINDER_MAX_PROJECTS`].
async fn fetch_all_projects(client: &JiraClient) -> Result<Vec<Value>, IntegrationError> {
    let mut projects: Vec<Value> = Vec::new();
    let mut start = 0;
    loop {
        let page = client.search_projects(None, start, MAX_PAGE).await?;
        let got = page.values.len() as u64;
        start = page.start_at + got;
        projects.extend(page.values);
        let last = got == 0 || page.is_last == Some(true) || page.total.is_some_and(|t| start >= t);
        if last || start >= FINDER_MAX_PROJECTS {
            break;
        }
    }
    Ok(projects)
}

/// [`all_projects`] trimmed ([`Project`]s as JSON, same order), cached per connection when allowed.
/// A trimmed project keeps the raw one's `key` and `name`, so both lists match the same way.
async fn all_project_views(
    shared: &Shared,
    ctx: &ToolContext,
    client: &JiraClient,
) -> Result<Arc<Value>, IntegrationError> {
    let key = cache_key(ctx, "projects:all:views");
    if let Some(hit) = cached_list(ctx, &key).await {
        return Ok(hit);
    }
    let raw = all_projects(shared, ctx, client).await?;
    let views: Vec<Value> = raw
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| project_out(v, client, false))
        .collect();
    Ok(remember(shared, ctx, &key, views).await)
}

async fn find_project(shared: &Shared, ctx: &ToolContext, p: FindProject) -> Result<Value, IntegrationError> {
    let wanted = p.project_name.trim();
    if wanted.is_empty() {
        return Err(IntegrationError::invalid_input(PROVIDER, "project_name must not be empty"));
    }
    // A name found is kept on its own (same time to live as the list): the next call for it reads
    // one project instead of the whole list, which with a Redis cache is up to a thousand projects
    // fetched and parsed per call. Keyed by the name as `eq_ci` compares it (lower-cased per
    // character), so every spelling that matches the same project shares the entry; only names that
    // exist are kept. An entry made just before the list expires may outlive it by one time to live.
    let folded: String = folded(wanted).collect();
    let shape = if p.raw { "raw" } else { "view" };
    let found_key = cache_key(ctx, &format!("projects:found:{shape}:{folded}"));
    if ctx.use_cache
        && let Some(hit) = ctx.cache.get_value(&found_key).await.filter(|hit| hit.is_object())
    {
        return Ok(Arc::unwrap_or_clone(hit));
    }
    let client = shared.client(ctx)?;
    // The trimmed list is kept beside the raw one, so a hit only picks and copies one project.
    let all = if p.raw {
        all_projects(shared, ctx, &client).await?
    } else {
        all_project_views(shared, ctx, &client).await?
    };
    let projects: &[Value] = all.as_array().map(Vec::as_slice).unwrap_or_default();
    fn field<'v>(v: &'v Value, k: &str) -> &'v str {
        v.get(k).and_then(Value::as_str).unwrap_or_default()
    }
    let found = projects
        .iter()
        .find(|v| eq_ci(field(v, "name"), wanted))
        .or_else(|| projects.iter().find(|v| eq_ci(field(v, "key"), wanted)));
    match found {
        Some(project) => {
            if ctx.use_cache {
                let ttl = shared.options.project_cache_ttl;
                ctx.cache.set_value(&found_key, Arc::new(project.clone()), ttl).await;
            }
            Ok(project.clone())
        }
        None => {
            let suggestions = closest(wanted, projects.iter().map(|v| field(v, "name")), 5);
            let message = if suggestions.is_empty() {
                format!("no Jira project is named '{wanted}'")
            } else {
                format!("no Jira project is named '{wanted}'; closest: {}", suggestions.join(", "))
            };
            Err(IntegrationError::not_found(PROVIDER, message)
                .with_details(json!({ "project_name": wanted, "closest": suggestions })))
        }
    }
}
