//! # integration-webhook
//!
//! The Webhook Handler module of the Integrations Service, as a provider crate that knows no web
//! framework, database or broker:
//!
//! * **Inbound webhooks**: a [`WebhookDefinition`] (verification scheme, jq transformation, size and
//!   content-type limits, publishing) is compiled once into an [`Endpoint`]; the
//!   [`WebhookService`] runs each delivery through verify → parse → transform → record → publish
//!   over two traits the binary implements: [`WebhookRepository`] (definitions with sealed secrets,
//!   delivery logs) and [`EventSink`] (the bus outbox).
//! * **Custom outbound HTTP tools**: a [`CustomToolDefinition`] becomes an `Arc<dyn Tool>` that joins
//!   the registry at run time, reachable from REST, the bus and MCP like any built-in tool.
//!
//! Key design decisions: every signature check is constant-time over the raw body bytes; secrets
//! are a write-only [`Secret`] type with no `Serialize`, so no definition can be written out with
//! them; custom tools connect only to addresses the [`SsrfGuard`] checked, because the guard *is*
//! the HTTP client's DNS resolver (and IP-literal URLs and every redirect target are checked before
//! each request), which leaves no DNS-rebinding window.

pub mod custom;
pub mod definition;
mod secret;
pub mod service;
pub mod transform;
pub mod verify;

use std::sync::Arc;

pub use custom::sync::{CustomToolSource, CustomToolSync, LoadError, SavedTool, StoredRevision, SyncReport};
pub use custom::{
    Allowlist, Auth, CustomIntegration, CustomToolDefinition, CustomTools, HttpMethod, RenderedRequest,
    Resolver, SsrfError, SsrfGuard, SystemResolver,
};
pub use definition::{
    BodyError, DefinitionError, Endpoint, WebhookDefinition, redact_headers, validate_name,
};
pub use secret::Secret;
pub use service::{
    DeliveryPage, DeliveryQuery, DeliveryRecord, DeliveryStatus, EventSink, InsertOutcome, NewDelivery,
    PublishStatus, Receipt, RepositoryError, StoredEndpoint, WebhookError, WebhookRepository, WebhookService,
};
pub use transform::{Limits, Transform, TransformError};
pub use verify::{HmacAlgorithm, SignatureEncoding, Verification, VerifyError};

/// The `custom` integration that owns custom HTTP tools (register it once; tools are added with
/// `Registry::add_tool` as they are defined).
pub fn provider() -> Arc<dyn integration_core::Integration> {
    Arc::new(CustomIntegration)
}
