//! Which tools a deployment exposes: toolsets (`jira`, `github.read`), include and exclude lists and
//! a global read-only mode. Installed on the [`Registry`](crate::Registry) with
//! [`Registry::set_filter`](crate::Registry::set_filter), so every front door (REST, bus, MCP) sees
//! the same set and a tool filtered out is neither listed nor callable.

use std::collections::BTreeSet;

use crate::tool::ToolSpec;

/// A tool selection. The default selects every tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSelection {
    /// Enabled groups: `provider` (all its tools), `provider.read` (its read-only tools) or
    /// `provider.write` (the others). Empty: every provider.
    pub toolsets: Vec<String>,
    /// Tools enabled by name in addition to the toolsets (alone: exactly these tools).
    pub include: Vec<String>,
    /// Tools disabled by name (wins over everything but read-only mode).
    pub exclude: Vec<String>,
    /// Only read-only tools exist (`INTEGRATIONS_READ_ONLY=true`).
    pub read_only: bool,
}

/// A toolset entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid toolset '{0}': use a provider name, 'provider.read' or 'provider.write'")]
pub struct ToolsetError(pub String);

impl ToolSelection {
    /// Whether the selection lets every tool through.
    pub fn is_everything(&self) -> bool {
        self.toolsets.is_empty() && self.include.is_empty() && self.exclude.is_empty() && !self.read_only
    }

    /// Check the toolset syntax; returns the providers named.
    pub fn providers(&self) -> Result<BTreeSet<String>, ToolsetError> {
        self.toolsets
            .iter()
            .map(|t| {
                let (provider, part) = t.split_once('.').unwrap_or((t.as_str(), ""));
                let ok = !provider.is_empty() && matches!(part, "" | "read" | "write");
                if ok { Ok(provider.to_owned()) } else { Err(ToolsetError(t.clone())) }
            })
            .collect()
    }

    /// Whether the tool is exposed.
    pub fn allows(&self, spec: &ToolSpec) -> bool {
        if self.read_only && !spec.hints.read_only {
            return false;
        }
        if self.exclude.iter().any(|n| n == &spec.name) {
            return false;
        }
        if self.toolsets.is_empty() && self.include.is_empty() {
            return true;
        }
        if self.include.iter().any(|n| n == &spec.name) {
            return true;
        }
        self.toolsets.iter().any(|t| {
            let (provider, part) = t.split_once('.').unwrap_or((t.as_str(), ""));
            provider == spec.provider
                && match part {
                    "" => true,
                    "read" => spec.hints.read_only,
                    "write" => !spec.hints.read_only,
                    _ => false,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::ToolHints;

    fn tool(name: &str, provider: &str, read_only: bool) -> ToolSpec {
        let hints = if read_only { ToolHints::read_only() } else { ToolHints::write() };
        ToolSpec::new(name, provider, "d").hints(hints)
    }

    fn selected(selection: &ToolSelection) -> Vec<String> {
        let tools = [
            tool("jira_get", "jira", true),
            tool("jira_create", "jira", false),
            tool("github_get", "github", true),
            tool("github_merge", "github", false),
            tool("slack_send", "slack", false),
        ];
        tools.iter().filter(|t| selection.allows(t)).map(|t| t.name.clone()).collect()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn selections() {
        let all = ToolSelection::default();
        assert!(all.is_everything());
        assert_eq!(selected(&all).len(), 5);
        let sets = ToolSelection { toolsets: strings(&["jira", "github.read"]), ..Default::default() };
        assert_eq!(selected(&sets), strings(&["jira_get", "jira_create", "github_get"]));
        let plus = ToolSelection {
            include: strings(&["slack_send"]),
            exclude: strings(&["jira_create"]),
            ..sets.clone()
        };
        assert_eq!(selected(&plus), strings(&["jira_get", "github_get", "slack_send"]));
        let read_only = ToolSelection { read_only: true, include: strings(&["slack_send"]), ..sets.clone() };
        assert_eq!(selected(&read_only), strings(&["jira_get", "github_get"]));
        let writes = ToolSelection { toolsets: strings(&["github.write"]), ..Default::default() };
        assert_eq!(selected(&writes), strings(&["github_merge"]));
        let only = ToolSelection { include: strings(&["slack_send"]), ..Default::default() };
        assert_eq!(selected(&only), strings(&["slack_send"]), "include alone lists exactly those tools");
        let excluded = ToolSelection { exclude: strings(&["slack_send"]), ..Default::default() };
        assert_eq!(selected(&excluded).len(), 4);
    }

    #[test]
    fn toolset_syntax() {
        let ok = ToolSelection { toolsets: strings(&["jira", "github.read"]), ..Default::default() };
        assert_eq!(
            ok.providers().expect("valid").into_iter().collect::<Vec<_>>(),
            strings(&["github", "jira"])
        );
        for bad in [".read", "jira.admin", ""] {
            let s = ToolSelection { toolsets: strings(&[bad]), ..Default::default() };
            assert!(s.providers().is_err(), "{bad}");
        }
    }
}
