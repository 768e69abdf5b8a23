//! JSON body templates of custom HTTP tools: a value never changes the body's structure. Keys stay
//! literal, arrays keep their length, a string that is exactly `{p}` becomes the parameter's JSON
//! value (null when absent), any other string stays a string with the values spliced in.

#![no_main]

mod common;

use arbitrary::{Arbitrary, Result, Unstructured};
use integration_webhook::CustomToolDefinition;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const WORDS: [&str; 8] = ["{p0}", "{p1}", "{p2}", "{p3}", "x{p0}y", "{p1}{p2}", "{ p0 }", "{{p3}}"];

#[derive(Debug)]
struct Input {
    template: Value,
    values: Vec<Option<Value>>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let template = common::json(u, 4, &WORDS)?;
        let mut values = Vec::new();
        for _ in 0..4 {
            values.push(if u.arbitrary()? { Some(common::json(u, 3, &WORDS)?) } else { None });
        }
        Ok(Self { template, values })
    }
}

/// The placeholder name when `s` is exactly `{pN}`.
fn sole(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    (inner.len() == 2 && inner.starts_with('p') && inner.as_bytes()[1].is_ascii_digit()).then_some(inner)
}

fn check(template: &Value, out: &Value, params: &Map<String, Value>) {
    match (template, out) {
        (Value::String(s), out) => match sole(s) {
            Some(name) if name.as_bytes()[1] < b'4' => {
                assert_eq!(out, params.get(name).unwrap_or(&Value::Null), "{s} was not replaced by its value")
            }
            _ => assert!(out.is_string(), "{s:?} rendered as {out}"),
        },
        (Value::Array(t), Value::Array(o)) => {
            assert_eq!(t.len(), o.len(), "array length changed");
            t.iter().zip(o).for_each(|(t, o)| check(t, o, params));
        }
        (Value::Object(t), Value::Object(o)) => {
            assert_eq!(t.keys().collect::<Vec<_>>(), o.keys().collect::<Vec<_>>(), "keys changed");
            t.values().zip(o.values()).for_each(|(t, o)| check(t, o, params));
        }
        (t, o) => assert_eq!(t, o, "a literal changed"),
    }
}

fuzz_target!(|input: Input| {
    let props: Map<String, Value> = (0..4).map(|i| (format!("p{i}"), json!({}))).collect();
    let Ok(def) = CustomToolDefinition::parse(&json!({
        "name": "fuzz_tool", "description": "fuzz", "method": "POST", "url": "https://api.example.com/x",
        "body": input.template, "parameters_schema": {"type": "object", "properties": props},
    })) else {
        return;
    };
    let params: Map<String, Value> = input
        .values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.clone().map(|v| (format!("p{i}"), v)))
        .collect();
    let Ok(rendered) = def.render(&Value::Object(params.clone())) else { return };
    let Some(body) = rendered.body else {
        // only a null template is no body at all
        assert!(input.template.is_null(), "a body template rendered no body");
        return;
    };
    check(&input.template, &body, &params);
    let text = serde_json::to_string(&body).expect("serialises");
    let back: Value = serde_json::from_str(&text).expect("the body is valid JSON");
    assert_eq!(back, body);
});
