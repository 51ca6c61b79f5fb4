//! 802.11 (Wi-Fi) data frames, bare or behind a radiotap header (monitor-mode captures), down to
//! the ethertype of their LLC/SNAP header. What an open network carries (or what a capture
//! decrypted by the capturing tool holds) is read; protected frames are encrypted, and counted.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use super::link::{be_u16, be_u32, le_u16, le_u32, Layer};
use super::SkipReason;
use crate::capture::LinkType;

/// Radiotap: version (0), padding, then the header's whole length, little-endian, then the
/// bitmaps of the fields present (32 bits each, little-endian; bit 31 says another follows).
const RADIOTAP_VERSION: u8 = 0;
const RADIOTAP_LENGTH_OFFSET: usize = 2;
const RADIOTAP_PRESENT_OFFSET: usize = 4;
const PRESENT_WORD_LEN: usize = 4;
const PRESENT_EXTENDED: u32 = 1 << 31;
/// The fields in the first bitmap that come before the flags, in this order: the TSF timer
/// (64 bits, aligned on 8 bytes from the header's start), then the flags (one byte).
const PRESENT_TSFT: u32 = 1 << 0;
const PRESENT_FLAGS: u32 = 1 << 1;
const TSFT_LEN: usize = 8;
/// Radiotap flags: padding after the 802.11 header up to a multiple of 4 bytes (Atheros and
/// others); the frame failed its frame check (its bytes are not what was sent).
const RADIOTAP_DATA_PAD: u8 = 0x20;
const RADIOTAP_BAD_FCS: u8 = 0x40;
/// Body alignment when radiotap says the 802.11 header is padded.
const DATA_PAD_ALIGN: usize = 4;

/// AVS monitoring header: a big-endian version whose top 20 bits are 0x80211, then the header's
/// length (big-endian).
const AVS_MAGIC_MASK: u32 = 0xFFFF_F000;
const AVS_MAGIC: u32 = 0x8021_1000;
const AVS_LENGTH_OFFSET: usize = 4;
/// Prism monitoring header: a message code, then the header's length in the capturing host's
/// byte order (144 bytes as the drivers write it).
const PRISM_LENGTH_OFFSET: usize = 4;
/// A header length no captured frame exceeds: a Prism length beyond the frame but within this
/// is a truncated frame, one beyond it in both byte orders a malformed header.
const PRISM_LENGTH_MAX: usize = 65_535;
/// Per-Packet Information header: version (0), flags, length (little-endian, fields included),
/// then the link type of the frame after it (little-endian); fields follow, each a type and a
/// length (little-endian) and its data.
const PPI_VERSION: u8 = 0;
const PPI_LENGTH_OFFSET: usize = 2;
const PPI_LINK_TYPE_OFFSET: usize = 4;
const PPI_HEADER_LEN: usize = 8;
const PPI_FIELD_HEADER_LEN: usize = 4;
/// PPI flags: every field starts on a multiple of 4 bytes.
const PPI_FLAG_ALIGNED: u8 = 0x01;
const PPI_ALIGN: usize = 4;
/// The 802.11-Common field, and in its data the flags (little-endian) saying the frame failed
/// its frame check.
const PPI_80211_COMMON: u16 = 2;
const PPI_COMMON_FLAGS_OFFSET: usize = 8;
const PPI_FLAG_BAD_FCS: u16 = 0x0004;

/// Frame control, first byte: protocol version (bits 0–1, always 0), type (bits 2–3), subtype.
const FRAME_TYPE_DATA: u8 = 2;
/// Data subtypes with this bit carry no data (null function, CF-Ack/Poll without data).
const SUBTYPE_NO_DATA: u8 = 0x04;
/// Data subtypes with this bit have a QoS control field.
const SUBTYPE_QOS: u8 = 0x08;
/// Frame control, second byte.
const FLAG_TO_DS: u8 = 0x01;
const FLAG_FROM_DS: u8 = 0x02;
const FLAG_PROTECTED: u8 = 0x40;
/// With QoS, an HT/VHT control field follows the QoS control.
const FLAG_ORDER: u8 = 0x80;
/// QoS control, first byte: the body is an aggregate of several subframes (A-MSDU).
const QOS_AMSDU_PRESENT: u8 = 0x80;
/// An A-MSDU subframe: destination and source addresses, the length of what follows
/// (big-endian), then an LLC/SNAP header and its packet; subframes but the last are padded to a
/// multiple of 4 bytes.
const SUBFRAME_HEADER_LEN: usize = 14;
const SUBFRAME_LENGTH_OFFSET: usize = 12;
const SUBFRAME_ALIGN: usize = 4;

/// Frame control, duration, three addresses and sequence control.
const MAC_HEADER_LEN: usize = 24;
/// The fourth address, in frames between access points (to and from the distribution system).
const ADDRESS_LEN: usize = 6;
const QOS_CONTROL_LEN: usize = 2;
const HT_CONTROL_LEN: usize = 4;
/// LLC/SNAP before the ethertype: RFC 1042 encapsulation, or 802.1H bridge tunnel.
const SNAP_HEADERS: [[u8; 6]; 2] = [[0xaa, 0xaa, 0x03, 0, 0, 0], [0xaa, 0xaa, 0x03, 0, 0, 0xf8]];
const SNAP_LEN: usize = 6;

/// An 802.11 frame behind a radiotap header, whose own length field says where the frame starts.
/// A frame that failed its frame check is skipped: a receiver corrupted it, the sender will
/// send it again, and its bytes would otherwise take the place of the good copy in the stream.
/// A frame check sequence at the end (radiotap's flags may say so) is left in place: the IP
/// header's length stops before it.
pub(super) fn radiotap(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let version = *data.first().ok_or(SkipReason::Truncated)?;
    if version != RADIOTAP_VERSION {
        return Err(SkipReason::Malformed);
    }
    let length = usize::from(le_u16(data, RADIOTAP_LENGTH_OFFSET).ok_or(SkipReason::Truncated)?);
    let header = data.get(..length).ok_or(SkipReason::Truncated)?;
    let flags = radiotap_flags(header)?;
    if flags & RADIOTAP_BAD_FCS != 0 {
        return Err(SkipReason::FailedFrameCheck);
    }
    let frame = data.get(length..).ok_or(SkipReason::Truncated)?;
    data_frame(frame, flags & RADIOTAP_DATA_PAD != 0)
}

/// The 802.11 frame after an AVS header (its own length says where).
pub(super) fn after_avs(data: &[u8]) -> Result<&[u8], SkipReason> {
    let magic = be_u32(data, 0).ok_or(SkipReason::Truncated)?;
    if magic & AVS_MAGIC_MASK != AVS_MAGIC {
        return Err(SkipReason::Malformed);
    }
    let length = be_u32(data, AVS_LENGTH_OFFSET).ok_or(SkipReason::Truncated)?;
    data.get(usize::try_from(length).map_err(|_| SkipReason::Malformed)?..).ok_or(SkipReason::Truncated)
}

/// The 802.11 frame after a Prism header, or after an AVS one, which captures of this link type
/// may hold too (told apart by the AVS magic number). The Prism header's length is in the
/// capturing host's byte order: the reading that falls within the frame is taken; a frame too
/// short for either plausible reading is truncated.
pub(super) fn after_prism_or_avs(data: &[u8]) -> Result<&[u8], SkipReason> {
    let first = be_u32(data, 0).ok_or(SkipReason::Truncated)?;
    if first & AVS_MAGIC_MASK == AVS_MAGIC {
        return after_avs(data);
    }
    let little = le_u32(data, PRISM_LENGTH_OFFSET).ok_or(SkipReason::Truncated)?;
    let plausible = [little, little.swap_bytes()].map(|length| {
        usize::try_from(length).ok().filter(|length| (PRISM_LENGTH_OFFSET + 4..=PRISM_LENGTH_MAX).contains(length))
    });
    if plausible.iter().all(Option::is_none) {
        return Err(SkipReason::Malformed);
    }
    plausible.into_iter().flatten().find_map(|length| data.get(length..)).ok_or(SkipReason::Truncated)
}

/// The link type and bytes of the frame after a PPI header. A frame its 802.11-Common field says
/// failed the frame check is skipped, as with radiotap.
pub(super) fn after_ppi(data: &[u8]) -> Result<(LinkType, &[u8]), SkipReason> {
    let version = *data.first().ok_or(SkipReason::Truncated)?;
    if version != PPI_VERSION {
        return Err(SkipReason::Malformed);
    }
    let length = usize::from(le_u16(data, PPI_LENGTH_OFFSET).ok_or(SkipReason::Truncated)?);
    let link_type = LinkType(le_u32(data, PPI_LINK_TYPE_OFFSET).ok_or(SkipReason::Truncated)?);
    let header = data.get(..length).ok_or(SkipReason::Truncated)?;
    let aligned = data.get(1).is_some_and(|flags| flags & PPI_FLAG_ALIGNED != 0);
    let mut fields = header.get(PPI_HEADER_LEN..).ok_or(SkipReason::Malformed)?;
    while let (Some(field_type), Some(field_len)) = (le_u16(fields, 0), le_u16(fields, 2)) {
        let end = PPI_FIELD_HEADER_LEN + usize::from(field_len);
        let field = fields.get(PPI_FIELD_HEADER_LEN..end).ok_or(SkipReason::Malformed)?;
        if field_type == PPI_80211_COMMON
            && le_u16(field, PPI_COMMON_FLAGS_OFFSET).is_some_and(|flags| flags & PPI_FLAG_BAD_FCS != 0)
        {
            return Err(SkipReason::FailedFrameCheck);
        }
        let next = if aligned { end.next_multiple_of(PPI_ALIGN) } else { end };
        fields = fields.get(next..).unwrap_or_default();
    }
    Ok((link_type, data.get(length..).unwrap_or_default()))
}

/// The radiotap flags field, or none set when the header has none.
fn radiotap_flags(header: &[u8]) -> Result<u8, SkipReason> {
    let present = le_u32(header, RADIOTAP_PRESENT_OFFSET).ok_or(SkipReason::Malformed)?;
    if present & PRESENT_FLAGS == 0 {
        return Ok(0);
    }
    // The fields start after the last bitmap.
    let mut offset = RADIOTAP_PRESENT_OFFSET;
    let mut word = present;
    while word & PRESENT_EXTENDED != 0 {
        offset += PRESENT_WORD_LEN;
        word = le_u32(header, offset).ok_or(SkipReason::Malformed)?;
    }
    offset += PRESENT_WORD_LEN;
    if present & PRESENT_TSFT != 0 {
        offset = offset.next_multiple_of(TSFT_LEN) + TSFT_LEN;
    }
    header.get(offset).copied().ok_or(SkipReason::Malformed)
}

/// An 802.11 frame: a data frame's body, through its LLC/SNAP header, to the ethertype it names,
/// or the subframes of an aggregate (A-MSDU: several packets in one frame). Management and
/// control frames and data frames without a body carry no IP packet.
pub(super) fn ieee802_11(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    data_frame(data, false)
}

/// [`ieee802_11`], the body starting at the next multiple of 4 bytes when the capture padded the
/// header (`padded`, a radiotap flag).
fn data_frame(data: &[u8], padded: bool) -> Result<Layer<'_>, SkipReason> {
    let [control, flags] = *data.first_chunk::<2>().ok_or(SkipReason::Truncated)?;
    if control & 0x03 != 0 {
        return Err(SkipReason::Malformed);
    }
    let subtype = control >> 4;
    if (control >> 2) & 0x03 != FRAME_TYPE_DATA || subtype & SUBTYPE_NO_DATA != 0 {
        return Err(SkipReason::NotIp);
    }
    if flags & FLAG_PROTECTED != 0 {
        return Err(SkipReason::Encrypted);
    }
    let mut header_len = MAC_HEADER_LEN;
    let mut aggregate = false;
    if flags & FLAG_TO_DS != 0 && flags & FLAG_FROM_DS != 0 {
        header_len += ADDRESS_LEN;
    }
    if subtype & SUBTYPE_QOS != 0 {
        aggregate = *data.get(header_len).ok_or(SkipReason::Truncated)? & QOS_AMSDU_PRESENT != 0;
        header_len += QOS_CONTROL_LEN;
        if flags & FLAG_ORDER != 0 {
            header_len += HT_CONTROL_LEN;
        }
    }
    if padded {
        header_len = header_len.next_multiple_of(DATA_PAD_ALIGN);
    }
    let body = data.get(header_len..).ok_or(SkipReason::Truncated)?;
    if aggregate {
        return Ok(Layer::Aggregate(body));
    }
    llc_snap(body)
}

/// The first subframe of an aggregate: its packet (behind an LLC/SNAP header), and the
/// subframes after it (empty when it was the last: what follows is too short for a subframe,
/// such as a frame check sequence).
pub(super) fn split_subframe(subframes: &[u8]) -> Result<(&[u8], &[u8]), SkipReason> {
    let length = usize::from(be_u16(subframes, SUBFRAME_LENGTH_OFFSET).ok_or(SkipReason::Truncated)?);
    let end = SUBFRAME_HEADER_LEN + length;
    let msdu = subframes.get(SUBFRAME_HEADER_LEN..end).ok_or(SkipReason::Truncated)?;
    let rest = subframes.get(end.next_multiple_of(SUBFRAME_ALIGN)..).unwrap_or_default();
    Ok((msdu, if rest.len() < SUBFRAME_HEADER_LEN { &[] } else { rest }))
}

/// An LLC/SNAP header, to the ethertype it names.
pub(super) fn llc_snap(body: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let snap = body.first_chunk::<SNAP_LEN>().ok_or(SkipReason::Truncated)?;
    if !SNAP_HEADERS.contains(snap) {
        return Err(SkipReason::NotIp);
    }
    let ether_type = be_u16(body, SNAP_LEN).ok_or(SkipReason::Truncated)?;
    Ok(Layer::EtherType(ether_type, body.get(SNAP_LEN + 2..).unwrap_or_default()))
}
