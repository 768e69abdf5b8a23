//! A stateful fake of the Jira Cloud REST API v3, for tests, benchmarks and offline demos.
//!
//! It keeps projects, users, issues (with comments) and one workflow (`To Do` → `In Progress` →
//! `Done`, with transitions back), checks Basic (e-mail + API token) and Bearer (personal access
//! token) credentials, understands the JQL subset the Jira provider emits (quoted and escaped
//! strings, `=`, `!=`, `~`, `in`, `is EMPTY`, ranges, `AND`/`OR`/`NOT`, parentheses, `ORDER BY`,
//! `currentUser()`), and pages the enhanced search with `nextPageToken`. Answers follow the shapes
//! of Atlassian's OpenAPI description (a test validates them against its schemas). Faults (429,
//! delays, dropped connections) come from the [`FakeServer`](crate::FakeServer) harness.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use integration_testkit::jira::{FakeJira, router};
//! let jira = FakeJira::demo();
//! let server = integration_testkit::FakeServer::start(router(jira.clone())).await?;
//! // point a Jira connection at server.base_url() with FakeJira::USERNAME / FakeJira::API_TOKEN
//! assert!(jira.issue_count() > 0);
//! # Ok(()) }
//! ```

mod jql;
mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

pub use server::router;

/// A project of the fake.
#[derive(Debug, Clone)]
pub(crate) struct FakeProject {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) lead: String,
    pub(crate) next_number: u64,
}

/// A user of the fake.
#[derive(Debug, Clone)]
pub(crate) struct FakeUser {
    pub(crate) account_id: String,
    pub(crate) display_name: String,
    pub(crate) email: String,
    pub(crate) active: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct FakeComment {
    pub(crate) id: String,
    pub(crate) author: String,
    pub(crate) body: Value,
    pub(crate) created: i64,
}

/// An issue of the fake.
#[derive(Debug, Clone)]
pub(crate) struct FakeIssue {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) project: String,
    pub(crate) summary: String,
    pub(crate) description: Option<Value>,
    pub(crate) issue_type: &'static IssueType,
    pub(crate) status: &'static Status,
    pub(crate) assignee: Option<String>,
    pub(crate) reporter: Option<String>,
    pub(crate) priority: Option<&'static Priority>,
    pub(crate) labels: Vec<String>,
    pub(crate) parent: Option<String>,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) comments: Vec<FakeComment>,
    pub(crate) extra: Map<String, Value>,
}

/// A workflow status.
#[derive(Debug)]
pub(crate) struct Status {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) category_id: u64,
    pub(crate) category_key: &'static str,
    pub(crate) category_name: &'static str,
    pub(crate) color: &'static str,
}

pub(crate) static STATUSES: [Status; 3] = [
    Status {
        id: "10000",
        name: "To Do",
        category_id: 2,
        category_key: "new",
        category_name: "To Do",
        color: "blue-gray",
    },
    Status {
        id: "3",
        name: "In Progress",
        category_id: 4,
        category_key: "indeterminate",
        category_name: "In Progress",
        color: "yellow",
    },
    Status {
        id: "10001",
        name: "Done",
        category_id: 3,
        category_key: "done",
        category_name: "Done",
        color: "green",
    },
];

/// A workflow transition: id, name, the statuses it leaves from, the status it leads to.
pub(crate) struct WorkflowTransition {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) from: &'static [&'static str],
    pub(crate) to: &'static str,
}

pub(crate) static TRANSITIONS: [WorkflowTransition; 4] = [
    WorkflowTransition { id: "11", name: "Start Progress", from: &["To Do"], to: "In Progress" },
    WorkflowTransition { id: "21", name: "Done", from: &["To Do", "In Progress"], to: "Done" },
    WorkflowTransition { id: "31", name: "Reopen", from: &["Done"], to: "To Do" },
    WorkflowTransition { id: "41", name: "Stop Progress", from: &["In Progress"], to: "To Do" },
];

/// An issue type.
#[derive(Debug)]
pub(crate) struct IssueType {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) subtask: bool,
    pub(crate) level: i32,
}

pub(crate) static ISSUE_TYPES: [IssueType; 5] = [
    IssueType { id: "10001", name: "Task", subtask: false, level: 0 },
    IssueType { id: "10002", name: "Bug", subtask: false, level: 0 },
    IssueType { id: "10003", name: "Story", subtask: false, level: 0 },
    IssueType { id: "10000", name: "Epic", subtask: false, level: 1 },
    IssueType { id: "10004", name: "Sub-task", subtask: true, level: -1 },
];

/// A priority.
#[derive(Debug)]
pub(crate) struct Priority {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
}

pub(crate) static PRIORITIES: [Priority; 5] = [
    Priority { id: "1", name: "Highest" },
    Priority { id: "2", name: "High" },
    Priority { id: "3", name: "Medium" },
    Priority { id: "4", name: "Low" },
    Priority { id: "5", name: "Lowest" },
];

pub(crate) fn status_named(name: &str) -> Option<&'static Status> {
    STATUSES.iter().find(|s| s.name.eq_ignore_ascii_case(name) || s.id == name)
}

/// The wall clock in epoch milliseconds.
fn epoch_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) projects: Vec<FakeProject>,
    pub(crate) users: Vec<FakeUser>,
    pub(crate) issues: Vec<FakeIssue>,
    /// (e-mail, API token) → account id.
    pub(crate) basic: BTreeMap<(String, String), String>,
    /// Personal access token → account id.
    pub(crate) bearer: BTreeMap<String, String>,
    pub(crate) next_issue_id: u64,
    pub(crate) next_comment_id: u64,
    pub(crate) last_time: i64,
    /// Authenticated calls (method, path); its own lock, so reads of the state run side by side.
    pub(crate) calls: Mutex<Vec<(String, String)>>,
    /// Bodies of `GET /issue/{key}` answers by (site, key, fields): rendering an issue is most of
    /// this fake's work under load, and a real Jira's costs are not ours to measure. Emptied by
    /// every [`FakeJira::lock`], so a change is never served stale.
    pub(crate) rendered: Mutex<std::collections::HashMap<(String, String, String), bytes::Bytes>>,
}

impl State {
    /// Now in epoch milliseconds, strictly increasing so creation order is total.
    pub(crate) fn now(&mut self) -> i64 {
        self.last_time = epoch_ms().max(self.last_time + 1);
        self.last_time
    }

    /// Now in epoch milliseconds for a reader: never before the last write's time, and it does
    /// not advance the clock.
    pub(crate) fn current(&self) -> i64 {
        epoch_ms().max(self.last_time)
    }

    pub(crate) fn user(&self, account_id: &str) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.account_id == account_id)
    }

    pub(crate) fn project(&self, key_or_id: &str) -> Option<&FakeProject> {
        self.projects.iter().find(|p| p.key.eq_ignore_ascii_case(key_or_id) || p.id == key_or_id)
    }

    pub(crate) fn issue_index(&self, key_or_id: &str) -> Option<usize> {
        self.issues.iter().position(|i| i.key.eq_ignore_ascii_case(key_or_id) || i.id == key_or_id)
    }
}

/// What to seed an issue with; see [`FakeJira::add_issue`].
#[derive(Debug, Clone, Default)]
pub struct IssueSeed {
    /// Project key (must exist).
    pub project_key: String,
    /// Summary.
    pub summary: String,
    /// Issue type name (default `Task`).
    pub issue_type: Option<String>,
    /// Status name (default `To Do`).
    pub status: Option<String>,
    /// Assignee account id.
    pub assignee: Option<String>,
    /// Priority name.
    pub priority: Option<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Description as plain text (stored as one ADF paragraph).
    pub description: Option<String>,
}

impl IssueSeed {
    /// A seed with a project and a summary.
    pub fn new(project_key: &str, summary: &str) -> Self {
        Self { project_key: project_key.to_owned(), summary: summary.to_owned(), ..Self::default() }
    }
}

/// The fake's shared state; clone it to keep a handle for seeding and inspection after handing
/// one to [`router`].
#[derive(Debug, Clone)]
pub struct FakeJira {
    pub(crate) state: Arc<RwLock<State>>,
}

impl Default for FakeJira {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeJira {
    /// The e-mail of the seeded account (Basic auth user).
    pub const USERNAME: &'static str = "bot@example.com";
    /// The API token of the seeded account.
    pub const API_TOKEN: &'static str = "fake-api-token";
    /// A personal access token (Bearer) of the seeded account.
    pub const PERSONAL_ACCESS_TOKEN: &'static str = "fake-personal-access-token";
    /// The account id of the seeded account.
    pub const ACCOUNT_ID: &'static str = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077";

    /// A fake with one account (the credentials above) and no projects or issues.
    pub fn new() -> Self {
        let jira = Self { state: Arc::new(RwLock::new(State::default())) };
        jira.add_user(Self::ACCOUNT_ID, "Integration Bot", Self::USERNAME);
        {
            let mut s = jira.lock();
            s.basic
                .insert((Self::USERNAME.to_owned(), Self::API_TOKEN.to_owned()), Self::ACCOUNT_ID.to_owned());
            s.bearer.insert(Self::PERSONAL_ACCESS_TOKEN.to_owned(), Self::ACCOUNT_ID.to_owned());
        }
        jira
    }

    /// A fake with sample data: projects `ENG` (Engineering), `MKT` (Marketing), `OPS`
    /// (Operations), users Mia Krystof and John Smith, and a few issues in `ENG`.
    pub fn demo() -> Self {
        let jira = Self::new();
        jira.add_user("5b10a2844c20165700ede21g", "Mia Krystof", "mia@example.com");
        jira.add_user("5b10ac8d82e05b22cc7d4ef5", "John Smith", "john@example.com");
        jira.add_project("ENG", "Engineering");
        jira.add_project("MKT", "Marketing");
        jira.add_project("OPS", "Operations");
        let seeds = [
            (
                "Login page crashes on submit",
                "Bug",
                "To Do",
                Some("5b10a2844c20165700ede21g"),
                "High",
                &["frontend"][..],
            ),
            (
                "Upgrade the database driver",
                "Task",
                "In Progress",
                Some(Self::ACCOUNT_ID),
                "Medium",
                &["backend"][..],
            ),
            ("Write the onboarding guide", "Story", "Done", None, "Low", &[][..]),
        ];
        for (summary, kind, status, assignee, priority, labels) in seeds {
            jira.add_issue(IssueSeed {
                issue_type: Some(kind.to_owned()),
                status: Some(status.to_owned()),
                assignee: assignee.map(str::to_owned),
                priority: Some(priority.to_owned()),
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                description: Some(format!("{summary}: details.")),
                ..IssueSeed::new("ENG", summary)
            });
        }
        jira
    }

    /// The state, for changing it (one writer, no readers); drops the rendered-issue cache.
    pub(crate) fn lock(&self) -> RwLockWriteGuard<'_, State> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.rendered.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
        state
    }

    /// The state for reading, shared with other readers (calls and rendered answers are recorded
    /// under their own locks), keeping the cache.
    pub(crate) fn peek(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a user.
    pub fn add_user(&self, account_id: &str, display_name: &str, email: &str) -> &Self {
        self.lock().users.push(FakeUser {
            account_id: account_id.to_owned(),
            display_name: display_name.to_owned(),
            email: email.to_owned(),
            active: true,
        });
        self
    }

    /// Add Basic credentials (e-mail + API token) for an existing account.
    pub fn add_credentials(&self, email: &str, api_token: &str, account_id: &str) -> &Self {
        self.lock().basic.insert((email.to_owned(), api_token.to_owned()), account_id.to_owned());
        self
    }

    /// Add a project (led by the seeded account); its id is assigned.
    pub fn add_project(&self, key: &str, name: &str) -> &Self {
        let mut s = self.lock();
        let id = (10000 + s.projects.len()).to_string();
        s.projects.push(FakeProject {
            id,
            key: key.to_owned(),
            name: name.to_owned(),
            description: format!("The {name} project"),
            lead: Self::ACCOUNT_ID.to_owned(),
            next_number: 1,
        });
        self
    }

    /// Add an issue directly (no validation beyond existence of the project); returns its key.
    ///
    /// # Panics
    /// When the project does not exist (a test set-up error).
    #[allow(clippy::expect_used, reason = "test set-up helper: a missing project is a bug in the test")]
    pub fn add_issue(&self, seed: IssueSeed) -> String {
        let mut s = self.lock();
        let now = s.now();
        s.next_issue_id += 1;
        let id = (10000 + s.next_issue_id).to_string();
        let project =
            s.projects.iter_mut().find(|p| p.key == seed.project_key).expect("seeded project exists");
        let key = format!("{}-{}", project.key, project.next_number);
        project.next_number += 1;
        let issue = FakeIssue {
            id,
            key: key.clone(),
            project: seed.project_key,
            summary: seed.summary,
            description: seed.description.map(|text| {
                serde_json::json!({"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": text}]}]})
            }),
            issue_type: ISSUE_TYPES
                .iter()
                .find(|t| seed.issue_type.as_deref().is_none_or(|n| t.name.eq_ignore_ascii_case(n)))
                .unwrap_or(&ISSUE_TYPES[0]),
            status: seed.status.as_deref().and_then(status_named).unwrap_or(&STATUSES[0]),
            assignee: seed.assignee,
            reporter: Some(Self::ACCOUNT_ID.to_owned()),
            priority: seed
                .priority
                .as_deref()
                .and_then(|p| PRIORITIES.iter().find(|x| x.name.eq_ignore_ascii_case(p)))
                .or(Some(&PRIORITIES[2])),
            labels: seed.labels,
            parent: None,
            created: now,
            updated: now,
            comments: Vec::new(),
            extra: Map::new(),
        };
        s.issues.push(issue);
        key
    }

    /// Number of issues.
    pub fn issue_count(&self) -> usize {
        self.lock().issues.len()
    }

    /// The summaries of every issue, in creation order (to count duplicated creates).
    pub fn issue_summaries(&self) -> Vec<String> {
        self.lock().issues.iter().map(|issue| issue.summary.clone()).collect()
    }

    /// Number of projects.
    pub fn project_count(&self) -> usize {
        self.lock().projects.len()
    }

    /// The status name of an issue.
    pub fn issue_status(&self, key: &str) -> Option<String> {
        let s = self.lock();
        s.issue_index(key).map(|i| s.issues[i].status.name.to_owned())
    }

    /// The assignee account id of an issue (`Some(None)`: unassigned).
    pub fn issue_assignee(&self, key: &str) -> Option<Option<String>> {
        let s = self.lock();
        s.issue_index(key).map(|i| s.issues[i].assignee.clone())
    }

    /// The summary of an issue.
    pub fn issue_summary(&self, key: &str) -> Option<String> {
        let s = self.lock();
        s.issue_index(key).map(|i| s.issues[i].summary.clone())
    }

    /// The stored description (ADF) of an issue.
    pub fn issue_description(&self, key: &str) -> Option<Value> {
        let s = self.lock();
        s.issue_index(key).and_then(|i| s.issues[i].description.clone())
    }

    /// The labels of an issue.
    pub fn issue_labels(&self, key: &str) -> Option<Vec<String>> {
        let s = self.lock();
        s.issue_index(key).map(|i| s.issues[i].labels.clone())
    }

    /// The comment bodies (ADF) of an issue.
    pub fn comments(&self, key: &str) -> Vec<Value> {
        let s = self.lock();
        s.issue_index(key)
            .map(|i| s.issues[i].comments.iter().map(|c| c.body.clone()).collect())
            .unwrap_or_default()
    }

    /// How many requests reached the fake (after authentication) whose path starts with `prefix`.
    pub fn calls_to(&self, prefix: &str) -> usize {
        let state = self.peek();
        let calls = state.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.iter().filter(|(_, path)| path.starts_with(prefix)).count()
    }

    /// Forget the recorded calls.
    pub fn reset_calls(&self) {
        self.lock().calls.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod schema_tests;
