//! Micro-benchmarks of the per-packet stages: frame decoding, flow lookup, stream reassembly, one
//! login through each protocol session, and the whole engine on a generated mail-heavy capture.
//! The end-to-end comparison with tcpdump is `bench/compare.sh`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use credwatch::capture::{FileSource, Timestamp};
use credwatch::decode::{Decoded, Decoder, TcpFlags, TcpPacket, VlanStack};
use credwatch::flow::{
    FlowEvent, FlowHandler, FlowInfo, FlowLimits, FlowTable, Inspect, ReassemblyLimits, ReassemblyStats, Side,
    StreamReassembler,
};
use credwatch::gen::{generate, GenConfig, TrafficKind};
use credwatch::pcapwriter::{CapturedFrame, Conversation};
use credwatch::pipeline::Engine;
use credwatch::proto::{CtxParts, ProtoConfig, ProtoEvent, Session};

/// One data segment each way of a mid-stream connection, in the given VLANs.
fn frames(client: IpAddr, server: IpAddr, vlans: &[u16]) -> Vec<CapturedFrame> {
    Conversation::new((client, 40_000), (server, 443))
        .vlans(vlans)
        .client(&[0x17; 200])
        .server(&[0x17; 1400])
        .frames()
        .expect("scripted frames")
}

fn bench_decode(c: &mut Criterion) {
    let v4: (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
    let v6: (IpAddr, IpAddr) = ("fd00::1".parse().expect("v6"), "fd00::2".parse().expect("v6"));
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (name, frames) in [
        ("ipv4", frames(v4.0, v4.1, &[])),
        ("ipv4-vlan", frames(v4.0, v4.1, &[10])),
        ("ipv4-qinq", frames(v4.0, v4.1, &[100, 10])),
        ("ipv6", frames(v6.0, v6.1, &[])),
    ] {
        let mut decoder = Decoder::new();
        let frame = frames[1].as_frame();
        group.bench_function(name, |b| {
            b.iter(|| match decoder.decode(black_box(&frame)) {
                Decoded::Tcp(packet) => packet.payload.len(),
                Decoded::Skipped(_) => 0,
            })
        });
    }
    group.finish();
}

/// Lets every flow go at its first data, as the sessions do with TLS and bulk traffic.
struct Bypass;

impl FlowHandler for Bypass {
    type App = ();
    fn open(&mut self, _info: &FlowInfo) {}
    fn event(&mut self, _info: &FlowInfo, _app: &mut (), _event: FlowEvent<'_>, _ts: Timestamp) -> Inspect {
        Inspect::Stop
    }
}

fn packet(index: u32, flags: u8, seq: u32, payload: &[u8]) -> TcpPacket<'_> {
    let [_, b, c, d] = index.to_be_bytes();
    TcpPacket {
        src: IpAddr::from([10, b, c, d]),
        dst: IpAddr::from([172, 16, 0, 1]),
        src_port: 40_000,
        dst_port: 443,
        seq,
        ack: 0,
        flags: TcpFlags(flags),
        window: 0,
        vlan: VlanStack::default(),
        tunnel: 0,
        payload,
        payload_missing: 0,
    }
}

fn bench_flow_lookup(c: &mut Criterion) {
    const FLOWS: u32 = 50_000;
    let payload = [0u8; 100];
    let ts = Timestamp::from_secs_nanos(1_700_000_000, 0);
    let mut table = FlowTable::new(FlowLimits::default());
    for index in 0..FLOWS {
        table.process(&packet(index, TcpFlags::SYN, 0, &[]), ts, &mut Bypass);
        table.process(&packet(index, TcpFlags::ACK, 1, &payload), ts, &mut Bypass);
    }
    let mut group = c.benchmark_group("flow");
    group.throughput(Throughput::Elements(1));
    let mut next = 0u32;
    group.bench_function("lookup-bypassed-50k", |b| {
        b.iter(|| {
            next = (next + 7_919) % FLOWS;
            table.process(black_box(&packet(next, TcpFlags::ACK, 101, &payload)), ts, &mut Bypass);
        })
    });
    group.bench_function("new-flow-and-evict", |b| {
        let limits = FlowLimits { max_flows: 10_000, ..FlowLimits::default() };
        let mut flood = FlowTable::new(limits);
        let mut index = 0u32;
        b.iter(|| {
            index = index.wrapping_add(1);
            flood.process(black_box(&packet(index, TcpFlags::SYN, 0, &[])), ts, &mut Bypass);
        })
    });
    group.finish();
}

fn bench_reassembly(c: &mut Criterion) {
    let limits = ReassemblyLimits::default();
    let segment = [b'x'; 1_000];
    let mut group = c.benchmark_group("reassembly");
    group.throughput(Throughput::Bytes(2 * segment.len() as u64));
    group.bench_function("in-order", |b| {
        let mut stream = StreamReassembler::new();
        let mut stats = ReassemblyStats::default();
        stream.on_syn(0);
        let mut seq = 1u32;
        b.iter(|| {
            for _ in 0..2 {
                stream.on_segment(seq, &segment, &limits, &mut stats, &mut |chunk| {
                    black_box(chunk);
                });
                seq = seq.wrapping_add(1_000);
            }
        })
    });
    group.bench_function("swapped-pairs", |b| {
        let mut stream = StreamReassembler::new();
        let mut stats = ReassemblyStats::default();
        stream.on_syn(0);
        let mut seq = 1u32;
        b.iter(|| {
            for offset in [1_000, 0] {
                stream.on_segment(seq.wrapping_add(offset), &segment, &limits, &mut stats, &mut |chunk| {
                    black_box(chunk);
                });
            }
            seq = seq.wrapping_add(2_000);
        })
    });
    group.finish();
}

/// A login session as (from client, bytes) pieces in order.
type Script = Vec<(bool, &'static [u8])>;

fn sessions() -> [(&'static str, u16, Script); 4] {
    [
        (
            "pop3-user-pass",
            110,
            vec![
                (false, b"+OK Dovecot ready.\r\n"),
                (true, b"USER alice\r\n"),
                (false, b"+OK\r\n"),
                (true, b"PASS Sunny-Day-2024\r\n"),
                (false, b"+OK Logged in.\r\n"),
            ],
        ),
        (
            "imap-login-literal",
            143,
            vec![
                (false, b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"),
                (true, b"a1 LOGIN alice {14}\r\n"),
                (false, b"+ OK\r\n"),
                (true, b"Sunny-Day-2024\r\n"),
                (false, b"a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
            ],
        ),
        (
            "imap-authenticate-plain",
            143,
            vec![
                (false, b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.\r\n"),
                (true, b"a1 AUTHENTICATE PLAIN AGFsaWNlAFN1bm55LURheS0yMDI0\r\n"),
                (false, b"a1 OK Logged in\r\n"),
            ],
        ),
        (
            "smtp-auth-login",
            587,
            vec![
                (false, b"220 mx.example.test ESMTP Postfix\r\n"),
                (true, b"EHLO client.example.test\r\n"),
                (false, b"250-mx.example.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
                (true, b"AUTH LOGIN\r\n"),
                (false, b"334 VXNlcm5hbWU6\r\n"),
                (true, b"YWxpY2U=\r\n"),
                (false, b"334 UGFzc3dvcmQ6\r\n"),
                (true, b"U3VubnktRGF5LTIwMjQ=\r\n"),
                (false, b"235 2.7.0 Authentication successful\r\n"),
            ],
        ),
    ]
}

fn bench_sessions(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    group.throughput(Throughput::Elements(1));
    for (name, port, script) in sessions() {
        group.bench_function(name, |b| {
            // Shared by the iterations (server lines included, as an engine shares them between
            // flows).
            let mut parts = CtxParts::default();
            b.iter(|| {
                let mut session = Session::new(Side::Hi, true, true, port, &parts.config);
                let mut ctx = parts.ctx(Timestamp::default());
                for (from_client, data) in &script {
                    let side = if *from_client { Side::Hi } else { Side::Lo };
                    session.on_data(side, data, &mut ctx);
                }
                // The login's credential, and the record of the session that ended with it.
                let credentials = parts.events.iter().filter(|event| matches!(event, ProtoEvent::Credential(_)));
                assert_eq!(credentials.count(), 1, "{name}: one credential");
                parts.events.clear();
            })
        });
    }
    group.finish();
}

fn bench_engine(c: &mut Criterion) {
    let config = GenConfig { kind: TrafficKind::MailHeavy, size: 4 << 20, seed: 1 };
    let (capture, report) = generate(&config, "bench.pcap", Vec::new()).expect("generated capture");
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Bytes(report.bytes));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("mail-heavy-4MiB", |b| {
        b.iter_batched(
            || capture.clone(),
            |capture| {
                let mut source = FileSource::from_reader("bench".into(), Box::new(std::io::Cursor::new(capture)))
                    .expect("capture opens");
                let mut decoder = Decoder::new();
                let mut engine = Engine::new(FlowLimits::default(), ProtoConfig::default());
                let mut events = Vec::new();
                while let Ok(Some(frame)) = source.next_frame() {
                    if let Decoded::Tcp(packet) = decoder.decode(&frame) {
                        engine.process(&packet, frame.ts, &mut events);
                    }
                }
                engine.finish(&mut events);
                assert!(events.len() >= report.truth.iter().filter(|row| row.expect_alert).count());
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_decode, bench_flow_lookup, bench_reassembly, bench_sessions, bench_engine);
criterion_main!(benches);
