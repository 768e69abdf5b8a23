//! Helpers shared by the fuzz targets: arbitrary JSON values and header maps.

#![allow(dead_code, reason = "each target uses a part")]

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::{Map, Number, Value};

/// An arbitrary JSON value, at most `depth` levels deep; strings sometimes come from `words`.
pub fn json(u: &mut Unstructured<'_>, depth: u32, words: &[&str]) -> Result<Value> {
    let max = if depth == 0 { 5 } else { 7 };
    Ok(match u.int_in_range(0..=max)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(i64::arbitrary(u)?.into()),
        3 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(u.arbitrary()?),
        5 if !words.is_empty() => Value::String((*u.choose(words)?).to_owned()),
        5 => Value::String(String::new()),
        6 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array((0..n).map(|_| json(u, depth - 1, words)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = if !words.is_empty() && u.arbitrary()? {
                    (*u.choose(words)?).to_owned()
                } else {
                    u.arbitrary()?
                };
                map.insert(key, json(u, depth - 1, words)?);
            }
            Value::Object(map)
        }
    })
}

/// A header map from `pairs`, leaving out names or values `http` refuses.
pub fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) =
            (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(value))
        {
            map.insert(n, v);
        }
    }
    map
}

/// Flip bit `bit` (modulo the length) of `bytes`.
pub fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if !out.is_empty() {
        let i = (bit / 8) % out.len();
        out[i] ^= 1 << (bit % 8);
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Strict hex decoding: only `[0-9a-fA-F]`, an even number of them.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// `text` with its character at `at` (modulo the length) replaced by `c`.
pub fn edit(text: &str, at: usize, c: char) -> String {
    let n = text.chars().count();
    if n == 0 {
        return text.to_owned();
    }
    text.chars().enumerate().map(|(i, old)| if i == at % n { c } else { old }).collect()
}
