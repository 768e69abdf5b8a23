//! Pull requests: list, and one with files, review decision, mergeability and checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use integration_core::{
    IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, json_object, typed_tool,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::repos::Order;
use super::{PROVIDER, ROUTE, Shared, check_ref, keep_all, limit, per_page, repo_path};
use crate::client::{segment, with_query};
use crate::models;

/// Pull request state filter.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Open only (default).
    Open,
    /// Closed (and merged) only.
    Closed,
    /// Both.
    All,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum PullSort {
    Created,
    Updated,
    Popularity,
    LongRunning,
}

impl PullSort {
    fn as_str(self) -> &'static str {
        match self {
            PullSort::Created => "created",
            PullSort::Updated => "updated",
            PullSort::Popularity => "popularity",
            PullSort::LongRunning => "long-running",
        }
    }
}

/// List pull requests.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListPullRequests {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// `open` (default), `closed` or `all`.
    state: Option<State>,
    /// Only pull requests into this branch.
    base: Option<String>,
    /// Only pull requests from this branch (`user:branch` or `branch`).
    head: Option<String>,
    /// `created` (default), `updated`, `popularity` or `long-running`.
    sort: Option<PullSort>,
    /// `desc` (default) or `asc`.
    direction: Option<Order>,
    /// How many to return (default 30, at most 1000).
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
    /// Return GitHub's objects unchanged.
    #[serde(default)]
    raw: bool,
}

/// One pull request.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetPullRequest {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// The pull request number.
    #[schemars(range(min = 1))]
    pull_number: u64,
    /// Cut each file's patch after this many bytes (default 4000); 0 leaves patches out.
    max_patch_bytes: Option<usize>,
    /// Return GitHub's objects unchanged (pull request, files, reviews, status, check runs).
    #[serde(default)]
    raw: bool,
}

pub(crate) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let s1 = shared.clone();
    let s2 = shared.clone();
    vec![
        typed_tool(
            ToolSpec::new(
                "github_list_pull_requests",
                PROVIDER,
                "List the pull requests of a repository by state, base or head branch; newest first",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/pullrequests")),
            move |ctx: ToolContext, p: ListPullRequests| {
                let shared = s1.clone();
                async move { list_pull_requests(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "github_get_pull_request",
                PROVIDER,
                "Get one pull request with its changed files, review decision (latest review per \
                 reviewer), mergeability and combined CI status (commit statuses and check runs)",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/repos/{{owner}}/{{repo}}/pulls/{{pull_number}}")),
            move |ctx: ToolContext, p: GetPullRequest| {
                let shared = s2.clone();
                async move { get_pull_request(&shared, &ctx, p).await }
            },
        ),
    ]
}

async fn list_pull_requests(
    shared: &Shared,
    ctx: &ToolContext,
    p: ListPullRequests,
) -> Result<Value, IntegrationError> {
    let base_path = repo_path(&p.owner, &p.repo)?;
    let client = shared.client(ctx)?;
    let limit = limit(p.limit);
    let list = format!("{base_path}/pulls");
    let first = with_query(
        &list,
        &[
            ("state", p.state.map(|s| s.as_str().to_owned())),
            ("base", p.base.clone()),
            ("head", p.head.clone()),
            ("sort", p.sort.map(|s| s.as_str().to_owned())),
            ("direction", p.direction.map(|d| d.as_str().to_owned())),
            ("per_page", Some(per_page(limit))),
        ],
    );
    let page = client.collect(&first, &list, p.cursor.as_deref(), limit, None, &keep_all).await?;
    let pulls: Vec<Value> =
        if p.raw { page.items } else { page.items.iter().map(models::pull_request).collect() };
    Ok(json_object([
        ("count", pulls.len().into()),
        ("pull_requests", Value::Array(pulls)),
        ("next_cursor", page.next_cursor.into()),
    ]))
}

/// The review decision from the reviews (oldest first): the latest decisive review of each
/// reviewer counts (`COMMENTED` does not replace a decision; `DISMISSED` clears it).
fn review_decision(reviews: &[Value], requested: usize) -> (String, Vec<Value>) {
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for r in reviews {
        let who = r["user"]["login"].as_str().unwrap_or_default().to_owned();
        match r["state"].as_str().unwrap_or_default() {
            "APPROVED" => {
                latest.insert(who, "APPROVED".into());
            }
            "CHANGES_REQUESTED" => {
                latest.insert(who, "CHANGES_REQUESTED".into());
            }
            "DISMISSED" => {
                latest.remove(&who);
            }
            _ => {
                latest.entry(who).or_insert_with(|| "COMMENTED".into());
            }
        }
    }
    let decision = if latest.values().any(|s| s == "CHANGES_REQUESTED") {
        "changes_requested"
    } else if latest.values().any(|s| s == "APPROVED") {
        "approved"
    } else if requested > 0 {
        "review_required"
    } else {
        "none"
    };
    let by_reviewer = latest.into_iter().map(|(user, state)| json!({"user": user, "state": state})).collect();
    (decision.to_owned(), by_reviewer)
}

/// One CI state from the combined commit status and the check runs.
fn checks_view(status: &Value, runs: &Value) -> Value {
    let statuses: Vec<Value> = status["statuses"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| json!({"context": s["context"], "state": s["state"], "description": s["description"]}))
                .collect()
        })
        .unwrap_or_default();
    let check_runs: Vec<Value> = runs["check_runs"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| json!({"name": r["name"], "status": r["status"], "conclusion": r["conclusion"]}))
                .collect()
        })
        .unwrap_or_default();
    let failed_status = statuses.iter().any(|s| matches!(s["state"].as_str(), Some("failure" | "error")));
    let pending_status = statuses.iter().any(|s| s["state"] == "pending");
    let failed_check = check_runs.iter().any(|r| {
        matches!(
            r["conclusion"].as_str(),
            Some("failure" | "timed_out" | "cancelled" | "action_required" | "startup_failure")
        )
    });
    let pending_check = check_runs.iter().any(|r| r["status"] != "completed");
    let state = if statuses.is_empty() && check_runs.is_empty() {
        "none"
    } else if failed_status || failed_check {
        "failure"
    } else if pending_status || pending_check {
        "pending"
    } else {
        "success"
    };
    json!({
        "state": state,
        "status_state": if statuses.is_empty() { Value::Null } else { status["state"].clone() },
        "statuses": statuses,
        "check_runs": check_runs,
    })
}

async fn get_pull_request(
    shared: &Shared,
    ctx: &ToolContext,
    p: GetPullRequest,
) -> Result<Value, IntegrationError> {
    let base_path = repo_path(&p.owner, &p.repo)?;
    let client = shared.client(ctx)?;
    let pr_path = format!("{base_path}/pulls/{}", p.pull_number);
    let pr = client.get(&pr_path).await?.body;
    let files_list = format!("{pr_path}/files");
    let files = client
        .collect(&format!("{files_list}?per_page=100"), &files_list, None, 3000, None, &keep_all)
        .await?;
    let reviews_list = format!("{pr_path}/reviews");
    let reviews = client
        .collect(&format!("{reviews_list}?per_page=100"), &reviews_list, None, 1000, None, &keep_all)
        .await?;
    let head_sha = pr["head"]["sha"].as_str().unwrap_or_default().to_owned();
    check_ref("head sha", &head_sha)?;
    let status = client.get(&format!("{base_path}/commits/{}/status", segment(&head_sha))).await?.body;
    let runs = client
        .get(&format!("{base_path}/commits/{}/check-runs?per_page=100", segment(&head_sha)))
        .await?
        .body;
    if p.raw {
        return Ok(json_object([
            ("pull_request", pr),
            ("files", Value::Array(files.items)),
            ("reviews", Value::Array(reviews.items)),
            ("status", status),
            ("check_runs", runs),
        ]));
    }
    let max_patch = p.max_patch_bytes.unwrap_or(client.limits().max_patch_bytes);
    let requested = pr["requested_reviewers"].as_array().map(Vec::len).unwrap_or(0);
    let (decision, by_reviewer) = review_decision(&reviews.items, requested);
    let mut out = models::pull_request(&pr);
    out["body"] = json!(pr["body"].as_str().map(|b| models::truncate(b, 4000).0));
    out["merged"] = pr["merged"].clone();
    out["mergeable"] = pr["mergeable"].clone();
    out["mergeable_state"] = pr["mergeable_state"].clone();
    out["commits"] = pr["commits"].clone();
    out["additions"] = pr["additions"].clone();
    out["deletions"] = pr["deletions"].clone();
    out["changed_files"] = pr["changed_files"].clone();
    out["review_decision"] = json!(decision);
    out["reviews"] = json!(by_reviewer);
    out["checks"] = checks_view(&status, &runs);
    out["files"] = json!(
        files
            .items
            .iter()
            .map(|f| {
                let mut v = models::file(f, max_patch);
                if max_patch == 0
                    && let Some(o) = v.as_object_mut()
                {
                    o.remove("patch");
                    o.remove("patch_truncated");
                }
                v
            })
            .collect::<Vec<_>>()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(user: &str, state: &str) -> Value {
        json!({"user": {"login": user}, "state": state})
    }

    #[test]
    fn decisions() {
        let check = |reviews: Vec<Value>, requested: usize, expected: &str| {
            assert_eq!(review_decision(&reviews, requested).0, expected, "{reviews:?}");
        };
        check(vec![], 0, "none");
        check(vec![], 1, "review_required");
        check(vec![review("a", "CHANGES_REQUESTED"), review("a", "APPROVED")], 0, "approved");
        check(vec![review("a", "APPROVED"), review("a", "COMMENTED")], 0, "approved");
        check(vec![review("a", "APPROVED"), review("b", "CHANGES_REQUESTED")], 0, "changes_requested");
        check(vec![review("a", "CHANGES_REQUESTED"), review("a", "DISMISSED")], 1, "review_required");
    }

    #[test]
    fn ci_state() {
        let status = json!({"state": "success", "statuses": [{"context": "ci", "state": "success"}]});
        let runs = json!({"check_runs": [{"name": "t", "status": "in_progress", "conclusion": null}]});
        assert_eq!(checks_view(&status, &runs)["state"], "pending");
        let runs = json!({"check_runs": [{"name": "t", "status": "completed", "conclusion": "failure"}]});
        assert_eq!(checks_view(&status, &runs)["state"], "failure");
        assert_eq!(checks_view(&json!({"statuses": []}), &json!({"check_runs": []}))["state"], "none");
    }
}
