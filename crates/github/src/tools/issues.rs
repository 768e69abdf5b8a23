//! Issues: create, list, comment (on issues and pull requests).

use std::sync::Arc;

use integration_core::{
    IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, json_object, typed_tool,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::pulls::State;
use super::repos::Order;
use super::{PROVIDER, ROUTE, Shared, check_name, limit, per_page, repo_path};
use crate::client::with_query;
use crate::models;

/// Create an issue.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateIssue {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// The issue title.
    #[schemars(length(min = 1, max = 256))]
    title: String,
    /// The issue text (Markdown).
    body: Option<String>,
    /// Label names (created when missing and the token may).
    #[serde(default)]
    labels: Vec<String>,
    /// Logins to assign.
    #[serde(default)]
    assignees: Vec<String>,
    /// The number of the milestone to put the issue in.
    milestone: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum IssueSort {
    Created,
    Updated,
    Comments,
}

impl IssueSort {
    fn as_str(self) -> &'static str {
        match self {
            IssueSort::Created => "created",
            IssueSort::Updated => "updated",
            IssueSort::Comments => "comments",
        }
    }
}

/// List issues.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListIssues {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// `open` (default), `closed` or `all`.
    state: Option<State>,
    /// Only issues with all these labels.
    #[serde(default)]
    labels: Vec<String>,
    /// Only issues assigned to this login (`none` for unassigned, `*` for any).
    assignee: Option<String>,
    /// Only issues opened by this login.
    creator: Option<String>,
    /// Only issues updated after this time (ISO 8601).
    since: Option<String>,
    /// `created` (default), `updated` or `comments`.
    sort: Option<IssueSort>,
    /// `desc` (default) or `asc`.
    direction: Option<Order>,
    /// Also return pull requests (GitHub lists them as issues); off by default.
    #[serde(default)]
    include_pull_requests: bool,
    /// How many to return (default 30, at most 1000).
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
    /// Return GitHub's objects unchanged.
    #[serde(default)]
    raw: bool,
}

/// Comment on an issue or pull request.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct Comment {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// The issue or pull request number.
    #[schemars(range(min = 1))]
    issue_number: u64,
    /// The comment text (Markdown).
    #[schemars(length(min = 1))]
    body: String,
}

pub(crate) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let s1 = shared.clone();
    let s2 = shared.clone();
    let s3 = shared.clone();
    vec![
        typed_tool(
            ToolSpec::new(
                "github_create_issue",
                PROVIDER,
                "Create an issue in a repository with a title, body, labels, assignees and milestone",
            )
            .hints(ToolHints::write())
            .route(Method::Post, format!("{ROUTE}/issues")),
            move |ctx: ToolContext, p: CreateIssue| {
                let shared = s1.clone();
                async move { create_issue(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "github_list_issues",
                PROVIDER,
                "List the issues of a repository by state, labels, assignee or creator; newest first",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/issues")),
            move |ctx: ToolContext, p: ListIssues| {
                let shared = s2.clone();
                async move { list_issues(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new("github_comment", PROVIDER, "Add a comment to an issue or pull request")
                .hints(ToolHints::write())
                .route(Method::Post, format!("{ROUTE}/comments")),
            move |ctx: ToolContext, p: Comment| {
                let shared = s3.clone();
                async move { comment(&shared, &ctx, p).await }
            },
        ),
    ]
}

async fn create_issue(shared: &Shared, ctx: &ToolContext, p: CreateIssue) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    if p.title.trim().is_empty() {
        return Err(IntegrationError::invalid_input(PROVIDER, "title must not be empty"));
    }
    for a in &p.assignees {
        check_name("assignee", a)?;
    }
    let mut body = json!({ "title": p.title });
    if let Some(text) = &p.body {
        body["body"] = json!(text);
    }
    if !p.labels.is_empty() {
        body["labels"] = json!(p.labels);
    }
    if !p.assignees.is_empty() {
        body["assignees"] = json!(p.assignees);
    }
    if let Some(m) = p.milestone {
        body["milestone"] = json!(m);
    }
    let client = shared.client(ctx)?;
    let issue = client.post(&format!("{base}/issues"), &body).await?.body;
    Ok(models::issue(&issue))
}

async fn list_issues(shared: &Shared, ctx: &ToolContext, p: ListIssues) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    let client = shared.client(ctx)?;
    let limit = limit(p.limit);
    let list = format!("{base}/issues");
    let labels = (!p.labels.is_empty()).then(|| p.labels.join(","));
    let first = with_query(
        &list,
        &[
            ("state", p.state.map(|s| s.as_str().to_owned())),
            ("labels", labels),
            ("assignee", p.assignee.clone()),
            ("creator", p.creator.clone()),
            ("since", p.since.clone()),
            ("sort", p.sort.map(|s| s.as_str().to_owned())),
            ("direction", p.direction.map(|d| d.as_str().to_owned())),
            ("per_page", Some(per_page(limit))),
        ],
    );
    let include_pulls = p.include_pull_requests;
    let keep = move |v: &Value| include_pulls || !models::is_pull_request(v);
    let page = client.collect(&first, &list, p.cursor.as_deref(), limit, None, &keep).await?;
    let issues: Vec<Value> = if p.raw { page.items } else { page.items.iter().map(models::issue).collect() };
    Ok(json_object([
        ("count", issues.len().into()),
        ("issues", Value::Array(issues)),
        ("next_cursor", page.next_cursor.into()),
    ]))
}

async fn comment(shared: &Shared, ctx: &ToolContext, p: Comment) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    if p.body.trim().is_empty() {
        return Err(IntegrationError::invalid_input(PROVIDER, "body must not be empty"));
    }
    let client = shared.client(ctx)?;
    let c = client
        .post(&format!("{base}/issues/{}/comments", p.issue_number), &json!({ "body": p.body }))
        .await?
        .body;
    Ok(json!({
        "id": c["id"],
        "issue_number": p.issue_number,
        "user": c["user"]["login"],
        "html_url": c["html_url"],
        "created_at": c["created_at"],
    }))
}
