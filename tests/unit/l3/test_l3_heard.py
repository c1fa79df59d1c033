"""The speaker's fast path for a repeated advert (`speaker.Heard`): an advert is taken without
decoding and checking it again only if it equals the last one that passed every check in all
that the checks read; any other change goes through the full checks."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.l3.speaker import Heard
from hakeeper.vrrp import packet as vp

SRC = ipaddress.IPv4Address("169.254.192.1")
EXPECT = vp.Expect(2, 7, vp.AUTH_PASS, vp.pad_password("openstack"), 200)
PAYLOAD = vp.encode(vp.Advert(2, 7, 50, 200, (ipaddress.IPv4Address("169.254.0.7"),), vp.AUTH_PASS, EXPECT.password))
PACKET = vp.ipv4_header(SRC, ipaddress.IPv4Address(vp.VRRP_GROUP_V4), len(PAYLOAD)) + PAYLOAD
HEARD = Heard(PACKET, 20, 50, 200, int(SRC))
# IP header bytes no check reads: type of service, identification, fragment field, protocol (the
# raw socket's own), header checksum (the kernel's).
UNCHECKED = {1, 4, 5, 6, 7, 9, 10, 11}


def passes(data: bytes) -> bool:
    try:
        head, payload = vp.split_ipv4(data)
        adv = vp.decode(payload, 4, head.src, head.dst)
        vp.verify(adv, head.ttl, EXPECT)
    except vp.Dropped:
        return False
    return adv.vrid == 7 and adv.priority == 50 and head.src == SRC


def test_the_same_advert_is_taken_and_it_passes_the_full_checks() -> None:
    assert passes(PACKET) and HEARD.same(PACKET)


@given(st.integers(0, len(PACKET) - 1), st.integers(1, 255))
def test_a_change_in_anything_checked_goes_through_the_checks(index: int, delta: int) -> None:
    changed = bytearray(PACKET)
    changed[index] = (changed[index] + delta) % 256
    data = bytes(changed)
    if index in UNCHECKED:
        assert HEARD.same(data) and passes(data)
    else:
        assert not HEARD.same(data)


@given(st.binary(max_size=8))
def test_a_longer_or_shorter_packet_goes_through_the_checks(tail: bytes) -> None:
    assert not HEARD.same(PACKET[:-1] + tail) or PACKET[:-1] + tail == PACKET
