//! IPv4 and IPv6 fragment reassembly within fixed memory.
//!
//! A datagram is keyed by its addresses, identification and protocol plus the VLAN and tunnel
//! context it was seen in. Bytes already received win over later overlapping ones (an overlap
//! cannot rewrite what was seen first); an overlap whose bytes differ is counted, as the TCP
//! reassembler counts its own: a receiver that keeps the last copy would read something else. Limits: a number of datagrams in progress, a total of
//! buffered bytes, a number of disjoint received ranges per datagram (fragments at every other
//! offset would otherwise grow the bookkeeping without bound), and an age measured on packet time
//! from the first fragment. Eviction drops the datagram whose first fragment is oldest.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::net::IpAddr;
use std::time::Duration;

use super::ip::{Fragment, IpPacket};
use super::tunnel::TunnelContext;
use super::{DecodeStats, SkipReason, VlanStack};
use crate::capture::{Timestamp, CLOCK_JUMP};
use crate::keyed_hash::KeyedMap;

/// The largest datagram payload IP can describe.
const MAX_DATAGRAM_LEN: u32 = 65_535;
/// Fragments other than the last carry a multiple of this many bytes.
const FRAGMENT_UNIT: usize = 8;
/// Expired datagrams are looked for at most this often (packet time).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Bounds on the memory and time fragment reassembly may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragLimits {
    /// Datagrams in progress at once.
    pub max_datagrams: usize,
    /// Payload bytes buffered across all datagrams in progress.
    pub max_bytes: usize,
    /// Disjoint byte ranges received per datagram before it is given up.
    pub max_ranges: usize,
    /// Time from a datagram's first fragment after which it is given up.
    pub timeout: Duration,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits { max_datagrams: 1024, max_bytes: 4 << 20, max_ranges: 64, timeout: Duration::from_secs(30) }
    }
}

/// Identifies the datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    protocol: u8,
    vlan: VlanStack,
    tunnel: u64,
}

impl DatagramKey {
    pub fn new(packet: &IpPacket<'_>, fragment: Fragment, context: &TunnelContext) -> Self {
        DatagramKey {
            src: packet.src,
            dst: packet.dst,
            id: fragment.id,
            protocol: packet.protocol,
            vlan: context.vlan,
            tunnel: context.tunnel,
        }
    }
}

/// A datagram being reassembled.
pub(super) struct Datagram {
    /// Payload bytes so far; gaps are zero until filled.
    data: Vec<u8>,
    /// Received byte ranges `[start, end)`, sorted, disjoint and not adjacent.
    received: Vec<(u32, u32)>,
    /// Payload length, known once the last fragment arrived.
    len: Option<u32>,
    first_seen: Timestamp,
    /// Creation order, to break ties between datagrams first seen at the same time.
    arrival: u64,
}

impl Datagram {
    fn is_complete(&self) -> bool {
        self.len.is_some_and(|len| self.received.as_slice() == [(0, len)])
    }

    /// Copies the parts of `[offset, end)` not received yet, then records the range. Returns
    /// whether a part received before differs from what `payload` says of it.
    fn fill(&mut self, offset: u32, payload: &[u8]) -> bool {
        let end = offset.saturating_add(u32::try_from(payload.len()).unwrap_or(u32::MAX));
        let mut cursor = offset;
        let mut differs = false;
        for &(start, stop) in &self.received {
            if stop <= cursor {
                continue;
            }
            if start >= end {
                break;
            }
            if start > cursor {
                copy_range(&mut self.data, payload, offset, cursor, start);
            }
            differs |= !same_range(&self.data, payload, offset, start.max(cursor), stop.min(end));
            cursor = cursor.max(stop);
        }
        if cursor < end {
            copy_range(&mut self.data, payload, offset, cursor, end);
        }
        self.record(offset, end);
        differs
    }

    /// Merges `[start, end)` into the sorted range list.
    fn record(&mut self, start: u32, end: u32) {
        let first = self.received.partition_point(|&(_, stop)| stop < start);
        let last = self.received.partition_point(|&(begin, _)| begin <= end);
        let merged = self
            .received
            .get(first..last)
            .unwrap_or_default()
            .iter()
            .fold((start, end), |(lo, hi), &(begin, stop)| (lo.min(begin), hi.max(stop)));
        self.received.splice(first..last.max(first), [merged]);
    }
}

/// Copies `payload` bytes for datagram offsets `[from, to)`; `payload` starts at `offset`.
fn copy_range(data: &mut [u8], payload: &[u8], offset: u32, from: u32, to: u32) {
    let source = from.saturating_sub(offset) as usize..to.saturating_sub(offset) as usize;
    if let (Some(target), Some(source)) = (data.get_mut(from as usize..to as usize), payload.get(source)) {
        target.copy_from_slice(source);
    }
}

/// Whether `payload` (starting at datagram offset `offset`) holds the same bytes as `data` for
/// datagram offsets `[from, to)`.
fn same_range(data: &[u8], payload: &[u8], offset: u32, from: u32, to: u32) -> bool {
    let source = from.saturating_sub(offset) as usize..to.saturating_sub(offset) as usize;
    match (data.get(from as usize..to as usize), payload.get(source)) {
        (Some(held), Some(new)) => held == new,
        _ => true,
    }
}

/// Fragment reassembly pool.
#[derive(Default)]
pub(super) struct Defragmenter {
    limits: DefragLimits,
    pub(super) pending: KeyedMap<DatagramKey, Datagram>,
    /// Sum of `data.len()` over `pending`.
    pub(super) buffered_bytes: usize,
    /// The last completed datagram, lent out by [`Defragmenter::insert`].
    completed: Vec<u8>,
    last_sweep: Timestamp,
    /// The last sweep's time was taken from a frame stamped more than [`CLOCK_JUMP`] after the
    /// sweep before, without sweeping (see [`Defragmenter::expire`]).
    jumped: bool,
    arrivals: u64,
}

impl std::fmt::Debug for Defragmenter {
    /// Buffers hold payload bytes (maybe passwords): print only sizes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Defragmenter")
            .field("limits", &self.limits)
            .field("pending", &self.pending.len())
            .field("buffered_bytes", &self.buffered_bytes)
            .finish()
    }
}

impl Defragmenter {
    pub fn new(limits: DefragLimits) -> Self {
        Defragmenter { limits, ..Defragmenter::default() }
    }

    /// Drops datagrams whose first fragment is older than the timeout (checked at most once per
    /// [`SWEEP_INTERVAL`] of packet time; a sweep stamped later than `now`, by a frame stamped far
    /// ahead or a file read before an older one, does not count). One frame stamped far ahead (a
    /// clock glitch) would time every datagram out: the first frame more than [`CLOCK_JUMP`] on
    /// only moves the sweep's time, and the next sweeps if it is as far on (a gap in the capture).
    pub fn expire(&mut self, now: Timestamp, stats: &mut DecodeStats) {
        if self.pending.is_empty() {
            // A jump seen with nothing pending is no gap a later frame could confirm.
            self.jumped = false;
            return;
        }
        if self.last_sweep <= now && now.saturating_since(self.last_sweep) < SWEEP_INTERVAL {
            return;
        }
        let far_on = now.saturating_since(self.last_sweep) > CLOCK_JUMP;
        self.last_sweep = now;
        if far_on && !std::mem::replace(&mut self.jumped, true) {
            return;
        }
        self.jumped = false;
        let timeout = self.limits.timeout;
        let mut freed = 0;
        self.pending.retain(|_, datagram| {
            let keep = now.saturating_since(datagram.first_seen) <= timeout;
            if !keep {
                freed += datagram.data.len();
                stats.fragments_timed_out += 1;
            }
            keep
        });
        self.buffered_bytes = self.buffered_bytes.saturating_sub(freed);
    }

    /// Adds a fragment. Returns whether the datagram is complete (its payload is then
    /// [`completed`](Self::completed)); an error when the fragment is malformed or cannot be kept.
    pub fn insert(
        &mut self,
        key: DatagramKey,
        fragment: Fragment,
        payload: &[u8],
        now: Timestamp,
        stats: &mut DecodeStats,
    ) -> Result<bool, SkipReason> {
        let payload_len = u32::try_from(payload.len()).map_err(|_| SkipReason::Malformed)?;
        let end = fragment.offset.saturating_add(payload_len);
        let misaligned = fragment.more && (payload.is_empty() || !payload.len().is_multiple_of(FRAGMENT_UNIT));
        if end > MAX_DATAGRAM_LEN || misaligned {
            return Err(SkipReason::Malformed);
        }
        self.make_room_for(&key, end, now, stats)?;
        let limits = self.limits;
        let arrival = self.arrivals;
        let datagram = self.pending.entry(key).or_insert_with(|| Datagram {
            data: Vec::new(),
            received: Vec::new(),
            len: None,
            first_seen: now,
            arrival,
        });
        self.arrivals = arrival.wrapping_add(1);
        // First data wins: bytes past an already known end are ignored, and so is a second,
        // different end.
        let end = match datagram.len {
            Some(len) => end.min(len),
            None if !fragment.more && datagram.received.last().is_none_or(|&(_, stop)| stop <= end) => {
                datagram.len = Some(end);
                end
            }
            None => end,
        };
        let wanted = end as usize;
        if datagram.data.len() < wanted {
            self.buffered_bytes += wanted - datagram.data.len();
            datagram.data.resize(wanted, 0);
        }
        let kept = payload.get(..end.saturating_sub(fragment.offset) as usize).unwrap_or_default();
        if !kept.is_empty() && datagram.fill(fragment.offset, kept) {
            stats.fragment_overlaps_differing += 1;
        }
        if datagram.received.len() > limits.max_ranges {
            self.remove(&key);
            stats.fragments_evicted += 1;
            return Err(SkipReason::IpFragment);
        }
        if !datagram.is_complete() {
            return Ok(false);
        }
        if let Some(done) = self.remove(&key) {
            self.completed = done.data;
            stats.fragments_reassembled += 1;
        }
        Ok(true)
    }

    /// The payload of the datagram completed last.
    pub fn completed(&self) -> &[u8] {
        &self.completed
    }

    /// Moves the completed datagram out, so that a fragment it carries can be added to the pool
    /// while its bytes stay valid; give it back with [`restore_completed`](Self::restore_completed)
    /// when it carries no fragment. At most two completed datagrams exist at once.
    pub fn take_completed(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.completed)
    }

    pub fn restore_completed(&mut self, datagram: Vec<u8>) {
        self.completed = datagram;
    }

    /// Ensures the datagram of `key` can exist and grow to `end` bytes within the limits, by
    /// dropping expired or else the oldest other datagrams.
    fn make_room_for(
        &mut self,
        key: &DatagramKey,
        end: u32,
        now: Timestamp,
        stats: &mut DecodeStats,
    ) -> Result<(), SkipReason> {
        let timeout = self.limits.timeout;
        let current_len = match self.pending.get(key) {
            Some(datagram) if now.saturating_since(datagram.first_seen) > timeout => {
                self.remove(key);
                stats.fragments_timed_out += 1;
                None
            }
            Some(datagram) => Some(datagram.data.len()),
            None => None,
        };
        if current_len.is_none() {
            while self.pending.len() >= self.limits.max_datagrams {
                if !self.evict_oldest(key, stats) {
                    return Err(SkipReason::IpFragment);
                }
            }
        }
        let growth = (end as usize).saturating_sub(current_len.unwrap_or(0));
        while self.buffered_bytes + growth > self.limits.max_bytes {
            if !self.evict_oldest(key, stats) {
                if self.remove(key).is_some() {
                    stats.fragments_evicted += 1;
                }
                return Err(SkipReason::IpFragment);
            }
        }
        Ok(())
    }

    /// Drops the datagram (other than `keep`) whose first fragment is oldest; false if none.
    fn evict_oldest(&mut self, keep: &DatagramKey, stats: &mut DecodeStats) -> bool {
        let oldest = self
            .pending
            .iter()
            .filter(|(key, _)| *key != keep)
            .min_by_key(|(_, datagram)| (datagram.first_seen, datagram.arrival))
            .map(|(key, _)| *key);
        match oldest {
            Some(key) => {
                self.remove(&key);
                stats.fragments_evicted += 1;
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, key: &DatagramKey) -> Option<Datagram> {
        let datagram = self.pending.remove(key)?;
        self.buffered_bytes = self.buffered_bytes.saturating_sub(datagram.data.len());
        Some(datagram)
    }
}
