//! Webhook endpoints, deliveries and custom tools, on SQLite and on PostgreSQL.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use integration_core::{ErrorKind, IntegrationError};
use integration_store::{DeliveryEvent, DeliveryFilter, DeliveryInsert, NewWebhookDelivery, StoreError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

on_both_backends!(
    endpoints_with_sealed_secrets,
    deliveries_dedup_page_and_purge,
    a_delivery_and_its_event_are_written_together,
    custom_tools_round_trip,
    rotation_reseals_webhook_secrets_and_tool_credentials,
    tampered_moved_or_foreign_sealed_rows_are_clean_configuration_errors,
);

fn secrets(value: &str) -> BTreeMap<String, SecretString> {
    BTreeMap::from([("secret".to_owned(), SecretString::from(value.to_owned()))])
}

fn delivery(endpoint: &str, status: &str, dedup: Option<&str>, at: i64) -> NewWebhookDelivery {
    NewWebhookDelivery {
        endpoint: endpoint.into(),
        received_at: at,
        verification: "passed".into(),
        headers: json!({"content-type": "application/json"}),
        body: br#"{"a":1}"#.to_vec(),
        body_preview: r#"{"a":1}"#.into(),
        content_type: Some("application/json".into()),
        output: Some(json!({"a": 1})),
        error: None,
        status: status.into(),
        publish_status: "skipped".into(),
        dedup_key: dedup.map(str::to_owned),
        replay_of: None,
    }
}

async fn endpoints_with_sealed_secrets(db: Arc<TestDb>) {
    let store = db.open().await;
    let hooks = store.webhooks();
    let def = json!({"verification": {"scheme": "github"}, "transform": ".action"});
    assert!(hooks.save_endpoint("gh", &def, &secrets("hook-SECRET-1")).await.expect("save"));
    let got = hooks.get_endpoint("gh").await.expect("get").expect("exists");
    assert_eq!(got.definition, def);
    assert_eq!(got.secrets["secret"].expose_secret(), "hook-SECRET-1");
    let first_revision = got.revision;
    assert!(!hooks.save_endpoint("gh", &def, &secrets("hook-SECRET-2")).await.expect("save again"));
    let got = hooks.get_endpoint("gh").await.expect("get").expect("exists");
    assert!(got.revision > first_revision);
    assert_eq!(got.secrets["secret"].expose_secret(), "hook-SECRET-2");
    // Saves in quick succession (often within one millisecond) are updates, never "created".
    for _ in 0..20 {
        assert!(!hooks.save_endpoint("gh", &def, &secrets("hook-SECRET-2")).await.expect("save again"));
    }
    assert!(hooks.save_endpoint("bad/name", &def, &BTreeMap::new()).await.is_err());
    assert!(hooks.get_endpoint("nope").await.expect("get").is_none());
    assert!(hooks.delete_endpoint("gh").await.expect("delete"));
    assert!(!hooks.delete_endpoint("gh").await.expect("delete twice"));
}

async fn deliveries_dedup_page_and_purge(db: Arc<TestDb>) {
    let store = db.open().await;
    let hooks = store.webhooks();
    let now = chrono::Utc::now().timestamp_millis();
    let first =
        match hooks.insert_delivery(&delivery("a", "processed", Some("d-1"), now)).await.expect("insert") {
            DeliveryInsert::Inserted(id) => id,
            other => panic!("{other:?}"),
        };
    assert_eq!(
        hooks.insert_delivery(&delivery("a", "failed", Some("d-1"), now)).await.expect("dup"),
        DeliveryInsert::Duplicate { id: first, status: "processed".into(), publish_status: "skipped".into() }
    );
    // the same key on another endpoint and deliveries without keys are distinct
    assert!(matches!(
        hooks.insert_delivery(&delivery("b", "processed", Some("d-1"), now)).await,
        Ok(DeliveryInsert::Inserted(_))
    ));
    for i in 0..5 {
        let status = if i % 2 == 0 { "failed" } else { "processed" };
        assert!(matches!(
            hooks.insert_delivery(&delivery("a", status, None, now + i)).await,
            Ok(DeliveryInsert::Inserted(_))
        ));
    }
    hooks.set_publish_status(first, "queued").await.expect("publish status");
    let got = hooks.get_delivery("a", first).await.expect("get").expect("exists");
    assert_eq!(got.body.as_deref(), Some(br#"{"a":1}"#.as_slice()));
    assert_eq!(got.publish_status, "queued");
    assert_eq!(got.output, Some(json!({"a": 1})));
    assert!(hooks.get_delivery("b", first).await.expect("get").is_none());

    let page =
        hooks.list_deliveries("a", &DeliveryFilter { limit: 4, ..Default::default() }).await.expect("list");
    assert_eq!(page.len(), 4);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(page.iter().all(|d| d.body.is_none()));
    let rest = hooks
        .list_deliveries(
            "a",
            &DeliveryFilter { limit: 4, before_id: page.last().map(|d| d.id), ..Default::default() },
        )
        .await
        .expect("list");
    assert_eq!(rest.len(), 2);
    let failed = hooks
        .list_deliveries(
            "a",
            &DeliveryFilter { limit: 50, status: Some("failed".into()), ..Default::default() },
        )
        .await
        .expect("list");
    assert_eq!(failed.len(), 3);
    let late = hooks
        .list_deliveries(
            "a",
            &DeliveryFilter { limit: 50, since: Some(now + 3), until: Some(now + 5), ..Default::default() },
        )
        .await
        .expect("list");
    assert_eq!(late.len(), 2);

    // retention: by count per endpoint, then by age
    assert_eq!(hooks.purge_deliveries(Duration::from_secs(3600), 3).await.expect("purge"), 3);
    assert_eq!(
        hooks
            .list_deliveries("a", &DeliveryFilter { limit: 50, ..Default::default() })
            .await
            .expect("list")
            .len(),
        3
    );
    assert_eq!(
        hooks
            .list_deliveries("b", &DeliveryFilter { limit: 50, ..Default::default() })
            .await
            .expect("list")
            .len(),
        1
    );
    hooks.insert_delivery(&delivery("b", "processed", None, now - 8 * 24 * 3600 * 1000)).await.expect("old");
    assert_eq!(hooks.purge_deliveries(Duration::from_secs(7 * 24 * 3600), 10_000).await.expect("purge"), 1);
    assert!(hooks.delete_endpoint("a").await.is_ok());
    assert!(
        hooks
            .list_deliveries("a", &DeliveryFilter { limit: 50, ..Default::default() })
            .await
            .expect("list")
            .is_empty()
    );
}

async fn a_delivery_and_its_event_are_written_together(db: Arc<TestDb>) {
    let store = db.open().await;
    let hooks = store.webhooks();
    let now = chrono::Utc::now().timestamp_millis();
    let payload = |id: i64| format!(r#"{{"delivery_id":"{id}"}}"#).into_bytes();
    let event = DeliveryEvent {
        exchange: "events.exchange",
        routing_key: "integrations.webhook.e",
        payload: &payload,
    };
    let queued = |key: &str| {
        let mut d = delivery("e", "processed", Some(key), now);
        d.publish_status = "queued".into();
        d
    };
    let events = || async {
        let messages = store.outbox().fetch_unpublished(100).await.expect("outbox");
        messages.into_iter().filter(|m| m.routing_key == "integrations.webhook.e").collect::<Vec<_>>()
    };

    let id = match hooks.insert_delivery_with_event(&queued("k-1"), &event).await.expect("insert") {
        DeliveryInsert::Inserted(id) => id,
        other => panic!("{other:?}"),
    };
    let written = events().await;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].exchange, "events.exchange");
    assert_eq!(written[0].payload, payload(id), "the event names the new delivery");
    assert_eq!(hooks.get_delivery("e", id).await.expect("get").expect("recorded").publish_status, "queued");

    // A duplicate queues nothing.
    assert_eq!(
        hooks.insert_delivery_with_event(&queued("k-1"), &event).await.expect("duplicate"),
        DeliveryInsert::Duplicate { id, status: "processed".into(), publish_status: "queued".into() }
    );
    assert_eq!(events().await.len(), 1);

    // When the event cannot be written, neither is the delivery.
    db.exec("ALTER TABLE outbox RENAME TO outbox_elsewhere".into(), None).await;
    assert!(hooks.insert_delivery_with_event(&queued("k-2"), &event).await.is_err());
    let recorded =
        hooks.list_deliveries("e", &DeliveryFilter { limit: 10, ..Default::default() }).await.expect("list");
    assert_eq!(recorded.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id]);
    // Without an event the delivery alone is written, as before.
    assert!(matches!(
        hooks.insert_delivery(&delivery("e", "processed", Some("k-3"), now)).await,
        Ok(DeliveryInsert::Inserted(_))
    ));
}

async fn custom_tools_round_trip(db: Arc<TestDb>) {
    let store = db.open().await;
    let hooks = store.webhooks();
    let def = json!({"name": "status_page", "url": "https://status.example.com/{c}"});
    let creds = BTreeMap::from([("auth".to_owned(), SecretString::from("tool-TOKEN-7".to_owned()))]);
    assert!(hooks.custom_tool_versions().await.expect("versions").is_empty());
    assert!(hooks.save_custom_tool("status_page", &def, &creds).await.expect("save"));
    let first = hooks.custom_tool_versions().await.expect("versions");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "status_page");
    // every save moves the revision forward, two saves in the same millisecond included
    let mut last = first[0].1;
    for _ in 0..3 {
        assert!(!hooks.save_custom_tool("status_page", &def, &creds).await.expect("update"));
        let now = hooks.custom_tool_versions().await.expect("versions")[0].1;
        assert!(now > last, "revision {now} after {last}");
        last = now;
    }
    let got = hooks.get_custom_tool("status_page").await.expect("get").expect("exists");
    assert_eq!(got.definition, def);
    assert_eq!(got.secrets["auth"].expose_secret(), "tool-TOKEN-7");
    let all = hooks.list_custom_tools().await.expect("list");
    assert_eq!(all.len(), 1);
    assert!(all[0].tool.is_ok());
    // the listing carries the same revision as the cheap version list
    assert_eq!((all[0].name.as_str(), all[0].revision), ("status_page", last));
    // a store opened with another key cannot open the credentials, and says so for that tool only
    let other = db.open_with(&common::random_key(), &[]).await.expect("open");
    let listed = other.webhooks().list_custom_tools().await.expect("list");
    assert!(listed[0].tool.is_err());
    assert_eq!(listed[0].revision, last);
    assert!(hooks.delete_custom_tool("status_page").await.expect("delete"));
    assert!(hooks.get_custom_tool("status_page").await.expect("get").is_none());
    assert!(hooks.custom_tool_versions().await.expect("versions").is_empty());
}

async fn rotation_reseals_webhook_secrets_and_tool_credentials(db: Arc<TestDb>) {
    let store = db.open().await;
    let hooks = store.webhooks();
    let def = json!({"verification": {"scheme": "github"}});
    hooks.save_endpoint("gh", &def, &secrets("hook-ROTATE-1")).await.expect("save endpoint");
    let creds = BTreeMap::from([("auth".to_owned(), SecretString::from("tool-ROTATE-2".to_owned()))]);
    hooks.save_custom_tool("status", &json!({"name": "status"}), &creds).await.expect("save tool");

    let new_key = common::random_key();
    let key = |b64: &str| {
        integration_store::MasterKey::from_base64(&SecretString::from(b64.to_owned())).expect("key")
    };
    let report = store.rotate_master_key(&[key(&db.key)], &key(&new_key)).await.expect("rotate");
    assert_eq!(report.rotated, 2, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.key_usage.len(), 1, "nothing left on the old key: {report:?}");

    let only_new = db.open_with(&new_key, &[]).await.expect("open with the new key");
    let endpoint = only_new.webhooks().get_endpoint("gh").await.expect("decrypts").expect("exists");
    assert_eq!(endpoint.secrets["secret"].expose_secret(), "hook-ROTATE-1");
    let tool = only_new.webhooks().get_custom_tool("status").await.expect("decrypts").expect("exists");
    assert_eq!(tool.secrets["auth"].expose_secret(), "tool-ROTATE-2");
    let only_old = db.open_with(&db.key, &[]).await.expect("open with the old key");
    assert!(only_old.webhooks().get_endpoint("gh").await.is_err(), "the old key opens nothing");
}

/// A refusal to open a sealed row: a `Credentials` error, reported as a configuration problem, whose
/// text shows neither the secret nor the stored ciphertext.
fn assert_clean_refusal(result: Result<impl std::fmt::Debug, StoreError>, secret: &str, blob: &[u8]) {
    let error = result.expect_err("the sealed row must not open");
    assert!(matches!(error, StoreError::Credentials { .. }), "{error:?}");
    let mut shown = format!("{error} {error:?}");
    let reported = IntegrationError::from(error);
    assert_eq!(reported.kind(), &ErrorKind::Configuration);
    shown.push_str(reported.message());
    assert!(shown.contains("cannot be decrypted"), "{shown}");
    assert!(!shown.contains(secret), "the secret is not shown: {shown}");
    let hex: String = blob[1..].iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &blob[1..]);
    for encoded in [hex.as_str(), b64.as_str()] {
        assert!(encoded.len() < 16 || !shown.contains(&encoded[..16]), "no ciphertext in the error: {shown}");
    }
}

async fn tampered_moved_or_foreign_sealed_rows_are_clean_configuration_errors(db: Arc<TestDb>) {
    let store = db.open().await;
    let hooks = store.webhooks();
    let def = json!({"verification": {"scheme": "github"}});
    hooks.save_endpoint("hook-a", &def, &secrets("hook-TAMPER-a")).await.expect("save a");
    hooks.save_endpoint("hook-b", &def, &secrets("hook-TAMPER-b")).await.expect("save b");
    let creds = |v: &str| BTreeMap::from([("auth".to_owned(), SecretString::from(v.to_owned()))]);
    hooks
        .save_custom_tool("tool-a", &json!({"name": "tool-a"}), &creds("tool-TAMPER-a"))
        .await
        .expect("tool a");
    hooks
        .save_custom_tool("tool-b", &json!({"name": "tool-b"}), &creds("tool-TAMPER-b"))
        .await
        .expect("tool b");

    // one flipped bit in an endpoint's ciphertext: that endpoint fails, cleanly; the other opens
    let original = db.blob("webhook_endpoints", "secrets", "hook-a").await;
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x80;
    db.exec("UPDATE webhook_endpoints SET secrets = $1 WHERE name = 'hook-a'".into(), Some(flipped.clone()))
        .await;
    assert_clean_refusal(hooks.get_endpoint("hook-a").await, "hook-TAMPER-a", &flipped);
    let b = hooks.get_endpoint("hook-b").await.expect("b opens").expect("b exists");
    assert_eq!(b.secrets["secret"].expose_secret(), "hook-TAMPER-b");

    // an intact ciphertext moved onto another row (same table, or another table of the same name)
    db.exec("UPDATE webhook_endpoints SET secrets = $1 WHERE name = 'hook-b'".into(), Some(original.clone()))
        .await;
    assert_clean_refusal(hooks.get_endpoint("hook-b").await, "hook-TAMPER-a", &original);
    let tool_blob = db.blob("custom_tools", "credentials", "tool-a").await;
    db.exec("UPDATE custom_tools SET credentials = $1 WHERE name = 'tool-b'".into(), Some(tool_blob.clone()))
        .await;
    assert_clean_refusal(hooks.get_custom_tool("tool-b").await, "tool-TAMPER-a", &tool_blob);
    hooks
        .save_custom_tool("hook-a", &json!({"name": "hook-a"}), &creds("tool-TAMPER-c"))
        .await
        .expect("tool");
    db.exec("UPDATE custom_tools SET credentials = $1 WHERE name = 'hook-a'".into(), Some(original.clone()))
        .await;
    assert_clean_refusal(hooks.get_custom_tool("hook-a").await, "hook-TAMPER-a", &original);
    // the listing reports the broken tools one by one and still opens the intact one
    let listed = hooks.list_custom_tools().await.expect("list");
    let opened: Vec<&str> = listed.iter().filter(|t| t.tool.is_ok()).map(|t| t.name.as_str()).collect();
    assert_eq!(opened, vec!["tool-a"]);

    // a truncated blob and an unknown format version
    db.exec("UPDATE custom_tools SET credentials = $1 WHERE name = 'tool-a'".into(), Some(vec![1, 2, 3]))
        .await;
    assert_clean_refusal(hooks.get_custom_tool("tool-a").await, "tool-TAMPER-a", &[0, 1, 2, 3]);
    let mut versioned = tool_blob.clone();
    versioned[0] = 9;
    db.exec("UPDATE custom_tools SET credentials = $1 WHERE name = 'tool-a'".into(), Some(versioned.clone()))
        .await;
    assert_clean_refusal(hooks.get_custom_tool("tool-a").await, "tool-TAMPER-a", &versioned);

    // the wrong master key opens nothing and says which key id it needs, without any key material
    hooks.save_endpoint("hook-c", &def, &secrets("hook-TAMPER-c")).await.expect("save c");
    let wrong_key = common::random_key();
    let other = db.open_with(&wrong_key, &[]).await.expect("open with another key");
    let blob = db.blob("webhook_endpoints", "secrets", "hook-c").await;
    let error = other.webhooks().get_endpoint("hook-c").await.expect_err("wrong key");
    let shown = error.to_string();
    assert!(shown.contains(store.key_id()), "names the key id it needs: {shown}");
    assert!(!shown.contains(&db.key) && !shown.contains(&wrong_key), "{shown}");
    assert_clean_refusal(Err::<(), _>(error), "hook-TAMPER-c", &blob);
}
