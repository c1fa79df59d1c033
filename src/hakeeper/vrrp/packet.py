"""VRRP advertisements on the wire: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), IPv4 and IPv6.

Pure functions over bytes. `encode` builds a VRRP message with its checksum; `decode` parses and
checks one. Every way a packet can be wrong raises `Dropped` with a short, stable reason string,
which the speaker counts (see `DropCounter`) instead of crashing.

VRRPv2 carries an advertisement interval in whole seconds and 8 bytes of authentication data; its
checksum covers the VRRP message only. VRRPv3 carries a 12-bit Max Adver Int in centiseconds and
its checksum also covers the IPv4/IPv6 pseudo-header. keepalived's `auth_type PASS` is RFC 2338's
simple text password: type 1, the password's first 8 bytes, zero padded.
"""

from __future__ import annotations

import hmac
import ipaddress
import struct
from dataclasses import dataclass, field

IPPROTO_VRRP = 112
VRRP_GROUP_V4 = "224.0.0.18"
VRRP_GROUP_V6 = "ff02::12"
TTL = 255  # RFC 3768 5.2.3 / RFC 5798 5.1.1.3: sent with 255, anything else was routed.
TYPE_ADVERT = 1
AUTH_NONE = 0
AUTH_PASS = 1
AUTH_AH = 2
V2_AUTH_LEN = 8
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


class Dropped(Exception):
    """A received packet that must be ignored; `reason` is a stable counter key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Advert:
    """One VRRP advertisement. `interval_cs` is in centiseconds for both versions (v2: s * 100)."""

    version: int
    vrid: int
    priority: int
    interval_cs: int
    addresses: tuple[IPAddr, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""

    @property
    def family(self) -> int:
        return 6 if self.addresses and self.addresses[0].version == 6 else 4


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src: IPAddr, dst: IPAddr, length: int) -> bytes:
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_VRRP, length)
    return src.packed + dst.packed + struct.pack("!I3xB", length, IPPROTO_VRRP)


def pad_password(password: str | bytes) -> bytes:
    """keepalived's PASS: the first 8 bytes of the password, zero padded."""
    raw = password.encode() if isinstance(password, str) else password
    return raw[:V2_AUTH_LEN].ljust(V2_AUTH_LEN, b"\0")


def encode(advert: Advert, src: IPAddr | None = None, dst: IPAddr | None = None) -> bytes:
    """The VRRP message for `advert`. VRRPv3 needs src and dst for its pseudo-header checksum."""
    count = len(advert.addresses)
    if not 0 <= count <= 255:
        raise ValueError("a VRRP advert carries at most 255 addresses")
    addrs = b"".join(a.packed for a in advert.addresses)
    if advert.version == 2:
        if advert.interval_cs % 100 or not 1 <= advert.interval_cs // 100 <= 255:
            raise ValueError("VRRPv2 advert_int must be 1..255 whole seconds")
        auth = pad_password(advert.auth_data) if advert.auth_type == AUTH_PASS else b"\0" * V2_AUTH_LEN
        head = struct.pack(
            "!BBBBBBH", 0x21, advert.vrid, advert.priority, count, advert.auth_type,
            advert.interval_cs // 100, 0,
        )
        body = head + addrs + auth
        return body[:6] + struct.pack("!H", checksum(body)) + body[8:]
    if advert.version == 3:
        if not 1 <= advert.interval_cs <= 0xFFF:
            raise ValueError("VRRPv3 advert_int must be 0.01..40.95 seconds")
        if src is None or dst is None:
            raise ValueError("VRRPv3 checksum needs source and destination addresses")
        head = struct.pack("!BBBBHH", 0x31, advert.vrid, advert.priority, count, advert.interval_cs, 0)
        body = head + addrs
        csum = checksum(pseudo_header(src, dst, len(body)) + body)
        return body[:6] + struct.pack("!H", csum) + body[8:]
    raise ValueError(f"unknown VRRP version {advert.version}")


def decode(data: bytes, family: int, src: IPAddr | None = None, dst: IPAddr | None = None) -> Advert:
    """Parse and check a VRRP message (without IP header). Raises Dropped on anything malformed."""
    if len(data) < 8:
        raise Dropped("short", f"{len(data)} bytes")
    ver_type, vrid, priority, count = data[0], data[1], data[2], data[3]
    version, ptype = ver_type >> 4, ver_type & 0xF
    if version not in (2, 3):
        raise Dropped("version", f"version {version}")
    if ptype != TYPE_ADVERT:
        raise Dropped("type", f"type {ptype}")
    if vrid == 0:
        raise Dropped("vrid", "VRID 0")
    alen = 4 if family == 4 else 16
    if version == 2:
        if family != 4:
            raise Dropped("version", "VRRPv2 is IPv4 only")
        need = 8 + count * alen + V2_AUTH_LEN
        if len(data) < need:
            raise Dropped("length", f"{len(data)} bytes for {count} addresses")
        if checksum(data[:need]) != 0:
            raise Dropped("checksum")
        auth_type, adv_s = data[4], data[5]
        if adv_s == 0:
            raise Dropped("interval", "advert interval 0")
        addrs = _addresses(data[8 : 8 + count * alen], alen)
        auth = data[8 + count * alen : need]
        return Advert(2, vrid, priority, adv_s * 100, addrs, auth_type, auth if auth_type else b"")
    need = 8 + count * alen
    if len(data) < need:
        raise Dropped("length", f"{len(data)} bytes for {count} addresses")
    if src is None or dst is None:
        raise Dropped("checksum", "no addresses for the pseudo-header")
    if checksum(pseudo_header(src, dst, need) + data[:need]) != 0:
        raise Dropped("checksum")
    interval = struct.unpack("!H", data[4:6])[0] & 0x0FFF
    if interval == 0:
        raise Dropped("interval", "max adver int 0")
    return Advert(3, vrid, priority, interval, _addresses(data[8:need], alen))


def _addresses(raw: bytes, alen: int) -> tuple[IPAddr, ...]:
    return tuple(ipaddress.ip_address(raw[i : i + alen]) for i in range(0, len(raw), alen))


@dataclass(frozen=True)
class Expect:
    """What an instance accepts: the checks of RFC 3768 7.1 / RFC 5798 7.1 beyond the format."""

    version: int
    vrid: int
    auth_type: int = AUTH_NONE
    password: bytes = b""  # already padded to 8 bytes for PASS
    interval_cs: int = 100


def verify(advert: Advert, ttl: int, expect: Expect) -> None:
    """Raise Dropped if `advert` (heard with IP TTL/hop limit `ttl`) is not for this instance."""
    if ttl != TTL:
        raise Dropped("ttl", f"TTL {ttl}")
    if advert.version != expect.version:
        raise Dropped("version", f"version {advert.version}, want {expect.version}")
    if advert.vrid != expect.vrid:
        raise Dropped("vrid", f"VRID {advert.vrid}")
    if advert.version == 2:
        if advert.auth_type != expect.auth_type:
            raise Dropped("auth", f"auth type {advert.auth_type}, want {expect.auth_type}")
        # Constant-time compare: the password is the only secret here, weak as it is.
        if expect.auth_type == AUTH_PASS and not hmac.compare_digest(advert.auth_data, expect.password):
            raise Dropped("auth", "wrong password")
        # RFC 3768 7.1: a different advertisement interval is a misconfiguration; discard.
        if advert.interval_cs != expect.interval_cs:
            raise Dropped("interval", f"{advert.interval_cs // 100}s, want {expect.interval_cs // 100}s")


@dataclass(frozen=True)
class IPv4Header:
    src: ipaddress.IPv4Address
    dst: ipaddress.IPv4Address
    ttl: int
    proto: int


def split_ipv4(datagram: bytes) -> tuple[IPv4Header, bytes]:
    """Split what a raw IPv4 socket returns into the header fields we check and the payload."""
    if len(datagram) < 20 or datagram[0] >> 4 != 4:
        raise Dropped("short", "no IPv4 header")
    ihl = (datagram[0] & 0xF) * 4
    total = struct.unpack("!H", datagram[2:4])[0]
    if ihl < 20 or len(datagram) < ihl:
        raise Dropped("short", "truncated IPv4 header")
    end = min(total, len(datagram)) if total >= ihl else len(datagram)
    head = IPv4Header(
        ipaddress.IPv4Address(datagram[12:16]), ipaddress.IPv4Address(datagram[16:20]),
        datagram[8], datagram[9],
    )
    return head, datagram[ihl:end]


def ipv4_header(src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, payload_len: int) -> bytes:
    """An IPv4 header for IP_HDRINCL; the kernel fills in the id and the header checksum."""
    # DSCP CS6 (network control) as routers and keepalived mark VRRP.
    return struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xC0, 20 + payload_len, 0, 0, TTL, IPPROTO_VRRP, 0, src.packed, dst.packed
    )


@dataclass
class DropCounter:
    """Dropped packets per reason, with logging bounded to `burst` lines per `period` seconds."""

    period: float = 10.0
    burst: int = 5
    counts: dict[str, int] = field(default_factory=dict)
    _window_start: float = -1e18
    _logged: int = 0
    suppressed: int = 0

    def drop(self, reason: str, now: float) -> bool:
        """Count one drop; True if the caller should log it now."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if now - self._window_start >= self.period:
            self._window_start, self._logged = now, 0
        if self._logged < self.burst:
            self._logged += 1
            return True
        self.suppressed += 1
        return False

    @property
    def total(self) -> int:
        return sum(self.counts.values())
