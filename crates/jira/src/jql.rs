//! JQL built from structured filters, never by pasting values into a query string.
//!
//! The specification builds `f"{k} = {v}"`, so `status = "Done OR project = SECRET"` would widen the
//! search. Here every value is a JQL string literal ([`quote`]): wrapped in double quotes, with `"`,
//! `\` and control characters escaped exactly as Jira's own `JqlStringSupport` escapes them. Field
//! names outside a fixed list of system fields are quoted the same way ([`field`]). Free-text
//! values for `~` are additionally escaped for Lucene ([`escape_text`]) so they match literally.
//!
//! ```
//! use integration_jira::jql::{Jql, quote};
//! let jql = Jql::new().eq("project", "ENG").eq("status", "Done\" OR project = SECRET").build();
//! assert_eq!(jql, r#"project = "ENG" AND status = "Done\" OR project = SECRET""#);
//! assert_eq!(quote("a\\b\n"), r#""a\\b\n""#);
//! ```

use std::fmt::Write as _;

/// System fields written bare; any other field name is quoted.
const KNOWN_FIELDS: &[&str] = &[
    "assignee",
    "created",
    "creator",
    "description",
    "duedate",
    "issuekey",
    "issuetype",
    "key",
    "labels",
    "parent",
    "priority",
    "project",
    "rank",
    "reporter",
    "resolution",
    "resolved",
    "status",
    "statusCategory",
    "summary",
    "text",
    "type",
    "updated",
];

/// A JQL string literal for `value`: `"` + escaped value + `"`.
///
/// Escapes `"` and `\` with a backslash, newline, carriage return and tab as `\n`, `\r`, `\t`, and
/// every other control character as `\uXXXX` (Jira's JQL lexer understands all of these). Whatever
/// the value, the result is exactly one string token.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field reference: a known system field or a custom field id (`cf[10010]`) bare, anything else
/// (`Story Points`, reserved words, hostile text) as a quoted literal.
pub fn field(name: &str) -> String {
    if KNOWN_FIELDS.contains(&name) || is_custom_field_id(name) { name.to_owned() } else { quote(name) }
}

fn is_custom_field_id(name: &str) -> bool {
    name.strip_prefix("cf[").and_then(|rest| rest.strip_suffix(']')).is_some_and(|digits| {
        !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Escape Lucene's special characters so a `~` text search matches the words literally (the
/// backslashes are then escaped again by [`quote`]).
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "+-&|!(){}[]^~*?:\\/\"".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sort direction of an `ORDER BY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A JQL query under construction: clauses joined with `AND`, then an optional `ORDER BY`.
#[derive(Debug, Clone, Default)]
pub struct Jql {
    clauses: Vec<String>,
    order: Vec<(String, Direction)>,
}

impl Jql {
    /// An empty query.
    pub fn new() -> Self {
        Self::default()
    }

    /// `field = "value"`.
    pub fn eq(mut self, name: &str, value: &str) -> Self {
        self.clauses.push(format!("{} = {}", field(name), quote(value)));
        self
    }

    /// `field = "v"` for one value, `field in ("a", "b")` for several; nothing for none.
    pub fn any_of(mut self, name: &str, values: &[String]) -> Self {
        match values {
            [] => {}
            [one] => self.clauses.push(format!("{} = {}", field(name), quote(one))),
            many => {
                let list = many.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ");
                self.clauses.push(format!("{} in ({list})", field(name)));
            }
        }
        self
    }

    /// `field = "v"` for each value (all must match: for multi-valued fields such as labels).
    pub fn all_of(mut self, name: &str, values: &[String]) -> Self {
        for value in values {
            self = self.eq(name, value);
        }
        self
    }

    /// `field is EMPTY`.
    pub fn is_empty(mut self, name: &str) -> Self {
        self.clauses.push(format!("{} is EMPTY", field(name)));
        self
    }

    /// `field = currentUser()`.
    pub fn is_current_user(mut self, name: &str) -> Self {
        self.clauses.push(format!("{} = currentUser()", field(name)));
        self
    }

    /// `field ~ "text"`, the text escaped for Lucene so it matches literally.
    pub fn contains_text(mut self, name: &str, text: &str) -> Self {
        self.clauses.push(format!("{} ~ {}", field(name), quote(&escape_text(text))));
        self
    }

    /// `field >= "value"` (dates: `2024-01-31`, `2024-01-31 12:00`, `-7d`).
    pub fn at_least(mut self, name: &str, value: &str) -> Self {
        self.clauses.push(format!("{} >= {}", field(name), quote(value)));
        self
    }

    /// `field <= "value"`.
    pub fn at_most(mut self, name: &str, value: &str) -> Self {
        self.clauses.push(format!("{} <= {}", field(name), quote(value)));
        self
    }

    /// Add `ORDER BY field direction` (several calls add secondary keys).
    pub fn order_by(mut self, name: &str, direction: Direction) -> Self {
        self.order.push((field(name), direction));
        self
    }

    /// Whether no clause restricts the query.
    pub fn has_clauses(&self) -> bool {
        !self.clauses.is_empty()
    }

    /// The JQL text.
    pub fn build(&self) -> String {
        let mut out = self.clauses.join(" AND ");
        if !self.order.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("ORDER BY ");
            let keys: Vec<String> = self
                .order
                .iter()
                .map(|(f, d)| format!("{f} {}", if *d == Direction::Asc { "ASC" } else { "DESC" }))
                .collect();
            out.push_str(&keys.join(", "));
        }
        out
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod tokens;

#[cfg(test)]
mod tests {
    use super::tokens::{Tok, decoded, shape, tokenize};
    use super::*;
    use proptest::prelude::*;

    fn check(jql: Jql, expected: &str) {
        assert_eq!(jql.build(), expected);
    }

    #[test]
    fn builds_clauses() {
        check(Jql::new().eq("project", "ENG"), r#"project = "ENG""#);
        check(
            Jql::new().eq("project", "ENG").any_of("status", &["To Do".into(), "In Progress".into()]),
            r#"project = "ENG" AND status in ("To Do", "In Progress")"#,
        );
        check(Jql::new().all_of("labels", &["a".into(), "b".into()]), r#"labels = "a" AND labels = "b""#);
        check(
            Jql::new().is_empty("assignee").is_current_user("reporter"),
            "assignee is EMPTY AND reporter = currentUser()",
        );
        check(Jql::new().contains_text("text", "crash (fatal)"), r#"text ~ "crash \\(fatal\\)""#);
        check(
            Jql::new()
                .at_least("created", "2024-01-01")
                .at_most("updated", "-1d")
                .order_by("created", Direction::Desc),
            r#"created >= "2024-01-01" AND updated <= "-1d" ORDER BY created DESC"#,
        );
        check(Jql::new().order_by("Story Points", Direction::Asc), r#"ORDER BY "Story Points" ASC"#);
        check(Jql::new().order_by("cf[10010]", Direction::Asc), "ORDER BY cf[10010] ASC");
        check(Jql::new().eq("order", "x"), r#""order" = "x""#);
    }

    #[test]
    fn hostile_values_stay_inside_their_literal() {
        check(
            Jql::new().eq("status", r#"Done" OR project = "SECRET"#),
            r#"status = "Done\" OR project = \"SECRET""#,
        );
        check(Jql::new().eq("status", "a\\\" OR x = y"), r#"status = "a\\\" OR x = y""#);
        check(Jql::new().eq("status", "line\nOR 1"), r#"status = "line\nOR 1""#);
        check(Jql::new().eq("status", "\u{0}\u{7f}"), r#"status = "\u0000\u007f""#);
        check(Jql::new().eq("summary", "ünïcødé ✓ 🚀"), "summary = \"ünïcødé ✓ 🚀\"");
        assert_eq!(field("cf[12"), r#""cf[12""#);
        assert_eq!(field("status = x OR y"), r#""status = x OR y""#);
    }

    fn hostile() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "\"",
            "\\",
            "'",
            " OR ",
            " AND ",
            "NOT",
            "order by",
            "ORDER BY key",
            ")",
            "(",
            ",",
            "=",
            "~",
            "\n",
            "\r",
            "\t",
            "\u{0}",
            "\u{2028}",
            "é",
            "🚀",
            "currentUser()",
            "EMPTY",
            "null",
            "project",
            "\\\"",
            "*",
        ]);
        prop::collection::vec(prop_oneof![pieces.prop_map(str::to_owned), any::<String>()], 0..8)
            .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn quote_round_trips_as_one_literal(value in hostile()) {
            let tokens = tokenize(&quote(&value)).map_err(TestCaseError::fail)?;
            prop_assert_eq!(tokens.len(), 1);
            let Tok::Str(s) = &tokens[0] else { return Err(TestCaseError::fail("not a literal")) };
            // Control characters come back as \u escapes; everything else verbatim.
            prop_assert_eq!(s, &decoded(&value));
        }

        #[test]
        fn values_never_change_the_clause_structure(
            project in hostile(), status in hostile(), status2 in hostile(), label in hostile(),
            text in hostile(), created in hostile(), order in hostile(),
        ) {
            let jql = Jql::new()
                .eq("project", &project)
                .any_of("status", &[status, status2])
                .all_of("labels", &[label])
                .contains_text("text", &text)
                .at_least("created", &created)
                .order_by(&order, Direction::Desc)
                .build();
            let tokens = tokenize(&jql).map_err(TestCaseError::fail)?;
            let expected = [
                "project", "=", "<str>", "AND", "status", "in", "(", "<str>", ",", "<str>", ")", "AND",
                "labels", "=", "<str>", "AND", "text", "~", "<str>", "AND", "created", ">", "=", "<str>",
                "ORDER", "BY",
            ];
            let got = shape(&tokens);
            prop_assert_eq!(&got[..expected.len()], &expected[..]);
            // The order key is a known field, or one quoted literal.
            let rest = &got[expected.len()..];
            prop_assert!(rest.len() == 2 && rest[1] == "DESC", "{:?}", rest);
            prop_assert!(rest[0] == "<str>" || KNOWN_FIELDS.contains(&rest[0].as_str()) || is_custom_field_id(&rest[0]));
        }
    }

    /// A builder call with an arbitrary field name and values.
    #[derive(Debug, Clone)]
    enum Op {
        Eq(String, String),
        AnyOf(String, Vec<String>),
        IsEmpty(String),
        CurrentUser(String),
        Contains(String, String),
        AtLeast(String, String),
        AtMost(String, String),
        OrderBy(String, bool),
    }

    /// Field names: known system fields, custom field ids and near misses, hostile text, any Unicode.
    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(KNOWN_FIELDS.to_vec()).prop_map(str::to_owned),
            prop::sample::select(vec!["cf[10010]", "cf[]", "cf[1a]", "cf[1]]", "Status", "order", "AND"])
                .prop_map(str::to_owned),
            hostile(),
            any::<String>(),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let f = field_name;
        prop_oneof![
            (f(), hostile()).prop_map(|(a, b)| Op::Eq(a, b)),
            (f(), prop::collection::vec(hostile(), 0..4)).prop_map(|(a, b)| Op::AnyOf(a, b)),
            f().prop_map(Op::IsEmpty),
            f().prop_map(Op::CurrentUser),
            (f(), hostile()).prop_map(|(a, b)| Op::Contains(a, b)),
            (f(), hostile()).prop_map(|(a, b)| Op::AtLeast(a, b)),
            (f(), hostile()).prop_map(|(a, b)| Op::AtMost(a, b)),
            (f(), any::<bool>()).prop_map(|(a, b)| Op::OrderBy(a, b)),
        ]
    }

    /// The shape a field reference must have: its name when written bare, else one literal.
    fn field_shape(name: &str) -> String {
        if field(name) == name { name.to_owned() } else { "<str>".to_owned() }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any sequence of builder calls, with arbitrary Unicode field names and values, gives the
        /// token structure the calls alone determine: no name or value adds an operator, a keyword,
        /// a parenthesis or a clause.
        #[test]
        fn arbitrary_fields_and_values_keep_the_structure(ops in prop::collection::vec(op(), 0..8)) {
            let mut jql = Jql::new();
            let mut clauses: Vec<Vec<String>> = Vec::new();
            let mut order: Vec<Vec<String>> = Vec::new();
            let s = |t: &str| t.to_owned();
            for op in &ops {
                match op {
                    Op::Eq(f, v) => {
                        jql = jql.eq(f, v);
                        clauses.push(vec![field_shape(f), s("="), s("<str>")]);
                    }
                    Op::AnyOf(f, vs) => {
                        jql = jql.any_of(f, vs);
                        match vs.len() {
                            0 => {}
                            1 => clauses.push(vec![field_shape(f), s("="), s("<str>")]),
                            n => {
                                let mut c = vec![field_shape(f), s("in"), s("(")];
                                for i in 0..n {
                                    if i > 0 { c.push(s(",")); }
                                    c.push(s("<str>"));
                                }
                                c.push(s(")"));
                                clauses.push(c);
                            }
                        }
                    }
                    Op::IsEmpty(f) => {
                        jql = jql.is_empty(f);
                        clauses.push(vec![field_shape(f), s("is"), s("EMPTY")]);
                    }
                    Op::CurrentUser(f) => {
                        jql = jql.is_current_user(f);
                        clauses.push(vec![field_shape(f), s("="), s("currentUser"), s("("), s(")")]);
                    }
                    Op::Contains(f, v) => {
                        jql = jql.contains_text(f, v);
                        clauses.push(vec![field_shape(f), s("~"), s("<str>")]);
                    }
                    Op::AtLeast(f, v) => {
                        jql = jql.at_least(f, v);
                        clauses.push(vec![field_shape(f), s(">"), s("="), s("<str>")]);
                    }
                    Op::AtMost(f, v) => {
                        jql = jql.at_most(f, v);
                        clauses.push(vec![field_shape(f), s("<"), s("="), s("<str>")]);
                    }
                    Op::OrderBy(f, asc) => {
                        jql = jql.order_by(f, if *asc { Direction::Asc } else { Direction::Desc });
                        order.push(vec![field_shape(f), s(if *asc { "ASC" } else { "DESC" })]);
                    }
                }
            }
            let mut expected: Vec<String> = clauses.join(&s("AND"));
            if !order.is_empty() {
                expected.extend([s("ORDER"), s("BY")]);
                expected.extend(order.join(&s(",")));
            }
            let text = jql.build();
            let tokens = tokenize(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(shape(&tokens), expected, "{}", text);
        }
    }
}
