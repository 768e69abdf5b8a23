//! Response bodies in the shapes of GitHub's OpenAPI description (`full-repository`, `commit`,
//! `pull-request`, `issue`, ...): every required field is present, URLs point back at the fake.

use serde_json::{Map, Value, json};

use super::{FakeCommit, FakeFile, FakeIssue, FakePull, FakeRepo, FakeReview, FakeUser, iso};

/// The base URLs answers link to: the API root and the "web" root.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    pub(crate) api: String,
    pub(crate) web: String,
}

impl Urls {
    pub(crate) fn new(api: &str) -> Self {
        let api = api.trim_end_matches('/').to_owned();
        Self { web: format!("{api}/web"), api }
    }
}

pub(crate) fn node_id(kind: &str, id: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("0:{kind}{id}"))
}

/// `simple-user`.
pub(crate) fn user(u: &Urls, user: &FakeUser) -> Value {
    let api = format!("{}/users/{}", u.api, user.login);
    json!({
        "login": user.login,
        "id": user.id,
        "node_id": node_id("User", user.id),
        "avatar_url": format!("{}/avatars/{}", u.web, user.login),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{}/{}", u.web, user.login),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": if user.organization { "Organization" } else { "User" },
        "site_admin": false,
        "user_view_type": "public",
    })
}

/// `private-user` (the authenticated user, `GET /user`).
pub(crate) fn private_user(u: &Urls, fake: &FakeUser) -> Value {
    let mut v = user(u, fake);
    let extra = json!({
        "name": fake.name,
        "company": null,
        "blog": "",
        "location": null,
        "email": fake.email,
        "hireable": null,
        "bio": null,
        "public_repos": 1,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": iso(1_600_000_000),
        "updated_at": iso(1_700_000_000),
        "private_gists": 0,
        "total_private_repos": 0,
        "owned_private_repos": 0,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": true,
        "user_view_type": "private",
    });
    merge(&mut v, extra);
    v
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

const REPO_URLS: &[(&str, &str)] = &[
    ("archive_url", "/{archive_format}{/ref}"),
    ("assignees_url", "/assignees{/user}"),
    ("blobs_url", "/git/blobs{/sha}"),
    ("branches_url", "/branches{/branch}"),
    ("collaborators_url", "/collaborators{/collaborator}"),
    ("comments_url", "/comments{/number}"),
    ("commits_url", "/commits{/sha}"),
    ("compare_url", "/compare/{base}...{head}"),
    ("contents_url", "/contents/{+path}"),
    ("contributors_url", "/contributors"),
    ("deployments_url", "/deployments"),
    ("downloads_url", "/downloads"),
    ("events_url", "/events"),
    ("forks_url", "/forks"),
    ("git_commits_url", "/git/commits{/sha}"),
    ("git_refs_url", "/git/refs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"),
    ("hooks_url", "/hooks"),
    ("issue_comment_url", "/issues/comments{/number}"),
    ("issue_events_url", "/issues/events{/number}"),
    ("issues_url", "/issues{/number}"),
    ("keys_url", "/keys{/key_id}"),
    ("labels_url", "/labels{/name}"),
    ("languages_url", "/languages"),
    ("merges_url", "/merges"),
    ("milestones_url", "/milestones{/number}"),
    ("notifications_url", "/notifications{?since,all,participating}"),
    ("pulls_url", "/pulls{/number}"),
    ("releases_url", "/releases{/id}"),
    ("stargazers_url", "/stargazers"),
    ("statuses_url", "/statuses/{sha}"),
    ("subscribers_url", "/subscribers"),
    ("subscription_url", "/subscription"),
    ("tags_url", "/tags"),
    ("teams_url", "/teams"),
    ("trees_url", "/git/trees{/sha}"),
];

/// `minimal-repository`.
pub(crate) fn minimal_repo(u: &Urls, repo: &FakeRepo, owner: &FakeUser) -> Value {
    let full = repo.full_name();
    let api = format!("{}/repos/{full}", u.api);
    let mut map = Map::new();
    map.insert("id".into(), json!(repo.id));
    map.insert("node_id".into(), json!(node_id("Repository", repo.id)));
    map.insert("name".into(), json!(repo.name));
    map.insert("full_name".into(), json!(full));
    map.insert("owner".into(), user(u, owner));
    map.insert("private".into(), json!(repo.private));
    map.insert("html_url".into(), json!(format!("{}/{full}", u.web)));
    map.insert("description".into(), json!(repo.description));
    map.insert("fork".into(), json!(false));
    map.insert("url".into(), json!(api));
    for (key, suffix) in REPO_URLS {
        map.insert((*key).into(), json!(format!("{api}{suffix}")));
    }
    Value::Object(map)
}

/// `repository` / `full-repository` fields on top of [`minimal_repo`].
pub(crate) fn full_repo(u: &Urls, repo: &FakeRepo, owner: &FakeUser) -> Value {
    let full = repo.full_name();
    let mut v = minimal_repo(u, repo, owner);
    let host = u.web.trim_start_matches("http://").trim_start_matches("https://");
    let extra = json!({
        "clone_url": format!("{}/{full}.git", u.web),
        "git_url": format!("git://{host}/{full}.git"),
        "ssh_url": format!("git@{host}:{full}.git"),
        "svn_url": format!("{}/{full}", u.web),
        "mirror_url": null,
        "homepage": repo.homepage,
        "language": repo.language,
        "forks": repo.forks,
        "forks_count": repo.forks,
        "stargazers_count": repo.stars,
        "watchers_count": repo.stars,
        "watchers": repo.stars,
        "size": repo.size_kb,
        "default_branch": repo.default_branch,
        "open_issues": repo.open_issues(),
        "open_issues_count": repo.open_issues(),
        "is_template": false,
        "topics": repo.topics,
        "has_issues": true,
        "has_projects": true,
        "has_wiki": true,
        "has_pages": false,
        "has_downloads": true,
        "has_discussions": false,
        "archived": repo.archived,
        "disabled": false,
        "visibility": if repo.private { "private" } else { "public" },
        "pushed_at": iso(repo.pushed_at),
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.pushed_at),
        "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true},
        "license": repo.license.as_ref().map(|spdx| json!({
            "key": spdx.to_lowercase(),
            "name": format!("{spdx} License"),
            "url": format!("{}/licenses/{}", u.api, spdx.to_lowercase()),
            "spdx_id": spdx,
            "node_id": node_id("License", 1),
            "html_url": format!("{}/licenses/{}", u.web, spdx.to_lowercase()),
        })),
        "allow_forking": true,
        "web_commit_signoff_required": false,
        "network_count": repo.forks,
        "subscribers_count": repo.stars / 10,
    });
    merge(&mut v, extra);
    v
}

/// `repo-search-result-item`.
pub(crate) fn search_item(u: &Urls, repo: &FakeRepo, owner: &FakeUser, score: f64) -> Value {
    let mut v = full_repo(u, repo, owner);
    merge(&mut v, json!({ "score": score }));
    v
}

fn git_user(c: &FakeCommit) -> Value {
    json!({"name": c.author_name, "email": c.author_email, "date": iso(c.date)})
}

/// `diff-entry`.
pub(crate) fn diff_entry(u: &Urls, repo: &FakeRepo, sha: &str, f: &FakeFile) -> Value {
    let full = repo.full_name();
    let mut v = json!({
        "sha": f.blob_sha(),
        "filename": f.filename,
        "status": f.status,
        "additions": f.additions,
        "deletions": f.deletions,
        "changes": f.additions + f.deletions,
        "blob_url": format!("{}/{full}/blob/{sha}/{}", u.web, f.filename),
        "raw_url": format!("{}/{full}/raw/{sha}/{}", u.web, f.filename),
        "contents_url": format!("{}/repos/{full}/contents/{}?ref={sha}", u.api, f.filename),
    });
    if let Some(patch) = &f.patch {
        merge(&mut v, json!({ "patch": patch }));
    }
    if let Some(prev) = &f.previous_filename {
        merge(&mut v, json!({ "previous_filename": prev }));
    }
    v
}

/// `commit`; `files` and `stats` only when `detailed`.
pub(crate) fn commit(
    u: &Urls,
    repo: &FakeRepo,
    c: &FakeCommit,
    author: Option<&FakeUser>,
    detailed: bool,
) -> Value {
    let full = repo.full_name();
    let api = format!("{}/repos/{full}", u.api);
    let account = author.map(|a| user(u, a)).unwrap_or(Value::Null);
    let mut v = json!({
        "url": format!("{api}/commits/{}", c.sha),
        "sha": c.sha,
        "node_id": node_id("Commit", c.date),
        "html_url": format!("{}/{full}/commit/{}", u.web, c.sha),
        "comments_url": format!("{api}/commits/{}/comments", c.sha),
        "commit": {
            "url": format!("{api}/git/commits/{}", c.sha),
            "author": git_user(c),
            "committer": git_user(c),
            "message": c.message,
            "comment_count": 0,
            "tree": {"sha": c.tree_sha(), "url": format!("{api}/git/trees/{}", c.tree_sha())},
            "verification": {"verified": false, "reason": "unsigned", "payload": null, "signature": null, "verified_at": null},
        },
        "author": account,
        "committer": account,
        "parents": c.parents.iter().map(|p| json!({
            "sha": p,
            "url": format!("{api}/commits/{p}"),
            "html_url": format!("{}/{full}/commit/{p}", u.web),
        })).collect::<Vec<_>>(),
    });
    if detailed {
        let additions: u64 = c.files.iter().map(|f| f.additions).sum();
        let deletions: u64 = c.files.iter().map(|f| f.deletions).sum();
        merge(
            &mut v,
            json!({
                "stats": {"additions": additions, "deletions": deletions, "total": additions + deletions},
                "files": c.files.iter().map(|f| diff_entry(u, repo, &c.sha, f)).collect::<Vec<_>>(),
            }),
        );
    }
    v
}

/// `content-file`.
pub(crate) fn content_file(u: &Urls, repo: &FakeRepo, git_ref: &str, path: &str, bytes: &[u8]) -> Value {
    use base64::Engine;
    let full = repo.full_name();
    let name = path.rsplit('/').next().unwrap_or(path);
    let sha = super::short_hash(bytes);
    let url = format!("{}/repos/{full}/contents/{path}?ref={git_ref}", u.api);
    let html = format!("{}/{full}/blob/{git_ref}/{path}", u.web);
    let git = format!("{}/repos/{full}/git/blobs/{sha}", u.api);
    // GitHub wraps the base64 content at 60 characters.
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let wrapped: Vec<String> =
        encoded.as_bytes().chunks(60).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    json!({
        "type": "file",
        "encoding": "base64",
        "size": bytes.len(),
        "name": name,
        "path": path,
        "content": wrapped.join("\n") + "\n",
        "sha": sha,
        "url": url,
        "git_url": git,
        "html_url": html,
        "download_url": format!("{}/{full}/raw/{git_ref}/{path}", u.web),
        "_links": {"git": git, "html": html, "self": url},
    })
}

fn labels(u: &Urls, repo: &FakeRepo, names: &[String]) -> Vec<Value> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "id": 1000 + i as u64,
                "node_id": node_id("Label", 1000 + i as u64),
                "url": format!("{}/repos/{}/labels/{name}", u.api, repo.full_name()),
                "name": name,
                "description": null,
                "color": "ededed",
                "default": false,
            })
        })
        .collect()
}

fn milestone(u: &Urls, repo: &FakeRepo, number: Option<u64>, creator: &FakeUser) -> Value {
    let Some(m) = number.and_then(|n| repo.milestones.iter().find(|m| m.0 == n)) else {
        return Value::Null;
    };
    let api = format!("{}/repos/{}/milestones/{}", u.api, repo.full_name(), m.0);
    json!({
        "url": api,
        "html_url": format!("{}/{}/milestone/{}", u.web, repo.full_name(), m.0),
        "labels_url": format!("{api}/labels"),
        "id": 500 + m.0,
        "node_id": node_id("Milestone", m.0),
        "number": m.0,
        "state": "open",
        "title": m.1,
        "description": null,
        "creator": user(u, creator),
        "open_issues": 0,
        "closed_issues": 0,
        "created_at": iso(repo.created_at),
        "updated_at": iso(repo.created_at),
        "closed_at": null,
        "due_on": null,
    })
}

fn author_association(repo: &FakeRepo, login: &str) -> &'static str {
    if repo.owner == login { "OWNER" } else { "CONTRIBUTOR" }
}

/// `issue`.
pub(crate) fn issue(u: &Urls, repo: &FakeRepo, i: &FakeIssue, lookup: &dyn Fn(&str) -> FakeUser) -> Value {
    let full = repo.full_name();
    let api = format!("{}/repos/{full}/issues/{}", u.api, i.number);
    let author = lookup(&i.user);
    let assignees: Vec<Value> = i.assignees.iter().map(|a| user(u, &lookup(a))).collect();
    json!({
        "id": 9000 + i.number,
        "node_id": node_id("Issue", i.number),
        "url": api,
        "repository_url": format!("{}/repos/{full}", u.api),
        "labels_url": format!("{api}/labels{{/name}}"),
        "comments_url": format!("{api}/comments"),
        "events_url": format!("{api}/events"),
        "html_url": format!("{}/{full}/issues/{}", u.web, i.number),
        "number": i.number,
        "state": i.state,
        "state_reason": i.state_reason,
        "title": i.title,
        "body": i.body,
        "user": user(u, &author),
        "labels": labels(u, repo, &i.labels),
        "assignee": assignees.first().cloned().unwrap_or(Value::Null),
        "assignees": assignees,
        "milestone": milestone(u, repo, i.milestone, &author),
        "locked": false,
        "active_lock_reason": null,
        "comments": repo.comments.get(&i.number).map(Vec::len).unwrap_or(0),
        "closed_at": i.closed_at.map(iso),
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "closed_by": null,
        "author_association": author_association(repo, &i.user),
    })
}

/// `issue` of a pull request: the issue view with GitHub's `pull_request` object (the links to
/// the pull request and when it was merged) and the pull request's page as `html_url`.
pub(crate) fn pull_issue(
    u: &Urls,
    repo: &FakeRepo,
    p: &FakePull,
    lookup: &dyn Fn(&str) -> FakeUser,
) -> Value {
    let mut v = issue(u, repo, &p.as_issue(), lookup);
    let full = repo.full_name();
    let html = format!("{}/{full}/pull/{}", u.web, p.number);
    let merged_at = if p.state == "merged" { json!(iso(p.updated_at)) } else { Value::Null };
    merge(
        &mut v,
        json!({
            "html_url": html,
            "pull_request": {
                "url": format!("{}/repos/{full}/pulls/{}", u.api, p.number),
                "html_url": html,
                "diff_url": format!("{html}.diff"),
                "patch_url": format!("{html}.patch"),
                "merged_at": merged_at,
            },
        }),
    );
    v
}

/// `issue-comment`.
pub(crate) fn issue_comment(
    u: &Urls,
    repo: &FakeRepo,
    number: u64,
    c: &super::FakeComment,
    author: &FakeUser,
) -> Value {
    let full = repo.full_name();
    json!({
        "id": c.id,
        "node_id": node_id("IssueComment", c.id),
        "url": format!("{}/repos/{full}/issues/comments/{}", u.api, c.id),
        "html_url": format!("{}/{full}/issues/{number}#issuecomment-{}", u.web, c.id),
        "issue_url": format!("{}/repos/{full}/issues/{number}", u.api),
        "body": c.body,
        "user": user(u, author),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.created_at),
        "author_association": author_association(repo, &c.user),
    })
}

fn branch_ref(
    u: &Urls,
    repo: &FakeRepo,
    owner: &FakeUser,
    branch: &str,
    sha: &str,
    author: &FakeUser,
) -> Value {
    json!({
        "label": format!("{}:{branch}", repo.owner),
        "ref": branch,
        "sha": sha,
        "user": user(u, author),
        "repo": full_repo(u, repo, owner),
    })
}

/// `pull-request-simple`, or `pull-request` when `detail` carries the counts.
pub(crate) fn pull(
    u: &Urls,
    repo: &FakeRepo,
    p: &FakePull,
    lookup: &dyn Fn(&str) -> FakeUser,
    shas: (&str, &str),
    detail: Option<PullDetail>,
) -> Value {
    let full = repo.full_name();
    let api = format!("{}/repos/{full}/pulls/{}", u.api, p.number);
    let issue_api = format!("{}/repos/{full}/issues/{}", u.api, p.number);
    let html = format!("{}/{full}/pull/{}", u.web, p.number);
    let author = lookup(&p.user);
    let owner = lookup(&repo.owner);
    let merged = p.state == "merged";
    let closed = p.state != "open";
    let assignees: Vec<Value> = p.assignees.iter().map(|a| user(u, &lookup(a))).collect();
    let links = json!({
        "self": {"href": api},
        "html": {"href": html},
        "issue": {"href": issue_api},
        "comments": {"href": format!("{issue_api}/comments")},
        "review_comments": {"href": format!("{api}/comments")},
        "review_comment": {"href": format!("{}/repos/{full}/pulls/comments{{/number}}", u.api)},
        "commits": {"href": format!("{api}/commits")},
        "statuses": {"href": format!("{}/repos/{full}/statuses/{}", u.api, shas.1)},
    });
    let mut v = json!({
        "url": api,
        "id": 7000 + p.number,
        "node_id": node_id("PullRequest", p.number),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue_api,
        "commits_url": format!("{api}/commits"),
        "review_comments_url": format!("{api}/comments"),
        "review_comment_url": format!("{}/repos/{full}/pulls/comments{{/number}}", u.api),
        "comments_url": format!("{issue_api}/comments"),
        "statuses_url": format!("{}/repos/{full}/statuses/{}", u.api, shas.1),
        "number": p.number,
        "state": if closed { "closed" } else { "open" },
        "locked": false,
        "title": p.title,
        "user": user(u, &author),
        "body": p.body,
        "labels": labels(u, repo, &p.labels),
        "milestone": milestone(u, repo, p.milestone, &author),
        "active_lock_reason": null,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "closed_at": if closed { json!(iso(p.updated_at)) } else { Value::Null },
        "merged_at": if merged { json!(iso(p.updated_at)) } else { Value::Null },
        "merge_commit_sha": if merged { json!(shas.1) } else { Value::Null },
        "assignee": assignees.first().cloned().unwrap_or(Value::Null),
        "assignees": assignees,
        "requested_reviewers": p.requested_reviewers.iter().map(|r| user(u, &lookup(r))).collect::<Vec<_>>(),
        "requested_teams": [],
        "head": branch_ref(u, repo, &owner, &p.head, shas.1, &author),
        "base": branch_ref(u, repo, &owner, &p.base, shas.0, &owner),
        "_links": links,
        "author_association": author_association(repo, &p.user),
        "auto_merge": null,
        "draft": p.draft,
    });
    if let Some(d) = detail {
        merge(
            &mut v,
            json!({
                "merged": merged,
                "mergeable": p.mergeable,
                "rebaseable": p.mergeable,
                "mergeable_state": p.mergeable_state,
                "merged_by": if merged { user(u, &owner) } else { Value::Null },
                "comments": repo.comments.get(&p.number).map(Vec::len).unwrap_or(0),
                "review_comments": 0,
                "maintainer_can_modify": false,
                "commits": d.commits,
                "additions": d.additions,
                "deletions": d.deletions,
                "changed_files": d.changed_files,
            }),
        );
    }
    v
}

/// Counts of a detailed pull request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PullDetail {
    pub(crate) commits: usize,
    pub(crate) additions: u64,
    pub(crate) deletions: u64,
    pub(crate) changed_files: usize,
}

/// `pull-request-review`.
pub(crate) fn review(
    u: &Urls,
    repo: &FakeRepo,
    number: u64,
    id: u64,
    r: &FakeReview,
    who: &FakeUser,
) -> Value {
    let full = repo.full_name();
    let html = format!("{}/{full}/pull/{number}#pullrequestreview-{id}", u.web);
    let pr = format!("{}/repos/{full}/pulls/{number}", u.api);
    json!({
        "id": id,
        "node_id": node_id("PullRequestReview", id),
        "user": user(u, who),
        "body": r.body,
        "state": r.state,
        "html_url": html,
        "pull_request_url": pr,
        "_links": {"html": {"href": html}, "pull_request": {"href": pr}},
        "submitted_at": iso(r.submitted_at),
        "commit_id": r.commit_id,
        "author_association": author_association(repo, &r.user),
    })
}

/// `combined-commit-status`.
pub(crate) fn combined_status(u: &Urls, repo: &FakeRepo, owner: &FakeUser, sha: &str) -> Value {
    let full = repo.full_name();
    let statuses = repo.statuses.get(sha).cloned().unwrap_or_default();
    let state = if statuses.is_empty() || statuses.iter().any(|s| s.state == "pending") {
        "pending"
    } else if statuses.iter().any(|s| s.state == "failure" || s.state == "error") {
        "failure"
    } else {
        "success"
    };
    json!({
        "state": state,
        "sha": sha,
        "total_count": statuses.len(),
        "statuses": statuses.iter().enumerate().map(|(i, s)| json!({
            "url": format!("{}/repos/{full}/statuses/{sha}", u.api),
            "avatar_url": null,
            "id": 3000 + i as u64,
            "node_id": node_id("StatusContext", 3000 + i as u64),
            "state": s.state,
            "description": s.description,
            "target_url": null,
            "context": s.context,
            "created_at": iso(repo.pushed_at),
            "updated_at": iso(repo.pushed_at),
        })).collect::<Vec<_>>(),
        "repository": minimal_repo(u, repo, owner),
        "commit_url": format!("{}/repos/{full}/commits/{sha}", u.api),
        "url": format!("{}/repos/{full}/commits/{sha}/status", u.api),
    })
}

/// `check-run`.
pub(crate) fn check_run(
    u: &Urls,
    repo: &FakeRepo,
    owner: &FakeUser,
    sha: &str,
    i: usize,
    c: &super::FakeCheck,
) -> Value {
    let full = repo.full_name();
    let id = 4000 + i as u64;
    let completed = c.status == "completed";
    json!({
        "id": id,
        "node_id": node_id("CheckRun", id),
        "head_sha": sha,
        "name": c.name,
        "external_id": "",
        "url": format!("{}/repos/{full}/check-runs/{id}", u.api),
        "html_url": format!("{}/{full}/runs/{id}", u.web),
        "details_url": null,
        "status": c.status,
        "conclusion": c.conclusion,
        "started_at": iso(repo.pushed_at),
        "completed_at": if completed { json!(iso(repo.pushed_at + 60)) } else { Value::Null },
        "output": {"title": null, "summary": null, "text": null, "annotations_count": 0,
                   "annotations_url": format!("{}/repos/{full}/check-runs/{id}/annotations", u.api)},
        "check_suite": {"id": 5000},
        "app": {
            "id": 15368,
            "slug": "github-actions",
            "node_id": node_id("App", 15368),
            "owner": user(u, owner),
            "name": "GitHub Actions",
            "description": "Automate your workflow",
            "external_url": "https://help.github.com/en/actions",
            "html_url": format!("{}/apps/github-actions", u.web),
            "created_at": iso(1_565_000_000),
            "updated_at": iso(1_565_000_000),
            "permissions": {"checks": "write"},
            "events": ["check_run"],
        },
        "pull_requests": [],
    })
}

/// One `rate-limit` object.
pub(crate) fn rate(limit: u64, remaining: u64, reset: u64) -> Value {
    json!({"limit": limit, "remaining": remaining, "reset": reset, "used": limit.saturating_sub(remaining)})
}
