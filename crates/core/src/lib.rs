//! # integration-core
//!
//! The tiny core of the Integrations Service: the [`Integration`] and [`Tool`] traits, the tool
//! [`Registry`] with JSON-Schema parameters, the [`Executor`] pipeline (validate, rate-limit, retry
//! with backoff, time out, record) and the error classification ([`IntegrationError`],
//! [`ErrorKind`], [`classify_status`]).
//!
//! Key design decision: a tool is written once, as a typed async function ([`typed_tool`]), and
//! every front door (REST, the message bus, MCP) reaches it through the same [`Executor`]. Providers
//! never retry, rate-limit or time out on their own; the executor does it the same way for all.
//! This crate does no I/O besides what the pipeline needs (timers), and knows no provider.

pub mod breaker;
pub mod cache;
pub mod client_cache;
pub mod connection;
pub mod deadline;
pub mod error;
pub mod executor;
pub mod integration;
pub mod json;
pub mod metric_handles;
pub mod observe;
pub mod propagation;
pub mod ratelimit;
pub mod redact;
pub mod registry;
pub mod search;
pub mod shape;
pub mod tool;
pub mod toolset;

pub use breaker::{Admission, BreakerConfig, Breakers};
pub use cache::{Cache, InMemoryCache};
pub use client_cache::ClientCache;
pub use connection::{
    Connection, ConnectionResolver, ConnectionSettings, ConnectionSource, InMemoryConnections,
    check_header_secret, parse_base_url,
};
pub use error::{
    Effect, ErrorKind, IntegrationError, MAX_UPSTREAM_WAIT, classify_status, io_error_kind, wait_until_epoch,
};
pub use executor::{ExecutionObserver, Executor, ExecutorConfig, Source, ToolCall, ToolOutcome};
pub use integration::{Health, Integration, IntegrationInfo};
pub use metric_handles::HandleCache;
pub use observe::{observe_pacing_refusal, observe_pacing_wait, observe_upstream, observe_upstream_budget};
pub use ratelimit::{Decision, InMemoryRateLimiter, Quota, RateLimiter};
pub use redact::REDACTED;
pub use registry::{RegisteredTool, Registry, RegistryError, ToolFilter};
pub use search::{SearchHit, search};
pub use shape::{OutputOptions, json_at, json_object, shape, shape_json};
pub use tool::{Method, Route, Tool, ToolContext, ToolHints, ToolSpec, TypedTool, schema_of, typed_tool};
pub use toolset::{ToolSelection, ToolsetError};

/// Re-exports for provider crates, so they use the same versions as the core.
pub mod reexports {
    pub use async_trait::async_trait;
    pub use http;
    pub use schemars;
    pub use secrecy;
    pub use serde_json;
}
