//! Taking a connection's secrets out of an error before anyone sees it.
//!
//! Error messages and details carry the upstream's own words, and some upstreams (gateways, proxies,
//! misbehaving APIs) echo the credential they were sent: `token xoxb-… is invalid`, or the whole
//! `Authorization: Basic …` header. [`IntegrationError::redact_secrets`] replaces every secret value of
//! the connection, and the base64 text it becomes inside a Basic header or any other base64 blob, with
//! `[REDACTED]`. The executor applies it to every failed call and the connection checks to their
//! failures, so no front door, log line, audit row or bus event repeats an echoed credential.

use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::connection::Connection;
use crate::error::IntegrationError;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are left alone: replacing a two-letter value everywhere would garble
/// messages without protecting anything worth protecting.
const MIN_SECRET_LEN: usize = 6;

impl IntegrationError {
    /// Replace every secret value of `connection` (and its base64 forms) in the message and the
    /// details with `[REDACTED]`. Cheap when nothing matches.
    pub fn redact_secrets(self, connection: &Connection) -> Self {
        let patterns = patterns(connection);
        if patterns.is_empty() {
            return self;
        }
        let message = redact_text(self.message(), &patterns);
        let details = self.details().cloned().map(|mut d| {
            redact_value(&mut d, &patterns);
            d
        });
        let mut out = self.with_message(message);
        if let Some(details) = details {
            out = out.with_details(details);
        }
        out
    }
}

/// The texts to replace: each secret, then the parts of its base64 encodings (standard and URL-safe,
/// at the three alignments it can have inside a longer encoded text, e.g. `user:token`) that depend
/// on the secret's bytes only. Longest first, so a longer match is not cut by a shorter one.
fn patterns(connection: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for secret in connection.secrets.values() {
        let secret = secret.expose_secret();
        if secret.len() < MIN_SECRET_LEN {
            continue;
        }
        out.push(secret.to_owned());
        for offset in 0..3usize {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(secret.as_bytes());
            let first = usize::from(offset > 0);
            let end = bytes.len() / 3;
            if end <= first {
                continue;
            }
            for url_safe in [false, true] {
                let encoded = base64(&bytes, url_safe);
                out.push(encoded[4 * first..4 * end].to_owned());
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out.dedup();
    out
}

fn redact_text(text: &str, patterns: &[String]) -> String {
    let mut out = text.to_owned();
    for pattern in patterns {
        if out.contains(pattern.as_str()) {
            out = out.replace(pattern.as_str(), REDACTED);
        }
    }
    out
}

fn redact_value(value: &mut Value, patterns: &[String]) {
    match value {
        Value::String(s) => {
            if patterns.iter().any(|p| s.contains(p.as_str())) {
                *s = redact_text(s, patterns);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, patterns)),
        Value::Object(map) => map.values_mut().for_each(|v| redact_value(v, patterns)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Base64 without padding (the padding depends on what follows the secret, so it is never part of
/// a pattern).
fn base64(bytes: &[u8], url_safe: bool) -> String {
    const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let alphabet = if url_safe { URL_SAFE } else { STANDARD };
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    const TOKEN: &str = "tok-9f8e7d6c5b4a";

    fn connection() -> Connection {
        Connection::new("jira", "jira", json!({"username": "bot@example.com"}))
            .with_secret("api_token", TOKEN)
            .with_secret("short", "abc")
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes(), false), encoded);
        }
        assert_eq!(base64(&[0xfb, 0xff], false), "+/8");
        assert_eq!(base64(&[0xfb, 0xff], true), "-_8");
    }

    #[test]
    fn echoed_secrets_and_basic_headers_are_redacted() {
        // what `Authorization: Basic` carries for the connection, at every alignment of the token
        let basics: Vec<String> = ["bot@example.com:", "b:", "bo:"]
            .iter()
            .map(|user| base64(format!("{user}{TOKEN}").as_bytes(), false))
            .collect();
        let message = format!("token {TOKEN} refused; Authorization: Basic {}", basics[0]);
        let error = IntegrationError::new(ErrorKind::Authentication, "jira", message)
            .with_details(json!({"errors": {"auth": TOKEN}, "echo": basics, "n": 1, "short": "abc"}));
        let redacted = error.redact_secrets(&connection());
        let shown = format!("{} {}", redacted.message(), redacted.details().cloned().unwrap_or_default());
        assert!(!shown.contains(TOKEN), "{shown}");
        for basic in &basics {
            assert!(!shown.contains(basic.as_str()), "{shown}");
            // nothing longer than the edge characters of the encoding is left of the token
            assert!(shown.contains(&basic[..4]), "the user part stays readable: {shown}");
        }
        assert!(shown.contains("token [REDACTED] refused"), "{shown}");
        assert_eq!(redacted.details().map(|d| d["errors"]["auth"].clone()), Some(json!(REDACTED)));
        assert_eq!(redacted.details().map(|d| d["n"].clone()), Some(json!(1)), "other values are kept");
        assert_eq!(
            redacted.details().map(|d| d["short"].clone()),
            Some(json!("abc")),
            "short secrets are kept"
        );
        assert_eq!(redacted.kind(), &ErrorKind::Authentication);
    }

    #[test]
    fn an_error_without_secrets_is_unchanged() {
        let error =
            IntegrationError::not_found("jira", "no project ENG").with_details(json!({"status": 404}));
        let same = error.clone().redact_secrets(&connection());
        assert_eq!(same.message(), error.message());
        assert_eq!(same.details(), error.details());
        assert_eq!(same.effect(), error.effect());
    }
}
