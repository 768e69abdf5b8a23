//! Span fields as a JSON object for the JSON log lines, written straight into the span's buffer.
//!
//! tracing-subscriber's `JsonFields` collects a span's fields into a map of `serde_json::Value`s
//! and serializes it through an `io::Write` adaptor when the span is made, and parses and
//! re-serializes the whole object at every `record`, whether or not a line is ever logged inside
//! the span: about a fifth of the instructions of a cached read (callgrind, docs/benchmarks.md).
//! [`SpanFieldsJson`] writes the same object directly and appends recorded fields in place. The
//! JSON event formatter reads it back unchanged (it parses the span's fields when it logs a line).

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, FormattedFields};

/// Formats span fields as one JSON object (`{"method":"GET","attempts":1}`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpanFieldsJson;

impl<'writer> FormatFields<'writer> for SpanFieldsJson {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> fmt::Result {
        // Built in a local buffer and handed over in one write: the writer is a `dyn fmt::Write`,
        // and a dynamic call per quote and comma cost more than the copy.
        let mut out = String::with_capacity(128);
        out.push('{');
        let mut visitor = Visitor { out: &mut out, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result?;
        out.push('}');
        writer.write_str(&out)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let out = &mut current.fields;
        // An object written by `format_fields`: reopen it, append, close it again.
        if out.ends_with('}') {
            out.pop();
        } else {
            out.clear();
            out.push('{');
        }
        let first = out.ends_with('{');
        let mut visitor = Visitor { out: &mut *out, first, result: Ok(()) };
        fields.record(&mut visitor);
        let result = visitor.result;
        out.push('}');
        result
    }
}

/// Writes `"name":value` pairs, comma-separated.
struct Visitor<'a, W: Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: Write> Visitor<'_, W> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        let name = field.name();
        // As `JsonFields`: `log.*` fields are the `log` crate's metadata; raw identifiers lose `r#`.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            if !self.first {
                self.out.write_char(',')?;
            }
            self.first = false;
            string(self.out, name)?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl<W: Write> Visit for Visitor<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too.
        self.entry(field, |w| if value.is_finite() { write!(w, "{value:?}") } else { w.write_str("null") });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    // 128-bit integers go through `record_debug`, a string, as with `JsonFields`: a JSON reader
    // would round them to a float.

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| string(w, value));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        // As `serde_json::Value::from(&[u8])`: an array of numbers.
        self.entry(field, |w| {
            w.write_char('[')?;
            for (i, byte) in value.iter().enumerate() {
                if i > 0 {
                    w.write_char(',')?;
                }
                write!(w, "{byte}")?;
            }
            w.write_char(']')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// A JSON string literal.
fn string<W: Write>(w: &mut W, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string (RFC 8259: `"`, `\` and the
/// control characters), passing runs of plain text through in one write.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        // Most field values need no escaping: one branch-free pass (it vectorizes) finds out.
        if !bytes.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\')) {
            return self.0.write_str(s);
        }
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b >= 0x20 && b != b'"' && b != b'\\' {
                continue;
            }
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            // `i` is at an ASCII byte, so both slices end on character boundaries.
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use tracing_subscriber::fmt::format::JsonFields;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::telemetry::captured::Captured;

    /// Logs one line inside nested spans whose fields need every kind of escaping and every
    /// value type, some recorded after the span was made; returns the parsed line.
    fn log_line<N>(fields: N) -> Value
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let buffer = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .fmt_fields(fields)
            .with_writer(buffer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!(
                "http_request",
                method = %"GET",
                path = "/a \"quoted\"\\path\n\twith\u{1}control and ünïcödé ✓",
                r#type = "raw identifier",
                empty = "",
            );
            let _outer = outer.enter();
            let inner = tracing::info_span!(
                "tool_call",
                tool = "jira_find_project",
                big = u64::MAX,
                negative = -42_i64,
                wide = i128::MIN,
                ratio = 0.25_f64,
                nan = f64::NAN,
                yes = true,
                debugged = ?vec!["a\"b", "c"],
                attempts = tracing::field::Empty,
                outcome = tracing::field::Empty,
            );
            inner.record("attempts", 3_u64);
            inner.record("outcome", "success");
            inner.record("attempts", 4_u64);
            let _inner = inner.enter();
            tracing::info!(answer = 42, "inside");
        });
        let text = buffer.text();
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    #[test]
    fn span_fields_are_the_json_that_tracing_subscriber_writes() {
        let ours = log_line(SpanFieldsJson);
        let theirs = log_line(JsonFields::new());
        for line in [&ours, &theirs] {
            assert_eq!(line["message"], "inside");
            assert_eq!(line["answer"], 42);
        }
        assert_eq!(ours["span"], theirs["span"], "current span");
        assert_eq!(ours["spans"], theirs["spans"], "span list");
        let outer = &ours["spans"][0];
        assert_eq!(outer["path"], "/a \"quoted\"\\path\n\twith\u{1}control and ünïcödé ✓");
        assert_eq!(outer["type"], "raw identifier");
        assert_eq!(outer["empty"], "");
        let inner = &ours["span"];
        assert_eq!(inner["big"], json!(u64::MAX));
        assert_eq!(inner["negative"], -42);
        assert_eq!(inner["ratio"], 0.25);
        assert_eq!(inner["nan"], Value::Null);
        assert_eq!(inner["debugged"], r#"["a\"b", "c"]"#);
        assert_eq!(inner["attempts"], 4, "the last recorded value wins");
        assert_eq!(inner["outcome"], "success");
    }

    #[test]
    fn escaping_passes_text_through_and_escapes_what_json_requires() {
        let mut out = String::new();
        string(&mut out, "plain ✓ \u{7f}").expect("write");
        assert_eq!(out, "\"plain ✓ \u{7f}\"");
        let mut out = String::new();
        string(&mut out, "\"\\\n\r\t\u{8}\u{c}\u{0}\u{1f}").expect("write");
        assert_eq!(out, r#""\"\\\n\r\t\b\f\u0000\u001f""#);
        let parsed: String = serde_json::from_str(&out).expect("valid JSON string");
        assert_eq!(parsed, "\"\\\n\r\t\u{8}\u{c}\u{0}\u{1f}");
    }
}
