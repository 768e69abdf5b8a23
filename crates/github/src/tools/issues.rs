//! Issues: create, list, update (issues and the issue fields of pull requests), comment (on issues
//! and pull requests).

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

/// The state an issue is set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum IssueState {
    /// Open (reopen a closed issue).
    Open,
    /// Closed.
    Closed,
}

impl IssueState {
    fn as_str(self) -> &'static str {
        match self {
            IssueState::Open => "open",
            IssueState::Closed => "closed",
        }
    }
}

/// Why an issue's state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum StateReason {
    /// Closed: done (GitHub's default when closing).
    Completed,
    /// Closed: will not be done.
    NotPlanned,
    /// Closed: the same as another issue.
    Duplicate,
    /// Opened again.
    Reopened,
}

impl StateReason {
    fn as_str(self) -> &'static str {
        match self {
            StateReason::Completed => "completed",
            StateReason::NotPlanned => "not_planned",
            StateReason::Duplicate => "duplicate",
            StateReason::Reopened => "reopened",
        }
    }

    /// The state this reason goes with.
    fn state(self) -> IssueState {
        match self {
            StateReason::Completed | StateReason::NotPlanned | StateReason::Duplicate => IssueState::Closed,
            StateReason::Reopened => IssueState::Open,
        }
    }
}

/// Update an issue (or the issue fields of a pull request). Only the fields given change (a field
/// left out or `null` keeps its value); at least one must be given.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct UpdateIssue {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// The issue or pull request number.
    #[schemars(range(min = 1))]
    issue_number: u64,
    /// The new title.
    #[schemars(length(min = 1, max = 256))]
    title: Option<String>,
    /// The new text (Markdown), replacing the old one; an empty string empties it.
    body: Option<String>,
    /// `closed` to close the issue, `open` to reopen it.
    state: Option<IssueState>,
    /// Why the state changes; only together with `state`: `completed` (the default when closing),
    /// `not_planned` or `duplicate` with `closed`, `reopened` with `open`.
    state_reason: Option<StateReason>,
    /// The label names the issue will have, replacing its labels (created when missing and the
    /// token may); `[]` removes every label. Left out or `null`, the labels stay.
    labels: Option<Vec<String>>,
    /// The logins assigned, replacing the assignees; `[]` unassigns everyone. Left out or `null`,
    /// the assignees stay.
    assignees: Option<Vec<String>>,
    /// The number of the milestone to move the issue to. Left out or `null`, the milestone stays: to
    /// take the issue out of its milestone, use `clear_milestone`.
    #[schemars(range(min = 1))]
    milestone: Option<u64>,
    /// `true` takes the issue out of its milestone (sends GitHub `"milestone": null`); not
    /// together with `milestone`.
    #[serde(default)]
    clear_milestone: bool,
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
    let s4 = shared.clone();
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
            ToolSpec::new(
                "github_update_issue",
                PROVIDER,
                "Edit an issue (or a pull request's issue fields): title, body, close or reopen with a reason, \
                 replace labels or assignees, set or clear the milestone; only the fields given change",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Patch, format!("{ROUTE}/issues")),
            move |ctx: ToolContext, p: UpdateIssue| {
                let shared = s4.clone();
                async move { update_issue(&shared, &ctx, p).await }
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

/// The JSON body of `PATCH /repos/{owner}/{repo}/issues/{issue_number}`: the fields given, after
/// the checks GitHub would otherwise answer with a 422 (or silently ignore, like a `state_reason`
/// without `state`).
fn update_body(p: &UpdateIssue) -> Result<Value, IntegrationError> {
    let invalid = |message: &str| IntegrationError::invalid_input(PROVIDER, message);
    match (p.state, p.state_reason) {
        (None, Some(_)) => {
            return Err(invalid(
                "state_reason needs state: `closed` with `completed`, `not_planned` or `duplicate`, `open` with \
                 `reopened`",
            ));
        }
        (Some(state), Some(reason)) if state != reason.state() => {
            return Err(invalid(&format!(
                "state_reason `{}` does not go with state `{}`: `closed` takes `completed`, `not_planned` or \
                 `duplicate`, `open` takes `reopened`",
                reason.as_str(),
                state.as_str()
            )));
        }
        _ => {}
    }
    if p.milestone.is_some() && p.clear_milestone {
        return Err(invalid("give either milestone or clear_milestone, not both"));
    }
    let mut body = serde_json::Map::new();
    if let Some(title) = &p.title {
        if title.trim().is_empty() {
            return Err(invalid("title must not be blank"));
        }
        body.insert("title".into(), json!(title));
    }
    if let Some(text) = &p.body {
        body.insert("body".into(), json!(text));
    }
    if let Some(state) = p.state {
        body.insert("state".into(), json!(state.as_str()));
    }
    if let Some(reason) = p.state_reason {
        body.insert("state_reason".into(), json!(reason.as_str()));
    }
    if let Some(labels) = &p.labels {
        if labels.iter().any(|l| l.trim().is_empty()) {
            return Err(invalid("a label name must not be blank (`labels: []` removes every label)"));
        }
        body.insert("labels".into(), json!(labels));
    }
    if let Some(assignees) = &p.assignees {
        for a in assignees {
            check_name("assignee", a)?;
        }
        body.insert("assignees".into(), json!(assignees));
    }
    if let Some(m) = p.milestone {
        body.insert("milestone".into(), json!(m));
    } else if p.clear_milestone {
        body.insert("milestone".into(), Value::Null);
    }
    if body.is_empty() {
        return Err(invalid(
            "nothing to update: give at least one of title, body, state, labels, assignees, milestone or \
             clear_milestone",
        ));
    }
    Ok(Value::Object(body))
}

async fn update_issue(shared: &Shared, ctx: &ToolContext, p: UpdateIssue) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    let body = update_body(&p)?;
    let client = shared.client(ctx)?;
    let issue = client.patch(&format!("{base}/issues/{}", p.issue_number), &body).await?.body;
    Ok(models::issue(&issue))
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
