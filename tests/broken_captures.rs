//! Malformed captures (`fixtures/broken/`): each is written here from a login capture of the
//! repository's writer plus one deliberate corruption, and the binary must say what is wrong (file
//! and, past its header, byte offset), keep what it found, exit 3 when it could not read to the
//! end, and never panic.
//!
//! The committed files must equal what [`broken_captures`] writes; set `CREDWATCH_REGENERATE=1` to
//! rewrite them after changing this generator.

mod support;

use credwatch::capture::{LinkType, Timestamp};
use credwatch::pcapwriter::{
    write_pcap, write_pcap_cut, ByteOrder, CapturedFrame, PcapngWriter, Resolution, DEFAULT_SNAPLEN,
};
use support::*;

/// The password planted in every broken capture (the canary test looks for it too).
pub const PLANTED_PASSWORD: &[u8] = b"broken-fixture-pw";

/// What running the binary on a broken capture must show.
struct Expect {
    /// 3: the file could not be read to its end; 0: it could, with warnings or skipped frames.
    exit: i32,
    /// The alice login comes before the damage (or survives it) and must be reported.
    login_found: bool,
    /// The damage cut the login's lines: it is reported partial (its user name cut short).
    partial: bool,
    /// Words the stderr message must contain (besides the file name).
    message: &'static [&'static str],
}

struct Broken {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn login_frames() -> Vec<CapturedFrame> {
    pop3_login(40_000, b"alice", PLANTED_PASSWORD).frames().unwrap()
}

fn pcap_of(frames: &[CapturedFrame]) -> Vec<u8> {
    write_pcap(Vec::new(), frames).unwrap()
}

/// A pcapng block: type, total length, body (padded to 4 bytes), total length.
fn pcapng_block(block_type: u32, body: &[u8], claimed_len: Option<u32>) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().div_ceil(4) * 4, 0);
    let len = claimed_len.unwrap_or(u32::try_from(12 + body.len()).unwrap());
    [&block_type.to_le_bytes()[..], &len.to_le_bytes(), &body, &len.to_le_bytes()].concat()
}

/// An Enhanced Packet Block for `interface`, little-endian, microsecond ticks.
fn epb(interface: u32, frame: &CapturedFrame) -> Vec<u8> {
    let ticks = frame.ts.as_nanos() / 1000;
    let caplen = u32::try_from(frame.data.len()).unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&interface.to_le_bytes());
    body.extend_from_slice(&u32::try_from(ticks >> 32).unwrap().to_le_bytes());
    body.extend_from_slice(&u32::try_from(ticks & 0xffff_ffff).unwrap().to_le_bytes());
    body.extend_from_slice(&caplen.to_le_bytes());
    body.extend_from_slice(&caplen.to_le_bytes());
    body.extend_from_slice(&frame.data);
    pcapng_block(6, &body, None)
}

/// A pcapng with one interface holding `frames`, as the writer makes it.
fn pcapng_of(frames: &[CapturedFrame]) -> Vec<u8> {
    let mut writer = PcapngWriter::new(Vec::new(), ByteOrder::Little).unwrap();
    let interface = writer.add_interface(LinkType::RAW, Resolution::Micros, DEFAULT_SNAPLEN).unwrap();
    for frame in frames {
        writer.write_packet(interface, frame.ts, &frame.data).unwrap();
    }
    writer.into_inner().unwrap()
}

fn broken_captures() -> Vec<Broken> {
    let login = login_frames();
    let whole = pcap_of(&login);
    let mut captures = Vec::new();

    // Cut in the middle of a record after the login: what came before is kept.
    let mut late = login.clone();
    late.push(CapturedFrame { ts: Timestamp::from_secs_nanos(1_700_000_100, 0), ..login[3].clone() });
    let full = pcap_of(&late);
    captures.push(Broken {
        name: "truncated-record.pcap",
        bytes: full[..full.len() - 10].to_vec(),
        expect: Expect { exit: 3, login_found: true, partial: false, message: &["offset", "truncated"] },
    });
    // Errors opening a file have no record, hence no offset, to name.
    captures.push(Broken {
        name: "truncated-header.pcap",
        bytes: whole[..14].to_vec(),
        expect: Expect { exit: 3, login_found: false, partial: false, message: &["the file header is cut short"] },
    });
    let mut bad_magic = whole.clone();
    bad_magic[..4].copy_from_slice(b"PCAP");
    captures.push(Broken {
        name: "bad-magic.pcap",
        bytes: bad_magic,
        expect: Expect { exit: 3, login_found: false, partial: false, message: &["not a pcap"] },
    });

    // Snaplen 48: every record is cut to the IP and TCP headers and 8 payload bytes; the file
    // reads to its end, the login is a partial one (its user name cut short, the password's
    // start too), and a warning says why.
    captures.push(Broken {
        name: "snaplen-smaller-than-packets.pcap",
        bytes: write_pcap_cut(Vec::new(), &login, 48).unwrap(),
        expect: Expect { exit: 0, login_found: false, partial: true, message: &["snap length"] },
    });

    // Snaplen 36: every record is cut inside its TCP header (tcpdump's old default of 68 bytes
    // does that to Ethernet frames whose segments carry options); nothing can be read, and a
    // warning says why instead of a silent all-clear.
    captures.push(Broken {
        name: "snaplen-inside-the-headers.pcap",
        bytes: write_pcap_cut(Vec::new(), &login, 36).unwrap(),
        expect: Expect {
            exit: 0,
            login_found: false,
            partial: false,
            message: &["snap length before the end of their headers"],
        },
    });

    // A record claiming 1 GiB of captured bytes after the login.
    let mut huge_caplen = full.clone();
    let last_record = whole.len();
    huge_caplen[last_record + 8..last_record + 12].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    captures.push(Broken {
        name: "caplen-larger-than-buffer.pcap",
        bytes: huge_caplen,
        expect: Expect { exit: 3, login_found: true, partial: false, message: &["offset", "corrupt"] },
    });

    // pcapng: a block whose length is not a multiple of 4, after the login.
    let mut bad_length = pcapng_of(&login);
    bad_length.extend(pcapng_block(6, &[0; 20], Some(31)));
    captures.push(Broken {
        name: "pcapng-bad-block-length.pcapng",
        bytes: bad_length,
        expect: Expect { exit: 3, login_found: true, partial: false, message: &["offset", "corrupt"] },
    });
    // pcapng: a block shorter than a block header.
    let mut short_block = pcapng_of(&login);
    short_block.extend(pcapng_block(6, &[], Some(8)));
    captures.push(Broken {
        name: "pcapng-block-too-short.pcapng",
        bytes: short_block,
        expect: Expect { exit: 3, login_found: true, partial: false, message: &["offset", "corrupt"] },
    });
    // pcapng: an unknown block type between the packets is skipped with a warning.
    let (first, second) = login.split_at(4);
    let mut unknown = pcapng_of(first);
    unknown.extend(pcapng_block(0x0bad_b10c, b"what is this", None));
    unknown.extend(second.iter().flat_map(|frame| epb(0, frame)));
    captures.push(Broken {
        name: "pcapng-unknown-block.pcapng",
        bytes: unknown,
        expect: Expect { exit: 0, login_found: true, partial: false, message: &["offset", "unknown type"] },
    });
    // pcapng: a section without an interface description (its packets are skipped with a
    // warning), then a well-formed section holding the login.
    let mut no_interface = PcapngWriter::new(Vec::new(), ByteOrder::Little).unwrap().into_inner().unwrap();
    no_interface.extend(login.iter().flat_map(|frame| epb(0, frame)));
    no_interface.extend(pcapng_of(&login));
    captures.push(Broken {
        name: "pcapng-section-without-interface.pcapng",
        bytes: no_interface,
        expect: Expect {
            exit: 0,
            login_found: true,
            partial: false,
            message: &["offset", "undeclared pcapng interface"],
        },
    });
    captures
}

#[test]
fn committed_fixtures_match_the_generator() {
    let dir = repo().join("fixtures/broken");
    let regenerate = std::env::var_os("CREDWATCH_REGENERATE").is_some();
    for broken in broken_captures() {
        let path = dir.join(broken.name);
        if regenerate {
            std::fs::write(&path, &broken.bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(committed == broken.bytes, "{} differs from the generator (CREDWATCH_REGENERATE=1)", broken.name);
    }
}

#[test]
fn each_broken_capture_is_reported_and_what_it_held_is_kept() {
    let dir = repo().join("fixtures/broken");
    for broken in broken_captures() {
        let path = dir.join(broken.name);
        let path_text = path.to_str().unwrap();
        let output = credwatch(&["read", "--format", "json", "--show-usernames", path_text], None);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let context = format!("{}: exit {:?}\nstdout: {stdout}\nstderr: {stderr}", broken.name, output.status);
        assert_eq!(output.status.code(), Some(broken.expect.exit), "{context}");
        assert!(!stderr.contains("panicked"), "{context}");
        assert_eq!(stdout.contains("\"username\":\"alice\""), broken.expect.login_found, "{context}");
        assert_eq!(stdout.contains("\"partial\":true"), broken.expect.partial, "{context}");
        if !broken.expect.message.is_empty() {
            assert!(stderr.contains(broken.name), "the message names the file: {context}");
        }
        for word in broken.expect.message {
            assert!(stderr.contains(word), "missing {word:?}: {context}");
        }
    }
}

/// The whole directory at once: every file is tried, the run goes on past the broken ones, names
/// each that failed, and exits 3. (A directory is searched for captures by their first bytes, so
/// the file with a bad magic is left out there: it is reported only when named.)
#[test]
fn a_directory_of_broken_captures_is_read_to_the_last_file() {
    let dir = repo().join("fixtures/broken");
    let output = credwatch(&["read", "--format", "json", "--show-usernames", dir.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let named_only = ["bad-magic.pcap"];
    for broken in broken_captures().iter().filter(|b| b.expect.exit == 3 && !named_only.contains(&b.name)) {
        assert!(stderr.contains(broken.name), "{} not reported: {stderr}", broken.name);
    }
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"username\":\"alice\""));
}
