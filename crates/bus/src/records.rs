//! [`StoreOutcomes`]: the [`OutcomeStore`] on the idempotency records of `integration-store`
//! (PostgreSQL or SQLite), so outcomes survive worker crashes and are shared by every worker.

use std::time::Duration;

use async_trait::async_trait;
use integration_store::{Idempotency, OutcomeState, Store};

use crate::envelope::{Event, Status};
use crate::error::BusError;
use crate::outcome::{Begin, OutcomeStore};

/// Outcome records in the store's `idempotency_records` table, one per (task_id, step_id).
///
/// **Lease policy: none.** The store can hand a `started` record to a new caller once a lease
/// runs out; the bus never asks for that. A command whose record is still `started` when it is
/// delivered again means a worker died (or lost its broker connection for longer than its grace
/// period) between claiming the command and recording its outcome, so the upstream effect is
/// unknown. That is reported as [`Begin::Started`] however old the record is, and the worker
/// decides: an idempotent tool runs again, any other tool fails with `unknown_outcome`. A lease
/// would turn "unknown" into a silent second call after a timeout, which is exactly the duplicate
/// effect the records exist to prevent.
#[derive(Debug, Clone)]
pub struct StoreOutcomes {
    records: Idempotency,
}

/// Never take over a `started` record (see [`StoreOutcomes`]).
const NO_LEASE: Duration = Duration::MAX;

impl StoreOutcomes {
    /// Outcome records in `store`.
    pub fn new(store: &Store) -> Self {
        Self { records: store.idempotency() }
    }
}

fn store_error(error: integration_store::StoreError) -> BusError {
    BusError::Store(error.to_string())
}

#[async_trait]
impl OutcomeStore for StoreOutcomes {
    async fn begin(&self, key: &str) -> Result<Begin, BusError> {
        match self.records.begin(key, NO_LEASE).await.map_err(store_error)? {
            integration_store::Begin::New => Ok(Begin::New),
            integration_store::Begin::InProgress { .. } => Ok(Begin::Started),
            integration_store::Begin::Done(stored) => {
                let event: Event = serde_json::from_value(stored.outcome).map_err(|e| {
                    BusError::Store(format!("the recorded outcome of '{key}' is not an event: {e}"))
                })?;
                Ok(Begin::Done(Box::new(event)))
            }
        }
    }

    async fn finish(&self, key: &str, event: &Event) -> Result<(), BusError> {
        let state = match event.status {
            Status::Completed => OutcomeState::Completed,
            Status::Failed => OutcomeState::Failed,
        };
        let value = serde_json::to_value(event)?;
        self.records.finish(key, state, &value, None).await.map_err(store_error)?;
        Ok(())
    }
}
