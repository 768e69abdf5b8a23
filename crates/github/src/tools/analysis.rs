//! Code analysis: a summary of a commit range or a pull request an agent can act on.

use std::collections::BTreeMap;
use std::sync::Arc;

use integration_core::{IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, typed_tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::commits::fetch_commit;
use super::{PROVIDER, ROUTE, Shared, check_ref, keep_all, repo_path};
use crate::client::segment;
use crate::models;

/// Analyse a commit range or a pull request.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CodeAnalysis {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// A pull request to analyse (instead of `base` and `head`).
    #[schemars(range(min = 1))]
    pull_number: Option<u64>,
    /// The start of the range (branch, tag or sha), with `head`.
    base: Option<String>,
    /// The end of the range (branch, tag or sha), with `base`.
    head: Option<String>,
    /// How many entries the top lists hold (default 10, at most 100).
    #[schemars(range(min = 1, max = 100))]
    top: Option<usize>,
    /// How many commits (the newest) to open for per-file touch counts and per-author churn
    /// (default 30, at most 100; one request each).
    #[schemars(range(min = 0, max = 100))]
    max_commits: Option<usize>,
}

pub(crate) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let s1 = shared.clone();
    vec![typed_tool(
        ToolSpec::new(
            "github_code_analysis",
            PROVIDER,
            "Summarise the changes of a commit range (base and head) or a pull request (pull_number): \
             files changed grouped by directory and language, churn, the largest changes, authors, and \
             the files touched by the most commits",
        )
        .hints(ToolHints::read_only())
        .route(Method::Get, format!("{ROUTE}/repos/{{owner}}/{{repo}}/analysis")),
        move |ctx: ToolContext, p: CodeAnalysis| {
            let shared = s1.clone();
            async move { code_analysis(&shared, &ctx, p).await }
        },
    )]
}

#[derive(Default)]
struct Tally {
    files: u64,
    additions: u64,
    deletions: u64,
}

impl Tally {
    fn add(&mut self, additions: u64, deletions: u64) {
        self.files += 1;
        self.additions += additions;
        self.deletions += deletions;
    }

    fn view(&self, key: &str, name: &str) -> Value {
        json!({
            key: name,
            "files": self.files,
            "additions": self.additions,
            "deletions": self.deletions,
            "churn": self.additions + self.deletions,
        })
    }
}

fn ranked(map: BTreeMap<String, Tally>, key: &str, top: usize) -> Vec<Value> {
    let mut rows: Vec<(String, Tally)> = map.into_iter().collect();
    rows.sort_by(|a, b| {
        (b.1.additions + b.1.deletions).cmp(&(a.1.additions + a.1.deletions)).then(a.0.cmp(&b.0))
    });
    rows.iter().take(top).map(|(name, t)| t.view(key, name)).collect()
}

fn directory_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => dir.to_owned(),
        None => "/".to_owned(),
    }
}

async fn code_analysis(
    shared: &Shared,
    ctx: &ToolContext,
    p: CodeAnalysis,
) -> Result<Value, IntegrationError> {
    let base_path = repo_path(&p.owner, &p.repo)?;
    let top = p.top.unwrap_or(10).clamp(1, 100);
    let max_commits = p.max_commits.unwrap_or(30).min(100);
    let client = shared.client(ctx)?;
    let (subject, files, commits) = match (p.pull_number, &p.base, &p.head) {
        (Some(n), None, None) => {
            let pr_path = format!("{base_path}/pulls/{n}");
            let pr = client.get(&pr_path).await?.body;
            let files_list = format!("{pr_path}/files");
            let files = client
                .collect(&format!("{files_list}?per_page=100"), &files_list, None, 3000, None, &keep_all)
                .await?;
            let commits_list = format!("{pr_path}/commits");
            let commits = client
                .collect(&format!("{commits_list}?per_page=100"), &commits_list, None, 250, None, &keep_all)
                .await?;
            let subject = json!({
                "pull_number": n,
                "title": pr["title"],
                "base": pr["base"]["ref"],
                "head": pr["head"]["ref"],
            });
            (subject, files.items, commits.items)
        }
        (None, Some(base), Some(head)) => {
            check_ref("base", base)?;
            check_ref("head", head)?;
            let body =
                client.get(&format!("{base_path}/compare/{}...{}", segment(base), segment(head))).await?.body;
            let subject = json!({
                "base": base,
                "head": head,
                "status": body["status"],
                "ahead_by": body["ahead_by"],
                "behind_by": body["behind_by"],
            });
            let files = body["files"].as_array().cloned().unwrap_or_default();
            let commits = body["commits"].as_array().cloned().unwrap_or_default();
            (subject, files, commits)
        }
        _ => {
            return Err(IntegrationError::invalid_input(
                PROVIDER,
                "give either pull_number, or base and head (a commit range)",
            ));
        }
    };

    let mut by_directory: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_language: BTreeMap<String, Tally> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let (mut additions, mut deletions) = (0u64, 0u64);
    let mut largest: Vec<(u64, Value)> = Vec::new();
    for f in &files {
        let name = f["filename"].as_str().unwrap_or_default();
        let (a, d) = (f["additions"].as_u64().unwrap_or(0), f["deletions"].as_u64().unwrap_or(0));
        additions += a;
        deletions += d;
        by_directory.entry(directory_of(name)).or_default().add(a, d);
        by_language.entry(models::language_of(name).to_owned()).or_default().add(a, d);
        *statuses.entry(f["status"].as_str().unwrap_or("modified").to_owned()).or_default() += 1;
        largest.push((
            a + d,
            json!({"filename": name, "status": f["status"], "additions": a, "deletions": d, "churn": a + d}),
        ));
    }
    largest.sort_by_key(|x| std::cmp::Reverse(x.0));

    // Authors from the commit list; per-file touches and per-author churn from the newest commits.
    let mut authors: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let author_of = |c: &Value| {
        c["author"]["login"]
            .as_str()
            .or_else(|| c["commit"]["author"]["name"].as_str())
            .unwrap_or("unknown")
            .to_owned()
    };
    for c in &commits {
        authors.entry(author_of(c)).or_default().0 += 1;
    }
    let mut touches: BTreeMap<String, u64> = BTreeMap::new();
    let newest: Vec<&Value> = commits.iter().rev().take(max_commits).collect();
    for c in &newest {
        let sha = c["sha"].as_str().unwrap_or_default();
        check_ref("sha", sha)?;
        let detail = fetch_commit(&client, &base_path, sha).await?;
        let entry = authors.entry(author_of(&detail)).or_default();
        entry.1 += detail["stats"]["additions"].as_u64().unwrap_or(0);
        entry.2 += detail["stats"]["deletions"].as_u64().unwrap_or(0);
        for f in detail["files"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(name) = f["filename"].as_str() {
                *touches.entry(name.to_owned()).or_default() += 1;
            }
        }
    }
    let mut authors: Vec<(String, (u64, u64, u64))> = authors.into_iter().collect();
    authors.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let mut touches: Vec<(String, u64)> = touches.into_iter().collect();
    touches.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    Ok(json!({
        "repository": format!("{}/{}", p.owner, p.repo),
        "subject": subject,
        "totals": {
            "commits": commits.len(),
            "files_changed": files.len(),
            "additions": additions,
            "deletions": deletions,
            "churn": additions + deletions,
            "by_status": statuses,
        },
        "by_directory": ranked(by_directory, "directory", top),
        "by_language": ranked(by_language, "language", top),
        "largest_changes": largest.into_iter().take(top).map(|(_, v)| v).collect::<Vec<_>>(),
        "authors": authors.iter().take(top).map(|(name, (commits, a, d))| json!({
            "author": name,
            "commits": commits,
            "additions": a,
            "deletions": d,
        })).collect::<Vec<_>>(),
        "most_touched_files": touches.iter().take(top).map(|(name, n)| json!({"filename": name, "commits": n})).collect::<Vec<_>>(),
        "commits_analyzed": newest.len(),
        "note": if newest.len() < commits.len() {
            Some(format!("touch counts and author churn cover the newest {} of {} commits", newest.len(), commits.len()))
        } else {
            None
        },
    }))
}
