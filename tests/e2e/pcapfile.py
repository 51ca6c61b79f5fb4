"""Just enough classic-pcap reading for the e2e bed: TCP segments over Ethernet, IPv4 and IPv6.

tcpdump writes the bed's captures, so the input is well-formed; this is a test helper, not a
parser for hostile files. It rebuilds each direction of a connection in sequence order, which
lets the bed check what really crossed the wire (crosscheck.py) and when (check.py).
"""
import dataclasses
import ipaddress
import struct

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
LINKTYPE_ETHERNET = 1
PROTO_TCP = 6
TCP_SYN = 0x02


@dataclasses.dataclass(frozen=True)
class Segment:
    timestamp: float
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    seq: int
    flags: int
    payload: bytes


@dataclasses.dataclass
class Capture:
    """A classic pcap file: its global header, and its records as (header, data) pairs."""

    header: bytes
    records: list
    endian: str
    nanoseconds: bool

    def timestamp(self, record_header):
        seconds, fraction = struct.unpack(self.endian + "II", record_header[:8])
        return seconds + fraction / (1e9 if self.nanoseconds else 1e6)

    def segments(self):
        """Every TCP segment, with the index of the record it came from."""
        for index, (record_header, data) in enumerate(self.records):
            segment = decode_tcp(self.timestamp(record_header), data)
            if segment is not None:
                yield index, segment

    def write(self, path, indexes):
        """Writes the records with the given indexes, in capture order, to a new pcap file."""
        with open(path, "wb") as out:
            out.write(self.header)
            for index in sorted(indexes):
                record_header, data = self.records[index]
                out.write(record_header + data)


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    magic = blob[:4]
    formats = {
        b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
        b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True),
    }
    if magic not in formats:
        raise ValueError(f"{path}: not a classic pcap file")
    endian, nanoseconds = formats[magic]
    linktype = struct.unpack(endian + "I", blob[20:24])[0]
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet")
    records, offset = [], 24
    while offset + 16 <= len(blob):
        captured = struct.unpack(endian + "I", blob[offset + 8:offset + 12])[0]
        records.append((blob[offset:offset + 16], blob[offset + 16:offset + 16 + captured]))
        offset += 16 + captured
    return Capture(blob[:24], records, endian, nanoseconds)


def decode_tcp(timestamp, frame):
    ethertype, offset = struct.unpack("!H", frame[12:14])[0], 14
    if ethertype == ETHERTYPE_VLAN:
        ethertype, offset = struct.unpack("!H", frame[16:18])[0], 18
    if ethertype == ETHERTYPE_IPV4:
        header_len = (frame[offset] & 0x0F) * 4
        total_len = struct.unpack("!H", frame[offset + 2:offset + 4])[0]
        if frame[offset + 9] != PROTO_TCP:
            return None
        src = ipaddress.ip_address(frame[offset + 12:offset + 16])
        dst = ipaddress.ip_address(frame[offset + 16:offset + 20])
        tcp, end = offset + header_len, offset + total_len
    elif ethertype == ETHERTYPE_IPV6:
        payload_len = struct.unpack("!H", frame[offset + 4:offset + 6])[0]
        if frame[offset + 6] != PROTO_TCP:  # the bed's traffic has no extension headers
            return None
        src = ipaddress.ip_address(frame[offset + 8:offset + 24])
        dst = ipaddress.ip_address(frame[offset + 24:offset + 40])
        tcp, end = offset + 40, offset + 40 + payload_len
    else:
        return None
    src_port, dst_port, seq = struct.unpack("!HHI", frame[tcp:tcp + 8])
    data_offset = (frame[tcp + 12] >> 4) * 4
    flags = frame[tcp + 13]
    return Segment(timestamp, src.compressed, src_port, dst.compressed, dst_port, seq, flags,
                   bytes(frame[tcp + data_offset:end]))


def connection_key(client_ip, client_port, server_ip, server_port):
    """Canonical (client ip, client port, server ip, server port), IPv6 compressed."""
    return (ipaddress.ip_address(client_ip).compressed, int(client_port),
            ipaddress.ip_address(server_ip).compressed, int(server_port))


@dataclasses.dataclass
class Connection:
    """One TCP connection as captured: both byte streams, record indexes, time span."""

    key: tuple
    client_payload: list = dataclasses.field(default_factory=list)
    server_payload: list = dataclasses.field(default_factory=list)
    records: list = dataclasses.field(default_factory=list)
    client_syn: bool = False
    first_seen: float = 0.0
    last_seen: float = 0.0

    def client_stream(self):
        return reassemble(self.client_payload)

    def server_stream(self):
        return reassemble(self.server_payload)


def connections(capture, keys):
    """The connections with the given canonical keys, built from the capture."""
    wanted = {key: Connection(key) for key in keys}
    for index, seg in capture.segments():
        forward = (seg.src_ip, seg.src_port, seg.dst_ip, seg.dst_port)
        backward = (seg.dst_ip, seg.dst_port, seg.src_ip, seg.src_port)
        conn = wanted.get(forward) or wanted.get(backward)
        if conn is None:
            continue
        if not conn.records:
            conn.first_seen = seg.timestamp
        conn.last_seen = seg.timestamp
        conn.records.append(index)
        if conn.key == forward:
            conn.client_syn |= bool(seg.flags & TCP_SYN)
            conn.client_payload.append((seg.seq, seg.payload))
        else:
            conn.server_payload.append((seg.seq, seg.payload))
    return wanted


def reassemble(pieces):
    """Orders one direction's payloads by sequence number, dropping retransmitted bytes.

    The bed's connections are short and never wrap the 32-bit sequence space.
    """
    stream, end = bytearray(), None
    for seq, payload in sorted(p for p in pieces if p[1]):
        if end is None:
            end = seq
        if seq + len(payload) <= end:
            continue
        stream += payload[max(0, end - seq):]
        end = seq + len(payload)
    return bytes(stream)
