//! A typed client over reqwest for the parts of the Jira Cloud REST API v3 the tools use.
//!
//! Every method is one HTTP request: no retries, no rate limiting, no time-outs here (the core
//! executor wraps whole tool calls in those). Paths, parameters and shapes follow Atlassian's
//! OpenAPI description (`swagger-v3.v3.json`); upstream objects are returned as JSON values so
//! tools can hand out the raw object on request, and [`crate::models`] trims them.

use integration_core::IntegrationError;
use integration_core::reexports::http::StatusCode;
use reqwest::{Method, RequestBuilder, Url};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::PROVIDER;
use crate::config::{JiraAuth, JiraConfig};
use crate::error;

/// Largest page Jira serves for project, issue and user searches.
pub const MAX_PAGE: u32 = 100;

/// A Jira REST v3 client bound to one site and one set of credentials. Cheap to clone.
#[derive(Clone)]
pub struct JiraClient {
    http: reqwest::Client,
    config: JiraConfig,
}

impl std::fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraClient").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One page of `GET /rest/api/3/project/search` (`PageBeanProject`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProjectPage {
    /// The projects of this page.
    pub values: Vec<Value>,
    /// Index of the first project of this page.
    pub start_at: u64,
    /// Number of projects matching, when Jira says.
    pub total: Option<u64>,
    /// Whether this is the last page.
    pub is_last: Option<bool>,
}

/// The body of the enhanced search `POST /rest/api/3/search/jql` (`SearchAndReconcileRequestBean`,
/// which allows no other properties: no `startAt`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    /// The JQL query.
    pub jql: String,
    /// Page size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
    /// Fields to return; without them Jira returns only issue ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The continuation token of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// One page of the enhanced search (`SearchAndReconcileResults`), its issues read as `I`
/// (`IssueBean`s as JSON values by default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SearchPage<I = Value> {
    /// The issues (`IssueBean`s) of this page.
    pub issues: Vec<I>,
    /// The token of the next page; absent on the last page.
    pub next_page_token: Option<String>,
    /// Whether this is the last page.
    pub is_last: Option<bool>,
}

/// The answer of `POST /rest/api/3/issue` (`CreatedIssue`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CreatedIssue {
    /// The new issue's id.
    pub id: String,
    /// The new issue's key (`PROJ-12`).
    pub key: String,
    /// The REST URL of the new issue.
    #[serde(rename = "self")]
    pub self_url: String,
}

#[derive(Deserialize)]
struct TransitionList {
    #[serde(default)]
    transitions: Vec<Value>,
}

impl JiraClient {
    /// A client for `config`.
    pub fn new(config: JiraConfig) -> Result<Self, IntegrationError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("integrations-service-jira/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                IntegrationError::configuration(PROVIDER, format!("cannot build http client: {e}"))
            })?;
        Ok(Self { http, config })
    }

    /// The site URL.
    pub fn base_url(&self) -> &Url {
        &self.config.base_url
    }

    /// The browser link of an issue: `{base_url}/browse/{key}`.
    pub fn browse_url(&self, key: &str) -> String {
        self.url(&["browse", key]).to_string()
    }

    /// A URL under the site with each segment percent-encoded (a key can never add a path level).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.config.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn api(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let mut all = vec!["rest", "api", "3"];
        all.extend_from_slice(segments);
        let builder = self.http.request(method, self.url(&all)).header("accept", "application/json");
        match &self.config.auth {
            JiraAuth::Basic { username, api_token } => {
                builder.basic_auth(username, Some(api_token.expose_secret()))
            }
            JiraAuth::Bearer { token } => builder.bearer_auth(token.expose_secret()),
        }
    }

    /// Send a request; a non-2xx answer becomes a classified error. Returns the status and body.
    async fn send(&self, request: RequestBuilder) -> Result<(StatusCode, bytes::Bytes), IntegrationError> {
        let mut request = request.build().map_err(|e| error::from_reqwest(&e))?;
        integration_core::propagation::inject(request.headers_mut());
        let (method, path) = (request.method().clone(), request.url().path().to_owned());
        let started = std::time::Instant::now();
        let observe = |status: Option<u16>| {
            integration_core::observe_upstream(PROVIDER, method.as_str(), &path, status, started.elapsed())
        };
        let response = self.http.execute(request).await.inspect_err(|_| observe(None));
        let mut response = response.map_err(|e| error::from_reqwest(&e))?;
        let status = response.status();
        // Taken, not cloned: only an error answer reads them, after the body.
        let headers = std::mem::take(response.headers_mut());
        let body = response.bytes().await.inspect_err(|_| observe(None));
        let body = body.map_err(|e| error::from_reqwest(&e))?;
        observe(Some(status.as_u16()));
        if !status.is_success() {
            tracing::debug!(provider = PROVIDER, status = status.as_u16(), "jira answered an error");
            return Err(error::from_response(status, &headers, &body));
        }
        Ok((status, body))
    }

    async fn send_json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, IntegrationError> {
        let (status, body) = self.send(request).await?;
        integration_core::json::from_slice(&body).map_err(|e| {
            IntegrationError::new(
                integration_core::ErrorKind::Upstream { status: Some(status.as_u16()) },
                PROVIDER,
                format!("jira answered an unexpected body: {e}"),
            )
        })
    }

    /// `GET /rest/api/3/myself`: the user the credentials authenticate as.
    pub async fn myself(&self) -> Result<Value, IntegrationError> {
        self.send_json(self.api(Method::GET, &["myself"])).await
    }

    /// `GET /rest/api/3/project/search`: one page of projects visible to the user, ordered by key.
    pub async fn search_projects(
        &self,
        query: Option<&str>,
        start_at: u64,
        max_results: u32,
    ) -> Result<ProjectPage, IntegrationError> {
        let mut request = self.api(Method::GET, &["project", "search"]).query(&[
            ("startAt", start_at.to_string()),
            ("maxResults", max_results.min(MAX_PAGE).to_string()),
            ("orderBy", "key".to_owned()),
            ("expand", "description,lead".to_owned()),
        ]);
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            request = request.query(&[("query", q)]);
        }
        self.send_json(request).await
    }

    /// `GET /rest/api/3/project/{projectIdOrKey}`.
    pub async fn get_project(&self, key: &str) -> Result<Value, IntegrationError> {
        self.send_json(self.api(Method::GET, &["project", key])).await
    }

    /// `GET /rest/api/3/project/{projectIdOrKey}/statuses`: the statuses of each issue type.
    pub async fn project_statuses(&self, key: &str) -> Result<Vec<Value>, IntegrationError> {
        self.send_json(self.api(Method::GET, &["project", key, "statuses"])).await
    }

    /// `POST /rest/api/3/search/jql`: one page of the enhanced JQL search.
    pub async fn search_jql<I: DeserializeOwned + Default>(
        &self,
        request: &SearchRequest,
    ) -> Result<SearchPage<I>, IntegrationError> {
        self.send_json(self.api(Method::POST, &["search", "jql"]).json(request)).await
    }

    /// `GET /rest/api/3/issue/{issueIdOrKey}` with the given fields (all when empty).
    pub async fn get_issue(&self, key: &str, fields: &[&str]) -> Result<Value, IntegrationError> {
        self.get_issue_as(key, fields).await
    }

    /// [`JiraClient::get_issue`] read as `T`.
    pub(crate) async fn get_issue_as<T: DeserializeOwned>(
        &self,
        key: &str,
        fields: &[&str],
    ) -> Result<T, IntegrationError> {
        let mut request = self.api(Method::GET, &["issue", key]);
        if !fields.is_empty() {
            request = request.query(&[("fields", fields.join(","))]);
        }
        self.send_json(request).await
    }

    /// `POST /rest/api/3/issue` with an `IssueUpdateDetails` body (`{"fields": {..}}`).
    pub async fn create_issue(&self, body: &Value) -> Result<CreatedIssue, IntegrationError> {
        self.send_json(self.api(Method::POST, &["issue"]).json(body)).await
    }

    /// `PUT /rest/api/3/issue/{issueIdOrKey}` with an `IssueUpdateDetails` body; Jira answers 204.
    pub async fn edit_issue(&self, key: &str, body: &Value) -> Result<(), IntegrationError> {
        self.send(self.api(Method::PUT, &["issue", key]).json(body)).await.map(|_| ())
    }

    /// `POST /rest/api/3/issue/{issueIdOrKey}/comment` with an ADF body; returns the `Comment`.
    pub async fn add_comment(&self, key: &str, body_adf: &Value) -> Result<Value, IntegrationError> {
        let body = json!({ "body": body_adf });
        self.send_json(self.api(Method::POST, &["issue", key, "comment"]).json(&body)).await
    }

    /// `GET /rest/api/3/issue/{issueIdOrKey}/transitions`: the transitions available now.
    pub async fn transitions(&self, key: &str) -> Result<Vec<Value>, IntegrationError> {
        let list: TransitionList =
            self.send_json(self.api(Method::GET, &["issue", key, "transitions"])).await?;
        Ok(list.transitions)
    }

    /// `POST /rest/api/3/issue/{issueIdOrKey}/transitions`; `extra` may add `fields` / `update`.
    pub async fn do_transition(
        &self,
        key: &str,
        transition_id: &str,
        extra: Value,
    ) -> Result<(), IntegrationError> {
        let mut body = json!({ "transition": { "id": transition_id } });
        if let (Some(target), Value::Object(extra)) = (body.as_object_mut(), extra) {
            target.extend(extra);
        }
        self.send(self.api(Method::POST, &["issue", key, "transitions"]).json(&body)).await.map(|_| ())
    }

    /// `GET /rest/api/3/user/search?query=`: users whose display name or e-mail match.
    pub async fn find_users(
        &self,
        query: &str,
        start_at: u32,
        max_results: u32,
    ) -> Result<Vec<Value>, IntegrationError> {
        let request = self.api(Method::GET, &["user", "search"]).query(&[
            ("query", query.to_owned()),
            ("startAt", start_at.to_string()),
            ("maxResults", max_results.min(MAX_PAGE).to_string()),
        ]);
        self.send_json(request).await
    }

    /// `GET /rest/api/3/users/search`: all users, paginated.
    pub async fn all_users(&self, start_at: u32, max_results: u32) -> Result<Vec<Value>, IntegrationError> {
        let request = self.api(Method::GET, &["users", "search"]).query(&[
            ("startAt", start_at.to_string()),
            ("maxResults", max_results.min(MAX_PAGE).to_string()),
        ]);
        self.send_json(request).await
    }

    /// `GET /rest/api/3/user/assignable/search`: users assignable in a project or on an issue.
    pub async fn assignable_users(
        &self,
        project_key: Option<&str>,
        issue_key: Option<&str>,
        query: Option<&str>,
        max_results: u32,
    ) -> Result<Vec<Value>, IntegrationError> {
        let mut params: Vec<(&str, String)> = vec![("maxResults", max_results.min(MAX_PAGE).to_string())];
        if let Some(p) = project_key {
            params.push(("project", p.to_owned()));
        }
        if let Some(i) = issue_key {
            params.push(("issueKey", i.to_owned()));
        }
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            params.push(("query", q.to_owned()));
        }
        self.send_json(self.api(Method::GET, &["user", "assignable", "search"]).query(&params)).await
    }

    /// `PUT /rest/api/3/issue/{issueIdOrKey}/assignee`; `None` unassigns.
    pub async fn assign_issue(&self, key: &str, account_id: Option<&str>) -> Result<(), IntegrationError> {
        let body = json!({ "accountId": account_id });
        self.send(self.api(Method::PUT, &["issue", key, "assignee"]).json(&body)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_context_path_and_encode_segments() {
        let cfg = JiraConfig::data_center("https://jira.example.com/jira/", "t").expect("config");
        let client = JiraClient::new(cfg).expect("client");
        assert_eq!(client.browse_url("ABC-1"), "https://jira.example.com/jira/browse/ABC-1");
        assert_eq!(client.browse_url("../x?y"), "https://jira.example.com/jira/browse/..%2Fx%3Fy");
        let req = client.api(Method::GET, &["issue", "A/B"]).build().expect("request");
        assert_eq!(req.url().path(), "/jira/rest/api/3/issue/A%2FB");
        assert!(req.headers().get("authorization").is_some_and(|v| v.is_sensitive()));
    }
}
