//! Logs and traces of the binaries: the `tracing` subscriber (text or JSON lines) and, with the
//! `otel` feature and an OTLP endpoint, OpenTelemetry span export plus W3C trace-context
//! propagation (installed into [`integration_core::propagation`], which the front doors and the
//! provider clients use).

#[cfg(feature = "otel")]
#[path = "telemetry/enabled.rs"]
mod imp;
#[cfg(not(feature = "otel"))]
#[path = "telemetry/disabled.rs"]
mod imp;
mod span_json;

pub use imp::Telemetry;

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The binary was built without the `otel` feature.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT is set but this binary was built without the `otel` feature")]
    NotCompiled,
    /// The exporter could not be built (bad endpoint, HTTP client).
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

/// The subscriber under the OpenTelemetry layer: the registry with the log layer.
type Logged = tracing_subscriber::layer::Layered<
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>,
    tracing_subscriber::Registry,
>;

/// What the binaries log and trace.
#[derive(Debug, Clone, Default)]
pub struct TracingConfig<'a> {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Log level or filter (`info`, `warn`, `integration_bus=debug`); `RUST_LOG` wins.
    pub level: &'a str,
    /// Base URL of an OTLP/HTTP collector (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g.
    /// `http://otel-collector:4318`); spans go to `{endpoint}/v1/traces`. None or empty: no export.
    pub otlp_endpoint: Option<&'a str>,
    /// `service.name` of exported spans unless `OTEL_SERVICE_NAME` is set.
    pub service_name: &'a str,
}

/// Install the global subscriber: log lines filtered by `level` (or `RUST_LOG`) and, when an
/// endpoint is given and the `otel` feature is on, the INFO spans of this workspace's crates
/// exported over OTLP whatever the log level. Must run inside a tokio runtime. Returns the
/// exporter, to [`Telemetry::shutdown`] on exit; a failure to start it is logged, not fatal.
pub fn init_tracing(config: &TracingConfig<'_>) -> Option<Telemetry> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    let fmt = if config.json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .fmt_fields(span_json::SpanFieldsJson)
            .with_filter(filter)
            .boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let endpoint = config.otlp_endpoint.map(str::trim).filter(|e| !e.is_empty());
    let telemetry = endpoint.map(|endpoint| Telemetry::start(endpoint, config.service_name));
    let (telemetry, failure) = match telemetry {
        Some(Ok(telemetry)) => (Some(telemetry), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, None),
    };
    let otel = telemetry.as_ref().map(|t| {
        t.layer::<Logged>().with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.level() <= &tracing::Level::INFO && metadata.target().starts_with("integration")
        }))
    });
    let _ = tracing_subscriber::registry().with(fmt).with(otel).try_init();
    if let Some(error) = failure {
        tracing::warn!(%error, "traces are not exported");
    } else if let Some(endpoint) = endpoint.filter(|_| telemetry.is_some()) {
        tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
    }
    telemetry
}
