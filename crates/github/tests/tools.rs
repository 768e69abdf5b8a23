//! Every GitHub tool end to end: Registry + InMemoryConnections + Executor against the fake.

mod common;

use std::collections::BTreeSet;

use common::{setup, token_connection};
use integration_core::{ErrorKind, Method};
use integration_testkit::Fault;
use integration_testkit::github::FakeGitHub;
use serde_json::{Value, json};

const OWNER: &str = "octocat";
const REPO: &str = "hello-world";

fn repo(extra: Value) -> Value {
    let mut v = json!({"owner": OWNER, "repo": REPO});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

#[tokio::test]
async fn tools_and_routes_are_registered() {
    let env = setup().await;
    let routes: Vec<(String, Method, String)> = env
        .executor
        .registry()
        .tools()
        .iter()
        .filter(|t| t.spec().provider == "github")
        .map(|t| {
            let r = t.spec().route.clone().expect("every tool has a route");
            (t.spec().name.clone(), r.method, r.path)
        })
        .collect();
    let expected = [
        ("github_repo_search", Method::Get, "/api/integrations/github/repos"),
        ("github_get_repository", Method::Get, "/api/integrations/github/repos/{owner}/{repo}"),
        ("github_list_commits", Method::Get, "/api/integrations/github/commits"),
        ("github_list_pull_requests", Method::Get, "/api/integrations/github/pullrequests"),
        ("github_create_issue", Method::Post, "/api/integrations/github/issues"),
        ("github_list_issues", Method::Get, "/api/integrations/github/issues"),
        ("github_update_issue", Method::Patch, "/api/integrations/github/issues"),
        ("github_comment", Method::Post, "/api/integrations/github/comments"),
    ];
    for (name, method, path) in expected {
        assert!(
            routes.iter().any(|(n, m, p)| n == name && *m == method && p == path),
            "{name} {path} missing from {routes:?}"
        );
    }
    assert_eq!(routes.len(), 13);
    for t in env.executor.registry().tools() {
        let hints = t.spec().hints;
        let name = t.spec().name.as_str();
        let creates = matches!(name, "github_create_issue" | "github_comment");
        let write = creates || name == "github_update_issue";
        assert_eq!(hints.read_only, !write, "{name}");
        // The same edit twice leaves the same issue: the executor may repeat an update, not a create.
        assert_eq!(hints.idempotent, !creates, "{name}");
        assert!(!hints.destructive, "{name}");
    }
}

#[tokio::test]
async fn repo_search_sorts_and_pages() {
    let env = setup().await;
    let r =
        env.ok("github_repo_search", json!({"query": "language:rust", "sort": "stars", "limit": 2})).await;
    assert_eq!(r["total_count"], 3);
    let names: Vec<&str> =
        r["repositories"].as_array().expect("list").iter().filter_map(|r| r["full_name"].as_str()).collect();
    assert_eq!(names, ["rust-lang/rust", "tokio-rs/tokio"]);
    assert_eq!(r["repositories"][0]["language"], "Rust");
    assert!(r["repositories"][0].get("archive_url").is_none(), "trimmed by default");
    let cursor = r["next_cursor"].as_str().expect("more results").to_owned();
    let r = env
        .ok("github_repo_search", json!({"query": "language:rust", "sort": "stars", "cursor": cursor}))
        .await;
    assert_eq!(r["repositories"][0]["full_name"], "octocat/hello-world");
    assert!(r["next_cursor"].is_null());

    let raw = env.ok("github_repo_search", json!({"query": "tokio", "raw": true})).await;
    assert!(raw["repositories"][0]["archive_url"].is_string());

    let err = env.call("github_repo_search", json!({"query": "  "})).await.expect_err("empty query");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn get_repository_with_languages() {
    let env = setup().await;
    let r = env.ok("github_get_repository", repo(json!({}))).await;
    assert_eq!(r["full_name"], "octocat/hello-world");
    assert_eq!(r["default_branch"], "main");
    assert_eq!(r["stars"], 1500);
    assert_eq!(r["languages"][0]["language"], "Rust");
    assert!(r["languages"][0]["percent"].as_f64().expect("percent") > 90.0);

    let missing =
        env.call("github_get_repository", json!({"owner": OWNER, "repo": "nope"})).await.expect_err("404");
    assert_eq!(missing.kind(), &ErrorKind::NotFound);
    assert!(missing.message().contains("Not Found"), "{}", missing.message());

    let bad = env
        .call("github_get_repository", json!({"owner": "../x", "repo": REPO}))
        .await
        .expect_err("bad name");
    assert_eq!(bad.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn bad_token_is_an_authentication_error() {
    let env = setup().await;
    env.connections.insert(token_connection("github", env.server.base_url(), "ghp_wrong"));
    let outcome = env.outcome("github_get_repository", repo(json!({})), None).await;
    let err = outcome.result.expect_err("401");
    assert_eq!(err.kind(), &ErrorKind::Authentication);
    assert!(err.message().contains("Bad credentials"));
    assert!(!err.message().contains("ghp_wrong"));
    assert_eq!(outcome.attempts, 1, "authentication errors are not retried");
}

#[tokio::test]
async fn unreachable_api_is_a_network_error() {
    let env = setup().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    env.connections.insert(token_connection("github", &format!("http://{closed}"), "t"));
    let outcome = env.outcome("github_get_repository", repo(json!({})), None).await;
    let err = outcome.result.expect_err("refused");
    assert_eq!(err.kind(), &ErrorKind::Network, "{err}");
    assert_eq!(err.effect(), integration_core::Effect::None, "a refused connection sent nothing");
}

#[tokio::test]
async fn list_commits_pages_past_100() {
    let env = setup().await;
    let first =
        env.ok("github_list_commits", json!({"owner": OWNER, "repo": "big-history", "limit": 120})).await;
    assert_eq!(first["count"], 120);
    assert_eq!(env.server.calls_to("/repos/octocat/big-history/commits"), 2, "two pages of 100");
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    let rest = env
        .ok(
            "github_list_commits",
            json!({"owner": OWNER, "repo": "big-history", "limit": 100, "cursor": cursor}),
        )
        .await;
    assert_eq!(rest["count"], 10);
    assert!(rest["next_cursor"].is_null());
    let shas: BTreeSet<&str> = first["commits"]
        .as_array()
        .into_iter()
        .chain(rest["commits"].as_array())
        .flatten()
        .filter_map(|c| c["sha"].as_str())
        .collect();
    assert_eq!(shas.len(), 130, "no commit twice, none missing");
    assert_eq!(first["commits"][0]["title"], "Change 129", "newest first");

    let by_path = env
        .ok(
            "github_list_commits",
            json!({"owner": OWNER, "repo": "big-history", "path": "docs", "limit": 1000}),
        )
        .await;
    assert_eq!(by_path["count"], 32);
    let by_author =
        env.ok("github_list_commits", json!({"owner": OWNER, "repo": REPO, "author": "hubot"})).await;
    assert_eq!(by_author["count"], 1);
    let branch = env.ok("github_list_commits", repo(json!({"sha": "feature/shout"}))).await;
    assert_eq!(branch["count"], 5);
    assert_eq!(branch["commits"][0]["author"]["login"], "monalisa");

    let err = env
        .call("github_list_commits", json!({"owner": OWNER, "repo": REPO, "cursor": "bm9wZQ"}))
        .await
        .expect_err("bad cursor");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn get_commit_with_trimmed_patches() {
    let env = setup().await;
    let list = env.ok("github_list_commits", repo(json!({"limit": 3}))).await;
    let sha = list["commits"][1]["sha"].as_str().expect("sha").to_owned();
    let c = env.ok("github_get_commit", repo(json!({"sha": sha, "max_patch_bytes": 20}))).await;
    assert_eq!(c["title"], "Add greeting module");
    assert_eq!(c["author"]["login"], "hubot");
    assert_eq!(c["changed_files"], 2);
    assert!(c["stats"]["additions"].as_u64().expect("stats") > 0);
    let f = &c["files"][0];
    assert!(f["patch"].as_str().expect("patch").len() <= 20);
    assert_eq!(f["patch_truncated"], true);

    let full = env.ok("github_get_commit", repo(json!({"sha": &sha[..10]}))).await;
    assert_eq!(full["files"][0]["patch_truncated"], false);
    let raw = env.ok("github_get_commit", repo(json!({"sha": sha, "raw": true}))).await;
    assert!(raw["commit"]["tree"]["sha"].is_string());
}

#[tokio::test]
async fn compare_branches() {
    let env = setup().await;
    let c = env.ok("github_compare", repo(json!({"base": "main", "head": "feature/shout"}))).await;
    assert_eq!(c["status"], "ahead");
    assert_eq!(c["ahead_by"], 2);
    assert_eq!(c["behind_by"], 0);
    assert_eq!(c["commits"].as_array().map(Vec::len), Some(2));
    let files: BTreeSet<&str> =
        c["files"].as_array().expect("files").iter().filter_map(|f| f["filename"].as_str()).collect();
    assert_eq!(files, BTreeSet::from(["README.md", "docs/usage.md", "src/greet.rs", "tests/greet.rs"]));
    assert!(c["additions"].as_u64().expect("additions") >= 5);
    let back = env.ok("github_compare", repo(json!({"base": "feature/shout", "head": "main"}))).await;
    assert_eq!(back["status"], "behind");
    assert_eq!(back["behind_by"], 2);
    let err =
        env.call("github_compare", repo(json!({"base": "main", "head": "nope"}))).await.expect_err("404");
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn get_file_text_binary_limits_and_directories() {
    let env = setup().await;
    let f = env.ok("github_get_file", repo(json!({"path": "src/main.rs"}))).await;
    assert_eq!(f["binary"], false);
    assert!(f["content"].as_str().expect("text").contains("greet::greet"));
    assert_eq!(f["language"], "Rust");
    let old = env.ok("github_get_file", repo(json!({"path": "README.md", "ref": "main"}))).await;
    let new = env.ok("github_get_file", repo(json!({"path": "README.md", "ref": "feature/shout"}))).await;
    assert_ne!(old["content"], new["content"]);
    assert!(new["content"].as_str().expect("text").contains("shouts"));

    let cut = env.ok("github_get_file", repo(json!({"path": "README.md", "max_bytes": 7}))).await;
    assert_eq!(cut["content"], "# Hello");
    assert_eq!(cut["truncated"], true);

    let png = env.ok("github_get_file", repo(json!({"path": "assets/logo.png"}))).await;
    assert_eq!(png["binary"], true);
    assert!(png["content"].is_null());

    let dir = env.ok("github_get_file", repo(json!({"path": "src"}))).await;
    assert_eq!(dir["type"], "dir");
    assert_eq!(dir["entries"].as_array().map(Vec::len), Some(2));

    let missing = env.call("github_get_file", repo(json!({"path": "nope.txt"}))).await.expect_err("404");
    assert_eq!(missing.kind(), &ErrorKind::NotFound);
    let escape = env.call("github_get_file", repo(json!({"path": "../x"}))).await.expect_err("bad path");
    assert_eq!(escape.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn code_analysis_of_a_pull_request_and_a_range() {
    let env = setup().await;
    let a = env.ok("github_code_analysis", repo(json!({"pull_number": 1}))).await;
    assert_eq!(a["subject"]["head"], "feature/shout");
    assert_eq!(a["totals"]["commits"], 2);
    assert_eq!(a["totals"]["files_changed"], 4);
    let dirs: Vec<&str> =
        a["by_directory"].as_array().expect("dirs").iter().filter_map(|d| d["directory"].as_str()).collect();
    assert!(dirs.contains(&"src") && dirs.contains(&"docs") && dirs.contains(&"/"), "{dirs:?}");
    let langs: Vec<&str> =
        a["by_language"].as_array().expect("langs").iter().filter_map(|d| d["language"].as_str()).collect();
    assert!(langs.contains(&"Rust") && langs.contains(&"Documentation"), "{langs:?}");
    assert_eq!(a["authors"][0]["author"], "monalisa");
    assert_eq!(a["authors"][0]["commits"], 2);
    assert!(
        a["largest_changes"][0]["churn"].as_u64().expect("churn")
            >= a["largest_changes"][1]["churn"].as_u64().expect("churn")
    );

    let list =
        env.ok("github_list_commits", json!({"owner": OWNER, "repo": "big-history", "limit": 130})).await;
    let oldest = list["commits"][129]["sha"].as_str().expect("sha").to_owned();
    let a = env
        .ok(
            "github_code_analysis",
            json!({"owner": OWNER, "repo": "big-history", "base": oldest, "head": "main", "max_commits": 20, "top": 3}),
        )
        .await;
    assert_eq!(a["totals"]["commits"], 129);
    assert_eq!(a["commits_analyzed"], 20);
    assert_eq!(a["most_touched_files"].as_array().map(Vec::len), Some(3));
    assert!(a["most_touched_files"][0]["commits"].as_u64().expect("n") >= 1);
    assert_eq!(a["authors"].as_array().map(Vec::len), Some(3));
    assert!(a["note"].is_string());

    let err = env.call("github_code_analysis", repo(json!({"base": "main"}))).await.expect_err("no head");
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn pull_requests_list_and_detail() {
    let env = setup().await;
    let list = env.ok("github_list_pull_requests", repo(json!({"state": "all"}))).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["pull_requests"][0]["head"], "feature/shout");
    assert_eq!(list["pull_requests"][0]["user"], "monalisa");
    let none = env.ok("github_list_pull_requests", repo(json!({"base": "develop"}))).await;
    assert_eq!(none["count"], 0);

    let pr = env.ok("github_get_pull_request", repo(json!({"pull_number": 1}))).await;
    assert_eq!(pr["review_decision"], "approved");
    assert_eq!(pr["mergeable"], true);
    assert_eq!(pr["mergeable_state"], "clean");
    assert_eq!(pr["checks"]["state"], "pending", "the coverage check still runs");
    assert_eq!(pr["checks"]["status_state"], "success");
    assert_eq!(pr["checks"]["check_runs"].as_array().map(Vec::len), Some(2));
    assert_eq!(pr["changed_files"], 4);
    assert_eq!(pr["files"].as_array().map(Vec::len), Some(4));
    assert_eq!(pr["requested_reviewers"], json!(["octocat"]));

    env.gh.add_review("octocat/hello-world", 1, "octocat", "CHANGES_REQUESTED", "Wait");
    env.gh.add_check("octocat/hello-world", "feature/shout", "lint", "completed", Some("failure"));
    let pr = env.ok("github_get_pull_request", repo(json!({"pull_number": 1}))).await;
    assert_eq!(pr["review_decision"], "changes_requested");
    assert_eq!(pr["checks"]["state"], "failure");

    let missing =
        env.call("github_get_pull_request", repo(json!({"pull_number": 99}))).await.expect_err("404");
    assert_eq!(missing.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn create_list_and_comment_on_issues() {
    let env = setup().await;
    let created = env
        .ok(
            "github_create_issue",
            repo(json!({
                "title": "Crash on empty name",
                "body": "Steps: call greet(\"\")",
                "labels": ["bug", "p1"],
                "assignees": ["hubot"],
                "milestone": 1,
            })),
        )
        .await;
    let number = created["number"].as_u64().expect("number");
    assert_eq!(created["state"], "open");
    assert_eq!(created["milestone"], "v1.0");
    assert_eq!(created["user"], "octocat");
    assert_eq!(
        env.gh.issue_fields("octocat/hello-world", number),
        Some((vec!["bug".into(), "p1".into()], vec!["hubot".into()], Some(1)))
    );

    let listed = env.ok("github_list_issues", repo(json!({"labels": ["bug"]}))).await;
    let titles: Vec<&str> =
        listed["issues"].as_array().expect("issues").iter().filter_map(|i| i["title"].as_str()).collect();
    assert_eq!(
        titles,
        ["Crash on empty name", "Greeting is too quiet"],
        "created issues are listed, newest first"
    );
    let all = env.ok("github_list_issues", repo(json!({"state": "all"}))).await;
    assert_eq!(all["count"], 4);

    let bad =
        env.call("github_create_issue", repo(json!({"title": "x", "milestone": 42}))).await.expect_err("422");
    assert_eq!(bad.kind(), &ErrorKind::InvalidInput);
    assert!(bad.details().is_some_and(|d| d["errors"][0]["field"] == "milestone"), "{:?}", bad.details());
    let outcome = env.outcome("github_create_issue", repo(json!({"body": "no title"})), None).await;
    assert_eq!(outcome.result.expect_err("schema").kind(), &ErrorKind::InvalidInput);
    assert_eq!(outcome.attempts, 0, "refused by the schema before any request");

    let c = env.ok("github_comment", repo(json!({"issue_number": number, "body": "Reproduced."}))).await;
    assert_eq!(c["issue_number"], number);
    assert!(c["html_url"].as_str().expect("url").contains(&format!("issues/{number}#issuecomment-")));
    env.ok("github_comment", repo(json!({"issue_number": 1, "body": "On the pull request"}))).await;
    assert_eq!(env.gh.comments("octocat/hello-world", number), vec!["Reproduced."]);
    assert_eq!(env.gh.comments("octocat/hello-world", 1), vec!["On the pull request"]);
    let missing =
        env.call("github_comment", repo(json!({"issue_number": 999, "body": "x"}))).await.expect_err("404");
    assert_eq!(missing.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn list_issues_pages_past_100() {
    let env = setup().await;
    let all =
        env.ok("github_list_issues", json!({"owner": OWNER, "repo": "big-history", "limit": 150})).await;
    assert_eq!(all["count"], 120);
    assert!(all["next_cursor"].is_null());
    let page =
        env.ok("github_list_issues", json!({"owner": OWNER, "repo": "big-history", "limit": 101})).await;
    assert_eq!(page["count"], 101);
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let rest = env
        .ok(
            "github_list_issues",
            json!({"owner": OWNER, "repo": "big-history", "limit": 101, "cursor": cursor}),
        )
        .await;
    assert_eq!(rest["count"], 19);
    assert_eq!(rest["issues"][18]["title"], "Issue number 0");
    let bugs = env
        .ok(
            "github_list_issues",
            json!({"owner": OWNER, "repo": "big-history", "labels": ["bug"], "limit": 1000}),
        )
        .await;
    assert_eq!(bugs["count"], 60);
}

#[tokio::test]
async fn server_errors_are_retried_by_the_executor() {
    let env = setup().await;
    // Each attempt sends both of its requests (the repository and its languages, under this
    // prefix) at once: four faults fail two attempts.
    env.server.faults().push(Fault::status(502).times(4).on_path("/repos/octocat/hello-world"));
    let outcome = env.outcome("github_get_repository", repo(json!({})), None).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(outcome.attempts, 3);

    // A write that may have reached GitHub is not repeated.
    env.server.faults().push(Fault::status(500).on_path("/repos/octocat/hello-world/issues"));
    let outcome = env.outcome("github_create_issue", repo(json!({"title": "once"})), None).await;
    assert!(matches!(outcome.result.expect_err("500").kind(), ErrorKind::Upstream { status: Some(500) }));
    assert_eq!(outcome.attempts, 1);
    assert!(!env.gh.issue_titles(FakeGitHub::REPO).contains(&"once".to_owned()));
}

/// The issue `number` as `github_list_issues` reads it back (every state).
async fn listed_issue(env: &common::Env, number: u64) -> Value {
    let all = env.ok("github_list_issues", repo(json!({"state": "all", "limit": 100}))).await;
    all["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .find(|i| i["number"] == number)
        .cloned()
        .unwrap_or_else(|| panic!("issue {number} listed in {all}"))
}

#[tokio::test]
async fn update_issue_title_body_and_state() {
    let env = setup().await;
    let number = env.gh.add_issue(FakeGitHub::REPO, "Greeting is slow", "hubot", &["bug"]);
    let before = listed_issue(&env, number).await;

    let edited = env
        .ok(
            "github_update_issue",
            repo(json!({"issue_number": number, "title": "Greeting is too slow", "body": "Takes 2 s."})),
        )
        .await;
    // The `models::issue` shape, every key of it, with the new values.
    let keys: BTreeSet<&str> = edited.as_object().expect("object").keys().map(String::as_str).collect();
    let listed_keys: BTreeSet<&str> =
        before.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, listed_keys, "the answer has the shape github_list_issues lists");
    assert!(keys.contains("state_reason") && keys.contains("closed_at"), "{keys:?}");
    assert_eq!(edited["number"], number);
    assert_eq!(edited["title"], "Greeting is too slow");
    assert_eq!(edited["body"], "Takes 2 s.");
    assert_eq!(edited["state"], "open");
    assert_eq!(edited["labels"], json!(["bug"]), "fields not given are kept");
    assert_eq!(edited["user"], "hubot");
    assert!(
        edited["updated_at"].as_str() > before["updated_at"].as_str(),
        "updated_at moves: {} then {}",
        before["updated_at"],
        edited["updated_at"]
    );
    assert_eq!(listed_issue(&env, number).await, edited, "read back as answered");

    // Close as not planned: closed_at set.
    let closed = env
        .ok(
            "github_update_issue",
            repo(json!({"issue_number": number, "state": "closed", "state_reason": "not_planned"})),
        )
        .await;
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["state_reason"], "not_planned");
    assert!(closed["closed_at"].is_string(), "{closed}");
    assert_eq!(closed["title"], "Greeting is too slow", "the title stays");
    let listed = listed_issue(&env, number).await;
    assert_eq!((&listed["state"], &listed["state_reason"]), (&json!("closed"), &json!("not_planned")));
    assert_eq!(listed["closed_at"], closed["closed_at"]);
    let open = env.ok("github_list_issues", repo(json!({"limit": 100}))).await;
    assert!(
        !open["issues"].as_array().expect("issues").iter().any(|i| i["number"] == number),
        "no longer listed as open"
    );

    // Reopen: closed_at back to null.
    let reopened = env
        .ok(
            "github_update_issue",
            repo(json!({"issue_number": number, "state": "open", "state_reason": "reopened"})),
        )
        .await;
    assert_eq!(reopened["state"], "open");
    assert_eq!(reopened["state_reason"], "reopened");
    assert!(reopened["closed_at"].is_null(), "{reopened}");
    assert_eq!(listed_issue(&env, number).await, reopened);

    // Closing without a reason is GitHub's `completed`.
    let done = env.ok("github_update_issue", repo(json!({"issue_number": number, "state": "closed"}))).await;
    assert_eq!(done["state_reason"], "completed");

    // Reopened, then closed as a duplicate of another issue.
    env.ok("github_update_issue", repo(json!({"issue_number": number, "state": "open"}))).await;
    let duplicate = env
        .ok(
            "github_update_issue",
            repo(json!({"issue_number": number, "state": "closed", "state_reason": "duplicate"})),
        )
        .await;
    assert_eq!((&duplicate["state"], &duplicate["state_reason"]), (&json!("closed"), &json!("duplicate")));
    assert_eq!(listed_issue(&env, number).await["state_reason"], "duplicate");
}

#[tokio::test]
async fn pull_requests_are_listed_as_issues_only_when_asked_and_edited_as_issues() {
    let env = setup().await;
    let pr = env.ok("github_get_pull_request", repo(json!({"pull_number": 1}))).await;
    let number = pr["number"].as_u64().expect("the demo's pull request");

    let issues = env.ok("github_list_issues", repo(json!({"state": "all", "limit": 100}))).await;
    let issues = issues["issues"].as_array().expect("issues").clone();
    assert!(!issues.is_empty());
    assert!(issues.iter().all(|i| i["is_pull_request"] == false && i["number"] != number), "{issues:?}");
    let with = env
        .ok("github_list_issues", repo(json!({"state": "all", "limit": 100, "include_pull_requests": true})))
        .await;
    let with = with["issues"].as_array().expect("issues").clone();
    assert_eq!(with.len(), issues.len() + 1, "the pull request added");
    let listed = with.iter().find(|i| i["number"] == number).expect("the pull request listed");
    assert_eq!(listed["is_pull_request"], true);
    assert_eq!(listed["title"], pr["title"]);

    // github_update_issue edits a pull request's issue fields and closes it.
    let edited = env
        .ok(
            "github_update_issue",
            repo(json!({"issue_number": number, "title": "Shout louder", "labels": ["ready"], "state": "closed"})),
        )
        .await;
    assert_eq!((&edited["title"], &edited["state"]), (&json!("Shout louder"), &json!("closed")));
    assert_eq!(edited["is_pull_request"], true);
    assert_eq!(edited["labels"], json!(["ready"]));
    let after = env.ok("github_get_pull_request", repo(json!({"pull_number": number}))).await;
    assert_eq!(after["title"], "Shout louder");
    assert_eq!(after["state"], "closed");
}

#[tokio::test]
async fn update_issue_replaces_labels_assignees_and_milestone() {
    let env = setup().await;
    let r = FakeGitHub::REPO;
    let number = env.gh.add_issue(r, "Flaky test", "monalisa", &["bug", "ci"]);
    let v2 = env.gh.add_milestone(r, "v2.0");

    let edited = env
        .ok(
            "github_update_issue",
            repo(json!({
                "issue_number": number,
                "labels": ["flaky", "p2"],
                "assignees": ["hubot", "monalisa"],
                "milestone": v2,
            })),
        )
        .await;
    assert_eq!(edited["labels"], json!(["flaky", "p2"]), "replaced, not added to");
    assert_eq!(edited["assignees"], json!(["hubot", "monalisa"]));
    assert_eq!(edited["milestone"], "v2.0");
    assert_eq!(
        env.gh.issue_fields(r, number),
        Some((vec!["flaky".into(), "p2".into()], vec!["hubot".into(), "monalisa".into()], Some(v2)))
    );
    let listed = listed_issue(&env, number).await;
    assert_eq!(listed["labels"], edited["labels"]);
    assert_eq!(listed["milestone"], "v2.0");

    // Another milestone, fewer assignees; the labels stay when left out.
    let moved = env
        .ok(
            "github_update_issue",
            repo(json!({"issue_number": number, "milestone": 1, "assignees": ["hubot"]})),
        )
        .await;
    assert_eq!(moved["milestone"], "v1.0");
    assert_eq!(moved["assignees"], json!(["hubot"]));
    assert_eq!(moved["labels"], json!(["flaky", "p2"]));

    // `null` is "not given", as for every optional parameter: nothing is cleared by it.
    let kept = env
        .ok(
            "github_update_issue",
            repo(json!({
                "issue_number": number,
                "title": "Flaky test (again)",
                "labels": null,
                "assignees": null,
                "milestone": null,
            })),
        )
        .await;
    assert_eq!(kept["title"], "Flaky test (again)");
    assert_eq!(
        (&kept["labels"], &kept["assignees"], &kept["milestone"]),
        (&json!(["flaky", "p2"]), &json!(["hubot"]), &json!("v1.0"))
    );

    // `[]` clears, `clear_milestone` takes the issue out of its milestone.
    let cleared = env
        .ok(
            "github_update_issue",
            repo(json!({"issue_number": number, "labels": [], "assignees": [], "clear_milestone": true})),
        )
        .await;
    assert_eq!(cleared["labels"], json!([]));
    assert_eq!(cleared["assignees"], json!([]));
    assert!(cleared["milestone"].is_null(), "{cleared}");
    assert_eq!(env.gh.issue_fields(r, number), Some((vec![], vec![], None)));
    let listed = listed_issue(&env, number).await;
    assert_eq!((&listed["labels"], &listed["milestone"]), (&json!([]), &Value::Null));

    // GitHub's refusal of an unknown milestone comes back as invalid input with its reasons.
    let bad = env
        .call("github_update_issue", repo(json!({"issue_number": number, "milestone": 42})))
        .await
        .expect_err("422");
    assert_eq!(bad.kind(), &ErrorKind::InvalidInput);
    assert!(bad.details().is_some_and(|d| d["errors"][0]["field"] == "milestone"), "{:?}", bad.details());
}

#[tokio::test]
async fn update_issue_refuses_empty_and_inconsistent_edits() {
    let env = setup().await;
    let number = env.gh.add_issue(FakeGitHub::REPO, "Keep me", "hubot", &["bug"]);
    let calls = env.server.calls();
    let refused = [
        (json!({}), "nothing to update"),
        (json!({"clear_milestone": false}), "nothing to update"),
        (json!({"title": null, "labels": null, "milestone": null}), "nothing to update"),
        (json!({"state_reason": "not_planned"}), "state_reason needs state"),
        (json!({"state": "closed", "state_reason": "reopened"}), "does not go with state `closed`"),
        (json!({"state": "open", "state_reason": "completed"}), "does not go with state `open`"),
        (json!({"state": "open", "state_reason": "not_planned"}), "does not go with state `open`"),
        (json!({"state": "open", "state_reason": "duplicate"}), "does not go with state `open`"),
        (json!({"milestone": 1, "clear_milestone": true}), "not both"),
        (json!({"title": "   "}), "title must not be blank"),
        (json!({"labels": ["ok", " "]}), "label name must not be blank"),
        (json!({"assignees": ["../admin"]}), "not a valid GitHub name"),
    ];
    for (fields, message) in refused {
        let mut params = repo(json!({"issue_number": number}));
        if let (Some(p), Value::Object(f)) = (params.as_object_mut(), fields.clone()) {
            p.extend(f);
        }
        let outcome = env.outcome("github_update_issue", params, None).await;
        let err = outcome.result.expect_err(&format!("{fields} is refused"));
        assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{fields}: {err}");
        assert!(err.message().contains(message), "{fields}: {}", err.message());
        assert_eq!(outcome.attempts, 1, "{fields}: refused once, not retried");
    }
    // Refused by the schema before the tool runs.
    for fields in [
        json!({"state": "shut"}),
        json!({"state_reason": "resolved", "state": "closed"}),
        json!({"title": ""}),
        json!({"title": "x".repeat(257)}),
        json!({"issue_number": 0, "title": "zero"}),
        json!({"milestone": 0}),
        json!({"labels": "bug"}),
    ] {
        let mut params = repo(json!({"issue_number": number}));
        if let (Some(p), Value::Object(f)) = (params.as_object_mut(), fields.clone()) {
            p.extend(f);
        }
        let outcome = env.outcome("github_update_issue", params, None).await;
        assert_eq!(outcome.result.expect_err("schema").kind(), &ErrorKind::InvalidInput, "{fields}");
        assert_eq!(outcome.attempts, 0, "{fields}: refused by the schema");
    }
    assert_eq!(env.server.calls(), calls, "nothing reached GitHub");
    let listed = listed_issue(&env, number).await;
    assert_eq!(
        (&listed["title"], &listed["state"], &listed["labels"]),
        (&json!("Keep me"), &json!("open"), &json!(["bug"]))
    );
}

#[tokio::test]
async fn update_issue_of_an_unknown_issue_or_repository_is_not_found() {
    let env = setup().await;
    let missing =
        env.outcome("github_update_issue", repo(json!({"issue_number": 999, "title": "x"})), None).await;
    let err = missing.result.expect_err("404");
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(err.message().contains("Not Found"), "{}", err.message());
    assert_eq!(missing.attempts, 1, "a 404 is final");
    let err = env
        .call("github_update_issue", json!({"owner": OWNER, "repo": "nope", "issue_number": 2, "title": "x"}))
        .await
        .expect_err("404");
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert!(!env.gh.issue_titles(FakeGitHub::REPO).contains(&"x".to_owned()));
}

#[tokio::test]
async fn update_issue_is_retried_after_a_server_error() {
    let env = setup().await;
    let number = env.gh.add_issue(FakeGitHub::REPO, "Retry me", "hubot", &[]);
    // Unlike a create, an update may be repeated: the second attempt succeeds.
    env.server
        .faults()
        .push(Fault::status(502).on_path(&format!("/repos/octocat/hello-world/issues/{number}")));
    let outcome = env
        .outcome("github_update_issue", repo(json!({"issue_number": number, "title": "Retried"})), None)
        .await;
    assert_eq!(outcome.result.expect("retried")["title"], "Retried");
    assert_eq!(outcome.attempts, 2);
}
