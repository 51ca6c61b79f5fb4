//! Text from the wire made safe to show people. User names, greetings, host names and the other
//! strings a client or server chose reach terminals, log files and syslog viewers: a raw escape
//! sequence there can rewrite what the reader sees (clear a line, move the cursor, set a window
//! title), and a raw line break can forge a whole alert line. Every human-readable output passes
//! such strings through [`escaped`] first; JSON and ECS need not, their string escaping already
//! covers them. Invisible format characters and line separators are escaped too: a right-to-left
//! override (U+202E) can make a name or greeting read backwards, and U+2028/U+2029 break lines in
//! some viewers.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1) written as `\xNN`, the form greetings
/// already use, and every format character (Unicode category Cf: bidirectional overrides,
/// zero-width characters, the BOM, …) and line or paragraph separator (Zl, Zp) as `\u{XXXX}`.
/// Printable text, the usual case, is returned as is without a copy.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_shown(&mut out, c);
    }
    Cow::Owned(out)
}

/// Appends `c` as [`escaped`] shows it: the one form of the escapes, for outputs that escape
/// more of their own (HTML's markup characters).
pub fn push_shown(out: &mut String, c: char) {
    // Writing to a String cannot fail.
    if c.is_control() {
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    } else if is_format_or_separator(c) {
        let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
    } else {
        out.push(c);
    }
}

/// Optional text (a greeting, software, …), empty when absent.
pub fn escaped_or_empty(text: Option<&str>) -> Cow<'_, str> {
    text.map_or(Cow::Borrowed(""), escaped)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_format_or_separator(c)
}

/// Unicode's format characters (general category Cf, as of Unicode 16) and its line and paragraph
/// separators (Zl, Zp): invisible, yet they reorder, hide or break the text around them. The
/// standard library has no category lookup, and these ranges change rarely.
fn is_format_or_separator(c: char) -> bool {
    const RANGES: [(u32, u32); 21] = [
        (0x00ad, 0x00ad),
        (0x0600, 0x0605),
        (0x061c, 0x061c),
        (0x06dd, 0x06dd),
        (0x070f, 0x070f),
        (0x0890, 0x0891),
        (0x08e2, 0x08e2),
        (0x180e, 0x180e),
        (0x200b, 0x200f),
        // U+2028 and U+2029 (Zl, Zp), then the bidirectional embeddings and overrides.
        (0x2028, 0x202e),
        (0x2060, 0x2064),
        (0x2066, 0x206f),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0x110bd, 0x110bd),
        (0x110cd, 0x110cd),
        (0x13430, 0x1343f),
        (0x1bca0, 0x1bca3),
        (0x1d173, 0x1d17a),
        (0xe0001, 0xe0001),
        (0xe0020, 0xe007f),
    ];
    let code = u32::from(c);
    code >= 0xad && RANGES.iter().any(|&(first, last)| (first..=last).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        assert!(matches!(escaped("a***@example.test"), Cow::Borrowed("a***@example.test")));
        assert!(matches!(escaped("josé ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_are_escaped_so_no_line_or_sequence_survives() {
        assert_eq!(escaped("a\x1b[2K\rb\nc\x7f\u{85}\u{9b}"), "a\\x1b[2K\\x0db\\x0ac\\x7f\\x85\\x9b");
        assert_eq!(escaped("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
    }

    #[test]
    fn format_characters_and_separators_are_escaped_visibly() {
        assert_eq!(escaped("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(
            escaped("\u{feff}x\u{2028}y\u{2029}z\u{200b}\u{2066}\u{e0041}"),
            "\\u{feff}x\\u{2028}y\\u{2029}z\\u{200b}\\u{2066}\\u{e0041}"
        );
        assert!(matches!(escaped("é 日本 😀 \u{a0}"), Cow::Borrowed(_)), "letters, emoji and no-break space stay");
    }
}
