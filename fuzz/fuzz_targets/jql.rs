//! The JQL builder with arbitrary field names and values: the query's structure (its tokens, with
//! every string literal as one token) depends only on the builder calls, never on the values, and
//! every literal decodes back to the value it came from.

#![no_main]

use arbitrary::Arbitrary;
use integration_jira::jql::tokens::{Tok, decoded, tokenize};
use integration_jira::jql::{Direction, Jql, escape_text, field};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Eq(String, String),
    AnyOf(String, Vec<String>),
    AllOf(String, Vec<String>),
    IsEmpty(String),
    CurrentUser(String),
    Contains(String, String),
    AtLeast(String, String),
    AtMost(String, String),
    OrderBy(String, bool),
}

/// The expected tokens of a field reference: bare when `field` leaves it bare, else one literal.
fn field_tokens(name: &str, out: &mut Vec<Tok>) {
    let f = field(name);
    if f == name {
        out.push(Tok::Word(name.to_owned()));
    } else {
        out.push(Tok::Str(decoded(name)));
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut jql = Jql::new();
    let mut clauses: Vec<Vec<Tok>> = Vec::new();
    let mut order: Vec<Vec<Tok>> = Vec::new();
    let lit = |v: &str| Tok::Str(decoded(v));
    for op in ops.iter().take(16) {
        let mut t = Vec::new();
        match op {
            Op::Eq(f, v) | Op::AtLeast(f, v) | Op::AtMost(f, v) => {
                field_tokens(f, &mut t);
                match op {
                    Op::Eq(..) => t.push(Tok::Sym('=')),
                    Op::AtLeast(..) => t.extend([Tok::Sym('>'), Tok::Sym('=')]),
                    _ => t.extend([Tok::Sym('<'), Tok::Sym('=')]),
                }
                t.push(lit(v));
                jql = match op {
                    Op::Eq(..) => jql.eq(f, v),
                    Op::AtLeast(..) => jql.at_least(f, v),
                    _ => jql.at_most(f, v),
                };
                clauses.push(t);
            }
            Op::AnyOf(f, values) => {
                jql = jql.any_of(f, values);
                match values.as_slice() {
                    [] => {}
                    [one] => {
                        field_tokens(f, &mut t);
                        t.extend([Tok::Sym('='), lit(one)]);
                        clauses.push(t);
                    }
                    many => {
                        field_tokens(f, &mut t);
                        t.extend([Tok::Word("in".into()), Tok::Sym('(')]);
                        for (i, v) in many.iter().enumerate() {
                            if i > 0 {
                                t.push(Tok::Sym(','));
                            }
                            t.push(lit(v));
                        }
                        t.push(Tok::Sym(')'));
                        clauses.push(t);
                    }
                }
            }
            Op::AllOf(f, values) => {
                jql = jql.all_of(f, values);
                for v in values {
                    let mut t = Vec::new();
                    field_tokens(f, &mut t);
                    t.extend([Tok::Sym('='), lit(v)]);
                    clauses.push(t);
                }
            }
            Op::IsEmpty(f) => {
                jql = jql.is_empty(f);
                field_tokens(f, &mut t);
                t.extend([Tok::Word("is".into()), Tok::Word("EMPTY".into())]);
                clauses.push(t);
            }
            Op::CurrentUser(f) => {
                jql = jql.is_current_user(f);
                field_tokens(f, &mut t);
                t.extend([Tok::Sym('='), Tok::Word("currentUser".into()), Tok::Sym('('), Tok::Sym(')')]);
                clauses.push(t);
            }
            Op::Contains(f, text) => {
                jql = jql.contains_text(f, text);
                field_tokens(f, &mut t);
                t.extend([Tok::Sym('~'), lit(&escape_text(text))]);
                clauses.push(t);
            }
            Op::OrderBy(f, asc) => {
                jql = jql.order_by(f, if *asc { Direction::Asc } else { Direction::Desc });
                field_tokens(f, &mut t);
                t.push(Tok::Word(if *asc { "ASC" } else { "DESC" }.into()));
                order.push(t);
            }
        }
    }
    let mut expected: Vec<Tok> = Vec::new();
    for (i, c) in clauses.into_iter().enumerate() {
        if i > 0 {
            expected.push(Tok::Word("AND".into()));
        }
        expected.extend(c);
    }
    if !order.is_empty() {
        expected.extend([Tok::Word("ORDER".into()), Tok::Word("BY".into())]);
        for (i, o) in order.into_iter().enumerate() {
            if i > 0 {
                expected.push(Tok::Sym(','));
            }
            expected.extend(o);
        }
    }
    let text = jql.build();
    let tokens = tokenize(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(tokens, expected, "structure changed: {text:?}");
});
