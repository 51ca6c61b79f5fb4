//! Streams many overlapping conversations into one capture in timestamp order, holding only the
//! frames of conversations still in flight (a whole-capture [`crate::pcapwriter::interleave`]
//! would need the gigabyte in memory).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{self, Write};

use crate::capture::Timestamp;
use crate::pcapwriter::{CapturedFrame, PcapOptions, PcapWriter, Resolution};

/// Bytes of a classic pcap file header and of each record header.
const FILE_HEADER_LEN: u64 = 24;
const RECORD_HEADER_LEN: u64 = 16;

struct Pending {
    ts: Timestamp,
    /// Scheduling order, so that equal timestamps keep the order frames were scheduled in.
    order: u64,
    frame: CapturedFrame,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.order).cmp(&(other.ts, other.order))
    }
}

/// A pcap writer fed whole conversations whose first frames come in time order.
pub struct Scheduler<W: Write> {
    writer: PcapWriter<W>,
    link: PcapOptions,
    pending: BinaryHeap<Reverse<Pending>>,
    next_order: u64,
    /// Size the file will have once everything scheduled is written.
    scheduled_bytes: u64,
}

impl<W: Write> Scheduler<W> {
    /// Starts an Ethernet, nanosecond pcap file.
    pub fn new(out: W) -> io::Result<Self> {
        let link =
            PcapOptions { resolution: Resolution::Nanos, ..PcapOptions::new(crate::capture::LinkType::ETHERNET) };
        Ok(Scheduler {
            writer: PcapWriter::new(out, link)?,
            link,
            pending: BinaryHeap::new(),
            next_order: 0,
            scheduled_bytes: FILE_HEADER_LEN,
        })
    }

    /// Adds frames of a conversation. The caller promises that no later conversation has a frame
    /// before `now`, the start of this one; frames before it are written out.
    pub fn add(&mut self, now: Timestamp, frames: Vec<CapturedFrame>) -> io::Result<()> {
        self.write_before(now)?;
        for frame in frames {
            if frame.link_type != self.link.link_type {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "generated frame is not Ethernet"));
            }
            self.scheduled_bytes += RECORD_HEADER_LEN + frame.data.len() as u64;
            self.pending.push(Reverse(Pending { ts: frame.ts, order: self.next_order, frame }));
            self.next_order += 1;
        }
        Ok(())
    }

    /// Size of the capture once everything scheduled so far is written.
    pub fn scheduled_bytes(&self) -> u64 {
        self.scheduled_bytes
    }

    /// Writes what is left and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        while let Some(Reverse(pending)) = self.pending.pop() {
            self.write(&pending.frame)?;
        }
        self.writer.into_inner()
    }

    fn write_before(&mut self, now: Timestamp) -> io::Result<()> {
        while self.pending.peek().is_some_and(|Reverse(first)| first.ts < now) {
            if let Some(Reverse(pending)) = self.pending.pop() {
                self.write(&pending.frame)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, frame: &CapturedFrame) -> io::Result<()> {
        self.writer.write_frame(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;

    fn frame(nanos: u32, tag: u8) -> CapturedFrame {
        CapturedFrame { ts: Timestamp::from_secs_nanos(0, nanos), link_type: LinkType::ETHERNET, data: vec![tag; 20] }
    }

    #[test]
    fn overlapping_conversations_come_out_in_time_order() {
        let mut scheduler = Scheduler::new(Vec::new()).unwrap();
        scheduler.add(Timestamp::from_secs_nanos(0, 10), vec![frame(10, 1), frame(30, 2), frame(50, 3)]).unwrap();
        scheduler.add(Timestamp::from_secs_nanos(0, 20), vec![frame(20, 4), frame(30, 5), frame(40, 6)]).unwrap();
        assert_eq!(scheduler.scheduled_bytes(), 24 + 6 * 36);
        let bytes = scheduler.finish().unwrap();
        let (_, capture) = pcap_parser::parse_pcap(&bytes).unwrap();
        let tags: Vec<u8> = capture.blocks.iter().map(|record| record.data[0]).collect();
        assert_eq!(tags, [1, 4, 2, 5, 6, 3], "equal timestamps keep scheduling order");
        assert_eq!(bytes.len() as u64, 24 + 6 * 36);
    }
}
