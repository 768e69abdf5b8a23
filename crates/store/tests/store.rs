//! The store suite, run on SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{TestDb, github_info, jira_info, random_key};
use integration_core::{Connection, ConnectionResolver, ConnectionSource, ErrorKind};
use integration_store::{
    AuditRecord, Begin, MasterKey, NewOutboxMessage, OutcomeState, Store, StoreConnections, StoreError,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

const TOKEN: &str = "tok-SECRET-9f8e7d6c";

fn jira_body(token: &str) -> serde_json::Value {
    json!({"base_url": "https://acme.atlassian.net", "username": "bot@acme.io", "api_token": token,
           "rate_limit_per_minute": 42, "timeout_seconds": 7, "max_retry_attempts": 1})
}

fn env_jira() -> Connection {
    let mut c =
        Connection::new("jira", "jira", json!({"base_url": "https://env.example", "username": "env"}))
            .with_secret("api_token", "env-token");
    c.source = ConnectionSource::Environment;
    c
}

fn key(b64: &str) -> MasterKey {
    MasterKey::from_base64(&SecretString::from(b64.to_owned())).expect("key")
}

on_both_backends!(
    save_resolve_delete,
    secrets_are_not_readable_back,
    tampered_ciphertext_fails_that_connection_only,
    ciphertext_moved_to_another_row_fails,
    wrong_key_is_a_clear_configuration_error,
    rotation_reencrypts_every_row,
    rotation_leaves_no_sealed_row_on_the_old_key,
    idempotency_states,
    idempotency_batches,
    outbox_round_trip,
    audit_counts,
    audit_batches_of_every_size,
    changes_reach_other_replicas,
);

async fn save_resolve_delete(db: Arc<TestDb>) {
    let store = db.open().await;
    let conns = StoreConnections::new(store.clone(), vec![env_jira()]).with_ttl(Duration::from_secs(60));

    // environment first, as nothing is stored
    let env = conns.resolve("jira").await.expect("env connection");
    assert_eq!(env.source, ConnectionSource::Environment);
    let status = conns.status("jira").await.expect("status");
    assert_eq!(status.source, Some(ConnectionSource::Environment));

    // configure: the store wins, on the very next call (local cache dropped)
    let saved = conns.configure(&jira_info(), "jira", &jira_body(TOKEN)).await.expect("configure");
    assert_eq!(saved.secret_fields, vec!["api_token"]);
    assert_eq!(saved.config, json!({"base_url": "https://acme.atlassian.net", "username": "bot@acme.io"}));
    assert_eq!(saved.settings.rate_limit_per_minute, Some(42));
    assert_eq!(saved.key_id, store.key_id());
    let c = conns.resolve("jira").await.expect("stored connection");
    assert_eq!(c.source, ConnectionSource::Store);
    assert_eq!(c.revision, saved.revision);
    assert_eq!(c.secret("api_token").map(|s| s.expose_secret()), Some(TOKEN));
    assert_eq!(c.config_str("username"), Some("bot@acme.io"));
    assert_eq!(c.settings.timeout, Some(Duration::from_secs(7)));
    assert_eq!(c.settings.max_retry_attempts, Some(1));

    // a second connection of the same provider
    let body = json!({"provider": "jira", "base_url": "https://eu.example", "personal_access_token": "pat"});
    conns.configure(&jira_info(), "jira-eu", &body).await.expect("configure jira-eu");
    let eu = conns.resolve("jira-eu").await.expect("jira-eu");
    assert_eq!(eu.provider, "jira");
    assert_eq!(eu.secret("personal_access_token").map(|s| s.expose_secret()), Some("pat"));

    // reconfigure bumps the revision
    let again = conns.configure(&jira_info(), "jira", &jira_body("tok-2")).await.expect("reconfigure");
    assert!(again.revision > saved.revision);
    assert_eq!(again.created_at, saved.created_at);
    let c = conns.resolve("jira").await.expect("resolve");
    assert_eq!(c.secret("api_token").map(|s| s.expose_secret()), Some("tok-2"));

    let names: Vec<_> = conns.list().await.expect("list").into_iter().map(|s| (s.name, s.source)).collect();
    assert_eq!(
        names,
        vec![("jira".into(), ConnectionSource::Store), ("jira-eu".into(), ConnectionSource::Store)]
    );

    // delete: the environment connection is in force again
    assert!(conns.delete("jira").await.expect("delete"));
    assert!(!conns.delete("jira").await.expect("delete twice"));
    assert_eq!(conns.resolve("jira").await.expect("env").source, ConnectionSource::Environment);

    // unknown: a Configuration error naming the known connections
    let err = conns.resolve("nope").await.expect_err("unknown");
    assert_eq!(err.kind(), &ErrorKind::Configuration);
    assert!(err.message().contains("jira-eu") && err.message().contains("'nope'"), "{}", err.message());
    let status = conns.status("nope").await.expect("status");
    assert!(!status.configured && status.source.is_none());
    store.close().await;
}

async fn secrets_are_not_readable_back(db: Arc<TestDb>) {
    let store = db.open().await;
    let conns = StoreConnections::new(store.clone(), vec![]);
    let saved = conns.configure(&jira_info(), "jira", &jira_body(TOKEN)).await.expect("configure");
    conns.record_check("jira", false, "authentication failed").await.expect("check");

    let shown = [
        serde_json::to_string(&saved).expect("json"),
        serde_json::to_string(&store.list_connections().await.expect("list")).expect("json"),
        serde_json::to_string(&conns.status("jira").await.expect("status")).expect("json"),
        format!("{saved:?}"),
        format!("{:?}", conns.resolve("jira").await.expect("resolve")),
        format!("{:?}", store.load_connection("jira").await.expect("load")),
        format!("{conns:?}"),
    ];
    for text in shown {
        assert!(!text.contains(TOKEN), "secret visible in: {text}");
    }
    let raw = db.credentials("jira").await;
    assert!(!raw.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()), "plaintext in the database");
    let status = conns.status("jira").await.expect("status");
    assert_eq!(status.secret_fields, vec!["api_token"]);
    assert_eq!(status.last_check.map(|c| c.ok), Some(false));
}

async fn tampered_ciphertext_fails_that_connection_only(db: Arc<TestDb>) {
    let store = db.open().await;
    let conns = StoreConnections::new(store.clone(), vec![]).with_ttl(Duration::ZERO);
    conns.configure(&jira_info(), "jira", &jira_body(TOKEN)).await.expect("configure");
    conns.configure(&github_info(), "github", &json!({"token": "gh-token"})).await.expect("configure");

    let mut blob = db.credentials("jira").await;
    let i = blob.len() / 2;
    blob[i] ^= 0x01;
    db.exec("UPDATE connections SET credentials = $1 WHERE name = 'jira'".into(), Some(blob)).await;

    let err = conns.resolve("jira").await.expect_err("tampered");
    assert_eq!(err.kind(), &ErrorKind::Configuration);
    assert!(err.message().contains("'jira'") && err.message().contains("cannot be decrypted"), "{err}");
    assert!(matches!(store.load_connection("jira").await, Err(StoreError::Credentials { .. })));
    // the others keep working
    let gh = conns.resolve("github").await.expect("github still resolves");
    assert_eq!(gh.secret("token").map(|s| s.expose_secret()), Some("gh-token"));
    // status reports the problem instead of failing
    let status = conns.status("jira").await.expect("status");
    assert!(status.configured);
    assert!(status.credentials_error.is_some_and(|e| e.contains("cannot be decrypted")));

    // a truncated row
    db.exec("UPDATE connections SET credentials = $1 WHERE name = 'jira'".into(), Some(vec![1, 2, 3])).await;
    assert_eq!(conns.resolve("jira").await.expect_err("truncated").kind(), &ErrorKind::Configuration);
}

async fn ciphertext_moved_to_another_row_fails(db: Arc<TestDb>) {
    let store = db.open().await;
    let conns = StoreConnections::new(store.clone(), vec![]).with_ttl(Duration::ZERO);
    conns.configure(&jira_info(), "jira", &jira_body(TOKEN)).await.expect("configure");
    conns.configure(&jira_info(), "jira-eu", &jira_body("other")).await.expect("configure");
    let blob = db.credentials("jira").await;
    db.exec("UPDATE connections SET credentials = $1 WHERE name = 'jira-eu'".into(), Some(blob)).await;
    let err = conns.resolve("jira-eu").await.expect_err("moved ciphertext");
    assert_eq!(err.kind(), &ErrorKind::Configuration);
    assert_eq!(
        conns.resolve("jira").await.expect("original row").secret("api_token").map(|s| s.expose_secret()),
        Some(TOKEN)
    );
}

async fn wrong_key_is_a_clear_configuration_error(db: Arc<TestDb>) {
    let store = db.open().await;
    store.configure(&jira_info(), "jira", &jira_body(TOKEN)).await.expect("configure");

    let other = db.open_with(&random_key(), &[]).await.expect("open with another key");
    let conns = StoreConnections::new(other.clone(), vec![]);
    let err = conns.resolve("jira").await.expect_err("wrong key");
    assert_eq!(err.kind(), &ErrorKind::Configuration);
    assert!(err.message().contains(store.key_id()), "names the missing key id: {err}");
    assert!(err.message().contains("INTEGRATIONS_MASTER_KEY"), "says what to set: {err}");
    assert!(!err.message().contains(&db.key));

    // the old key as a previous key makes it readable again
    let both = db.open_with(&random_key(), &[&db.key]).await.expect("open");
    let c = StoreConnections::new(both, vec![]).resolve("jira").await.expect("previous key opens");
    assert_eq!(c.secret("api_token").map(|s| s.expose_secret()), Some(TOKEN));

    // malformed keys are refused at start-up
    assert!(matches!(db.open_with("short", &[]).await, Err(StoreError::Config(_))));
    assert!(matches!(db.open_with(&db.key, &["!!"]).await, Err(StoreError::Config(_))));
}

async fn rotation_reencrypts_every_row(db: Arc<TestDb>) {
    let old = db.open().await;
    for (name, token) in [("jira", "t1"), ("jira-eu", "t2"), ("jira-us", "t3")] {
        old.configure(&jira_info(), name, &jira_body(token)).await.expect("configure");
    }
    old.configure(&github_info(), "github", &json!({"token": "t4"})).await.expect("configure");
    let revisions: Vec<u64> =
        old.list_connections().await.expect("list").iter().map(|c| c.revision).collect();

    // step 1: replicas run with the new key current and the old one previous
    let new_key = random_key();
    let store = db.open_with(&new_key, &[&db.key]).await.expect("open with both keys");
    // a row saved during the rollout is sealed under the new key already
    store.configure(&github_info(), "github-2", &json!({"token": "t5"})).await.expect("configure");

    // step 2: rotate
    let report = store.rotate_master_key(&[key(&db.key)], &key(&new_key)).await.expect("rotate");
    assert_eq!(report.rotated, 4, "{report:?}");
    assert_eq!(report.already_current, 1);
    assert!(report.failed.is_empty());
    assert_eq!(report.key_usage, vec![(store.key_id().to_owned(), 5)]);
    assert_eq!(store.key_usage().await.expect("usage").len(), 1, "nothing left on the old key");
    let after: Vec<u64> = store
        .list_connections()
        .await
        .expect("list")
        .iter()
        .filter(|c| c.name != "github-2")
        .map(|c| c.revision)
        .collect();
    assert_eq!(after, revisions, "rotation does not change revisions (the secrets did not change)");

    // step 3: the old key is dropped; every row opens with the new key alone
    let only_new = db.open_with(&new_key, &[]).await.expect("open with the new key");
    for (name, token) in
        [("jira", "t1"), ("jira-eu", "t2"), ("jira-us", "t3"), ("github", "t4"), ("github-2", "t5")]
    {
        let c = only_new.load_connection(name).await.expect("decrypts").expect("exists");
        let field = if name.starts_with("github") { "token" } else { "api_token" };
        assert_eq!(c.secret(field).map(|s| s.expose_secret()), Some(token), "{name}");
    }
    // and the old key alone opens none
    let only_old = db.open_with(&db.key, &[]).await.expect("open with the old key");
    assert!(matches!(only_old.load_connection("jira").await, Err(StoreError::Credentials { .. })));

    // a second run has nothing to do; an unreadable row is reported, not fatal
    db.exec("UPDATE connections SET key_id = 'deadbeef' WHERE name = 'github'".into(), None).await;
    let again = only_new.rotate_master_key(&[], &key(&new_key)).await.expect("rotate again");
    assert_eq!((again.rotated, again.already_current), (0, 4));
    assert_eq!(again.failed.len(), 1);
    assert_eq!(again.failed[0].0, "github");
}

async fn idempotency_batches(db: Arc<TestDb>) {
    let store = db.open().await;
    let idem = store.idempotency();
    let lease = Duration::from_secs(60);
    // existing records in every state
    assert_eq!(idem.begin("b-started", lease).await.expect("begin"), Begin::New);
    assert_eq!(idem.begin("b-done", lease).await.expect("begin"), Begin::New);
    idem.complete("b-done", &json!({"n": 1})).await.expect("complete");
    assert_eq!(idem.begin("b-failed", lease).await.expect("begin"), Begin::New);
    idem.fail("b-failed", &json!({"error": "x"})).await.expect("fail");

    let keys = ["b-new-1", "b-started", "b-done", "b-new-2", "b-failed", "b-new-1"];
    let answers = idem.begin_many(&keys).await.expect("begin_many");
    assert_eq!(answers.len(), keys.len());
    assert_eq!(answers[0], Begin::New);
    assert!(matches!(answers[1], Begin::InProgress { .. }), "{:?}", answers[1]);
    assert!(
        matches!(&answers[2], Begin::Done(d) if d.state == OutcomeState::Completed && d.outcome == json!({"n": 1}))
    );
    assert_eq!(answers[3], Begin::New);
    assert!(matches!(&answers[4], Begin::Done(d) if d.state == OutcomeState::Failed));
    assert!(
        matches!(answers[5], Begin::InProgress { .. }),
        "a repeated key is claimed once: {:?}",
        answers[5]
    );
    // the claims are real records
    assert!(matches!(idem.begin("b-new-2", lease).await.expect("begin"), Begin::InProgress { .. }));

    // finish many at once; a repeated key keeps its last outcome
    let first = json!({"v": 1});
    let second = json!({"v": 2});
    let failed = json!({"error": "boom"});
    idem.finish_many(&[
        ("b-new-1", OutcomeState::Completed, &first),
        ("b-new-2", OutcomeState::Failed, &failed),
        ("b-new-1", OutcomeState::Completed, &second),
    ])
    .await
    .expect("finish_many");
    let answers = idem.begin_many(&["b-new-1", "b-new-2"]).await.expect("begin_many");
    assert!(matches!(&answers[0], Begin::Done(d) if d.outcome == second), "{:?}", answers[0]);
    assert!(matches!(&answers[1], Begin::Done(d) if d.state == OutcomeState::Failed && d.outcome == failed));
    idem.finish_many::<serde_json::Value>(&[]).await.expect("empty batch");

    // outcomes given as JSON text are stored as that JSON
    assert_eq!(idem.begin_many(&["b-text"]).await.expect("begin_many"), vec![Begin::New]);
    idem.finish_many(&[("b-text", OutcomeState::Completed, r#"{"v":[3,"x"]}"#)]).await.expect("text outcome");
    let answers = idem.begin_many(&["b-text"]).await.expect("begin_many");
    assert!(matches!(&answers[0], Begin::Done(d) if d.outcome == json!({"v": [3, "x"]})), "{:?}", answers[0]);

    // a batch larger than one statement's rows
    let many: Vec<String> = (0..1_200).map(|i| format!("bulk-{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let answers = idem.begin_many(&refs).await.expect("bulk begin");
    assert!(answers.iter().all(|a| *a == Begin::New));
    let outcome = json!({"ok": true});
    let rows: Vec<(&str, OutcomeState, &serde_json::Value)> =
        refs.iter().map(|k| (*k, OutcomeState::Completed, &outcome)).collect();
    idem.finish_many(&rows).await.expect("bulk finish");
    let answers = idem.begin_many(&refs).await.expect("bulk begin again");
    assert!(answers.iter().all(|a| matches!(a, Begin::Done(_))));
}

async fn idempotency_states(db: Arc<TestDb>) {
    let store = db.open().await;
    let idem = store.idempotency();
    let lease = Duration::from_secs(60);
    assert_eq!(idem.begin("task-1:step-1", lease).await.expect("begin"), Begin::New);
    assert!(matches!(idem.begin("task-1:step-1", lease).await.expect("begin"), Begin::InProgress { .. }));
    idem.complete("task-1:step-1", &json!({"result": {"key": "PROJ-1"}})).await.expect("complete");
    match idem.begin("task-1:step-1", lease).await.expect("begin") {
        Begin::Done(done) => {
            assert_eq!(done.state, OutcomeState::Completed);
            assert_eq!(done.outcome, json!({"result": {"key": "PROJ-1"}}));
        }
        other => panic!("expected Done, got {other:?}"),
    }

    // failure is recorded too
    assert_eq!(idem.begin("k2", lease).await.expect("begin"), Begin::New);
    idem.fail("k2", &json!({"error": "not_found"})).await.expect("fail");
    assert!(matches!(idem.begin("k2", lease).await.expect("begin"),
        Begin::Done(d) if d.state == OutcomeState::Failed && d.outcome["error"] == "not_found"));

    // an abandoned claim is taken over after its lease
    assert_eq!(idem.begin("k3", lease).await.expect("begin"), Begin::New);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(idem.begin("k3", Duration::from_millis(10)).await.expect("takeover"), Begin::New);
    // released claims are free at once
    assert!(idem.release("k3").await.expect("release"));
    assert_eq!(idem.begin("k3", lease).await.expect("begin"), Begin::New);

    // only one of many concurrent claimers wins
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let idem = idem.clone();
        tasks.push(tokio::spawn(async move { idem.begin("race", Duration::from_secs(60)).await }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.expect("join").expect("begin") == Begin::New {
            new += 1;
        }
    }
    assert_eq!(new, 1);

    // outcome and outbox message in one transaction
    let msg = NewOutboxMessage {
        exchange: "events.exchange".into(),
        routing_key: "integrations.jira_create_issue_completed".into(),
        payload: b"{}".to_vec(),
    };
    let id =
        idem.finish("race", OutcomeState::Completed, &json!({"ok": true}), Some(&msg)).await.expect("finish");
    let pending = store.outbox().fetch_unpublished(10).await.expect("fetch");
    assert_eq!(pending.iter().map(|m| Some(m.id)).collect::<Vec<_>>(), vec![id]);

    assert_eq!(idem.purge(Duration::from_secs(3600)).await.expect("purge"), 0);
    assert_eq!(idem.purge(Duration::ZERO).await.expect("purge"), 4);
}

async fn outbox_round_trip(db: Arc<TestDb>) {
    let store = db.open().await;
    let outbox = store.outbox();
    let mut ids = Vec::new();
    for i in 0..3 {
        let msg = NewOutboxMessage {
            exchange: "events.exchange".into(),
            routing_key: format!("integrations.t{i}_completed"),
            payload: format!("{{\"n\":{i}}}").into_bytes(),
        };
        ids.push(outbox.insert(&msg).await.expect("insert"));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let pending = outbox.fetch_unpublished(2).await.expect("fetch");
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].routing_key, "integrations.t0_completed");
    assert_eq!(pending[1].payload, b"{\"n\":1}");
    assert!(outbox.mark_published(pending[0].id).await.expect("mark"));
    assert!(!outbox.mark_published(pending[0].id).await.expect("mark twice"));
    let rest: Vec<_> = outbox.fetch_unpublished(10).await.expect("fetch").into_iter().map(|m| m.id).collect();
    assert_eq!(rest, ids[1..].to_vec());
    assert_eq!(outbox.purge_published(Duration::ZERO).await.expect("purge"), 1);
}

async fn audit_counts(db: Arc<TestDb>) {
    let store = db.open().await;
    let record = |success: bool, connection: &str, ago: Duration| AuditRecord {
        tool: "jira_find_project".into(),
        provider: "jira".into(),
        connection: Some(connection.into()),
        source: "bus".into(),
        task_id: Some("t1".into()),
        step_id: Some("s1".into()),
        idempotency_key: None,
        success,
        error_kind: (!success).then(|| "upstream".into()),
        attempts: 1,
        duration: Duration::from_millis(12),
        at: Utc::now() - ago,
    };
    for r in [
        record(true, "jira", Duration::ZERO),
        record(true, "jira", Duration::from_secs(60)),
        record(false, "jira", Duration::from_secs(120)),
        record(false, "jira", Duration::from_secs(20 * 60)), // outside the window
        record(true, "jira-eu", Duration::ZERO),
    ] {
        store.record_execution(&r).await.expect("audit");
    }
    // and through the executor observer hook
    let call = integration_core::ToolCall::new("jira_find_project", json!({})).connection("jira");
    let outcome = integration_core::ToolOutcome {
        tool: "jira_find_project".into(),
        provider: "jira".into(),
        connection: Some("jira".into()),
        result: Err(integration_core::IntegrationError::new(ErrorKind::Timeout, "jira", "slow")),
        attempts: 3,
        duration: Duration::from_secs(1),
        rate_limit_wait: Duration::ZERO,
    };
    integration_core::ExecutionObserver::record(&store, &call, &outcome).await;
    store.flush_audit().await;

    let counts = store.call_counts("jira", Duration::from_secs(15 * 60)).await.expect("counts");
    assert_eq!((counts.calls, counts.failures), (4, 2));
    let status = StoreConnections::new(store.clone(), vec![]).status("jira-eu").await.expect("status");
    assert_eq!((status.last_15_minutes.calls, status.last_15_minutes.failures), (1, 0));
    assert_eq!(store.purge_audit(Duration::from_secs(10 * 60)).await.expect("purge"), 1);
}

/// Batches that fit one prepared statement are written without a transaction; larger ones as
/// several statements in one: every row of each arrives, once.
async fn audit_batches_of_every_size(db: Arc<TestDb>) {
    let store = db.open().await;
    let connection = format!("batch-{:016x}", fastrand::u64(..));
    let record = |success: bool| AuditRecord {
        tool: "slack_send_message".into(),
        provider: "slack".into(),
        connection: Some(connection.clone()),
        source: "rest".into(),
        task_id: None,
        step_id: None,
        idempotency_key: None,
        success,
        error_kind: (!success).then(|| "rate_limited".into()),
        attempts: 1,
        duration: Duration::from_millis(3),
        at: Utc::now(),
    };
    let mut expected = (0_u64, 0_u64);
    // 1 and 64: one statement each; 100 = 64 + 32 + 4 and 3 = 2 + 1: several in one transaction.
    for size in [1_u64, 64, 100, 3] {
        for i in 0..size {
            store.queue_execution(record(i % 5 != 0)).await;
        }
        store.flush_audit().await;
        expected = (expected.0 + size, expected.1 + size.div_ceil(5));
        let counts = store.call_counts(&connection, Duration::from_secs(60)).await.expect("counts");
        assert_eq!((counts.calls, counts.failures), expected, "after a batch of {size}");
    }
    // A single awaited row takes the one-statement path too.
    store.record_execution(&record(false)).await.expect("one row");
    let counts = store.call_counts(&connection, Duration::from_secs(60)).await.expect("counts");
    assert_eq!((counts.calls, counts.failures), (expected.0 + 1, expected.1 + 1));
}

async fn changes_reach_other_replicas(db: Arc<TestDb>) {
    let ttl = Duration::from_millis(300);
    let a = StoreConnections::new(db.open().await, vec![env_jira()]).with_ttl(ttl);
    let b = StoreConnections::new(db.open().await, vec![env_jira()]).with_ttl(ttl);

    a.configure(&jira_info(), "jira", &jira_body("v1")).await.expect("configure");
    let first = b.resolve("jira").await.expect("b sees v1");
    assert_eq!(first.secret("api_token").map(|s| s.expose_secret()), Some("v1"));
    // unchanged revision: the same decrypted connection is reused
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    assert!(Arc::ptr_eq(&first, &b.resolve("jira").await.expect("b")));

    a.configure(&jira_info(), "jira", &jira_body("v2")).await.expect("reconfigure");
    assert_eq!(
        a.resolve("jira").await.expect("a").secret("api_token").map(|s| s.expose_secret()),
        Some("v2")
    );
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let seen = b.resolve("jira").await.expect("b sees v2");
    assert_eq!(seen.secret("api_token").map(|s| s.expose_secret()), Some("v2"));

    // delete then re-create: a new revision, never a reused one
    a.delete("jira").await.expect("delete");
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    assert_eq!(b.resolve("jira").await.expect("env").source, ConnectionSource::Environment);
    let again = a.configure(&jira_info(), "jira", &jira_body("v3")).await.expect("re-create");
    assert!(again.revision > seen.revision);
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let c = b.resolve("jira").await.expect("b sees v3");
    assert_eq!(c.secret("api_token").map(|s| s.expose_secret()), Some("v3"));
}

#[tokio::test]
async fn postgres_without_a_master_key_refuses_to_start() {
    let config = integration_store::StoreConfig {
        database_url: Some(common::PG_URL.into()),
        data_dir: std::env::temp_dir(),
        master_key: None,
        previous_keys: vec![],
    };
    match integration_store::Store::open(config).await {
        Err(StoreError::Config(msg)) => assert!(msg.contains("INTEGRATIONS_MASTER_KEY"), "{msg}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn embedded_default_generates_and_reuses_a_key_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = integration_store::StoreConfig { data_dir: dir.path().join("data"), ..Default::default() };
    let store = integration_store::Store::open(config.clone()).await.expect("open");
    assert_eq!(store.backend(), "sqlite");
    store.configure(&jira_info(), "jira", &jira_body(TOKEN)).await.expect("configure");
    store.close().await;
    assert!(dir.path().join("data/master.key").exists() && dir.path().join("data/integrations.db").exists());
    let reopened = integration_store::Store::open(config).await.expect("reopen");
    let c = reopened.load_connection("jira").await.expect("decrypts").expect("exists");
    assert_eq!(c.secret("api_token").map(|s| s.expose_secret()), Some(TOKEN));
}

#[tokio::test]
async fn unsupported_database_url_is_refused() {
    let config = integration_store::StoreConfig {
        database_url: Some("mysql://x".into()),
        data_dir: std::env::temp_dir(),
        ..Default::default()
    };
    assert!(matches!(integration_store::Store::open(config).await, Err(StoreError::Config(_))));
}

/// Connections, webhook secrets and custom tool credentials together: after the rotation every row
/// of the three tables (read with plain SQL, not through the store's own counts) is on the new key
/// id, every one opens with the new key alone, and none opens with the old key alone.
async fn rotation_leaves_no_sealed_row_on_the_old_key(db: Arc<TestDb>) {
    use std::collections::BTreeMap;
    let old = db.open().await;
    old.configure(&jira_info(), "jira", &jira_body("rot-jira-1")).await.expect("configure");
    old.configure(&github_info(), "github", &json!({"token": "rot-github-2"})).await.expect("configure");
    let secret =
        |field: &str, v: &str| BTreeMap::from([(field.to_owned(), SecretString::from(v.to_owned()))]);
    let hooks = old.webhooks();
    let def = json!({"verification": {"scheme": "github"}});
    hooks.save_endpoint("hook", &def, &secret("secret", "rot-hook-3")).await.expect("endpoint");
    hooks
        .save_custom_tool("tool", &json!({"name": "tool"}), &secret("auth", "rot-tool-4"))
        .await
        .expect("tool");
    let old_id = old.key_id().to_owned();
    assert_eq!(db.stored_key_ids().await, vec![old_id.clone(); 4]);

    let new_key = random_key();
    let rotating = db.open_with(&new_key, &[&db.key]).await.expect("open with both keys");
    let report = rotating.rotate_master_key(&[key(&db.key)], &key(&new_key)).await.expect("rotate");
    assert_eq!((report.rotated, report.already_current, report.failed.len()), (4, 0, 0), "{report:?}");
    let new_id = rotating.key_id().to_owned();
    assert_ne!(new_id, old_id);
    assert_eq!(db.stored_key_ids().await, vec![new_id.clone(); 4], "no row left on the old key {old_id}");
    assert_eq!(report.key_usage, vec![(new_id, 4)]);

    let only_new = db.open_with(&new_key, &[]).await.expect("open with the new key");
    let jira = only_new.load_connection("jira").await.expect("decrypts").expect("exists");
    assert_eq!(jira.secret("api_token").map(|s| s.expose_secret()), Some("rot-jira-1"));
    let github = only_new.load_connection("github").await.expect("decrypts").expect("exists");
    assert_eq!(github.secret("token").map(|s| s.expose_secret()), Some("rot-github-2"));
    let hook = only_new.webhooks().get_endpoint("hook").await.expect("decrypts").expect("exists");
    assert_eq!(hook.secrets["secret"].expose_secret(), "rot-hook-3");
    let tool = only_new.webhooks().get_custom_tool("tool").await.expect("decrypts").expect("exists");
    assert_eq!(tool.secrets["auth"].expose_secret(), "rot-tool-4");

    let only_old = db.open_with(&db.key, &[]).await.expect("open with the old key");
    assert!(matches!(only_old.load_connection("jira").await, Err(StoreError::Credentials { .. })));
    assert!(matches!(only_old.load_connection("github").await, Err(StoreError::Credentials { .. })));
    assert!(matches!(only_old.webhooks().get_endpoint("hook").await, Err(StoreError::Credentials { .. })));
    assert!(matches!(only_old.webhooks().get_custom_tool("tool").await, Err(StoreError::Credentials { .. })));
}

/// Opening the store on PostgreSQL (migrations, then a first query) takes one connection, not one
/// for the migrations and another for the next query (each costs 50-110 ms to a local server here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_on_postgres_takes_one_connection() {
    common::run(common::Kind::Postgres, |db| async move {
        let app = common::unique("store_open");
        let mut config = db.config(Some(&db.key), &[]);
        config.database_url = db.url().map(|url| format!("{url}&application_name={app}"));
        let store = Store::open(config).await.expect("open");
        let admin = sqlx::PgPool::connect(common::PG_URL).await.expect("admin");
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(&app)
                .fetch_one(&admin)
                .await
                .expect("count");
        admin.close().await;
        store.close().await;
        assert_eq!(open, 1, "connections the store opened");
    })
    .await;
}
