//! Without the `otel` feature: no exporter can be started.

use super::TelemetryError;

/// An OpenTelemetry exporter; never built without the `otel` feature.
#[derive(Debug)]
pub enum Telemetry {}

impl Telemetry {
    /// Always [`TelemetryError::NotCompiled`].
    pub fn start(_traces_url: &str, _service_name: &str) -> Result<Self, TelemetryError> {
        Err(TelemetryError::NotCompiled)
    }

    /// The layer feeding the exporter (none exists).
    pub fn layer<S>(&self) -> tracing_subscriber::layer::Identity {
        match *self {}
    }

    /// Export what is buffered (nothing).
    pub async fn flush(&self) {
        match *self {}
    }

    /// Export what is buffered and stop (nothing).
    pub async fn shutdown(self) {
        match self {}
    }
}
