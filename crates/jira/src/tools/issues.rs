//! Issue tools: search, get, create, update, comment, transitions, assign.

use std::sync::Arc;

use integration_core::{
    IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, json_object, typed_tool,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::users::resolve_account;
use super::{OneOrMany, ROUTE, Shared, check_key, decode_cursor, encode_cursor, eq_ci, limit, list};
use crate::PROVIDER;
use crate::adf::TextOrAdf;
use crate::client::{MAX_PAGE, SearchPage, SearchRequest};
use crate::jql::{Direction, Jql};
use crate::models::{Comment, ISSUE_FIELDS, Issue, Transition};
use crate::wire::IssueBean;

/// Sort direction.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Parameters of `jira_search_issues`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchIssues {
    /// Project key (`ENG`).
    project_key: Option<String>,
    /// Status name, or several (any of them).
    status: Option<OneOrMany>,
    /// Assignee account id; `me` for the connection's user, `unassigned` for none.
    assignee: Option<String>,
    /// Reporter account id; `me` for the connection's user.
    reporter: Option<String>,
    /// Label, or several (all of them).
    labels: Option<OneOrMany>,
    /// Issue type name (`Bug`), or several (any of them).
    #[serde(rename = "type")]
    issue_type: Option<OneOrMany>,
    /// Priority name, or several (any of them).
    priority: Option<OneOrMany>,
    /// Words to find in summary, description and comments (matched literally).
    text: Option<String>,
    /// Created on or after (`2024-01-31`, `2024-01-31 14:00` or relative like `-7d`).
    created_after: Option<String>,
    /// Created on or before.
    created_before: Option<String>,
    /// Updated on or after.
    updated_after: Option<String>,
    /// Updated on or before.
    updated_before: Option<String>,
    /// Field to sort by (default `created`).
    order_by: Option<String>,
    /// Sort direction (default `desc`).
    order: Option<Order>,
    /// Raw JQL, used as given. Cannot be combined with the structured filters above.
    jql: Option<String>,
    /// Most issues to return (default 50, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
    /// Return Jira's full issue objects instead of the trimmed ones.
    #[serde(default)]
    raw: bool,
}

/// Parameters of `jira_get_issue`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetIssue {
    /// The issue key (`ENG-12`) or id.
    key: String,
    /// Return Jira's full issue object.
    #[serde(default)]
    raw: bool,
}

fn default_type() -> String {
    "Task".to_owned()
}

/// Parameters of `jira_create_issue`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateIssue {
    /// Project key (`ENG`).
    project_key: String,
    /// The summary (title).
    #[schemars(length(min = 1, max = 255))]
    summary: String,
    /// Issue type name (default `Task`).
    #[serde(rename = "type", default = "default_type")]
    #[schemars(default = "default_type")]
    issue_type: String,
    /// Description: plain text or simple Markdown (converted), or an ADF document (passed through).
    description: Option<TextOrAdf>,
    /// Assignee: account id, e-mail or display name (resolved), or `me`.
    assignee: Option<String>,
    /// Labels (no spaces).
    labels: Option<Vec<String>>,
    /// Priority name (`High`).
    priority: Option<String>,
    /// Parent issue key (for sub-tasks and epics' children).
    parent: Option<String>,
    /// More Jira fields by id, as Jira expects them (`{"duedate": "2024-12-31"}`); the named
    /// parameters above take precedence.
    fields: Option<Map<String, Value>>,
}

/// Parameters of `jira_update_issue`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateIssue {
    /// The issue key (`ENG-12`) or id.
    key: String,
    /// New summary.
    summary: Option<String>,
    /// New description (text, Markdown or ADF).
    description: Option<TextOrAdf>,
    /// New assignee: account id, e-mail or display name, `me`, or `unassigned`.
    assignee: Option<String>,
    /// New labels (replace the current ones).
    labels: Option<Vec<String>>,
    /// New priority name.
    priority: Option<String>,
    /// More Jira fields to set, as Jira expects them.
    fields: Option<Map<String, Value>>,
}

/// Parameters of `jira_add_comment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddComment {
    /// The issue key (`ENG-12`) or id.
    key: String,
    /// The comment: plain text or simple Markdown (converted), or an ADF document.
    body: TextOrAdf,
}

/// Parameters of `jira_list_transitions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListTransitions {
    /// The issue key (`ENG-12`) or id.
    key: String,
}

/// Parameters of `jira_transition_issue`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TransitionIssue {
    /// The issue key (`ENG-12`) or id.
    key: String,
    /// The transition id (from `jira_list_transitions`).
    transition_id: Option<String>,
    /// Or the target status name (`Done`); the transition leading there is used.
    status: Option<String>,
    /// A comment to add with the transition.
    comment: Option<TextOrAdf>,
}

/// Parameters of `jira_assign_issue`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AssignIssue {
    /// The issue key (`ENG-12`) or id.
    key: String,
    /// Account id, e-mail or display name (resolved), `me`, or `unassigned` to clear.
    assignee: String,
}

macro_rules! tool {
    ($shared:expr, $spec:expr, $params:ty, $func:ident) => {{
        let shared = $shared.clone();
        typed_tool($spec, move |ctx: ToolContext, p: $params| {
            let shared = shared.clone();
            async move { $func(&shared, &ctx, p).await }
        })
    }};
}

pub(super) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let issues = format!("{ROUTE}/issues");
    let one = format!("{ROUTE}/issues/{{key}}");
    vec![
        tool!(
            shared,
            ToolSpec::new(
                "jira_search_issues",
                PROVIDER,
                "Search Jira issues by project, status, assignee, reporter, labels, type, priority, text and \
                 created/updated dates (values are matched safely), or by an explicit raw `jql`; pages with \
                 limit and cursor.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, issues.clone()),
            SearchIssues,
            search_issues
        ),
        tool!(
            shared,
            ToolSpec::new(
                "jira_create_issue",
                PROVIDER,
                "Create a Jira issue (type defaults to Task); the description may be text, Markdown or ADF.",
            )
            .hints(ToolHints::write())
            .route(Method::Post, issues),
            CreateIssue,
            create_issue
        ),
        tool!(
            shared,
            ToolSpec::new(
                "jira_get_issue",
                PROVIDER,
                "Get one Jira issue with its description and its latest 20 comments (oldest first) as plain text; comment_count is the total.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, one.clone()),
            GetIssue,
            get_issue
        ),
        tool!(
            shared,
            ToolSpec::new(
                "jira_update_issue",
                PROVIDER,
                "Update fields of a Jira issue: summary, description, assignee, labels, priority, others.",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Put, one.clone()),
            UpdateIssue,
            update_issue
        ),
        tool!(
            shared,
            ToolSpec::new("jira_add_comment", PROVIDER, "Add a comment (text, Markdown or ADF) to a Jira issue.")
                .hints(ToolHints::write())
                .route(Method::Post, format!("{one}/comments")),
            AddComment,
            add_comment
        ),
        tool!(
            shared,
            ToolSpec::new(
                "jira_list_transitions",
                PROVIDER,
                "List the workflow transitions available on a Jira issue now, with their target statuses.",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{one}/transitions")),
            ListTransitions,
            list_transitions
        ),
        tool!(
            shared,
            ToolSpec::new(
                "jira_transition_issue",
                PROVIDER,
                "Move a Jira issue through its workflow, by transition id or by target status name; \
                 optionally with a comment. Already in the target status is a success without change.",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Post, format!("{one}/transitions")),
            TransitionIssue,
            transition_issue
        ),
        tool!(
            shared,
            ToolSpec::new(
                "jira_assign_issue",
                PROVIDER,
                "Assign a Jira issue to a user (account id, e-mail or display name, or `me`), or `unassigned`.",
            )
            .hints(ToolHints::idempotent_write())
            .route(Method::Put, format!("{one}/assignee")),
            AssignIssue,
            assign_issue
        ),
    ]
}

/// The JQL of a search: the raw `jql` alone, or the structured filters.
fn build_jql(p: &SearchIssues) -> Result<String, IntegrationError> {
    let structured = p.project_key.is_some()
        || p.status.is_some()
        || p.assignee.is_some()
        || p.reporter.is_some()
        || p.labels.is_some()
        || p.issue_type.is_some()
        || p.priority.is_some()
        || p.text.is_some()
        || p.created_after.is_some()
        || p.created_before.is_some()
        || p.updated_after.is_some()
        || p.updated_before.is_some()
        || p.order_by.is_some()
        || p.order.is_some();
    if let Some(raw) = p.jql.as_deref().map(str::trim).filter(|j| !j.is_empty()) {
        if structured {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                "`jql` cannot be combined with structured filters: put everything in the jql, or use the filters",
            ));
        }
        return Ok(raw.to_owned());
    }
    let mut q = Jql::new();
    if let Some(key) = p.project_key.as_deref().filter(|k| !k.is_empty()) {
        q = q.eq("project", key);
    }
    q = q.any_of("status", &list(p.status.clone()));
    for (field, who) in [("assignee", &p.assignee), ("reporter", &p.reporter)] {
        match who.as_deref().map(str::trim) {
            None | Some("") => {}
            Some(v) if eq_ci(v, "me") || eq_ci(v, "currentUser()") => q = q.is_current_user(field),
            Some(v) if eq_ci(v, "unassigned") || eq_ci(v, "none") => q = q.is_empty(field),
            Some(v) => q = q.eq(field, v),
        }
    }
    q = q.all_of("labels", &list(p.labels.clone()));
    q = q.any_of("issuetype", &list(p.issue_type.clone()));
    q = q.any_of("priority", &list(p.priority.clone()));
    if let Some(text) = p.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        q = q.contains_text("text", text);
    }
    for (field, after, before) in
        [("created", &p.created_after, &p.created_before), ("updated", &p.updated_after, &p.updated_before)]
    {
        if let Some(v) = after.as_deref().filter(|v| !v.is_empty()) {
            q = q.at_least(field, v);
        }
        if let Some(v) = before.as_deref().filter(|v| !v.is_empty()) {
            q = q.at_most(field, v);
        }
    }
    let direction = match p.order {
        Some(Order::Asc) => Direction::Asc,
        Some(Order::Desc) | None => Direction::Desc,
    };
    let order_by = p.order_by.as_deref().map(str::trim).filter(|o| !o.is_empty()).unwrap_or("created");
    Ok(q.order_by(order_by, direction).build())
}

async fn search_issues(
    shared: &Shared,
    ctx: &ToolContext,
    p: SearchIssues,
) -> Result<Value, IntegrationError> {
    let jql = build_jql(&p)?;
    let limit = limit(p.limit, 50, 1000) as usize;
    let mut token = decode_cursor("t", p.cursor.as_deref())?.map(str::to_owned);
    let client = shared.client(ctx)?;
    let fields: Vec<String> = if p.raw {
        vec!["*navigable".to_owned()]
    } else {
        ISSUE_FIELDS.iter().map(|f| (*f).to_owned()).collect()
    };
    let mut issues = Vec::new();
    loop {
        let want = u32::try_from(limit - issues.len()).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let request = SearchRequest {
            jql: jql.clone(),
            max_results: Some(want),
            fields: fields.clone(),
            next_page_token: token.take(),
        };
        // The trimmed view reads each issue through the typed, lenient `IssueBean`; raw keeps it all.
        let (got, next_page_token, is_last) = if p.raw {
            let page: SearchPage = client.search_jql(&request).await?;
            let got = page.issues.len();
            issues.extend(page.issues);
            (got, page.next_page_token, page.is_last)
        } else {
            let page: SearchPage<IssueBean> = client.search_jql(&request).await?;
            let got = page.issues.len();
            issues.extend(page.issues.into_iter().map(|i| json!(Issue::from_bean(i, &client))));
            (got, page.next_page_token, page.is_last)
        };
        token = next_page_token.filter(|t| !t.is_empty() && is_last != Some(true));
        if token.is_none() || got == 0 || issues.len() >= limit {
            break;
        }
    }
    // Jira may answer more than asked; the cursor then still continues after its page.
    issues.truncate(limit);
    let count = issues.len();
    Ok(json_object([
        ("issues", Value::Array(issues)),
        ("count", count.into()),
        ("jql", jql.into()),
        ("next_cursor", token.map(|t| encode_cursor("t", &t)).into()),
    ]))
}

/// The comments `jira_get_issue` shows: the latest ones, oldest first.
const LATEST_COMMENTS: usize = 20;

async fn get_issue(shared: &Shared, ctx: &ToolContext, p: GetIssue) -> Result<Value, IntegrationError> {
    check_key("issue key", &p.key)?;
    let client = shared.client(ctx)?;
    if p.raw {
        return client.get_issue(&p.key, &[]).await;
    }
    let mut fields: Vec<&str> = ISSUE_FIELDS.to_vec();
    fields.push("comment");
    let mut issue: IssueBean = client.get_issue_as(&p.key, &fields).await?;
    let page = issue.fields.0.as_mut().and_then(|f| f.comment.take()).unwrap_or_default();
    let mut out = json!(Issue::from_bean(issue, &client));
    let total = page.total.unwrap_or(page.comments.len() as u64);
    let older = page.comments.len().saturating_sub(LATEST_COMMENTS);
    let comments: Vec<Comment> = page.comments.into_iter().skip(older).map(Comment::from_bean).collect();
    out["comments"] = json!(comments);
    out["comment_count"] = json!(total);
    Ok(out)
}

fn adf_param(what: &str, value: &TextOrAdf) -> Result<Value, IntegrationError> {
    value.to_adf().map_err(|e| IntegrationError::invalid_input(PROVIDER, format!("{what}: {e}")))
}

fn check_labels(labels: &[String]) -> Result<(), IntegrationError> {
    match labels.iter().find(|l| l.is_empty() || l.chars().any(char::is_whitespace)) {
        Some(bad) => Err(IntegrationError::invalid_input(
            PROVIDER,
            format!("label '{bad}' is invalid: labels cannot be empty or contain spaces"),
        )),
        None => Ok(()),
    }
}

async fn create_issue(shared: &Shared, ctx: &ToolContext, p: CreateIssue) -> Result<Value, IntegrationError> {
    check_key("project key", &p.project_key)?;
    if p.summary.trim().is_empty() {
        return Err(IntegrationError::invalid_input(PROVIDER, "summary must not be empty"));
    }
    let client = shared.client(ctx)?;
    let mut fields = p.fields.unwrap_or_default();
    fields.insert("project".into(), json!({ "key": p.project_key }));
    fields.insert("summary".into(), json!(p.summary));
    fields.insert("issuetype".into(), json!({ "name": p.issue_type }));
    if let Some(description) = &p.description {
        fields.insert("description".into(), adf_param("description", description)?);
    }
    if let Some(labels) = p.labels {
        check_labels(&labels)?;
        fields.insert("labels".into(), json!(labels));
    }
    if let Some(priority) = p.priority.filter(|v| !v.is_empty()) {
        fields.insert("priority".into(), json!({ "name": priority }));
    }
    if let Some(parent) = p.parent.filter(|v| !v.is_empty()) {
        check_key("parent key", &parent)?;
        fields.insert("parent".into(), json!({ "key": parent }));
    }
    if let Some(assignee) = p.assignee.filter(|v| !v.is_empty()) {
        let account = resolve_account(&client, &assignee).await?;
        fields.insert("assignee".into(), json!({ "accountId": account }));
    }
    let created = client.create_issue(&json!({ "fields": fields })).await?;
    Ok(json!({
        "key": created.key,
        "id": created.id,
        "url": client.browse_url(&created.key),
        "self": created.self_url,
    }))
}

async fn update_issue(shared: &Shared, ctx: &ToolContext, p: UpdateIssue) -> Result<Value, IntegrationError> {
    check_key("issue key", &p.key)?;
    let client = shared.client(ctx)?;
    let mut fields = p.fields.unwrap_or_default();
    if let Some(summary) = p.summary {
        if summary.trim().is_empty() {
            return Err(IntegrationError::invalid_input(PROVIDER, "summary must not be empty"));
        }
        fields.insert("summary".into(), json!(summary));
    }
    if let Some(description) = &p.description {
        fields.insert("description".into(), adf_param("description", description)?);
    }
    if let Some(labels) = p.labels {
        check_labels(&labels)?;
        fields.insert("labels".into(), json!(labels));
    }
    if let Some(priority) = p.priority.filter(|v| !v.is_empty()) {
        fields.insert("priority".into(), json!({ "name": priority }));
    }
    if let Some(assignee) = p.assignee.filter(|v| !v.is_empty()) {
        let account = resolve_account(&client, &assignee).await?;
        fields.insert("assignee".into(), json!({ "accountId": account }));
    }
    if fields.is_empty() {
        return Err(IntegrationError::invalid_input(PROVIDER, "nothing to update: give at least one field"));
    }
    let mut changed: Vec<String> = fields.keys().cloned().collect();
    changed.sort();
    client.edit_issue(&p.key, &json!({ "fields": fields })).await?;
    Ok(json!({ "key": p.key, "updated_fields": changed, "url": client.browse_url(&p.key) }))
}

async fn add_comment(shared: &Shared, ctx: &ToolContext, p: AddComment) -> Result<Value, IntegrationError> {
    check_key("issue key", &p.key)?;
    let body = adf_param("body", &p.body)?;
    let client = shared.client(ctx)?;
    let comment = client.add_comment(&p.key, &body).await?;
    let mut out = json!(Comment::from_value(&comment));
    out["key"] = json!(p.key);
    Ok(out)
}

async fn list_transitions(
    shared: &Shared,
    ctx: &ToolContext,
    p: ListTransitions,
) -> Result<Value, IntegrationError> {
    check_key("issue key", &p.key)?;
    let client = shared.client(ctx)?;
    let transitions: Vec<Transition> =
        client.transitions(&p.key).await?.iter().map(Transition::from_value).collect();
    Ok(json!({ "key": p.key, "transitions": transitions }))
}

async fn transition_issue(
    shared: &Shared,
    ctx: &ToolContext,
    p: TransitionIssue,
) -> Result<Value, IntegrationError> {
    check_key("issue key", &p.key)?;
    let (by_id, by_status) = match (p.transition_id.as_deref(), p.status.as_deref()) {
        (Some(id), None) if !id.is_empty() => (Some(id), None),
        (None, Some(status)) if !status.trim().is_empty() => (None, Some(status.trim())),
        _ => {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                "give exactly one of transition_id or status",
            ));
        }
    };
    let client = shared.client(ctx)?;
    let available: Vec<Transition> =
        client.transitions(&p.key).await?.iter().map(Transition::from_value).collect();
    let chosen = match (by_id, by_status) {
        (Some(id), _) => available.iter().find(|t| t.id == id),
        (_, Some(status)) => available
            .iter()
            .find(|t| t.to_status.as_deref().is_some_and(|s| eq_ci(s, status)))
            .or_else(|| available.iter().find(|t| t.name.as_deref().is_some_and(|n| eq_ci(n, status)))),
        _ => None,
    };
    let Some(chosen) = chosen else {
        if let Some(status) = by_status {
            let issue = client.get_issue(&p.key, &["status"]).await?;
            let current = issue.pointer("/fields/status/name").and_then(Value::as_str).unwrap_or_default();
            if eq_ci(current, status) {
                return Ok(json!({ "key": p.key, "status": current, "changed": false }));
            }
        }
        let wanted = by_id
            .map(|id| format!("transition '{id}'"))
            .unwrap_or_else(|| format!("a transition to status '{}'", by_status.unwrap_or_default()));
        let names: Vec<String> = available
            .iter()
            .map(|t| {
                format!(
                    "{} ({} -> {})",
                    t.id,
                    t.name.as_deref().unwrap_or("?"),
                    t.to_status.as_deref().unwrap_or("?")
                )
            })
            .collect();
        return Err(IntegrationError::invalid_input(
            PROVIDER,
            format!(
                "{wanted} is not available on {}; available: {}",
                p.key,
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            ),
        )
        .with_details(json!({ "key": p.key, "available_transitions": available })));
    };
    let extra = match &p.comment {
        Some(comment) => {
            json!({ "update": { "comment": [ { "add": { "body": adf_param("comment", comment)? } } ] } })
        }
        None => json!({}),
    };
    client.do_transition(&p.key, &chosen.id, extra).await?;
    Ok(json!({
        "key": p.key,
        "transition_id": chosen.id,
        "transition": chosen.name,
        "status": chosen.to_status,
        "changed": true,
    }))
}

async fn assign_issue(shared: &Shared, ctx: &ToolContext, p: AssignIssue) -> Result<Value, IntegrationError> {
    check_key("issue key", &p.key)?;
    let client = shared.client(ctx)?;
    let account = resolve_account(&client, &p.assignee).await?;
    client.assign_issue(&p.key, account.as_deref()).await?;
    Ok(json!({ "key": p.key, "assignee_account_id": account, "url": client.browse_url(&p.key) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: SearchIssues, expected: &str) {
        assert_eq!(build_jql(&p).expect("jql"), expected);
    }

    #[test]
    fn search_filters_become_safe_jql() {
        check(SearchIssues::default(), "ORDER BY created DESC");
        check(
            SearchIssues {
                project_key: Some("ENG".into()),
                status: Some(OneOrMany::Many(vec!["To Do".into(), "Done\" OR project = SECRET".into()])),
                assignee: Some("me".into()),
                reporter: Some("5b10a2844c20165700ede21g".into()),
                labels: Some(OneOrMany::One("backend".into())),
                issue_type: Some(OneOrMany::One("Bug".into())),
                priority: Some(OneOrMany::One("High".into())),
                text: Some("null pointer!".into()),
                created_after: Some("-7d".into()),
                updated_before: Some("2024-12-31".into()),
                order_by: Some("priority".into()),
                order: Some(Order::Asc),
                ..Default::default()
            },
            r#"project = "ENG" AND status in ("To Do", "Done\" OR project = SECRET") AND assignee = currentUser() AND reporter = "5b10a2844c20165700ede21g" AND labels = "backend" AND issuetype = "Bug" AND priority = "High" AND text ~ "null pointer\\!" AND created >= "-7d" AND updated <= "2024-12-31" ORDER BY priority ASC"#,
        );
        check(
            SearchIssues { assignee: Some("unassigned".into()), ..Default::default() },
            "assignee is EMPTY ORDER BY created DESC",
        );
        check(
            SearchIssues { jql: Some("project = X ORDER BY key".into()), ..Default::default() },
            "project = X ORDER BY key",
        );
        let mixed =
            SearchIssues { jql: Some("a = b".into()), project_key: Some("X".into()), ..Default::default() };
        assert!(build_jql(&mixed).is_err());
    }
}
