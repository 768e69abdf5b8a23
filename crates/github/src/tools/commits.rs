//! Commits: history, one commit with its files, comparisons.

use std::sync::Arc;

use integration_core::{
    IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, json_object, typed_tool,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PROVIDER, ROUTE, Shared, check_ref, keep_all, limit, per_page, repo_path};
use crate::client::{GitHubClient, segment, with_query};
use crate::models;

/// List commits.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListCommits {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// Branch, tag or sha to start from; the default branch when absent.
    sha: Option<String>,
    /// Only commits touching this file or directory.
    path: Option<String>,
    /// Only commits by this GitHub login or e-mail address.
    author: Option<String>,
    /// Only commits after this time (ISO 8601, `2024-01-31T00:00:00Z`).
    since: Option<String>,
    /// Only commits before this time (ISO 8601).
    until: Option<String>,
    /// How many commits to return (default 30, at most 1000), newest first.
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
    /// Return GitHub's objects unchanged.
    #[serde(default)]
    raw: bool,
}

/// One commit.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetCommit {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// The commit sha (or a branch or tag naming it).
    sha: String,
    /// Cut each file's patch after this many bytes (default: the connection's `max_patch_bytes`, 4000);
    /// 0 leaves patches out.
    max_patch_bytes: Option<usize>,
    /// Return GitHub's object unchanged.
    #[serde(default)]
    raw: bool,
}

/// Compare two refs.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct Compare {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// The base branch, tag or sha.
    base: String,
    /// The head branch, tag or sha (`user:branch` for a fork).
    head: String,
    /// Cut each file's patch after this many bytes (default 4000); 0 leaves patches out.
    max_patch_bytes: Option<usize>,
    /// Return GitHub's object unchanged.
    #[serde(default)]
    raw: bool,
}

pub(crate) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let s1 = shared.clone();
    let s2 = shared.clone();
    let s3 = shared.clone();
    vec![
        typed_tool(
            ToolSpec::new(
                "github_list_commits",
                PROVIDER,
                "List the commits of a repository, newest first, optionally from a branch, touching a \
                 path, by an author or within a time window; pages with limit and cursor",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/commits")),
            move |ctx: ToolContext, p: ListCommits| {
                let shared = s1.clone();
                async move { list_commits(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "github_get_commit",
                PROVIDER,
                "Get one commit with its message, author, stats and changed files (patches cut to a size limit)",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/repos/{{owner}}/{{repo}}/commits/{{sha}}")),
            move |ctx: ToolContext, p: GetCommit| {
                let shared = s2.clone();
                async move { get_commit(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "github_compare",
                PROVIDER,
                "Compare two branches, tags or commits (base...head): commits ahead and behind, the \
                 changed files with additions and deletions, and the merge base",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/repos/{{owner}}/{{repo}}/compare")),
            move |ctx: ToolContext, p: Compare| {
                let shared = s3.clone();
                async move { compare(&shared, &ctx, p).await }
            },
        ),
    ]
}

async fn list_commits(shared: &Shared, ctx: &ToolContext, p: ListCommits) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    if let Some(sha) = &p.sha {
        check_ref("sha", sha)?;
    }
    let client = shared.client(ctx)?;
    let limit = limit(p.limit);
    let list = format!("{base}/commits");
    let first = with_query(
        &list,
        &[
            ("sha", p.sha.clone()),
            ("path", p.path.clone()),
            ("author", p.author.clone()),
            ("since", p.since.clone()),
            ("until", p.until.clone()),
            ("per_page", Some(per_page(limit))),
        ],
    );
    let page = client.collect(&first, &list, p.cursor.as_deref(), limit, None, &keep_all).await?;
    let commits: Vec<Value> =
        if p.raw { page.items } else { page.items.iter().map(models::commit).collect() };
    Ok(json_object([
        ("count", commits.len().into()),
        ("commits", Value::Array(commits)),
        ("next_cursor", page.next_cursor.into()),
    ]))
}

/// `GET /repos/{o}/{r}/commits/{ref}`.
pub(crate) async fn fetch_commit(
    client: &GitHubClient,
    base: &str,
    sha: &str,
) -> Result<Value, IntegrationError> {
    Ok(client.get(&format!("{base}/commits/{}", segment(sha))).await?.body)
}

fn files(v: &Value, max_patch: usize) -> Vec<Value> {
    v["files"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| {
                    let mut out = models::file(f, max_patch);
                    if max_patch == 0
                        && let Some(o) = out.as_object_mut()
                    {
                        o.remove("patch");
                        o.remove("patch_truncated");
                    }
                    out
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn get_commit(shared: &Shared, ctx: &ToolContext, p: GetCommit) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    check_ref("sha", &p.sha)?;
    let client = shared.client(ctx)?;
    let body = fetch_commit(&client, &base, &p.sha).await?;
    if p.raw {
        return Ok(body);
    }
    let max_patch = p.max_patch_bytes.unwrap_or(client.limits().max_patch_bytes);
    let mut out = models::commit(&body);
    out["stats"] = body.get("stats").cloned().unwrap_or(Value::Null);
    let files = files(&body, max_patch);
    out["changed_files"] = json!(files.len());
    out["files"] = json!(files);
    Ok(out)
}

async fn compare(shared: &Shared, ctx: &ToolContext, p: Compare) -> Result<Value, IntegrationError> {
    let base_path = repo_path(&p.owner, &p.repo)?;
    check_ref("base", &p.base)?;
    check_ref("head", &p.head)?;
    let client = shared.client(ctx)?;
    let body =
        client.get(&format!("{base_path}/compare/{}...{}", segment(&p.base), segment(&p.head))).await?.body;
    if p.raw {
        return Ok(body);
    }
    let max_patch = p.max_patch_bytes.unwrap_or(client.limits().max_patch_bytes);
    Ok(comparison_view(&body, &p.base, &p.head, max_patch))
}

/// The trimmed view of a `commit-comparison`.
pub(crate) fn comparison_view(body: &Value, base: &str, head: &str, max_patch: usize) -> Value {
    let files = files(body, max_patch);
    let additions: u64 =
        body["files"].as_array().map(|f| f.iter().filter_map(|f| f["additions"].as_u64()).sum()).unwrap_or(0);
    let deletions: u64 =
        body["files"].as_array().map(|f| f.iter().filter_map(|f| f["deletions"].as_u64()).sum()).unwrap_or(0);
    let commits: Vec<Value> =
        body["commits"].as_array().map(|c| c.iter().map(models::commit).collect()).unwrap_or_default();
    json!({
        "base": base,
        "head": head,
        "status": body["status"],
        "ahead_by": body["ahead_by"],
        "behind_by": body["behind_by"],
        "total_commits": body["total_commits"],
        "merge_base": body["merge_base_commit"]["sha"],
        "additions": additions,
        "deletions": deletions,
        "changed_files": files.len(),
        "commits": commits,
        "files": files,
        "html_url": body["html_url"],
    })
}
