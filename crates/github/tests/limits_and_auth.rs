//! Rate limits (waiting for the reset, failing with retry_after beyond the deadline, secondary
//! limits), the budget in the connection check, and the GitHub App installation-token flow.

mod common;

use std::time::{Duration, Instant};

use common::{app_connection, config, setup, setup_with};
use integration_core::{ErrorKind, Integration};
use integration_testkit::Fault;
use integration_testkit::github::FakeGitHub;
use serde_json::json;

fn hello() -> serde_json::Value {
    json!({"owner": "octocat", "repo": "hello-world"})
}

#[tokio::test]
async fn spent_budget_with_a_near_reset_waits_and_succeeds() {
    let env = setup().await;
    env.gh.exhaust_rate_limit("core", 2);
    let started = Instant::now();
    let outcome = env.outcome("github_get_repository", hello(), None).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for the reset: {:?}", started.elapsed());
    assert!(outcome.attempts >= 2);
    assert_eq!(env.gh.rate_remaining("core"), Some(4998), "the window was renewed, then two calls were made");
}

#[tokio::test]
async fn spent_budget_beyond_the_deadline_fails_with_retry_after() {
    let env = setup_with(config(Duration::from_secs(3))).await;
    env.ok("github_get_repository", hello()).await;
    env.gh.exhaust_rate_limit("core", 3600);
    let started = Instant::now();
    let outcome = env.outcome("github_get_repository", hello(), None).await;
    let err = outcome.result.expect_err("rate limited");
    let retry_after = match err.kind() {
        ErrorKind::RateLimited { retry_after } => retry_after.expect("retry_after"),
        other => panic!("expected RateLimited, got {other:?}"),
    };
    assert!(
        retry_after > Duration::from_secs(3500) && retry_after <= Duration::from_secs(3602),
        "{retry_after:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "no sleeping past the deadline");
    assert_eq!(outcome.attempts, 1);

    // The budget is remembered: the next call fails at once without spending a request.
    let before = env.server.calls();
    let err = env.call("github_list_commits", hello()).await.expect_err("still limited");
    assert!(matches!(err.kind(), ErrorKind::RateLimited { retry_after: Some(_) }));
    assert_eq!(env.server.calls(), before, "no request while the budget is spent");

    let health = env.provider.check(&env.connections_get("github").await).await;
    // /rate_limit is free and answers even with a spent core budget.
    let health = health.expect("check works");
    assert_eq!(health.details["rate_limit"]["remaining"], 0);
}

#[tokio::test]
async fn secondary_limits_and_429_honour_retry_after() {
    let env = setup().await;
    env.server.faults().push(
        Fault::status(403)
            .header("retry-after", "1")
            .body(r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#)
            .on_path("/repos/octocat/hello-world"),
    );
    let started = Instant::now();
    let outcome = env.outcome("github_get_repository", hello(), None).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(outcome.attempts, 2);

    // Secondary limit without headers: GitHub advises a minute, beyond this call's deadline.
    let short = setup_with(config(Duration::from_secs(2))).await;
    short.server.faults().push(
        Fault::status(403)
            .body(r#"{"message":"You have exceeded a secondary rate limit."}"#)
            .on_path("/repos/octocat/hello-world"),
    );
    let err = short.call("github_get_repository", hello()).await.expect_err("limited");
    assert_eq!(err.kind(), &ErrorKind::RateLimited { retry_after: Some(Duration::from_secs(60)) });

    // A plain 403 is a permission error, not retried.
    short.server.faults().push(
        Fault::status(403).body(r#"{"message":"Resource not accessible by integration"}"#).on_path("/repos/"),
    );
    let outcome = short.outcome("github_get_repository", hello(), None).await;
    assert_eq!(outcome.result.expect_err("403").kind(), &ErrorKind::Permission);
    assert_eq!(outcome.attempts, 1);
}

#[tokio::test]
async fn check_reports_identity_and_budget() {
    let env = setup().await;
    env.ok("github_get_repository", hello()).await;
    let conn = env.connections_get("github").await;
    let health = env.provider.check(&conn).await.expect("healthy");
    assert_eq!(health.identity.as_deref(), Some("octocat"));
    let rl = &health.details["rate_limit"];
    assert_eq!(rl["limit"], 5000);
    assert!(rl["remaining"].as_u64().expect("remaining") < 5000);
    assert!(rl["reset"].as_u64().expect("reset") > 1_700_000_000);
    assert_eq!(health.details["last_seen"]["core"]["limit"], 5000);
    let seen = env.provider.rate_limits("github").expect("client built");
    assert_eq!(seen["core"].limit, 5000);
}

#[tokio::test]
async fn github_app_installation_tokens_are_minted_cached_and_renewed() {
    let env = setup().await;
    env.connections.insert(app_connection(
        "gh-app",
        env.server.base_url(),
        FakeGitHub::APP_ID,
        FakeGitHub::INSTALLATION_ID,
    ));
    for _ in 0..3 {
        let outcome = env.outcome("github_get_repository", hello(), Some("gh-app")).await;
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }
    assert_eq!(env.gh.installation_tokens_issued(), 1, "one token, cached across calls");
    assert_eq!(env.server.calls_to("/app/installations/77/access_tokens"), 1);
    let created = env
        .outcome(
            "github_create_issue",
            json!({"owner": "octocat", "repo": "hello-world", "title": "From the app"}),
            Some("gh-app"),
        )
        .await
        .result
        .expect("created");
    assert_eq!(created["user"], "octocat-app[bot]");
    let health = env.provider.check(&env.connections_get("gh-app").await).await.expect("healthy");
    assert_eq!(health.identity.as_deref(), Some("GitHub App 4242 (installation 77)"));
    assert_eq!(health.details["auth"], "github_app");

    // Concurrent first calls on a new connection share one token (each call also makes its two
    // requests at once): octocrab alone minted one per request that found none.
    env.connections.insert(app_connection("gh-app-burst", env.server.base_url(), FakeGitHub::APP_ID, 77));
    let call = || env.outcome("github_get_repository", hello(), Some("gh-app-burst"));
    let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
    for outcome in [a, b, c, d] {
        assert_eq!(outcome.result.expect("ok")["languages"][0]["language"], "Rust");
    }
    assert_eq!(env.gh.installation_tokens_issued(), 2, "one more token for the new connection");

    // Tokens about to expire are renewed before use (octocrab keeps a 30 s margin).
    env.gh.set_installation_token_lifetime(20);
    env.connections.insert(app_connection("gh-app-short", env.server.base_url(), FakeGitHub::APP_ID, 77));
    for _ in 0..2 {
        let outcome = env.outcome("github_get_repository", hello(), Some("gh-app-short")).await;
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }
    // A 20 s token is never 30 s from expiry: the first use minted one, then each of the 2 x 2
    // requests minted a fresh one before it was sent.
    assert_eq!(env.gh.installation_tokens_issued(), 7);

    // An app the installation does not belong to is refused.
    env.connections.insert(app_connection("gh-app-wrong", env.server.base_url(), 1, 77));
    let err =
        env.outcome("github_get_repository", hello(), Some("gh-app-wrong")).await.result.expect_err("401");
    assert_eq!(err.kind(), &ErrorKind::Authentication);

    // A key that is not a PEM is a configuration error.
    let bad = integration_core::Connection::new(
        "github",
        "gh-app-bad",
        json!({"api_url": env.server.base_url(), "app_id": 4242, "installation_id": 77}),
    )
    .with_secret("private_key", "not a key");
    env.connections.insert(bad);
    let err =
        env.outcome("github_get_repository", hello(), Some("gh-app-bad")).await.result.expect_err("config");
    assert_eq!(err.kind(), &ErrorKind::Configuration);
}

trait ConnectionsGet {
    async fn connections_get(&self, name: &str) -> integration_core::Connection;
}

impl ConnectionsGet for common::Env {
    async fn connections_get(&self, name: &str) -> integration_core::Connection {
        use integration_core::ConnectionResolver;
        self.connections.resolve(name).await.expect("connection").as_ref().clone()
    }
}
