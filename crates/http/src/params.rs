//! Turning a REST request (path parameters, query string, JSON body) into a tool's parameters
//! object. Path and query values arrive as strings; each is coerced to the type the tool's JSON
//! Schema declares for that parameter (`limit=10` becomes the integer 10, `labels=a,b` an array), and
//! the schema validation of the executor then reports anything still wrong.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The JSON types a schema allows for a value, looking through `$ref`, `anyOf` and `oneOf`.
fn allowed_types<'a>(root: &'a Value, schema: &'a Value, depth: u8) -> (Vec<&'a str>, Option<&'a Value>) {
    let mut types = Vec::new();
    let mut items = None;
    if depth > 8 {
        return (types, items);
    }
    // One pass over the members: every `get` hashed its key (SipHash) again, seven per schema
    // and request parameter.
    let Some(schema) = resolve_ref(root, schema).as_object() else {
        return (types, items);
    };
    let (mut has_enum, mut branches) = (false, [None; 3]);
    for (key, value) in schema {
        match (key.as_str(), value) {
            ("type", Value::String(t)) => types.push(t.as_str()),
            ("type", Value::Array(ts)) => types.extend(ts.iter().filter_map(Value::as_str)),
            ("enum", _) => has_enum = true,
            ("items", _) => items = Some(value),
            ("anyOf", Value::Array(b)) => branches[0] = Some(b),
            ("oneOf", Value::Array(b)) => branches[1] = Some(b),
            ("allOf", Value::Array(b)) => branches[2] = Some(b),
            _ => {}
        }
    }
    if has_enum && types.is_empty() {
        types.push("string");
    }
    for branch in branches.into_iter().flatten().flatten() {
        let (t, i) = allowed_types(root, branch, depth + 1);
        types.extend(t);
        items = items.or(i);
    }
    (types, items)
}

fn resolve_ref<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let reference = match schema {
        Value::Object(members) => members.iter().find(|(key, _)| *key == "$ref").map(|(_, v)| v),
        _ => None,
    };
    match reference.and_then(Value::as_str) {
        Some(reference) => {
            reference.strip_prefix('#').and_then(|pointer| root.pointer(pointer)).unwrap_or(schema)
        }
        None => schema,
    }
}

/// Coerce raw string values to the type the property schema asks for. Unknown properties and
/// values that do not parse stay strings, so validation can name them.
pub(crate) fn coerce(root: &Value, property: Option<&Value>, raw: Vec<String>) -> Value {
    let Some(schema) = property else {
        return single_or_array(raw);
    };
    let (types, items) = allowed_types(root, schema, 0);
    if types.contains(&"array") {
        let item_schema = items;
        let values: Vec<String> = if raw.len() == 1 {
            raw[0].split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        } else {
            raw
        };
        return Value::Array(values.into_iter().map(|v| coerce(root, item_schema, vec![v])).collect());
    }
    let Some(value) = raw.into_iter().last() else {
        return Value::Null;
    };
    coerce_scalar(&types, value)
}

fn coerce_scalar(types: &[&str], value: String) -> Value {
    if types.contains(&"integer")
        && let Ok(n) = value.trim().parse::<i64>()
    {
        return Value::from(n);
    }
    if types.contains(&"number")
        && let Some(n) = value.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    if types.contains(&"boolean") {
        match value.trim() {
            "true" | "1" => return Value::Bool(true),
            "false" | "0" => return Value::Bool(false),
            _ => {}
        }
    }
    if types.contains(&"object")
        && !types.contains(&"string")
        && let Ok(v @ Value::Object(_)) = serde_json::from_str(&value)
    {
        return v;
    }
    if types.contains(&"null") && !types.contains(&"string") && value.is_empty() {
        return Value::Null;
    }
    Value::String(value)
}

fn single_or_array(mut raw: Vec<String>) -> Value {
    match raw.len() {
        0 => Value::Null,
        1 => Value::String(raw.remove(0)),
        _ => Value::Array(raw.into_iter().map(Value::String).collect()),
    }
}

/// Parse a query string into repeated values per key, in order.
pub(crate) fn parse_query(query: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            out.entry(k.into_owned()).or_default().push(v.into_owned());
        }
    }
    out
}

/// Merge body, query and path parameters into one object (path wins over query, query over body),
/// coercing strings by the schema.
pub(crate) fn merge(
    schema: &Value,
    body: Map<String, Value>,
    query: &BTreeMap<String, Vec<String>>,
    path: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let props = schema.get("properties");
    let mut params = body;
    for (key, values) in query {
        let prop = props.and_then(|p| p.get(key));
        params.insert(key.clone(), coerce(schema, prop, values.clone()));
    }
    for (key, value) in path {
        let prop = props.and_then(|p| p.get(key));
        params.insert(key.clone(), coerce(schema, prop, vec![value.clone()]));
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "limit": {"type": ["integer", "null"], "format": "uint32"},
                "ratio": {"type": "number"},
                "raw": {"type": "boolean"},
                "labels": {"type": ["array", "null"], "items": {"type": "string"}},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "state": {"$ref": "#/$defs/State"},
                "maybe_state": {"anyOf": [{"$ref": "#/$defs/State"}, {"type": "null"}]},
                "name": {"type": "string"}
            },
            "$defs": {"State": {"type": "string", "enum": ["open", "closed"]}}
        })
    }

    fn check(key: &str, raw: &[&str], expected: Value) {
        let s = schema();
        let got = coerce(&s, s["properties"].get(key), raw.iter().map(|v| v.to_string()).collect());
        assert_eq!(got, expected, "{key}={raw:?}");
    }

    #[test]
    fn coerces_by_schema_type() {
        check("limit", &["10"], json!(10));
        check("limit", &["ten"], json!("ten"));
        check("ratio", &["0.5"], json!(0.5));
        check("raw", &["true"], json!(true));
        check("raw", &["0"], json!(false));
        check("raw", &["maybe"], json!("maybe"));
        check("labels", &["a,b"], json!(["a", "b"]));
        check("labels", &["a", "b,c"], json!(["a", "b,c"]));
        check("ids", &["1,2"], json!([1, 2]));
        check("state", &["open"], json!("open"));
        check("maybe_state", &["closed"], json!("closed"));
        check("name", &["007"], json!("007"));
        check("unknown", &["x"], json!("x"));
        check("unknown", &["x", "y"], json!(["x", "y"]));
    }

    #[test]
    fn allowed_types_read_type_enum_items_and_branches_in_a_fixed_order() {
        let root = schema();
        let types =
            |s: Value| allowed_types(&root, &s, 0).0.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(types(json!({"enum": [1, 2]})), ["string"], "an enum without a type");
        assert_eq!(types(json!({"type": "integer", "enum": [1]})), ["integer"]);
        assert_eq!(types(json!({"$ref": "#/$defs/State"})), ["string"]);
        assert_eq!(types(json!({"$ref": "#/nowhere", "type": "boolean"})), ["boolean"], "a dangling $ref");
        assert!(types(json!(true)).is_empty());
        // Branches are read anyOf, oneOf, allOf whatever the order of the members.
        let branches = json!({
            "allOf": [{"type": "null"}],
            "oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "number"}}],
            "anyOf": [{"type": "array", "items": {"type": "boolean"}}],
        });
        let (found, items) = allowed_types(&root, &branches, 0);
        assert_eq!(found, ["array", "integer", "array", "null"]);
        assert_eq!(items, Some(&json!({"type": "boolean"})), "the first branch with items wins");
        let own_items = json!({"items": {"type": "string"}, "anyOf": [{"items": {"type": "integer"}}]});
        assert_eq!(allowed_types(&root, &own_items, 0).1, Some(&json!({"type": "string"})));
    }

    #[test]
    fn path_beats_query_beats_body() {
        let s = schema();
        let mut body = Map::new();
        body.insert("name".into(), json!("from-body"));
        body.insert("limit".into(), json!(1));
        let query = parse_query(Some("name=from-query&limit=5&labels=x&labels=y"));
        let mut path = BTreeMap::new();
        path.insert("name".to_owned(), "from-path".to_owned());
        let merged = merge(&s, body, &query, &path);
        assert_eq!(merged["name"], "from-path");
        assert_eq!(merged["limit"], 5);
        assert_eq!(merged["labels"], json!(["x", "y"]));
    }
}
