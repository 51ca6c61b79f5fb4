//! Decoding of SASL client messages, shared by the POP3 (RFC 5034), IMAP (RFC 3501, RFC 4959) and
//! SMTP (RFC 4954) sessions.
//!
//! Every function here is pure and total: it takes any bytes a client may have sent and returns a
//! value, never panics, and never puts message content into an error.
//!
//! # How a session uses this module
//!
//! 1. The `AUTH`/`AUTHENTICATE` command names a mechanism: [`Mechanism::from_name`] tells the session
//!    what to expect and [`Mechanism::exposure`] how bad it is to see it in clear.
//! 2. Each client response is one line of base64, either as the initial response on the command line
//!    (SASL-IR, where `=` stands for an empty response) or alone on a continuation line. The session
//!    handles the cancellation line `*` itself, then calls [`decode_base64`].
//! 3. The decoded bytes go to the parser of the mechanism. They contain the credential in clear, so
//!    the session should hold them in a [`zeroize::Zeroizing`] buffer; the parsers copy the
//!    credential into a [`Secret`] and the user name into a plain `Vec<u8>`.
//!
//! User names are returned as raw bytes: they may not be UTF-8, and the caller decides how to report
//! them.
//!
//! # LOGIN
//!
//! The LOGIN mechanism has no structure to parse: each step is one base64 string. The server's
//! challenges are usually the base64 of `Username:` and `Password:`, but servers differ in their
//! prompts, and clients (Outlook, Thunderbird) answer by position, not by prompt text: the first
//! response (the initial response, when the client sends one) is the user name, the second the
//! password (draft-murchison-sasl-login). A session therefore goes by position alone; reading
//! the prompts would let a prompt such as `Enter user secret:` make the password the reported
//! user name.
//! Decoding each step is [`decode_base64`] alone.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::secret::Secret;

/// Why a SASL response could not be decoded. Carries no content, so it is safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The response is not base64 in the standard alphabet.
    #[error("SASL response is not valid base64")]
    BadBase64,
}

/// Standard alphabet, tolerant of what real clients send: some omit the padding, and some encoders
/// leave non-zero bits in the last character, which servers accept.
const CLIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes one base64 SASL response, ignoring surrounding whitespace.
///
/// A lone `=` (RFC 4959, RFC 5034) and an empty line both mean an empty response.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, SaslError> {
    let text = text.trim_ascii();
    if text == b"=" {
        return Ok(Vec::new());
    }
    CLIENT_BASE64.decode(text).map_err(|_| SaslError::BadBase64)
}

/// Whether a client line can be a SASL response: one base64 string (or `=`, or the `*` that
/// cancels), so no space inside. A line with a space is a command (`AUTH PLAIN …`, `USER alice`,
/// IMAP's `tag COMMAND …`), which a client sends only once the exchange is over.
pub fn may_be_response(line: &[u8]) -> bool {
    !line.trim_ascii().contains(&b' ')
}

/// POP3 and SMTP commands sent without an argument.
const BARE_COMMANDS: &[&[u8]] =
    &[b"QUIT", b"CAPA", b"STLS", b"STARTTLS", b"NOOP", b"RSET", b"STAT", b"LIST", b"UIDL", b"DATA", b"HELP", b"AUTH"];

/// Whether a client line is a POP3 or SMTP command that takes no argument (any case). Each is
/// valid base64 too, so a session takes one for a command only once the server's verdict may
/// have been lost.
pub fn is_bare_command(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    BARE_COMMANDS.iter().any(|command| line.eq_ignore_ascii_case(command))
}

/// Longest mechanism name kept from the wire; registered names are at most 20 characters
/// (RFC 4422), and the bound keeps a hostile client from bloating alerts.
const MAX_MECHANISM_NAME_CHARS: usize = 40;

/// A SASL mechanism named by a client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    Login,
    XOAuth2,
    OAuthBearer,
    CramMd5,
    DigestMd5,
    Ntlm,
    /// One of the SCRAM family; holds the full upper-case name, e.g. `SCRAM-SHA-256-PLUS`.
    Scram(String),
    GssApi,
    External,
    Anonymous,
    /// Any other name, upper-cased, bytes that are not printable ASCII replaced by `?`, and cut to
    /// 40 characters, so that it is safe to put in a log line.
    Other(String),
}

impl Mechanism {
    /// Recognises a mechanism name case-insensitively, ignoring surrounding whitespace.
    pub fn from_name(name: &[u8]) -> Self {
        // Upper-cased on the stack: only a name not in the list is kept as a `String`.
        let mut upper = [0u8; MAX_MECHANISM_NAME_CHARS];
        let mut len = 0;
        for (to, &byte) in upper.iter_mut().zip(name.trim_ascii()) {
            *to = if byte.is_ascii_graphic() { byte.to_ascii_uppercase() } else { b'?' };
            len += 1;
        }
        let name = std::str::from_utf8(upper.get(..len).unwrap_or_default()).unwrap_or_default();
        match name {
            "PLAIN" => Self::Plain,
            "LOGIN" => Self::Login,
            "XOAUTH2" => Self::XOAuth2,
            "OAUTHBEARER" => Self::OAuthBearer,
            "CRAM-MD5" => Self::CramMd5,
            "DIGEST-MD5" => Self::DigestMd5,
            "NTLM" => Self::Ntlm,
            "GSSAPI" => Self::GssApi,
            "EXTERNAL" => Self::External,
            "ANONYMOUS" => Self::Anonymous,
            _ if name.starts_with("SCRAM-") => Self::Scram(name.to_string()),
            _ => Self::Other(name.to_string()),
        }
    }

    /// What an alert calls a credential sent with this mechanism after `verb` (`AUTH`,
    /// `AUTHENTICATE`): `AUTH PLAIN`.
    pub fn label(&self, verb: &str) -> String {
        [verb, " ", self.name()].concat()
    }

    /// The canonical upper-case name, e.g. `PLAIN`, `XOAUTH2`, `SCRAM-SHA-1`.
    pub fn name(&self) -> &str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::XOAuth2 => "XOAUTH2",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::CramMd5 => "CRAM-MD5",
            Self::DigestMd5 => "DIGEST-MD5",
            Self::Ntlm => "NTLM",
            Self::GssApi => "GSSAPI",
            Self::External => "EXTERNAL",
            Self::Anonymous => "ANONYMOUS",
            Self::Scram(name) | Self::Other(name) => name,
        }
    }

    /// What an eavesdropper learns from watching this mechanism in clear.
    pub fn exposure(&self) -> Exposure {
        match self {
            Self::Plain | Self::Login => Exposure::Password,
            Self::XOAuth2 | Self::OAuthBearer => Exposure::Token,
            Self::CramMd5 | Self::DigestMd5 | Self::Ntlm | Self::Scram(_) => Exposure::ChallengeResponse,
            Self::GssApi | Self::External | Self::Anonymous | Self::Other(_) => Exposure::None,
        }
    }
}

/// What a mechanism reveals to a passive observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exposure {
    /// The password itself (PLAIN, LOGIN).
    Password,
    /// A bearer token, as good as a password until it expires (XOAUTH2, OAUTHBEARER).
    Token,
    /// A challenge and its response, from which the password can be cracked offline
    /// (CRAM-MD5, DIGEST-MD5, NTLM; SCRAM too, RFC 5802 section 9, slowed by the server's
    /// iteration count).
    ChallengeResponse,
    /// Nothing reusable or crackable, or an unknown mechanism (GSSAPI, EXTERNAL, ANONYMOUS).
    None,
}

/// A LOGIN mechanism prompt (draft-murchison-sasl-login): servers ask `Username:` and then
/// `Password:`, in these words or close to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginPrompt {
    User,
    Password,
}

/// Which LOGIN prompt a decoded challenge is, if any: `Username:`, `User Name`, `Password:`…, in
/// any case, a trailing colon or NUL allowed.
pub fn login_prompt(decoded: &[u8]) -> Option<LoginPrompt> {
    let text = decoded.strip_suffix(b"\0").unwrap_or(decoded).trim_ascii();
    let text = text.strip_suffix(b":").unwrap_or(text).trim_ascii();
    // Compared as it is read, spaces left out and case ignored: no copy of the challenge.
    let is = |word: &[u8]| {
        let letters = text.iter().filter(|byte| **byte != b' ').map(u8::to_ascii_lowercase);
        letters.eq(word.iter().copied())
    };
    if is(b"username") || is(b"user") {
        Some(LoginPrompt::User)
    } else if is(b"password") {
        Some(LoginPrompt::Password)
    } else {
        None
    }
}

/// The separator of XOAUTH2 and OAUTHBEARER key/value pairs (`^A`).
const CTRL_A: u8 = 0x01;

/// An RFC 4616 PLAIN message. Its `Debug` shows lengths only: the identities are raw user names.
pub struct PlainCredential {
    /// Authorization identity: the user to act as; empty when the same as `authcid`.
    pub authzid: Vec<u8>,
    /// Authentication identity: the user whose password this is, the one to report.
    pub authcid: Vec<u8>,
    pub password: Secret,
}

impl std::fmt::Debug for PlainCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainCredential")
            .field("authzid_len", &self.authzid.len())
            .field("authcid_len", &self.authcid.len())
            .field("password", &self.password)
            .finish()
    }
}

/// Parses a decoded PLAIN message: `authzid NUL authcid NUL passwd`.
///
/// Empty fields are accepted: whether they are valid is for the server to judge, and the attempt
/// crossed the wire either way. A third NUL makes the message ambiguous and returns `None`.
pub fn parse_plain(decoded: &[u8]) -> Option<PlainCredential> {
    plain_fields(decoded, false)
}

/// Parses the start of a decoded PLAIN message whose end a capture lost: what there is of the
/// authentication identity and of the password (nothing, when the cut came before it).
pub fn parse_plain_start(decoded: &[u8]) -> Option<PlainCredential> {
    plain_fields(decoded, true)
}

/// The fields of a PLAIN message; `cut`: the password may be missing, lost with the message's end.
fn plain_fields(decoded: &[u8], cut: bool) -> Option<PlainCredential> {
    let mut fields = decoded.splitn(3, |&byte| byte == 0);
    let authzid = fields.next()?;
    let authcid = fields.next()?;
    let password = match fields.next() {
        Some(password) => password,
        None if cut => &[],
        None => return None,
    };
    if password.contains(&0) {
        return None;
    }
    Some(PlainCredential {
        authzid: authzid.to_vec(),
        authcid: authcid.to_vec(),
        password: Secret::new(password.to_vec()),
    })
}

/// The start of a base64 text whose end a capture lost, in whole groups of four characters:
/// what decodes of it.
pub fn whole_base64_groups(text: &[u8]) -> &[u8] {
    let text = text.trim_ascii();
    text.get(..text.len() - text.len() % 4).unwrap_or_default()
}

/// Parses a decoded XOAUTH2 message, `user=` user `^A` `auth=Bearer ` token `^A^A`, into the user
/// and the token.
///
/// Lenient where clients differ: the keys and `Bearer` in any case, fields in any order, any
/// number of trailing `^A`s.
pub fn parse_xoauth2(decoded: &[u8]) -> Option<(Vec<u8>, Secret)> {
    let mut user = None;
    let mut token = None;
    for field in decoded.split(|&byte| byte == CTRL_A) {
        if let Some(value) = strip_prefix_ignore_case(field, b"user=") {
            user.get_or_insert(value);
        } else if let Some(value) = strip_prefix_ignore_case(field, b"auth=") {
            token.get_or_insert(bearer_token(value)?);
        }
    }
    Some((user?.to_vec(), Secret::new(token?.to_vec())))
}

/// Parses a decoded OAUTHBEARER initial response (RFC 7628), `n,a=user,^Akey=value^A…^A^A`, into
/// the optional authorization identity and the bearer token of its `auth` pair.
pub fn parse_oauthbearer(decoded: &[u8]) -> Option<(Option<Vec<u8>>, Secret)> {
    let (user, after_header) = split_gs2_header(decoded)?;
    let pairs = after_header.strip_prefix(&[CTRL_A])?;
    let token = pairs
        .split(|&byte| byte == CTRL_A)
        .find_map(|pair| strip_prefix_ignore_case(pair, b"auth="))
        .and_then(bearer_token)?;
    Some((user, Secret::new(token.to_vec())))
}

/// Parses a decoded SCRAM client-first message (RFC 5802), `n,,n=user,r=nonce`, into the user.
pub fn parse_scram_client_first(decoded: &[u8]) -> Option<Vec<u8>> {
    let (_authzid, bare) = split_gs2_header(decoded)?;
    let mut attributes = bare.split(|&byte| byte == b',');
    let mut first = attributes.next()?;
    if first.starts_with(b"m=") {
        first = attributes.next()?;
    }
    first.strip_prefix(b"n=").map(decode_saslname)
}

/// Whether a decoded SCRAM message is a client-final message (RFC 5802), `c=…,r=…[,…],p=proof`:
/// with the salt and iteration count the server sent before it, its proof lets a password be
/// guessed offline.
pub fn is_scram_client_final(decoded: &[u8]) -> bool {
    let mut attributes = decoded.split(|&byte| byte == b',');
    let starts_with_binding = attributes.next().is_some_and(|first| first.starts_with(b"c="));
    let nonce_follows = attributes.next().is_some_and(|second| second.starts_with(b"r="));
    let ends_with_proof = decoded
        .rsplit(|&byte| byte == b',')
        .next()
        .and_then(|last| last.strip_prefix(b"p="))
        .is_some_and(|proof| !proof.is_empty());
    starts_with_binding && nonce_follows && ends_with_proof
}

/// Parses a decoded CRAM-MD5 response (RFC 2195), `user SP digest`, into the user: everything before
/// the last space, provided what follows is the 32 hex digits of an HMAC-MD5.
pub fn parse_cram_md5_response(decoded: &[u8]) -> Option<Vec<u8>> {
    let mut parts = decoded.rsplitn(2, |&byte| byte == b' ');
    let digest = parts.next()?;
    let user = parts.next()?;
    let is_md5_hex = digest.len() == 32 && digest.iter().all(u8::is_ascii_hexdigit);
    is_md5_hex.then(|| user.to_vec())
}

/// Parses a decoded DIGEST-MD5 response (RFC 2831), a comma-separated list of `name=value`
/// directives, into the value of its `username` directive (quoted string, backslash escapes
/// undone).
///
/// Directives before `username` must be well formed, since a quoted value may contain commas.
pub fn parse_digest_md5_response(decoded: &[u8]) -> Option<Vec<u8>> {
    let mut rest = decoded;
    loop {
        rest = rest.trim_ascii_start();
        if let Some(after_comma) = rest.strip_prefix(b",") {
            rest = after_comma;
            continue;
        }
        let equals = rest.iter().position(|&byte| byte == b'=')?;
        let (name, value_and_rest) = rest.split_at_checked(equals)?;
        let name = name.trim_ascii_end();
        if name.is_empty() || name.iter().any(|&byte| byte == b',' || byte.is_ascii_whitespace()) {
            return None;
        }
        let value_and_rest = value_and_rest.strip_prefix(b"=")?.trim_ascii_start();
        let (value, after_value) = directive_value(value_and_rest)?;
        if name.eq_ignore_ascii_case(b"username") {
            return Some(value);
        }
        rest = after_value;
    }
}

/// Splits one directive value, quoted or a bare token, from the rest of the list.
fn directive_value(text: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let Some(mut quoted) = text.strip_prefix(b"\"") else {
        let end = text.iter().position(|&byte| byte == b',').unwrap_or(text.len());
        let (token, rest) = text.split_at_checked(end)?;
        return Some((token.trim_ascii_end().to_vec(), rest));
    };
    let mut value = Vec::new();
    loop {
        let (&byte, after) = quoted.split_first()?;
        match byte {
            b'"' => {
                quoted = after;
                break;
            }
            b'\\' => {
                let (&escaped, after_escape) = after.split_first()?;
                value.push(escaped);
                quoted = after_escape;
            }
            _ => {
                value.push(byte);
                quoted = after;
            }
        }
    }
    let rest = quoted.trim_ascii_start();
    (rest.is_empty() || rest.starts_with(b",")).then_some((value, rest))
}

/// An NTLM message (MS-NLMP) carried by the SASL NTLM mechanism. Its `Debug` shows the
/// lengths of the names only: they are a raw account.
#[derive(Clone, PartialEq, Eq)]
pub enum NtlmMessage {
    /// Type 1, from the client.
    Negotiate,
    /// Type 2, from the server.
    Challenge,
    /// Type 3, from the client: names the account. Strings are UTF-8 when the message used
    /// Unicode, otherwise the raw OEM bytes.
    Authenticate { user: Vec<u8>, domain: Vec<u8>, workstation: Vec<u8> },
    /// Not an NTLM message, or one whose fields point outside it.
    Invalid,
}

impl std::fmt::Debug for NtlmMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NtlmMessage::Negotiate => f.write_str("Negotiate"),
            NtlmMessage::Challenge => f.write_str("Challenge"),
            NtlmMessage::Authenticate { user, domain, workstation } => f
                .debug_struct("Authenticate")
                .field("user_len", &user.len())
                .field("domain_len", &domain.len())
                .field("workstation_len", &workstation.len())
                .finish(),
            NtlmMessage::Invalid => f.write_str("Invalid"),
        }
    }
}

const NTLMSSP_SIGNATURE: &[u8] = b"NTLMSSP\0";
const NTLM_MESSAGE_TYPE_AT: usize = 8;
const NTLM_DOMAIN_FIELD_AT: usize = 28;
const NTLM_USER_FIELD_AT: usize = 36;
const NTLM_WORKSTATION_FIELD_AT: usize = 44;
/// The flags close the fixed part of a type 3 message; messages too old to carry them are rejected.
const NTLM_AUTHENTICATE_FLAGS_AT: usize = 60;
const NTLM_NEGOTIATE_UNICODE: u32 = 0x0000_0001;

/// Parses a decoded NTLM message, checking every offset against the message length.
pub fn parse_ntlm(decoded: &[u8]) -> NtlmMessage {
    parse_ntlm_message(decoded).unwrap_or(NtlmMessage::Invalid)
}

fn parse_ntlm_message(message: &[u8]) -> Option<NtlmMessage> {
    if !message.starts_with(NTLMSSP_SIGNATURE) {
        return None;
    }
    match read_u32_le(message, NTLM_MESSAGE_TYPE_AT)? {
        1 => Some(NtlmMessage::Negotiate),
        2 => Some(NtlmMessage::Challenge),
        3 => {
            let flags = read_u32_le(message, NTLM_AUTHENTICATE_FLAGS_AT)?;
            let unicode = flags & NTLM_NEGOTIATE_UNICODE != 0;
            let text_field = |field_at| {
                ntlm_field(message, field_at).map(|raw| if unicode { utf16le_to_utf8(raw) } else { raw.to_vec() })
            };
            Some(NtlmMessage::Authenticate {
                user: text_field(NTLM_USER_FIELD_AT)?,
                domain: text_field(NTLM_DOMAIN_FIELD_AT)?,
                workstation: text_field(NTLM_WORKSTATION_FIELD_AT)?,
            })
        }
        _ => None,
    }
}

/// Reads the payload a (length, max length, offset) field header points to. An empty field needs
/// no valid offset: clients put anything there, from zero to the end of the message.
fn ntlm_field(message: &[u8], field_at: usize) -> Option<&[u8]> {
    let header = message.get(field_at..)?;
    let length = usize::from(u16::from_le_bytes(*header.first_chunk::<2>()?));
    if length == 0 {
        return Some(&[]);
    }
    let start = usize::try_from(read_u32_le(header, 4)?).ok()?;
    message.get(start..start.checked_add(length)?)
}

fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*field))
}

/// Converts UTF-16LE to UTF-8, replacing unpaired surrogates and an odd trailing byte with U+FFFD.
fn utf16le_to_utf8(raw: &[u8]) -> Vec<u8> {
    let pairs = raw.chunks_exact(2);
    let odd_byte = !pairs.remainder().is_empty();
    let code_units = pairs.filter_map(|pair| pair.first_chunk::<2>()).map(|pair| u16::from_le_bytes(*pair));
    let mut text: String =
        char::decode_utf16(code_units).map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER)).collect();
    if odd_byte {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text.into_bytes()
}

/// Splits the GS2 header (RFC 5801) that starts SCRAM and OAUTHBEARER messages,
/// `cbind-flag "," [ "a=" saslname ] ","`, from the rest, decoding the authorization identity.
fn split_gs2_header(message: &[u8]) -> Option<(Option<Vec<u8>>, &[u8])> {
    let mut parts = message.splitn(3, |&byte| byte == b',');
    let channel_binding_flag = parts.next()?;
    let authzid = parts.next()?;
    let rest = parts.next()?;
    let known_flag = matches!(channel_binding_flag, b"n" | b"y") || channel_binding_flag.starts_with(b"p=");
    if !known_flag {
        return None;
    }
    let authzid = match authzid {
        b"" | b"a=" => None,
        _ => Some(decode_saslname(authzid.strip_prefix(b"a=")?)),
    };
    Some((authzid, rest))
}

/// Undoes the `=2C` (`,`) and `=3D` (`=`) escapes of a SCRAM/GS2 saslname. Any other `=` is kept
/// as sent rather than failing: the user name is still worth reporting.
fn decode_saslname(encoded: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        if byte == b'=' {
            if let Some(after_escape) = strip_prefix_ignore_case(after, b"2C") {
                decoded.push(b',');
                rest = after_escape;
                continue;
            }
            if let Some(after_escape) = strip_prefix_ignore_case(after, b"3D") {
                decoded.push(b'=');
                rest = after_escape;
                continue;
            }
        }
        decoded.push(byte);
    }
    decoded
}

/// The token of an `auth` value `Bearer <token>` (RFC 6750 scheme, case-insensitive).
fn bearer_token(auth_value: &[u8]) -> Option<&[u8]> {
    let after_scheme = strip_prefix_ignore_case(auth_value, b"Bearer")?;
    match after_scheme.first() {
        None => Some(after_scheme),
        Some(b' ' | b'\t') => Some(after_scheme.trim_ascii()),
        Some(_) => None,
    }
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = bytes.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use proptest::prelude::*;

    /// Compares a secret with its expected plaintext through the public API only: equal keyed
    /// fingerprints and equal lengths.
    fn holds(secret: &Secret, expected: &[u8]) -> bool {
        let key = crate::alert::DigestKey::derive(b"test key", crate::alert::KeyedPurpose::SecretFingerprint);
        secret.len() == expected.len() && secret.fingerprint(&key) == Secret::new(expected.to_vec()).fingerprint(&key)
    }

    // ---- LOGIN prompts ----

    #[test]
    fn login_prompts_are_told_in_the_words_servers_use() {
        for prompt in [&b"Username:"[..], b"username", b"User Name\0", b" USER: "] {
            assert_eq!(login_prompt(prompt), Some(LoginPrompt::User), "{prompt:?}");
        }
        for prompt in [&b"Password:"[..], b"password", b"Password\0", b"PASSWORD :"] {
            assert_eq!(login_prompt(prompt), Some(LoginPrompt::Password), "{prompt:?}");
        }
        for prompt in [&b""[..], b"OK", b"Ready for literal", b"Passwords:", b"Username: Password:", b"\0"] {
            assert_eq!(login_prompt(prompt), None, "{prompt:?}");
        }
    }

    // ---- base64 ----

    #[test]
    fn base64_padded_unpadded_and_whitespace() {
        assert_eq!(decode_base64(b"dGlt").unwrap(), b"tim");
        assert_eq!(decode_base64(b"dGltMQ==").unwrap(), b"tim1");
        assert_eq!(decode_base64(b"dGltMQ").unwrap(), b"tim1");
        assert_eq!(decode_base64(b"  dGltMTI=\r\n").unwrap(), b"tim12");
        assert_eq!(decode_base64(b"\tdGltMTI").unwrap(), b"tim12");
    }

    #[test]
    fn base64_empty_responses() {
        assert_eq!(decode_base64(b"=").unwrap(), b"");
        assert_eq!(decode_base64(b" =\r\n").unwrap(), b"");
        assert_eq!(decode_base64(b"").unwrap(), b"");
    }

    #[test]
    fn base64_rejects_invalid_without_content() {
        for bad in [&b"*"[..], b"dG l0", b"dGlt!", b"d", b"dGltM===", b"==", b"-_-_"] {
            assert_eq!(decode_base64(bad), Err(SaslError::BadBase64), "{bad:?}");
        }
        assert_eq!(SaslError::BadBase64.to_string(), "SASL response is not valid base64");
    }

    // ---- response or command ----

    #[test]
    fn a_line_with_a_space_is_never_a_response() {
        // Failures name a line by its index: responses and commands hold SASL data and passwords.
        for (i, response) in [&b"dGlt"[..], b"=", b"*", b"", b" dGltMQ== \r", b"QUIT"].into_iter().enumerate() {
            assert!(may_be_response(response), "response {i}");
        }
        for (i, command) in
            [&b"b LOGIN alice pw"[..], b"USER alice", b"AUTH PLAIN dGlt", b"a1 NOOP"].into_iter().enumerate()
        {
            assert!(!may_be_response(command), "command {i}");
        }
    }

    #[test]
    fn bare_commands_in_any_case_and_nothing_else() {
        for command in [&b"QUIT"[..], b"capa", b"Stls", b"STARTTLS\r", b" noop "] {
            assert!(is_bare_command(command), "{command:?}");
        }
        for (i, other) in [&b"dGlt"[..], b"=", b"*", b"QUITS", b"USER alice", b""].into_iter().enumerate() {
            assert!(!is_bare_command(other), "line {i}");
        }
    }

    // ---- mechanisms ----

    #[test]
    fn mechanism_names_are_case_insensitive() {
        let cases = [
            (&b"plain"[..], Mechanism::Plain, "PLAIN", Exposure::Password),
            (b"Login", Mechanism::Login, "LOGIN", Exposure::Password),
            (b"xoauth2", Mechanism::XOAuth2, "XOAUTH2", Exposure::Token),
            (b"OAuthBearer", Mechanism::OAuthBearer, "OAUTHBEARER", Exposure::Token),
            (b"cram-md5", Mechanism::CramMd5, "CRAM-MD5", Exposure::ChallengeResponse),
            (b"Digest-MD5", Mechanism::DigestMd5, "DIGEST-MD5", Exposure::ChallengeResponse),
            (b"ntlm", Mechanism::Ntlm, "NTLM", Exposure::ChallengeResponse),
            (b"gssapi", Mechanism::GssApi, "GSSAPI", Exposure::None),
            (b"external", Mechanism::External, "EXTERNAL", Exposure::None),
            (b"anonymous", Mechanism::Anonymous, "ANONYMOUS", Exposure::None),
        ];
        for (wire, mechanism, name, exposure) in cases {
            let parsed = Mechanism::from_name(wire);
            assert_eq!(parsed, mechanism);
            assert_eq!(parsed.name(), name);
            assert_eq!(parsed.exposure(), exposure);
        }
    }

    #[test]
    fn scram_variants_keep_their_name() {
        let sha1 = Mechanism::from_name(b"scram-sha-1");
        assert_eq!(sha1, Mechanism::Scram("SCRAM-SHA-1".to_owned()));
        assert_eq!(sha1.name(), "SCRAM-SHA-1");
        assert_eq!(sha1.exposure(), Exposure::ChallengeResponse);
        let plus = Mechanism::from_name(b" SCRAM-SHA-256-PLUS\r\n");
        assert_eq!(plus.name(), "SCRAM-SHA-256-PLUS");
        assert_eq!(plus.exposure(), Exposure::ChallengeResponse);
    }

    #[test]
    fn unknown_mechanisms_are_sanitised_and_bounded() {
        let other = Mechanism::from_name(b"x-Custom");
        assert_eq!(other, Mechanism::Other("X-CUSTOM".to_owned()));
        assert_eq!(other.exposure(), Exposure::None);
        assert_eq!(Mechanism::from_name(b"a\x1b[31m\xffb").name(), "A?[31M?B");
        let long = Mechanism::from_name(&[b'q'; 100]);
        assert_eq!(long.name(), "Q".repeat(40));
    }

    // ---- PLAIN ----

    #[test]
    fn plain_rfc4616_examples() {
        let decoded = decode_base64(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap();
        let credential = parse_plain(&decoded).unwrap();
        assert_eq!(credential.authzid, b"");
        assert_eq!(credential.authcid, b"tim");
        assert!(holds(&credential.password, b"tanstaaftanstaaf"));

        let credential = parse_plain(b"Ursel\0Kurt\0xipj3plmq").unwrap();
        assert_eq!(credential.authzid, b"Ursel");
        assert_eq!(credential.authcid, b"Kurt");
        assert!(holds(&credential.password, b"xipj3plmq"));
    }

    #[test]
    fn plain_keeps_non_utf8_user_and_empty_fields() {
        let credential = parse_plain(b"\0j\xf6rg\0").unwrap();
        assert_eq!(credential.authcid, b"j\xf6rg");
        assert!(credential.password.is_empty());
    }

    #[test]
    fn plain_rejects_wrong_field_count() {
        assert!(parse_plain(b"").is_none());
        assert!(parse_plain(b"tim").is_none());
        assert!(parse_plain(b"\0tim").is_none());
        assert!(parse_plain(b"\0tim\0pass\0extra").is_none());
    }

    /// The start of a message a capture cut: the password may be missing or begun; the base64
    /// is read in whole groups of four.
    #[test]
    fn plain_start_takes_what_a_cut_left() {
        let decoded = decode_base64(whole_base64_groups(b"AHRpbQB0YW5zdG")).unwrap();
        let credential = parse_plain_start(&decoded).unwrap();
        assert_eq!((credential.authcid.as_slice(), credential.password.is_empty()), (&b"tim"[..], false));
        assert!(holds(&credential.password, b"tans"));
        let credential = parse_plain_start(b"\0ti").unwrap();
        assert_eq!((credential.authcid.as_slice(), credential.password.is_empty()), (&b"ti"[..], true));
        assert!(parse_plain_start(b"tim").is_none(), "no authentication identity begun");
        assert!(parse_plain_start(b"\0tim\0pa\0ss").is_none());
        assert_eq!(whole_base64_groups(b" AHRpbQB "), b"AHRp");
    }

    #[test]
    fn plain_debug_hides_password() {
        let credential = parse_plain(b"\0tim\0tanstaaftanstaaf").unwrap();
        assert!(!format!("{credential:?}").contains("tanstaaf"));
    }

    // ---- XOAUTH2 ----

    /// The example of Google's "OAuth 2.0 Mechanism" page (developers.google.com/gmail/imap/xoauth2-protocol).
    const GOOGLE_XOAUTH2_BASE64: &[u8] = b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==";

    #[test]
    fn xoauth2_google_example() {
        let decoded = decode_base64(GOOGLE_XOAUTH2_BASE64).unwrap();
        assert_eq!(
            decoded,
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        let (user, token) = parse_xoauth2(&decoded).unwrap();
        assert_eq!(user, b"someuser@example.com");
        assert!(holds(&token, b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"));
    }

    #[test]
    fn xoauth2_is_lenient_about_case_and_trailing_separators() {
        for (i, message) in [
            &b"user=a@b.c\x01auth=bearer tok"[..],
            b"user=a@b.c\x01auth=BEARER tok\x01",
            b"USER=a@b.c\x01Auth=Bearer  tok\x01\x01\x01",
            b"auth=Bearer tok\x01user=a@b.c\x01\x01",
        ]
        .into_iter()
        .enumerate()
        {
            let (user, token) = parse_xoauth2(message).unwrap();
            assert_eq!(user, b"a@b.c");
            assert!(holds(&token, b"tok"), "message {i}");
        }
    }

    #[test]
    fn xoauth2_rejects_missing_parts() {
        assert!(parse_xoauth2(b"").is_none());
        assert!(parse_xoauth2(b"user=a@b.c\x01\x01").is_none());
        assert!(parse_xoauth2(b"auth=Bearer tok\x01\x01").is_none());
        assert!(parse_xoauth2(b"user=a@b.c\x01auth=Basic dG9r\x01\x01").is_none());
        assert!(parse_xoauth2(b"user=a@b.c\x01auth=Bearertok\x01\x01").is_none());
    }

    // ---- OAUTHBEARER ----

    #[test]
    fn oauthbearer_rfc7628_example() {
        // RFC 7628 section 4.1, the client's initial response, as sent on the wire.
        let decoded = decode_base64(
            b"bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB",
        )
        .unwrap();
        assert_eq!(
            decoded,
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        let (user, token) = parse_oauthbearer(&decoded).unwrap();
        assert_eq!(user.as_deref(), Some(&b"user@example.com"[..]));
        assert!(holds(&token, b"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="));
    }

    #[test]
    fn oauthbearer_without_user_and_with_escapes() {
        let (user, token) = parse_oauthbearer(b"n,,\x01auth=Bearer t\x01\x01").unwrap();
        assert_eq!(user, None);
        assert!(holds(&token, b"t"));
        let (user, _) = parse_oauthbearer(b"y,a=a=2Cb=3Dc=2c,\x01auth=bearer t\x01\x01").unwrap();
        assert_eq!(user.as_deref(), Some(&b"a,b=c,"[..]));
    }

    #[test]
    fn oauthbearer_rejects_malformed() {
        assert!(parse_oauthbearer(b"").is_none());
        // The empty "^A" a client sends after a failure is not a credential.
        assert!(parse_oauthbearer(b"\x01").is_none());
        assert!(parse_oauthbearer(b"x,,\x01auth=Bearer t\x01\x01").is_none());
        assert!(parse_oauthbearer(b"n,user,\x01auth=Bearer t\x01\x01").is_none());
        assert!(parse_oauthbearer(b"n,,host=h\x01auth=Bearer t\x01\x01").is_none());
        assert!(parse_oauthbearer(b"n,,\x01host=h\x01\x01").is_none());
    }

    // ---- SCRAM ----

    #[test]
    fn scram_rfc_examples() {
        // RFC 5802 section 5 (SCRAM-SHA-1) and RFC 7677 section 3 (SCRAM-SHA-256).
        assert_eq!(parse_scram_client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap(), b"user");
        assert_eq!(parse_scram_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap(), b"user");
    }

    #[test]
    fn scram_escapes_binding_and_extensions() {
        assert_eq!(parse_scram_client_first(b"p=tls-unique,a=admin,n=j=2Cd=3De,r=abc").unwrap(), b"j,d=e");
        assert_eq!(parse_scram_client_first(b"y,,m=ext,n=bob,r=abc").unwrap(), b"bob");
    }

    #[test]
    fn scram_rejects_malformed() {
        assert!(parse_scram_client_first(b"").is_none());
        assert!(parse_scram_client_first(b"n,,r=abc,n=user").is_none());
        assert!(parse_scram_client_first(b"n=user,r=abc").is_none());
        assert!(parse_scram_client_first(b"q,,n=user,r=abc").is_none());
    }

    #[test]
    fn scram_client_final_carries_a_proof() {
        // RFC 7677 section 3 (SCRAM-SHA-256) and RFC 5802 section 5 (SCRAM-SHA-1).
        assert!(is_scram_client_final(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        ));
        assert!(is_scram_client_final(
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        ));
        assert!(is_scram_client_final(b"c=biws,r=abc,x=extension,p=cHJvb2Y="));
    }

    #[test]
    fn scram_other_messages_are_no_client_final() {
        assert!(!is_scram_client_final(b"n,,n=user,r=abc"));
        assert!(!is_scram_client_final(b"c=biws,r=abc"));
        assert!(!is_scram_client_final(b"c=biws,r=abc,p="));
        assert!(!is_scram_client_final(b"r=abc,c=biws,p=cHJvb2Y="));
        assert!(!is_scram_client_final(b"c=biws,p=cHJvb2Y="));
        assert!(!is_scram_client_final(b""));
    }

    // ---- CRAM-MD5 ----

    #[test]
    fn cram_md5_rfc2195_example() {
        let decoded = decode_base64(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw").unwrap();
        assert_eq!(decoded, b"tim b913a602c7eda7a495b4e6e7334d3890");
        assert_eq!(parse_cram_md5_response(&decoded).unwrap(), b"tim");
    }

    #[test]
    fn cram_md5_user_may_contain_spaces() {
        assert_eq!(parse_cram_md5_response(b"tim smith B913A602C7EDA7A495B4E6E7334D3890").unwrap(), b"tim smith");
    }

    #[test]
    fn cram_md5_rejects_bad_digest() {
        assert!(parse_cram_md5_response(b"").is_none());
        assert!(parse_cram_md5_response(b"b913a602c7eda7a495b4e6e7334d3890").is_none());
        assert!(parse_cram_md5_response(b"tim b913a602c7eda7a495b4e6e7334d389").is_none());
        assert!(parse_cram_md5_response(b"tim b913a602c7eda7a495b4e6e7334d38900").is_none());
        assert!(parse_cram_md5_response(b"tim g913a602c7eda7a495b4e6e7334d3890").is_none());
    }

    // ---- DIGEST-MD5 ----

    #[test]
    fn digest_md5_rfc2831_example() {
        // RFC 2831 section 4, the client's response in the IMAP example.
        let response = b"charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,qop=auth";
        assert_eq!(parse_digest_md5_response(response).unwrap(), b"chris");
    }

    #[test]
    fn digest_md5_escapes_commas_and_whitespace() {
        let response = b" , realm=\"a, \\\"b\\\"\" ,, UserName = \"c\\\\h\\\"ris, jr\" , nonce=\"x\"";
        assert_eq!(parse_digest_md5_response(response).unwrap(), b"c\\h\"ris, jr");
        assert_eq!(parse_digest_md5_response(b"qop=auth,username=bare ,nc=1").unwrap(), b"bare");
    }

    #[test]
    fn digest_md5_rejects_malformed() {
        assert!(parse_digest_md5_response(b"").is_none());
        assert!(parse_digest_md5_response(b"realm=\"x\",nonce=\"y\"").is_none());
        assert!(parse_digest_md5_response(b"username=\"unterminated").is_none());
        assert!(parse_digest_md5_response(b"username=\"trailing backslash\\").is_none());
        assert!(parse_digest_md5_response(b"realm=\"x\"junk,username=\"u\"").is_none());
        assert!(parse_digest_md5_response(b"valueless,username=\"u\"").is_none());
    }

    // ---- NTLM ----

    const NTLM_UNICODE_FLAGS: u32 = 0x0000_8201;
    const NTLM_OEM_FLAGS: u32 = 0x0000_8202;
    /// Offset of the user name field header in a type 3 message.
    const USER_FIELD: usize = 36;

    fn utf16le(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// Builds an AUTHENTICATE (type 3) message from its fields, payload laid out after the
    /// 64-byte fixed part in the order of the field headers.
    fn ntlm_authenticate(flags: u32, domain: &[u8], user: &[u8], workstation: &[u8]) -> Vec<u8> {
        const FIXED_PART: usize = 64;
        let lm_response = [0u8; 24];
        let nt_response = [0x5a_u8; 24];
        let session_key: &[u8] = &[];
        let fields: [&[u8]; 6] = [&lm_response, &nt_response, domain, user, workstation, session_key];
        let mut message = b"NTLMSSP\0".to_vec();
        message.extend(3u32.to_le_bytes());
        let mut payload = Vec::new();
        for field in fields {
            let length = u16::try_from(field.len()).unwrap();
            let offset = u32::try_from(FIXED_PART + payload.len()).unwrap();
            message.extend(length.to_le_bytes());
            message.extend(length.to_le_bytes());
            message.extend(offset.to_le_bytes());
            payload.extend_from_slice(field);
        }
        message.extend(flags.to_le_bytes());
        assert_eq!(message.len(), FIXED_PART);
        message.extend(payload);
        message
    }

    fn set_user_field(message: &mut [u8], length: u16, offset: u32) {
        message[USER_FIELD..USER_FIELD + 2].copy_from_slice(&length.to_le_bytes());
        message[USER_FIELD + 2..USER_FIELD + 4].copy_from_slice(&length.to_le_bytes());
        message[USER_FIELD + 4..USER_FIELD + 8].copy_from_slice(&offset.to_le_bytes());
    }

    #[test]
    fn ntlm_authenticate_unicode() {
        // The names of the MS-NLMP 4.2 examples, plus a non-ASCII user.
        let message =
            ntlm_authenticate(NTLM_UNICODE_FLAGS, &utf16le("Domain"), &utf16le("Jürgen😀"), &utf16le("COMPUTER"));
        let via_base64 = decode_base64(STANDARD.encode(&message).as_bytes()).unwrap();
        assert_eq!(
            parse_ntlm(&via_base64),
            NtlmMessage::Authenticate {
                user: "Jürgen😀".as_bytes().to_vec(),
                domain: b"Domain".to_vec(),
                workstation: b"COMPUTER".to_vec(),
            }
        );
    }

    #[test]
    fn ntlm_authenticate_oem_keeps_raw_bytes() {
        let message = ntlm_authenticate(NTLM_OEM_FLAGS, b"DOMAIN", b"J\x81RGEN", b"");
        assert_eq!(
            parse_ntlm(&message),
            NtlmMessage::Authenticate {
                user: b"J\x81RGEN".to_vec(),
                domain: b"DOMAIN".to_vec(),
                workstation: Vec::new(),
            }
        );
    }

    #[test]
    fn ntlm_bad_utf16_is_replaced_not_fatal() {
        let mut user = utf16le("ab");
        user.extend([0x00, 0xd8]); // unpaired high surrogate
        user.push(b'c'); // odd trailing byte
        let message = ntlm_authenticate(NTLM_UNICODE_FLAGS, b"", &user, b"");
        let NtlmMessage::Authenticate { user, .. } = parse_ntlm(&message) else {
            panic!("expected an AUTHENTICATE message");
        };
        assert_eq!(user, "ab\u{fffd}\u{fffd}".as_bytes());
    }

    #[test]
    fn ntlm_negotiate_and_challenge() {
        let mut negotiate = b"NTLMSSP\0".to_vec();
        negotiate.extend(1u32.to_le_bytes());
        negotiate.extend(0x0000_b207_u32.to_le_bytes());
        assert_eq!(parse_ntlm(&negotiate), NtlmMessage::Negotiate);
        let mut challenge = b"NTLMSSP\0".to_vec();
        challenge.extend(2u32.to_le_bytes());
        challenge.extend([0u8; 40]);
        assert_eq!(parse_ntlm(&challenge), NtlmMessage::Challenge);
    }

    #[test]
    fn ntlm_rejects_bad_signature_type_and_truncation() {
        let message = ntlm_authenticate(NTLM_OEM_FLAGS, b"D", b"U", b"W");
        assert_ne!(parse_ntlm(&message), NtlmMessage::Invalid);

        assert_eq!(parse_ntlm(b""), NtlmMessage::Invalid);
        assert_eq!(parse_ntlm(b"NTLMSSP\0"), NtlmMessage::Invalid);
        assert_eq!(parse_ntlm(b"NTLMSSP\0\x03\0\0"), NtlmMessage::Invalid);

        let mut wrong_signature = message.clone();
        wrong_signature[6] = b'X';
        assert_eq!(parse_ntlm(&wrong_signature), NtlmMessage::Invalid);

        let mut wrong_type = message.clone();
        wrong_type[8] = 4;
        assert_eq!(parse_ntlm(&wrong_type), NtlmMessage::Invalid);

        // Fixed part cut before the flags, and payload cut short.
        assert_eq!(parse_ntlm(&message[..63]), NtlmMessage::Invalid);
        assert_eq!(parse_ntlm(&message[..message.len() - 1]), NtlmMessage::Invalid);
    }

    #[test]
    fn ntlm_rejects_offsets_past_the_end() {
        let message = ntlm_authenticate(NTLM_OEM_FLAGS, b"D", b"USER", b"W");
        let end = u32::try_from(message.len()).unwrap();

        let mut at_end = message.clone();
        set_user_field(&mut at_end, 4, end);
        assert_eq!(parse_ntlm(&at_end), NtlmMessage::Invalid);

        let mut overlapping_end = message.clone();
        set_user_field(&mut overlapping_end, 4, end - 3);
        assert_eq!(parse_ntlm(&overlapping_end), NtlmMessage::Invalid);

        let mut huge = message.clone();
        set_user_field(&mut huge, u16::MAX, u32::MAX);
        assert_eq!(parse_ntlm(&huge), NtlmMessage::Invalid);

        // An empty field's offset is not used, wherever it points.
        let mut empty_user = message;
        set_user_field(&mut empty_user, 0, u32::MAX);
        let NtlmMessage::Authenticate { user, domain, .. } = parse_ntlm(&empty_user) else {
            panic!("an empty field must not invalidate the message");
        };
        assert_eq!((user.as_slice(), domain.as_slice()), (&b""[..], &b"D"[..]));
    }

    // ---- totality and round trips ----

    fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..300)
    }

    /// Arbitrary bytes after a prefix that gets them past the first checks of a parser.
    fn prefixed(prefix: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
        any_bytes().prop_map(move |tail| [prefix, &tail].concat())
    }

    fn exercise_every_parser(bytes: &[u8]) {
        let _ = decode_base64(bytes);
        let mechanism = Mechanism::from_name(bytes);
        let _ = (mechanism.name(), mechanism.exposure());
        let _ = parse_plain(bytes);
        let _ = parse_xoauth2(bytes);
        let _ = parse_oauthbearer(bytes);
        let _ = parse_scram_client_first(bytes);
        let _ = is_scram_client_final(bytes);
        let _ = parse_cram_md5_response(bytes);
        let _ = parse_digest_md5_response(bytes);
        let _ = parse_ntlm(bytes);
    }

    proptest! {
        #[test]
        fn every_parser_is_total(bytes in any_bytes()) {
            exercise_every_parser(&bytes);
        }

        #[test]
        fn parsers_are_total_past_their_headers(
            bytes in prop_oneof![
                prefixed(b"NTLMSSP\0\x03\0\0\0"),
                prefixed(b"NTLMSSP\0\x01\0\0\0"),
                prefixed(b"n,a="),
                prefixed(b"n,,\x01auth="),
                prefixed(b"user="),
                prefixed(b"username=\""),
            ]
        ) {
            exercise_every_parser(&bytes);
        }

        #[test]
        fn ntlm_fields_are_bounds_checked(
            flags in any::<u32>(),
            user in proptest::collection::vec(any::<u8>(), 0..40),
            length in any::<u16>(),
            offset in any::<u32>(),
        ) {
            let mut message = ntlm_authenticate(flags, b"D", &user, b"W");
            set_user_field(&mut message, length, offset);
            let fits = usize::try_from(offset).unwrap() + usize::from(length) <= message.len();
            let parsed = parse_ntlm(&message);
            prop_assert_eq!(parsed == NtlmMessage::Invalid, length != 0 && !fits);
        }

        #[test]
        fn plain_round_trips(
            authzid in proptest::collection::vec(1u8..=255, 0..64),
            authcid in proptest::collection::vec(1u8..=255, 0..64),
            password in proptest::collection::vec(1u8..=255, 0..64),
        ) {
            let message = [&authzid[..], &authcid, &password].join(&0u8);
            let encoded = STANDARD.encode(&message);
            let credential = parse_plain(&decode_base64(encoded.as_bytes()).unwrap()).unwrap();
            prop_assert_eq!(credential.authzid, authzid);
            prop_assert_eq!(credential.authcid, authcid);
            prop_assert!(holds(&credential.password, &password));
        }

        #[test]
        fn base64_round_trips_with_or_without_padding(bytes in any_bytes()) {
            let padded = format!(" {}\r\n", STANDARD.encode(&bytes));
            prop_assert_eq!(decode_base64(padded.as_bytes()), Ok(bytes.clone()));
            let unpadded = STANDARD_NO_PAD.encode(&bytes);
            prop_assert_eq!(decode_base64(unpadded.as_bytes()), Ok(bytes));
        }

        #[test]
        fn mechanism_names_are_bounded_printable_and_stable(bytes in any_bytes()) {
            let mechanism = Mechanism::from_name(&bytes);
            let name = mechanism.name();
            prop_assert!(name.len() <= MAX_MECHANISM_NAME_CHARS);
            prop_assert!(name.bytes().all(|byte| byte.is_ascii_graphic() && !byte.is_ascii_lowercase()));
            prop_assert_eq!(Mechanism::from_name(name.as_bytes()), mechanism.clone());
        }
    }
}
