"""Pings to a router's upstream gateway from inside its namespace (the I/O of `gwcheck`): one raw
ICMP socket per router, an echo request per check, its reply matched by source, id and sequence.

A raw socket, not `ping`: Neutron's check script starts a ping process per router per interval
(200 processes a second at 1000 routers and 5 s); here it is a `sendto` and a `recv`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct

ECHO_REQUEST, ECHO_REPLY = 8, 0
IDENT = os.getpid() & 0xFFFF  # this agent's echo id: another process's pings are not ours


def icmp_socket() -> socket.socket:
    """A raw ICMP socket in the caller's namespace (call it inside `netns.inside`)."""
    return socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.IPPROTO_ICMP)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def echo_request(seq: int, ident: int = IDENT) -> bytes:
    body = b"hakeeper-gw"
    head = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq & 0xFFFF)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(head + body), ident, seq & 0xFFFF) + body


def reply_seq(packet: bytes, gateway: ipaddress.IPv4Address, ident: int = IDENT) -> int | None:
    """The sequence number of an echo reply from `gateway` to our id in `packet` (a raw socket
    gives the IP header too), else None."""
    if len(packet) < 20:
        return None
    head = (packet[0] & 0x0F) * 4
    if len(packet) < head + 8 or packet[12:16] != gateway.packed:
        return None
    kind, _code, _sum, got_ident, seq = struct.unpack_from("!BBHHH", packet, head)
    if kind != ECHO_REPLY or got_ident != ident:
        return None
    return int(seq)


def send_echo(sock: socket.socket, gateway: ipaddress.IPv4Address, seq: int) -> None:
    """One echo request; one the kernel refuses at once (no route: the router holds no address
    there) is a ping without an answer, like one lost on the way."""
    with contextlib.suppress(OSError):
        sock.sendto(echo_request(seq), (str(gateway), 0))
