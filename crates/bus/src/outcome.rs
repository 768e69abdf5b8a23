//! Where the worker records the outcome of each command before acknowledging it, so that a
//! redelivered command never calls the upstream twice.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::envelope::Event;
use crate::error::BusError;

/// What the store knew of a command when the worker started handling it.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// First delivery: the record now says `started`.
    New,
    /// A previous delivery started it and never recorded an outcome (the worker died between
    /// calling the upstream and recording): the upstream effect is unknown.
    Started,
    /// A previous delivery finished it: re-publish this event.
    Done(Box<Event>),
}

/// Durable records of command outcomes by idempotency key.
#[async_trait]
pub trait OutcomeStore: Send + Sync + 'static {
    /// Mark `key` started unless a record exists; say what was there.
    async fn begin(&self, key: &str) -> Result<Begin, BusError>;
    /// Record the final event of `key`.
    async fn finish(&self, key: &str, event: &Event) -> Result<(), BusError>;
    /// Record the final event of `key`, given also as the JSON text the worker publishes, so a
    /// store that keeps JSON text need not serialize the event a second time.
    async fn finish_with_json(&self, key: &str, event: &Event, json: &str) -> Result<(), BusError> {
        let _ = json;
        self.finish(key, event).await
    }
}

/// An in-process outcome store: for tests and single-process embedding only (it forgets on
/// restart, so it cannot protect against duplicate effects across crashes).
#[derive(Debug, Default)]
pub struct MemoryOutcomes {
    records: Mutex<HashMap<String, Option<Event>>>,
}

#[async_trait]
impl OutcomeStore for MemoryOutcomes {
    async fn begin(&self, key: &str) -> Result<Begin, BusError> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match records.get(key) {
            None => {
                records.insert(key.to_owned(), None);
                Begin::New
            }
            Some(None) => Begin::Started,
            Some(Some(event)) => Begin::Done(Box::new(event.clone())),
        })
    }

    async fn finish(&self, key: &str, event: &Event) -> Result<(), BusError> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), Some(event.clone()));
        Ok(())
    }
}
