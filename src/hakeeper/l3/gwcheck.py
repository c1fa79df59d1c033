"""The gateway check of a router's master (Neutron's `ha_vrrp_health_check_interval`), pure: the
answers to its pings in, whether the router must stand down out.

Neutron gives each router's keepalived a `vrrp_script` that pings the router's upstream gateway
every `ha_vrrp_health_check_interval` seconds; a master whose gateway stops answering goes FAULT,
so a node that lost its external network hands its routers to one that has it. Only a master can
ask: a backup holds no address on its qg- port and has no default route. So a router that stood
down stays FAULT for a hold time, then is a backup again; if no node reaches the gateway, each
takes its turn as master (what Neutron documents: the election repeats until one node's gateway
answers). Two missed answers in a row fail the check (keepalived's `fall`), one answer clears
the count.
"""

from __future__ import annotations

from dataclasses import dataclass

FALL = 2  # answers missed in a row before the master stands down


@dataclass(frozen=True)
class GatewayCheck:
    missed: int = 0  # pings in a row without an answer, while master
    failed_until: float | None = None  # standing down (FAULT) until then


def answered(check: GatewayCheck, ok: bool, now: float, hold: float) -> GatewayCheck:
    """The outcome of one ping sent while master: an answer clears the count; FALL misses in a row
    stand the router down for `hold` seconds."""
    if check.failed_until is not None:
        return check  # a ping sent before it stood down: its outcome changes nothing now
    if ok:
        return GatewayCheck()
    missed = check.missed + 1
    if missed >= FALL:
        return GatewayCheck(0, now + hold)
    return GatewayCheck(missed)


def released(check: GatewayCheck, now: float) -> GatewayCheck:
    """The hold is over: a backup again, free to be elected (and to check again as master)."""
    if check.failed_until is not None and now >= check.failed_until:
        return GatewayCheck()
    return check


def not_master(check: GatewayCheck) -> GatewayCheck:
    """No longer master for another reason: misses counted as master do not carry over."""
    return check if check.failed_until is not None else GatewayCheck()


def hold_time(advert_int: float) -> float:
    """How long a router that lost its gateway stays FAULT: long enough for a backup to see the
    priority-0 advert and take over (it does within Skew_Time), short enough that a node whose
    gateway came back is soon electable again."""
    return 3.0 * advert_int
