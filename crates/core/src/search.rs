//! Ranking tools by a free-text query, so an agent can load only the few schemas it needs
//! (`tool_search` on MCP, `GET /api/tools?q=` on REST).
//!
//! A small weighted token match, no index: each query token scores by the best place it appears
//! (tool name 6, provider 4, parameter name 3, description 2, parameter description 1; a prefix
//! match counts 60 %), weighted by how rare the token is among the tools (inverse document
//! frequency), with a bonus for tools that match every token. A few dozen tools rank in microseconds.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::tool::ToolSpec;

/// Words too common to say anything about a tool.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "i", "in", "is", "it", "me", "my", "of",
    "on", "or", "the", "this", "to", "with", "want", "need", "please", "can", "you", "how", "do",
];

/// One ranked tool.
#[derive(Debug, Clone)]
pub struct SearchHit<'a> {
    /// The tool.
    pub spec: &'a ToolSpec,
    /// Its score (higher is better; only relative values mean anything).
    pub score: f64,
}

/// Lower-case word tokens of `text`, split on anything not alphanumeric (`snake_case`, `camelCase`
/// and punctuation all split), with a light plural stem.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            word.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out.into_iter().filter(|w| !STOP_WORDS.contains(&w.as_str())).map(|w| stem(&w)).collect()
}

fn stem(word: &str) -> String {
    if let Some(base) = word.strip_suffix("ies")
        && base.chars().count() >= 3
    {
        return format!("{base}y");
    }
    match word.strip_suffix('s') {
        Some(base) if base.chars().count() >= 2 && !base.ends_with('s') && !base.ends_with('u') => {
            base.to_owned()
        }
        _ => word.to_owned(),
    }
}

/// The searchable fields of one tool, tokenised, with their weights.
struct Doc<'a> {
    spec: &'a ToolSpec,
    fields: Vec<(f64, BTreeSet<String>)>,
}

fn doc(spec: &ToolSpec) -> Doc<'_> {
    let mut param_names = BTreeSet::new();
    let mut param_text = BTreeSet::new();
    if let Some(props) = spec.parameters.get("properties").and_then(Value::as_object) {
        for (name, schema) in props {
            param_names.extend(tokens(name));
            if let Some(d) = schema.get("description").and_then(Value::as_str) {
                param_text.extend(tokens(d));
            }
        }
    }
    Doc {
        spec,
        fields: vec![
            (6.0, tokens(&spec.name).into_iter().collect()),
            (4.0, tokens(&spec.provider).into_iter().collect()),
            (3.0, param_names),
            (2.0, tokens(&spec.description).into_iter().collect()),
            (1.0, param_text),
        ],
    }
}

impl Doc<'_> {
    /// The best weight at which `token` appears (exact, else 60 % for a prefix of 3+ chars).
    fn weight(&self, token: &str) -> f64 {
        let mut best: f64 = 0.0;
        for (weight, words) in &self.fields {
            if words.contains(token) {
                best = best.max(*weight);
            } else if token.len() >= 3
                && words
                    .iter()
                    .any(|w| w.starts_with(token) || (token.starts_with(w.as_str()) && w.len() >= 3))
            {
                best = best.max(weight * 0.6);
            }
        }
        best
    }
}

/// Rank `specs` by `query`; tools matching nothing are left out. At most `limit` hits, best first
/// (ties by name).
pub fn search<'a>(
    specs: impl IntoIterator<Item = &'a ToolSpec>,
    query: &str,
    limit: usize,
) -> Vec<SearchHit<'a>> {
    let query: Vec<String> = {
        let mut seen = BTreeSet::new();
        tokens(query).into_iter().filter(|t| seen.insert(t.clone())).collect()
    };
    let docs: Vec<Doc<'a>> = specs.into_iter().map(doc).collect();
    if query.is_empty() || docs.is_empty() {
        return Vec::new();
    }
    let n = docs.len() as f64;
    let mut df: HashMap<&str, f64> = HashMap::new();
    for token in &query {
        let count = docs.iter().filter(|d| d.weight(token) > 0.0).count() as f64;
        df.insert(token, count);
    }
    let mut hits: Vec<SearchHit<'a>> = docs
        .iter()
        .filter_map(|d| {
            let mut score = 0.0;
            let mut matched = 0;
            for token in &query {
                let w = d.weight(token);
                if w > 0.0 {
                    matched += 1;
                    let idf = (1.0 + n / (1.0 + df[token.as_str()])).ln();
                    score += w * idf;
                }
            }
            if matched == 0 {
                return None;
            }
            let coverage = matched as f64 / query.len() as f64;
            Some(SearchHit { spec: d.spec, score: score * (0.5 + coverage) })
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.spec.name.cmp(&b.spec.name)));
    hits.truncate(limit);
    hits
}

/// The `n` candidates closest to `wanted`, for "did you mean" lists: case-insensitive, candidates
/// that contain `wanted` (or that it contains) first, then by edit distance; duplicates once.
pub fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>, n: usize) -> Vec<String> {
    let wanted = wanted.to_lowercase();
    let mut scored: Vec<(usize, String)> = candidates
        .map(|c| {
            let lower = c.to_lowercase();
            let score = if lower.contains(&wanted) || wanted.contains(&lower) {
                0
            } else {
                1 + distance(&wanted, &lower)
            };
            (score, c.to_owned())
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, c)| c).collect()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn closest_names_for_did_you_mean() {
        let names = ["Engineering", "Marketing", "Engine Room", "Sales"];
        assert_eq!(super::closest("engin", names.iter().copied(), 2), vec!["Engine Room", "Engineering"]);
        assert_eq!(super::closest("Salse", names.iter().copied(), 1), vec!["Sales"]);
        let channels = ["general", "random", "gen-ops", "general"];
        assert_eq!(super::closest("genral", channels.into_iter(), 3), vec!["general", "gen-ops", "random"]);
        assert_eq!(super::distance("kitten", "sitting"), 3);
        assert_eq!(super::distance("", "abc"), 3);
        assert_eq!(super::distance("ünï", "uni"), 2);
    }

    use super::*;
    use serde_json::json;

    fn spec(name: &str, provider: &str, description: &str, params: &[&str]) -> ToolSpec {
        let props: serde_json::Map<String, Value> =
            params.iter().map(|p| (p.to_string(), json!({"type": "string"}))).collect();
        ToolSpec::new(name, provider, description).parameters(json!({"type": "object", "properties": props}))
    }

    fn catalogue() -> Vec<ToolSpec> {
        vec![
            spec(
                "jira_create_issue",
                "jira",
                "Create a Jira issue in a project",
                &["project_key", "summary"],
            ),
            spec("jira_search_issues", "jira", "Find Jira issues with JQL", &["jql", "limit"]),
            spec("jira_add_comment", "jira", "Comment on a Jira issue", &["issue_key", "body"]),
            spec("github_create_pull_request", "github", "Open a pull request", &["owner", "repo", "head"]),
            spec(
                "github_list_commits",
                "github",
                "List the commits of a branch",
                &["owner", "repo", "branch"],
            ),
            spec("slack_send_message", "slack", "Post a message to a Slack channel", &["channel", "text"]),
        ]
    }

    fn check(query: &str, expected_first: &str) {
        let specs = catalogue();
        let hits = search(&specs, query, 3);
        assert_eq!(
            hits.first().map(|h| h.spec.name.as_str()),
            Some(expected_first),
            "query {query:?}: {hits:?}"
        );
    }

    #[test]
    fn ranks_the_obvious_tool_first() {
        check("create jira issue", "jira_create_issue");
        check("search issues", "jira_search_issues");
        check("post a message to slack", "slack_send_message");
        check("open a PR", "github_create_pull_request");
        check("pull requests", "github_create_pull_request");
        check("commits on a branch", "github_list_commits");
        check("comment", "jira_add_comment");
        check("jql", "jira_search_issues");
    }

    #[test]
    fn nothing_matches_nothing() {
        let specs = catalogue();
        assert!(search(&specs, "weather forecast", 5).is_empty());
        assert!(search(&specs, "", 5).is_empty());
        assert!(search(&specs, "the a of", 5).is_empty());
        assert_eq!(search(&specs, "jira", 2).len(), 2);
    }

    #[test]
    fn tokens_split_case_and_stem() {
        assert_eq!(tokens("jira_createIssue PRs"), vec!["jira", "create", "issue", "pr"]);
        assert_eq!(tokens("repositories commits"), vec!["repository", "commit"]);
    }
}
