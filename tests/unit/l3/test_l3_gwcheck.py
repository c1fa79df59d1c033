"""The master's gateway check (Neutron's ha_vrrp_health_check_interval): when a router stands
down, for how long, and the pings it is judged by."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.l3 import gwcheck, gwping

HOLD = 6.0


@given(st.lists(st.booleans(), max_size=30))
def test_stands_down_exactly_after_fall_misses_in_a_row(answers: list[bool]) -> None:
    check = gwcheck.GatewayCheck()
    run = 0
    for n, ok in enumerate(answers):
        before = check
        check = gwcheck.answered(check, ok, float(n), HOLD)
        if before.failed_until is not None:
            assert check == before  # standing down: late outcomes change nothing
            continue
        run = 0 if ok else run + 1
        if run >= gwcheck.FALL:
            assert check.failed_until == float(n) + HOLD
            run = 0
        else:
            assert check.failed_until is None and check.missed == run


def test_the_hold_ends_only_when_it_is_over_and_a_new_master_starts_counting_afresh() -> None:
    check = gwcheck.answered(gwcheck.answered(gwcheck.GatewayCheck(), False, 0.0, HOLD), False, 1.0, HOLD)
    assert check.failed_until == 1.0 + HOLD
    assert gwcheck.released(check, 6.9) == check
    assert gwcheck.released(check, 7.0) == gwcheck.GatewayCheck()
    one_miss = gwcheck.answered(gwcheck.GatewayCheck(), False, 0.0, HOLD)
    assert gwcheck.not_master(one_miss) == gwcheck.GatewayCheck()  # a miss does not carry over
    assert gwcheck.not_master(check) == check  # the hold does


def _reply(request: bytes, src: str, kind: int = gwping.ECHO_REPLY, ident: int = gwping.IDENT) -> bytes:
    _k, code, _s, _i, seq = struct.unpack_from("!BBHHH", request)
    icmp = struct.pack("!BBHHH", kind, code, 0, ident, seq) + request[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0,
                     ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address("10.0.80.101").packed)
    return ip + icmp


@given(st.integers(0, 0xFFFF))
def test_an_echo_request_checks_out_and_only_our_reply_from_the_gateway_counts(seq: int) -> None:
    request = gwping.echo_request(seq)
    assert gwping.checksum(request) == 0  # a valid ICMP checksum sums to zero
    gateway = ipaddress.IPv4Address("10.0.80.1")
    assert gwping.reply_seq(_reply(request, "10.0.80.1"), gateway) == seq
    assert gwping.reply_seq(_reply(request, "10.0.80.9"), gateway) is None  # another host
    assert gwping.reply_seq(_reply(request, "10.0.80.1", kind=gwping.ECHO_REQUEST), gateway) is None
    assert gwping.reply_seq(_reply(request, "10.0.80.1", ident=(gwping.IDENT + 1) & 0xFFFF), gateway) is None
    assert gwping.reply_seq(b"\x45", gateway) is None
