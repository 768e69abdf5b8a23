//! The store as the source of the custom HTTP tools (the `custom-tools` feature), followed by a
//! `CustomToolSync` into a registry, on SQLite and on PostgreSQL.

#![cfg(feature = "custom-tools")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::TestDb;
use integration_core::Registry;
use integration_webhook::{Allowlist, CustomToolSource, CustomToolSync, CustomTools, LoadError, SsrfGuard};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

on_both_backends!(the_store_serves_custom_tools_to_a_sync,);

fn definition(name: &str) -> Value {
    json!({"name": name, "description": format!("{name} tool"), "method": "GET",
        "url": "http://127.0.0.1:9/x", "auth": {"type": "bearer"}})
}

fn token(value: &str) -> BTreeMap<String, SecretString> {
    BTreeMap::from([("auth".to_owned(), SecretString::from(value.to_owned()))])
}

async fn the_store_serves_custom_tools_to_a_sync(db: Arc<TestDb>) {
    let store = db.open().await;
    let hooks = store.webhooks();
    for name in ["alpha", "beta", "gamma"] {
        hooks
            .save_custom_tool(name, &definition(name), &token(&format!("{name}-SECRET")))
            .await
            .expect("save");
    }
    // `delta` sealed under a key this store does not hold: its row alone cannot be used
    let foreign = db.open_with(&common::random_key(), &[]).await.expect("open");
    foreign
        .webhooks()
        .save_custom_tool("delta", &definition("delta"), &token("delta-SECRET"))
        .await
        .expect("save");

    // one read of every row, with the same revisions as the cheap list
    let all = store.load_all().await.expect("all");
    let versions = store.versions().await.expect("versions");
    let read: Vec<(String, i64)> = all.iter().map(|t| (t.name.clone(), t.revision)).collect();
    assert_eq!(read, versions);
    let opened: Vec<&str> = all.iter().filter(|t| t.tool.is_ok()).map(|t| t.name.as_str()).collect();
    assert_eq!(opened, ["alpha", "beta", "gamma"]);
    let row = |name: &str| &all.iter().find(|t| t.name == name).expect("listed").tool;
    let beta = row("beta").as_ref().expect("beta opens");
    assert_eq!(beta.secrets["auth"].expose_secret(), "beta-SECRET");
    let delta = row("delta").as_ref().expect_err("delta does not open");
    assert!(!delta.contains("SECRET"), "{delta}");
    // the single read says the same, as a row error, not a store error
    assert!(matches!(store.load("delta").await, Err(LoadError::Unreadable(_))));
    assert!(store.load("gone").await.expect("load").is_none());

    // a sync loads what opens and refuses `delta` alone
    let registry = Arc::new(Registry::new());
    registry.add(integration_webhook::provider()).expect("provider");
    let tools =
        CustomTools::new(SsrfGuard::new(Allowlist::parse("127.0.0.1").expect("allowlist"))).expect("tools");
    let sync = CustomToolSync::new(tools, registry.clone(), Arc::new(store.clone()));
    let report = sync.sync().await.expect("sync");
    assert_eq!(report.loaded, ["alpha", "beta", "gamma"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "delta");
    assert!(registry.get("gamma").is_some() && registry.get("delta").is_none());

    // later polls follow changes one by one
    let mut changed = definition("beta");
    changed["description"] = json!("beta, changed");
    hooks.save_custom_tool("beta", &changed, &token("beta-SECRET-2")).await.expect("save");
    assert!(hooks.delete_custom_tool("alpha").await.expect("delete"));
    let report = sync.sync().await.expect("sync");
    assert_eq!((report.loaded, report.removed), (vec!["beta".to_owned()], vec!["alpha".to_owned()]));
    assert_eq!(registry.get("beta").map(|t| t.spec().description.clone()).as_deref(), Some("beta, changed"));
    assert!(sync.sync().await.expect("sync").is_empty());
}
