//! Custom HTTP tools on the bus (the `webhook` feature): the tools stored through the api are
//! loaded at start-up and followed while the worker runs, so a command can name any of them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use integration_core::Registry;
use integration_store::Store;
use integration_webhook::{Allowlist, CustomToolSync, CustomTools, SsrfGuard};

use crate::Cli;

/// Register the stored custom tools in `registry` and, unless `CUSTOM_TOOLS_SYNC_SECONDS` is 0,
/// follow their changes in a background task.
pub(crate) async fn start(cli: &Cli, registry: &Arc<Registry>, store: &Store) -> anyhow::Result<()> {
    let allowlist = Allowlist::parse(&cli.custom_http_allowlist)
        .map_err(anyhow::Error::msg)
        .context("CUSTOM_HTTP_ALLOWLIST")?;
    let tools = CustomTools::new(SsrfGuard::new(allowlist)).map_err(anyhow::Error::msg)?;
    let sync = Arc::new(CustomToolSync::new(tools, registry.clone(), Arc::new(store.clone())));
    sync.sync_and_log().await;
    if cli.custom_tools_sync_seconds > 0 {
        tokio::spawn(sync.run(Duration::from_secs(cli.custom_tools_sync_seconds)));
    }
    Ok(())
}
