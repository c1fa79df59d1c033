"""VRRP packet encoding, decoding and validation."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.vrrp.packet import (
    AUTH_PASS,
    Advert,
    DropCounter,
    Dropped,
    Expect,
    checksum,
    decode,
    encode,
    ipv4_header,
    pad_password,
    split_ipv4,
    verify,
)

SRC4 = ipaddress.IPv4Address("172.16.9.192")
DST4 = ipaddress.IPv4Address("224.0.0.18")
SRC6 = ipaddress.IPv6Address("fe80::1")
DST6 = ipaddress.IPv6Address("ff02::12")

v4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
v6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))


def test_v2_pass_matches_known_bytes() -> None:
    # The seed's instance: VRID 200, priority 200, advert_int 1, PASS with a 20-char password,
    # of which VRRPv2 carries the first 8 bytes.
    adv = Advert(2, 200, 200, 100, (ipaddress.IPv4Address("172.16.9.200"),), AUTH_PASS,
                 pad_password("Laevei0kifahkeejaiqu"))
    raw = encode(adv)
    assert raw[:6] == bytes([0x21, 200, 200, 1, 1, 1])
    assert raw[8:12] == bytes([172, 16, 9, 200])
    assert raw[12:] == b"Laevei0k"
    assert checksum(raw) == 0
    assert decode(raw, 4) == adv


def test_v3_checksum_covers_pseudo_header() -> None:
    adv = Advert(3, 7, 100, 100, (ipaddress.IPv4Address("10.91.0.100"),))
    raw = encode(adv, SRC4, DST4)
    assert decode(raw, 4, SRC4, DST4) == adv
    with pytest.raises(Dropped) as err:
        decode(raw, 4, ipaddress.IPv4Address("172.16.9.193"), DST4)
    assert err.value.reason == "checksum"


@given(
    version=st.sampled_from([2, 3]),
    vrid=st.integers(1, 255),
    prio=st.integers(0, 255),
    secs=st.integers(1, 40),
    addrs=st.lists(v4, min_size=1, max_size=20),
    pw=st.binary(max_size=20),
)
def test_v4_round_trip(version: int, vrid: int, prio: int, secs: int, addrs: list[ipaddress.IPv4Address],
                       pw: bytes) -> None:
    auth = (AUTH_PASS, pad_password(pw)) if version == 2 else (0, b"")
    adv = Advert(version, vrid, prio, secs * 100, tuple(addrs), *auth)
    raw = encode(adv, SRC4, DST4)
    assert decode(raw, 4, SRC4, DST4) == adv


@given(vrid=st.integers(1, 255), prio=st.integers(0, 255), cs=st.integers(1, 4095),
       addrs=st.lists(v6, min_size=1, max_size=10))
def test_v6_round_trip(vrid: int, prio: int, cs: int, addrs: list[ipaddress.IPv6Address]) -> None:
    adv = Advert(3, vrid, prio, cs, tuple(addrs))
    assert decode(encode(adv, SRC6, DST6), 6, SRC6, DST6) == adv


@given(st.binary(max_size=200), st.sampled_from([4, 6]))
def test_fuzz_decode_only_drops(data: bytes, family: int) -> None:
    src, dst = (SRC4, DST4) if family == 4 else (SRC6, DST6)
    try:
        decode(data, family, src, dst)
    except Dropped as exc:
        assert exc.reason in {"short", "version", "type", "vrid", "length", "checksum", "interval"}


@given(st.binary(min_size=1, max_size=60), st.integers(0, 59))
def test_fuzz_bit_flips_are_detected_or_harmless(data: bytes, pos: int) -> None:
    adv = Advert(2, 1, 100, 100, (SRC4,), AUTH_PASS, pad_password(b"secret"))
    raw = bytearray(encode(adv))
    raw[pos % len(raw)] ^= 1 << (data[0] % 8)
    with pytest.raises(Dropped):
        decode(bytes(raw), 4)


def test_verify_reasons() -> None:
    adv = Advert(2, 200, 100, 100, (SRC4,), AUTH_PASS, pad_password("Laevei0kifahkeejaiqu"))
    good = Expect(2, 200, AUTH_PASS, pad_password("Laevei0k"), 100)
    verify(adv, 255, good)
    cases = [
        (254, good, "ttl"),
        (255, Expect(3, 200, 0, b"", 100), "version"),
        (255, Expect(2, 201, AUTH_PASS, good.password, 100), "vrid"),
        (255, Expect(2, 200, AUTH_PASS, pad_password("other"), 100), "auth"),
        (255, Expect(2, 200, 0, b"", 100), "auth"),
        (255, Expect(2, 200, AUTH_PASS, good.password, 200), "interval"),
    ]
    for ttl, expect, reason in cases:
        with pytest.raises(Dropped) as err:
            verify(adv, ttl, expect)
        assert err.value.reason == reason


def test_ipv4_header_split() -> None:
    payload = encode(Advert(2, 1, 100, 100, (SRC4,)))
    head, body = split_ipv4(ipv4_header(SRC4, DST4, len(payload)) + payload)
    assert (head.src, head.dst, head.ttl, head.proto, body) == (SRC4, DST4, 255, 112, payload)
    with pytest.raises(Dropped):
        split_ipv4(b"\x45\x00")


def test_encode_rejects_what_the_version_cannot_express() -> None:
    with pytest.raises(ValueError):
        encode(Advert(2, 1, 100, 50, (SRC4,)))
    with pytest.raises(ValueError):
        encode(Advert(3, 1, 100, 5000, (SRC4,)), SRC4, DST4)


def test_drop_counter_bounds_logging() -> None:
    c = DropCounter(period=10, burst=2)
    logged = [c.drop("auth", t * 0.1) for t in range(10)]
    assert logged[:3] == [True, True, False]
    assert c.counts == {"auth": 10} and c.suppressed == 8
    assert c.drop("ttl", 11.0)
