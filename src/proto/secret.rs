//! The one type that holds a plaintext password, token or SASL blob.
//!
//! Everything the protocol parsers extract as a credential is wrapped in [`Secret`] as soon as it is
//! copied out of the stream, so that the compiler, not code review, stops it from being printed,
//! logged or serialised: it has no `Display`, no `Serialize`, no `Clone`, and its `Debug` shows only
//! the length. The only information that may leave is its length and a *keyed* fingerprint.
//!
//! Wiping on drop is best effort: it covers the copy held here, not the bytes that are still in
//! reassembly buffers or in the caller's decoded SASL buffer when it was built.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt;

use zeroize::Zeroizing;

/// A credential in plaintext, wiped from memory when dropped and impossible to print.
///
/// `Debug` shows only the length:
///
/// ```
/// use credwatch::proto::secret::Secret;
/// let secret = Secret::new(b"hunter2".to_vec());
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED], len=7)");
/// ```
///
/// It cannot be formatted with `Display`:
///
/// ```compile_fail
/// use credwatch::proto::secret::Secret;
/// let secret = Secret::new(b"hunter2".to_vec());
/// let _ = format!("{}", secret);
/// ```
///
/// It cannot be serialised:
///
/// ```compile_fail
/// use credwatch::proto::secret::Secret;
/// let secret = Secret::new(b"hunter2".to_vec());
/// let _ = serde_json::to_string(&secret);
/// ```
///
/// It cannot be cloned, so no copy escapes the wipe-on-drop:
///
/// ```compile_fail
/// use credwatch::proto::secret::Secret;
/// let secret = Secret::new(b"hunter2".to_vec());
/// let _copy = secret.clone();
/// ```
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes ownership of the plaintext so that this copy is wiped on drop.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Length in bytes; safe to report.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty credential (e.g. a client that sent an empty password).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A keyed digest of the secret, under the key derived for fingerprints (never comparable to
    /// a hashed user name).
    ///
    /// Equal secrets give equal fingerprints under the same key, which lets an operator spot the
    /// same password on several accounts or servers. The key keeps it from being an offline
    /// dictionary oracle: an unkeyed hash of a password is crackable.
    pub fn fingerprint(&self, key: &crate::alert::DigestKey) -> String {
        crate::alert::keyed_hex(key, &self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([REDACTED], len={})", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(site_key: &[u8]) -> crate::alert::DigestKey {
        crate::alert::DigestKey::derive(site_key, crate::alert::KeyedPurpose::SecretFingerprint)
    }

    /// Long enough and varied enough that an accidental leak of any byte would show.
    const PASSWORD: &[u8] = b"Zq7#pW!x";

    #[test]
    fn debug_shows_length_only() {
        let secret = Secret::new(PASSWORD.to_vec());
        let shown = format!("{secret:?}");
        assert_eq!(shown, "Secret([REDACTED], len=8)");
        let pretty = format!("{secret:#?}");
        for byte in PASSWORD {
            let c = char::from(*byte);
            assert!(!shown.contains(c), "Debug output leaks byte {c:?}");
            assert!(!pretty.contains(c), "pretty Debug output leaks byte {c:?}");
        }
    }

    #[test]
    fn debug_of_binary_secret_has_no_content() {
        let blob: Vec<u8> = (0..=255).collect();
        let shown = format!("{:?}", Secret::new(blob));
        assert_eq!(shown, "Secret([REDACTED], len=256)");
    }

    #[test]
    fn len_and_is_empty() {
        let secret = Secret::new(PASSWORD.to_vec());
        assert_eq!(secret.len(), PASSWORD.len());
        assert!(!secret.is_empty());
        let empty = Secret::new(Vec::new());
        assert_eq!(empty.len(), 0);
        assert!(empty.is_empty());
    }

    #[test]
    fn fingerprint_is_deterministic() {
        let first = Secret::new(PASSWORD.to_vec()).fingerprint(&key(b"site key"));
        let second = Secret::new(PASSWORD.to_vec()).fingerprint(&key(b"site key"));
        assert_eq!(first, second);
        assert_eq!(first.len(), 16);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn fingerprint_depends_on_key_and_secret() {
        let secret = Secret::new(PASSWORD.to_vec());
        assert_ne!(secret.fingerprint(&key(b"key one")), secret.fingerprint(&key(b"key two")));
        let other = Secret::new(b"Zq7#pW!y".to_vec());
        assert_ne!(secret.fingerprint(&key(b"key one")), other.fingerprint(&key(b"key one")));
    }

    /// The recipe docs/security.md gives, as Python's `hmac` computes it: HMAC-SHA256 under
    /// HMAC-SHA256(key, "credwatch secret fingerprint v1"), first 8 bytes in hex (RFC 4231 test
    /// case 2's key and data).
    #[test]
    fn fingerprint_follows_the_documented_recipe() {
        let secret = Secret::new(b"what do ya want for nothing?".to_vec());
        assert_eq!(secret.fingerprint(&key(b"Jefe")), "06bbfb4add33a8a0");
    }

    #[test]
    fn fingerprint_accepts_empty_and_long_keys() {
        let secret = Secret::new(PASSWORD.to_vec());
        let long_key = [0xaa_u8; 131];
        assert_ne!(secret.fingerprint(&key(b"")), secret.fingerprint(&key(&long_key)));
    }

    #[test]
    fn fingerprint_does_not_contain_secret() {
        let hex_password = Secret::new(b"deadbeef".to_vec());
        let fingerprint = hex_password.fingerprint(&key(b"k"));
        assert!(!fingerprint.contains("deadbeef"));
        let hex_of_password: String = PASSWORD.iter().map(|b| format!("{b:02x}")).collect();
        let fingerprint = Secret::new(PASSWORD.to_vec()).fingerprint(&key(b"k"));
        assert!(!fingerprint.contains(&hex_of_password[..8]));
    }
}
