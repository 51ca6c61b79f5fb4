//! Traffic that is not a mail login and must raise nothing: TLS, HTTP, SMB-like bulk transfers,
//! SSH, FTP (whose `USER`/`PASS` must not pass for POP3), DNS over UDP, SYN scans and flows that
//! never close.

use std::net::{IpAddr, SocketAddr};

use etherparse::{PacketBuilder, VlanId};

use super::mail::{tls_exchange, tls_record};
use super::rng::Rng;
use crate::capture::{LinkType, Timestamp};
use crate::pcapwriter::{CapturedFrame, Conversation, ScriptError, Side};

/// Largest call to the conversation in a bulk transfer: two full segments, then the receiver's ACK,
/// as a delayed-ACK receiver would answer.
const BULK_CALL: usize = 2 * 1460;

/// A TLS connection (HTTPS or implicit-TLS mail) moving about `bytes` of application data.
pub fn tls(conv: &mut Conversation, rng: &mut Rng, bytes: usize) {
    conv.handshake();
    tls_exchange(conv, rng, 1);
    conv.acknowledge_data(true);
    let mut left = bytes;
    while left > 0 {
        let record = left.min(16_384);
        let data = tls_record(0x17, rng, record);
        for call in data.chunks(BULK_CALL) {
            conv.server(call);
        }
        left -= record;
    }
    conv.fin(Side::Client);
}

/// An HTTP/1.1 connection with a few requests whose responses total about `bytes`.
pub fn http(conv: &mut Conversation, rng: &mut Rng, bytes: usize) {
    conv.handshake();
    let requests = rng.size(1, 4);
    for number in 0..requests {
        let path = rng.text(b"abcdefghijklmnopqrstuvwxyz0123456789", 12);
        conv.client(
            format!(
                "GET /static/{path}.js HTTP/1.1\r\nHost: intranet.example.test\r\nUser-Agent: Mozilla/5.0\r\n\
                 Accept: */*\r\nCookie: session={number}\r\n\r\n"
            )
            .as_bytes(),
        );
        let body_len = bytes / requests;
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/javascript\r\nContent-Length: {body_len}\r\n\r\n")
                .into_bytes();
        response.extend_from_slice(&rng.bytes(body_len));
        conv.acknowledge_data(true);
        for call in response.chunks(BULK_CALL) {
            conv.server(call);
        }
        conv.acknowledge_data(false);
    }
    conv.fin(Side::Client);
}

/// An SMB-like file read: binary NetBIOS-framed requests, then `bytes` of bulk data.
pub fn smb(conv: &mut Conversation, rng: &mut Rng, bytes: usize) {
    conv.handshake();
    let mut negotiate = vec![0x00, 0x00, 0x00, 0x6c, 0xfe, b'S', b'M', b'B'];
    negotiate.extend_from_slice(&rng.bytes(104));
    conv.client(&negotiate);
    let mut reply = vec![0x00, 0x00, 0x01, 0x00, 0xfe, b'S', b'M', b'B'];
    reply.extend_from_slice(&rng.bytes(252));
    conv.server(&reply);
    conv.acknowledge_data(true);
    let mut left = bytes;
    while left > 0 {
        let read = left.min(65_536);
        let mut request = vec![0x00, 0x00, 0x00, 0x71, 0xfe, b'S', b'M', b'B'];
        request.extend_from_slice(&rng.bytes(105));
        conv.client(&request);
        let data = rng.bytes(read);
        for call in data.chunks(BULK_CALL) {
            conv.server(call);
        }
        left -= read;
    }
    conv.fin(Side::Client);
}

/// An SSH connection: the server speaks first, but not like a mail server.
pub fn ssh(conv: &mut Conversation, rng: &mut Rng, bytes: usize) {
    conv.handshake();
    conv.server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
    conv.client(b"SSH-2.0-OpenSSH_9.6\r\n");
    conv.acknowledge_data(true);
    let mut left = bytes;
    while left > 0 {
        let len = left.min(rng.size(48, 1400));
        conv.client(&rng.bytes(len.min(200)));
        conv.server(&rng.bytes(len));
        left -= len;
    }
    conv.fin(Side::Client);
}

/// An FTP login in clear: greets with 220 like SMTP and logs in with `USER`/`PASS` like POP3, but
/// it is neither, and must not raise a mail alert.
pub fn ftp(conv: &mut Conversation, rng: &mut Rng) {
    conv.handshake();
    conv.server(b"220 ProFTPD Server (files.example.test)\r\n");
    conv.client(format!("USER ftp{}\r\n", rng.below(1000)).as_bytes());
    conv.server(b"331 Password required\r\n");
    conv.client(format!("PASS {}\r\n", rng.text(b"abcdefghjkmnpqrstuvwxyz23456789", 12)).as_bytes());
    conv.server(b"230 User logged in\r\n");
    conv.client(b"QUIT\r\n");
    conv.server(b"221 Goodbye.\r\n");
    conv.fin(Side::Client);
}

/// A port scan probe: a SYN answered by a RST (a closed port), or by nothing (filtered).
pub fn syn_probe(conv: &mut Conversation, rng: &mut Rng) -> Result<Vec<CapturedFrame>, ScriptError> {
    // Scripted as a handshake for its sequence numbers; only the SYN (first frame) and the RST
    // (fourth) go on the wire.
    conv.handshake();
    let answered = rng.percent(70);
    if answered {
        conv.rst(Side::Server);
    }
    let frames = conv.frames()?;
    Ok(frames
        .into_iter()
        .enumerate()
        .filter(|(index, _)| *index == 0 || (answered && *index == 3))
        .map(|(_, f)| f)
        .collect())
}

/// A connection that never closes: a handshake, and maybe a request, then silence.
pub fn never_closed(conv: &mut Conversation, rng: &mut Rng) {
    conv.handshake();
    if rng.percent(50) {
        conv.client(b"GET /health HTTP/1.1\r\nHost: lb.example.test\r\n\r\n");
        if rng.percent(50) {
            conv.server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    }
}

/// A DNS query and its answer over UDP.
pub fn dns(
    rng: &mut Rng,
    client: SocketAddr,
    server: IpAddr,
    vlans: &[u16],
    ts: Timestamp,
) -> Result<Vec<CapturedFrame>, String> {
    let id = u16::try_from(rng.below(1 << 16)).unwrap_or(0);
    let name = format!("host{}.corp.example.test", rng.below(10_000));
    let mut query = id.to_be_bytes().to_vec();
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        query.push(u8::try_from(label.len()).unwrap_or(63));
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut answer = query.clone();
    if let Some(flags) = answer.get_mut(2..4) {
        flags.copy_from_slice(&[0x81, 0x80]);
    }
    if let Some(count) = answer.get_mut(6..8) {
        count.copy_from_slice(&[0, 1]);
    }
    answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    answer.extend_from_slice(&rng.bytes(4));
    let server = SocketAddr::new(server, 53);
    let later = ts.saturating_add(std::time::Duration::from_micros(rng.range(200, 3000)));
    Ok(vec![udp_frame(client, server, vlans, ts, &query)?, udp_frame(server, client, vlans, later, &answer)?])
}

fn udp_frame(
    from: SocketAddr,
    to: SocketAddr,
    vlans: &[u16],
    ts: Timestamp,
    payload: &[u8],
) -> Result<CapturedFrame, String> {
    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
    let ethernet = PacketBuilder::ethernet2(MAC_A, MAC_B);
    let error = |e: etherparse::err::ValueTooBigError<u16>| e.to_string();
    let mut data = Vec::new();
    let written = match (vlans.first(), from.ip(), to.ip()) {
        (Some(&vlan), IpAddr::V4(src), IpAddr::V4(dst)) => ethernet
            .single_vlan(VlanId::try_new(vlan).map_err(error)?)
            .ipv4(src.octets(), dst.octets(), 64)
            .udp(from.port(), to.port())
            .write(&mut data, payload),
        (Some(&vlan), IpAddr::V6(src), IpAddr::V6(dst)) => ethernet
            .single_vlan(VlanId::try_new(vlan).map_err(error)?)
            .ipv6(src.octets(), dst.octets(), 64)
            .udp(from.port(), to.port())
            .write(&mut data, payload),
        (None, IpAddr::V4(src), IpAddr::V4(dst)) => {
            ethernet.ipv4(src.octets(), dst.octets(), 64).udp(from.port(), to.port()).write(&mut data, payload)
        }
        (None, IpAddr::V6(src), IpAddr::V6(dst)) => {
            ethernet.ipv6(src.octets(), dst.octets(), 64).udp(from.port(), to.port()).write(&mut data, payload)
        }
        _ => return Err("DNS endpoints of different address families".into()),
    };
    written.map_err(|e| e.to_string())?;
    Ok(CapturedFrame { ts, link_type: LinkType::ETHERNET, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoded, Decoder, SkipReason};

    fn conversation() -> Conversation {
        Conversation::new(([10, 0, 0, 1], 40_000), ([10, 0, 0, 2], 443))
    }

    #[test]
    fn probes_are_a_syn_and_maybe_a_rst() {
        let mut rng = Rng::new(5);
        let mut lengths = Vec::new();
        for _ in 0..20 {
            let frames = syn_probe(&mut conversation(), &mut rng).unwrap();
            let mut decoder = Decoder::new();
            let Decoded::Tcp(first) = decoder.decode(&frames[0].as_frame()) else { panic!("not TCP") };
            assert!(first.flags.syn() && !first.flags.ack());
            if let Some(second) = frames.get(1) {
                let Decoded::Tcp(rst) = decoder.decode(&second.as_frame()) else { panic!("not TCP") };
                assert!(rst.flags.rst());
            }
            lengths.push(frames.len());
        }
        assert!(lengths.contains(&1) && lengths.contains(&2));
    }

    #[test]
    fn dns_frames_decode_as_udp_in_their_vlan() {
        let frames = dns(
            &mut Rng::new(1),
            SocketAddr::from(([10, 0, 0, 1], 5353)),
            IpAddr::from([10, 0, 0, 53]),
            &[42],
            Timestamp::from_secs_nanos(1, 0),
        )
        .unwrap();
        assert_eq!(frames.len(), 2);
        assert!(frames[0].ts < frames[1].ts);
        assert_eq!(&frames[0].data[12..16], &[0x81, 0x00, 0x00, 42]);
        let mut decoder = Decoder::new();
        assert!(matches!(decoder.decode(&frames[1].as_frame()), Decoded::Skipped(SkipReason::NotTcp)));
    }

    #[test]
    fn bulk_transfers_reach_their_size_with_acks() {
        let mut conv = conversation();
        smb(&mut conv, &mut Rng::new(2), 200_000);
        let frames = conv.frames().unwrap();
        let bytes: usize = frames.iter().map(|frame| frame.data.len()).sum();
        assert!(bytes > 200_000 && bytes < 240_000, "{bytes}");
        let small = frames.iter().filter(|frame| frame.data.len() <= 60).count();
        assert!(small * 4 > frames.len(), "about one ACK per two data segments");
    }
}
