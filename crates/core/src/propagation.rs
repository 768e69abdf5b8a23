//! W3C trace context (`traceparent`, `tracestate`) across process boundaries, in one place.
//!
//! The front doors hand what they received to [`set_parent`] (the headers of a REST request, the
//! headers of an AMQP command), so the span of the call continues the caller's trace; provider HTTP
//! clients call [`inject`] on each outgoing request, so the upstream sees the tool call's span as
//! its parent. Both do nothing until a binary [`install`]s a [`Propagator`] (the `otel` feature of
//! `integrations-api` and `integrations-worker`): core, the front doors and the providers stay free
//! of OpenTelemetry.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

/// The headers of the W3C Trace Context recommendation, in the order they are read.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Reads a trace context from a carrier into a span and writes a span's context into a carrier.
pub trait Propagator: Send + Sync + 'static {
    /// Make `span` (not yet entered) a child of the context `get` reads (`get("traceparent")`);
    /// a missing or malformed context leaves the span a root.
    fn set_parent(&self, span: &tracing::Span, get: &dyn Fn(&str) -> Option<String>);
    /// Write the context of `span` through `set` (`set("traceparent", "00-...")`).
    fn inject(&self, span: &tracing::Span, set: &mut dyn FnMut(&str, String));
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Install the process-wide propagator. `false` if one was installed before (it stays).
pub fn install(propagator: impl Propagator) -> bool {
    PROPAGATOR.set(Box::new(propagator)).is_ok()
}

/// Whether a propagator is installed.
pub fn installed() -> bool {
    PROPAGATOR.get().is_some()
}

/// Make `span` a child of the trace context `get` reads (see [`Propagator::set_parent`]).
pub fn set_parent(span: &tracing::Span, get: &dyn Fn(&str) -> Option<String>) {
    if let Some(propagator) = PROPAGATOR.get() {
        propagator.set_parent(span, get);
    }
}

/// Make `span` a child of the trace context in HTTP `headers`.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    set_parent(span, &|name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned));
}

/// Add the current span's trace context to the headers of an outgoing request.
pub fn inject(headers: &mut HeaderMap) {
    let Some(propagator) = PROPAGATOR.get() else { return };
    propagator.inject(&tracing::Span::current(), &mut |name, value| {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::try_from(value))
        {
            headers.insert(name, value);
        }
    });
}
