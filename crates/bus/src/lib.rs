//! # integration-bus
//!
//! The RabbitMQ front door (lapin): tool commands arrive on `commands.exchange`, each runs through
//! the same [`Executor`](integration_core::Executor) as REST and MCP, and one result event per
//! command goes to `events.exchange`.
//!
//! Key design decision: at-least-once delivery in, exactly one upstream effect per command. The
//! outcome of each (task_id, step_id) is recorded in an [`OutcomeStore`] before the command is
//! acknowledged, and the event is acknowledged by the broker (publisher confirms) before that;
//! a redelivery re-publishes the recorded outcome instead of calling the upstream again. Every
//! event carries a stable `event_id`, so a consumer can drop the rare duplicate publication.
//!
//! [`StoreOutcomes`] keeps those records in `integration-store` (PostgreSQL or SQLite), shared by
//! every worker; [`OutboxRelay`] publishes the events other front doors wrote into the store's
//! outbox. The crate names no provider: the binaries register them.

mod acks;
mod client;
mod connect;
pub mod envelope;
mod error;
pub mod outcome;
mod publisher;
mod records;
mod relay;
mod topology;
mod worker;

pub use client::call;
pub use connect::{CONNECT_TIMEOUT, HEARTBEAT_SECONDS, check_url, connect};
pub use envelope::{Command, Event, Status, event_id, idempotency_key, parse_command};
pub use error::BusError;
pub use outcome::{Begin, MemoryOutcomes, OutcomeStore};
pub use publisher::Publisher;
pub use records::StoreOutcomes;
pub use relay::{OutboxRelay, RelayConfig, RelayStatus, RelayWaker};
pub use topology::Topology;
pub use worker::{Worker, WorkerConfig, WorkerStatus};
