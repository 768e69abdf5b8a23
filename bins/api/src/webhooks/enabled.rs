//! The webhook routes and the store-backed repository and outbox sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use integration_core::{Executor, Registry};
use integration_http::{ApiError, AppState};
use integration_store::{
    DeliveryEvent, DeliveryFilter, DeliveryInsert, NewOutboxMessage, NewWebhookDelivery, Store,
    WebhookDeliveryRow,
};
use integration_webhook::{
    Allowlist, BodyError, CustomToolDefinition, CustomToolSource as _, CustomToolSync, CustomTools,
    DeliveryPage, DeliveryQuery, DeliveryRecord, EventSink, InsertOutcome, NewDelivery, PublishStatus,
    RepositoryError, Secret, SsrfGuard, StoredEndpoint, WebhookDefinition, WebhookError, WebhookRepository,
    WebhookService, custom::PROVIDER,
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ServeArgs;

/// The exchange webhook events are published on.
const EXCHANGE: &str = "events.exchange";

fn to_secrets(map: &BTreeMap<String, Secret>) -> BTreeMap<String, SecretString> {
    map.iter().map(|(k, v)| (k.clone(), SecretString::from(v.expose().to_owned()))).collect()
}

fn repo_err(e: integration_store::StoreError) -> RepositoryError {
    RepositoryError(e.to_string())
}

/// [`WebhookRepository`] over the store; it queues a delivery's event in the store's outbox in the
/// same transaction as the delivery.
struct StoreRepository(Store);

/// The routing key of an endpoint's events.
fn routing_key(endpoint: &str) -> String {
    format!("integrations.webhook.{endpoint}")
}

fn delivery_row(d: &NewDelivery) -> NewWebhookDelivery {
    NewWebhookDelivery {
        endpoint: d.endpoint.clone(),
        received_at: d.received_at_ms,
        verification: d.verification.clone(),
        headers: d.headers.clone(),
        body: d.body.clone(),
        body_preview: d.body_preview.clone(),
        content_type: d.content_type.clone(),
        output: d.output.clone(),
        error: d.error.clone(),
        status: d.status.as_str().to_owned(),
        publish_status: d.publish_status.as_str().to_owned(),
        dedup_key: d.dedup_key.clone(),
        replay_of: d.replay_of,
    }
}

fn insert_outcome(inserted: DeliveryInsert) -> InsertOutcome {
    match inserted {
        DeliveryInsert::Inserted(id) => InsertOutcome::Inserted(id),
        DeliveryInsert::Duplicate { id, status, publish_status } => {
            InsertOutcome::Duplicate { id, status, publish_status }
        }
    }
}

fn record(row: WebhookDeliveryRow) -> DeliveryRecord {
    DeliveryRecord {
        id: row.id,
        endpoint: row.endpoint,
        received_at_ms: row.received_at,
        verification: row.verification,
        headers: row.headers,
        body_truncated: usize::try_from(row.body_bytes).unwrap_or(0) > row.body_preview.len(),
        body_preview: row.body_preview,
        body_bytes: usize::try_from(row.body_bytes).unwrap_or(0),
        content_type: row.content_type,
        output: row.output,
        error: row.error,
        status: row.status,
        publish_status: row.publish_status,
        dedup_key: row.dedup_key,
        replay_of: row.replay_of,
        body: row.body,
    }
}

#[async_trait]
impl WebhookRepository for StoreRepository {
    async fn endpoint(&self, name: &str) -> Result<Option<StoredEndpoint>, RepositoryError> {
        let Some(stored) = self.0.webhooks().get_endpoint(name).await.map_err(repo_err)? else {
            return Ok(None);
        };
        let definition: WebhookDefinition = serde_json::from_value(stored.definition)
            .map_err(|e| RepositoryError(format!("stored definition of '{name}' is invalid: {e}")))?;
        Ok(Some(StoredEndpoint {
            definition: definition.with_secrets(&Secret::from_stored(&stored.secrets)),
            revision: stored.revision,
        }))
    }

    async fn save_endpoint(
        &self,
        name: &str,
        definition: &WebhookDefinition,
    ) -> Result<bool, RepositoryError> {
        let public = serde_json::to_value(definition).map_err(|e| RepositoryError(e.to_string()))?;
        self.0
            .webhooks()
            .save_endpoint(name, &public, &to_secrets(&definition.secrets()))
            .await
            .map_err(repo_err)
    }

    async fn delete_endpoint(&self, name: &str) -> Result<bool, RepositoryError> {
        self.0.webhooks().delete_endpoint(name).await.map_err(repo_err)
    }

    async fn insert_delivery(&self, d: &NewDelivery) -> Result<InsertOutcome, RepositoryError> {
        let inserted = self.0.webhooks().insert_delivery(&delivery_row(d)).await;
        Ok(insert_outcome(inserted.map_err(repo_err)?))
    }

    async fn insert_delivery_with_event(
        &self,
        d: &NewDelivery,
        event: &(dyn Fn(i64) -> Value + Send + Sync),
    ) -> Option<Result<InsertOutcome, RepositoryError>> {
        let routing_key = routing_key(&d.endpoint);
        let payload = |id: i64| event(id).to_string().into_bytes();
        let event = DeliveryEvent { exchange: EXCHANGE, routing_key: &routing_key, payload: &payload };
        let inserted = self.0.webhooks().insert_delivery_with_event(&delivery_row(d), &event).await;
        Some(inserted.map(insert_outcome).map_err(repo_err))
    }

    async fn set_publish_status(&self, id: i64, status: PublishStatus) -> Result<(), RepositoryError> {
        self.0.webhooks().set_publish_status(id, status.as_str()).await.map_err(repo_err)
    }

    async fn delivery(&self, endpoint: &str, id: i64) -> Result<Option<DeliveryRecord>, RepositoryError> {
        Ok(self.0.webhooks().get_delivery(endpoint, id).await.map_err(repo_err)?.map(record))
    }

    async fn deliveries(&self, endpoint: &str, q: &DeliveryQuery) -> Result<DeliveryPage, RepositoryError> {
        let filter = DeliveryFilter {
            limit: q.limit,
            before_id: q.before_id,
            status: q.status.clone(),
            since: q.since_ms,
            until: q.until_ms,
        };
        let rows = self.0.webhooks().list_deliveries(endpoint, &filter).await.map_err(repo_err)?;
        let next_cursor =
            (rows.len() as u32 >= q.limit).then(|| rows.last().map(|r| r.id.to_string())).flatten();
        Ok(DeliveryPage { deliveries: rows.into_iter().map(record).collect(), next_cursor })
    }
}

/// [`EventSink`] into the outbox: the bus relay publishes it, so nothing is lost while the broker
/// is down.
struct OutboxSink(Store);

#[async_trait]
impl EventSink for OutboxSink {
    async fn publish(&self, endpoint: &str, event: &Value) -> Result<(), RepositoryError> {
        let message = NewOutboxMessage {
            exchange: EXCHANGE.to_owned(),
            routing_key: routing_key(endpoint),
            payload: event.to_string().into_bytes(),
        };
        self.0.outbox().insert(&message).await.map(|_| ()).map_err(repo_err)
    }
}

struct Webhooks {
    service: WebhookService,
    store: Store,
    custom: CustomTools,
    registry: Arc<Registry>,
    /// `TOOL_REGISTRY_URL`: told again whenever a custom tool changes.
    registry_url: Option<String>,
}

impl Webhooks {
    /// Announce the changed tool set (external registry and `integrations.tools_registered`).
    fn announce(&self) {
        crate::tool_registry::spawn(self.registry_url.clone(), self.registry.clone(), self.store.clone());
    }
}

/// Build the webhook and custom tool routes, load the stored custom tools into the registry and
/// start the delivery retention task.
pub(crate) async fn routes(
    args: &ServeArgs,
    store: &Store,
    executor: &Executor,
) -> anyhow::Result<Router<AppState>> {
    let allowlist = Allowlist::parse(&args.custom_http_allowlist)
        .map_err(anyhow::Error::msg)
        .context("CUSTOM_HTTP_ALLOWLIST")?;
    let custom = CustomTools::new(SsrfGuard::new(allowlist)).map_err(anyhow::Error::msg)?;
    let service =
        WebhookService::new(Arc::new(StoreRepository(store.clone())), Arc::new(OutboxSink(store.clone())));
    let hooks = Arc::new(Webhooks {
        service,
        store: store.clone(),
        custom,
        registry: executor.registry().clone(),
        registry_url: args.agent.tool_registry_url.clone(),
    });
    let sync =
        Arc::new(CustomToolSync::new(hooks.custom.clone(), hooks.registry.clone(), Arc::new(store.clone())));
    sync.sync_and_log().await;
    if args.custom_tools_sync_seconds > 0 {
        tokio::spawn(sync.run(Duration::from_secs(args.custom_tools_sync_seconds)));
    }

    let retention = (
        Duration::from_secs(args.webhook_retention_days.max(1) * 24 * 3600),
        args.webhook_retention_max_per_endpoint.max(1),
    );
    let purge_store = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            match purge_store.webhooks().purge_deliveries(retention.0, retention.1).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "purged old webhook deliveries"),
                Err(error) => tracing::warn!(%error, "could not purge webhook deliveries"),
            }
        }
    });

    Ok(Router::new()
        .route(
            "/api/integrations/webhook/{name}",
            get(get_endpoint).put(put_endpoint).delete(delete_endpoint).post(deliver),
        )
        .route("/api/integrations/webhook/{name}/logs", get(logs))
        .route("/api/integrations/webhook/{name}/test", post(test))
        .route("/api/integrations/webhook/{name}/deliveries/{id}/replay", post(replay))
        .route("/api/integrations/custom/tools", get(list_tools).post(create_tool))
        .route("/api/integrations/custom/tools/{name}", get(get_tool).put(put_tool).delete(delete_tool))
        .layer(Extension(hooks)))
}

fn api_error(error: WebhookError) -> ApiError {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut api = ApiError::new(status, error.kind(), error.to_string());
    if let Some(details) = error.details() {
        api = api.with_details(details);
    }
    if matches!(error, WebhookError::Unavailable(_)) {
        api = api.with_retryable(true).with_retry_after(std::time::Duration::from_secs(1));
    }
    api
}

fn json_body(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

async fn put_endpoint(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let (created, view) = h.service.define(&name, &body).await.map_err(api_error)?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "name": name, "created": created, "definition": view, "url": format!("/api/integrations/webhook/{name}") }))).into_response())
}

async fn get_endpoint(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let view = h.service.definition(&name).await.map_err(api_error)?;
    Ok(Json(json!({ "name": name, "definition": view })).into_response())
}

async fn delete_endpoint(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    h.service.delete(&name).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn deliver(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let endpoint = match h.service.endpoint(&name).await {
        Ok(endpoint) => endpoint,
        Err(e) => {
            WebhookService::count_refused(&name, &e);
            return Err(api_error(e));
        }
    };
    let limit = endpoint.definition.max_body_bytes;
    // Refused while reading: counted as `receive` counts a body over the limit (`size` is a lower
    // bound when the sender gave no length).
    let too_large = |size: usize| {
        WebhookService::count_refused(&name, &WebhookError::TooLarge(BodyError::TooLarge { size, limit }));
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body exceeds the endpoint's limit of {limit} bytes"),
        )
    };
    if let Some(length) = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > limit)
    {
        return Err(too_large(length));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") || format!("{e:?}").contains("LengthLimit") {
            too_large(limit.saturating_add(1))
        } else {
            ApiError::bad_request(format!("could not read the body: {e}"))
        }
    })?;
    let receipt = h.service.receive(&name, &headers, &bytes).await.map_err(api_error)?;
    let status = if receipt.duplicate { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(receipt)).into_response())
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn parse_time(field: &str, value: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(value).map(|t| t.timestamp_millis()).map_err(|_| {
        ApiError::bad_request(format!("'{field}' must be an RFC 3339 time or epoch milliseconds"))
    })
}

async fn logs(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    if let Some(s) = &q.status
        && !["processed", "failed", "rejected"].contains(&s.as_str())
    {
        return Err(ApiError::bad_request("'status' must be processed, failed or rejected"));
    }
    let query = DeliveryQuery {
        limit: q.limit.unwrap_or(50),
        before_id: q
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>().map_err(|_| ApiError::bad_request("'cursor' is not a cursor of this list"))
            })
            .transpose()?,
        status: q.status,
        since_ms: q.since.as_deref().map(|s| parse_time("since", s)).transpose()?,
        until_ms: q.until.as_deref().map(|s| parse_time("until", s)).transpose()?,
    };
    let page = h.service.logs(&name, &query).await.map_err(api_error)?;
    let deliveries: Vec<Value> = page
        .deliveries
        .iter()
        .map(|d| {
            let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
            v["id"] = json!(d.id.to_string());
            v["received_at"] =
                json!(chrono::DateTime::from_timestamp_millis(d.received_at_ms).map(|t| t.to_rfc3339()));
            v
        })
        .collect();
    Ok(Json(json!({ "deliveries": deliveries, "next_cursor": page.next_cursor })).into_response())
}

async fn test(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let sample = json_body(&body)?;
    let result = h.service.test(&name, &sample).await.map_err(api_error)?;
    Ok(Json(result).into_response())
}

async fn replay(
    Extension(h): Extension<Arc<Webhooks>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found(format!("delivery {id} not found")))?;
    let receipt = h.service.replay(&name, id).await.map_err(api_error)?;
    Ok((StatusCode::ACCEPTED, Json(receipt)).into_response())
}

// ---- custom tools ------------------------------------------------------------------------------

fn invalid(e: integration_webhook::DefinitionError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", e.message.clone())
        .with_details(json!({ "pointer": e.pointer }))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

fn tool_view(def: &CustomToolDefinition, registered: bool) -> Value {
    let mut v = def.public_view();
    v["registered"] = json!(registered);
    v["invoke"] = json!(format!("/api/tools/{}/invoke", def.name));
    v
}

async fn stored_tool(h: &Webhooks, name: &str) -> Result<Option<CustomToolDefinition>, ApiError> {
    let Some(saved) = h.store.load(name).await.map_err(internal)? else {
        return Ok(None);
    };
    saved.into_definition().map(Some).map_err(internal)
}

/// Build and register `def` (replacing the custom tool of that name), then store it.
async fn save_tool(h: &Webhooks, def: CustomToolDefinition, replace: bool) -> Result<(), ApiError> {
    let tool = h.custom.build(&def).map_err(invalid)?;
    if let Some(existing) = h.registry.get(&def.name)
        && (!replace || existing.spec().provider != PROVIDER)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a tool named '{}' already exists", def.name),
        ));
    }
    let previous = h.registry.get(&def.name).map(|t| t.tool.clone());
    let registered = if replace { h.registry.upsert_tool(tool) } else { h.registry.add_tool(tool) };
    registered
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", e.to_string()))?;
    let public = serde_json::to_value(&def).map_err(internal)?;
    if let Err(e) = h.store.webhooks().save_custom_tool(&def.name, &public, &to_secrets(&def.secrets())).await
    {
        h.registry.remove_tool(&def.name);
        if let Some(previous) = previous {
            let _ = h.registry.add_tool(previous);
        }
        return Err(internal(e));
    }
    tracing::info!(tool = %def.name, "custom tool saved and registered");
    h.announce();
    Ok(())
}

async fn create_tool(
    Extension(h): Extension<Arc<Webhooks>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let def = CustomToolDefinition::parse(&json_body(&body)?).map_err(invalid)?;
    save_tool(&h, def.clone(), false).await?;
    Ok((StatusCode::CREATED, Json(tool_view(&def, true))).into_response())
}

async fn list_tools(Extension(h): Extension<Arc<Webhooks>>) -> Result<Response, ApiError> {
    let listed = h.store.webhooks().list_custom_tools().await.map_err(internal)?;
    let tools: Vec<Value> = listed
        .into_iter()
        .map(|listed| {
            match listed.tool.map_err(|e| e.to_string()).and_then(|s| {
                serde_json::from_value::<CustomToolDefinition>(s.definition).map_err(|e| e.to_string())
            }) {
                Ok(def) => tool_view(&def, h.registry.get(&listed.name).is_some()),
                Err(error) => json!({ "name": listed.name, "registered": false, "error": error }),
            }
        })
        .collect();
    Ok(Json(json!({ "tools": tools })).into_response())
}

async fn get_tool(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let def = stored_tool(&h, &name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("custom tool '{name}' not found")))?;
    Ok(Json(tool_view(&def, h.registry.get(&name).is_some())).into_response())
}

async fn put_tool(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut body = json_body(&body)?;
    match body.get("name") {
        None => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("name".into(), json!(name));
            }
        }
        Some(n) if n.as_str() == Some(name.as_str()) => {}
        Some(_) => {
            return Err(ApiError::bad_request("the name in the body differs from the name in the path"));
        }
    }
    let mut def = CustomToolDefinition::parse(&body).map_err(invalid)?;
    let previous = stored_tool(&h, &name).await?;
    if let Some(previous) = &previous {
        def = def.inherit_secret(previous);
    }
    save_tool(&h, def.clone(), previous.is_some()).await?;
    let status = if previous.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(tool_view(&def, true))).into_response())
}

async fn delete_tool(
    Extension(h): Extension<Arc<Webhooks>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !h.store.webhooks().delete_custom_tool(&name).await.map_err(internal)? {
        return Err(ApiError::not_found(format!("custom tool '{name}' not found")));
    }
    if h.registry.get(&name).is_some_and(|t| t.spec().provider == PROVIDER) {
        h.registry.remove_tool(&name);
    }
    tracing::info!(tool = %name, "custom tool deleted");
    h.announce();
    Ok(StatusCode::NO_CONTENT.into_response())
}
