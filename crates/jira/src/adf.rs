//! Atlassian Document Format (ADF): Jira v3 takes descriptions and comments only as ADF documents.
//!
//! [`from_markdown`] turns plain text or simple Markdown (paragraphs, `#` headings, `-`/`*` bullet
//! lists, `1.` ordered lists, fenced code blocks, `` `code` `` and `**strong**`) into a document;
//! [`to_text`] flattens a document back to plain text for results. [`TextOrAdf`] is the parameter
//! type: a string is converted, an object is passed through as ADF.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::wire::AdfNode;

/// A description or comment parameter: text (Markdown allowed) or a ready ADF document.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TextOrAdf {
    /// Plain text or simple Markdown.
    Text(String),
    /// An ADF document (`{"type": "doc", "version": 1, "content": [..]}`), passed through.
    Adf(serde_json::Map<String, Value>),
}

impl TextOrAdf {
    /// The ADF document. An object that is not a `doc` node is an error message.
    pub fn to_adf(&self) -> Result<Value, String> {
        match self {
            TextOrAdf::Text(text) => Ok(from_markdown(text)),
            TextOrAdf::Adf(doc) => {
                if doc.get("type").and_then(Value::as_str) != Some("doc") {
                    return Err("an ADF document must be an object with \"type\": \"doc\"".to_owned());
                }
                let mut doc = doc.clone();
                doc.entry("version").or_insert(json!(1));
                doc.entry("content").or_insert(json!([]));
                Ok(Value::Object(doc))
            }
        }
    }
}

/// Convert plain text / simple Markdown to an ADF document.
pub fn from_markdown(text: &str) -> Value {
    let mut blocks: Vec<Value> = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut list: Option<(bool, Vec<Value>)> = None; // (ordered, items)
    let mut lines = text.lines();

    fn flush_paragraph(paragraph: &mut Vec<&str>, blocks: &mut Vec<Value>) {
        if paragraph.is_empty() {
            return;
        }
        let mut content = Vec::new();
        for (i, line) in paragraph.iter().enumerate() {
            if i > 0 {
                content.push(json!({"type": "hardBreak"}));
            }
            content.extend(inline(line));
        }
        blocks.push(json!({"type": "paragraph", "content": content}));
        paragraph.clear();
    }
    fn flush_list(list: &mut Option<(bool, Vec<Value>)>, blocks: &mut Vec<Value>) {
        if let Some((ordered, items)) = list.take() {
            let kind = if ordered { "orderedList" } else { "bulletList" };
            blocks.push(json!({"type": kind, "content": items}));
        }
    }

    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            flush_paragraph(&mut paragraph, &mut blocks);
            flush_list(&mut list, &mut blocks);
            let mut code = Vec::new();
            for code_line in lines.by_ref() {
                if code_line.trim_start().starts_with("```") {
                    break;
                }
                code.push(code_line);
            }
            let mut node = json!({"type": "codeBlock", "content": []});
            let code = code.join("\n");
            if !code.is_empty() {
                node["content"] = json!([{"type": "text", "text": code}]);
            }
            let lang = lang.trim();
            if !lang.is_empty() {
                node["attrs"] = json!({"language": lang});
            }
            blocks.push(node);
            continue;
        }
        if trimmed.is_empty() {
            flush_paragraph(&mut paragraph, &mut blocks);
            flush_list(&mut list, &mut blocks);
            continue;
        }
        if let Some((level, heading)) = heading(trimmed) {
            flush_paragraph(&mut paragraph, &mut blocks);
            flush_list(&mut list, &mut blocks);
            blocks.push(json!({"type": "heading", "attrs": {"level": level}, "content": inline(heading)}));
            continue;
        }
        if let Some((ordered, item)) = list_item(trimmed) {
            flush_paragraph(&mut paragraph, &mut blocks);
            if list.as_ref().is_some_and(|(o, _)| *o != ordered) {
                flush_list(&mut list, &mut blocks);
            }
            let node =
                json!({"type": "listItem", "content": [{"type": "paragraph", "content": inline(item)}]});
            list.get_or_insert_with(|| (ordered, Vec::new())).1.push(node);
            continue;
        }
        flush_list(&mut list, &mut blocks);
        paragraph.push(line);
    }
    flush_paragraph(&mut paragraph, &mut blocks);
    flush_list(&mut list, &mut blocks);
    json!({"type": "doc", "version": 1, "content": blocks})
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if (1..=6).contains(&level) {
        line[level..].strip_prefix(' ').map(|rest| (level, rest.trim()))
    } else {
        None
    }
}

fn list_item(line: &str) -> Option<(bool, &str)> {
    if let Some(rest) = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
        return Some((false, rest));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits <= 9 {
        return line[digits..].strip_prefix(". ").map(|rest| (true, rest));
    }
    None
}

/// Text nodes for one line: `` `code` `` and `**strong**` become marks; everything else is text.
fn inline(line: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = line;
    let push_text = |out: &mut Vec<Value>, text: &str, mark: Option<&str>| {
        if text.is_empty() {
            return;
        }
        let mut node = json!({"type": "text", "text": text});
        if let Some(mark) = mark {
            node["marks"] = json!([{"type": mark}]);
        }
        out.push(node);
    };
    while !rest.is_empty() {
        let code = rest.find('`');
        let strong = rest.find("**");
        let next = match (code, strong) {
            (Some(c), Some(s)) if s < c => Some((s, "**", "strong")),
            (Some(c), _) => Some((c, "`", "code")),
            (None, Some(s)) => Some((s, "**", "strong")),
            (None, None) => None,
        };
        let Some((start, delim, mark)) = next else {
            push_text(&mut out, rest, None);
            break;
        };
        let after = &rest[start + delim.len()..];
        match after.find(delim) {
            Some(end) if end > 0 => {
                push_text(&mut out, &rest[..start], None);
                push_text(&mut out, &after[..end], Some(mark));
                rest = &after[end + delim.len()..];
            }
            _ => {
                // An unmatched delimiter is plain text.
                push_text(&mut out, &rest[..start + delim.len()], None);
                rest = after;
            }
        }
    }
    merge_text(out)
}

/// Join neighbouring unmarked text nodes (left over from unmatched delimiters).
fn merge_text(nodes: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for node in nodes {
        let plain = node.get("marks").is_none();
        if plain
            && let Some(last) = out.last_mut()
            && last.get("marks").is_none()
            && let (Some(a), Some(b)) = (last["text"].as_str(), node["text"].as_str())
        {
            last["text"] = Value::String(format!("{a}{b}"));
            continue;
        }
        out.push(node);
    }
    out
}

/// Flatten an ADF document (or any ADF node) to plain text. A string is returned as is (Jira Data
/// Center and the v2 API answer plain strings).
pub fn to_text(node: &Value) -> String {
    // Reading a `Value` as an `AdfNode` cannot fail: every shape of JSON is a node.
    AdfNode::deserialize(node).map(|node| node.to_text()).unwrap_or_default()
}

/// The text writer over the typed view of a node ([`crate::wire::AdfNode`]): answers' descriptions
/// are read straight into it, never into a `Value`.
impl AdfNode {
    /// The plain text of this node (see [`to_text`]).
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.trim_end().to_owned()
    }

    fn kind(&self) -> Option<&str> {
        match self {
            AdfNode::Object(element) => element.kind.as_deref(),
            _ => None,
        }
    }

    fn write(&self, out: &mut String, depth: usize) {
        let element = match self {
            AdfNode::Str(s) => return out.push_str(s),
            AdfNode::List(items) => return items.iter().for_each(|c| c.write(out, depth)),
            AdfNode::Other => return,
            AdfNode::Object(element) => element,
        };
        let kind = element.kind.as_deref().unwrap_or_default();
        let children = element.content.as_slice();
        let attrs = &element.attrs;
        match kind {
            "text" => out.push_str(element.text.as_deref().unwrap_or_default()),
            "hardBreak" => out.push('\n'),
            "mention" => out.push_str(attrs.text.as_deref().unwrap_or("@someone")),
            "emoji" => {
                out.push_str(attrs.text.as_deref().or(attrs.short_name.as_deref()).unwrap_or_default())
            }
            "inlineCard" | "blockCard" | "embedCard" => {
                out.push_str(attrs.url.as_deref().unwrap_or_default())
            }
            "date" => out.push_str(attrs.timestamp.as_deref().unwrap_or_default()),
            "status" => out.push_str(attrs.text.as_deref().unwrap_or_default()),
            "rule" => out.push_str("---\n\n"),
            "codeBlock" => {
                out.push_str("```");
                out.push_str(attrs.language.as_deref().unwrap_or_default());
                out.push('\n');
                children.iter().for_each(|c| c.write(out, depth));
                out.push_str("\n```\n\n");
            }
            "bulletList" | "orderedList" => {
                for (i, item) in children.iter().enumerate() {
                    out.push_str(&"  ".repeat(depth));
                    if kind == "orderedList" {
                        out.push_str(&format!("{}. ", i + 1));
                    } else {
                        out.push_str("- ");
                    }
                    let mut inner = String::new();
                    item.write(&mut inner, depth + 1);
                    out.push_str(inner.trim_end());
                    out.push('\n');
                }
                if depth == 0 {
                    out.push('\n');
                }
            }
            "listItem" => {
                for child in children {
                    let mut inner = String::new();
                    child.write(&mut inner, depth);
                    if matches!(child.kind(), Some("bulletList" | "orderedList")) {
                        out.push('\n');
                    }
                    out.push_str(inner.trim_end());
                }
            }
            "paragraph" | "heading" | "blockquote" | "panel" | "table" | "tableRow" | "doc"
            | "mediaGroup" | "mediaSingle" | "expand" | "nestedExpand" | "tableCell" | "tableHeader" => {
                let mut inner = String::new();
                children.iter().for_each(|c| c.write(&mut inner, depth));
                if kind == "doc" || kind == "tableRow" || kind == "tableCell" || kind == "tableHeader" {
                    out.push_str(&inner);
                    if kind != "doc" {
                        out.push(' ');
                    }
                } else {
                    out.push_str(inner.trim_end());
                    out.push_str("\n\n");
                }
            }
            _ => children.iter().for_each(|c| c.write(out, depth)),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `to_text` as it was written over `Value`, before the typed view (the oracle).
    fn reference(node: &Value) -> String {
        let mut out = String::new();
        reference_node(node, &mut out, 0);
        out.trim_end().to_owned()
    }

    fn reference_node(node: &Value, out: &mut String, depth: usize) {
        match node {
            Value::String(s) => out.push_str(s),
            Value::Object(obj) => {
                let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
                let children = obj.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                let attr = |name: &str| obj.get("attrs").and_then(|a| a.get(name)).and_then(Value::as_str);
                match kind {
                    "text" => out.push_str(obj.get("text").and_then(Value::as_str).unwrap_or_default()),
                    "hardBreak" => out.push('\n'),
                    "mention" => out.push_str(attr("text").unwrap_or("@someone")),
                    "emoji" => out.push_str(attr("text").or(attr("shortName")).unwrap_or_default()),
                    "inlineCard" | "blockCard" | "embedCard" => out.push_str(attr("url").unwrap_or_default()),
                    "date" => out.push_str(attr("timestamp").unwrap_or_default()),
                    "status" => out.push_str(attr("text").unwrap_or_default()),
                    "rule" => out.push_str("---\n\n"),
                    "codeBlock" => {
                        out.push_str("```");
                        out.push_str(attr("language").unwrap_or_default());
                        out.push('\n');
                        children.iter().for_each(|c| reference_node(c, out, depth));
                        out.push_str("\n```\n\n");
                    }
                    "bulletList" | "orderedList" => {
                        for (i, item) in children.iter().enumerate() {
                            out.push_str(&"  ".repeat(depth));
                            if kind == "orderedList" {
                                out.push_str(&format!("{}. ", i + 1));
                            } else {
                                out.push_str("- ");
                            }
                            let mut inner = String::new();
                            reference_node(item, &mut inner, depth + 1);
                            out.push_str(inner.trim_end());
                            out.push('\n');
                        }
                        if depth == 0 {
                            out.push('\n');
                        }
                    }
                    "listItem" => {
                        for child in children {
                            let mut inner = String::new();
                            reference_node(child, &mut inner, depth);
                            let inner = inner.trim_end();
                            if matches!(
                                child.get("type").and_then(Value::as_str),
                                Some("bulletList" | "orderedList")
                            ) {
                                out.push('\n');
                            }
                            out.push_str(inner);
                        }
                    }
                    "paragraph" | "heading" | "blockquote" | "panel" | "table" | "tableRow" | "doc"
                    | "mediaGroup" | "mediaSingle" | "expand" | "nestedExpand" | "tableCell"
                    | "tableHeader" => {
                        let mut inner = String::new();
                        children.iter().for_each(|c| reference_node(c, &mut inner, depth));
                        if kind == "doc" || kind == "tableRow" || kind == "tableCell" || kind == "tableHeader"
                        {
                            out.push_str(&inner);
                            if kind != "doc" {
                                out.push(' ');
                            }
                        } else {
                            out.push_str(inner.trim_end());
                            out.push_str("\n\n");
                        }
                    }
                    _ => children.iter().for_each(|c| reference_node(c, out, depth)),
                }
            }
            Value::Array(items) => items.iter().for_each(|c| reference_node(c, out, depth)),
            _ => {}
        }
    }

    /// ADF-shaped JSON: objects with ADF's member names and node types, and any other shape too.
    fn adf_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z ]{0,4}".prop_map(Value::from),
            prop::sample::select(KINDS).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
                prop::collection::vec((prop::sample::select(MEMBERS), inner), 0..6).prop_map(|members| {
                    // A JSON text may repeat a member: the later one wins, as in a `Value`.
                    let mut object = serde_json::Map::new();
                    for (key, value) in members {
                        object.insert(key.to_owned(), value);
                    }
                    Value::Object(object)
                }),
            ]
        })
    }

    const KINDS: &[&str] = &[
        "doc",
        "paragraph",
        "text",
        "hardBreak",
        "mention",
        "emoji",
        "inlineCard",
        "date",
        "status",
        "rule",
        "codeBlock",
        "bulletList",
        "orderedList",
        "listItem",
        "heading",
        "table",
        "tableRow",
        "tableCell",
        "tableHeader",
        "panel",
        "mediaSingle",
        "unknownNode",
    ];
    const MEMBERS: &[&str] = &[
        "type",
        "type",
        "content",
        "content",
        "text",
        "attrs",
        "marks",
        "shortName",
        "url",
        "timestamp",
        "language",
        "version",
    ];

    proptest! {
        #[test]
        fn the_typed_view_flattens_as_the_value_reader(node in adf_json()) {
            let expected = reference(&node);
            prop_assert_eq!(to_text(&node), expected.clone(), "from a value");
            let typed: AdfNode = serde_json::from_str(&node.to_string()).expect("any JSON is a node");
            prop_assert_eq!(typed.to_text(), expected, "from the JSON text");
        }
    }

    #[test]
    fn duplicate_members_keep_the_last_and_odd_types_read_as_absent() {
        let text = r#"{"type": "paragraph", "content": [
            {"type": 5, "text": "not a text node", "content": [{"type": "text", "text": "child"}]},
            {"type": "text", "text": "a", "text": "b"},
            {"type": "mention", "attrs": ["x"]},
            {"type": "emoji", "attrs": {"text": 1, "shortName": ":ok:"}},
            {"type": "codeBlock", "attrs": {"language": "rust"}, "content": {"type": "text", "text": "dropped"}}
        ]}"#;
        let node: AdfNode = serde_json::from_str(text).expect("node");
        assert_eq!(node.to_text(), "childb@someone:ok:```rust\n\n```");
        let value: Value = serde_json::from_str(text).expect("value");
        assert_eq!(reference(&value), node.to_text());
        assert!(
            serde_json::from_str::<AdfNode>(r#"{"type": "doc", "content": [}"#).is_err(),
            "malformed JSON"
        );
    }

    #[test]
    fn plain_text_becomes_paragraphs_with_breaks() {
        let doc = from_markdown("Hello\nworld\n\nSecond");
        assert_eq!(
            doc,
            json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "Hello"}, {"type": "hardBreak"}, {"type": "text", "text": "world"}]},
                {"type": "paragraph", "content": [{"type": "text", "text": "Second"}]}
            ]})
        );
        assert_eq!(to_text(&doc), "Hello\nworld\n\nSecond");
    }

    #[test]
    fn markdown_lists_code_and_marks() {
        let md = "# Title\nIntro with `code` and **bold**\n- one\n- two\n\n1. first\n2. second\n```rust\nfn main() {}\n```\nend";
        let doc = from_markdown(md);
        let kinds: Vec<&str> =
            doc["content"].as_array().expect("content").iter().filter_map(|b| b["type"].as_str()).collect();
        assert_eq!(kinds, ["heading", "paragraph", "bulletList", "orderedList", "codeBlock", "paragraph"]);
        assert_eq!(
            doc["content"][1]["content"][1],
            json!({"type": "text", "text": "code", "marks": [{"type": "code"}]})
        );
        assert_eq!(doc["content"][4]["attrs"]["language"], "rust");
        assert_eq!(
            to_text(&doc),
            "Title\n\nIntro with code and bold\n\n- one\n- two\n\n1. first\n2. second\n\n```rust\nfn main() {}\n```\n\nend"
        );
    }

    #[test]
    fn unmatched_delimiters_stay_text() {
        let doc = from_markdown("a ` b ** c");
        assert_eq!(doc["content"][0]["content"], json!([{"type": "text", "text": "a ` b ** c"}]));
        assert_eq!(from_markdown("")["content"], json!([]));
    }

    #[test]
    fn adf_passes_through_and_strings_flatten() {
        let given: TextOrAdf =
            serde_json::from_value(json!({"type": "doc", "version": 1, "content": []})).expect("adf");
        assert_eq!(given.to_adf().expect("doc")["type"], "doc");
        let bad: TextOrAdf = serde_json::from_value(json!({"type": "paragraph"})).expect("object");
        assert!(bad.to_adf().is_err());
        assert_eq!(to_text(&json!("plain")), "plain");
        let fixture = json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
            {"type": "text", "text": "Hi "}, {"type": "mention", "attrs": {"id": "1", "text": "@Mia"}}]}]});
        assert_eq!(to_text(&fixture), "Hi @Mia");
    }
}
