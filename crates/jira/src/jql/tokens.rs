//! A reader of the JQL the builder writes, for checking it: the unit tests' property tests and the
//! `jql` fuzz target (`fuzz/`, with the `fuzzing` feature) read a built query back into tokens, with
//! every string literal as one decoded token, and compare its structure with the builder calls.
//! Not a JQL parser: it knows only the subset [`super::Jql`] writes.

/// One token of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A string literal, decoded (a `\uXXXX` escape as `<uxxxx>`, see [`decoded`]).
    Str(String),
    /// A bare word: a field name, a keyword, a function name.
    Word(String),
    /// One of `(`, `)`, `,`, `=`, `~`, `<`, `>`.
    Sym(char),
}

/// The tokens of `jql`, or why it is not the JQL the builder writes (an unterminated literal, an
/// unknown escape, a raw control character inside a literal).
pub fn tokenize(jql: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = jql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next().ok_or("unterminated string")? {
                        '"' => break,
                        '\\' => match chars.next().ok_or("dangling escape")? {
                            '"' => s.push('"'),
                            '\\' => s.push('\\'),
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            'u' => {
                                let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                                let unit = u16::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                                s.push_str(&format!("<u{unit:04x}>"));
                            }
                            other => return Err(format!("bad escape {other:?}")),
                        },
                        c if c.is_control() => return Err("raw control character in a literal".into()),
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            '(' | ')' | ',' | '=' | '~' | '<' | '>' => out.push(Tok::Sym(c)),
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n == ' ' || "(),=~<>\"".contains(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// What [`tokenize`] decodes the literal of `value` to: the value itself, with each character the
/// builder writes as a `\uXXXX` escape (controls, line and paragraph separators, the byte-order
/// mark) as `<uxxxx>` per UTF-16 unit.
pub fn decoded(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' | '"' | '\\' => c.to_string(),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                let mut buf = [0u16; 2];
                c.encode_utf16(&mut buf).iter().map(|u| format!("<u{u:04x}>")).collect()
            }
            c => c.to_string(),
        })
        .collect()
}

/// The structure of a token stream: each literal replaced by `<str>`.
pub fn shape(tokens: &[Tok]) -> Vec<String> {
    tokens
        .iter()
        .map(|t| match t {
            Tok::Str(_) => "<str>".to_owned(),
            Tok::Word(w) => w.clone(),
            Tok::Sym(c) => c.to_string(),
        })
        .collect()
}
