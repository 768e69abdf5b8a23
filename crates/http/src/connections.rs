//! Connection management: configure, status, test and delete a connection
//! (`/api/integrations/{name}/...`). A connection is named after its provider (`jira`) or carries
//! the provider in its configure body (`{"provider": "jira", ...}` for `jira-eu`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use integration_core::{Connection, Integration, IntegrationError, Quota};
use integration_store::StoreConnections;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::tools::parse_json_body;

/// `?test=true` on configure.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfigureQuery {
    #[serde(default)]
    test: bool,
}

fn store(state: &AppState) -> Result<&Arc<StoreConnections>, ApiError> {
    state.connections.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, "configuration", "this server has no connection store")
    })
}

fn known(state: &AppState) -> Vec<String> {
    state.executor.registry().integrations().iter().map(|i| i.info().name).collect()
}

fn unknown_provider(state: &AppState, what: &str) -> ApiError {
    let known = known(state);
    ApiError::not_found(format!("{what}; known providers: {}", known.join(", ")))
        .with_details(json!({ "known_providers": known }))
}

/// The provider of connection `name`: its own name if that is a provider, else the stored or
/// environment connection's provider.
async fn provider_of(state: &AppState, name: &str) -> Result<Arc<dyn Integration>, ApiError> {
    let registry = state.executor.registry();
    if let Some(integration) = registry.integration(name) {
        return Ok(integration);
    }
    let connections = store(state)?;
    let listed = connections.list().await.map_err(IntegrationError::from)?;
    let provider = listed.iter().find(|c| c.name == name).map(|c| c.provider.clone());
    match provider.and_then(|p| registry.integration(&p)) {
        Some(integration) => Ok(integration),
        None => {
            let names: Vec<String> = listed.into_iter().map(|c| c.name).collect();
            Err(ApiError::not_found(format!(
                "no connection or provider named '{name}'; known providers: {}; connections: {}",
                known(state).join(", "),
                names.join(", ")
            ))
            .with_details(json!({ "known_providers": known(state), "connections": names })))
        }
    }
}

/// `POST /api/integrations/{name}/configure[?test=true]`
pub(crate) async fn configure(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<ConfigureQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let connections = store(&state)?.clone();
    let mut body = match parse_json_body::<Value>(&headers, &body)? {
        Some(Value::Object(map)) => map,
        _ => return Err(ApiError::bad_request("the configure body must be a JSON object")),
    };
    let integration = match body.get("provider") {
        Some(Value::String(p)) => state
            .executor
            .registry()
            .integration(p)
            .ok_or_else(|| unknown_provider(&state, &format!("unknown provider '{p}'")))?,
        Some(_) => return Err(ApiError::bad_request("'provider' must be a string")),
        None => state.executor.registry().integration(&name).ok_or_else(|| {
            unknown_provider(
                &state,
                &format!(
                    "'{name}' is not a provider: name the provider in the body (\"provider\": \"jira\")"
                ),
            )
        })?,
    };
    let info = integration.info();
    let provider_field = body.remove("provider");
    validate_config(&info.config_schema, &Value::Object(body.clone()), &info.name)?;
    if let Some(p) = provider_field {
        body.insert("provider".into(), p);
    }
    let connection = integration_store::connection_from_body(&info, &name, &Value::Object(body))
        .map_err(IntegrationError::from)?;
    // Settings no call could use (a `file:` or malformed URL, a URL with a password in it) are the
    // caller's mistake, told now (422), not a stored connection every call then fails on.
    integration.validate(&connection).map_err(|e| {
        let refused = IntegrationError::invalid_input(info.name.clone(), e.message());
        match e.details() {
            Some(details) => refused.with_details(details.clone()),
            None => refused,
        }
    })?;

    let mut check = Value::Null;
    if query.test {
        let started = std::time::Instant::now();
        let health = run_check(&state, integration.as_ref(), &connection).await?;
        check = json!({
            "ok": true,
            "identity": health.identity,
            "details": health.details,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
    }
    let stored = connections.save(&connection).await.map_err(IntegrationError::from)?;
    if query.test {
        let _ = connections.record_check(&name, true, "connection check passed").await;
    }
    let mut response = json!({ "connection": stored });
    if query.test {
        response["check"] = check;
    }
    Ok((StatusCode::OK, Json(response)).into_response())
}

fn validate_config(schema: &Value, body: &Value, provider: &str) -> Result<(), ApiError> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        ApiError::from(IntegrationError::internal(provider, format!("invalid config schema: {e}")))
    })?;
    let violations: Vec<Value> = validator
        .iter_errors(body)
        .map(|e| {
            // Never echo a value back: it may be a secret.
            let pointer = e.instance_path().to_string();
            json!({ "pointer": pointer, "message": describe_violation(&e) })
        })
        .collect();
    if violations.is_empty() {
        return Ok(());
    }
    Err(ApiError::from(
        IntegrationError::invalid_input(provider, format!("invalid {provider} configuration"))
            .with_details(json!({ "violations": violations })),
    ))
}

/// A violation message that does not quote the offending value.
fn describe_violation(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as K;
    match error.kind() {
        K::Required { property } => format!("{property} is required"),
        K::AdditionalProperties { unexpected } => format!("unknown field(s): {}", unexpected.join(", ")),
        K::Type { .. } => "has the wrong type".to_owned(),
        K::Format { format } => format!("is not a valid {format}"),
        K::Minimum { .. } | K::Maximum { .. } | K::ExclusiveMinimum { .. } | K::ExclusiveMaximum { .. } => {
            "is out of range".to_owned()
        }
        K::MinLength { .. } => "is too short".to_owned(),
        K::MaxLength { .. } => "is too long".to_owned(),
        K::Enum { .. } => "is not one of the allowed values".to_owned(),
        K::AnyOf { .. } | K::OneOfNotValid { .. } => {
            "does not match any accepted combination of fields (see the provider's config_schema)".to_owned()
        }
        K::OneOfMultipleValid { .. } => "matches more than one accepted combination of fields".to_owned(),
        _ => "is invalid".to_owned(),
    }
}

async fn run_check(
    state: &AppState,
    integration: &dyn Integration,
    connection: &Connection,
) -> Result<integration_core::Health, ApiError> {
    let timeout = connection.settings.timeout.unwrap_or(state.executor.config().timeout);
    match tokio::time::timeout(timeout, integration.check(connection)).await {
        Ok(Ok(health)) => Ok(health),
        // an upstream may echo the credential it was sent: never pass that on
        Ok(Err(error)) => Err(ApiError::from(error.redact_secrets(connection))),
        Err(_) => Err(ApiError::from(IntegrationError::new(
            integration_core::ErrorKind::Timeout,
            integration.info().name,
            "the connection check did not finish in time",
        ))),
    }
}

/// `GET /api/integrations/{name}/status`
pub(crate) async fn status(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let integration = provider_of(&state, &name).await?;
    let connections = store(&state)?;
    let status = connections.status(&name).await.map_err(IntegrationError::from)?;
    let limiter = state.executor.rate_limiter();
    let per_minute =
        status.settings.rate_limit_per_minute.unwrap_or(state.executor.config().rate_limit_per_minute);
    let quota = Quota::per_minute(per_minute);
    let budget = limiter.remaining(&name, quota).await;
    let mut body = serde_json::to_value(&status)
        .map_err(|e| ApiError::from(IntegrationError::internal("http", e.to_string())))?;
    body["provider"] = json!(integration.info().name);
    body["rate_limit"] = json!({
        "per_minute": quota.per_minute,
        "burst": quota.burst,
        "remaining": budget,
        "limiter": limiter.describe(),
    });
    Ok(Json(body).into_response())
}

/// `POST /api/integrations/{name}/test`
pub(crate) async fn test(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let integration = provider_of(&state, &name).await?;
    let connections = store(&state)?;
    let connection = state.executor.connections().resolve(&name).await.map_err(ApiError::from)?;
    let started = std::time::Instant::now();
    match run_check(&state, integration.as_ref(), &connection).await {
        Ok(health) => {
            let _ = connections.record_check(&name, true, "connection check passed").await;
            Ok(Json(json!({
                "ok": true,
                "connection": name,
                "provider": integration.info().name,
                "identity": health.identity,
                "details": health.details,
                "duration_ms": started.elapsed().as_millis() as u64,
            }))
            .into_response())
        }
        Err(error) => {
            let message = format!("connection check failed ({})", error.kind());
            let _ = connections.record_check(&name, false, &message).await;
            Err(error)
        }
    }
}

/// `DELETE /api/integrations/{name}`
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let connections = store(&state)?;
    let deleted = connections.delete(&name).await.map_err(IntegrationError::from)?;
    if !deleted {
        let listed = connections.list().await.map_err(IntegrationError::from)?;
        let stored: Vec<String> = listed
            .into_iter()
            .filter(|c| c.source == integration_core::ConnectionSource::Store)
            .map(|c| c.name)
            .collect();
        return Err(ApiError::not_found(format!(
            "no stored connection named '{name}'; stored connections: {}",
            stored.join(", ")
        ))
        .with_details(json!({ "connections": stored })));
    }
    tracing::info!(connection = %name, "connection deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
