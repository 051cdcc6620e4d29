//! The `labelSelector` query-string grammar, lexed and parsed the way upstream's
//! `labels.Parse` does — including its quirks, because error texts and edge cases are part of
//! the contract:
//!
//! - `in` and `notin` are operators only right after a key; elsewhere they are plain
//!   identifiers (`in in (in)` is valid).
//! - A value list is a set: `x in (b,a,a)` keeps `a,b`; `()` and empty slots (`(,a)`) mean
//!   the empty-string value.
//! - A key alone means Exists, `!key` DoesNotExist; `key=` requires the empty value.
//! - Go's lexer reads a NUL byte as end of input: at the start of a token it ends the whole
//!   selector, after a token it is swallowed as a separator.
//!
//! ```text
//! <selector>    ::= <requirement> | <requirement> "," <selector>
//! <requirement> ::= [!] KEY [ <set-based> | <exact-match> ]
//! <set-based>   ::= ("in" | "notin") "(" VALUE {"," VALUE} ")"
//! <exact-match> ::= ("=" | "==" | "!=" | ">" | "<") VALUE
//! ```

use std::collections::BTreeSet;

use super::{Error, Operator, Requirement, key_error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

struct Item {
    token: Token,
    literal: String,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens, always ending with `EndOfString`.
fn lex(s: &str) -> Vec<Item> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut items = Vec::new();
    loop {
        while bytes.get(pos).copied().is_some_and(is_whitespace) {
            pos += 1;
        }
        if bytes.get(pos).is_none_or(|b| *b == 0) {
            items.push(Item {
                token: Token::EndOfString,
                literal: String::new(),
            });
            return items;
        }
        let start = pos;
        let token = if bytes.get(pos).copied().is_some_and(is_special) {
            // Only `==` and `!=` are two bytes long; any other special byte is a token of its
            // own, so `<=` lexes as `<` then `=` exactly as upstream's greedy scan does.
            let (token, len) = match (bytes[pos], bytes.get(pos + 1)) {
                (b'=', Some(b'=')) => (Token::DoubleEquals, 2),
                (b'!', Some(b'=')) => (Token::NotEquals, 2),
                (b'=', _) => (Token::Equals, 1),
                (b'!', _) => (Token::DoesNotExist, 1),
                (b'(', _) => (Token::OpenPar, 1),
                (b')', _) => (Token::ClosedPar, 1),
                (b',', _) => (Token::Comma, 1),
                (b'>', _) => (Token::GreaterThan, 1),
                _ => (Token::LessThan, 1),
            };
            pos += len;
            token
        } else {
            while bytes
                .get(pos)
                .is_some_and(|b| *b != 0 && !is_special(*b) && !is_whitespace(*b))
            {
                pos += 1;
            }
            match s.get(start..pos) {
                Some("in") => Token::In,
                Some("notin") => Token::NotIn,
                _ => Token::Identifier,
            }
        };
        // Token boundaries are ASCII bytes, so this slice always lies on char boundaries.
        let literal = s.get(start..pos).unwrap_or_default().to_string();
        items.push(Item { token, literal });
        if bytes.get(pos) == Some(&0) {
            pos += 1;
        }
    }
}

/// Whether `in`/`notin` may be operators here (right after a key) or are plain values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<Item>,
    position: usize,
}

impl Parser {
    fn peek(&self, ctx: Context) -> (Token, &str) {
        match self.items.get(self.position) {
            Some(item) => {
                let token = match item.token {
                    Token::In | Token::NotIn if ctx == Context::Values => Token::Identifier,
                    t => t,
                };
                (token, item.literal.as_str())
            }
            None => (Token::EndOfString, ""),
        }
    }

    fn next(&mut self, ctx: Context) -> (Token, String) {
        let (token, literal) = self.peek(ctx);
        let literal = literal.to_string();
        self.position += 1;
        (token, literal)
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, Error> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.peek(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| Error::Parse(format!("unable to parse requirement: {e}")))?;
                    requirements.push(r);
                    let (token, literal) = self.next(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (token, literal) = self.peek(Context::Values);
                            if token != Token::Identifier && token != Token::DoesNotExist {
                                return Err(Error::Parse(format!(
                                    "found '{literal}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(Error::Parse(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(Error::Parse(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    /// One requirement; the error is the text upstream wraps in `unable to parse requirement`.
    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(op) = inferred {
            return Requirement::build(key, op, Vec::new(), false).map_err(|e| e.to_string());
        }
        let op = self.operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        Requirement::build(key, op, values.into_iter().collect(), false).map_err(|e| e.to_string())
    }

    /// The key, and Exists/DoesNotExist when no binary operator follows it.
    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let (mut token, mut literal) = self.next(Context::Values);
        let mut op = None;
        if token == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (token, literal) = self.next(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        // Upstream validates here with a nil field path, hence the odd `<nil>:` prefix.
        if let Some(e) = key_error(&literal, "<nil>") {
            return Err(e);
        }
        let (next, _) = self.peek(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((literal, op))
    }

    fn operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.next(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// `(a,b,…)` after in/notin.
    fn values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.next(Context::Values);
        if token != Token::OpenPar {
            // Upstream's text has no comma after the literal here.
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.peek(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let literal = literal.to_string();
                let set = self.identifiers()?;
                if self.next(Context::Values).0 != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.next(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// A comma-separated list whose empty slots stand for the empty value. Stops before `)`.
    fn identifiers(&mut self) -> Result<BTreeSet<String>, String> {
        let mut set = BTreeSet::new();
        loop {
            let (token, literal) = self.next(Context::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal);
                    let (next, literal) = self.peek(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new()); // `(,`
                    }
                    match self.peek(Context::Values).0 {
                        Token::ClosedPar => {
                            set.insert(String::new()); // `,)`
                            return Ok(set);
                        }
                        Token::Comma => {
                            self.next(Context::Values);
                            set.insert(String::new()); // `,,`
                        }
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>` or `<`; nothing there means `""`.
    fn exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        if matches!(
            self.peek(Context::Values).0,
            Token::EndOfString | Token::Comma
        ) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.next(Context::Values);
        if token == Token::Identifier {
            Ok(BTreeSet::from([literal]))
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

/// Parses a selector string into requirements (unsorted; the caller sorts by key).
pub(super) fn parse(s: &str) -> Result<Vec<Requirement>, Error> {
    Parser {
        items: lex(s),
        position: 0,
    }
    .parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<(Token, String)> {
        lex(s).into_iter().map(|i| (i.token, i.literal)).collect()
    }

    #[test]
    fn lexes_like_upstream() {
        use Token::*;
        let cases: &[(&str, &[(Token, &str)])] = &[
            ("", &[(EndOfString, "")]),
            (
                "x==y",
                &[
                    (Identifier, "x"),
                    (DoubleEquals, "=="),
                    (Identifier, "y"),
                    (EndOfString, ""),
                ],
            ),
            (
                "x!=y",
                &[
                    (Identifier, "x"),
                    (NotEquals, "!="),
                    (Identifier, "y"),
                    (EndOfString, ""),
                ],
            ),
            (
                "x<=1",
                &[
                    (Identifier, "x"),
                    (LessThan, "<"),
                    (Equals, "="),
                    (Identifier, "1"),
                    (EndOfString, ""),
                ],
            ),
            (
                " in (notin,b) ",
                &[
                    (In, "in"),
                    (OpenPar, "("),
                    (NotIn, "notin"),
                    (Comma, ","),
                    (Identifier, "b"),
                    (ClosedPar, ")"),
                    (EndOfString, ""),
                ],
            ),
            (
                "!x",
                &[(DoesNotExist, "!"), (Identifier, "x"), (EndOfString, "")],
            ),
            (
                "a\u{e9}b=c",
                &[
                    (Identifier, "a\u{e9}b"),
                    (Equals, "="),
                    (Identifier, "c"),
                    (EndOfString, ""),
                ],
            ),
            // NUL inside a token separates; NUL at the start of a token ends the input.
            (
                "a\0b",
                &[(Identifier, "a"), (Identifier, "b"), (EndOfString, "")],
            ),
            ("a \0,b", &[(Identifier, "a"), (EndOfString, "")]),
        ];
        for (input, want) in cases {
            let want: Vec<(Token, String)> =
                want.iter().map(|(t, l)| (*t, l.to_string())).collect();
            assert_eq!(tokens(input), want, "{input:?}");
        }
    }
}
