//! The delivery pipeline as a framework-agnostic service: define endpoints, receive deliveries
//! (verify, parse, transform, record, publish), test, replay and read logs. Storage and publishing
//! are traits ([`WebhookRepository`], [`EventSink`]) implemented by the binary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use http::HeaderMap;
use integration_core::HandleCache;
use metrics::Counter;
use serde::Serialize;
use serde_json::{Value, json};

use crate::definition::{
    BodyError, DefinitionError, Endpoint, WebhookDefinition, media_type, redact_headers,
};
use crate::transform::TransformError;
use crate::verify::VerifyError;

/// Bytes of the body kept in the log preview.
pub const BODY_PREVIEW_BYTES: usize = 4096;

/// A storage failure, with a message free of secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RepositoryError(pub String);

/// An endpoint as stored: the definition with its secrets, and a revision that changes on every
/// save (compiled endpoints are cached by it).
#[derive(Debug, Clone)]
pub struct StoredEndpoint {
    /// The definition, secrets included.
    pub definition: WebhookDefinition,
    /// Changes on every save.
    pub revision: i64,
}

/// What happened to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Verified, parsed and transformed.
    Processed,
    /// Verified, but the body did not parse or the transformation failed (kept for replay).
    Failed,
    /// Verification failed.
    Rejected,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Processed => "processed",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Rejected => "rejected",
        }
    }
}

/// Whether the result was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishStatus {
    /// Not published (publishing off, or the delivery failed).
    Skipped,
    /// Handed to the sink (queued in the outbox).
    Queued,
    /// The sink refused it; replay to try again.
    Failed,
}

impl PublishStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PublishStatus::Skipped => "skipped",
            PublishStatus::Queued => "queued",
            PublishStatus::Failed => "failed",
        }
    }
}

/// A delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The endpoint name.
    pub endpoint: String,
    /// Epoch milliseconds.
    pub received_at_ms: i64,
    /// `passed`, `skipped` (scheme none, or replay) or `failed: <reason>`.
    pub verification: String,
    /// Headers with secret values redacted.
    pub headers: Value,
    /// The raw body (kept for replay).
    pub body: Vec<u8>,
    /// The first [`BODY_PREVIEW_BYTES`] bytes of the body, lossy UTF-8.
    pub body_preview: String,
    /// The media type.
    pub content_type: Option<String>,
    /// The transformed output.
    pub output: Option<Value>,
    /// The error, when failed or rejected.
    pub error: Option<String>,
    /// The status.
    pub status: DeliveryStatus,
    /// The publish status (updated after publishing).
    pub publish_status: PublishStatus,
    /// The de-duplication key (unique per endpoint).
    pub dedup_key: Option<String>,
    /// The delivery this one replays.
    pub replay_of: Option<i64>,
}

/// A recorded delivery.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Its id.
    pub id: i64,
    /// The endpoint.
    pub endpoint: String,
    /// Epoch milliseconds.
    pub received_at_ms: i64,
    /// Verification result.
    pub verification: String,
    /// Headers, secrets redacted.
    pub headers: Value,
    /// The start of the body.
    pub body_preview: String,
    /// The body size in bytes.
    pub body_bytes: usize,
    /// Whether the preview is shorter than the body.
    pub body_truncated: bool,
    /// The media type.
    pub content_type: Option<String>,
    /// The transformed output.
    pub output: Option<Value>,
    /// The error.
    pub error: Option<String>,
    /// `processed`, `failed` or `rejected`.
    pub status: String,
    /// `skipped`, `queued` or `failed`.
    pub publish_status: String,
    /// The de-duplication key.
    pub dedup_key: Option<String>,
    /// The replayed delivery.
    pub replay_of: Option<i64>,
    /// The raw body; loaded for replay only, never serialised.
    #[serde(skip)]
    pub body: Option<Vec<u8>>,
}

/// The answer of [`WebhookRepository::insert_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Recorded with this id.
    Inserted(i64),
    /// A delivery with the same de-duplication key exists: its id, status and publish status.
    Duplicate {
        /// The original delivery.
        id: i64,
        /// Its status.
        status: String,
        /// Its publish status.
        publish_status: String,
    },
}

/// A page query over deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Page size (1-200).
    pub limit: u32,
    /// Only deliveries with an id below this (the previous page's `next_cursor`).
    pub before_id: Option<i64>,
    /// Only this status.
    pub status: Option<String>,
    /// Received at or after (epoch ms).
    pub since_ms: Option<i64>,
    /// Received before (epoch ms).
    pub until_ms: Option<i64>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryPage {
    /// The deliveries.
    pub deliveries: Vec<DeliveryRecord>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Storage of endpoints and deliveries.
#[async_trait]
pub trait WebhookRepository: Send + Sync + 'static {
    /// An endpoint with its secrets.
    async fn endpoint(&self, name: &str) -> Result<Option<StoredEndpoint>, RepositoryError>;
    /// Save an endpoint (secrets sealed); true if it was created.
    async fn save_endpoint(
        &self,
        name: &str,
        definition: &WebhookDefinition,
    ) -> Result<bool, RepositoryError>;
    /// Delete an endpoint and its deliveries; true if it existed.
    async fn delete_endpoint(&self, name: &str) -> Result<bool, RepositoryError>;
    /// Record a delivery; a duplicate de-duplication key yields the original.
    async fn insert_delivery(&self, delivery: &NewDelivery) -> Result<InsertOutcome, RepositoryError>;
    /// Record a processed delivery and queue its event in one step, so that the event is queued
    /// if and only if the delivery is recorded (a duplicate queues nothing). `event` makes the
    /// event from the new delivery's id; it goes where the [`EventSink`] would send it (routing
    /// key `integrations.webhook.{endpoint}`). `None`: this repository cannot queue events, and
    /// the service records the delivery, then publishes through its sink (a crash between the two
    /// loses the event).
    async fn insert_delivery_with_event(
        &self,
        delivery: &NewDelivery,
        event: &(dyn Fn(i64) -> Value + Send + Sync),
    ) -> Option<Result<InsertOutcome, RepositoryError>> {
        let _ = (delivery, event);
        None
    }

    /// Update the publish status of a delivery.
    async fn set_publish_status(&self, id: i64, status: PublishStatus) -> Result<(), RepositoryError>;
    /// One delivery of an endpoint, with its raw body.
    async fn delivery(&self, endpoint: &str, id: i64) -> Result<Option<DeliveryRecord>, RepositoryError>;
    /// Deliveries of an endpoint, newest first.
    async fn deliveries(
        &self,
        endpoint: &str,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage, RepositoryError>;
}

/// Where transformed deliveries go (the outbox of the bus in the service).
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Publish `event` for endpoint `endpoint` (routing key `integrations.webhook.{endpoint}`).
    async fn publish(&self, endpoint: &str, event: &Value) -> Result<(), RepositoryError>;
}

/// Why a request to the service failed. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No endpoint of that name (404).
    #[error("webhook endpoint '{0}' is not defined")]
    UnknownEndpoint(String),
    /// No such delivery (404).
    #[error("delivery {0} not found")]
    UnknownDelivery(i64),
    /// The definition is invalid (422).
    #[error("invalid webhook definition: {0}")]
    InvalidDefinition(#[from] DefinitionError),
    /// Verification failed (401).
    #[error("verification failed: {error}")]
    Unauthorized {
        /// Why.
        error: VerifyError,
        /// The recorded delivery.
        delivery_id: Option<i64>,
    },
    /// The body is too large (413).
    #[error("{0}")]
    TooLarge(BodyError),
    /// The content type is not accepted (415).
    #[error("{0}")]
    UnsupportedType(BodyError),
    /// The body does not parse or the transformation failed (422); the delivery is recorded.
    #[error("{message}")]
    Unprocessable {
        /// Why.
        message: String,
        /// The recorded delivery (none for `test`).
        delivery_id: Option<i64>,
    },
    /// The request cannot be served in the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The delivery cannot be processed now: every transformation thread is busy (503). Nothing is
    /// recorded, so the sender's retry is processed as a new delivery.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed (500).
    #[error("storage error: {0}")]
    Repository(#[from] RepositoryError),
}

impl WebhookError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::UnknownEndpoint(_) | WebhookError::UnknownDelivery(_) => 404,
            WebhookError::InvalidDefinition(_) | WebhookError::Unprocessable { .. } => 422,
            WebhookError::Unauthorized { .. } => 401,
            WebhookError::TooLarge(_) => 413,
            WebhookError::UnsupportedType(_) => 415,
            WebhookError::Conflict(_) => 409,
            WebhookError::Unavailable(_) => 503,
            WebhookError::Repository(_) => 500,
        }
    }

    /// The error type of the error body.
    pub fn kind(&self) -> &'static str {
        match self {
            WebhookError::UnknownEndpoint(_) | WebhookError::UnknownDelivery(_) => "not_found",
            WebhookError::InvalidDefinition(_) => "invalid_input",
            WebhookError::Unauthorized { .. } => "authentication",
            WebhookError::TooLarge(_) => "payload_too_large",
            WebhookError::UnsupportedType(_) => "unsupported_media_type",
            WebhookError::Unprocessable { .. } => "unprocessable",
            WebhookError::Conflict(_) => "conflict",
            WebhookError::Unavailable(_) => "unavailable",
            WebhookError::Repository(_) => "internal",
        }
    }

    /// Details for the error body (the delivery id, the definition pointer).
    pub fn details(&self) -> Option<Value> {
        match self {
            WebhookError::InvalidDefinition(e) => Some(json!({ "pointer": e.pointer })),
            WebhookError::Unauthorized { delivery_id: Some(id), .. }
            | WebhookError::Unprocessable { delivery_id: Some(id), .. } => {
                Some(json!({ "delivery_id": id.to_string() }))
            }
            _ => None,
        }
    }
}

/// Deliveries received, by endpoint and outcome.
static DELIVERIES: HandleCache<Counter> =
    HandleCache::counter("integration_webhook_deliveries_total", &["webhook", "outcome"]);

fn count_delivery(name: &str, result: &Result<Receipt, WebhookError>) {
    match result {
        Ok(receipt) => count_outcome(name, if receipt.duplicate { "duplicate" } else { "processed" }, false),
        Err(e) => WebhookService::count_refused(name, e),
    }
}

/// `unknown`: the name in the URL is no endpoint's. It is the caller's text then, counted under one
/// label for all such names, so that callers cannot add series to `/metrics` at will.
fn count_outcome(name: &str, outcome: &'static str, unknown: bool) {
    DELIVERIES.get(&[if unknown { "(unknown)" } else { name }, outcome]).increment(1);
}

/// The `outcome` label of a delivery that was not processed: `failed` (recorded; its body or
/// transformation failed), `rejected` (recorded; its verification failed), or the error type of a
/// delivery refused unrecorded (`not_found`, `payload_too_large`, `unsupported_media_type`,
/// `unavailable`, `internal`). A processed delivery is `processed`, or `duplicate` when it was seen
/// before and not processed again.
fn error_outcome(error: &WebhookError) -> &'static str {
    match error {
        WebhookError::Unprocessable { .. } => "failed",
        WebhookError::Unauthorized { .. } => "rejected",
        e => e.kind(),
    }
}

/// The answer to an accepted delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// The delivery id (the original one for a duplicate).
    pub delivery_id: String,
    /// True when this delivery was seen before and not processed again.
    pub duplicate: bool,
    /// The delivery status (the original's for a duplicate).
    pub status: String,
    /// The publish status (the original's for a duplicate).
    pub publish_status: String,
}

fn now_ms(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

fn preview(body: &[u8]) -> String {
    let end = body.len().min(BODY_PREVIEW_BYTES);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// The webhook service. Cheap to share (`Arc`).
pub struct WebhookService {
    repo: Arc<dyn WebhookRepository>,
    sink: Arc<dyn EventSink>,
    compiled: Mutex<HashMap<String, (i64, Arc<Endpoint>)>>,
    clock: fn() -> SystemTime,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService").finish_non_exhaustive()
    }
}

impl WebhookService {
    /// A service over a repository and a sink.
    pub fn new(repo: Arc<dyn WebhookRepository>, sink: Arc<dyn EventSink>) -> Self {
        Self { repo, sink, compiled: Mutex::new(HashMap::new()), clock: SystemTime::now }
    }

    /// Use another clock (tests of timestamp windows).
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// The compiled endpoint `name` (cached by revision).
    pub async fn endpoint(&self, name: &str) -> Result<Arc<Endpoint>, WebhookError> {
        let stored =
            self.repo.endpoint(name).await?.ok_or_else(|| WebhookError::UnknownEndpoint(name.to_owned()))?;
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((revision, endpoint)) = cache.get(name)
            && *revision == stored.revision
        {
            return Ok(endpoint.clone());
        }
        let endpoint = Arc::new(stored.definition.compile(name)?);
        cache.insert(name.to_owned(), (stored.revision, endpoint.clone()));
        Ok(endpoint)
    }

    /// Define (create or replace) endpoint `name` from a definition body. A body without a secret
    /// keeps the stored one of the same scheme. Returns whether it was created, and the definition
    /// without secrets.
    pub async fn define(&self, name: &str, body: &Value) -> Result<(bool, Value), WebhookError> {
        let mut definition = WebhookDefinition::parse(body)?;
        if let Some(previous) = self.repo.endpoint(name).await? {
            definition = definition.inherit_secret(&previous.definition);
        }
        definition.compile(name)?;
        let created = self.repo.save_endpoint(name, &definition).await?;
        self.compiled.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        tracing::info!(
            webhook = name,
            scheme = definition.verification.scheme(),
            created,
            "webhook endpoint defined"
        );
        Ok((created, definition.public_view()))
    }

    /// The definition of `name`, without secrets.
    pub async fn definition(&self, name: &str) -> Result<Value, WebhookError> {
        let stored =
            self.repo.endpoint(name).await?.ok_or_else(|| WebhookError::UnknownEndpoint(name.to_owned()))?;
        Ok(stored.definition.public_view())
    }

    /// Delete `name` and its deliveries.
    pub async fn delete(&self, name: &str) -> Result<(), WebhookError> {
        self.compiled.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        if self.repo.delete_endpoint(name).await? {
            tracing::info!(webhook = name, "webhook endpoint deleted");
            Ok(())
        } else {
            Err(WebhookError::UnknownEndpoint(name.to_owned()))
        }
    }

    /// Receive a delivery: verify, parse, transform, record, publish. Each delivery is counted in
    /// `integration_webhook_deliveries_total{webhook, outcome}`.
    pub async fn receive(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Receipt, WebhookError> {
        let result = self.receive_uncounted(name, headers, body).await;
        count_delivery(name, &result);
        result
    }

    /// Count a delivery that a front end refused before handing it to [`WebhookService::receive`]
    /// (an unknown endpoint, or a body over the limit found while reading it), as `receive` counts
    /// its own.
    pub fn count_refused(name: &str, error: &WebhookError) {
        count_outcome(name, error_outcome(error), matches!(error, WebhookError::UnknownEndpoint(_)));
    }

    async fn receive_uncounted(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Receipt, WebhookError> {
        let endpoint = self.endpoint(name).await?;
        let media = media_type(headers);
        let now = (self.clock)();
        let mut delivery = NewDelivery {
            endpoint: name.to_owned(),
            received_at_ms: now_ms(now),
            verification: String::new(),
            headers: redact_headers(headers, &endpoint.definition.verification.secret_headers()),
            body: body.to_vec(),
            body_preview: preview(body),
            content_type: media.clone(),
            output: None,
            error: None,
            status: DeliveryStatus::Processed,
            publish_status: PublishStatus::Skipped,
            dedup_key: None,
            replay_of: None,
        };
        if body.len() > endpoint.definition.max_body_bytes {
            return Err(WebhookError::TooLarge(BodyError::TooLarge {
                size: body.len(),
                limit: endpoint.definition.max_body_bytes,
            }));
        }
        if let Err(error) = endpoint.definition.verification.verify(headers, body, now) {
            delivery.verification = format!("failed: {error}");
            delivery.status = DeliveryStatus::Rejected;
            delivery.error = Some(error.to_string());
            let id = match self.repo.insert_delivery(&delivery).await {
                Ok(InsertOutcome::Inserted(id)) => Some(id),
                Ok(InsertOutcome::Duplicate { .. }) => None,
                Err(e) => {
                    tracing::warn!(webhook = name, error = %e, "could not record a rejected delivery");
                    None
                }
            };
            tracing::info!(webhook = name, %error, "webhook delivery rejected");
            return Err(WebhookError::Unauthorized { error, delivery_id: id });
        }
        delivery.verification = if matches!(endpoint.definition.verification, crate::Verification::None) {
            "skipped"
        } else {
            "passed"
        }
        .to_owned();
        delivery.dedup_key = endpoint.dedup_key(headers);
        self.process(&endpoint, delivery).await
    }

    async fn process(&self, endpoint: &Endpoint, mut delivery: NewDelivery) -> Result<Receipt, WebhookError> {
        let name = endpoint.name.clone();
        let result = match endpoint.parse_body(delivery.content_type.as_deref(), &delivery.body) {
            Ok(parsed) => match endpoint.apply(&parsed).await {
                // Not this delivery's fault: not recorded as failed (a retry would be ignored as
                // its duplicate); the sender is told to come back.
                Err(busy @ (TransformError::Busy | TransformError::MemoryBusy(_))) => {
                    return Err(WebhookError::Unavailable(busy.to_string()));
                }
                other => other.map_err(|e| e.to_string()),
            },
            Err(e @ BodyError::TooLarge { .. }) => return Err(WebhookError::TooLarge(e)),
            Err(e @ BodyError::UnsupportedType(_)) => return Err(WebhookError::UnsupportedType(e)),
            Err(e) => Err(e.to_string()),
        };
        match &result {
            Ok(output) => delivery.output = Some(output.clone()),
            Err(message) => {
                delivery.status = DeliveryStatus::Failed;
                delivery.error = Some(message.clone());
            }
        }
        let publish = endpoint.definition.publish && result.is_ok();
        let event = |id: i64| {
            json!({
                "webhook": name,
                "delivery_id": id.to_string(),
                "received_at_ms": delivery.received_at_ms,
                "replay_of": delivery.replay_of.map(|r| r.to_string()),
                "payload": delivery.output,
            })
        };
        // Queued with the record where the repository can (one transaction); else recorded, then
        // handed to the sink.
        let unqueued = delivery.publish_status;
        let queued = if publish {
            delivery.publish_status = PublishStatus::Queued;
            let queued = self.repo.insert_delivery_with_event(&delivery, &event).await;
            if queued.is_none() {
                delivery.publish_status = unqueued;
            }
            queued
        } else {
            None
        };
        let (inserted, queued) = match queued {
            Some(inserted) => (inserted?, true),
            None => (self.repo.insert_delivery(&delivery).await?, false),
        };
        let id = match inserted {
            InsertOutcome::Inserted(id) => id,
            InsertOutcome::Duplicate { id, status, publish_status } => {
                tracing::info!(webhook = %name, delivery_id = id, "duplicate webhook delivery ignored");
                return Ok(Receipt { delivery_id: id.to_string(), duplicate: true, status, publish_status });
            }
        };
        if let Err(message) = result {
            tracing::info!(webhook = %name, delivery_id = id, error = %message, "webhook delivery failed");
            return Err(WebhookError::Unprocessable { message, delivery_id: Some(id) });
        }
        let publish_status = match (publish, queued) {
            (false, _) => PublishStatus::Skipped,
            (true, true) => PublishStatus::Queued,
            (true, false) => {
                let status = match self.sink.publish(&name, &event(id)).await {
                    Ok(()) => PublishStatus::Queued,
                    Err(e) => {
                        tracing::warn!(webhook = %name, delivery_id = id, error = %e, "could not queue the webhook event");
                        PublishStatus::Failed
                    }
                };
                self.repo.set_publish_status(id, status).await?;
                status
            }
        };
        tracing::info!(webhook = %name, delivery_id = id, publish = publish_status.as_str(), "webhook delivery processed");
        Ok(Receipt {
            delivery_id: id.to_string(),
            duplicate: false,
            status: DeliveryStatus::Processed.as_str().to_owned(),
            publish_status: publish_status.as_str().to_owned(),
        })
    }

    /// Run a sample through verification (when `headers` are given) and transformation; nothing is
    /// stored or published. `sample` is `{"body": <string: raw body | other JSON: serialised>,
    /// "headers": {...}}`.
    pub async fn test(&self, name: &str, sample: &Value) -> Result<Value, WebhookError> {
        let endpoint = self.endpoint(name).await?;
        let invalid = |m: &str| {
            WebhookError::InvalidDefinition(DefinitionError::new("", format!("invalid test request: {m}")))
        };
        let object = sample.as_object().ok_or_else(|| invalid("expected an object"))?;
        if let Some(key) = object.keys().find(|k| *k != "body" && *k != "headers") {
            return Err(invalid(&format!("unknown field '{key}'")));
        }
        let body = match object.get("body") {
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(other) => other.to_string().into_bytes(),
            None => return Err(invalid("'body' is required")),
        };
        let mut headers = HeaderMap::new();
        let given = match object.get("headers") {
            None | Some(Value::Null) => false,
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    let v = v.as_str().ok_or_else(|| invalid("header values must be strings"))?;
                    let name =
                        http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| invalid("bad header name"))?;
                    let value = http::HeaderValue::from_str(v).map_err(|_| invalid("bad header value"))?;
                    headers.append(name, value);
                }
                true
            }
            Some(_) => return Err(invalid("'headers' must be an object")),
        };
        let verification = if given {
            match endpoint.definition.verification.verify(&headers, &body, (self.clock)()) {
                Ok(()) => "passed".to_owned(),
                Err(error) => return Err(WebhookError::Unauthorized { error, delivery_id: None }),
            }
        } else {
            "skipped".to_owned()
        };
        let media = media_type(&headers).or_else(|| Some("application/json".into()));
        let parsed = match endpoint.parse_body(media.as_deref(), &body) {
            Ok(v) => v,
            Err(e @ BodyError::TooLarge { .. }) => return Err(WebhookError::TooLarge(e)),
            Err(e @ BodyError::UnsupportedType(_)) => return Err(WebhookError::UnsupportedType(e)),
            Err(e) => return Err(WebhookError::Unprocessable { message: e.to_string(), delivery_id: None }),
        };
        let output = endpoint.apply(&parsed).await.map_err(|e| match e {
            TransformError::Busy | TransformError::MemoryBusy(_) => WebhookError::Unavailable(e.to_string()),
            e => WebhookError::Unprocessable { message: e.to_string(), delivery_id: None },
        })?;
        Ok(json!({
            "verification": verification,
            "parsed": parsed,
            "output": output,
            "would_publish": endpoint.definition.publish,
            "routing_key": format!("integrations.webhook.{name}"),
        }))
    }

    /// Replay a recorded delivery through the current definition: parse, transform, record as a
    /// new delivery (`replay_of`), publish. Deliveries that failed verification cannot be replayed.
    pub async fn replay(&self, name: &str, id: i64) -> Result<Receipt, WebhookError> {
        let endpoint = self.endpoint(name).await?;
        let original = self.repo.delivery(name, id).await?.ok_or(WebhookError::UnknownDelivery(id))?;
        if original.status == DeliveryStatus::Rejected.as_str() {
            return Err(WebhookError::Conflict(format!(
                "delivery {id} failed verification and cannot be replayed"
            )));
        }
        let body = original.body.unwrap_or_default();
        let delivery = NewDelivery {
            endpoint: name.to_owned(),
            received_at_ms: now_ms((self.clock)()),
            verification: format!("replay of {id}"),
            headers: original.headers,
            body_preview: preview(&body),
            body,
            content_type: original.content_type,
            output: None,
            error: None,
            status: DeliveryStatus::Processed,
            publish_status: PublishStatus::Skipped,
            dedup_key: None,
            replay_of: Some(id),
        };
        self.process(&endpoint, delivery).await
    }

    /// Deliveries of `name`, newest first.
    pub async fn logs(&self, name: &str, query: &DeliveryQuery) -> Result<DeliveryPage, WebhookError> {
        if self.repo.endpoint(name).await?.is_none() {
            return Err(WebhookError::UnknownEndpoint(name.to_owned()));
        }
        let mut query = query.clone();
        query.limit = query.limit.clamp(1, 200);
        Ok(self.repo.deliveries(name, &query).await?)
    }
}
