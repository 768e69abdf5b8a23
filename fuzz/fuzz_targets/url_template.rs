//! URL templates of custom HTTP tools: when only the parameter values vary, the request goes to
//! the same scheme, host and port, with the same number of path segments and the same query
//! parameters; a value never adds, removes or rewrites a segment, a query parameter or the host.

#![no_main]

use arbitrary::Arbitrary;
use integration_webhook::CustomToolDefinition;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const BASES: [&str; 4] =
    ["https://api.example.com/", "http://10.0.0.1:8080/v1/", "https://h.example/a/b/", "https://x.example"];

#[derive(Arbitrary, Debug)]
enum Piece {
    Lit(String),
    Param(u8),
    Slash,
    Query,
}

#[derive(Arbitrary, Debug)]
struct Input {
    base: u8,
    pieces: Vec<Piece>,
    query: Vec<(String, u8)>,
    values: [String; 4],
    numbers: Option<[i64; 4]>,
}

fn definition(url: String, query: &[(String, u8)]) -> Option<CustomToolDefinition> {
    let props: Map<String, Value> = (0..4).map(|i| (format!("p{i}"), json!({}))).collect();
    let query: Map<String, Value> =
        query.iter().take(4).map(|(k, p)| (k.clone(), Value::String(format!("{{p{}}}", p % 4)))).collect();
    CustomToolDefinition::parse(&json!({
        "name": "fuzz_tool", "description": "fuzz", "method": "GET", "url": url, "query": query,
        "parameters_schema": {"type": "object", "properties": props},
    }))
    .ok()
}

fn params(values: impl Iterator<Item = Value>) -> Value {
    Value::Object(values.enumerate().map(|(i, v)| (format!("p{i}"), v)).collect())
}

fuzz_target!(|input: Input| {
    let mut url = BASES[usize::from(input.base) % BASES.len()].to_owned();
    for piece in input.pieces.iter().take(12) {
        match piece {
            Piece::Lit(s) => url.push_str(s),
            Piece::Param(p) => url.push_str(&format!("{{p{}}}", p % 4)),
            Piece::Slash => url.push('/'),
            Piece::Query => url.push_str(if url.contains('?') { "&q=" } else { "?q=" }),
        }
    }
    let Some(def) = definition(url, &input.query) else { return };
    // The reference: every value a plain word.
    let Ok(reference) = def.render(&params((0..4).map(|_| json!("x")))) else { return };
    let values: Vec<Value> = match input.numbers {
        Some(n) => n.iter().map(|v| json!(v)).collect(),
        None => input.values.iter().map(|v| json!(v)).collect(),
    };
    let rendered = match def.render(&params(values.into_iter())) {
        Ok(r) => r,
        Err(e) => {
            // A value may be refused (a header or URL it cannot be part of), never panic.
            let _ = e.to_string();
            return;
        }
    };
    let (a, b) = (&reference.url, &rendered.url);
    assert_eq!(a.scheme(), b.scheme(), "{b}");
    assert_eq!(a.host_str(), b.host_str(), "host changed: {a} -> {b}");
    assert_eq!(a.port_or_known_default(), b.port_or_known_default(), "{b}");
    assert_eq!(b.username(), "", "{b}");
    assert_eq!(b.password(), None, "{b}");
    let segments = |u: &url::Url| u.path_segments().map(|s| s.count()).unwrap_or(0);
    assert_eq!(segments(a), segments(b), "path segments changed: {a} -> {b}");
    // A value never adds a query piece or an `=` (it may empty a piece it fills on its own).
    let count = |u: &url::Url, c: char| {
        u.query().map_or(0, |q| q.split('&').filter(|p| !p.is_empty() && (c == '&' || p.contains(c))).count())
    };
    assert!(count(b, '&') <= count(a, '&'), "query pieces added: {a} -> {b}");
    assert!(count(b, '=') <= count(a, '='), "query pairs added: {a} -> {b}");
    assert_eq!(a.fragment().is_some(), b.fragment().is_some(), "fragment changed: {a} -> {b}");
});
