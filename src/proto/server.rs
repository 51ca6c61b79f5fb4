//! What a flow reveals about its server (greeting, software, capabilities, TLS offer) and its
//! client (IMAP ID), and who must fix a cleartext login given that.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock};

use aho_corasick::AhoCorasick;

use super::framing::whole_words;
use crate::alert::{looks_like_hostname, Capabilities, ClientIdentity, Outcome, Remediation, ServerIdentity};
use crate::keyed_hash::{KeyedMap, KeyedSet};

/// Longest greeting or identity string kept (longer ones are cut, marked with `…`).
const MAX_TEXT: usize = 256;
/// Capabilities remembered per flow.
const MAX_CAPABILITIES: usize = 64;
/// Bytes of capability text remembered per flow (Dovecot's IMAP list, among the longest, is about
/// 450): alerts and postures carry the list, and each must fit a syslog message of 8 KiB, the
/// size rsyslog takes by default, whatever a server sends.
const MAX_CAPABILITY_TEXT: usize = 2048;

/// Known mail server software, recognised in greetings: (lower-case needle, display name).
const SOFTWARE: &[(&str, &str)] = &[
    ("dovecot", "Dovecot"),
    ("courier", "Courier"),
    ("cyrus", "Cyrus"),
    ("microsoft exchange", "Microsoft Exchange"),
    ("exchange server", "Microsoft Exchange"),
    ("zimbra", "Zimbra"),
    ("postfix", "Postfix"),
    ("exim", "Exim"),
    ("qmail", "qmail"),
    ("sendmail", "Sendmail"),
    ("hmailserver", "hMailServer"),
    ("mdaemon", "MDaemon"),
    ("kerio", "Kerio Connect"),
    ("communigate", "CommuniGate Pro"),
    ("uw imap", "UW IMAP"),
    ("gimap", "Gmail"),
    ("gpop", "Gmail"),
    ("gsmtp", "Gmail"),
    ("opensmtpd", "OpenSMTPD"),
    ("haraka", "Haraka"),
    ("icewarp", "IceWarp"),
    ("imail", "IMail"),
    ("smartermail", "SmarterMail"),
    ("axigen", "Axigen"),
    ("stalwart", "Stalwart"),
    ("james", "Apache James"),
];

/// The needles of [`SOFTWARE`], searched in one pass, case-insensitively: greetings arrive once
/// per mail flow, and one pass over the text costs less than a search per name.
static SOFTWARE_NEEDLES: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder().ascii_case_insensitive(true).build(SOFTWARE.iter().map(|(needle, _)| needle)).ok()
});

/// Distinct lines of each kind a [`ServerLines`] remembers before it starts over.
const LINES_KEPT: usize = 1024;
/// Lines of each kind seen once that a [`ServerLines`] keeps track of before it starts over.
const SIGHTINGS_KEPT: usize = 4096;
/// Longer lines are worked out every time (they are rare, and would make the cache big).
const LONGEST_LINE_KEPT: usize = 512;

/// What server lines said, worked out once per distinct line: a server greets every connection
/// with the same line and an IMAP server lists the same capabilities, and finding the software
/// and host name in a greeting or going through a capability list cost more than the rest of a
/// usual mail session's parsing. Flows of one server share the texts. Bounded: a full map starts
/// over.
#[derive(Default)]
pub struct ServerLines {
    /// Greetings by `hostname_first` (SMTP or not), then by line.
    greetings: [LineFacts<GreetingFacts>; 2],
    /// IMAP capability lists (the words of a CAPABILITY response or response code).
    imap_capabilities: LineFacts<CapabilityFacts>,
}

#[derive(Clone)]
struct GreetingFacts {
    greeting: Arc<str>,
    software: Option<Arc<str>>,
    hostname: Option<Arc<str>>,
}

#[derive(Clone)]
struct CapabilityFacts {
    capabilities: Capabilities,
    starttls_offered: Option<bool>,
    login_disabled: Option<bool>,
}

impl ServerLines {
    fn greeting(&mut self, line: &[u8], hostname_first: bool) -> GreetingFacts {
        if let Some(repeating) = without_apop_challenge(line) {
            // The challenge is new on every connection and names neither software nor a host
            // name: the facts are the rest's, which repeats; the text is the whole line.
            let facts = self.greeting(repeating, hostname_first);
            return GreetingFacts { greeting: with_printable(line, |text| Arc::from(text)), ..facts };
        }
        let work_out = || {
            with_printable(line, |text| GreetingFacts {
                greeting: Arc::from(text),
                software: software_in(text),
                hostname: hostname_in(text, hostname_first).map(Arc::from),
            })
        };
        match self.greetings.get_mut(usize::from(hostname_first)) {
            Some(known) => known.of(line, work_out),
            None => work_out(),
        }
    }

    fn imap_capabilities(&mut self, list: &[u8]) -> CapabilityFacts {
        self.imap_capabilities.of(list, || {
            let mut info = ServerInfo::default();
            info.begin_capabilities(true);
            for capability in list.split(|b| *b == b' ').filter(|c| !c.is_empty()) {
                info.add_capability(capability);
            }
            CapabilityFacts {
                capabilities: info.capabilities,
                starttls_offered: info.starttls_offered,
                login_disabled: info.login_disabled,
            }
        })
    }
}

/// `line` without the APOP challenge that ends it (RFC 1939 §7: a message id such as
/// `<1896.697170952@dbc.mit.edu>`), if it has one.
fn without_apop_challenge(line: &[u8]) -> Option<&[u8]> {
    let line = line.trim_ascii_end();
    let start = memchr::memrchr(b'<', line)?;
    let challenge = line.get(start..)?;
    let is_challenge = challenge.ends_with(b">") && challenge.contains(&b'@') && !challenge.contains(&b' ');
    is_challenge.then(|| line.get(..start).unwrap_or_default().trim_ascii_end())
}

/// Facts worked out from lines of one kind, remembered for the lines that come back. A line is
/// remembered at its second sighting: many servers make every greeting unique (a time, an APOP
/// challenge), and remembering those would cost a copy each and push out the lines that repeat.
struct LineFacts<V> {
    known: KeyedMap<Box<[u8]>, V>,
    /// Hashes of lines seen once (a line whose hash collides with an earlier one's is remembered
    /// a sighting early: harmless).
    seen_once: KeyedSet<u64>,
}

impl<V> Default for LineFacts<V> {
    fn default() -> Self {
        LineFacts { known: KeyedMap::default(), seen_once: KeyedSet::default() }
    }
}

impl<V: Clone> LineFacts<V> {
    /// What `work_out` makes of `line`, remembered when the line was seen before.
    fn of(&mut self, line: &[u8], work_out: impl FnOnce() -> V) -> V {
        if line.len() > LONGEST_LINE_KEPT {
            return work_out();
        }
        if let Some(facts) = self.known.get(line) {
            return facts.clone();
        }
        if self.seen_once.len() >= SIGHTINGS_KEPT {
            self.seen_once.clear();
        }
        if self.seen_once.insert(self.seen_once.hasher().hash_one(line)) {
            return work_out();
        }
        if self.known.len() >= LINES_KEPT {
            self.known.clear();
        }
        let facts = work_out();
        self.known.insert(line.into(), facts.clone());
        facts
    }
}

/// Whether the text of a refused login asks for TLS: IMAP's `[PRIVACYREQUIRED]` (RFC 5530), or
/// words servers use for it (`-ERR TLS required`, Dovecot's `Plaintext authentication disallowed
/// on non-secure (SSL/TLS) connections`, Postfix's `Must issue a STARTTLS command first`).
/// `TLS`, `SSL`, `STARTTLS` and `STLS` count as words only (`SSL/TLS`, `TLSv1.2`), not inside
/// another (a user name echoed in the refusal, `russell` or `ssl_admin`, says nothing of TLS);
/// `ENCRYPT` and `PRIVACYREQUIRED` anywhere (`encryption`, `non-encrypted`).
pub fn demands_tls(text: &[u8]) -> bool {
    const ANYWHERE: [&[u8]; 2] = [b"PRIVACYREQUIRED", b"ENCRYPT"];
    const WORDS: [&[u8]; 4] = [b"TLS", b"SSL", b"STARTTLS", b"STLS"];
    let in_word = |byte: &u8| byte.is_ascii_alphabetic() || *byte == b'_';
    let places = |word: &'static [u8]| {
        text.windows(word.len()).enumerate().filter(move |(_, window)| window.eq_ignore_ascii_case(word))
    };
    ANYWHERE.iter().any(|word| places(word).next().is_some())
        || WORDS.iter().any(|word| {
            places(word).any(|(at, _)| {
                let before = at.checked_sub(1).and_then(|index| text.get(index));
                let after = text.get(at + word.len()..).unwrap_or_default();
                let version = matches!(after, [b'v' | b'V', digit, ..] if digit.is_ascii_digit());
                !before.is_some_and(in_word) && (version || !after.first().is_some_and(in_word))
            })
        })
}

/// Server facts accumulated over one flow.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    pub greeting: Option<Arc<str>>,
    pub software: Option<Arc<str>>,
    pub hostname: Option<Arc<str>>,
    pub capabilities: Capabilities,
    pub starttls_offered: Option<bool>,
    pub login_disabled: Option<bool>,
    /// The client asked for STARTTLS and the server refused.
    pub starttls_refused: bool,
    /// A login in clear was refused with a demand for TLS (`[PRIVACYREQUIRED]`, a reply naming
    /// TLS): the server requires it, whatever mechanisms it lists (Courier's POP3 lists `USER`
    /// and refuses it).
    pub login_refused_for_tls: bool,
    pub client_software: Option<Arc<str>>,
    /// The capability list being read lost part of itself (see [`ServerInfo::capabilities_cut`]).
    capabilities_cut: bool,
}

impl ServerInfo {
    /// Records the server's first line. `hostname_first` is true for SMTP, whose greeting starts
    /// with the host name (RFC 5321 §4.2).
    pub fn set_greeting(&mut self, line: &[u8], hostname_first: bool, known: &mut ServerLines) {
        let facts = known.greeting(line, hostname_first);
        self.greeting = Some(facts.greeting);
        self.software = facts.software;
        self.hostname = facts.hostname;
    }

    /// Records the server's first line from a line whose end was lost: its whole words, if any.
    pub fn set_cut_greeting(&mut self, line: &[u8], hostname_first: bool, known: &mut ServerLines) {
        let words = whole_words(line);
        if !words.is_empty() {
            self.set_greeting(words, hostname_first, known);
        }
    }

    /// A new capability list starts: it replaces any earlier one. Only IMAP has LOGINDISABLED,
    /// so only there does its absence mean `false`.
    pub fn begin_capabilities(&mut self, imap: bool) {
        self.capabilities.clear();
        self.starttls_offered = Some(false);
        self.login_disabled = imap.then_some(false);
        self.capabilities_cut = false;
    }

    /// The capability list being read lost bytes (a gap, a snap length): what it does not name
    /// may have been among them, so an absence is unknown, before and after the loss; a STARTTLS
    /// or LOGINDISABLED it names still counts.
    pub fn capabilities_cut(&mut self) {
        self.starttls_offered = self.starttls_offered.filter(|offered| *offered);
        self.login_disabled = self.login_disabled.filter(|disabled| *disabled);
        self.capabilities_cut = true;
    }

    /// An IMAP capability list (its words separated by spaces): it replaces any earlier one.
    pub fn set_imap_capabilities(&mut self, list: &[u8], known: &mut ServerLines) {
        let facts = known.imap_capabilities(list);
        self.capabilities = facts.capabilities;
        self.starttls_offered = facts.starttls_offered;
        self.login_disabled = facts.login_disabled;
        self.capabilities_cut = false;
    }

    /// One capability (a CAPA line, an IMAP capability atom, an EHLO keyword line).
    pub fn add_capability(&mut self, capability: &[u8]) {
        with_printable(capability, |text| {
            let keyword = text.split(' ').next().unwrap_or("");
            if keyword.eq_ignore_ascii_case("STLS") || keyword.eq_ignore_ascii_case("STARTTLS") {
                self.starttls_offered = Some(true);
            } else if keyword.eq_ignore_ascii_case("LOGINDISABLED") {
                self.login_disabled = Some(true);
            }
            if self.starttls_offered.is_none() && !self.capabilities_cut {
                self.starttls_offered = Some(false);
            }
            if self.capabilities.len() < MAX_CAPABILITIES
                && self.capabilities.text_len() + text.len() < MAX_CAPABILITY_TEXT
            {
                self.capabilities.push(text);
            }
        });
    }

    pub fn set_client_software(&mut self, software: &[u8]) {
        self.client_software = Some(printable(software).into());
    }

    pub fn identity(&self) -> ServerIdentity {
        ServerIdentity {
            ip: None,
            port: 0,
            greeting: self.greeting.clone(),
            software: self.software.clone(),
            hostname: self.hostname.clone(),
            capabilities: self.capabilities.clone(),
            starttls_offered: self.starttls_offered,
            login_disabled: self.login_disabled,
        }
    }

    pub fn client_identity(&self) -> ClientIdentity {
        ClientIdentity { software: self.client_software.clone() }
    }

    /// Who must act, from what this flow showed.
    pub fn remediation(&self, outcome: Outcome) -> Remediation {
        if self.starttls_refused {
            Remediation::StarttlsFailed
        } else if self.login_disabled == Some(true) && outcome != Outcome::Failure {
            Remediation::ServerIgnoresLogindisabled
        } else {
            match self.starttls_offered {
                Some(true) => Remediation::ClientSkippedStarttls,
                Some(false) => Remediation::ServerOffersNoTls,
                None => Remediation::Unknown,
            }
        }
    }
}

/// Text for people: trimmed, control bytes and invalid UTF-8 escaped, length-capped.
pub fn printable(raw: &[u8]) -> String {
    if let Some(text) = plain_ascii(raw) {
        return text.to_owned();
    }
    let raw = raw.trim_ascii();
    let mut out = String::new();
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
        if out.len() > MAX_TEXT {
            break;
        }
    }
    if out.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The software named in a greeting: of the names it holds, the first in [`SOFTWARE`] (at its
/// first occurrence), with the version that follows it when there is one.
/// Hands `f` the [`printable`] text of `raw`, without copying it when it is printable ASCII
/// already (the usual greeting or capability).
fn with_printable<R>(raw: &[u8], f: impl FnOnce(&str) -> R) -> R {
    match plain_ascii(raw) {
        Some(text) => f(text),
        None => f(&printable(raw)),
    }
}

/// `raw` trimmed, when that is printable ASCII within the length cap (the usual greeting or
/// capability): [`printable`] would give it back unchanged.
fn plain_ascii(raw: &[u8]) -> Option<&str> {
    let raw = raw.trim_ascii();
    if raw.len() <= MAX_TEXT && raw.iter().all(|byte| matches!(byte, b' '..=b'~')) {
        std::str::from_utf8(raw).ok()
    } else {
        None
    }
}

fn software_in(text: &str) -> Option<Arc<str>> {
    let needles = SOFTWARE_NEEDLES.as_ref()?;
    // Every occurrence of every name, in order of its end; of one name the first comes first.
    let found = needles.find_overlapping_iter(text).min_by_key(|found| found.pattern())?;
    let (_, name) = SOFTWARE.get(found.pattern().as_usize())?;
    let version = first_word(text.get(found.end()..)?)
        .filter(|token| token.starts_with(|c: char| c.is_ascii_digit()))
        .map(|token| token.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()));
    Some(match version {
        Some(version) if !version.is_empty() => Arc::from(format!("{name} {version}")),
        _ => Arc::from(*name),
    })
}

fn hostname_in(text: &str, hostname_first: bool) -> Option<&str> {
    if hostname_first {
        let after_code =
            text.get(4..).filter(|_| text.get(..3).is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit())))?;
        let first = first_word(after_code)?.trim_matches(hostname_punctuation);
        return looks_like_hostname(first.as_bytes()).then_some(first);
    }
    if text.is_ascii() {
        first_hostname(text.split_ascii_whitespace())
    } else {
        first_hostname(text.split_whitespace())
    }
}

fn hostname_punctuation(c: char) -> bool {
    matches!(c, '(' | ')' | '<' | '>' | '[' | ']' | ',' | ';' | ':')
}

fn first_hostname<'t>(words: impl Iterator<Item = &'t str>) -> Option<&'t str> {
    words
        .filter(|word| word.contains('.'))
        .map(|word| word.trim_matches(hostname_punctuation))
        .find(|word| looks_like_hostname(word.as_bytes()))
}

/// The first word of `text`. Text for people is ASCII nearly always, and has no control bytes
/// (so no vertical tab, the one character that only `split_whitespace` takes for a space): there
/// the words are found by bytes, without decoding characters.
fn first_word(text: &str) -> Option<&str> {
    if text.is_ascii() {
        text.split_ascii_whitespace().next()
    } else {
        text.split_whitespace().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_software_and_hostname() {
        let mut info = ServerInfo::default();
        let mut known = ServerLines::default();
        info.set_greeting(b"220 mail.example.test ESMTP Postfix (Debian/GNU)", true, &mut known);
        assert_eq!(info.software.as_deref(), Some("Postfix"));
        assert_eq!(info.hostname.as_deref(), Some("mail.example.test"));

        info.set_greeting(b"220 mx.example.test ESMTP Exim 4.96 Mon, 27 Nov 2026", true, &mut known);
        assert_eq!(info.software.as_deref(), Some("Exim 4.96"));

        info.set_greeting(b"+OK Dovecot (Debian) ready.", false, &mut known);
        assert_eq!(info.software.as_deref(), Some("Dovecot"));
        assert_eq!(info.hostname, None);

        info.set_greeting(
            b"* OK Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 (xc.example.edu) ready.",
            false,
            &mut known,
        );
        assert_eq!(info.software.as_deref(), Some("Microsoft Exchange"));
        assert_eq!(info.hostname.as_deref(), Some("xc.example.edu"));

        info.set_greeting(b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>", false, &mut known);
        assert_eq!(info.hostname, None);

        // Case does not matter; of two names the one earlier in the list wins, with its version.
        info.set_greeting(b"220 relay ESMTP POSTFIX via DOVECOT 2.3.19 (dovecot 2.4)", true, &mut known);
        assert_eq!(info.software.as_deref(), Some("Dovecot 2.3.19"));
        info.set_greeting(b"* OK IMAP4rev1 server ready", false, &mut known);
        assert_eq!(info.software, None);
    }

    #[test]
    fn a_greeting_seen_again_shares_its_facts_and_the_cache_stays_bounded() {
        let mut known = ServerLines::default();
        let line = b"220 relay ESMTP Postfix (mx.example.test)";
        let sightings: Vec<ServerInfo> = (0..3)
            .map(|_| {
                let mut info = ServerInfo::default();
                info.set_greeting(line, true, &mut known);
                info
            })
            .collect();
        assert!(sightings.iter().all(|info| info.software.as_deref() == Some("Postfix")));
        assert!(sightings.iter().all(|info| info.hostname.is_none()), "SMTP: the host name is the first word or none");
        let shared = |a: &ServerInfo, b: &ServerInfo| {
            a.greeting.as_ref().zip(b.greeting.as_ref()).is_some_and(|(a, b)| Arc::ptr_eq(a, b))
        };
        assert!(!shared(&sightings[0], &sightings[1]), "a line is remembered at its second sighting");
        assert!(shared(&sightings[1], &sightings[2]));

        // The same line as a POP3 or IMAP greeting, where the host name may be anywhere.
        let mut other_protocol = ServerInfo::default();
        other_protocol.set_greeting(line, false, &mut known);
        assert_eq!(other_protocol.hostname.as_deref(), Some("mx.example.test"));

        // Lines unique to their connection (a time, say) are worked out and not remembered.
        for n in 0..3 * SIGHTINGS_KEPT {
            let mut info = ServerInfo::default();
            info.set_greeting(format!("+OK ready, session {n}").as_bytes(), false, &mut known);
            assert!(info.greeting.as_deref().is_some_and(|g| g.ends_with(&format!("session {n}"))));
        }
        assert_eq!(known.greetings.iter().map(|lines| lines.known.len()).sum::<usize>(), 1, "the SMTP line only");
        assert!(known.greetings.iter().all(|lines| lines.seen_once.len() <= SIGHTINGS_KEPT));

        // Lines that repeat are remembered, up to the bound.
        for n in 0..3 * LINES_KEPT {
            for _ in 0..2 {
                let mut info = ServerInfo::default();
                info.set_greeting(format!("+OK ready {n}").as_bytes(), false, &mut known);
                assert!(info.greeting.as_deref().is_some_and(|g| g.ends_with(&format!(" {n}"))));
            }
        }
        assert!(known.greetings.iter().all(|lines| (1..=LINES_KEPT).contains(&lines.known.len())));
    }

    #[test]
    fn an_apop_challenge_leaves_the_rest_of_the_greeting_shared() {
        let mut known = ServerLines::default();
        let greetings: Vec<ServerInfo> = (0..3)
            .map(|n| {
                let mut info = ServerInfo::default();
                let line = format!("+OK Dovecot ready. <{n}.1@mail.example.test>");
                info.set_greeting(line.as_bytes(), false, &mut known);
                assert_eq!(info.greeting.as_deref(), Some(line.as_str()), "the text is the whole line");
                info
            })
            .collect();
        assert!(greetings.iter().all(|info| info.software.as_deref() == Some("Dovecot")));
        let [_, second, third] = &greetings[..] else { panic!("three greetings") };
        assert!(second.software.as_ref().zip(third.software.as_ref()).is_some_and(|(a, b)| Arc::ptr_eq(a, b)));
        assert_eq!(known.greetings.iter().map(|lines| lines.known.len()).sum::<usize>(), 1, "the line without it");
        // A challenge names no software, even when its host does.
        let mut info = ServerInfo::default();
        info.set_greeting(b"+OK POP3 ready <1896.697170952@mail.dovecot.example>", false, &mut known);
        assert_eq!(info.software, None);
        assert_eq!(without_apop_challenge(b"+OK ready <a b@c>"), None, "a message id has no space");
        assert_eq!(without_apop_challenge(b"+OK <ready>"), None, "nor is it without an @");
    }

    #[test]
    fn a_host_name_is_found_beside_any_white_space() {
        // Control bytes (tabs included) are escaped before the search; other white space stays.
        let mut known = ServerLines::default();
        let mut info = ServerInfo::default();
        info.set_greeting("* OK serveur prêt\u{a0}imap.example.test\u{3000}Dovecot".as_bytes(), false, &mut known);
        assert_eq!(info.hostname.as_deref(), Some("imap.example.test"));
        assert_eq!(info.software.as_deref(), Some("Dovecot"));
        info.set_greeting("220 smtp.example.test\u{a0}ESMTP Exim\u{a0}4.97".as_bytes(), true, &mut known);
        assert_eq!(info.hostname.as_deref(), Some("smtp.example.test"));
        assert_eq!(info.software.as_deref(), Some("Exim 4.97"));
    }

    #[test]
    fn an_imap_capability_list_seen_again_is_shared_and_replaces_the_earlier_one() {
        let mut known = ServerLines::default();
        let (mut first, mut second) = (ServerInfo::default(), ServerInfo::default());
        first.set_imap_capabilities(b"IMAP4rev1 STARTTLS  auth=PLAIN imap4rev1", &mut known);
        second.set_imap_capabilities(b"IMAP4rev1 STARTTLS  auth=PLAIN imap4rev1", &mut known);
        assert_eq!(second.capabilities.iter().collect::<Vec<_>>(), ["IMAP4REV1", "STARTTLS", "AUTH=PLAIN"]);
        assert_eq!((second.starttls_offered, second.login_disabled), (Some(true), Some(false)));
        assert_eq!(first.capabilities, second.capabilities);

        second.set_imap_capabilities(b"IMAP4rev1 LOGINDISABLED", &mut known);
        assert_eq!(second.capabilities.iter().collect::<Vec<_>>(), ["IMAP4REV1", "LOGINDISABLED"]);
        assert_eq!((second.starttls_offered, second.login_disabled), (Some(false), Some(true)));
        assert_eq!(first.capabilities.len(), 3, "the first flow keeps its own list");

        for n in 0..3 * LINES_KEPT {
            second.set_imap_capabilities(format!("IMAP4rev1 X-N{n}").as_bytes(), &mut known);
            assert!(second.capabilities.contains(&format!("X-N{n}")));
        }
        assert!(known.imap_capabilities.known.len() <= LINES_KEPT);
    }

    /// TLS named as a word, or encryption, asks for TLS; a user name that happens to hold the
    /// letters does not.
    #[test]
    fn a_demand_for_tls_is_a_word_of_its_own() {
        for asks in [
            &b"Plaintext authentication disallowed on non-secure (SSL/TLS) connections."[..],
            b"-ERR TLS required",
            b"Must issue a STARTTLS command first",
            b"TLSv1.2 required",
            b"Encryption required for requested authentication mechanism",
            b"[PRIVACYREQUIRED] Use STARTTLS",
            b"-ERR use STLS first",
            b"SSL3 or better, please",
        ] {
            assert!(demands_tls(asks), "{}", String::from_utf8_lossy(asks));
        }
        for says_nothing in [
            &b"Authentication failed for russell"[..],
            b"no such user tessla",
            b"mailbox atlsx",
            b"bad password",
            b"no ssl_admin",
        ] {
            assert!(!demands_tls(says_nothing), "{}", String::from_utf8_lossy(says_nothing));
        }
    }

    /// A server padding its capability list keeps at most 2 KiB of it: every alert carries the
    /// list, and must fit a syslog message.
    #[test]
    fn capability_text_is_bounded() {
        let mut server = ServerInfo::default();
        for i in 0..60 {
            server.add_capability(format!("X-{i:02}-{}", "A".repeat(200)).as_bytes());
        }
        server.add_capability(b"STARTTLS");
        assert!(server.capabilities.text_len() <= MAX_CAPABILITY_TEXT);
        assert_eq!(server.capabilities.len(), 10, "whole capabilities, as many as fit: 9 long ones, then STARTTLS");
        assert_eq!(server.starttls_offered, Some(true), "what a capability says is read even when it is not kept");
    }

    /// The bytes a server sent outside printable ASCII keep their lower-case `\xNN` escapes, as
    /// in every other field (docs/outputs.md): `\X1B` would read back as another text.
    #[test]
    fn capabilities_keep_their_escapes_lower_case() {
        let mut server = ServerInfo::default();
        server.add_capability(b"x-\x1b[31m");
        server.add_capability(b"x-\xff\xfe\\xab\\xyz");
        server.add_capability("x-caf\u{e9}".as_bytes());
        assert_eq!(
            server.capabilities.iter().collect::<Vec<_>>(),
            ["X-\\x1b[31M", "X-\\xff\\xfe\\xab\\XYZ", "X-CAF\u{e9}"]
        );
    }

    #[test]
    fn printable_ascii_is_kept_as_is_and_delete_is_escaped() {
        assert_eq!(printable(b" A1 ~!{}|<>@ z "), "A1 ~!{}|<>@ z");
        assert_eq!(printable(b"ok\x7fthere"), "ok\\x7fthere");
        assert_eq!(printable("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }

    #[test]
    fn greeting_is_trimmed_escaped_and_capped() {
        let mut info = ServerInfo::default();
        let mut known = ServerLines::default();
        info.set_greeting(b"  +OK hi\x01there\xff  ", false, &mut known);
        assert_eq!(info.greeting.as_deref(), Some("+OK hi\\x01there\\xff"));
        info.set_greeting(&[b'a'; 1000], false, &mut known);
        assert!(info.greeting.as_deref().is_some_and(|g| g.ends_with('…') && g.len() <= MAX_TEXT + 3));
    }

    #[test]
    fn starttls_and_logindisabled_drive_remediation() {
        let mut info = ServerInfo::default();
        assert_eq!(info.remediation(Outcome::Success), Remediation::Unknown);
        info.begin_capabilities(true);
        info.add_capability(b"IMAP4rev1");
        assert_eq!(info.remediation(Outcome::Success), Remediation::ServerOffersNoTls);
        info.add_capability(b"starttls");
        assert_eq!(info.remediation(Outcome::Success), Remediation::ClientSkippedStarttls);
        info.add_capability(b"LOGINDISABLED");
        assert_eq!(info.remediation(Outcome::Success), Remediation::ServerIgnoresLogindisabled);
        info.starttls_refused = true;
        assert_eq!(info.remediation(Outcome::Success), Remediation::StarttlsFailed);
        info.add_capability(b"StartTLS");
        info.add_capability(b"x-\x01");
        assert_eq!(info.capabilities.iter().collect::<Vec<_>>(), ["IMAP4REV1", "STARTTLS", "LOGINDISABLED", "X-\\x01"]);
    }
}
