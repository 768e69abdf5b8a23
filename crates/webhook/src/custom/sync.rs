//! Custom tools shared by every replica: each process (an api replica, a bus worker) loads the
//! stored tools at start-up and then polls the store for tools another replica created, changed or
//! deleted, so a tool defined through one replica can be called through any of them and over the
//! bus.
//!
//! The store is reached through [`CustomToolSource`], which the binaries implement over their
//! database: a cheap list of (name, revision) pairs every poll, and one tool with its credentials
//! only when its revision changed. The first sync of a process, and a poll that finds many
//! changes, read every tool in one query instead ([`CustomToolSource::load_all`]), so start-up does
//! not make one round trip per stored tool.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use integration_core::{Registry, Tool};
use secrecy::SecretString;
use serde_json::Value;

use super::{CustomToolDefinition, CustomTools, PROVIDER};
use crate::secret::Secret;
use crate::service::RepositoryError;

/// A stored custom tool: its public definition and its opened credentials.
#[derive(Debug, Clone)]
pub struct SavedTool {
    /// The definition without credentials, as saved.
    pub definition: Value,
    /// The credentials by field (`auth`).
    pub secrets: BTreeMap<String, SecretString>,
}

impl SavedTool {
    /// The definition with its credentials put back.
    pub fn into_definition(self) -> Result<CustomToolDefinition, String> {
        let definition: CustomToolDefinition =
            serde_json::from_value(self.definition).map_err(|e| format!("stored definition: {e}"))?;
        Ok(definition.with_secrets(&Secret::from_stored(&self.secrets)))
    }
}

/// Why one stored tool could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The store could not be read: nothing changes, and the whole sync is tried again.
    #[error(transparent)]
    Store(#[from] RepositoryError),
    /// This tool's row cannot be used (its credentials do not open under the master keys, its
    /// definition is not JSON): only this tool is affected; it is reported once per revision and
    /// the other tools load.
    #[error("{0}")]
    Unreadable(String),
}

impl LoadError {
    /// A store's error reading one tool: [`LoadError::Unreadable`] when it concerns that tool's
    /// row only (`row_only`), [`LoadError::Store`] otherwise.
    pub fn from_store(row_only: bool, error: impl std::fmt::Display) -> Self {
        if row_only {
            LoadError::Unreadable(error.to_string())
        } else {
            LoadError::Store(RepositoryError(error.to_string()))
        }
    }
}

/// One stored tool as [`CustomToolSource::load_all`] reads it.
#[derive(Debug)]
pub struct StoredRevision {
    /// The tool's name.
    pub name: String,
    /// The revision of the row read (see [`CustomToolSource::versions`]).
    pub revision: i64,
    /// The tool, or why its row cannot be used ([`LoadError::Unreadable`]'s reason): that tool
    /// only is refused, the others load.
    pub tool: Result<SavedTool, String>,
}

/// Where the stored custom tools are read from.
#[async_trait]
pub trait CustomToolSource: Send + Sync {
    /// The name and revision of every stored tool; a tool's revision grows with each save.
    async fn versions(&self) -> Result<Vec<(String, i64)>, RepositoryError>;
    /// One stored tool; `None` when it was deleted meanwhile.
    async fn load(&self, name: &str) -> Result<Option<SavedTool>, LoadError>;
    /// Every stored tool with its revision. Sources over a database override this with one query;
    /// the default reads [`Self::versions`] and then each tool with [`Self::load`].
    async fn load_all(&self) -> Result<Vec<StoredRevision>, RepositoryError> {
        let mut all = Vec::new();
        for (name, revision) in self.versions().await? {
            if let Some(tool) = row(self.load(&name).await)? {
                all.push(StoredRevision { name, revision, tool });
            }
        }
        Ok(all)
    }
}

/// One [`CustomToolSource::load`] as a row of [`CustomToolSource::load_all`]: `None` when deleted
/// meanwhile, the tool or why its row cannot be used, or the store's error.
fn row(
    loaded: Result<Option<SavedTool>, LoadError>,
) -> Result<Option<Result<SavedTool, String>>, RepositoryError> {
    match loaded {
        Ok(tool) => Ok(tool.map(Ok)),
        Err(LoadError::Unreadable(reason)) => Ok(Some(Err(reason))),
        Err(LoadError::Store(error)) => Err(error),
    }
}

/// A poll that finds more changed tools than this reads them all at once.
const LOAD_ALL_ABOVE: usize = 8;

/// What one [`CustomToolSync::sync`] changed in the registry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Tools registered or replaced.
    pub loaded: Vec<String>,
    /// Tools removed because they are no longer stored (or no longer build).
    pub removed: Vec<String>,
    /// Tools that are stored but not registered here, with the reason.
    pub failed: Vec<(String, String)>,
}

impl SyncReport {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty() && self.removed.is_empty() && self.failed.is_empty()
    }
}

/// Keeps a registry's custom tools equal to the stored ones.
pub struct CustomToolSync {
    tools: CustomTools,
    registry: Arc<Registry>,
    source: Arc<dyn CustomToolSource>,
    /// The revision of each stored tool this process has acted on (registered or refused).
    seen: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for CustomToolSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomToolSync").field("tools", &self.tools).finish_non_exhaustive()
    }
}

impl CustomToolSync {
    /// A sync of `registry`'s custom tools with `source`, building tools with `tools`.
    pub fn new(tools: CustomTools, registry: Arc<Registry>, source: Arc<dyn CustomToolSource>) -> Self {
        Self { tools, registry, source, seen: Mutex::new(HashMap::new()) }
    }

    /// Compare the stored tools with the registry once: register new and changed tools, remove
    /// deleted ones. A tool that does not build is reported once per revision, not at every poll;
    /// a store error leaves everything as it was, to be tried again.
    pub async fn sync(&self) -> Result<SyncReport, RepositoryError> {
        let (stored, changed) = if self.seen().is_empty() {
            // nothing acted on yet (start-up): one read of everything
            self.unseen(self.source.load_all().await?)
        } else {
            let versions = self.source.versions().await?;
            let changed: Vec<(String, i64)> = {
                let seen = self.seen();
                versions.iter().filter(|(name, revision)| seen.get(name) != Some(revision)).cloned().collect()
            };
            if changed.len() > LOAD_ALL_ABOVE {
                self.unseen(self.source.load_all().await?)
            } else {
                let mut rows = Vec::with_capacity(changed.len());
                for (name, revision) in changed {
                    if let Some(tool) = row(self.source.load(&name).await)? {
                        rows.push(StoredRevision { name, revision, tool });
                    }
                }
                (versions.into_iter().map(|(name, _)| name).collect(), rows)
            }
        };
        let mut report = SyncReport::default();
        self.register(changed, &mut report);
        let gone: Vec<String> =
            self.seen().keys().filter(|n| !stored.contains(n.as_str())).cloned().collect();
        for name in gone {
            self.seen().remove(&name);
            if self.remove_custom(&name) {
                report.removed.push(name);
            }
        }
        Ok(report)
    }

    /// The names of every stored tool, and the rows whose revision this process has not acted on.
    fn unseen(&self, all: Vec<StoredRevision>) -> (HashSet<String>, Vec<StoredRevision>) {
        let stored = all.iter().map(|row| row.name.clone()).collect();
        let seen = self.seen();
        let changed = all.into_iter().filter(|row| seen.get(&row.name) != Some(&row.revision)).collect();
        (stored, changed)
    }

    /// Register (or refuse) changed tools, in one change of the registry, and remember their
    /// revisions.
    fn register(&self, rows: Vec<StoredRevision>, report: &mut SyncReport) {
        let mut built = Vec::with_capacity(rows.len());
        for StoredRevision { name, revision, tool } in rows {
            match self.build(&name, tool) {
                Ok(tool) => built.push((name, revision, tool)),
                Err(reason) => self.refused(name, revision, reason, report),
            }
        }
        let results = self.registry.upsert_tools(built.iter().map(|(_, _, tool)| tool.clone()).collect());
        for ((name, revision, _), result) in built.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    report.loaded.push(name.clone());
                    self.seen().insert(name, revision);
                }
                Err(error) => self.refused(name, revision, error.to_string(), report),
            }
        }
    }

    /// A stored tool not registered here: an older version of it must not keep running.
    fn refused(&self, name: String, revision: i64, reason: String, report: &mut SyncReport) {
        if self.remove_custom(&name) {
            report.removed.push(name.clone());
        }
        report.failed.push((name.clone(), reason));
        self.seen().insert(name, revision);
    }

    /// Poll every `every`, logging what changed, until the task is dropped.
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.sync_and_log().await;
        }
    }

    /// [`Self::sync`], with each change and failure logged.
    pub async fn sync_and_log(&self) -> SyncReport {
        match self.sync().await {
            Ok(report) => {
                for name in &report.loaded {
                    tracing::info!(tool = %name, "custom tool loaded");
                }
                for name in &report.removed {
                    tracing::info!(tool = %name, "custom tool removed");
                }
                for (name, error) in &report.failed {
                    tracing::warn!(tool = %name, %error, "custom tool not loaded");
                }
                report
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the stored custom tools");
                SyncReport::default()
            }
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Build `name` from its stored row, or say why it cannot be registered here (definition,
    /// guard, unreadable row, name taken by a built-in tool).
    fn build(&self, name: &str, saved: Result<SavedTool, String>) -> Result<Arc<dyn Tool>, String> {
        let tool = saved.and_then(SavedTool::into_definition).and_then(|definition| {
            if definition.name != name {
                return Err(format!("the stored definition is named '{}'", definition.name));
            }
            self.tools.build(&definition).map_err(|e| e.to_string())
        })?;
        if let Some(existing) = self.registry.get(name)
            && existing.spec().provider != PROVIDER
        {
            return Err(format!("a {} tool has this name", existing.spec().provider));
        }
        Ok(tool)
    }

    /// Remove `name` if it is a custom tool; true if it was registered.
    fn remove_custom(&self, name: &str) -> bool {
        self.registry.get(name).is_some_and(|t| t.spec().provider == PROVIDER)
            && self.registry.remove_tool(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom::{Allowlist, SsrfGuard};
    use integration_core::{
        Connection, Health, Integration, IntegrationError, IntegrationInfo, Tool, ToolContext, ToolSpec,
    };
    use serde_json::json;

    /// An in-memory store.
    #[derive(Default)]
    struct Memory {
        tools: Mutex<BTreeMap<String, (i64, SavedTool)>>,
        fail: std::sync::atomic::AtomicBool,
        /// Tools whose rows cannot be read (credentials that do not open).
        unreadable: Mutex<HashSet<String>>,
        /// Reads made: `load` calls and `load_all` calls.
        loads: std::sync::atomic::AtomicUsize,
        load_alls: std::sync::atomic::AtomicUsize,
    }

    impl Memory {
        fn save(&self, definition: Value, secret: Option<&str>) {
            let name = definition["name"].as_str().expect("name").to_owned();
            let secrets = secret
                .map(|s| BTreeMap::from([("auth".to_owned(), SecretString::from(s.to_owned()))]))
                .unwrap_or_default();
            let mut tools = self.tools.lock().expect("lock");
            let revision = tools.get(&name).map_or(1, |(r, _)| r + 1);
            tools.insert(name, (revision, SavedTool { definition, secrets }));
        }
        fn delete(&self, name: &str) {
            self.tools.lock().expect("lock").remove(name);
        }
    }

    #[async_trait]
    impl CustomToolSource for Memory {
        async fn versions(&self) -> Result<Vec<(String, i64)>, RepositoryError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(RepositoryError("database is down".into()));
            }
            Ok(self.tools.lock().expect("lock").iter().map(|(n, (r, _))| (n.clone(), *r)).collect())
        }
        async fn load(&self, name: &str) -> Result<Option<SavedTool>, LoadError> {
            self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.unreadable.lock().expect("lock").contains(name) {
                return Err(LoadError::Unreadable(format!("credentials of '{name}' cannot be decrypted")));
            }
            Ok(self.tools.lock().expect("lock").get(name).map(|(_, t)| t.clone()))
        }
        async fn load_all(&self) -> Result<Vec<StoredRevision>, RepositoryError> {
            self.load_alls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(RepositoryError("database is down".into()));
            }
            let unreadable = self.unreadable.lock().expect("lock").clone();
            Ok(self
                .tools
                .lock()
                .expect("lock")
                .iter()
                .map(|(name, (revision, tool))| StoredRevision {
                    name: name.clone(),
                    revision: *revision,
                    tool: if unreadable.contains(name) {
                        Err(format!("credentials of '{name}' cannot be decrypted"))
                    } else {
                        Ok(tool.clone())
                    },
                })
                .collect())
        }
    }

    impl Memory {
        /// (`load` calls, `load_all` calls) since the last look.
        fn reads(&self) -> (usize, usize) {
            use std::sync::atomic::Ordering::SeqCst;
            (self.loads.swap(0, SeqCst), self.load_alls.swap(0, SeqCst))
        }
    }

    /// A source with only the required methods: `load_all` is the trait's default.
    struct PerTool(Arc<Memory>);

    #[async_trait]
    impl CustomToolSource for PerTool {
        async fn versions(&self) -> Result<Vec<(String, i64)>, RepositoryError> {
            self.0.versions().await
        }
        async fn load(&self, name: &str) -> Result<Option<SavedTool>, LoadError> {
            self.0.load(name).await
        }
    }

    /// A built-in provider with one tool named `taken`.
    struct BuiltIn;

    #[async_trait]
    impl Integration for BuiltIn {
        fn info(&self) -> IntegrationInfo {
            IntegrationInfo {
                name: "builtin".into(),
                display_name: "Built-in".into(),
                description: "test".into(),
                config_schema: json!({}),
                env_vars: vec![],
            }
        }
        fn tools(&self) -> Vec<Arc<dyn Tool>> {
            vec![Arc::new(Taken(ToolSpec::new("taken", "builtin", "a built-in tool")))]
        }
        async fn check(&self, _c: &Connection) -> Result<Health, IntegrationError> {
            Ok(Health { identity: None, details: json!({}) })
        }
    }

    struct Taken(ToolSpec);

    #[async_trait]
    impl Tool for Taken {
        fn spec(&self) -> &ToolSpec {
            &self.0
        }
        async fn call(&self, _ctx: &ToolContext, _params: Value) -> Result<Value, IntegrationError> {
            Ok(json!("built-in"))
        }
    }

    fn definition(name: &str, url: &str) -> Value {
        json!({"name": name, "description": format!("{name} tool"), "method": "GET", "url": url})
    }

    fn setup(allow: &str) -> (Arc<Memory>, Arc<Registry>, CustomToolSync) {
        let registry = Arc::new(Registry::new());
        registry.add(Arc::new(BuiltIn)).expect("built-in");
        registry.add(crate::provider()).expect("custom");
        let memory = Arc::new(Memory::default());
        let tools =
            CustomTools::new(SsrfGuard::new(Allowlist::parse(allow).expect("allowlist"))).expect("tools");
        let sync = CustomToolSync::new(tools, registry.clone(), memory.clone());
        (memory, registry, sync)
    }

    fn description(registry: &Registry, name: &str) -> Option<String> {
        registry.get(name).map(|t| t.spec().description.clone())
    }

    #[tokio::test]
    async fn follows_creations_changes_and_deletions() {
        let (memory, registry, sync) = setup("127.0.0.1");
        assert!(sync.sync().await.expect("sync").is_empty());

        memory.save(definition("ping", "http://127.0.0.1:9/ping"), None);
        memory.save(definition("pong", "http://127.0.0.1:9/pong"), Some("token-SECRET-1"));
        let report = sync.sync().await.expect("sync");
        assert_eq!(report.loaded, ["ping", "pong"]);
        assert_eq!(description(&registry, "ping").as_deref(), Some("ping tool"));
        // nothing changed: nothing is loaded again
        assert!(sync.sync().await.expect("sync").is_empty());

        let mut changed = definition("ping", "http://127.0.0.1:9/ping2");
        changed["description"] = json!("ping, changed");
        memory.save(changed, None);
        memory.delete("pong");
        let report = sync.sync().await.expect("sync");
        assert_eq!(report.loaded, ["ping"]);
        assert_eq!(report.removed, ["pong"]);
        assert_eq!(description(&registry, "ping").as_deref(), Some("ping, changed"));
        assert!(registry.get("pong").is_none());

        // a tool removed here by hand (a local delete) and stored again comes back
        memory.delete("ping");
        sync.sync().await.expect("sync");
        assert!(registry.get("ping").is_none());
        memory.save(definition("ping", "http://127.0.0.1:9/ping"), None);
        assert_eq!(sync.sync().await.expect("sync").loaded, ["ping"]);
    }

    #[tokio::test]
    async fn refusals_are_reported_once_and_never_replace_a_built_in_tool() {
        let (memory, registry, sync) = setup("127.0.0.1");
        memory.save(definition("taken", "http://127.0.0.1:9/x"), None);
        memory.save(definition("broken", "http://127.0.0.1:9/x"), None);
        memory.tools.lock().expect("lock").get_mut("broken").expect("stored").1.definition["method"] =
            json!("BREW");
        let report = sync.sync().await.expect("sync");
        let failed: Vec<&str> = report.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(failed, ["broken", "taken"]);
        assert!(report.failed[1].1.contains("builtin"), "{:?}", report.failed);
        assert_eq!(registry.get("taken").map(|t| t.spec().provider.clone()).as_deref(), Some("builtin"));
        assert!(registry.get("broken").is_none());
        // the same revisions are not tried again
        assert!(sync.sync().await.expect("sync").is_empty());
        // deleting the stored `taken` leaves the built-in tool alone
        memory.delete("taken");
        assert!(sync.sync().await.expect("sync").removed.is_empty());
        assert!(registry.get("taken").is_some());
    }

    #[tokio::test]
    async fn a_tool_that_no_longer_builds_is_removed_not_left_stale() {
        // a newer version this replica cannot build (a newer binary wrote it, say): the old version
        // of the tool must not keep running here
        let (memory, registry, sync) = setup("127.0.0.1");
        memory.save(definition("ping", "http://127.0.0.1:9/ping"), None);
        sync.sync().await.expect("sync");
        assert!(registry.get("ping").is_some());
        let mut newer = definition("ping", "http://127.0.0.1:9/ping");
        newer["response_transform"] = json!(".items[");
        memory.save(newer, None);
        let report = sync.sync().await.expect("sync");
        assert_eq!(report.removed, ["ping"]);
        assert_eq!(report.failed.len(), 1);
        assert!(registry.get("ping").is_none());
    }

    #[tokio::test]
    async fn a_store_error_changes_nothing_and_is_retried() {
        let (memory, registry, sync) = setup("127.0.0.1");
        memory.save(definition("ping", "http://127.0.0.1:9/ping"), None);
        memory.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(sync.sync().await.is_err());
        assert!(sync.sync_and_log().await.is_empty());
        assert!(registry.get("ping").is_none());
        memory.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(sync.sync().await.expect("sync").loaded, ["ping"]);
    }

    #[tokio::test]
    async fn one_unreadable_tool_does_not_hold_back_the_others() {
        let (memory, registry, sync) = setup("127.0.0.1");
        memory.save(definition("ping", "http://127.0.0.1:9/ping"), None);
        sync.sync().await.expect("sync");
        memory.save(definition("pong", "http://127.0.0.1:9/pong"), Some("token-SECRET-2"));
        memory.save(definition("zap", "http://127.0.0.1:9/zap"), None);
        let mut changed = definition("ping", "http://127.0.0.1:9/ping");
        changed["description"] = json!("ping, changed");
        memory.save(changed, None);
        memory.unreadable.lock().expect("lock").extend(["pong".to_owned(), "ping".to_owned()]);
        let report = sync.sync().await.expect("a tool's bad row is not a store error");
        assert_eq!(report.loaded, ["zap"]);
        let failed: Vec<&str> = report.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(failed, ["ping", "pong"]);
        assert!(report.failed[1].1.contains("cannot be decrypted"), "{:?}", report.failed);
        assert!(!format!("{report:?}").contains("SECRET"));
        // the old `ping` does not keep running with what may be stale credentials
        assert_eq!(report.removed, ["ping"]);
        assert!(registry.get("ping").is_none() && registry.get("pong").is_none());
        assert!(registry.get("zap").is_some());
        // reported once per revision; saved again (credentials re-entered), it loads
        assert!(sync.sync().await.expect("sync").is_empty());
        memory.unreadable.lock().expect("lock").clear();
        memory.save(definition("pong", "http://127.0.0.1:9/pong"), Some("token-SECRET-3"));
        assert_eq!(sync.sync().await.expect("sync").loaded, ["pong"]);
    }

    #[tokio::test]
    async fn start_up_reads_every_tool_at_once_and_later_polls_only_what_changed() {
        let (memory, registry, sync) = setup("127.0.0.1");
        for i in 0..20 {
            memory.save(definition(&format!("t{i:02}"), "http://127.0.0.1:9/x"), Some("token-SECRET-4"));
        }
        memory.save(definition("bad", "http://127.0.0.1:9/x"), None);
        memory.unreadable.lock().expect("lock").insert("bad".to_owned());
        let report = sync.sync().await.expect("sync");
        assert_eq!(report.loaded.len(), 20);
        assert_eq!(report.failed.len(), 1);
        assert!(report.failed[0].1.contains("cannot be decrypted"), "{:?}", report.failed);
        assert_eq!(memory.reads(), (0, 1), "start-up is one read, not one per tool");
        assert!(registry.get("t19").is_some() && registry.get("bad").is_none());

        // nothing changed: the cheap version list only
        assert!(sync.sync().await.expect("sync").is_empty());
        assert_eq!(memory.reads(), (0, 0));
        // two changes: two loads
        memory.save(definition("t00", "http://127.0.0.1:9/y"), None);
        memory.delete("t01");
        let report = sync.sync().await.expect("sync");
        assert_eq!((report.loaded, report.removed), (vec!["t00".to_owned()], vec!["t01".to_owned()]));
        assert_eq!(memory.reads(), (1, 0));
        // many changes (a bulk import elsewhere): one read of everything, only the changed loaded
        for i in 2..12 {
            let mut changed = definition(&format!("t{i:02}"), "http://127.0.0.1:9/x");
            changed["description"] = json!("changed");
            memory.save(changed, None);
        }
        memory.delete("t19");
        let report = sync.sync().await.expect("sync");
        assert_eq!(report.loaded.len(), 10);
        assert_eq!(report.removed, ["t19"]);
        assert!(report.failed.is_empty(), "the unreadable tool is not reported again: {report:?}");
        assert_eq!(memory.reads(), (0, 1));
        assert_eq!(description(&registry, "t11").as_deref(), Some("changed"));
        assert_eq!(description(&registry, "t12").as_deref(), Some("t12 tool"));
        assert!(registry.get("t19").is_none());
    }

    #[tokio::test]
    async fn the_default_load_all_reads_tool_by_tool() {
        let memory = Arc::new(Memory::default());
        memory.save(definition("ping", "http://127.0.0.1:9/ping"), None);
        memory.save(definition("pong", "http://127.0.0.1:9/pong"), Some("token-SECRET-5"));
        memory.unreadable.lock().expect("lock").insert("pong".to_owned());
        let all = PerTool(memory.clone()).load_all().await.expect("all");
        let read: Vec<(&str, i64, bool)> =
            all.iter().map(|t| (t.name.as_str(), t.revision, t.tool.is_ok())).collect();
        assert_eq!(read, [("ping", 1, true), ("pong", 1, false)]);
        assert_eq!(memory.reads(), (2, 0));
        memory.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(PerTool(memory).load_all().await.is_err());
    }

    #[test]
    fn saved_credentials_are_put_back() {
        let saved = SavedTool {
            definition: json!({"name": "t", "description": "d", "method": "GET", "url": "http://127.0.0.1/",
                "auth": {"type": "bearer"}}),
            secrets: BTreeMap::from([("auth".to_owned(), SecretString::from("tok-SECRET-9".to_owned()))]),
        };
        let definition = saved.into_definition().expect("definition");
        assert_eq!(definition.secrets()["auth"].expose(), "tok-SECRET-9");
    }
}
