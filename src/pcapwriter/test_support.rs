//! Parsing helpers shared by the writer's tests: every frame is read back with etherparse, an
//! implementation independent of the code that wrote it.

use etherparse::{EtherType, SlicedPacket, TransportSlice};

use super::CapturedFrame;
use crate::capture::LinkType;

/// Slices a frame of any link type the conversation writes (without tunnels).
pub fn slice(frame: &CapturedFrame) -> SlicedPacket<'_> {
    let data = frame.data.as_slice();
    match frame.link_type {
        LinkType::ETHERNET => SlicedPacket::from_ethernet(data).unwrap(),
        LinkType::LINUX_SLL => SlicedPacket::from_linux_sll(data).unwrap(),
        LinkType::LINUX_SLL2 => {
            let ether_type = u16::from_be_bytes([data[0], data[1]]);
            SlicedPacket::from_ether_type(EtherType(ether_type), &data[20..]).unwrap()
        }
        LinkType::RAW => SlicedPacket::from_ip(data).unwrap(),
        LinkType::NULL | LinkType::LOOP => SlicedPacket::from_ip(&data[4..]).unwrap(),
        other => panic!("no parser for link type {other:?}"),
    }
}

/// What a test checks of one TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    pub src_port: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    pub flags: String,
    pub payload: Vec<u8>,
}

/// The TCP segment of a sliced packet; flags as letters in `SAPFR` order.
pub fn tcp_of(packet: &SlicedPacket<'_>) -> Seg {
    let Some(TransportSlice::Tcp(tcp)) = &packet.transport else {
        panic!("no TCP in {:?}", packet.transport);
    };
    let flags = [(tcp.syn(), 'S'), (tcp.ack(), 'A'), (tcp.psh(), 'P'), (tcp.fin(), 'F'), (tcp.rst(), 'R')]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, letter)| *letter)
        .collect();
    Seg {
        src_port: tcp.source_port(),
        seq: tcp.sequence_number(),
        ack: tcp.ack().then(|| tcp.acknowledgment_number()),
        flags,
        payload: tcp.payload().to_vec(),
    }
}

pub fn segments(frames: &[CapturedFrame]) -> Vec<Seg> {
    frames.iter().map(|frame| tcp_of(&slice(frame))).collect()
}
