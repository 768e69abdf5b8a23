//! JSON from bytes, checked as UTF-8 once.

use serde::de::DeserializeOwned;

/// Parse JSON from bytes (an upstream answer, a request body, a cached entry): the bytes are
/// checked as UTF-8 once and parsed as text. `serde_json::from_slice` checks every string of the
/// input on its own, which costs far more on documents of many short strings (23k of a Jira
/// search's 388k instructions; docs/benchmarks.md, twentieth session). Bytes that are not UTF-8
/// are parsed as bytes, so that the error says where, as `from_slice`'s would.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    #[test]
    fn parses_as_from_slice_does() {
        let text = r#"{"a": ["é", "\u00e9", 1.5, null], "b": {"c": "x\"y"}}"#;
        let ours: Value = super::from_slice(text.as_bytes()).expect("valid");
        let theirs: Value = serde_json::from_slice(text.as_bytes()).expect("valid");
        assert_eq!(ours, theirs);
        assert_eq!(ours["a"][0], json!("é"));
        for bad in [&b"{\"a\": \"\xff\"}"[..], b"{\"a\": ", b"[1,]", b"\xef\xbb\xbf{}"] {
            let ours = super::from_slice::<Value>(bad).expect_err("invalid");
            let theirs = serde_json::from_slice::<Value>(bad).expect_err("invalid");
            assert_eq!(ours.to_string(), theirs.to_string(), "{bad:?}");
        }
    }
}
