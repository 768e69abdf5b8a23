//! Agent-facing configuration and commands: toolsets and read-only mode, the output budget, MCP
//! (`mcp --stdio`), API keys (`keys create|list|revoke`) and the bind-address safety check.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use integration_core::{Registry, ToolSelection};
use integration_http::{AgentConfig, AuthConfig, McpToolMode};
use integration_store::Store;
use secrecy::ExposeSecret as _;

use crate::config::{ServeArgs, StoreArgs};

/// Which tools exist, how results are budgeted, MCP and API-key settings.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Tool groups to enable, comma-separated: a provider (`jira`) or its read-only tools
    /// (`github.read`) or its other tools (`slack.write`); empty enables every provider.
    #[arg(long, env = "TOOLSETS", value_delimiter = ',', default_value = "")]
    pub toolsets: Vec<String>,
    /// Tools to enable by name in addition to the toolsets, comma-separated.
    #[arg(long, env = "TOOLS_INCLUDE", value_delimiter = ',', default_value = "")]
    pub tools_include: Vec<String>,
    /// Tools to disable by name, comma-separated.
    #[arg(long, env = "TOOLS_EXCLUDE", value_delimiter = ',', default_value = "")]
    pub tools_exclude: Vec<String>,
    /// Register only read-only tools: the others are neither listed nor callable on any front door.
    #[arg(long, env = "INTEGRATIONS_READ_ONLY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub read_only: bool,
    /// Default largest tool result in bytes; a call may ask for another (`max_output_bytes`).
    #[arg(long, env = "MAX_OUTPUT_BYTES", default_value_t = 64 * 1024)]
    pub max_output_bytes: usize,
    /// `Host` values the MCP endpoint accepts (DNS-rebinding protection), comma-separated; `*`
    /// accepts any.
    #[arg(long, env = "MCP_ALLOWED_HOSTS", value_delimiter = ',', default_value = "localhost,127.0.0.1,::1")]
    pub mcp_allowed_hosts: Vec<String>,
    /// How MCP lists tools: `all` (every tool plus tool_search) or `search` (tool_search and the
    /// tool_call dispatcher only).
    #[arg(long, env = "MCP_TOOL_MODE", default_value = "all")]
    pub mcp_tool_mode: McpToolMode,
    /// Requests per minute per API key (0: no limit).
    #[arg(long, env = "API_KEY_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub api_key_rate_limit_per_minute: u32,
    /// Serve `/metrics` without an API key.
    #[arg(long, env = "METRICS_PUBLIC", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub metrics_public: bool,
    /// Start on a non-loopback address without any API key (everyone who can reach the port can
    /// call every tool).
    #[arg(long, env = "INTEGRATIONS_INSECURE_NO_AUTH", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub insecure_no_auth: bool,
    /// An external tool registry: every tool definition is POSTed there at start-up (in the
    /// background, retried; failures are logged, never fatal).
    #[arg(long, env = "TOOL_REGISTRY_URL")]
    pub tool_registry_url: Option<String>,
}

fn clean(list: &[String]) -> Vec<String> {
    list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl AgentArgs {
    /// The tool selection.
    pub fn selection(&self) -> ToolSelection {
        ToolSelection {
            toolsets: clean(&self.toolsets),
            include: clean(&self.tools_include),
            exclude: clean(&self.tools_exclude),
            read_only: self.read_only,
        }
    }

    /// Install the selection on the registry (after the providers are registered).
    pub fn apply_selection(&self, registry: &Registry) -> anyhow::Result<()> {
        let selection = self.selection();
        if selection.is_everything() {
            return Ok(());
        }
        let providers = selection.providers().context("TOOLSETS")?;
        let known: Vec<String> = registry.integrations().iter().map(|i| i.info().name).collect();
        for provider in &providers {
            if !known.contains(provider) {
                anyhow::bail!(
                    "TOOLSETS names '{provider}', which is not compiled in (known: {})",
                    known.join(", ")
                );
            }
        }
        let names: Vec<String> = registry.tools().iter().map(|t| t.spec().name.clone()).collect();
        for name in selection.include.iter().chain(&selection.exclude) {
            if !names.contains(name) {
                tracing::warn!(tool = %name, "TOOLS_INCLUDE/TOOLS_EXCLUDE names an unknown tool");
            }
        }
        let filter = selection.clone();
        let removed = registry.set_filter(Arc::new(move |spec| filter.allows(spec)));
        tracing::info!(
            tools = registry.tools().len(),
            left_out = removed.len(),
            read_only = selection.read_only,
            "tool selection applied"
        );
        Ok(())
    }

    /// Output budget and MCP settings.
    pub fn agent_config(&self) -> AgentConfig {
        AgentConfig {
            max_output_bytes: self.max_output_bytes,
            mcp_allowed_hosts: clean(&self.mcp_allowed_hosts),
            mcp_tool_mode: self.mcp_tool_mode,
        }
    }

    /// Authentication settings for a server bound to `bind`.
    pub fn auth_config(&self, bind: std::net::SocketAddr) -> AuthConfig {
        AuthConfig {
            rate_limit_per_minute: self.api_key_rate_limit_per_minute,
            metrics_public: self.metrics_public,
            open_without_keys: bind.ip().is_loopback() || self.insecure_no_auth,
            ..AuthConfig::default()
        }
    }
}

/// Refuse to listen beyond loopback while no API key exists (unless explicitly told to).
pub(crate) async fn check_bind(args: &ServeArgs, store: &Store) -> anyhow::Result<()> {
    if args.bind.ip().is_loopback() {
        return Ok(());
    }
    let keys = store.api_keys().active_count().await.context("counting API keys")?;
    if keys > 0 {
        return Ok(());
    }
    if args.agent.insecure_no_auth {
        tracing::warn!(
            address = %args.bind,
            "INTEGRATIONS_INSECURE_NO_AUTH=true: serving beyond loopback without any API key; everyone who can reach this port can call every tool"
        );
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {} without an API key: anyone who can reach it could call every tool. \
         Create a key first (`integrations-api keys create --name admin --scopes admin,tools:write`), \
         listen on 127.0.0.1, or set INTEGRATIONS_INSECURE_NO_AUTH=true to accept the risk",
        args.bind
    )
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (it is stored hashed and cannot be shown again).
    Create {
        /// Who or what uses the key.
        #[arg(long)]
        name: String,
        /// Scopes, comma-separated: admin, tools:read, tools:write.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Where the state lives.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the keys (never their secrets).
    List {
        /// Where the state lives.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key by id, or every active key of a name. Applies on every replica within seconds.
    Revoke {
        /// The key id (`isk_<id>_...`) or name.
        id: String,
        /// Where the state lives.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Run a `keys` subcommand.
pub(crate) async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    init_stderr_tracing("warn");
    let (store_args, command) = match &command {
        KeysCommand::Create { store, .. }
        | KeysCommand::List { store }
        | KeysCommand::Revoke { store, .. } => (store.clone(), command),
    };
    let store = Store::open(store_args.store_config()).await.context("opening the store")?;
    let keys = store.api_keys();
    let mut out = std::io::stdout().lock();
    let result = match command {
        KeysCommand::Create { name, scopes, .. } => {
            let scopes = integration_http::auth::parse_scopes(&scopes).map_err(anyhow::Error::msg)?;
            let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
            let (record, key) = keys.create(&name, &scopes).await?;
            writeln!(out, "{}", key.expose_secret())?;
            eprintln!(
                "created API key {} ('{}', scopes {}): store it now, it is shown once and cannot be recovered",
                record.id,
                record.name,
                scopes.join(",")
            );
            Ok(())
        }
        KeysCommand::List { .. } => {
            writeln!(out, "{:<14} {:<24} {:<28} {:<22} status", "id", "name", "scopes", "created")?;
            for k in keys.list().await? {
                let status = match k.revoked_at {
                    Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                    None => "active".to_owned(),
                };
                writeln!(
                    out,
                    "{:<14} {:<24} {:<28} {:<22} {status}",
                    k.id,
                    k.name,
                    k.scopes.join(","),
                    k.created_at.format("%Y-%m-%d %H:%M:%S")
                )?;
            }
            Ok(())
        }
        KeysCommand::Revoke { id, .. } => {
            let revoked = keys.revoke(&id).await?;
            if revoked.is_empty() {
                Err(anyhow::anyhow!("no active API key with id or name '{id}'"))
            } else {
                writeln!(out, "revoked {}", revoked.join(", "))?;
                Ok(())
            }
        }
    };
    store.close().await;
    result
}

/// `mcp` options.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// Serve MCP over stdin/stdout (for desktop MCP clients). Over HTTP, `serve` answers MCP at `/mcp`.
    #[arg(long)]
    pub stdio: bool,
    /// The same options as `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `integrations-api mcp --stdio`: the same registry, store and executor, spoken over stdio. Logs go
/// to stderr (stdout carries the protocol).
pub(crate) async fn mcp(args: McpArgs) -> anyhow::Result<()> {
    if !args.stdio {
        anyhow::bail!(
            "use `integrations-api mcp --stdio`; over HTTP, `integrations-api serve` answers MCP at /mcp"
        );
    }
    init_stderr_tracing(&args.serve.log_level);
    let app = crate::build(&args.serve).await?;
    tracing::info!(tools = app.executor.registry().tools().len(), "serving MCP over stdio");
    let result = integration_http::mcp::serve_stdio(app.state.clone()).await;
    app.store.close().await;
    result.context("mcp over stdio")
}

fn init_stderr_tracing(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
