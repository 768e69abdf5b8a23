//! Repositories: search, details with languages, file contents.

use std::sync::Arc;

use base64::Engine;
use integration_core::{
    ErrorKind, IntegrationError, Method, Tool, ToolContext, ToolHints, ToolSpec, json_object, typed_tool,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PROVIDER, ROUTE, Shared, check_ref, keep_all, limit, per_page, repo_path};
use crate::client::{segment, with_query};
use crate::models;

/// Search repositories.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct RepoSearch {
    /// GitHub search syntax: words plus qualifiers such as `language:rust`, `user:octocat`,
    /// `topic:cli`, `stars:>100`.
    query: String,
    /// `stars`, `forks`, `help-wanted-issues` or `updated`; best match when absent.
    sort: Option<RepoSort>,
    /// `desc` (default) or `asc`.
    order: Option<Order>,
    /// How many repositories to return (default 30, at most 1000).
    limit: Option<u32>,
    /// The `next_cursor` of a previous answer, to continue.
    cursor: Option<String>,
    /// Return GitHub's objects unchanged.
    #[serde(default)]
    raw: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum RepoSort {
    Stars,
    Forks,
    HelpWantedIssues,
    Updated,
}

impl RepoSort {
    fn as_str(self) -> &'static str {
        match self {
            RepoSort::Stars => "stars",
            RepoSort::Forks => "forks",
            RepoSort::HelpWantedIssues => "help-wanted-issues",
            RepoSort::Updated => "updated",
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl Order {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        }
    }
}

/// One repository.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetRepository {
    /// The account owning the repository (`octocat`).
    owner: String,
    /// The repository name (`hello-world`).
    repo: String,
    /// Return GitHub's object unchanged (languages are added either way).
    #[serde(default)]
    raw: bool,
}

/// A file (or directory listing) at a ref.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct GetFile {
    /// The account owning the repository.
    owner: String,
    /// The repository name.
    repo: String,
    /// The file's path in the repository (`src/main.rs`); a directory lists its entries.
    path: String,
    /// Branch, tag or commit sha; the default branch when absent.
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    /// Cut text content after this many bytes (default: the connection's `max_file_bytes`, 100000).
    max_bytes: Option<usize>,
    /// Return GitHub's object unchanged (content still base64).
    #[serde(default)]
    raw: bool,
}

pub(crate) fn tools(shared: &Shared) -> Vec<Arc<dyn Tool>> {
    let s1 = shared.clone();
    let s2 = shared.clone();
    let s3 = shared.clone();
    vec![
        typed_tool(
            ToolSpec::new(
                "github_repo_search",
                PROVIDER,
                "Search GitHub repositories by words and qualifiers (language:, user:, topic:, stars:>N); \
                 returns name, description, language, stars and URLs, most relevant first",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/repos")),
            move |ctx: ToolContext, p: RepoSearch| {
                let shared = s1.clone();
                async move { repo_search(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "github_get_repository",
                PROVIDER,
                "Get one repository: description, default branch, stars, topics, license and its \
                 languages with their share of the code",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/repos/{{owner}}/{{repo}}")),
            move |ctx: ToolContext, p: GetRepository| {
                let shared = s2.clone();
                async move { get_repository(&shared, &ctx, p).await }
            },
        ),
        typed_tool(
            ToolSpec::new(
                "github_get_file",
                PROVIDER,
                "Read a file of a repository at a branch, tag or commit, decoded as text (cut at a size \
                 limit; binary files are detected and not returned); a directory path lists its entries",
            )
            .hints(ToolHints::read_only())
            .route(Method::Get, format!("{ROUTE}/repos/{{owner}}/{{repo}}/contents")),
            move |ctx: ToolContext, p: GetFile| {
                let shared = s3.clone();
                async move { get_file(&shared, &ctx, p).await }
            },
        ),
    ]
}

async fn repo_search(shared: &Shared, ctx: &ToolContext, p: RepoSearch) -> Result<Value, IntegrationError> {
    if p.query.trim().is_empty() {
        return Err(IntegrationError::invalid_input(PROVIDER, "query must not be empty"));
    }
    let client = shared.client(ctx)?;
    let limit = limit(p.limit);
    let first = with_query(
        "/search/repositories",
        &[
            ("q", Some(p.query.clone())),
            ("sort", p.sort.map(|s| s.as_str().to_owned())),
            ("order", p.order.map(|o| o.as_str().to_owned())),
            ("per_page", Some(per_page(limit))),
        ],
    );
    let page = client
        .collect(&first, "/search/repositories", p.cursor.as_deref(), limit, Some("items"), &keep_all)
        .await?;
    let items: Vec<Value> =
        if p.raw { page.items } else { page.items.iter().map(models::repository).collect() };
    Ok(json_object([
        ("total_count", page.first_body.get("total_count").cloned().unwrap_or(Value::Null)),
        ("incomplete_results", page.first_body.get("incomplete_results").cloned().unwrap_or(Value::Null)),
        ("count", items.len().into()),
        ("repositories", Value::Array(items)),
        ("next_cursor", page.next_cursor.into()),
    ]))
}

async fn get_repository(
    shared: &Shared,
    ctx: &ToolContext,
    p: GetRepository,
) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    let client = shared.client(ctx)?;
    let repository = async {
        Ok::<_, IntegrationError>(if p.raw {
            client.get(&base).await?.body
        } else {
            match client.get_as::<models::RepositoryView>(&base).await? {
                Ok(view) => view.into_json(),
                Err(value) => models::repository(&value),
            }
        })
    };
    let languages_path = format!("{base}/languages");
    // Both requests at once: one round trip of latency instead of two. The repository's error
    // wins when both fail (a missing repository has no languages either).
    let (repo, languages) = tokio::join!(repository, client.get(&languages_path));
    let repo = repo?;
    let languages = languages?.body;
    let total: u64 = languages.as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
    let mut langs: Vec<(String, u64)> = languages
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    langs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let languages_view: Vec<Value> = langs
        .iter()
        .map(|(name, bytes)| {
            let percent =
                if total == 0 { 0.0 } else { (*bytes as f64 * 1000.0 / total as f64).round() / 10.0 };
            json!({"language": name, "bytes": bytes, "percent": percent})
        })
        .collect();
    let Value::Object(mut out) = repo else {
        return Err(IntegrationError::new(
            ErrorKind::Upstream { status: None },
            PROVIDER,
            "github answered a repository that is not a JSON object",
        ));
    };
    out.insert("languages".to_owned(), json!(languages_view));
    Ok(Value::Object(out))
}

/// Whether bytes look binary: a NUL in the first 8000 bytes (git's rule) or not UTF-8.
fn is_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8000).any(|b| *b == 0) || std::str::from_utf8(bytes).is_err()
}

async fn get_file(shared: &Shared, ctx: &ToolContext, p: GetFile) -> Result<Value, IntegrationError> {
    let base = repo_path(&p.owner, &p.repo)?;
    let path = p.path.trim_matches('/');
    if path.is_empty() || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(IntegrationError::invalid_input(
            PROVIDER,
            format!("path '{}' is not a file path", p.path),
        ));
    }
    if let Some(r) = &p.git_ref {
        check_ref("ref", r)?;
    }
    let client = shared.client(ctx)?;
    let encoded: Vec<String> = path.split('/').map(segment).collect();
    let url = with_query(&format!("{base}/contents/{}", encoded.join("/")), &[("ref", p.git_ref.clone())]);
    let body = client.get(&url).await?.body;
    if p.raw {
        return Ok(body);
    }
    if let Some(entries) = body.as_array() {
        return Ok(json!({
            "type": "dir",
            "path": path,
            "ref": p.git_ref,
            "entries": entries.iter().map(|e| json!({
                "name": e["name"], "path": e["path"], "type": e["type"], "size": e["size"],
            })).collect::<Vec<_>>(),
        }));
    }
    let max = p.max_bytes.unwrap_or(client.limits().max_file_bytes);
    let size = body["size"].as_u64().unwrap_or(0);
    let mut out = json!({
        "type": body["type"],
        "path": body["path"],
        "ref": p.git_ref,
        "sha": body["sha"],
        "size": size,
        "html_url": body["html_url"],
        "language": models::language_of(path),
    });
    if body["type"] != "file" {
        out["content"] = Value::Null;
        out["target"] = body.get("target").cloned().unwrap_or(Value::Null);
        return Ok(out);
    }
    if body["encoding"] != "base64" {
        // GitHub sends files of 1-100 MB without content ("encoding": "none").
        out["content"] = Value::Null;
        out["too_large"] = json!(true);
        out["binary"] = Value::Null;
        return Ok(out);
    }
    let compact: String =
        body["content"].as_str().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).map_err(|e| {
        IntegrationError::new(
            integration_core::ErrorKind::Upstream { status: Some(200) },
            PROVIDER,
            format!("github sent file content that is not base64: {e}"),
        )
    })?;
    if is_binary(&bytes) {
        out["binary"] = json!(true);
        out["content"] = Value::Null;
        out["truncated"] = json!(false);
        return Ok(out);
    }
    let text = String::from_utf8_lossy(&bytes);
    let (content, truncated) = models::truncate(&text, max);
    out["binary"] = json!(false);
    out["encoding"] = json!("utf-8");
    out["content"] = json!(content);
    out["truncated"] = json!(truncated);
    out["lines"] = json!(text.lines().count());
    Ok(out)
}
