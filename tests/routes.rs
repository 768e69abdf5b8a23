//! Every tool of every provider through its own REST route, against the fakes. Each test checks
//! that it called every tool its provider registers, so a new tool cannot escape REST coverage.

use std::collections::BTreeSet;

use integration_testkit::FakeServer;
use integration_testkit::github::{FakeGitHub, router as github_router};
use integration_testkit::jira::{FakeJira, router as jira_router};
use integration_testkit::slack::{FakeSlack, router as slack_router};
use integrations_e2e::{Api, json_of};
use serde_json::{Value, json};

struct Rest {
    api: Api,
    client: reqwest::Client,
    covered: BTreeSet<String>,
}

impl Rest {
    async fn new() -> Self {
        Self {
            api: Api::start(&[]).await.expect("api"),
            client: reqwest::Client::new(),
            covered: BTreeSet::new(),
        }
    }

    async fn configure(&self, provider: &str, body: Value) {
        let url = self.api.url(&format!("/api/integrations/{provider}/configure?test=true"));
        let (status, body) = json_of(self.client.post(url).json(&body).send().await.expect("send")).await;
        assert_eq!(status, 200, "{body}");
    }

    /// Call `method path` (with a JSON body unless null) as tool `tool`; expect a 2xx.
    async fn call(&mut self, tool: &str, method: &str, path: &str, body: Value) -> Value {
        let url = self.api.url(path);
        let request = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "PUT" => self.client.put(url),
            "PATCH" => self.client.patch(url),
            other => panic!("method {other}"),
        };
        let request = if body.is_null() { request } else { request.json(&body) };
        let (status, answer) = json_of(request.send().await.expect("send")).await;
        assert!((200..300).contains(&status), "{tool}: {method} {path} answered {status}: {answer}");
        self.covered.insert(tool.to_owned());
        answer
    }

    async fn assert_all_covered(&self, provider: &str) {
        let (_, tools) =
            json_of(self.client.get(self.api.url("/api/tools")).send().await.expect("send")).await;
        let registered: BTreeSet<String> = tools["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter(|t| t["provider"] == provider)
            .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        let missing: Vec<_> = registered.difference(&self.covered).collect();
        assert!(missing.is_empty(), "{provider} tools never called through REST: {missing:?}");
    }
}

#[tokio::test]
async fn every_jira_tool_through_rest() {
    let jira = FakeJira::demo();
    let server = FakeServer::start(jira_router(jira.clone())).await.expect("fake jira");
    let mut rest = Rest::new().await;
    rest.configure(
        "jira",
        json!({"base_url": server.base_url(), "username": FakeJira::USERNAME, "api_token": FakeJira::API_TOKEN}),
    )
    .await;
    let j = "/api/integrations/jira";
    rest.call("jira_list_projects", "GET", &format!("{j}/projects?limit=2"), Value::Null).await;
    rest.call("jira_project_finder", "GET", &format!("{j}/projects?project_name=Marketing"), Value::Null)
        .await;
    let project = rest.call("jira_get_project", "GET", &format!("{j}/projects/ENG"), Value::Null).await;
    assert_eq!(project["key"], "ENG");
    rest.call("jira_list_project_statuses", "GET", &format!("{j}/projects/ENG/statuses"), Value::Null).await;
    rest.call(
        "jira_search_issues",
        "GET",
        &format!("{j}/issues?project_key=ENG&status=To%20Do"),
        Value::Null,
    )
    .await;
    let created = rest
        .call(
            "jira_create_issue",
            "POST",
            &format!("{j}/issues"),
            json!({"project_key": "ENG", "summary": "Route check"}),
        )
        .await;
    let key = created["key"].as_str().expect("key").to_owned();
    let issue = rest.call("jira_get_issue", "GET", &format!("{j}/issues/{key}"), Value::Null).await;
    assert_eq!(issue["summary"], "Route check");
    rest.call(
        "jira_update_issue",
        "PUT",
        &format!("{j}/issues/{key}"),
        json!({"summary": "Route checked", "labels": ["e2e"]}),
    )
    .await;
    assert_eq!(jira.issue_summary(&key).as_deref(), Some("Route checked"));
    rest.call(
        "jira_add_comment",
        "POST",
        &format!("{j}/issues/{key}/comments"),
        json!({"body": "Looks good."}),
    )
    .await;
    assert_eq!(jira.comments(&key).len(), 1);
    let transitions = rest
        .call("jira_list_transitions", "GET", &format!("{j}/issues/{key}/transitions"), Value::Null)
        .await;
    assert!(transitions.to_string().contains("In Progress"), "{transitions}");
    rest.call(
        "jira_transition_issue",
        "POST",
        &format!("{j}/issues/{key}/transitions"),
        json!({"status": "In Progress"}),
    )
    .await;
    assert_eq!(jira.issue_status(&key).as_deref(), Some("In Progress"));
    rest.call(
        "jira_assign_issue",
        "PUT",
        &format!("{j}/issues/{key}/assignee"),
        json!({"assignee": "mia@example.com"}),
    )
    .await;
    rest.call("jira_list_users", "GET", &format!("{j}/users?query=mia"), Value::Null).await;
    let found = rest.call("jira_find_user", "GET", &format!("{j}/users/find?query=John"), Value::Null).await;
    assert!(found.to_string().contains("John Smith"), "{found}");
    rest.assert_all_covered("jira").await;
}

#[tokio::test]
async fn every_github_tool_through_rest() {
    let github = FakeGitHub::demo();
    let server = FakeServer::start(github_router(github.clone())).await.expect("fake github");
    let mut rest = Rest::new().await;
    rest.configure("github", json!({"token": FakeGitHub::TOKEN, "api_url": server.base_url()})).await;
    let (owner, repo) = FakeGitHub::REPO.split_once('/').expect("owner/repo");
    let g = "/api/integrations/github";
    let r = format!("{g}/repos/{owner}/{repo}");
    rest.call("github_repo_search", "GET", &format!("{g}/repos?query=hello"), Value::Null).await;
    rest.call("github_get_repository", "GET", &r, Value::Null).await;
    let file =
        rest.call("github_get_file", "GET", &format!("{r}/contents?path=README.md"), Value::Null).await;
    assert!(file.to_string().contains("Hello World"), "{file}");
    let commits = rest
        .call(
            "github_list_commits",
            "GET",
            &format!("{g}/commits?owner={owner}&repo={repo}&limit=3"),
            Value::Null,
        )
        .await;
    let sha = commits.pointer("/commits/0/sha").and_then(Value::as_str);
    let sha = sha.unwrap_or_else(|| panic!("a sha in {commits}")).to_owned();
    rest.call("github_get_commit", "GET", &format!("{r}/commits/{sha}"), Value::Null).await;
    rest.call("github_compare", "GET", &format!("{r}/compare?base=main&head=feature/shout"), Value::Null)
        .await;
    rest.call(
        "github_code_analysis",
        "GET",
        &format!("{r}/analysis?base=main&head=feature/shout"),
        Value::Null,
    )
    .await;
    let pulls = rest
        .call(
            "github_list_pull_requests",
            "GET",
            &format!("{g}/pullrequests?owner={owner}&repo={repo}&state=all"),
            Value::Null,
        )
        .await;
    let number =
        pulls.pointer("/items/0/number").or_else(|| pulls.pointer("/0/number")).and_then(Value::as_u64);
    let number = number.unwrap_or_else(|| {
        github.add_pull(FakeGitHub::REPO, "Route check", "feature/shout", "main", "octocat")
    });
    rest.call("github_get_pull_request", "GET", &format!("{r}/pulls/{number}"), Value::Null).await;
    let issue = rest
        .call(
            "github_create_issue",
            "POST",
            &format!("{g}/issues"),
            json!({"owner": owner, "repo": repo, "title": "Route check"}),
        )
        .await;
    let issue_number = issue["number"].as_u64().unwrap_or_else(|| panic!("number in {issue}"));
    rest.call("github_list_issues", "GET", &format!("{g}/issues?owner={owner}&repo={repo}"), Value::Null)
        .await;
    rest.call(
        "github_comment",
        "POST",
        &format!("{g}/comments"),
        json!({"owner": owner, "repo": repo, "issue_number": issue_number, "body": "Thanks!"}),
    )
    .await;
    let updated = rest
        .call(
            "github_update_issue",
            "PATCH",
            &format!("{g}/issues"),
            json!({
                "owner": owner,
                "repo": repo,
                "issue_number": issue_number,
                "title": "Route checked",
                "state": "closed",
            }),
        )
        .await;
    assert_eq!(
        (&updated["title"], &updated["state"]),
        (&json!("Route checked"), &json!("closed")),
        "{updated}"
    );
    assert!(github.issue_titles(FakeGitHub::REPO).contains(&"Route checked".to_owned()));
    rest.assert_all_covered("github").await;
}

#[tokio::test]
async fn every_slack_tool_through_rest() {
    let slack = FakeSlack::demo();
    let server = FakeServer::start(slack_router(slack.clone())).await.expect("fake slack");
    let mut rest = Rest::new().await;
    rest.configure(
        "slack",
        json!({"bot_token": FakeSlack::BOT_TOKEN, "api_url": format!("{}/api/", server.base_url())}),
    )
    .await;
    let s = "/api/integrations/slack";
    let general = slack.channel_id("general").expect("general");
    let alice = slack.user_id("alice").expect("alice");
    let bob = slack.user_id("bob").expect("bob");
    let sent = rest
        .call(
            "slack_send_message",
            "POST",
            &format!("{s}/message"),
            json!({"channel": general, "text": "v1"}),
        )
        .await;
    let ts = sent["ts"].as_str().expect("ts").to_owned();
    rest.call(
        "slack_update_message",
        "PUT",
        &format!("{s}/message"),
        json!({"channel": general, "ts": ts, "text": "v2"}),
    )
    .await;
    rest.call(
        "slack_post_ephemeral",
        "POST",
        &format!("{s}/message/ephemeral"),
        json!({"channel": general, "user": alice, "text": "psst"}),
    )
    .await;
    rest.call(
        "slack_add_reaction",
        "POST",
        &format!("{s}/reactions"),
        json!({"channel": general, "timestamp": ts, "name": "tada"}),
    )
    .await;
    rest.call(
        "slack_notify_user",
        "POST",
        &format!("{s}/notify"),
        json!({"user": "bob@example.com", "text": "your build passed"}),
    )
    .await;
    assert!(slack.dm_channel(&bob).is_some(), "a DM was opened");
    let history = rest
        .call("slack_list_messages", "GET", &format!("{s}/channels/{general}/messages"), Value::Null)
        .await;
    assert!(history.to_string().contains("v2"), "{history}");
    rest.call("slack_list_channels", "GET", &format!("{s}/channels?exclude_archived=true"), Value::Null)
        .await;
    let created = rest
        .call("slack_create_channel", "POST", &format!("{s}/channels"), json!({"name": "route-check"}))
        .await;
    let channel = created.pointer("/id").or_else(|| created.pointer("/channel/id")).and_then(Value::as_str);
    let channel =
        channel.map(str::to_owned).or_else(|| slack.channel_id("route-check")).expect("new channel id");
    rest.call(
        "slack_invite_to_channel",
        "POST",
        &format!("{s}/channels/{channel}/invite"),
        json!({"users": [alice]}),
    )
    .await;
    rest.call(
        "slack_set_channel_topic",
        "PUT",
        &format!("{s}/channels/{channel}/topic"),
        json!({"topic": "route checks"}),
    )
    .await;
    assert_eq!(slack.topic_of(&channel).as_deref(), Some("route checks"));
    rest.call("slack_archive_channel", "POST", &format!("{s}/channels/{channel}/archive"), json!({})).await;
    assert_eq!(slack.is_archived(&channel), Some(true));
    rest.call("slack_list_users", "GET", &format!("{s}/users"), Value::Null).await;
    let by_email = rest
        .call("slack_find_user_by_email", "GET", &format!("{s}/users?email=carol@example.com"), Value::Null)
        .await;
    assert!(by_email.to_string().contains("Carol"), "{by_email}");
    rest.call("slack_get_user", "GET", &format!("{s}/users/{alice}"), Value::Null).await;
    rest.assert_all_covered("slack").await;
}
