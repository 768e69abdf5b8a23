//! The tools: one file per resource. Every tool is a typed async function (`typed_tool`), so its
//! parameter schema comes from its parameter struct, and every tool has a REST route whose path
//! and query parameters carry the tool's parameter names.

use std::sync::Arc;

use integration_core::{IntegrationError, Tool, ToolContext};

use crate::client::GitHubClient;
use crate::{ClientCache, PROVIDER};

mod analysis;
mod commits;
mod issues;
mod pulls;
mod repos;

/// Route prefix of every GitHub tool.
const ROUTE: &str = "/api/integrations/github";

/// Default number of list items.
const DEFAULT_LIMIT: u32 = 30;
/// Most list items one call returns.
const MAX_LIMIT: u32 = 1000;

/// What the tools share: the client cache.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) clients: Arc<ClientCache>,
}

impl Shared {
    fn client(&self, ctx: &ToolContext) -> Result<GitHubClient, IntegrationError> {
        self.clients.get_or_build(&ctx.connection, crate::build_client)
    }
}

/// Every GitHub tool.
pub(crate) fn all(shared: Shared) -> Vec<Arc<dyn Tool>> {
    let mut tools = repos::tools(&shared);
    tools.extend(commits::tools(&shared));
    tools.extend(analysis::tools(&shared));
    tools.extend(pulls::tools(&shared));
    tools.extend(issues::tools(&shared));
    tools
}

/// Owner and repository names are letters, digits, `-`, `_` and `.`: anything else is refused
/// before it reaches a URL.
fn check_name(what: &str, name: &str) -> Result<(), IntegrationError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(IntegrationError::invalid_input(
            PROVIDER,
            format!("{what} '{name}' is not a valid GitHub name (letters, digits, '-', '_' and '.')"),
        ))
    }
}

/// `/repos/{owner}/{repo}` after checking both names.
fn repo_path(owner: &str, repo: &str) -> Result<String, IntegrationError> {
    check_name("owner", owner)?;
    check_name("repo", repo)?;
    Ok(format!("/repos/{owner}/{repo}"))
}

/// A git ref (branch, tag, sha): no spaces, control characters, `..` or `~^:?*[\`.
fn check_ref(what: &str, value: &str) -> Result<(), IntegrationError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && !value.contains("..")
        && value.chars().all(|c| !c.is_control() && !" ~^:?*[\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IntegrationError::invalid_input(PROVIDER, format!("{what} '{value}' is not a valid git ref")))
    }
}

/// Clamp an optional limit.
fn limit(value: Option<u32>) -> usize {
    value.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize
}

/// The page size to ask for when `limit` items are wanted.
fn per_page(limit: usize) -> String {
    limit.min(crate::client::MAX_PAGE).to_string()
}

fn keep_all(_: &serde_json::Value) -> bool {
    true
}
