//! credwatch: find mail logins that cross the network in clear.
//!
//! Data flows through one module per stage:
//!
//! ```text
//! capture ──Frame──▶ decode ──TcpPacket──▶ flow (table ▸ reassembly) ──StreamEvent──▶ proto (session ▸ parser)
//!                                                                                     │ CredentialEvent (redacted)
//!                                                                                     ▼
//!                                                                   alert (model) ──▶ output (json, text)
//! ```
//!
//! * [`capture`] reads frames from capture files (pure Rust) or, with the `live` feature, from libpcap.
//! * [`decode`] peels link layers, VLAN tags and tunnels down to TCP segments, without copying.
//! * [`flow`] keeps one entry per TCP connection and turns segments into an ordered byte stream per
//!   direction, with bounded memory.
//! * [`proto`] recognises POP3, IMAP and SMTP and runs one session state machine per flow. It is the only
//!   module that ever sees a password; what leaves it is already redacted.
//! * [`alert`] is the event model every output serialises; [`output`] writes it.
//! * [`posture`] turns what sessions showed of their servers into a TLS-posture inventory.
//! * [`pipeline`] wires the stages together on one or more threads; [`progress`] shows how far a long
//!   read got.
//! * [`keyed_hash`] gives every map keyed by traffic a secret seed, so that crafted traffic cannot
//!   make its keys collide.

pub mod alert;
pub mod capture;
pub mod decode;
pub mod flow;
pub mod gen;
pub mod keyed_hash;
pub mod output;
pub mod pcapwriter;
pub mod pipeline;
pub mod posture;
pub mod progress;
pub mod proto;
pub mod tracker_limits;

#[cfg(test)]
mod tests {
    /// Printed as the command prints a fatal error (`{:#}`: the message, then each `source()`),
    /// every error says its cause once: a message holding its cause must not also return it as
    /// its source.
    #[test]
    fn errors_say_their_cause_once() {
        let cause = || std::io::Error::other("disk on fire");
        let errors: [anyhow::Error; 4] = [
            crate::pipeline::RunError::Output(cause()).into(),
            crate::pipeline::UnreadableInput::Directory { path: "dir".into(), error: cause() }.into(),
            crate::capture::CaptureErrorKind::Io(cause()).into(),
            crate::gen::GenError::Io(cause()).into(),
        ];
        for error in errors {
            let said = format!("{error:#}");
            assert_eq!(said.matches("disk on fire").count(), 1, "{said}");
        }
    }
}
