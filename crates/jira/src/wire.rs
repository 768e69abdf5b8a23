//! Typed, lenient views of Jira's answers for the hot paths.
//!
//! Parsing a whole answer into a [`serde_json::Value`] builds every avatar URL, `self` link and
//! nested object only for the trimmed models to read a dozen strings out of it. These views deserialize the
//! parts the models read and skip everything else without building it. They are as lenient as
//! the `from_value` readers in [`crate::models`]: a missing field, a `null`, an empty string or a
//! value of an unexpected type reads as absent and never fails the answer.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Consume the rest of a sequence or map without building it.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A non-empty string, or absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub(crate) Option<String>);

/// A string (empty ones too), or absent: the items of `labels`.
struct AnyText(Option<String>);

/// The visitor methods every lenient view shares: its `expecting` text, and the scalars it does not
/// read, which become `$absent`.
macro_rules! scalars_absent {
    ($absent:expr) => {
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($absent)
        }
    };
}

/// Reads a string; anything else is consumed and read as absent.
struct TextVisitor {
    keep_empty: bool,
}

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;
    scalars_absent!(None);
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok((self.keep_empty || !v.is_empty()).then(|| v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok((self.keep_empty || !v.is_empty()).then_some(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor { keep_empty: false }).map(Text)
    }
}

impl<'de> Deserialize<'de> for AnyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor { keep_empty: true }).map(AnyText)
    }
}

/// An object read as `T`, or absent when the value is not an object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Obj<T>(pub(crate) Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            scalars_absent!(Obj(None));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                drain_seq(seq).map(|()| Obj(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// The strings of an array (other items skipped); empty when the value is not an array.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Strings(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            scalars_absent!(Strings::default());
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut out = Vec::new();
                while let Some(AnyText(text)) = seq.next_element::<AnyText>()? {
                    out.extend(text);
                }
                Ok(Strings(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Strings, A::Error> {
                drain_map(map).map(|()| Strings::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Strings, E> {
                Ok(Strings::default())
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// An Atlassian Document Format node as far as [`crate::adf::to_text`] reads it: its type, text,
/// the few `attrs` it prints and its children; marks and every other member are skipped, never
/// built. A description read into a `Value` built a map, its hashed keys and a `String` per member
/// of every node (reading this instead took a Jira search from 404k to 385k instructions;
/// docs/benchmarks.md). As lenient as
/// reading a `Value`: a member of an unexpected type reads as absent, a later duplicate member
/// wins, and no shape of JSON is an error.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) enum AdfNode {
    /// A bare string (Jira Data Center and the v2 API answer plain text).
    Str(String),
    /// An object node.
    Object(Box<AdfElement>),
    /// An array: each item in turn.
    List(Vec<AdfNode>),
    /// A number, a boolean or `null`: no text.
    #[default]
    Other,
}

/// The members of an object node that the text reads.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct AdfElement {
    /// `type` (a string, else absent).
    pub(crate) kind: Option<String>,
    /// `text` of a text node.
    pub(crate) text: Option<String>,
    /// The `attrs` printed.
    pub(crate) attrs: AdfAttrs,
    /// `content`, when it is an array.
    pub(crate) content: Vec<AdfNode>,
}

/// The string `attrs` the text prints (an `attrs` that is not an object has none).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct AdfAttrs {
    pub(crate) text: Option<String>,
    pub(crate) short_name: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) timestamp: Option<String>,
    pub(crate) language: Option<String>,
}

/// A map key's index in a list of names (`None`: a key not read), matched without allocating.
struct KeyIn(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyIn {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIn {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| *name == v))
    }
}

/// Read from an object only: [`AdfElement`] reads `attrs` as an [`Obj`], which makes any other
/// shape absent.
impl<'de> Deserialize<'de> for AdfAttrs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AdfAttrs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AdfAttrs, A::Error> {
                let mut attrs = AdfAttrs::default();
                while let Some(key) =
                    map.next_key_seed(KeyIn(&["text", "shortName", "url", "timestamp", "language"]))?
                {
                    let slot = match key {
                        Some(0) => &mut attrs.text,
                        Some(1) => &mut attrs.short_name,
                        Some(2) => &mut attrs.url,
                        Some(3) => &mut attrs.timestamp,
                        Some(_) => &mut attrs.language,
                        None => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<AnyText>()?.0;
                }
                Ok(attrs)
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for AdfNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AdfNode;
            scalars_absent!(AdfNode::Other);
            fn visit_str<E>(self, v: &str) -> Result<AdfNode, E> {
                Ok(AdfNode::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<AdfNode, E> {
                Ok(AdfNode::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AdfNode, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<AdfNode>()? {
                    items.push(item);
                }
                Ok(AdfNode::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AdfNode, A::Error> {
                let mut element = AdfElement::default();
                while let Some(key) = map.next_key_seed(KeyIn(&["type", "text", "attrs", "content"]))? {
                    match key {
                        Some(0) => element.kind = map.next_value::<AnyText>()?.0,
                        Some(1) => element.text = map.next_value::<AnyText>()?.0,
                        Some(2) => element.attrs = map.next_value::<Obj<AdfAttrs>>()?.0.unwrap_or_default(),
                        // Children only from an array, as over a `Value`.
                        Some(_) => {
                            element.content = match map.next_value()? {
                                AdfNode::List(items) => items,
                                _ => Vec::new(),
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(AdfNode::Object(Box::new(element)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `{"name": ..}` (status category, priority, issue type).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct Named {
    pub(crate) name: Text,
}

/// `{"key": ..}` (project, parent, status category).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct Keyed {
    pub(crate) key: Text,
}

/// A status: its name and category key.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct StatusRef {
    pub(crate) name: Text,
    #[serde(rename = "statusCategory")]
    pub(crate) category: Obj<Keyed>,
}

/// A user reference: display name and account id.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct UserRef {
    #[serde(rename = "displayName")]
    pub(crate) display_name: Text,
    #[serde(rename = "accountId")]
    pub(crate) account_id: Text,
}

/// The objects of an array read as `T` (other items skipped).
fn objects<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(mut seq: A) -> Result<Vec<T>, A::Error> {
    let mut out = Vec::new();
    while let Some(Obj(item)) = seq.next_element::<Obj<T>>()? {
        out.extend(item);
    }
    Ok(out)
}

/// A count: a non-negative integer, or absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count(pub(crate) Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Count, E> {
                Ok(Count(Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Count, E> {
                Ok(Count(u64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_none<E>(self) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Count, E> {
                Ok(Count(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Count, A::Error> {
                drain_seq(seq).map(|()| Count(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
                drain_map(map).map(|()| Count(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One comment, as far as [`crate::models::Comment`] reads it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct CommentBean {
    pub(crate) id: Text,
    pub(crate) author: Obj<UserRef>,
    /// Atlassian Document Format (the v3 API), or plain text (Data Center, the v2 API).
    pub(crate) body: Option<AdfNode>,
    pub(crate) created: Text,
}

/// The `comment` field of an issue. Jira answers a page of comments (`{"comments": [...],
/// "total": 2, "startAt": 0, ...}`); Atlassian's own example answer of "Get issue" shows the bare
/// array instead. Both read; any other value is no comments.
#[derive(Debug, Default)]
pub(crate) struct CommentField {
    /// The comments, oldest first, as the page holds them.
    pub(crate) comments: Vec<CommentBean>,
    /// The page's `total` (all the issue's comments), when it says.
    pub(crate) total: Option<u64>,
}

impl<'de> Deserialize<'de> for CommentField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Page {
            comments: Comments,
            total: Count,
        }
        #[derive(Default)]
        struct Comments(Vec<CommentBean>);
        impl<'de> Deserialize<'de> for Comments {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct List;
                impl<'de> Visitor<'de> for List {
                    type Value = Comments;
                    scalars_absent!(Comments::default());
                    fn visit_str<E>(self, _: &str) -> Result<Comments, E> {
                        Ok(Comments::default())
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Comments, A::Error> {
                        objects(seq).map(Comments)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Comments, A::Error> {
                        drain_map(map).map(|()| Comments::default())
                    }
                }
                deserializer.deserialize_any(List)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommentField;
            scalars_absent!(CommentField::default());
            fn visit_str<E>(self, _: &str) -> Result<CommentField, E> {
                Ok(CommentField::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<CommentField, A::Error> {
                Ok(CommentField { comments: objects(seq)?, total: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CommentField, A::Error> {
                let page = Page::deserialize(MapAccessDeserializer::new(map))?;
                Ok(CommentField { comments: page.comments.0, total: page.total.0 })
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The `fields` of an issue that [`crate::models::Issue`] reads.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct BeanFields {
    pub(crate) summary: Text,
    pub(crate) status: Obj<StatusRef>,
    pub(crate) assignee: Obj<UserRef>,
    pub(crate) reporter: Obj<UserRef>,
    pub(crate) priority: Obj<Named>,
    pub(crate) issuetype: Obj<Named>,
    pub(crate) project: Obj<Keyed>,
    pub(crate) parent: Obj<Keyed>,
    pub(crate) labels: Strings,
    pub(crate) created: Text,
    pub(crate) updated: Text,
    /// Atlassian Document Format, read as far as its plain text needs.
    pub(crate) description: Option<AdfNode>,
    /// The comments (`jira_get_issue` asks for them; searches do not).
    pub(crate) comment: Option<CommentField>,
}

/// An `IssueBean`, as far as [`crate::models::Issue`] reads it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct IssueBean {
    pub(crate) id: Text,
    pub(crate) key: Text,
    pub(crate) fields: Obj<BeanFields>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_types_read_as_absent() {
        let bean: IssueBean = serde_json::from_str(
            r#"{"id": 10001, "key": "", "fields": {
                "summary": {"nested": [1, 2]}, "status": "Done", "assignee": [1, {"a": 2}],
                "labels": ["a", 3, "", {"x": 1}, "b"], "priority": null, "project": {"key": ["X"]},
                "unknown": {"deep": [{"deeper": true}]}, "created": "2026-01-01"
            }}"#,
        )
        .expect("lenient");
        assert_eq!(bean.id, Text(None));
        assert_eq!(bean.key, Text(None));
        let fields = bean.fields.0.expect("fields");
        assert_eq!(fields.summary, Text(None));
        assert!(fields.status.0.is_none());
        assert!(fields.assignee.0.is_none());
        assert!(fields.priority.0.is_none());
        assert_eq!(fields.project.0.expect("project").key, Text(None));
        assert_eq!(fields.labels, Strings(vec!["a".into(), String::new(), "b".into()]));
        assert_eq!(fields.created, Text(Some("2026-01-01".into())));
    }

    #[test]
    fn fields_that_are_not_an_object_read_as_absent() {
        let bean: IssueBean = serde_json::from_str(r#"{"key": "ENG-1", "fields": [1]}"#).expect("lenient");
        assert_eq!(bean.key, Text(Some("ENG-1".into())));
        assert!(bean.fields.0.is_none());
    }

    /// The comments of an issue's `comment` field, as `jira_get_issue` trims them.
    fn comments(fields: &str) -> (Vec<serde_json::Value>, Option<u64>) {
        let bean: IssueBean =
            serde_json::from_str(&format!(r#"{{"key": "ENG-1", "fields": {fields}}}"#)).expect("lenient");
        let field = bean.fields.0.and_then(|f| f.comment).unwrap_or_default();
        let trimmed =
            field.comments.into_iter().map(|c| serde_json::json!(crate::models::Comment::from_bean(c)));
        (trimmed.collect(), field.total)
    }

    #[test]
    fn comments_read_from_a_page_as_jira_answers() {
        let page = r#"{"comment": {"comments": [
                {"id": "10001", "author": {"displayName": "Mia", "accountId": "a1"}, "created": "2026-01-01",
                 "body": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "First"}]}]}},
                {"id": "10002", "body": "plain text from Data Center", "author": "not an object"}
            ], "maxResults": 2, "total": 7, "startAt": 5}}"#;
        let (list, total) = comments(page);
        assert_eq!(total, Some(7));
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["body"], "First");
        assert_eq!(
            (&list[0]["author"], &list[0]["id"]),
            (&serde_json::json!("Mia"), &serde_json::json!("10001"))
        );
        assert_eq!(list[1]["body"], "plain text from Data Center");
        assert!(list[1]["author"].is_null());
        // The typed view trims each comment as the `Value` reader does.
        let page: serde_json::Value = serde_json::from_str(page).expect("json");
        for (raw, typed) in page["comment"]["comments"].as_array().expect("array").iter().zip(&list) {
            assert_eq!(&serde_json::json!(crate::models::Comment::from_value(raw)), typed);
        }
    }

    #[test]
    fn comments_read_from_the_bare_array_of_atlassians_example() {
        let issue: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/get_issue_200.json")).expect("fixture");
        assert!(issue["fields"]["comment"].is_array(), "the example shows the array form");
        let (list, total) = comments(&issue["fields"].to_string());
        assert_eq!(total, None);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["author"], "Mia Krystof");
        assert!(list[0]["body"].as_str().expect("text").starts_with("Lorem ipsum dolor sit amet"));
        assert_eq!(list[0]["created"], "2021-01-17T12:34:00.000+0000");
    }

    #[test]
    fn comments_of_unexpected_shapes_read_as_none() {
        for fields in [
            r#"{"comment": "text"}"#,
            r#"{"comment": 3}"#,
            r#"{"comment": null}"#,
            r#"{"comment": {"comments": {"id": "1"}, "total": "3"}}"#,
            r#"{"comment": {"comments": "x", "total": -1}}"#,
            r#"{"comment": [1, null, "x", [{"id": "9"}]]}"#,
        ] {
            assert_eq!(comments(fields), (vec![], None), "{fields}");
        }
        let (list, total) = comments(r#"{"comment": {"comments": [1, {"id": "5"}, null], "total": 2.5}}"#);
        assert_eq!((list.len(), total), (1, None));
        assert_eq!(list[0]["id"], "5");
        assert_eq!(list[0]["body"], "");
    }

    #[test]
    fn malformed_json_is_still_an_error() {
        assert!(serde_json::from_str::<IssueBean>(r#"{"key": "ENG-1", "fields": {"summary": }"#).is_err());
    }
}

/// The typed view must trim exactly as the `Value` reader does.
#[cfg(test)]
mod same_as_value {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::IssueBean;
    use crate::client::JiraClient;
    use crate::config::JiraConfig;
    use crate::models::Issue;

    fn client() -> JiraClient {
        JiraClient::new(JiraConfig::data_center("https://jira.example.com/", "t").expect("config"))
            .expect("client")
    }

    /// The trimming as it was written over `Value` before the typed view (the oracle).
    fn reference(v: &Value, client: &JiraClient) -> Value {
        let text = |v: &Value, pointer: &str| {
            integration_core::json_at(v, pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let key = text(v, "/key").unwrap_or_default();
        let f = v.get("fields").unwrap_or(&Value::Null);
        let description =
            f.get("description").filter(|d| !d.is_null()).map(crate::adf::to_text).filter(|d| !d.is_empty());
        json!(Issue {
            url: client.browse_url(&key),
            id: text(v, "/id"),
            summary: text(f, "/summary"),
            status: text(f, "/status/name"),
            status_category: text(f, "/status/statusCategory/key"),
            assignee: text(f, "/assignee/displayName"),
            assignee_account_id: text(f, "/assignee/accountId"),
            reporter: text(f, "/reporter/displayName"),
            priority: text(f, "/priority/name"),
            issue_type: text(f, "/issuetype/name"),
            project: text(f, "/project/key"),
            parent: text(f, "/parent/key"),
            labels: f
                .get("labels")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            created: text(f, "/created"),
            updated: text(f, "/updated"),
            description,
            key,
        })
    }

    /// (the oracle's trim, the typed view's trim from the JSON text); `from_value` must agree too.
    fn both(issue: &Value) -> (Value, Value) {
        let client = client();
        let expected = reference(issue, &client);
        let bean: IssueBean = serde_json::from_str(&issue.to_string()).expect("typed view");
        let by_text = json!(Issue::from_bean(bean, &client));
        assert_eq!(json!(Issue::from_value(issue, &client)), by_text, "from a value and from text");
        (expected, by_text)
    }

    #[test]
    fn atlassian_examples() {
        let search: Value =
            serde_json::from_str(include_str!("../tests/fixtures/search_jql_200.json")).expect("fixture");
        let get: Value =
            serde_json::from_str(include_str!("../tests/fixtures/get_issue_200.json")).expect("fixture");
        let issues = search["issues"].as_array().expect("issues").iter().chain([&get]);
        for issue in issues {
            let (by_value, by_bean) = both(issue);
            assert_eq!(by_value, by_bean);
            assert!(by_value["key"].as_str().is_some_and(|k| !k.is_empty()), "{by_value}");
        }
    }

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,3}".prop_map(Value::from),
            prop::sample::select(&["text", "paragraph", "mention", "bulletList"][..]).prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("name".to_owned()),
                        Just("key".to_owned()),
                        Just("displayName".to_owned()),
                        Just("accountId".to_owned()),
                        Just("statusCategory".to_owned()),
                        Just("type".to_owned()),
                        Just("content".to_owned()),
                        Just("text".to_owned()),
                        "[a-z]{1,3}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_shape_trims_the_same(
            id in any_json(), key in any_json(), summary in any_json(), status in any_json(),
            assignee in any_json(), reporter in any_json(), priority in any_json(), project in any_json(),
            labels in any_json(), created in any_json(), extra in any_json(), description in any_json(),
        ) {
            let issue = json!({
                "id": id, "key": key, "expand": extra.clone(),
                "fields": {
                    "summary": summary, "status": status, "assignee": assignee, "reporter": reporter,
                    "priority": priority, "issuetype": priority.clone(), "project": project,
                    "parent": key.clone(), "labels": labels, "created": created, "updated": extra.clone(),
                    "customfield_10000": extra, "description": description,
                }
            });
            let (by_value, by_bean) = both(&issue);
            prop_assert_eq!(by_value, by_bean);
        }
    }
}
