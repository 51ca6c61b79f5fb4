//! Redaction policy for what is not secret but still personal: user names. Passwords never get
//! here at all (see [`crate::proto`]).

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How user names appear in events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UsernamePolicy {
    /// First character and any `@domain`: `b***@example.test` (the default).
    #[default]
    Masked,
    /// In full, for teams allowed to see them.
    Full,
    /// A keyed HMAC-SHA256, so the same user can be followed across alerts without being named.
    Hashed { key: Vec<u8> },
}

/// Everything the protocol layer needs to redact what it reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedactionPolicy {
    pub username: UsernamePolicy,
    /// When set, alerts carry a keyed fingerprint of each secret (never the secret).
    pub fingerprint_key: Option<Vec<u8>>,
}

impl RedactionPolicy {
    /// The user name as events show it. Bytes that are not UTF-8 are kept as `\xNN` escapes, so
    /// nothing is lost or silently replaced.
    pub fn render_username(&self, raw: &[u8]) -> String {
        match &self.username {
            UsernamePolicy::Full => escape_non_utf8(raw).into_owned(),
            UsernamePolicy::Masked => mask(raw),
            UsernamePolicy::Hashed { key } => format!("hmac-sha256:{}", keyed_hex(key, raw)),
        }
    }
}

/// Lower-case hex of the first 8 bytes of HMAC-SHA256(key, data): short enough to read, long
/// enough to tell values apart, and useless as a dictionary oracle without the key.
pub(crate) fn keyed_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC takes keys of any length (RFC 2104 hashes long ones), so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(data);
    let digest = mac.finalize().into_bytes();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Masks the raw name, before any escaping: what is kept is the first character (or, when the
/// name does not start with a UTF-8 character, its first byte) and what follows the last `@`.
/// Masking the escaped text instead would let a name that starts with a literal `\x` keep three
/// more characters, whatever they are.
fn mask(raw: &[u8]) -> String {
    let (local, domain) = match raw.iter().rposition(|&byte| byte == b'@') {
        Some(at) => raw.split_at(at),
        None => (raw, &[][..]),
    };
    let first_len =
        local.utf8_chunks().next().map_or(0, |chunk| chunk.valid().chars().next().map_or(1, char::len_utf8));
    let first = escape_non_utf8(local.get(..first_len).unwrap_or_default());
    let domain = escape_non_utf8(domain);
    // Built without `format!`, which costs more than the rest of an alert's user name.
    let mut masked = String::with_capacity(first.len() + 3 + domain.len());
    masked.push_str(&first);
    masked.push_str("***");
    masked.push_str(&domain);
    masked
}

/// Valid UTF-8 passes through (borrowed: the usual case costs no copy); each invalid byte
/// becomes `\xNN`.
fn escape_non_utf8(raw: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(raw) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(raw: &[u8]) -> String {
        RedactionPolicy::default().render_username(raw)
    }

    #[test]
    fn masks_keeping_first_character_and_domain() {
        assert_eq!(masked(b"alice"), "a***");
        assert_eq!(masked(b"bob@example.test"), "b***@example.test");
        assert_eq!(masked("josé.müller@example.test".as_bytes()), "j***@example.test");
        assert_eq!(masked(b"carol \"cc\" smith"), "c***");
        assert_eq!(masked(b""), "***");
        assert_eq!(masked(b"a@b@c.test"), "a***@c.test");
        assert_eq!(masked("élise@example.test".as_bytes()), "é***@example.test");
        assert_eq!(masked(b"@example.test"), "***@example.test");
    }

    #[test]
    fn invalid_utf8_is_escaped_not_replaced() {
        let policy = RedactionPolicy { username: UsernamePolicy::Full, fingerprint_key: None };
        assert_eq!(policy.render_username(b"ab\xffc"), "ab\\xffc");
        assert_eq!(masked(b"\xfebc"), "\\xfe***");
        assert_eq!(masked(b"\xe2\x82x@\xff.test"), "\\xe2***@\\xff.test", "a cut UTF-8 sequence keeps one byte");
    }

    #[test]
    fn masking_keeps_one_character_of_the_raw_name_whatever_it_looks_like_escaped() {
        assert_eq!(masked(b"\\x\x1b[2Kalice"), "\\***", "a literal \\x does not widen what is kept");
        assert_eq!(masked(b"\\xab-secret"), "\\***");
    }

    #[test]
    fn hashing_is_keyed_and_stable() {
        let a = RedactionPolicy { username: UsernamePolicy::Hashed { key: b"k1".to_vec() }, fingerprint_key: None };
        let b = RedactionPolicy { username: UsernamePolicy::Hashed { key: b"k2".to_vec() }, fingerprint_key: None };
        let first = a.render_username(b"alice");
        assert_eq!(first, a.render_username(b"alice"));
        assert_ne!(first, b.render_username(b"alice"));
        assert!(first.starts_with("hmac-sha256:") && first.len() == "hmac-sha256:".len() + 16);
        assert!(!first.contains("alice"));
    }
}
