//! Text from the wire made safe to show people. User names, greetings, host names and the other
//! strings a client or server chose reach terminals, log files and syslog viewers: a raw escape
//! sequence there can rewrite what the reader sees (clear a line, move the cursor, set a window
//! title), and a raw line break can forge a whole alert line. Every human-readable output passes
//! such strings through [`escaped`] first; JSON and ECS need not, their string escaping already
//! covers them.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1) written as `\xNN`, the form greetings
/// already use. Printable text, the usual case, is returned as is without a copy.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Optional text (a greeting, software, …), empty when absent.
pub fn escaped_or_empty(text: Option<&str>) -> Cow<'_, str> {
    text.map_or(Cow::Borrowed(""), escaped)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
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
}
