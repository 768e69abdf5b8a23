//! # integration-testkit
//!
//! Fake upstream servers for tests, benchmarks and offline demos, and the harness that serves them.
//! Key design decision: a fake is a plain stateful axum [`axum::Router`]; the [`FakeServer`] harness
//! adds what every fake needs (a loopback port, switchable faults, a record of every request) in one
//! place, underneath the router, so a fake never implements faults itself.

pub mod cache;
pub mod github;
pub mod harness;
pub mod jira;
pub mod proxy;
pub mod slack;

pub use harness::{FakeServer, Fault, Faults, RecordedRequest};
pub use proxy::FaultProxy;

/// The router of the fake named `provider` (`jira`, `github`, `slack`) with its demo seed data,
/// or `None` when that fake is not built yet.
pub fn fake_router(provider: &str) -> Option<axum::Router> {
    match provider {
        "jira" => Some(jira::router(jira::FakeJira::demo())),
        "slack" => Some(slack::demo_router()),
        "github" => Some(github::router(github::FakeGitHub::demo())),
        _ => None,
    }
}

/// An executor over one provider and one connection: how a provider's tests call its tools the
/// way the binaries do (schema validation, the connection, the rate limiter, retries and the error
/// classification), against whatever server the connection points at.
pub fn executor_for(
    provider: std::sync::Arc<dyn integration_core::Integration>,
    connection: integration_core::Connection,
    config: integration_core::ExecutorConfig,
) -> integration_core::Executor {
    let registry = std::sync::Arc::new(integration_core::Registry::new());
    registry.add(provider).expect("one provider registers");
    let connections = std::sync::Arc::new(integration_core::InMemoryConnections::new());
    connections.insert(connection);
    integration_core::Executor::new(registry, connections, config)
}
