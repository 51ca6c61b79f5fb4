//! Redaction policy for what is not secret but still personal: user names. Passwords never get
//! here at all (see [`crate::proto`]).

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// How user names appear in events. Its `Debug` never shows the key: the configuration is
/// printed in logs and panics, and with the key anyone could test guessed names against a
/// hashed one.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum UsernamePolicy {
    /// First character and any `@domain`: `b***@example.test` (the default).
    #[default]
    Masked,
    /// In full, for teams allowed to see them.
    Full,
    /// A keyed HMAC-SHA256, so the same user can be followed across alerts without being named.
    Hashed { key: DigestKey },
}

/// How an alert's user name is written, for outputs with a field for each (ECS: `user.name` for a
/// name, `user.hash` for a digest, neither for a mask, which different accounts share).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UsernameForm {
    #[default]
    Masked,
    Full,
    Hashed,
}

impl std::fmt::Debug for UsernamePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsernamePolicy::Masked => f.write_str("Masked"),
            UsernamePolicy::Full => f.write_str("Full"),
            UsernamePolicy::Hashed { .. } => f.write_str("Hashed { key: .. }"),
        }
    }
}

/// Everything the protocol layer needs to redact what it reports. Its `Debug` tells whether a
/// fingerprint key is set, never the key (see [`UsernamePolicy`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedactionPolicy {
    pub username: UsernamePolicy,
    /// When set, alerts carry a keyed fingerprint of each secret (never the secret).
    pub fingerprint_key: Option<DigestKey>,
}

impl std::fmt::Debug for RedactionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactionPolicy")
            .field("username", &self.username)
            .field("fingerprint_key", &self.fingerprint_key.as_ref().map(|_| ".."))
            .finish()
    }
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

    /// How [`render_username`](Self::render_username) writes names.
    pub fn username_form(&self) -> UsernameForm {
        match &self.username {
            UsernamePolicy::Full => UsernameForm::Full,
            UsernamePolicy::Masked => UsernameForm::Masked,
            UsernamePolicy::Hashed { .. } => UsernameForm::Hashed,
        }
    }

    /// Who the raw user name belongs to, whatever the policy shows of it.
    pub fn user_key(&self, raw: &[u8]) -> UserKey {
        UserKey::of(UserName::Raw(raw))
    }
}

/// Who a user name belongs to, without naming them: a keyed digest of the raw name. Masked names
/// merge accounts (`alice@`, `adam@` and `anna@corp.test` all show as `a***@corp.test`), so
/// deduplication and the distinct-user counts go by this instead. Internal: never serialised,
/// and its `Debug` shows nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey(u64);

impl std::fmt::Debug for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserKey(..)")
    }
}

/// What a [`UserKey`] digests: the raw name as the wire carried it, or (for events built without
/// one) the name as shown. Tagged, so that a raw name can never match another's shown form.
#[derive(Clone, Copy, Hash)]
pub(crate) enum UserName<'a> {
    Raw(&'a [u8]),
    Shown(&'a str),
}

impl UserKey {
    /// SipHash under a random key of this process (std's `RandomState`: 128 bits from the
    /// operating system's randomness, the same for every thread). The digests are only compared
    /// in memory within one run, so no configured key is needed, and one nobody knows keeps them
    /// from being tested against guessed names; 64 bits make a collision among a million names
    /// about a one in 37 million chance. A cryptographic MAC here cost 14 000 instructions a login,
    /// a fifth of a mail-heavy run.
    pub(crate) fn of(name: UserName<'_>) -> UserKey {
        static KEY: OnceLock<std::hash::RandomState> = OnceLock::new();
        UserKey(KEY.get_or_init(std::hash::RandomState::new).hash_one(name))
    }
}

/// Characters of a [`keyed_hex`] text.
pub(crate) const KEYED_HEX_LEN: usize = 16;

/// What a keyed digest is for. Each purpose digests under a key of its own, derived from
/// the site key, so that digests of different purposes cannot be compared: with one key for both,
/// a hashed user name equal to a secret's fingerprint would show a password equal to a user name,
/// and anyone able to send a login in clear on a watched link could test guessed passwords
/// against the fingerprints by sending them as user names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyedPurpose {
    UserName,
    SecretFingerprint,
}

impl KeyedPurpose {
    /// The label its key is derived with (docs/security.md gives the recipe to reproduce it).
    fn label(self) -> &'static [u8] {
        match self {
            KeyedPurpose::UserName => b"credwatch user name v1",
            KeyedPurpose::SecretFingerprint => b"credwatch secret fingerprint v1",
        }
    }
}

/// The key of one purpose's digests: HMAC-SHA256(site key, the purpose's label), derived once
/// (a MAC costs about 14 000 instructions), wiped when dropped, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestKey {
    purpose: KeyedPurpose,
    key: Zeroizing<[u8; 32]>,
}

impl DigestKey {
    pub fn derive(site_key: &[u8], purpose: KeyedPurpose) -> DigestKey {
        DigestKey { purpose, key: Zeroizing::new(hmac_sha256(site_key, purpose.label())) }
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DigestKey({:?}, ..)", self.purpose)
    }
}

/// Lower-case hex of the first 8 bytes of HMAC-SHA256(`key`, data): short enough to read, long
/// enough to tell values apart, useless as a dictionary oracle without the site key, and never
/// comparable across purposes.
pub(crate) fn keyed_hex(key: &DigestKey, data: &[u8]) -> String {
    hmac_sha256(key.key.as_slice(), data).iter().take(KEYED_HEX_LEN / 2).map(|b| format!("{b:02x}")).collect()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (RFC 2104 hashes long ones), so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Masks the raw name, before any escaping: what is kept is the first character (or, when the
/// name does not start with a UTF-8 character, its first byte) and what follows the last `@` when
/// it is a host name. Anything else after an `@` is masked too: people type passwords into the
/// user name field (`P@ssw0rd!`), or the password after the name (`USER alice@corp.test
/// hunter2`), and the text after the `@` is then part of a secret. Masking the escaped text
/// instead would let a name that starts with a literal `\x` keep three more characters, whatever
/// they are. A Windows down-level logon name (`CORP\alice`, as NTLM and Exchange logins carry
/// it) keeps its domain the same way, when that looks like one ([`looks_like_logon_domain`]):
/// `CORP\a***`, not `C***`.
fn mask(raw: &[u8]) -> String {
    let (logon_domain, raw) = match raw.iter().position(|&byte| byte == b'\\') {
        Some(backslash) if raw.get(..backslash).is_some_and(looks_like_logon_domain) => {
            raw.split_at(backslash.saturating_add(1))
        }
        _ => (&[][..], raw),
    };
    let (local, domain) = match raw.iter().rposition(|&byte| byte == b'@') {
        Some(at) if raw.get(at + 1..).is_some_and(looks_like_hostname) => raw.split_at(at),
        _ => (raw, &[][..]),
    };
    let first_len =
        local.utf8_chunks().next().map_or(0, |chunk| chunk.valid().chars().next().map_or(1, char::len_utf8));
    let first = escape_non_utf8(local.get(..first_len).unwrap_or_default());
    let domain = escape_non_utf8(domain);
    // Built without `format!`, which costs more than the rest of an alert's user name.
    let mut masked = String::with_capacity(logon_domain.len() + first.len() + 3 + domain.len());
    masked.push_str(&escape_non_utf8(logon_domain));
    masked.push_str(&first);
    masked.push_str("***");
    masked.push_str(&domain);
    masked
}

/// A DNS host name: dot-separated labels of ASCII letters, digits and hyphens, at least two, 253
/// bytes at most (a trailing dot aside), a letter somewhere (an address or a number is not one).
pub(crate) fn looks_like_hostname(token: &[u8]) -> bool {
    let token = token.strip_suffix(b".").unwrap_or(token);
    token.contains(&b'.')
        && token.len() <= 253
        && token
            .split(|byte| *byte == b'.')
            .all(|label| !label.is_empty() && label.iter().all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-'))
        && token.iter().any(u8::is_ascii_alphabetic)
}

/// The domain of a down-level logon name as Windows writes it, in upper case: a NetBIOS name (1
/// to 15 letters, digits and hyphens) or a DNS name whose last label is letters (`CORP`,
/// `PF.X2.TEST`), a letter among them. Nothing else, since what comes before a backslash may as
/// well be the start of a password typed as the user name: those mix cases, or end in digits
/// (`Summer.2024\!x` is masked whole).
fn looks_like_logon_domain(prefix: &[u8]) -> bool {
    let upper_case = prefix.iter().all(|byte| !byte.is_ascii_lowercase()) && prefix.iter().any(u8::is_ascii_uppercase);
    let netbios = prefix.len() <= 15
        && prefix.iter().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || *byte == b'-');
    let top_level_is_letters =
        prefix.rsplit(|byte| *byte == b'.').next().is_some_and(|label| label.iter().all(u8::is_ascii_alphabetic));
    upper_case && !prefix.is_empty() && (netbios || (looks_like_hostname(prefix) && top_level_is_letters))
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
        assert_eq!(masked(b"bob@mail.example.test."), "b***@mail.example.test.");
    }

    /// What follows an `@` is shown only when it is a host name: a password typed as the user
    /// name, or after it on the same line, is masked whole but for its first character.
    #[test]
    fn text_after_an_at_that_is_no_host_name_is_masked() {
        assert_eq!(masked(b"P@ssw0rd!"), "P***");
        assert_eq!(masked(b"s3cr3t@2024"), "s***");
        assert_eq!(masked(b"Summer@2024.01"), "S***", "numbers are no host name");
        assert_eq!(masked(b"alice@corp.test hunter2"), "a***");
        assert_eq!(masked(b"alice@corp..test"), "a***");
        assert_eq!(masked(b"alice@"), "a***");
        assert_eq!(masked(b"alice@localhost"), "a***", "a single label is no host name to show");
        assert_eq!(masked("bob@exämple.test".as_bytes()), "b***");
        assert_eq!(masked(format!("bob@{}.test", "a".repeat(250)).as_bytes()), "b***");
        assert_eq!(masked(b"a@b@c.test"), "a***@c.test");
        assert_eq!(masked(b"a@c.test@pass word"), "a***");
    }

    /// `DOMAIN\user`, as NTLM reports it and Exchange users type it, keeps the domain and the
    /// account's first character; what only might be a domain is masked as before.
    #[test]
    fn down_level_logon_names_keep_their_domain() {
        assert_eq!(masked(b"PF.X2.TEST\\alice"), "PF.X2.TEST\\a***");
        assert_eq!(masked(b"CORP\\alice"), "CORP\\a***");
        assert_eq!(masked(b"CORP-2\\alice@corp.test"), "CORP-2\\a***@corp.test");
        assert_eq!(masked(b"CORP\\"), "CORP\\***");
        assert_eq!(masked(b"Winter\\2024"), "W***", "mixed case is no NetBIOS domain");
        assert_eq!(masked(b"Summer.2024\\!x"), "S***", "a password with a dot is no DNS domain");
        assert_eq!(masked(b"corp.example.test\\alice"), "c***", "Windows writes domains in upper case");
        assert_eq!(masked(b"CORP.2024\\alice"), "C***", "a DNS domain ends in letters");
        assert_eq!(masked(b"2024\\pass"), "2***", "a domain needs a letter");
        assert_eq!(masked(b"ABCDEFGHIJKLMNOP\\alice"), "A***", "NetBIOS names are 15 characters at most");
        assert_eq!(masked(b"\\alice"), "\\***");
        assert_eq!(masked(b"a\\b\\c"), "a***");
    }

    #[test]
    fn invalid_utf8_is_escaped_not_replaced() {
        let policy = RedactionPolicy { username: UsernamePolicy::Full, fingerprint_key: None };
        assert_eq!(policy.render_username(b"ab\xffc"), "ab\\xffc");
        assert_eq!(masked(b"\xfebc"), "\\xfe***");
        assert_eq!(masked(b"\xe2\x82x@example.test"), "\\xe2***@example.test", "a cut UTF-8 sequence keeps one byte");
        assert_eq!(masked(b"bob@\xff.test"), "b***", "no host name");
    }

    #[test]
    fn masking_keeps_one_character_of_the_raw_name_whatever_it_looks_like_escaped() {
        assert_eq!(masked(b"\\x\x1b[2Kalice"), "\\***", "a literal \\x does not widen what is kept");
        assert_eq!(masked(b"\\xab-secret"), "\\***");
    }

    #[test]
    fn user_keys_tell_apart_the_accounts_masking_merges_and_show_nothing() {
        let policy = RedactionPolicy::default();
        let names: [&[u8]; 3] = [b"alice@corp.test", b"adam@corp.test", b"anna@corp.test"];
        let keys: std::collections::BTreeSet<UserKey> = names.iter().map(|name| policy.user_key(name)).collect();
        assert_eq!(keys.len(), 3);
        assert!(names.iter().all(|name| masked(name) == "a***@corp.test"));
        assert_eq!(policy.user_key(b"alice@corp.test"), policy.user_key(b"alice@corp.test"));
        assert_ne!(UserKey::of(UserName::Raw(b"a***")), UserKey::of(UserName::Shown("a***")));
        assert_eq!(format!("{:?}", policy.user_key(b"alice@corp.test")), "UserKey(..)");
    }

    #[test]
    fn hashing_is_keyed_and_stable() {
        let a = RedactionPolicy {
            username: UsernamePolicy::Hashed { key: DigestKey::derive(b"k1", KeyedPurpose::UserName) },
            fingerprint_key: None,
        };
        let b = RedactionPolicy {
            username: UsernamePolicy::Hashed { key: DigestKey::derive(b"k2", KeyedPurpose::UserName) },
            fingerprint_key: None,
        };
        let first = a.render_username(b"alice");
        assert_eq!(first, a.render_username(b"alice"));
        assert_ne!(first, b.render_username(b"alice"));
        assert!(first.starts_with("hmac-sha256:") && first.len() == "hmac-sha256:".len() + 16);
        assert!(!first.contains("alice"));
    }

    /// A user name that is some account's password must not hash to that password's fingerprint
    /// under the same key (nor the other way round): the two purposes digest under keys of their
    /// own. The value is the recipe of docs/security.md as Python's `hmac` computes it.
    #[test]
    fn hashed_names_cannot_be_compared_with_secret_fingerprints() {
        let key = b"Jefe";
        let policy = RedactionPolicy {
            username: UsernamePolicy::Hashed { key: DigestKey::derive(key, KeyedPurpose::UserName) },
            fingerprint_key: None,
        };
        let name = policy.render_username(b"alice@example.test");
        assert_eq!(name, "hmac-sha256:4363d9e365c39b44");
        let same_bytes = b"what do ya want for nothing?";
        let hashed = policy.render_username(same_bytes);
        let fingerprint = crate::proto::secret::Secret::new(same_bytes.to_vec())
            .fingerprint(&DigestKey::derive(key, KeyedPurpose::SecretFingerprint));
        assert_eq!(hashed, "hmac-sha256:4e5e5d9e0179ba32");
        assert_ne!(hashed.trim_start_matches("hmac-sha256:"), fingerprint);
    }

    #[test]
    fn debug_shows_the_policy_without_its_keys() {
        let key = |purpose| DigestKey::derive(b"Canary-Key-0123456789", purpose);
        let policy = RedactionPolicy {
            username: UsernamePolicy::Hashed { key: key(KeyedPurpose::UserName) },
            fingerprint_key: Some(key(KeyedPurpose::SecretFingerprint)),
        };
        assert_eq!(format!("{:?}", key(KeyedPurpose::UserName)), "DigestKey(UserName, ..)");
        // Compared, never printed: on failure the message would show the key.
        let expected = "RedactionPolicy { username: Hashed { key: .. }, fingerprint_key: Some(\"..\") }";
        assert!(format!("{policy:?}") == expected, "the policy's Debug is not {expected}");
        assert_eq!(
            format!("{:?}", RedactionPolicy::default()),
            "RedactionPolicy { username: Masked, fingerprint_key: None }"
        );
    }
}
