//! The tools: one file per resource. Every tool is a typed async function (`typed_tool`), so its
//! parameter schema comes from its parameter struct.

use std::sync::Arc;

use integration_core::search::closest;
use integration_core::{IntegrationError, Tool, ToolContext};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::client::JiraClient;
use crate::{ClientCache, JiraOptions, PROVIDER};

mod issues;
mod projects;
mod users;

/// Route prefix of every Jira tool.
const ROUTE: &str = "/api/integrations/jira";

/// What the tools share: the client cache, the provider options and the cache's fill locks.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) clients: Arc<ClientCache>,
    pub(crate) options: JiraOptions,
    pub(crate) fills: Arc<integration_core::cache::FillLocks>,
}

impl Shared {
    fn client(&self, ctx: &ToolContext) -> Result<JiraClient, IntegrationError> {
        self.clients.get_or_build(&ctx.connection, crate::build_client)
    }
}

/// Every Jira tool.
pub(crate) fn all(shared: Shared) -> Vec<Arc<dyn Tool>> {
    let mut tools = projects::tools(&shared);
    tools.extend(issues::tools(&shared));
    tools.extend(users::tools(&shared));
    tools
}

/// One value or several (`"Done"` or `["To Do", "Done"]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

fn list(value: Option<OneOrMany>) -> Vec<String> {
    value.map(OneOrMany::into_vec).unwrap_or_default().into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// Issue and project keys (and numeric ids) are letters, digits, `_` and `-`: anything else is
/// refused before it reaches a URL.
fn check_key(what: &str, key: &str) -> Result<(), IntegrationError> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IntegrationError::invalid_input(
            PROVIDER,
            format!("{what} '{key}' is not a valid Jira key (letters, digits, '_' and '-' only)"),
        ))
    }
}

/// Clamp an optional limit.
fn limit(value: Option<u32>, default: u32, max: u32) -> u32 {
    value.unwrap_or(default).clamp(1, max)
}

/// Opaque cursors: `kind:payload`, produced by this crate only.
fn encode_cursor(kind: &str, payload: &str) -> String {
    format!("{kind}:{payload}")
}

fn decode_cursor<'a>(kind: &str, cursor: Option<&'a str>) -> Result<Option<&'a str>, IntegrationError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => c
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix(':'))
            .filter(|p| !p.is_empty())
            .map(Some)
            .ok_or_else(|| {
                IntegrationError::invalid_input(
                    PROVIDER,
                    "invalid cursor: pass the next_cursor of a previous answer",
                )
            }),
    }
}

fn offset_cursor(kind: &str, cursor: Option<&str>) -> Result<u64, IntegrationError> {
    match decode_cursor(kind, cursor)? {
        None => Ok(0),
        Some(p) => p.parse().map_err(|_| IntegrationError::invalid_input(PROVIDER, "invalid cursor")),
    }
}

/// Case-insensitive equality.
fn eq_ci(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    folded(a).eq(folded(b))
}

/// `s` lower-cased character by character: what [`eq_ci`] compares (and what keys derived from a
/// name it matches are made of).
fn folded(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_keys() {
        assert_eq!(decode_cursor("p", Some(&encode_cursor("p", "50"))).expect("ok"), Some("50"));
        assert!(decode_cursor("p", Some("t:abc")).is_err());
        assert_eq!(offset_cursor("p", None).expect("ok"), 0);
        assert!(check_key("issue", "ENG-12").is_ok());
        assert!(check_key("issue", "../x").is_err());
        assert!(check_key("issue", "").is_err());
    }

    #[test]
    fn case_insensitive_names() {
        assert!(eq_ci("Engineering", "ENGINEERING"));
        assert!(eq_ci("ÉCOLE", "école"));
        assert!(!eq_ci("Eng", "Engineering"));
        assert!(!eq_ci("Engineering", "Eng"));
        assert!(eq_ci("", ""));
    }
}
