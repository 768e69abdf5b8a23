//! A filter's outputs as `serde_json` values, within the output bounds.
//!
//! jaq's values go straight to `serde_json::Value`: writing them as text and parsing the text
//! again cost ≈ 150k instructions per transformation, built a text of any size before its size
//! was checked, and recursed once per level of a value of any depth.

use jaq_json::{Num, Val};
use serde_json::{Map, Number, Value};

/// The deepest output, in arrays and objects (as deep as `serde_json` parses by default, and as
/// deep as a webhook's body may be).
pub(super) const MAX_DEPTH: usize = 128;

/// Why an output was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutputError {
    /// NaN, an infinity, a byte string or an object key that is not a string.
    NotJson,
    /// Arrays or objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The outputs, as compact JSON, exceed the bound.
    TooLarge,
}

/// `val` as a JSON value, taking its size as compact JSON from `budget`.
pub(super) fn to_json(val: &Val, budget: &mut usize) -> Result<Value, OutputError> {
    convert(val, budget, 0)
}

fn spend(budget: &mut usize, bytes: usize) -> Result<(), OutputError> {
    *budget = budget.checked_sub(bytes).ok_or(OutputError::TooLarge)?;
    Ok(())
}

fn convert(val: &Val, budget: &mut usize, depth: usize) -> Result<Value, OutputError> {
    Ok(match val {
        Val::Null => {
            spend(budget, 4)?;
            Value::Null
        }
        Val::Bool(b) => {
            spend(budget, if *b { 4 } else { 5 })?;
            Value::Bool(*b)
        }
        Val::Num(n) => {
            let n = number(n)?;
            spend(budget, display_len(&n))?;
            Value::Number(n)
        }
        Val::TStr(s) => Value::String(string(s, budget)?),
        Val::BStr(_) => return Err(OutputError::NotJson),
        Val::Arr(items) => {
            if depth >= MAX_DEPTH {
                return Err(OutputError::TooDeep);
            }
            // brackets, and a comma between two items
            spend(budget, 2 + items.len().saturating_sub(1))?;
            let items = items.iter().map(|item| convert(item, budget, depth + 1));
            Value::Array(items.collect::<Result<_, _>>()?)
        }
        Val::Obj(entries) => {
            if depth >= MAX_DEPTH {
                return Err(OutputError::TooDeep);
            }
            // braces, a colon per entry, and a comma between two entries
            spend(budget, 2 + entries.len() + entries.len().saturating_sub(1))?;
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries.iter() {
                let Val::TStr(key) = key else {
                    return Err(OutputError::NotJson);
                };
                let key = string(key, budget)?;
                map.insert(key, convert(value, budget, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

/// The number as `serde_json` reads it from jaq's text: integers as integers while they fit in
/// 64 bits, anything else as a finite `f64`.
fn number(n: &Num) -> Result<Number, OutputError> {
    match n {
        Num::Int(i) => Ok(Number::from(*i as i64)),
        Num::Float(f) => Number::from_f64(*f).ok_or(OutputError::NotJson),
        // rare: big integers and decimals written as literals; read as `serde_json` reads them
        Num::BigInt(_) | Num::Dec(_) => n.to_string().parse().map_err(|_| OutputError::NotJson),
    }
}

/// Text, invalid UTF-8 replaced (as jaq writes it), charged with its quotes and escapes.
fn string(bytes: &[u8], budget: &mut usize) -> Result<String, OutputError> {
    let escaped = |b: &&u8| **b < 0x20 || **b == b'"' || **b == b'\\';
    // most text has nothing to escape: one quick count first
    let escapes = match bytes.iter().filter(escaped).count() {
        0 => 0,
        _ => bytes
            .iter()
            .filter(escaped)
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
                _ => 5,
            })
            .sum(),
    };
    spend(budget, bytes.len() + 2 + escapes)?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Length of `n` as `serde_json` writes it.
fn display_len(n: &Number) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    // writing into a counter cannot fail
    let _ = std::fmt::write(&mut count, format_args!("{n}"));
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unbounded(val: &Val) -> Result<Value, OutputError> {
        let mut budget = usize::MAX;
        to_json(val, &mut budget)
    }

    /// The value jaq reads from `text`.
    fn val(text: &str) -> Val {
        jaq_json::read::parse_single(text.as_bytes()).expect("jaq reads it")
    }

    #[test]
    fn values_convert_and_are_charged_their_compact_size() {
        for text in [
            r#"{"a":[1,-2,2.5,1e-300,null,true,false],"b":{},"c":[],"d":"x\"y\\z\n\u0001é日🦀"}"#,
            "18446744073709551615",
            "-9223372036854775808",
            "[[[]],{\"\":{\"\":0}}]",
        ] {
            let expected: Value = serde_json::from_str(text).expect("JSON");
            let mut budget = usize::MAX;
            assert_eq!(to_json(&val(text), &mut budget), Ok(expected.clone()), "{text}");
            let size = serde_json::to_string(&expected).expect("writes").len();
            assert_eq!(usize::MAX - budget, size, "{text}");
            // exactly enough budget suffices; one byte less does not
            assert!(to_json(&val(text), &mut { size }).is_ok());
            assert_eq!(to_json(&val(text), &mut (size - 1)), Err(OutputError::TooLarge), "{text}");
        }
    }

    #[test]
    fn big_and_decimal_numbers_read_as_serde_json_reads_them() {
        for text in ["100000000000000000000", "1.50", "-123456789012345678901234567890"] {
            let expected: Value = serde_json::from_str(text).expect("JSON");
            assert_eq!(unbounded(&val(text)), Ok(expected), "{text}");
        }
        assert_eq!(unbounded(&val("1e1000")), Err(OutputError::NotJson));
    }

    #[test]
    fn what_json_cannot_hold_is_refused() {
        for text in ["NaN", "Infinity", "[-Infinity]", "{\"a\":[NaN]}", "{1:2}", "b\"bytes\""] {
            assert_eq!(unbounded(&val(text)), Err(OutputError::NotJson), "{text}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(unbounded(&val(&nested(MAX_DEPTH))).is_ok());
        assert_eq!(unbounded(&val(&nested(MAX_DEPTH + 1))), Err(OutputError::TooDeep));
        let objects = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert_eq!(unbounded(&val(&objects)), Err(OutputError::TooDeep));
        // a deeper value is refused at the bound, not walked to its end
        assert_eq!(unbounded(&val(&nested(9_000))), Err(OutputError::TooDeep));
    }

    #[test]
    fn invalid_utf8_is_replaced_as_jaq_writes_it() {
        assert_eq!(unbounded(&Val::utf8_str(b"a\xffb".to_vec())), Ok(json!("a\u{fffd}b")));
    }
}
