//! The trimmed shapes tools answer with: what an agent needs from Jira's large objects.
//!
//! Each `from_value` reads an upstream JSON object leniently (missing or `null` fields become
//! `None`), so an unusual field on one site never fails a whole call.

use schemars::JsonSchema;
use serde::{Deserialize as _, Serialize};
use serde_json::Value;

use crate::adf;
use crate::client::JiraClient;
use crate::wire::{CommentBean, IssueBean};

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    integration_core::json_at(v, pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn owned(v: &Value, pointer: &str) -> Option<String> {
    str_at(v, pointer).map(str::to_owned)
}

/// A Jira user.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct User {
    /// The account id (use it to assign issues).
    pub account_id: Option<String>,
    /// The name shown in Jira.
    pub display_name: Option<String>,
    /// The e-mail address, when the user's privacy settings show it.
    pub email: Option<String>,
    /// Whether the account is active.
    pub active: Option<bool>,
}

impl User {
    /// Trim a `User` / `UserDetails` object.
    pub fn from_value(v: &Value) -> Self {
        Self {
            account_id: owned(v, "/accountId").or_else(|| owned(v, "/name")),
            display_name: owned(v, "/displayName"),
            email: owned(v, "/emailAddress"),
            active: v.get("active").and_then(Value::as_bool),
        }
    }
}

/// A Jira project.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Project {
    /// The project id.
    pub id: Option<String>,
    /// The project key (`ENG`).
    pub key: String,
    /// The project name.
    pub name: String,
    /// `software`, `service_desk` or `business`.
    pub project_type: Option<String>,
    /// The description, when expanded.
    pub description: Option<String>,
    /// The project lead's display name.
    pub lead: Option<String>,
    /// The browser link.
    pub url: String,
}

impl Project {
    /// Trim a `Project` object.
    pub fn from_value(v: &Value, client: &JiraClient) -> Self {
        let key = owned(v, "/key").unwrap_or_default();
        let url = client.browse_url(&key);
        Self {
            id: owned(v, "/id"),
            name: owned(v, "/name").unwrap_or_default(),
            project_type: owned(v, "/projectTypeKey"),
            description: owned(v, "/description"),
            lead: owned(v, "/lead/displayName"),
            url,
            key,
        }
    }
}

/// A Jira issue, trimmed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Issue {
    /// The issue key (`ENG-12`).
    pub key: String,
    /// The issue id.
    pub id: Option<String>,
    /// The summary (title).
    pub summary: Option<String>,
    /// The status name.
    pub status: Option<String>,
    /// The status category (`new`, `indeterminate`, `done`).
    pub status_category: Option<String>,
    /// The assignee's display name.
    pub assignee: Option<String>,
    /// The assignee's account id.
    pub assignee_account_id: Option<String>,
    /// The reporter's display name.
    pub reporter: Option<String>,
    /// The priority name.
    pub priority: Option<String>,
    /// The issue type name.
    #[serde(rename = "type")]
    pub issue_type: Option<String>,
    /// The project key.
    pub project: Option<String>,
    /// The parent issue key.
    pub parent: Option<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Created timestamp.
    pub created: Option<String>,
    /// Updated timestamp.
    pub updated: Option<String>,
    /// The description as plain text.
    pub description: Option<String>,
    /// The browser link.
    pub url: String,
}

/// The fields the trimmed issue needs; searches ask Jira for these only.
pub const ISSUE_FIELDS: &[&str] = &[
    "summary",
    "status",
    "assignee",
    "reporter",
    "priority",
    "issuetype",
    "project",
    "parent",
    "labels",
    "created",
    "updated",
    "description",
];

impl Issue {
    /// Trim an `IssueBean` read by the typed view, which builds only the fields kept here.
    pub(crate) fn from_bean(bean: IssueBean, client: &JiraClient) -> Self {
        let key = bean.key.0.unwrap_or_default();
        let f = bean.fields.0.unwrap_or_default();
        let description = f.description.map(|d| d.to_text()).filter(|d| !d.is_empty());
        let (status, status_category) = match f.status.0 {
            Some(s) => (s.name.0, s.category.0.and_then(|c| c.key.0)),
            None => (None, None),
        };
        let (assignee, assignee_account_id) = match f.assignee.0 {
            Some(a) => (a.display_name.0, a.account_id.0),
            None => (None, None),
        };
        Self {
            url: client.browse_url(&key),
            id: bean.id.0,
            summary: f.summary.0,
            status,
            status_category,
            assignee,
            assignee_account_id,
            reporter: f.reporter.0.and_then(|r| r.display_name.0),
            priority: f.priority.0.and_then(|p| p.name.0),
            issue_type: f.issuetype.0.and_then(|t| t.name.0),
            project: f.project.0.and_then(|p| p.key.0),
            parent: f.parent.0.and_then(|p| p.key.0),
            labels: f.labels.0,
            created: f.created.0,
            updated: f.updated.0,
            description,
            key,
        }
    }

    /// Trim an `IssueBean` given as a JSON value (through the same typed, lenient view).
    pub fn from_value(v: &Value, client: &JiraClient) -> Self {
        // The view never fails on a JSON value: unexpected types read as absent.
        Self::from_bean(IssueBean::deserialize(v).unwrap_or_default(), client)
    }
}

/// An issue comment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comment {
    /// The comment id.
    pub id: Option<String>,
    /// The author's display name.
    pub author: Option<String>,
    /// The body as plain text.
    pub body: String,
    /// Created timestamp.
    pub created: Option<String>,
}

impl Comment {
    /// Trim a comment read by the typed view.
    pub(crate) fn from_bean(bean: CommentBean) -> Self {
        Self {
            id: bean.id.0,
            author: bean.author.0.and_then(|a| a.display_name.0),
            body: bean.body.map(|b| b.to_text()).unwrap_or_default(),
            created: bean.created.0,
        }
    }

    /// Trim a `Comment`.
    pub fn from_value(v: &Value) -> Self {
        Self {
            id: owned(v, "/id"),
            author: owned(v, "/author/displayName"),
            body: v.get("body").map(adf::to_text).unwrap_or_default(),
            created: owned(v, "/created"),
        }
    }
}

/// A workflow transition available on an issue.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Transition {
    /// The transition id (pass it to `jira_transition_issue`).
    pub id: String,
    /// The transition name (`Start Progress`).
    pub name: Option<String>,
    /// The status the issue moves to.
    pub to_status: Option<String>,
    /// The category of that status.
    pub to_status_category: Option<String>,
}

impl Transition {
    /// Trim an `IssueTransition`.
    pub fn from_value(v: &Value) -> Self {
        Self {
            id: owned(v, "/id").unwrap_or_default(),
            name: owned(v, "/name"),
            to_status: owned(v, "/to/name"),
            to_status_category: owned(v, "/to/statusCategory/key"),
        }
    }
}
