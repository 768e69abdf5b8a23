//! The JQL subset of the fake: a lexer for quoted and escaped strings, a recursive-descent parser
//! for `AND`/`OR`/`NOT`/parentheses/`ORDER BY`, and an evaluator over fake issues.

use super::{FakeIssue, State};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

/// A value in a clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Func(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    One(Val),
    List(Vec<Val>),
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Clause { field: String, op: String, operand: Operand },
}

/// A parsed query.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub(crate) filter: Option<Expr>,
    pub(crate) order: Vec<(String, bool)>,
}

fn lex(input: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(format!(
                            "The quoted string starting with {quote} has not been completed."
                        ));
                    };
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c == '\\' {
                        let Some(&e) = chars.get(i) else { return Err("dangling escape".into()) };
                        i += 1;
                        match e {
                            '"' | '\'' | '\\' | ' ' => s.push(e),
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            'u' => {
                                let hex: String =
                                    chars.get(i..i + 4).map(|h| h.iter().collect()).unwrap_or_default();
                                let unit =
                                    u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u escape".to_owned())?;
                                i += 4;
                                // Surrogate pairs: combine with a following \uDCxx.
                                if (0xD800..0xDC00).contains(&unit)
                                    && chars.get(i) == Some(&'\\')
                                    && chars.get(i + 1) == Some(&'u')
                                {
                                    let low: String = chars
                                        .get(i + 2..i + 6)
                                        .map(|h| h.iter().collect())
                                        .unwrap_or_default();
                                    let low = u32::from_str_radix(&low, 16)
                                        .map_err(|_| "bad \\u escape".to_owned())?;
                                    i += 6;
                                    let cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                                    s.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                } else {
                                    s.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                                }
                            }
                            // Lucene escapes inside `~` values: keep them for the text matcher.
                            other => {
                                s.push('\\');
                                s.push(other);
                            }
                        }
                    } else if c == '\n' || c == '\r' {
                        return Err("newline in a quoted string".into());
                    } else {
                        s.push(c);
                    }
                }
                out.push(Tok::Str(s));
            }
            '=' => {
                out.push(Tok::Op("="));
                i += 1;
            }
            '~' => {
                out.push(Tok::Op("~"));
                i += 1;
            }
            '!' | '>' | '<' => {
                let next = chars.get(i + 1).copied();
                let op = match (c, next) {
                    ('!', Some('=')) => "!=",
                    ('!', Some('~')) => "!~",
                    ('>', Some('=')) => ">=",
                    ('<', Some('=')) => "<=",
                    ('>', _) => ">",
                    ('<', _) => "<",
                    _ => return Err(format!("unexpected '{c}'")),
                };
                i += op.len();
                out.push(Tok::Op(op));
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"()=,~!<>\"'".contains(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), String> {
        match self.next() {
            Some(ref t) if t == tok => Ok(()),
            other => Err(format!("Expecting {what} but got {other:?}")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.not()?];
        while self.keyword("and") {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(e);
        }
        self.clause()
    }

    fn field(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => Ok(w),
            other => Err(format!("Expecting a field name but got {other:?}")),
        }
    }

    fn clause(&mut self) -> Result<Expr, String> {
        let field = self.field()?;
        if self.keyword("is") {
            self.pos += 1;
            let negated = self.keyword("not");
            if negated {
                self.pos += 1;
            }
            if self.keyword("empty") || self.keyword("null") {
                self.pos += 1;
                let op = if negated { "is not" } else { "is" };
                return Ok(Expr::Clause { field, op: op.into(), operand: Operand::Empty });
            }
            return Err("Expecting EMPTY or NULL after IS".into());
        }
        let negated_in = self.keyword("not");
        if negated_in {
            self.pos += 1;
        }
        if self.keyword("in") {
            self.pos += 1;
            self.expect(&Tok::LParen, "'('")?;
            let mut values = vec![self.value()?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                values.push(self.value()?);
            }
            self.expect(&Tok::RParen, "')'")?;
            let op = if negated_in { "not in" } else { "in" };
            return Ok(Expr::Clause { field, op: op.into(), operand: Operand::List(values) });
        }
        if negated_in {
            return Err("Expecting IN after NOT".into());
        }
        let op = match self.next() {
            Some(Tok::Op(op)) => op,
            other => return Err(format!("Expecting an operator after '{field}' but got {other:?}")),
        };
        let operand = if self.keyword("empty") || self.keyword("null") {
            self.pos += 1;
            Operand::Empty
        } else {
            Operand::One(self.value()?)
        };
        Ok(Expr::Clause { field, op: op.into(), operand })
    }

    fn value(&mut self) -> Result<Val, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Val::Str(s)),
            Some(Tok::Word(w)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    self.expect(&Tok::RParen, "')'")?;
                    Ok(Val::Func(w.to_lowercase()))
                } else if ["and", "or", "not", "order", "in", "is"].iter().any(|k| w.eq_ignore_ascii_case(k))
                {
                    Err(format!("Expecting a value but got the reserved word '{w}'"))
                } else {
                    Ok(Val::Str(w))
                }
            }
            other => Err(format!("Expecting a value but got {other:?}")),
        }
    }
}

/// Parse a JQL query.
pub(crate) fn parse(input: &str) -> Result<Query, String> {
    let mut p = Parser { toks: lex(input)?, pos: 0 };
    let filter = if p.peek().is_none() || p.keyword("order") { None } else { Some(p.or()?) };
    let mut order = Vec::new();
    if p.keyword("order") {
        p.pos += 1;
        if !p.keyword("by") {
            return Err("Expecting BY after ORDER".into());
        }
        p.pos += 1;
        loop {
            let field = p.field()?;
            let mut asc = true;
            if p.keyword("asc") {
                p.pos += 1;
            } else if p.keyword("desc") {
                p.pos += 1;
                asc = false;
            }
            order.push((field.to_lowercase(), asc));
            if p.peek() == Some(&Tok::Comma) {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    if let Some(t) = p.peek() {
        return Err(format!("Unexpected {t:?} at the end of the query"));
    }
    Ok(Query { filter, order })
}

const FIELDS: &[&str] = &[
    "project",
    "key",
    "issuekey",
    "id",
    "status",
    "statuscategory",
    "assignee",
    "reporter",
    "labels",
    "issuetype",
    "type",
    "priority",
    "parent",
    "summary",
    "description",
    "text",
    "comment",
    "created",
    "createddate",
    "updated",
    "updateddate",
];

/// Check field names and that named projects exist, as Jira does before searching.
pub(crate) fn validate(expr: &Expr, state: &State) -> Result<(), String> {
    match expr {
        Expr::And(parts) | Expr::Or(parts) => parts.iter().try_for_each(|p| validate(p, state)),
        Expr::Not(inner) => validate(inner, state),
        Expr::Clause { field, operand, .. } => {
            let lower = field.to_lowercase();
            if !FIELDS.contains(&lower.as_str()) {
                return Err(format!(
                    "Field '{field}' does not exist or you do not have permission to view it."
                ));
            }
            if lower == "project" {
                let values = match operand {
                    Operand::One(v) => vec![v.clone()],
                    Operand::List(vs) => vs.clone(),
                    Operand::Empty => vec![],
                };
                for v in values {
                    if let Val::Str(s) = v
                        && !state.projects.iter().any(|p| {
                            p.key.eq_ignore_ascii_case(&s) || p.name.eq_ignore_ascii_case(&s) || p.id == s
                        })
                    {
                        return Err(format!("The value '{s}' does not exist for the field 'project'."));
                    }
                }
            }
            if matches!(lower.as_str(), "created" | "createddate" | "updated" | "updateddate") {
                for v in operand_values(operand) {
                    if let Val::Str(s) = v {
                        parse_date(&s, 0)?;
                    }
                }
            }
            Ok(())
        }
    }
}

fn operand_values(operand: &Operand) -> Vec<Val> {
    match operand {
        Operand::One(v) => vec![v.clone()],
        Operand::List(vs) => vs.clone(),
        Operand::Empty => vec![],
    }
}

/// The values of a field on an issue, as strings any of which may match.
fn field_values(issue: &FakeIssue, field: &str, state: &State) -> Vec<String> {
    let user = |id: &Option<String>| -> Vec<String> {
        match id {
            None => vec![],
            Some(id) => {
                let mut v = vec![id.clone()];
                if let Some(u) = state.user(id) {
                    v.push(u.display_name.clone());
                    v.push(u.email.clone());
                }
                v
            }
        }
    };
    match field {
        "project" => state
            .project(&issue.project)
            .map(|p| vec![p.key.clone(), p.name.clone(), p.id.clone()])
            .unwrap_or_default(),
        "key" | "issuekey" | "id" => vec![issue.key.clone(), issue.id.clone()],
        "status" => vec![issue.status.name.to_owned(), issue.status.id.to_owned()],
        "statuscategory" => vec![issue.status.category_key.to_owned(), issue.status.category_name.to_owned()],
        "assignee" => user(&issue.assignee),
        "reporter" => user(&issue.reporter),
        "labels" => issue.labels.clone(),
        "issuetype" | "type" => vec![issue.issue_type.name.to_owned(), issue.issue_type.id.to_owned()],
        "priority" => issue.priority.map(|p| vec![p.name.to_owned(), p.id.to_owned()]).unwrap_or_default(),
        "parent" => issue.parent.clone().into_iter().collect(),
        _ => vec![],
    }
}

fn text_of(issue: &FakeIssue, field: &str) -> String {
    let mut parts = Vec::new();
    if matches!(field, "summary" | "text") {
        parts.push(issue.summary.clone());
    }
    if matches!(field, "description" | "text") {
        parts.push(issue.description.as_ref().map(|d| d.to_string()).unwrap_or_default());
    }
    if matches!(field, "comment" | "text") {
        parts.extend(issue.comments.iter().map(|c| c.body.to_string()));
    }
    parts.join(" ").to_lowercase()
}

/// Drop Lucene escapes (`\(` → `(`).
fn unescape_lucene(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Epoch milliseconds of a JQL date: `yyyy-MM-dd`, `yyyy/MM/dd`, optionally ` HH:mm`, or a relative
/// offset like `-7d`, `2w`, `-4h`, `-30m`.
pub(crate) fn parse_date(s: &str, now: i64) -> Result<i64, String> {
    let bad = || {
        format!(
            "Date value '{s}' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
        )
    };
    let t = s.trim();
    if let Some(unit) = t.chars().last().filter(|c| "wdhm".contains(*c)) {
        let num = &t[..t.len() - 1];
        if let Ok(n) = num.parse::<i64>() {
            let ms = match unit {
                'w' => 7 * 86_400_000,
                'd' => 86_400_000,
                'h' => 3_600_000,
                _ => 60_000,
            };
            return Ok(now + n * ms);
        }
    }
    let (date, time) = match t.split_once(' ') {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let parts: Vec<&str> = date.split(['-', '/']).collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let (y, m, d): (i64, u32, u32) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = super::server::days_from_civil(y, m, d) * 86_400_000;
    if let Some(tm) = time {
        let (h, mi) = tm.split_once(':').ok_or_else(bad)?;
        let (h, mi): (i64, i64) = (h.parse().map_err(|_| bad())?, mi.parse().map_err(|_| bad())?);
        ms += h * 3_600_000 + mi * 60_000;
    }
    Ok(ms)
}

/// Whether an issue matches.
pub(crate) fn matches(expr: &Expr, issue: &FakeIssue, state: &State, caller: &str, now: i64) -> bool {
    match expr {
        Expr::And(parts) => parts.iter().all(|p| matches(p, issue, state, caller, now)),
        Expr::Or(parts) => parts.iter().any(|p| matches(p, issue, state, caller, now)),
        Expr::Not(inner) => !matches(inner, issue, state, caller, now),
        Expr::Clause { field, op, operand } => {
            let field = field.to_lowercase();
            let resolve = |v: &Val| -> String {
                match v {
                    Val::Str(s) => s.clone(),
                    Val::Func(f) if f == "currentuser" => caller.to_owned(),
                    Val::Func(f) => format!("{f}()"),
                }
            };
            match field.as_str() {
                "summary" | "description" | "text" | "comment" => {
                    let hay = text_of(issue, &field);
                    let found = operand_values(operand).iter().all(|v| {
                        unescape_lucene(&resolve(v))
                            .to_lowercase()
                            .split_whitespace()
                            .all(|word| hay.contains(word.trim_matches('*')))
                    });
                    match op.as_str() {
                        "~" => found,
                        "!~" => !found,
                        "=" => operand_values(operand)
                            .iter()
                            .any(|v| issue.summary.eq_ignore_ascii_case(&resolve(v))),
                        "is" => hay.trim().is_empty(),
                        "is not" => !hay.trim().is_empty(),
                        _ => false,
                    }
                }
                "created" | "createddate" | "updated" | "updateddate" => {
                    let at = if field.starts_with("created") { issue.created } else { issue.updated };
                    let Some(Val::Str(v)) = operand_values(operand).into_iter().next() else { return false };
                    let Ok(when) = parse_date(&v, now) else { return false };
                    match op.as_str() {
                        ">=" => at >= when,
                        ">" => at > when,
                        "<=" => at <= when,
                        "<" => at < when,
                        "=" => at == when,
                        "!=" => at != when,
                        _ => false,
                    }
                }
                _ => {
                    let have = field_values(issue, &field, state);
                    let any = |vals: &[Val]| {
                        vals.iter().any(|v| {
                            let v = resolve(v);
                            have.iter().any(|h| h.eq_ignore_ascii_case(&v))
                        })
                    };
                    match (op.as_str(), operand) {
                        ("is", _) | ("=", Operand::Empty) => have.is_empty(),
                        ("is not", _) | ("!=", Operand::Empty) => !have.is_empty(),
                        ("=", Operand::One(v)) => any(std::slice::from_ref(v)),
                        ("!=", Operand::One(v)) => !any(std::slice::from_ref(v)),
                        ("in", Operand::List(vs)) => any(vs),
                        ("not in", Operand::List(vs)) => !any(vs),
                        _ => false,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_provider_emits() {
        let q = parse(r#"project = "ENG" AND status in ("To Do", "Done\" OR x") AND assignee = currentUser() AND text ~ "a \\(b\\)" ORDER BY created DESC"#)
            .expect("parse");
        let Some(Expr::And(parts)) = q.filter else { panic!("and") };
        assert_eq!(parts.len(), 4);
        assert_eq!(
            parts[1],
            Expr::Clause {
                field: "status".into(),
                op: "in".into(),
                operand: Operand::List(vec![Val::Str("To Do".into()), Val::Str("Done\" OR x".into())])
            }
        );
        assert_eq!(
            parts[2],
            Expr::Clause {
                field: "assignee".into(),
                op: "=".into(),
                operand: Operand::One(Val::Func("currentuser".into()))
            }
        );
        assert_eq!(
            parts[3],
            Expr::Clause {
                field: "text".into(),
                op: "~".into(),
                operand: Operand::One(Val::Str("a \\(b\\)".into()))
            }
        );
        assert_eq!(q.order, vec![("created".to_owned(), false)]);
        assert!(parse("ORDER BY key").expect("order only").filter.is_none());
        assert!(parse(r#"status = "unterminated"#).is_err());
        assert!(parse("status = ").is_err());
        let q = parse(r#"a = "\u00e9\n" OR NOT (b is EMPTY)"#).expect("parse");
        assert!(matches!(q.filter, Some(Expr::Or(_))));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02", 0), Ok(86_400_000));
        assert_eq!(parse_date("1970/01/01 01:30", 0), Ok(5_400_000));
        assert_eq!(parse_date("-1d", 86_400_000), Ok(0));
        assert!(parse_date("yesterday", 0).is_err());
    }
}
