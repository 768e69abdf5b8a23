//! Trimmed views of GitHub objects: what an agent needs, not the 100 URL templates of a
//! repository. Every tool also offers `raw: true` for the upstream object as GitHub sent it.

use serde::Deserialize;
use serde_json::{Value, json};

fn s(v: &Value, key: &str) -> Value {
    v.get(key).cloned().unwrap_or(Value::Null)
}

fn login(v: &Value) -> Value {
    v.get("login").cloned().unwrap_or(Value::Null)
}

/// Cut `text` to at most `max` bytes at a character boundary; says whether it was cut.
pub fn truncate(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_owned(), false);
    }
    (text[..text.floor_char_boundary(max)].to_owned(), true)
}

/// The fields of a repository that [`repository`] keeps, read straight from GitHub's text: the
/// rest of its ~100 members (URL templates, `owner`'s and `organization`'s details, `permissions`,
/// a fork's whole `parent` and `source`) is skipped without being built. A body this does not fit
/// (a member of an unexpected type) is read as a `Value` instead, so the answer is the same.
#[derive(Debug, Deserialize)]
pub(crate) struct RepositoryView {
    full_name: Option<Value>,
    owner: Option<LoginView>,
    name: Option<Value>,
    description: Option<Value>,
    html_url: Option<Value>,
    private: Option<Value>,
    fork: Option<Value>,
    archived: Option<Value>,
    language: Option<Value>,
    topics: Option<Value>,
    stargazers_count: Option<Value>,
    forks_count: Option<Value>,
    open_issues_count: Option<Value>,
    default_branch: Option<Value>,
    license: Option<LicenseView>,
    homepage: Option<Value>,
    created_at: Option<Value>,
    pushed_at: Option<Value>,
    updated_at: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct LoginView {
    login: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct LicenseView {
    spdx_id: Option<Value>,
}

impl RepositoryView {
    /// The same object as [`repository`] makes of the whole `Value`, the values moved in (`json!`
    /// would copy each one).
    pub(crate) fn into_json(self) -> Value {
        let v = |field: Option<Value>| field.unwrap_or(Value::Null);
        integration_core::json_object([
            ("full_name", v(self.full_name)),
            ("owner", v(self.owner.and_then(|o| o.login))),
            ("name", v(self.name)),
            ("description", v(self.description)),
            ("html_url", v(self.html_url)),
            ("private", v(self.private)),
            ("fork", v(self.fork)),
            ("archived", v(self.archived)),
            ("language", v(self.language)),
            ("topics", self.topics.unwrap_or_else(|| json!([]))),
            ("stars", v(self.stargazers_count)),
            ("forks", v(self.forks_count)),
            ("open_issues", v(self.open_issues_count)),
            ("default_branch", v(self.default_branch)),
            ("license", v(self.license.and_then(|l| l.spdx_id))),
            ("homepage", v(self.homepage)),
            ("created_at", v(self.created_at)),
            ("pushed_at", v(self.pushed_at)),
            ("updated_at", v(self.updated_at)),
        ])
    }
}

/// A repository (`full-repository`, `repo-search-result-item`, `minimal-repository`).
pub fn repository(v: &Value) -> Value {
    json!({
        "full_name": s(v, "full_name"),
        "owner": login(&v["owner"]),
        "name": s(v, "name"),
        "description": s(v, "description"),
        "html_url": s(v, "html_url"),
        "private": s(v, "private"),
        "fork": s(v, "fork"),
        "archived": s(v, "archived"),
        "language": s(v, "language"),
        "topics": v.get("topics").filter(|t| !t.is_null()).cloned().unwrap_or_else(|| json!([])),
        "stars": s(v, "stargazers_count"),
        "forks": s(v, "forks_count"),
        "open_issues": s(v, "open_issues_count"),
        "default_branch": s(v, "default_branch"),
        "license": v.get("license").and_then(|l| l.get("spdx_id")).cloned().unwrap_or(Value::Null),
        "homepage": s(v, "homepage"),
        "created_at": s(v, "created_at"),
        "pushed_at": s(v, "pushed_at"),
        "updated_at": s(v, "updated_at"),
    })
}

/// A commit (`commit`) without files.
pub fn commit(v: &Value) -> Value {
    let c = &v["commit"];
    let sha = v["sha"].as_str().unwrap_or_default();
    let message = c["message"].as_str().unwrap_or_default();
    json!({
        "sha": sha,
        "short_sha": sha.get(..7).unwrap_or(sha),
        "title": message.lines().next().unwrap_or_default(),
        "message": truncate(message, 2000).0,
        "author": {
            "name": s(&c["author"], "name"),
            "email": s(&c["author"], "email"),
            "login": login(&v["author"]),
            "date": s(&c["author"], "date"),
        },
        "committer": { "name": s(&c["committer"], "name"), "date": s(&c["committer"], "date") },
        "parents": v["parents"].as_array().map(|p| p.iter().map(|p| s(p, "sha")).collect::<Vec<_>>()).unwrap_or_default(),
        "html_url": s(v, "html_url"),
    })
}

/// A changed file (`diff-entry`) with its patch cut to `max_patch` bytes.
pub fn file(v: &Value, max_patch: usize) -> Value {
    let mut out = json!({
        "filename": s(v, "filename"),
        "status": s(v, "status"),
        "additions": s(v, "additions"),
        "deletions": s(v, "deletions"),
        "changes": s(v, "changes"),
    });
    if let Some(prev) = v.get("previous_filename") {
        out["previous_filename"] = prev.clone();
    }
    match v.get("patch").and_then(Value::as_str) {
        Some(patch) => {
            let (patch, cut) = truncate(patch, max_patch);
            out["patch"] = json!(patch);
            out["patch_truncated"] = json!(cut);
        }
        // GitHub omits the patch of binary and very large files.
        None => out["patch"] = Value::Null,
    }
    out
}

fn labels(v: &Value) -> Vec<Value> {
    v["labels"]
        .as_array()
        .map(|l| l.iter().map(|l| l.get("name").cloned().unwrap_or_else(|| l.clone())).collect())
        .unwrap_or_default()
}

/// A pull request (`pull-request-simple` or `pull-request`).
pub fn pull_request(v: &Value) -> Value {
    json!({
        "number": s(v, "number"),
        "title": s(v, "title"),
        "state": s(v, "state"),
        "draft": s(v, "draft"),
        "merged_at": s(v, "merged_at"),
        "user": login(&v["user"]),
        "head": s(&v["head"], "ref"),
        "head_sha": s(&v["head"], "sha"),
        "base": s(&v["base"], "ref"),
        "labels": labels(v),
        "requested_reviewers": v["requested_reviewers"].as_array().map(|r| r.iter().map(login).collect::<Vec<_>>()).unwrap_or_default(),
        "html_url": s(v, "html_url"),
        "created_at": s(v, "created_at"),
        "updated_at": s(v, "updated_at"),
    })
}

/// Whether an issue (`issue`) is a pull request: its `pull_request` names the pull request. Older
/// GitHub answers carry `pull_request` on every issue, with null URLs on a plain issue.
pub fn is_pull_request(v: &Value) -> bool {
    v.get("pull_request")
        .is_some_and(|p| ["url", "html_url"].iter().any(|k| p.get(k).is_some_and(|u| !u.is_null())))
}

/// An issue (`issue`).
pub fn issue(v: &Value) -> Value {
    json!({
        "number": s(v, "number"),
        "title": s(v, "title"),
        "state": s(v, "state"),
        "state_reason": s(v, "state_reason"),
        "user": login(&v["user"]),
        "labels": labels(v),
        "assignees": v["assignees"].as_array().map(|a| a.iter().map(login).collect::<Vec<_>>()).unwrap_or_default(),
        "milestone": v.get("milestone").and_then(|m| m.get("title")).cloned().unwrap_or(Value::Null),
        "comments": s(v, "comments"),
        "body": v["body"].as_str().map(|b| truncate(b, 2000).0),
        "is_pull_request": is_pull_request(v),
        "html_url": s(v, "html_url"),
        "created_at": s(v, "created_at"),
        "updated_at": s(v, "updated_at"),
        "closed_at": s(v, "closed_at"),
    })
}

/// The language of a file, guessed from its name (for code analysis).
pub fn language_of(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "Dockerfile" {
        return "Dockerfile";
    }
    if name == "Makefile" {
        return "Makefile";
    }
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "Other",
    };
    match ext.as_str() {
        "rs" => "Rust",
        "go" => "Go",
        "py" => "Python",
        "js" | "mjs" | "cjs" | "jsx" => "JavaScript",
        "ts" | "tsx" => "TypeScript",
        "java" => "Java",
        "kt" | "kts" => "Kotlin",
        "rb" => "Ruby",
        "c" | "h" => "C",
        "cc" | "cpp" | "cxx" | "hpp" => "C++",
        "cs" => "C#",
        "swift" => "Swift",
        "php" => "PHP",
        "scala" => "Scala",
        "sh" | "bash" => "Shell",
        "md" | "markdown" | "rst" | "txt" => "Documentation",
        "json" | "yaml" | "yml" | "toml" | "ini" | "cfg" => "Configuration",
        "html" | "htm" => "HTML",
        "css" | "scss" | "sass" => "CSS",
        "sql" => "SQL",
        "png" | "jpg" | "jpeg" | "gif" | "svg" | "ico" => "Image",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every repository object in GitHub's recorded payloads (webhook events and a pull request
    /// list: full repositories, a push event's variant with epoch timestamps, forks' `head.repo`).
    fn recorded_repositories() -> Vec<Value> {
        fn walk(v: &Value, out: &mut Vec<Value>) {
            match v {
                Value::Object(map) => {
                    if map.contains_key("full_name") && map.contains_key("owner") {
                        out.push(v.clone());
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for text in [
            include_str!("../tests/fixtures/pull_request_opened_webhook_event.json"),
            include_str!("../tests/fixtures/push_webhook_event.json"),
            include_str!("../tests/fixtures/pull_requests_list.json"),
        ] {
            walk(&serde_json::from_str(text).expect("fixture is JSON"), &mut out);
        }
        out
    }

    #[test]
    fn the_repository_view_reads_what_the_value_reader_reads() {
        let repos = recorded_repositories();
        assert!(repos.len() >= 6, "{} repositories in the fixtures", repos.len());
        for repo in &repos {
            let text = repo.to_string();
            let view: RepositoryView =
                serde_json::from_str(&text).expect("a recorded repository fits the view");
            assert_eq!(view.into_json(), repository(repo), "{}", repo["full_name"]);
        }
        // Members missing, null, or of other types than GitHub's.
        for odd in [
            json!({}),
            json!({"full_name": null, "owner": null, "license": null, "topics": null}),
            json!({"full_name": "a/b", "owner": {"login": 5}, "stargazers_count": "many", "license": {}}),
        ] {
            let view: RepositoryView = serde_json::from_value(odd.clone()).expect("fits");
            assert_eq!(view.into_json(), repository(&odd), "{odd}");
        }
        // A body the view does not fit is left to the `Value` reader (the tool falls back to it).
        assert!(serde_json::from_value::<RepositoryView>(json!({"owner": "octocat"})).is_err());
        assert!(serde_json::from_value::<RepositoryView>(json!([1, 2])).is_err());
    }

    #[test]
    fn truncates_at_char_boundaries() {
        assert_eq!(truncate("héllo", 2), ("h".to_owned(), true));
        assert_eq!(truncate("abc", 3), ("abc".to_owned(), false));
    }

    #[test]
    fn languages() {
        assert_eq!(language_of("src/lib.rs"), "Rust");
        assert_eq!(language_of("deploy/Dockerfile"), "Dockerfile");
        assert_eq!(language_of("LICENSE"), "Other");
    }
}
