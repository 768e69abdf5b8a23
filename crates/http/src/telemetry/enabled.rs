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
    /// `None` once shut down or dropped.
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Export spans to `traces_url` (the full URL, `.../v1/traces`) and install the W3C
    /// propagator. Must run inside a tokio runtime (the batch processor is a task).
    ///
    /// Credentials in the URL (`https://user:password@collector/v1/traces`) are sent as
    /// `Authorization: Basic` (unless `OTEL_EXPORTER_OTLP_HEADERS` sets that header) and are not
    /// part of the URL the exporter keeps, so no error it reports can quote them.
    pub fn start(traces_url: &str, service_name: &str) -> Result<Self, TelemetryError> {
        let (endpoint, authorization) = split_credentials(traces_url)?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .default_headers(headers)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
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
        Ok(Self { provider: Some(provider) })
    }

    /// The `tracing` layer turning spans into OpenTelemetry spans of this exporter.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = match &self.provider {
            Some(provider) => provider.tracer("integrations"),
            // Not reachable: `shutdown` takes the value and `drop` ends it.
            None => SdkTracerProvider::builder().build().tracer("integrations"),
        };
        tracing_opentelemetry::layer().with_tracer(tracer)
    }

    /// Export the finished spans now.
    pub async fn flush(&self) {
        let Some(provider) = self.provider.clone() else { return };
        // The SDK blocks the calling thread until the processor task answers.
        let result = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        if let Ok(Err(error)) = result {
            tracing::warn!(%error, "flushing traces failed");
        }
    }

    /// Export the finished spans and stop the exporter.
    pub async fn shutdown(mut self) {
        let Some(provider) = self.provider.take() else { return };
        let result =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(5))).await;
        if let Ok(Err(error)) = result {
            tracing::warn!(%error, "stopping the trace exporter failed");
        }
    }
}

/// `url` without its `user:password@`, and those as an `Authorization: Basic` value (marked
/// sensitive) when there were any. An endpoint that is not a URL is refused without quoting it: it
/// is not known where in it a password would be.
fn split_credentials(url: &str) -> Result<(String, Option<reqwest::header::HeaderValue>), TelemetryError> {
    use base64::Engine as _;
    let invalid = || TelemetryError::Exporter("the traces endpoint is not a valid http(s) URL".to_owned());
    let mut parsed = url::Url::parse(url.trim()).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid());
    }
    if parsed.username().is_empty() && parsed.password().is_none() {
        return Ok((parsed.into(), None));
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let user_pass =
        format!("{}:{}", decode(parsed.username()), parsed.password().map(decode).unwrap_or_default());
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| invalid())?;
    value.set_sensitive(true);
    super::strip_userinfo(&mut parsed);
    Ok((parsed.into(), Some(value)))
}

impl Drop for Telemetry {
    /// Without [`Telemetry::shutdown`]: the SDK shuts the exporter down when its last handle goes,
    /// blocking that thread until the batch task has stopped, and on a runtime worker the task may
    /// need that very thread (a current-thread runtime would hang for good). A thread of its own
    /// takes the handle instead.
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ =
                std::thread::Builder::new().name("otel-shutdown".to_owned()).spawn(move || drop(provider));
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::telemetry::captured::Captured;

    #[test]
    fn credentials_leave_the_url_for_a_basic_authorization() {
        let (url, auth) =
            split_credentials("https://otel:s%40cret@collector.example:4318/v1/traces").expect("a valid URL");
        assert_eq!(url, "https://collector.example:4318/v1/traces");
        let auth = auth.expect("the credentials");
        assert!(auth.is_sensitive(), "hidden from Debug output");
        // base64 of the decoded `otel:s@cret`
        assert_eq!(auth.to_str().ok(), Some("Basic b3RlbDpzQGNyZXQ="));
        // a token given as the user name alone is a credential too
        let (url, auth) = split_credentials("https://ghp_token@collector.example/v1/traces").expect("valid");
        assert_eq!(url, "https://collector.example/v1/traces");
        assert_eq!(
            auth.and_then(|v| v.to_str().map(str::to_owned).ok()).as_deref(),
            Some("Basic Z2hwX3Rva2VuOg==")
        );
        let (url, auth) = split_credentials("http://127.0.0.1:4318/v1/traces").expect("valid");
        assert_eq!((url.as_str(), auth.is_none()), ("http://127.0.0.1:4318/v1/traces", true));
        // refused without quoting the endpoint
        for bad in [
            "http://otel:s3cret@127.0.0.1:99999/v1/traces",
            "otel:s3cret@collector:4318",
            "ftp://otel:s3cret@host/",
        ] {
            let error = split_credentials(bad).map(|_| ()).expect_err(bad).to_string();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(error.contains("not a valid http(s) URL"), "{error}");
        }
    }

    #[test]
    fn dropping_it_without_shutdown_does_not_block_a_current_thread_runtime() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let telemetry =
                    Telemetry::start("http://127.0.0.1:1/v1/traces", "test").expect("the exporter");
                let subscriber = tracing_subscriber::registry().with(telemetry.layer());
                tracing::subscriber::with_default(subscriber, || {
                    let _span = tracing::info_span!("buffered").entered();
                });
                drop(telemetry);
                tokio::time::sleep(Duration::from_millis(10)).await;
            });
            let _ = done.send(());
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(30)).is_ok(),
            "dropping the exporter blocked the runtime's only thread"
        );
    }

    #[tokio::test]
    async fn a_failed_export_is_logged_without_the_credentials() {
        let telemetry =
            Telemetry::start("http://otel:s3cret@127.0.0.1:1/v1/traces", "test").expect("the exporter");
        let logs = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer().with_writer(logs.clone()).with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("opentelemetry", tracing::Level::WARN)
                        .with_target("opentelemetry_sdk", tracing::Level::WARN)
                        .with_target("opentelemetry_otlp", tracing::Level::WARN),
                ),
            )
            .with(telemetry.layer());
        // The batch task runs on this thread (a current-thread runtime), under this subscriber.
        let _default = tracing::subscriber::set_default(subscriber);
        // A full batch (512 spans by default) is exported at once, without waiting for the timer.
        for _ in 0..512 {
            let _span = tracing::info_span!(target: "integration_test", "exported").entered();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let text = loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let text = logs.text();
            if text.contains("Export") || tokio::time::Instant::now() > deadline {
                break text;
            }
        };
        assert!(
            text.contains("ERROR") && text.contains("BatchSpanProcessor"),
            "no export error logged: {text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        telemetry.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_collector_gets_the_credentials_of_the_url_as_basic_auth() {
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let record = {
            let seen = seen.clone();
            move |headers: http::HeaderMap| async move {
                let auth =
                    headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(auth);
                http::StatusCode::OK
            }
        };
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let telemetry = Telemetry::start(&format!("http://otel:s%40cret@{address}/v1/traces"), "test")
            .expect("the exporter");
        let subscriber = tracing_subscriber::registry().with(telemetry.layer());
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("exported").entered();
        });
        tokio::time::timeout(Duration::from_secs(20), telemetry.flush()).await.expect("the export ends");
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(seen, vec![Some("Basic b3RlbDpzQGNyZXQ=".to_owned())]);
        telemetry.shutdown().await;
    }
}
