//! [`StoreOutcomes`]: the [`OutcomeStore`] on the idempotency records of `integration-store`
//! (PostgreSQL or SQLite), so outcomes survive worker crashes and are shared by every worker.
//!
//! Every command costs two record writes (`begin`, `finish`) before its ack. Written one by one,
//! those round trips and commits bound the worker's throughput, so the records are written with
//! **group commit**: concurrent `begin`s and `finish`es queue up while the previous batch is in
//! the database and go out together as one multi-row statement each (one commit per batch). No
//! request waits for a timer: a lone request is written at once, and batches grow only when
//! requests arrive faster than the database answers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use integration_store::{Idempotency, OutcomeState, Store};
use tokio::sync::{Semaphore, mpsc, oneshot};

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
    requests: mpsc::Sender<Request>,
}

/// Requests taken into one batch at most.
const MAX_BATCH: usize = 256;
/// Batches in the database at once: a few being written while the next one fills keeps the
/// database busy without letting batches shrink to single rows.
const FLUSHES_IN_FLIGHT: usize = 4;

enum Request {
    Begin {
        key: String,
        reply: oneshot::Sender<Result<Begin, BusError>>,
    },
    /// `json`: the event as JSON text.
    Finish {
        key: String,
        state: OutcomeState,
        json: String,
        reply: oneshot::Sender<Result<(), BusError>>,
    },
}

impl StoreOutcomes {
    /// Outcome records in `store`. Starts the batching task on the current Tokio runtime; it
    /// ends when the last clone of this value is dropped.
    pub fn new(store: &Store) -> Self {
        let (requests, queue) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(batch_loop(store.idempotency(), queue));
        Self { requests }
    }
}

async fn batch_loop(records: Idempotency, mut queue: mpsc::Receiver<Request>) {
    let flushes = Arc::new(Semaphore::new(FLUSHES_IN_FLIGHT));
    loop {
        // Take a flush slot first, so requests accumulate while every slot is busy.
        let Ok(slot) = flushes.clone().acquire_owned().await else { return };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let records = records.clone();
        tokio::spawn(async move {
            flush(&records, batch).await;
            drop(slot);
        });
    }
}

async fn flush(records: &Idempotency, batch: Vec<Request>) {
    metrics::histogram!("bus_record_batch_size").record(batch.len() as f64);
    let mut begins = Vec::new();
    let mut finishes = Vec::new();
    for request in batch {
        match request {
            Request::Begin { key, reply } => begins.push((key, reply)),
            Request::Finish { key, state, json, reply } => finishes.push((key, state, json, reply)),
        }
    }
    let begin_all = async {
        if begins.is_empty() {
            return;
        }
        let keys: Vec<&str> = begins.iter().map(|(key, _)| key.as_str()).collect();
        match records.begin_many(&keys).await {
            Ok(answers) => {
                for ((key, reply), answer) in begins.into_iter().zip(answers) {
                    let _ = reply.send(begin_answer(&key, answer));
                }
            }
            Err(error) => {
                let error = error.to_string();
                for (_, reply) in begins {
                    let _ = reply.send(Err(BusError::Store(error.clone())));
                }
            }
        }
    };
    let finish_all = async {
        if finishes.is_empty() {
            return;
        }
        let rows: Vec<(&str, OutcomeState, &str)> =
            finishes.iter().map(|(key, state, json, _)| (key.as_str(), *state, json.as_str())).collect();
        let result = records.finish_many(&rows).await.map_err(|e| e.to_string());
        for (_, _, _, reply) in finishes {
            let _ = reply.send(result.clone().map_err(BusError::Store));
        }
    };
    tokio::join!(begin_all, finish_all);
}

fn begin_answer(key: &str, answer: integration_store::Begin) -> Result<Begin, BusError> {
    match answer {
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

fn closed() -> BusError {
    BusError::Store("the outcome records' batching task has stopped".into())
}

/// How long a request may wait for its batch before the worker gives up on the command (it is
/// then returned to the queue and redelivered).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn answer<T>(reply: oneshot::Receiver<Result<T, BusError>>) -> Result<T, BusError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, reply).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(closed()),
        Err(_) => Err(BusError::Store("the outcome record was not written within 30 s".into())),
    }
}

#[async_trait]
impl OutcomeStore for StoreOutcomes {
    async fn begin(&self, key: &str) -> Result<Begin, BusError> {
        let (reply, answered) = oneshot::channel();
        self.requests.send(Request::Begin { key: key.to_owned(), reply }).await.map_err(|_| closed())?;
        answer(answered).await
    }

    async fn finish(&self, key: &str, event: &Event) -> Result<(), BusError> {
        self.finish_with_json(key, event, &serde_json::to_string(event)?).await
    }

    async fn finish_with_json(&self, key: &str, event: &Event, json: &str) -> Result<(), BusError> {
        let state = match event.status {
            Status::Completed => OutcomeState::Completed,
            Status::Failed => OutcomeState::Failed,
        };
        let (reply, answered) = oneshot::channel();
        self.requests
            .send(Request::Finish { key: key.to_owned(), state, json: json.to_owned(), reply })
            .await
            .map_err(|_| closed())?;
        answer(answered).await
    }
}
