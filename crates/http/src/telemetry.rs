//! Logs and traces of the binaries: the `tracing` subscriber (text or JSON lines) and, with the
//! `otel` feature and an OTLP endpoint, OpenTelemetry span export plus W3C trace-context
//! propagation (installed into [`integration_core::propagation`], which the front doors and the
//! provider clients use).

#[cfg(test)]
#[path = "telemetry/captured.rs"]
mod captured;
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
    /// The full URL spans are sent to (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, e.g.
    /// `https://collector:4318/v1/traces`), used as given; wins over `otlp_endpoint`, as the
    /// OpenTelemetry specification says. None or empty: `{otlp_endpoint}/v1/traces`.
    pub otlp_traces_endpoint: Option<&'a str>,
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
    let endpoint = traces_url(config.otlp_endpoint, config.otlp_traces_endpoint);
    let telemetry = endpoint.as_deref().map(|endpoint| Telemetry::start(endpoint, config.service_name));
    let (telemetry, failure) = match telemetry {
        Some(Ok(telemetry)) => (Some(telemetry), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, None),
    };
    match &telemetry {
        // The exporter takes INFO spans whatever the log level: the level filters the log layer
        // alone (a per-layer filter).
        Some(telemetry) => {
            let otel =
                telemetry.layer::<Logged>().with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                    metadata.level() <= &tracing::Level::INFO && metadata.target().starts_with("integration")
                }));
            let _ = tracing_subscriber::registry()
                .with(log_layer(config.json).with_filter(filter).boxed())
                .with(otel)
                .try_init();
        }
        // Logs alone: the level filters the whole subscriber. A per-layer filter costs every span
        // a registry lookup at each enter, exit and record, to ask the layer's filter again; spans
        // of a request are entered at every poll (docs/benchmarks.md, eleventh session).
        None => {
            let _ = tracing_subscriber::registry().with(filter).with(log_layer(config.json)).try_init();
        }
    }
    if let Some(error) = failure {
        tracing::warn!(%error, "traces are not exported");
    } else if let Some(endpoint) = endpoint.filter(|_| telemetry.is_some()) {
        tracing::info!(endpoint = without_userinfo(&endpoint), "exporting traces over OTLP/HTTP");
    }
    telemetry
}

/// The log layer: text, or one JSON object per line with the current span's fields.
fn log_layer<S>(json: bool) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    if json {
        fmt.json().flatten_event(true).with_current_span(true).fmt_fields(span_json::SpanFieldsJson).boxed()
    } else {
        fmt.boxed()
    }
}

/// Where spans go: `traces` as given when set (the signal-specific variable is a full URL), else
/// `{endpoint}/v1/traces`; `None` when neither is set (blank counts as unset).
fn traces_url(endpoint: Option<&str>, traces: Option<&str>) -> Option<String> {
    fn set(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    match (set(traces), set(endpoint)) {
        (Some(traces), _) => Some(traces.to_owned()),
        (None, Some(endpoint)) => Some(format!("{}/v1/traces", endpoint.trim_end_matches('/'))),
        (None, None) => None,
    }
}

/// `url` without a `user:password@` part, for the log line (one that does not parse as a URL is
/// not logged: it is not known where its credentials would be).
fn without_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            strip_userinfo(&mut parsed);
            parsed.into()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Drop the `user:password@` of `url` (for the log line, and before the exporter keeps the URL).
fn strip_userinfo(url: &mut url::Url) {
    // Both fail only for URLs that cannot carry credentials at all.
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

#[cfg(test)]
mod tests {
    use super::{traces_url, without_userinfo};

    #[test]
    fn logged_endpoints_lose_their_credentials() {
        assert_eq!(
            without_userinfo("https://user:s3cret@collector:4318/v1/traces"),
            "https://collector:4318/v1/traces"
        );
        assert_eq!(
            without_userinfo("http://collector:4318/v1/traces?a=b@c"),
            "http://collector:4318/v1/traces?a=b@c"
        );
        assert_eq!(without_userinfo("collector:4318"), "collector:4318");
        assert_eq!(without_userinfo("//user:s3cret@collector"), "(not a URL)");
    }

    #[test]
    fn the_traces_endpoint_is_used_as_given_and_wins_over_the_base_endpoint() {
        assert_eq!(traces_url(None, None), None);
        assert_eq!(traces_url(Some("  "), Some("")), None);
        assert_eq!(traces_url(Some("http://c:4318"), None).as_deref(), Some("http://c:4318/v1/traces"));
        assert_eq!(traces_url(Some("http://c:4318/"), Some(" ")).as_deref(), Some("http://c:4318/v1/traces"));
        assert_eq!(
            traces_url(Some("http://c:4318"), Some("https://t:443/custom/path")).as_deref(),
            Some("https://t:443/custom/path")
        );
        assert_eq!(traces_url(None, Some("https://t/v1/traces")).as_deref(), Some("https://t/v1/traces"));
    }
}
