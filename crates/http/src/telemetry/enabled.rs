//! With the `otel` feature: spans exported over OTLP/HTTP (protobuf, the workspace's reqwest with
//! rustls) by a batch processor running on tokio, and the W3C trace-context propagator.

use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, span_processor_with_async_runtime};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::registry::LookupSpan;

use super::TelemetryError;

/// A running OpenTelemetry exporter. Call [`Telemetry::shutdown`] before exit, or the last spans
/// are lost.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Export spans to `traces_url` (the full URL, `.../v1/traces`) and install the W3C
    /// propagator. Must run inside a tokio runtime (the batch processor is a task).
    pub fn start(traces_url: &str, service_name: &str) -> Result<Self, TelemetryError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let processor = span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(service_name.to_owned());
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource.build())
            .build();
        integration_core::propagation::install(W3c(TraceContextPropagator::new()));
        Ok(Self { provider })
    }

    /// The `tracing` layer turning spans into OpenTelemetry spans of this exporter.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("integrations"))
    }

    /// Export the finished spans now.
    pub async fn flush(&self) {
        let provider = self.provider.clone();
        // The SDK blocks the calling thread until the processor task answers.
        let result = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        if let Ok(Err(error)) = result {
            tracing::warn!(%error, "flushing traces failed");
        }
    }

    /// Export the finished spans and stop the exporter.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let result =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(5))).await;
        if let Ok(Err(error)) = result {
            tracing::warn!(%error, "stopping the trace exporter failed");
        }
    }
}

/// `traceparent` / `tracestate` between carriers and `tracing` spans.
struct W3c(TraceContextPropagator);

impl integration_core::propagation::Propagator for W3c {
    fn set_parent(&self, span: &tracing::Span, get: &dyn Fn(&str) -> Option<String>) {
        let carrier: std::collections::HashMap<String, String> = integration_core::propagation::TRACE_HEADERS
            .iter()
            .filter_map(|name| get(name).map(|value| ((*name).to_owned(), value)))
            .collect();
        let context = self.0.extract(&carrier);
        if context.span().span_context().is_valid() {
            let _ = span.set_parent(context);
        }
    }

    fn inject(&self, span: &tracing::Span, set: &mut dyn FnMut(&str, String)) {
        let mut carrier = std::collections::HashMap::new();
        self.0.inject_context(&span.context(), &mut carrier);
        for (name, value) in carrier {
            set(&name, value);
        }
    }
}
