//! Every Jira tool end to end: Registry + InMemoryConnections + Executor against the fake Jira of
//! the testkit, served by its harness (which also injects the faults).

use std::sync::Arc;
use std::time::Duration;

use integration_core::{
    Connection, ErrorKind, Executor, ExecutorConfig, InMemoryConnections, IntegrationError, Registry,
    ToolCall,
};
use integration_testkit::cache::RecordingCache;
use integration_testkit::jira::{FakeJira, IssueSeed, router};
use integration_testkit::{FakeServer, Fault};
use serde_json::{Value, json};

struct Env {
    jira: FakeJira,
    server: FakeServer,
    executor: Executor,
    connections: Arc<InMemoryConnections>,
}

fn cloud(base_url: &str, token: &str) -> Connection {
    Connection::new("jira", "jira", json!({"base_url": base_url, "username": FakeJira::USERNAME}))
        .with_secret("api_token", token)
}

async fn setup() -> Env {
    let jira = FakeJira::demo();
    let server = FakeServer::start(router(jira.clone())).await.expect("fake jira starts");
    let registry = Arc::new(Registry::new());
    registry.add(integration_jira::provider()).expect("jira tools register");
    let connections = Arc::new(InMemoryConnections::new());
    connections.insert(cloud(server.base_url(), FakeJira::API_TOKEN));
    let config = ExecutorConfig {
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        timeout: Duration::from_secs(10),
        ..ExecutorConfig::default()
    };
    let executor = Executor::new(registry, connections.clone(), config);
    Env { jira, server, executor, connections }
}

impl Env {
    async fn call(&self, tool: &str, params: Value) -> Result<Value, IntegrationError> {
        self.executor.execute(ToolCall::new(tool, params)).await.result
    }

    async fn ok(&self, tool: &str, params: Value) -> Value {
        self.call(tool, params.clone()).await.unwrap_or_else(|e| panic!("{tool} {params}: {e:?}"))
    }

    async fn err(&self, tool: &str, params: Value) -> IntegrationError {
        match self.call(tool, params.clone()).await {
            Ok(v) => panic!("{tool} {params} should fail, got {v}"),
            Err(e) => e,
        }
    }
}

#[tokio::test]
async fn tools_have_routes_and_hints() {
    let registry = Registry::new();
    registry.add(integration_jira::provider()).expect("register");
    let routes: Vec<(String, String, String)> = registry
        .tools()
        .iter()
        .filter_map(|t| {
            let r = t.spec().route.clone()?;
            Some((t.spec().name.clone(), r.method.as_str().to_owned(), r.path))
        })
        .collect();
    assert_eq!(routes.len(), 14, "{routes:?}");
    let hints = |name: &str| registry.get(name).expect(name).spec().hints;
    assert!(hints("jira_search_issues").read_only);
    assert!(!hints("jira_create_issue").idempotent && !hints("jira_create_issue").read_only);
    assert!(hints("jira_transition_issue").idempotent && !hints("jira_transition_issue").read_only);
    assert_eq!(
        registry.get("jira_project_finder").expect("finder").spec().required_params(),
        vec!["project_name"]
    );
    let create = registry.get("jira_create_issue").expect("create");
    assert_eq!(create.spec().parameters["properties"]["type"]["default"], "Task");
}

#[tokio::test]
async fn check_reports_the_identity_and_bad_credentials() {
    let env = setup().await;
    let jira = integration_jira::Jira::new();
    use integration_core::Integration as _;
    let health = jira.check(&cloud(env.server.base_url(), FakeJira::API_TOKEN)).await.expect("healthy");
    assert_eq!(health.identity.as_deref(), Some("Integration Bot <bot@example.com>"));
    let bearer = Connection::new("jira", "jira-dc", json!({"base_url": env.server.base_url()}))
        .with_secret("personal_access_token", FakeJira::PERSONAL_ACCESS_TOKEN);
    assert!(jira.check(&bearer).await.is_ok());
    let err = jira.check(&cloud(env.server.base_url(), "wrong")).await.expect_err("401");
    assert_eq!(err.kind(), &ErrorKind::Authentication);
    assert_eq!(err.message(), "Client must be authenticated to access this resource.");
    assert!(!format!("{err:?}").contains("wrong"), "no secret in errors");
}

#[tokio::test]
async fn bad_credentials_through_the_executor() {
    let env = setup().await;
    env.connections.insert(cloud(env.server.base_url(), "not-the-token"));
    let err = env.err("jira_list_projects", json!({})).await;
    assert_eq!(err.kind(), &ErrorKind::Authentication);
    assert_eq!(env.server.calls_to("/rest/api/3/project/search"), 1, "authentication errors are not retried");
}

#[tokio::test]
async fn list_and_find_projects_with_the_cache() {
    let env = setup().await;
    let all = env.ok("jira_list_projects", json!({})).await;
    let keys: Vec<&str> =
        all["projects"].as_array().expect("projects").iter().filter_map(|p| p["key"].as_str()).collect();
    assert_eq!(keys, ["ENG", "MKT", "OPS"]);
    assert_eq!(all["projects"][0]["url"], format!("{}/browse/ENG", env.server.base_url()));
    assert_eq!(all["projects"][0]["lead"], "Integration Bot");

    // Paging with limit and cursor, through several upstream pages.
    let first = env.ok("jira_list_projects", json!({"limit": 2})).await;
    assert_eq!(first["projects"].as_array().map(Vec::len), Some(2));
    let cursor = first["next_cursor"].as_str().expect("more");
    let rest = env.ok("jira_list_projects", json!({"limit": 2, "cursor": cursor})).await;
    assert_eq!(rest["projects"][0]["key"], "OPS");
    assert!(rest["next_cursor"].is_null());
    let filtered = env.ok("jira_list_projects", json!({"query": "market"})).await;
    assert_eq!(filtered["projects"][0]["name"], "Marketing");

    // The finder: case-insensitive exact name or key; the list is cached per connection.
    let before = env.server.calls_to("/rest/api/3/project/search");
    let found = env.ok("jira_project_finder", json!({"project_name": "engineering"})).await;
    assert_eq!(found["key"], "ENG");
    let found = env.ok("jira_project_finder", json!({"project_name": "mkt"})).await;
    assert_eq!(found["name"], "Marketing");
    assert_eq!(
        env.server.calls_to("/rest/api/3/project/search") - before,
        1,
        "second call served from cache"
    );
    let raw = env.ok("jira_project_finder", json!({"project_name": "OPS", "raw": true})).await;
    assert!(raw["avatarUrls"].is_object(), "raw gives the upstream object");
    assert_eq!(raw["key"], "OPS");
    assert_eq!(
        env.server.calls_to("/rest/api/3/project/search") - before,
        1,
        "the raw list was cached with the trimmed one"
    );
    let cached_ops = env.ok("jira_project_finder", json!({"project_name": "Operations"})).await;
    assert_eq!(cached_ops["key"], "OPS");
    assert!(cached_ops.get("avatarUrls").is_none(), "trimmed from the cache");

    // Unknown project: NotFound with the closest names.
    let err = env.err("jira_project_finder", json!({"project_name": "Enginering"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(err.details().expect("details")["closest"][0], "Engineering");

    // A caller that refuses cached answers reaches Jira.
    let mut call = ToolCall::new("jira_project_finder", json!({"project_name": "Operations"}));
    call.use_cache = false;
    let before = env.server.calls_to("/rest/api/3/project/search");
    let fresh = env.executor.execute(call).await.result.expect("fresh");
    assert_eq!(env.server.calls_to("/rest/api/3/project/search") - before, 1);
    assert_eq!(fresh, cached_ops, "the cached trimmed project is the one a fresh call makes");

    // The list tool caches too.
    let before = env.server.calls_to("/rest/api/3/project/search");
    env.ok("jira_list_projects", json!({"query": "market"})).await;
    assert_eq!(env.server.calls_to("/rest/api/3/project/search"), before);
}

/// Finder calls that miss the cache together fetch the project list once: the others wait for it.
#[tokio::test]
async fn concurrent_finder_misses_fetch_the_project_list_once() {
    let env = setup().await;
    env.server.faults().push(Fault::delay(Duration::from_millis(100)).times(4));
    let find = |name: &'static str| env.call("jira_project_finder", json!({"project_name": name}));
    let (a, b, c, d) = tokio::join!(find("Engineering"), find("Marketing"), find("ops"), find("ENG"));
    let keys: Vec<Value> = [a, b, c, d].into_iter().map(|r| r.expect("found")["key"].clone()).collect();
    assert_eq!(keys, [json!("ENG"), json!("MKT"), json!("OPS"), json!("ENG")]);
    assert_eq!(env.server.calls_to("/rest/api/3/project/search"), 1, "one fetch for the four misses");
}

/// A project found by name is read back from its own cache entry: the next calls for it, in any
/// case, do not read the project list again. Names that match nothing are not cached.
#[tokio::test]
async fn a_found_project_is_read_back_from_its_own_cache_entry() {
    let env = setup().await;
    let cache = Arc::new(RecordingCache::default());
    let executor =
        Executor::new(env.executor.registry().clone(), env.connections.clone(), ExecutorConfig::default())
            .with_cache(cache.clone());
    let find =
        |name: &str| executor.execute(ToolCall::new("jira_project_finder", json!({"project_name": name})));
    assert_eq!(find("Engineering").await.result.expect("found")["key"], "ENG");
    let lists = cache.reads("projects:all:views");
    assert!(lists >= 1, "the first call reads the list");
    for spelling in ["engineering", " ENGINEERING "] {
        assert_eq!(find(spelling).await.result.expect("found")["key"], "ENG");
    }
    assert_eq!(cache.reads("projects:all:views"), lists, "later calls do not: {:?}", cache.log());
    assert_eq!(cache.reads("projects:found:view:engineering"), 3);
    assert_eq!(env.server.calls_to("/rest/api/3/project/search"), 1);

    let missing = find("Enginering").await.result.expect_err("no such project");
    assert_eq!(missing.kind(), &ErrorKind::NotFound);
    assert!(!cache.written("projects:found:view:enginering"), "{:?}", cache.log());
}

#[tokio::test]
async fn get_project_and_statuses() {
    let env = setup().await;
    let project = env.ok("jira_get_project", json!({"key": "ENG"})).await;
    assert_eq!(project["name"], "Engineering");
    assert_eq!(project["description"], "The Engineering project");
    let err = env.err("jira_get_project", json!({"key": "NOPE"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(err.message(), "No project could be found with key 'NOPE'.");
    let err = env.err("jira_get_project", json!({"key": "../myself"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let statuses = env.ok("jira_list_project_statuses", json!({"key": "ENG"})).await;
    let names: Vec<&str> = statuses["issue_types"][0]["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["To Do", "In Progress", "Done"]);
}

#[tokio::test]
async fn create_then_search_get_update_comment() {
    let env = setup().await;
    let created = env
        .ok(
            "jira_create_issue",
            json!({
                "project_key": "ENG",
                "summary": "Checkout fails with \"quotes\" OR worse",
                "description": "Steps:\n- open cart\n- pay\n\n```\nstack trace\n```",
                "labels": ["checkout", "p1"],
                "priority": "High",
                "assignee": "mia@example.com",
            }),
        )
        .await;
    let key = created["key"].as_str().expect("key").to_owned();
    assert_eq!(key, "ENG-4");
    assert_eq!(created["url"], format!("{}/browse/ENG-4", env.server.base_url()));
    assert_eq!(env.jira.issue_count(), 4);
    let description = env.jira.issue_description(&key).expect("stored ADF");
    assert_eq!(description["content"][1]["type"], "bulletList");
    assert_eq!(description["content"][2]["type"], "codeBlock");

    // Found by search, with hostile text as a literal value.
    let found = env
        .ok(
            "jira_search_issues",
            json!({"project_key": "ENG", "text": "\"quotes\" OR", "labels": ["checkout"]}),
        )
        .await;
    assert_eq!(found["count"], 1, "{found}");
    let issue = &found["issues"][0];
    assert_eq!(issue["key"], key);
    assert_eq!(issue["type"], "Task", "type defaults to Task");
    assert_eq!(issue["status"], "To Do");
    assert_eq!(issue["priority"], "High");
    assert_eq!(issue["assignee"], "Mia Krystof");
    assert_eq!(issue["description"], "Steps:\n\n- open cart\n- pay\n\n```\nstack trace\n```");
    let injected = env.ok("jira_search_issues", json!({"status": "Done\" OR project = \"MKT"})).await;
    assert_eq!(injected["count"], 0, "an injection-shaped value matches nothing: {}", injected["jql"]);

    let raw = env.ok("jira_search_issues", json!({"project_key": "ENG", "raw": true, "limit": 1})).await;
    assert!(raw["issues"][0]["fields"]["status"]["statusCategory"].is_object());

    // Update, comment, get.
    let updated = env
        .ok(
            "jira_update_issue",
            json!({"key": key, "summary": "Checkout fails", "labels": ["checkout"], "priority": "Low"}),
        )
        .await;
    assert_eq!(updated["updated_fields"], json!(["labels", "priority", "summary"]));
    assert_eq!(env.jira.issue_summary(&key).as_deref(), Some("Checkout fails"));
    let comment = env.ok("jira_add_comment", json!({"key": key, "body": "Looking into it **now**"})).await;
    assert_eq!(comment["body"], "Looking into it now");
    assert_eq!(comment["author"], "Integration Bot");
    let adf = json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "as ADF"}]}]});
    env.ok("jira_add_comment", json!({"key": key, "body": adf})).await;
    assert_eq!(env.jira.comments(&key)[1], adf, "ADF passes through unchanged");
    let got = env.ok("jira_get_issue", json!({"key": key})).await;
    assert_eq!(got["summary"], "Checkout fails");
    assert_eq!(got["labels"], json!(["checkout"]));
    assert_eq!(got["comments"][0]["body"], "Looking into it now");
    assert_eq!(got["comment_count"], 2);
    let raw = env.ok("jira_get_issue", json!({"key": key, "raw": true})).await;
    assert_eq!(raw["fields"]["priority"]["name"], "Low");

    // Errors: unknown issue, unknown project, invalid fields.
    let err = env.err("jira_get_issue", json!({"key": "ENG-999"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let err = env.err("jira_create_issue", json!({"project_key": "NOPE", "summary": "x"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    assert_eq!(err.details().expect("details")["errors"]["project"], "valid project is required");
    let err =
        env.err("jira_create_issue", json!({"project_key": "ENG", "summary": "x", "type": "Saga"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(err.message(), "issuetype: The issue type selected is invalid.");
    let err = env
        .err("jira_create_issue", json!({"project_key": "ENG", "summary": "x", "labels": ["two words"]}))
        .await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = env.err("jira_search_issues", json!({"project_key": "NOPE"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(err.message(), "The value 'NOPE' does not exist for the field 'project'.");
    let err = env.err("jira_update_issue", json!({"key": key})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = env.err("jira_search_issues", json!({"jql": "project = ENG", "status": "Done"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = env.err("jira_search_issues", json!({"projectKey": "ENG"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput, "unknown parameters are refused");
}

#[tokio::test]
async fn search_pages_with_cursor_and_filters() {
    let env = setup().await;
    for n in 0..7 {
        env.jira.add_issue(IssueSeed {
            labels: vec!["bulk".into()],
            issue_type: Some(if n % 2 == 0 { "Bug" } else { "Story" }.into()),
            ..IssueSeed::new("OPS", &format!("Bulk issue {n}"))
        });
    }
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = json!({"project_key": "OPS", "limit": 3, "order_by": "created", "order": "asc"});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let page = env.ok("jira_search_issues", params).await;
        keys.extend(
            page["issues"]
                .as_array()
                .expect("issues")
                .iter()
                .map(|i| i["key"].as_str().unwrap_or("").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(keys, (1..=7).map(|n| format!("OPS-{n}")).collect::<Vec<_>>());
    let all = env.ok("jira_search_issues", json!({"project_key": "OPS", "limit": 1000})).await;
    assert_eq!(all["count"], 7);
    assert!(all["next_cursor"].is_null());
    let bugs = env.ok("jira_search_issues", json!({"project_key": "OPS", "type": "Bug"})).await;
    assert_eq!(bugs["count"], 4);
    let several =
        env.ok("jira_search_issues", json!({"status": ["To Do", "Done"], "project_key": "ENG"})).await;
    assert_eq!(several["count"], 2);
    let mine = env.ok("jira_search_issues", json!({"assignee": "me"})).await;
    assert_eq!(mine["issues"][0]["summary"], "Upgrade the database driver");
    let recent =
        env.ok("jira_search_issues", json!({"created_after": "-1d", "updated_before": "2000-01-01"})).await;
    assert_eq!(recent["count"], 0);
    let raw_jql = env.ok("jira_search_issues", json!({"jql": "labels = bulk AND issuetype = Story"})).await;
    assert_eq!(raw_jql["count"], 3);
    let err = env.err("jira_search_issues", json!({"cursor": "bogus"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
}

#[tokio::test]
async fn transitions_by_id_and_by_status() {
    let env = setup().await;
    let listed = env.ok("jira_list_transitions", json!({"key": "ENG-1"})).await;
    let ids: Vec<&str> =
        listed["transitions"].as_array().expect("list").iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, ["11", "21"]);
    assert_eq!(listed["transitions"][0]["to_status"], "In Progress");

    let moved = env.ok("jira_transition_issue", json!({"key": "ENG-1", "transition_id": "11"})).await;
    assert_eq!(moved["status"], "In Progress");
    assert_eq!(env.jira.issue_status("ENG-1").as_deref(), Some("In Progress"));
    let moved =
        env.ok("jira_transition_issue", json!({"key": "ENG-1", "status": "done", "comment": "Fixed."})).await;
    assert_eq!(moved["transition_id"], "21");
    assert_eq!(env.jira.issue_status("ENG-1").as_deref(), Some("Done"));
    assert_eq!(env.jira.comments("ENG-1").len(), 1);
    // Repeating is harmless: already there.
    let again = env.ok("jira_transition_issue", json!({"key": "ENG-1", "status": "Done"})).await;
    assert_eq!(again["changed"], false);

    // Invalid transition: refused with the available ones.
    let err = env.err("jira_transition_issue", json!({"key": "ENG-1", "transition_id": "11"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(err.details().expect("details")["available_transitions"][0]["id"], "31");
    let err = env.err("jira_transition_issue", json!({"key": "ENG-1", "status": "Blocked"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = env.err("jira_transition_issue", json!({"key": "ENG-1"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let err = env.err("jira_transition_issue", json!({"key": "ENG-404", "status": "Done"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
}

#[tokio::test]
async fn users_and_assignment() {
    let env = setup().await;
    let all = env.ok("jira_list_users", json!({})).await;
    assert_eq!(all["users"].as_array().map(Vec::len), Some(3));
    let some = env.ok("jira_list_users", json!({"query": "john"})).await;
    assert_eq!(some["users"][0]["display_name"], "John Smith");
    assert_eq!(some["users"][0]["email"], "john@example.com");
    let paged = env.ok("jira_list_users", json!({"limit": 2})).await;
    let rest = env.ok("jira_list_users", json!({"limit": 2, "cursor": paged["next_cursor"]})).await;
    assert_eq!(rest["users"].as_array().map(Vec::len), Some(1));
    let assignable = env.ok("jira_list_users", json!({"project_key": "ENG", "query": "mia"})).await;
    assert_eq!(assignable["users"][0]["account_id"], "5b10a2844c20165700ede21g");

    let found = env.ok("jira_find_user", json!({"query": "Mia Krystof"})).await;
    assert_eq!(found["account_id"], "5b10a2844c20165700ede21g");
    let err = env.err("jira_find_user", json!({"query": "nobody"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound);
    let err = env.err("jira_find_user", json!({"query": "example.com"})).await;
    assert_eq!(err.kind(), &ErrorKind::NotFound, "no single user");
    assert_eq!(err.details().expect("details")["closest"].as_array().map(Vec::len), Some(3));
    env.jira.add_user("5b10ac8d82e05b22cc7d4e00", "John Smith", "john.smith@example.org");
    let err = env.err("jira_find_user", json!({"query": "John Smith"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput, "ambiguous");
    assert_eq!(err.details().expect("details")["candidates"].as_array().map(Vec::len), Some(2));

    let assigned = env.ok("jira_assign_issue", json!({"key": "ENG-3", "assignee": "john@example.com"})).await;
    assert_eq!(assigned["assignee_account_id"], "5b10ac8d82e05b22cc7d4ef5");
    assert_eq!(env.jira.issue_assignee("ENG-3"), Some(Some("5b10ac8d82e05b22cc7d4ef5".to_owned())));
    env.ok("jira_assign_issue", json!({"key": "ENG-3", "assignee": "me"})).await;
    assert_eq!(env.jira.issue_assignee("ENG-3"), Some(Some(FakeJira::ACCOUNT_ID.to_owned())));
    env.ok("jira_assign_issue", json!({"key": "ENG-3", "assignee": "5b10a2844c20165700ede21g"})).await;
    assert_eq!(env.jira.issue_assignee("ENG-3"), Some(Some("5b10a2844c20165700ede21g".to_owned())));
    env.ok("jira_assign_issue", json!({"key": "ENG-3", "assignee": "unassigned"})).await;
    assert_eq!(env.jira.issue_assignee("ENG-3"), Some(None));
    let err = env.err("jira_assign_issue", json!({"key": "ENG-3", "assignee": "unknown-account"})).await;
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    assert_eq!(err.message(), "User 'unknown-account' cannot be assigned issues.");
}

#[tokio::test]
async fn get_issue_shows_the_latest_twenty_comments_and_counts_all() {
    let env = setup().await;
    for n in 1..=25 {
        env.ok("jira_add_comment", json!({"key": "ENG-1", "body": format!("comment {n}")})).await;
    }
    let got = env.ok("jira_get_issue", json!({"key": "ENG-1"})).await;
    let bodies: Vec<&str> =
        got["comments"].as_array().expect("comments").iter().filter_map(|c| c["body"].as_str()).collect();
    let expected: Vec<String> = (6..=25).map(|n| format!("comment {n}")).collect();
    assert_eq!(bodies, expected, "the latest 20, oldest first");
    assert_eq!(got["comment_count"], 25);
    assert_eq!(got["comments"][0]["author"], "Integration Bot");
}

#[tokio::test]
async fn rate_limited_then_success_after_retry() {
    let env = setup().await;
    env.server
        .faults()
        .push(Fault::status(429).header("retry-after", "0.2").times(2).on_path("/rest/api/3/search/jql"));
    let started = std::time::Instant::now();
    let outcome =
        env.executor.execute(ToolCall::new("jira_search_issues", json!({"project_key": "ENG"}))).await;
    let result = outcome.result.expect("succeeds after retries");
    assert_eq!(result["count"], 3);
    assert_eq!(outcome.attempts, 3);
    assert!(started.elapsed() >= Duration::from_millis(400), "Retry-After honoured");
    assert_eq!(env.server.calls_to("/rest/api/3/search/jql"), 3);

    // A create (not idempotent) is retried after 429 too: Jira did nothing.
    env.server.faults().push(Fault::status(429).header("retry-after", "0").on_path("/rest/api/3/issue"));
    let created = env.ok("jira_create_issue", json!({"project_key": "ENG", "summary": "After 429"})).await;
    assert_eq!(created["key"], "ENG-4");
    assert_eq!(env.jira.issue_count(), 4, "created exactly once");

    // Without budget left the caller sees RateLimited with the wait.
    env.server
        .faults()
        .push(Fault::status(429).header("retry-after", "30").times(10).on_path("/rest/api/3/myself"));
    let err = env.err("jira_assign_issue", json!({"key": "ENG-1", "assignee": "me"})).await;
    assert!(
        matches!(err.kind(), ErrorKind::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(30))
    );
}

#[tokio::test]
async fn unreachable_jira_is_a_network_error() {
    let env = setup().await;
    env.server.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = env.err("jira_get_project", json!({"key": "ENG"})).await;
    assert_eq!(err.kind(), &ErrorKind::Network);
}

#[tokio::test]
async fn bodies_cut_off_on_the_wire_are_network_errors() {
    let env = setup().await;
    let project = r#"{"id":"10000","key":"ENG","name":"Engineering"}"#;
    // cut off once: a read is retried and succeeds
    env.server.faults().push(Fault::truncated(200, project, 20).on_path("/rest/api/3/project/ENG"));
    let outcome = env.executor.execute(ToolCall::new("jira_get_project", json!({"key": "ENG"}))).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(outcome.attempts, 2);
    // cut off on a create: a network error that may have acted, not repeated
    env.server.faults().push(Fault::truncated(201, project, 20).on_path("/rest/api/3/issue"));
    let outcome = env
        .executor
        .execute(ToolCall::new("jira_create_issue", json!({"project_key": "ENG", "summary": "x"})))
        .await;
    let err = outcome.result.expect_err("cut off");
    assert_eq!(err.kind(), &ErrorKind::Network, "{err:?}");
    assert_eq!(outcome.attempts, 1);
    // complete on the wire but not JSON: a bad answer, not retried
    env.server.faults().push(
        Fault::status(200).content_type("text/html").body("<html></html>").on_path("/rest/api/3/project/ENG"),
    );
    let outcome = env.executor.execute(ToolCall::new("jira_get_project", json!({"key": "ENG"}))).await;
    assert_eq!(outcome.result.expect_err("html").kind(), &ErrorKind::Upstream { status: Some(200) });
    assert_eq!(outcome.attempts, 1);
}
