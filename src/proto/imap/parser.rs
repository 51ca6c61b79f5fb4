//! IMAP line tokenizer (RFC 3501 §9, RFC 9051, LITERAL+ RFC 7888): a pure function from one line
//! to its tokens, and whether the line ends by announcing a literal.
//!
//! Only what the session needs: atoms, quoted strings with `\"` and `\\` escapes, `NIL`,
//! parentheses, and a literal marker `{n}` (synchronising) or `{n+}` (non-synchronising) at the
//! very end of the line. A brace anywhere else, or inside quotes (`"trick{7}"`), is just text.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;

#[derive(PartialEq, Eq)]
pub enum Token<'a> {
    Atom(&'a [u8]),
    /// A quoted string, unescaped.
    Quoted(Cow<'a, [u8]>),
    /// The atom `NIL` in any case, as sent: nothing where the grammar expects an `nstring`, the
    /// string itself where it expects an `astring` (a user name or password may be `nil`).
    Nil(&'a [u8]),
    ListOpen,
    ListClose,
}

/// Tokens may be passwords: `Debug` shows their kind and length only.
impl std::fmt::Debug for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Atom(atom) => write!(f, "Atom(len={})", atom.len()),
            Token::Quoted(text) => write!(f, "Quoted(len={})", text.len()),
            Token::Nil(_) => f.write_str("Nil"),
            Token::ListOpen => f.write_str("ListOpen"),
            Token::ListClose => f.write_str("ListClose"),
        }
    }
}

impl Token<'_> {
    /// The value of an nstring token (atom or quoted), if it is one: `NIL` is none.
    pub fn string(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(atom) => Some(atom),
            Token::Quoted(text) => Some(text),
            Token::Nil(_) | Token::ListOpen | Token::ListClose => None,
        }
    }

    /// The value of an astring token (RFC 3501 §9: `NIL` is special only in an `nstring`, so
    /// here it is the three letters as sent).
    pub fn astring(&self) -> Option<&[u8]> {
        match self {
            Token::Nil(atom) => Some(atom),
            other => other.string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnd {
    Complete,
    /// The line ends with `{len}` (`synchronizing`: the sender waits for a `+` continuation) or
    /// `{len+}`: the next `len` bytes of the stream are a literal, then the line continues.
    Literal {
        len: u64,
        synchronizing: bool,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct Tokenized<'a> {
    pub tokens: Vec<Token<'a>>,
    pub end: LineEnd,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenizeError {
    UnterminatedQuote,
}

/// Splits one line (without CRLF) into tokens.
pub fn tokenize(line: &[u8]) -> Result<Tokenized<'_>, TokenizeError> {
    // A client command is a tag, a verb and a few arguments: room for them in one allocation.
    let mut tokens = Vec::with_capacity(8);
    let end = scan(line, false, |token| tokens.push(token))?;
    Ok(Tokenized { tokens, end })
}

/// Splits the start of a line whose end a capture lost into tokens: a quoted string it ends
/// inside is what there is of it, and the line is taken to end there. Also tells whether it
/// ends announcing a literal, whole or cut (`{16}`, `{1`): the literal lies past the cut.
pub fn tokenize_cut(line: &[u8]) -> (Vec<Token<'_>>, bool) {
    let mut tokens = Vec::with_capacity(8);
    // Nothing fails when cut: an unterminated quote is the end of the text.
    let end = scan(line, true, |token| tokens.push(token));
    (tokens, matches!(end, Ok(LineEnd::Literal { .. })))
}

/// How a line ends, without keeping its tokens (server lines are only followed for their
/// literals).
pub fn line_end(line: &[u8]) -> Result<LineEnd, TokenizeError> {
    scan(line, false, drop)
}

/// Walks the tokens of one line, handing each to `on_token`, and tells how the line ends; `cut`:
/// the line lost its end, and a quoted string left open is what there is of it.
fn scan<'a>(line: &'a [u8], cut: bool, mut on_token: impl FnMut(Token<'a>)) -> Result<LineEnd, TokenizeError> {
    let mut rest = line;
    loop {
        rest = rest.trim_ascii_start();
        let Some(&first) = rest.first() else {
            return Ok(LineEnd::Complete);
        };
        match first {
            b'(' => {
                on_token(Token::ListOpen);
                rest = rest.get(1..).unwrap_or(&[]);
            }
            b')' => {
                on_token(Token::ListClose);
                rest = rest.get(1..).unwrap_or(&[]);
            }
            b'"' => {
                let (text, after) = quoted(rest.get(1..).unwrap_or(&[]), cut)?;
                on_token(Token::Quoted(text));
                rest = after;
            }
            b'{' => {
                if let Some(end) = literal_marker(rest) {
                    return Ok(end);
                }
                if cut && is_literal_marker_start(rest) {
                    // A literal's announcement the cut went through: no argument of its own,
                    // and a literal of a length not known.
                    return Ok(LineEnd::Literal { len: 0, synchronizing: true });
                }
                let (atom, after) = atom(rest);
                on_token(Token::Atom(atom));
                rest = after;
            }
            _ => {
                let (atom, after) = atom(rest);
                on_token(if atom.eq_ignore_ascii_case(b"NIL") { Token::Nil(atom) } else { Token::Atom(atom) });
                rest = after;
            }
        }
    }
}

/// An atom runs to the next space, parenthesis or quote; a `{` at its start is kept as text
/// when it is not an end-of-line literal marker.
fn atom(text: &[u8]) -> (&[u8], &[u8]) {
    let end = text
        .iter()
        .enumerate()
        .position(|(i, b)| matches!(b, b' ' | b'(' | b')') || (*b == b'"' && i > 0))
        .unwrap_or(text.len())
        .max(1);
    (text.get(..end).unwrap_or(text), text.get(end..).unwrap_or(&[]))
}

/// The body of a quoted string (after the opening quote): its unescaped text and what follows;
/// `cut`: a string left open ends with the text.
fn quoted(text: &[u8], cut: bool) -> Result<(Cow<'_, [u8]>, &[u8]), TokenizeError> {
    let mut owned: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        match byte {
            b'"' => {
                let value = match owned {
                    Some(buf) => Cow::Owned(buf),
                    None => Cow::Borrowed(text.get(..i).unwrap_or(&[])),
                };
                return Ok((value, text.get(i + 1..).unwrap_or(&[])));
            }
            b'\\' => {
                let buf = owned.get_or_insert_with(|| text.get(..i).unwrap_or(&[]).to_vec());
                if let Some(&escaped) = text.get(i + 1) {
                    buf.push(escaped);
                }
                i += 2;
            }
            _ => {
                if let Some(buf) = &mut owned {
                    buf.push(byte);
                }
                i += 1;
            }
        }
    }
    if cut {
        let value = match owned {
            Some(buf) => Cow::Owned(buf),
            None => Cow::Borrowed(text),
        };
        return Ok((value, &[]));
    }
    Err(TokenizeError::UnterminatedQuote)
}

/// The start of `{digits}` or `{digits+}` as the last thing on a line whose end was lost (`{`,
/// `{16`, `{16+`).
fn is_literal_marker_start(text: &[u8]) -> bool {
    let inner = text.strip_prefix(b"{").unwrap_or(text);
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit)
}

/// `{digits}` or `{digits+}` as the last thing on the line.
fn literal_marker(text: &[u8]) -> Option<LineEnd> {
    let inner = text.strip_prefix(b"{")?.strip_suffix(b"}")?;
    let (digits, synchronizing) = match inner.strip_suffix(b"+") {
        Some(digits) => (digits, false),
        None => (inner, true),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(LineEnd::Literal { len, synchronizing })
}

/// A literal announced at the end of a line of unknown shape (what a lost command's literal
/// left of its line): the bytes before the announcement and its space, and the literal's length.
pub fn trailing_literal(line: &[u8]) -> Option<(&[u8], u64)> {
    let start = memchr::memrchr(b'{', line)?;
    let before = line.get(..start)?.strip_suffix(b" ")?;
    match literal_marker(line.get(start..)?)? {
        LineEnd::Literal { len, .. } => Some((before, len)),
        LineEnd::Complete => None,
    }
}

/// The response code of a status response, e.g. `CAPABILITY IMAP4rev1 STARTTLS` from
/// `OK [CAPABILITY IMAP4rev1 STARTTLS] ready`.
pub fn response_code(text: &[u8]) -> Option<&[u8]> {
    let start = memchr::memchr(b'[', text)?;
    let after = text.get(start + 1..)?;
    let end = memchr::memchr(b']', after)?;
    after.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(line: &[u8]) -> Vec<Vec<u8>> {
        tokenize(line).unwrap().tokens.iter().filter_map(|t| t.string().map(<[u8]>::to_vec)).collect()
    }

    #[test]
    fn atoms_quoted_and_escapes() {
        assert_eq!(strings(b"a1 LOGIN alice s3cret"), [&b"a1"[..], b"LOGIN", b"alice", b"s3cret"]);
        assert_eq!(
            strings(br#"A001 login "bob@example.test" "b0b says \"hi\" \\o/""#),
            [&b"A001"[..], b"login", b"bob@example.test", br#"b0b says "hi" \o/"#]
        );
        assert_eq!(strings(br#"x LOGIN "" """#), [&b"x"[..], b"LOGIN", b"", b""]);
    }

    #[test]
    fn literal_markers_only_at_end_of_line() {
        let t = tokenize(b"a LOGIN {5}").unwrap();
        assert_eq!(t.end, LineEnd::Literal { len: 5, synchronizing: true });
        assert_eq!(t.tokens.len(), 2);
        let t = tokenize(b"a LOGIN alice {12+}").unwrap();
        assert_eq!(t.end, LineEnd::Literal { len: 12, synchronizing: false });
        let t = tokenize(br#"a LOGIN alice "trick{7}""#).unwrap();
        assert_eq!(t.end, LineEnd::Complete);
        assert_eq!(t.tokens.get(3).and_then(Token::string), Some(&b"trick{7}"[..]));
        let t = tokenize(b"a LOGIN alice trick{7}").unwrap();
        assert_eq!(t.end, LineEnd::Complete);
        assert_eq!(tokenize(b"a LOGIN {99999999999999999999}").unwrap().end, LineEnd::Complete);
        assert_eq!(
            tokenize(b"a LOGIN {4294967296}").unwrap().end,
            LineEnd::Literal { len: 4_294_967_296, synchronizing: true }
        );
    }

    /// A cut line that ends inside a literal's announcement (a snap length cut `a1 LOGIN {16}`
    /// after `{1`) has no argument there: the literal lies past the cut.
    #[test]
    fn a_cut_line_ending_inside_a_literal_announcement_has_no_argument_there() {
        let cut_strings = |line| {
            let (tokens, announced) = tokenize_cut(line);
            (tokens.iter().filter_map(|t| t.string().map(<[u8]>::to_vec)).collect::<Vec<_>>(), announced)
        };
        for line in [&b"a1 LOGIN {1"[..], b"a1 LOGIN {", b"a1 LOGIN {16+", b"a1 LOGIN {16}"] {
            assert_eq!(
                cut_strings(line),
                (vec![b"a1".to_vec(), b"LOGIN".to_vec()], true),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(cut_strings(b"a1 LOGIN bob {1"), (vec![b"a1".to_vec(), b"LOGIN".to_vec(), b"bob".to_vec()], true));
        let no_announcement = vec![b"a1".to_vec(), b"LOGIN".to_vec(), b"{bo".to_vec()];
        assert_eq!(cut_strings(b"a1 LOGIN {bo"), (no_announcement, false));
        assert_eq!(
            cut_strings(b"a1 LOGIN bob pass"),
            (vec![b"a1".to_vec(), b"LOGIN".to_vec(), b"bob".to_vec(), b"pass".to_vec()], false)
        );
    }

    #[test]
    fn a_trailing_literal_follows_a_space() {
        assert_eq!(trailing_literal(b"alice {7}"), Some((&b"alice"[..], 7)));
        assert_eq!(trailing_literal(b"al{ce {12+}"), Some((&b"al{ce"[..], 12)));
        assert_eq!(trailing_literal(b" {3}"), Some((&b""[..], 3)));
        for none in [&b"alice{7}"[..], b"alice {7} ", b"alice {x}", b"alice", b"{7}"] {
            assert_eq!(trailing_literal(none), None);
        }
    }

    #[test]
    fn lists_and_nil() {
        let t = tokenize(br#"i ID ("name" "Thunderbird" "version" NIL)"#).unwrap();
        assert_eq!(t.tokens.get(2), Some(&Token::ListOpen));
        assert_eq!(t.tokens.get(6), Some(&Token::Nil(b"NIL")));
        assert_eq!(t.tokens.last(), Some(&Token::ListClose));
    }

    #[test]
    fn nil_is_nothing_as_an_nstring_and_itself_as_an_astring() {
        let t = tokenize(br#"a1 LOGIN nil NIL "NIL""#).unwrap();
        let nstrings: Vec<_> = t.tokens.iter().map(Token::string).collect();
        assert_eq!(nstrings, [Some(&b"a1"[..]), Some(b"LOGIN"), None, None, Some(b"NIL")]);
        let astrings: Vec<_> = t.tokens.iter().map(Token::astring).collect();
        assert_eq!(astrings, [Some(&b"a1"[..]), Some(b"LOGIN"), Some(b"nil"), Some(b"NIL"), Some(b"NIL")]);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(tokenize(br#"a LOGIN "alice"#), Err(TokenizeError::UnterminatedQuote));
        assert_eq!(tokenize(br#"a LOGIN "ali\"#), Err(TokenizeError::UnterminatedQuote));
    }

    #[test]
    fn line_end_is_the_end_tokenize_finds() {
        for line in [
            &b"* 1 FETCH (BODY[] {342}"[..],
            b"* 2 FETCH (FLAGS (\\Seen) BODY[HEADER] {12+}",
            b"* OK [CAPABILITY IMAP4rev1] ready",
            br#"* LIST () "/" "{5}""#,
            br#"* LIST () "/" "unterminated"#,
            b"",
        ] {
            assert_eq!(line_end(line), tokenize(line).map(|t| t.end));
        }
        assert_eq!(line_end(b"* 1 FETCH (BODY[] {342}"), Ok(LineEnd::Literal { len: 342, synchronizing: true }));
    }

    #[test]
    fn response_codes() {
        assert_eq!(
            response_code(b"OK [CAPABILITY IMAP4rev1 STARTTLS] ready"),
            Some(&b"CAPABILITY IMAP4rev1 STARTTLS"[..])
        );
        assert_eq!(response_code(b"OK ready"), None);
    }
}
