//! `{param}` templates of custom tools: URL paths (values percent-encoded, so a value can never add
//! a path segment, a query or change the host; a value that is exactly `.` or `..` is refused by the
//! tool, since URL parsing would resolve it whatever its encoding), query values and headers (raw values; the URL
//! encoder and the header check handle them) and JSON bodies (values inserted as JSON, never as
//! text spliced into JSON).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

/// Everything but the RFC 3986 unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Param(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

impl Template {
    /// Parse `text`; `{ident}` is a placeholder, every other character is literal.
    pub(crate) fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) if is_ident(&after[..close]) => {
                    lit.push_str(&rest[..open]);
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Param(after[..close].to_owned()));
                    rest = &after[close + 1..];
                }
                _ => {
                    lit.push_str(&rest[..=open]);
                    rest = after;
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Self { parts }
    }

    /// The placeholder names.
    pub(crate) fn params(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Param(name) => Some(name.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// The single placeholder when the template is exactly `{name}`.
    pub(crate) fn sole_param(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Param(name)] => Some(name),
            _ => None,
        }
    }

    /// Fill the placeholders; each value goes through `encode`.
    pub(crate) fn render(&self, params: &Map<String, Value>, encode: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(text) => out.push_str(text),
                Part::Param(name) => out.push_str(&encode(&value_text(params.get(name)))),
            }
        }
        out
    }
}

/// A parameter as text: strings as is, `null`/absent as empty, anything else as JSON.
pub(crate) fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Percent-encode a path value (every reserved character, `/` included).
pub(crate) fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// Fill a JSON body template: a string that is exactly `{name}` becomes the parameter's JSON value
/// (`null` when absent); other strings get the parameters' text spliced in; keys are literal.
pub(crate) fn render_body(template: &Value, params: &Map<String, Value>) -> Value {
    match template {
        Value::String(s) => {
            let t = Template::parse(s);
            match t.sole_param() {
                Some(name) => params.get(name).cloned().unwrap_or(Value::Null),
                None => Value::String(t.render(params, str::to_owned)),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| render_body(v, params)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), render_body(v, params))).collect())
        }
        other => other.clone(),
    }
}

/// Every placeholder of a body template.
pub(crate) fn body_params(template: &Value, out: &mut Vec<String>) {
    match template {
        Value::String(s) => out.extend(Template::parse(s).params().map(str::to_owned)),
        Value::Array(items) => items.iter().for_each(|v| body_params(v, out)),
        Value::Object(map) => map.values().for_each(|v| body_params(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn url_values_are_percent_encoded() {
        let t = Template::parse("https://status.example.com/api/{component}/x?fixed=1");
        let check = |value: &str, expected: &str| {
            let url = t.render(&params(json!({"component": value})), encode_component);
            assert_eq!(url, format!("https://status.example.com/api/{expected}/x?fixed=1"), "{value}");
            let parsed = url::Url::parse(&url).expect("still a URL");
            assert_eq!(parsed.host_str(), Some("status.example.com"));
            assert_eq!(parsed.query(), Some("fixed=1"));
        };
        check("db", "db");
        check("../../admin", "..%2F..%2Fadmin");
        check("a/b?c=d#e", "a%2Fb%3Fc%3Dd%23e");
        check("@evil.example", "%40evil.example");
        check("x y%20z", "x%20y%2520z");
        check("é\r\n", "%C3%A9%0D%0A");
        check("", "");
        let n = Template::parse("/items/{id}").render(&params(json!({"id": 42})), encode_component);
        assert_eq!(n, "/items/42");
    }

    #[test]
    fn literal_braces_stay_literal() {
        let t = Template::parse("{not a param} {x} {} {1x}");
        assert_eq!(t.params().collect::<Vec<_>>(), vec!["x"]);
        assert_eq!(t.render(&params(json!({"x": "v"})), str::to_owned), "{not a param} v {} {1x}");
    }

    #[test]
    fn body_values_are_json_encoded() {
        let template = json!({"title": "{title}", "text": "Hello {name}!", "n": "{count}", "tags": ["{tag}", 1],
                              "missing": "{nothing}"});
        let hostile = "\", \"admin\": true, \"x\": \"";
        let out = render_body(
            &template,
            &params(json!({"title": hostile, "name": "a\"b\\c\n", "count": 3, "tag": {"k": [1]}})),
        );
        assert_eq!(out["title"], json!(hostile));
        assert_eq!(out["text"], json!("Hello a\"b\\c\n!"));
        assert_eq!(out["n"], json!(3));
        assert_eq!(out["tags"], json!([{"k": [1]}, 1]));
        assert_eq!(out["missing"], Value::Null);
        assert!(out.get("admin").is_none());
        let text = serde_json::to_string(&out).expect("json");
        let back: Value = serde_json::from_str(&text).expect("round trip");
        assert_eq!(back, out);
        let mut names = Vec::new();
        body_params(&template, &mut names);
        names.sort();
        assert_eq!(names, vec!["count", "name", "nothing", "tag", "title"]);
    }
}
