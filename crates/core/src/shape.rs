//! The context budget of a tool result: a `fields` projection and a `max_output_bytes` limit,
//! applied by every front door to what a tool returned.
//!
//! [`shape`] is a pure function. It never cuts JSON in the middle: it drops whole array elements
//! (from the end), shortens long strings (at a character boundary) and, as a last resort, object
//! members, and says so. A result that fits is returned unchanged; one that had to be cut comes
//! back as an envelope:
//!
//! ```json
//! {"truncated": true, "result": <what fits>, "omitted": {"items": 40, "strings": 2, "chars": 9120, "members": 0},
//!  "original_bytes": 182311, "max_output_bytes": 65536, "hint": "..."}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The smallest budget honoured: below this even the envelope does not fit.
pub const MIN_OUTPUT_BYTES: usize = 512;

/// A string is never shortened below this many characters unless nothing else helps.
const MIN_STRING_CHARS: usize = 32;

/// A JSON object of `(key, value)` pairs, in this order, the values moved in.
///
/// `serde_json::json!` serializes every value it is given by reference, so a `Vec<Value>` put into
/// it is copied whole and the original then dropped: a list tool's page of upstream objects copied
/// once more (for the harness's Jira search, 8 % of the call's instructions). A later pair replaces
/// an earlier one with the same key, as in `json!`.
pub fn json_object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
}

/// The value at a JSON-pointer path (`/fields/status/name`, `/items/0`) without allocating:
/// `serde_json::Value::pointer` makes two `String`s per segment to undo `~0`/`~1` escapes, which
/// the fixed paths of the providers' trimmed views never have (a segment is taken literally here).
pub fn json_at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.strip_prefix('/')?.split('/').try_fold(value, |target, segment| match target {
        Value::Object(map) => map.get(segment),
        Value::Array(list) => segment.parse::<usize>().ok().and_then(|i| list.get(i)),
        _ => None,
    })
}

/// The shaping options of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputOptions {
    /// Largest serialised result in bytes (`None`: the front door's default).
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
    /// Paths to keep (JSON pointers `/a/b` or dotted `a.b`); empty keeps everything.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// What was left out of a shaped result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Omitted {
    /// Array elements dropped.
    pub items: u64,
    /// Strings shortened.
    pub strings: u64,
    /// Characters cut from those strings.
    pub chars: u64,
    /// Object members dropped.
    pub members: u64,
}

/// Apply `fields` then `max_output_bytes` to a tool result. See the module documentation.
pub fn shape(value: Value, fields: &[String], max_output_bytes: usize) -> Value {
    let value = projected(value, fields);
    let max = max_output_bytes.max(MIN_OUTPUT_BYTES);
    let original = size(&value);
    if original <= max {
        return value;
    }
    truncate(&value, original, max)
}

/// [`shape`], serialized: the JSON text of the shaped result. A result that fits is serialized
/// once (its size is the length of that text), where `shape` and then a serializer would write it
/// twice.
pub fn shape_json(value: Value, fields: &[String], max_output_bytes: usize) -> Vec<u8> {
    let value = projected(value, fields);
    let max = max_output_bytes.max(MIN_OUTPUT_BYTES);
    let text = serde_json::to_vec(&value).unwrap_or_default();
    if text.len() <= max {
        return text;
    }
    serde_json::to_vec(&truncate(&value, text.len(), max)).unwrap_or_default()
}

/// `value` with only the `fields` paths kept (all of it when none are given).
fn projected(value: Value, fields: &[String]) -> Value {
    let paths: Vec<Vec<String>> = fields.iter().map(|f| parse_path(f)).filter(|p| !p.is_empty()).collect();
    if paths.is_empty() { value } else { project(&value, &paths) }
}

/// Parse `/a/b~1c` (JSON pointer) or `a.b` (dotted) into segments.
pub fn parse_path(path: &str) -> Vec<String> {
    let path = path.trim();
    if let Some(pointer) = path.strip_prefix('/') {
        pointer.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect()
    } else {
        path.split('.').filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }
}

/// Keep only the given paths. Arrays are transparent (each element is projected) unless a
/// segment is an index; missing paths are skipped.
fn project(value: &Value, paths: &[Vec<String>]) -> Value {
    if paths.iter().any(Vec::is_empty) {
        return value.clone();
    }
    match value {
        Value::Array(items) => {
            let indexed = paths.iter().all(|p| p[0].parse::<usize>().is_ok());
            if indexed {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let rest: Vec<Vec<String>> = paths
                        .iter()
                        .filter(|p| p[0].parse::<usize>().ok() == Some(i))
                        .map(|p| p[1..].to_vec())
                        .collect();
                    if !rest.is_empty() {
                        out.push(project(item, &rest));
                    }
                }
                Value::Array(out)
            } else {
                Value::Array(items.iter().map(|item| project(item, paths)).collect())
            }
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let rest: Vec<Vec<String>> =
                    paths.iter().filter(|p| &p[0] == key).map(|p| p[1..].to_vec()).collect();
                if !rest.is_empty() {
                    out.insert(key.clone(), project(child, &rest));
                }
            }
            Value::Object(out)
        }
        // A path into a scalar selects nothing below it.
        _ => Value::Null,
    }
}

fn size(value: &Value) -> usize {
    serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX)
}

/// Limits applied to a copy of the value.
#[derive(Debug, Clone, Copy)]
struct Limits {
    items: usize,
    chars: usize,
    members: usize,
}

fn limited(value: &Value, limits: Limits, omitted: &mut Omitted) -> Value {
    match value {
        Value::Array(items) => {
            let keep = items.len().min(limits.items);
            omitted.items += (items.len() - keep) as u64;
            Value::Array(items[..keep].iter().map(|v| limited(v, limits, omitted)).collect())
        }
        Value::Object(map) => {
            let keep = map.len().min(limits.members);
            omitted.members += (map.len() - keep) as u64;
            Value::Object(
                map.iter().take(keep).map(|(k, v)| (k.clone(), limited(v, limits, omitted))).collect(),
            )
        }
        Value::String(s) => {
            let count = s.chars().count();
            if count > limits.chars {
                omitted.strings += 1;
                omitted.chars += (count - limits.chars) as u64;
                let mut cut: String = s.chars().take(limits.chars).collect();
                cut.push('…');
                Value::String(cut)
            } else {
                value.clone()
            }
        }
        _ => value.clone(),
    }
}

fn envelope(result: Value, omitted: Omitted, original: usize, max: usize) -> Value {
    json_object([
        ("truncated", true.into()),
        ("result", result),
        ("omitted", json!(omitted)),
        ("original_bytes", original.into()),
        ("max_output_bytes", max.into()),
        ("hint", "the result was cut to fit max_output_bytes: ask for less (fields, filters, a smaller page) or raise max_output_bytes".into()),
    ])
}

/// The largest array, string and object sizes anywhere in the value.
fn extents(value: &Value, out: &mut Limits) {
    match value {
        Value::Array(items) => {
            out.items = out.items.max(items.len());
            items.iter().for_each(|v| extents(v, out));
        }
        Value::Object(map) => {
            out.members = out.members.max(map.len());
            map.values().for_each(|v| extents(v, out));
        }
        Value::String(s) => out.chars = out.chars.max(s.chars().count()),
        _ => {}
    }
}

/// The largest `x` in `lo..=hi` for which `fits(x)` holds, assuming monotonicity; `None` if even
/// `lo` does not fit.
fn largest(lo: usize, hi: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    if !fits(lo) {
        return None;
    }
    let (mut lo, mut hi) = (lo, hi);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) { lo = mid } else { hi = mid - 1 }
    }
    Some(lo)
}

fn truncate(value: &Value, original: usize, max: usize) -> Value {
    let mut full = Limits { items: 0, chars: 0, members: 0 };
    extents(value, &mut full);
    let attempt = |limits: Limits| {
        let mut omitted = Omitted::default();
        let result = limited(value, limits, &mut omitted);
        envelope(result, omitted, original, max)
    };
    let fits = |limits: Limits| size(&attempt(limits)) <= max;

    // 1. fewer array elements (keeping at least one of each array)
    let with_items = |items| Limits { items, ..full };
    if let Some(items) = largest(1, full.items.max(1), |n| fits(with_items(n))) {
        return attempt(with_items(items));
    }
    // 2. one element per array, shorter strings
    let with_chars = |chars| Limits { items: 1, chars, members: full.members };
    let floor = MIN_STRING_CHARS.min(full.chars);
    if let Some(chars) = largest(floor, full.chars, |n| fits(with_chars(n))) {
        return attempt(with_chars(chars));
    }
    // 3. empty arrays, short strings
    let base = Limits { items: 0, chars: floor, members: full.members };
    if fits(base) {
        return attempt(base);
    }
    // 4. fewer object members
    let with_members = |members| Limits { members, ..base };
    if let Some(members) = largest(0, full.members, |n| fits(with_members(n))) {
        return attempt(with_members(members));
    }
    let omitted = Omitted { members: full.members as u64, ..Omitted::default() };
    envelope(Value::Null, omitted, original, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_object_keeps_the_order_and_moves_the_values() {
        let items = vec![json!({"id": 1, "tags": ["a", "b"]}), json!({"id": 2})];
        let moved = json_object([
            ("count", items.len().into()),
            ("items", Value::Array(items.clone())),
            ("next_cursor", Option::<String>::None.into()),
            ("count", 3.into()),
        ]);
        assert_eq!(moved, json!({"count": 3, "items": items, "next_cursor": null}));
        let keys: Vec<&str> =
            moved.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys, ["count", "items", "next_cursor"]);
    }

    fn fields(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shape_json_is_the_text_of_shape() {
        let big =
            json!({"items": (0..400).map(|i| json!({"n": i, "text": "x".repeat(40)})).collect::<Vec<_>>()});
        for (value, fields, max) in [
            (json!({"a": 1, "b": {"c": "d"}}), fields(&[]), 65_536),
            (json!({"a": 1, "b": {"c": "d"}}), fields(&["b.c"]), 65_536),
            (big.clone(), fields(&[]), 65_536),
            (big.clone(), fields(&[]), 2_048),
            (big, fields(&["/items"]), 600),
        ] {
            let text = shape_json(value.clone(), &fields, max);
            let parsed: Value = serde_json::from_slice(&text).expect("JSON");
            assert_eq!(parsed, shape(value, &fields, max));
            assert!(text.len() <= max.max(MIN_OUTPUT_BYTES), "{} > {max}", text.len());
        }
    }

    #[test]
    fn json_at_agrees_with_serde_json_pointer_on_plain_paths() {
        let v = json!({"a": {"b": [10, {"c": "deep"}], "": "empty key"}, "n": null, "s": "x"});
        for path in [
            "", "/a", "/a/b", "/a/b/0", "/a/b/1/c", "/a/b/2", "/a/b/x", "/a/", "/n", "/n/x", "/s/0", "/z",
            "a",
        ] {
            assert_eq!(json_at(&v, path), v.pointer(path), "{path}");
        }
        assert_eq!(json_at(&v, "/a/b/1/c"), Some(&json!("deep")));
    }

    fn check_projection(input: Value, paths: &[&str], expected: Value) {
        assert_eq!(shape(input, &fields(paths), usize::MAX), expected, "paths {paths:?}");
    }

    #[test]
    fn projection_by_dotted_paths_and_pointers() {
        let issue =
            json!({"key": "ENG-1", "fields": {"summary": "s", "status": {"name": "Open", "id": 3}}, "x": 1});
        check_projection(issue.clone(), &["key"], json!({"key": "ENG-1"}));
        check_projection(
            issue.clone(),
            &["fields.status.name"],
            json!({"fields": {"status": {"name": "Open"}}}),
        );
        check_projection(
            issue.clone(),
            &["/fields/status/name", "key"],
            json!({"key": "ENG-1", "fields": {"status": {"name": "Open"}}}),
        );
        check_projection(issue.clone(), &["missing"], json!({}));
        check_projection(issue.clone(), &[], issue.clone());
        check_projection(json!({"a/b": 1, "c": 2}), &["/a~1b"], json!({"a/b": 1}));
    }

    #[test]
    fn arrays_are_transparent_unless_indexed() {
        let list = json!({"issues": [{"key": "A", "n": 1}, {"key": "B", "n": 2}], "total": 2});
        check_projection(
            list.clone(),
            &["issues.key", "total"],
            json!({"issues": [{"key": "A"}, {"key": "B"}], "total": 2}),
        );
        check_projection(list.clone(), &["/issues/1/key"], json!({"issues": [{"key": "B"}]}));
        check_projection(json!([{"a": 1, "b": 2}]), &["a"], json!([{"a": 1}]));
    }

    #[test]
    fn a_result_that_fits_is_unchanged() {
        let value = json!({"a": "x".repeat(100)});
        assert_eq!(shape(value.clone(), &[], 1000), value);
    }

    #[test]
    fn long_lists_lose_elements_from_the_end_with_counts() {
        let items: Vec<Value> = (0..1000).map(|i| json!({"id": i, "title": format!("item {i}")})).collect();
        let shaped = shape(json!({"items": items, "total": 1000}), &[], 4096);
        assert!(serde_json::to_vec(&shaped).expect("json").len() <= 4096);
        assert_eq!(shaped["truncated"], true);
        let kept = shaped["result"]["items"].as_array().expect("items").len();
        assert!(kept > 10, "kept {kept}");
        assert_eq!(shaped["omitted"]["items"], 1000 - kept as u64);
        assert_eq!(shaped["result"]["items"][0]["id"], 0, "the first elements are kept");
        assert_eq!(shaped["result"]["total"], 1000);
    }

    #[test]
    fn long_strings_are_shortened_at_a_character_boundary() {
        let shaped = shape(json!({"body": "é".repeat(10_000)}), &[], 1024);
        assert_eq!(shaped["truncated"], true);
        let body = shaped["result"]["body"].as_str().expect("string");
        assert!(body.ends_with('…'));
        assert_eq!(shaped["omitted"]["strings"], 1);
        assert_eq!(shaped["omitted"]["chars"], 10_000 - (body.chars().count() as u64 - 1));
        assert!(serde_json::to_vec(&shaped).expect("json").len() <= 1024);
    }

    #[test]
    fn tiny_budgets_are_raised_to_the_minimum() {
        let shaped = shape(json!({"a": "x".repeat(5000)}), &[], 1);
        assert!(serde_json::to_vec(&shaped).expect("json").len() <= MIN_OUTPUT_BYTES);
        assert_eq!(shaped["max_output_bytes"], MIN_OUTPUT_BYTES);
    }

    #[test]
    fn many_members_are_dropped_last() {
        let map: Map<String, Value> = (0..500).map(|i| (format!("key{i:04}"), json!(i))).collect();
        let shaped = shape(Value::Object(map), &[], 1024);
        assert_eq!(shaped["truncated"], true);
        assert!(shaped["omitted"]["members"].as_u64().expect("count") > 0);
        assert!(serde_json::to_vec(&shaped).expect("json").len() <= 1024);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                ".{0,200}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 256, 20, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..30).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z]{1,8}", inner, 0..12)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn output_always_fits_and_is_marked(value in json_value(), max in 512usize..8192) {
                let original = serde_json::to_vec(&value).expect("json").len();
                let shaped = shape(value.clone(), &[], max);
                let len = serde_json::to_vec(&shaped).expect("json").len();
                prop_assert!(len <= max, "{len} > {max}");
                if original <= max {
                    prop_assert_eq!(shaped, value);
                } else {
                    prop_assert_eq!(&shaped["truncated"], &Value::Bool(true));
                }
            }
        }
    }
}
