"""Reading the VRRP speakers' log lines: which state they entered, without their time stamps."""

from __future__ import annotations

from hakeeper.openstack.stack import Event, speaker_role
from hakeeper.openstack.view import View


def test_speaker_role_both_speakers() -> None:
    assert speaker_role("Sat Nov 21 19:45:29 2026: (vip_10_93_1_100) Entering MASTER STATE") == "MASTER"
    assert speaker_role("(vip_x) Entering BACKUP STATE (init)") == "BACKUP"
    line = "2026-11-21 20:01:24,447 hakeeper-vrrp[1814] INFO vip_10_94_0_100: BACKUP -> MASTER (priority 140)"
    assert speaker_role(line) == "MASTER"
    assert speaker_role("vip_x: MASTER -> BACKUP (priority 140)") == "BACKUP"
    assert speaker_role("Master received advert from 10.94.0.11 with higher priority 150, ours 140") is None


def test_view_strips_stamps_and_tracks_roles_and_holders(capsys: object) -> None:
    v = View(live=False, controllers=["c1", "c2"], vip="10.94.0.100")
    v.event(Event(1.0, "c2", "vrrp",
                  "2026-11-21 20:01:24,447 hakeeper-vrrp[1814] INFO vip_10_94_0_100: BACKUP -> MASTER (priority 140)"))
    v.event(Event(1.1, "c2", "net", "VIP 10.94.0.100 added"))
    assert v.roles["c2"] == "MASTER" and v.holders == ["c2"] and v.moved_at("c2", 0.5) == 1.1
    v.mark_crash("c2", 2.0)
    assert v.holders == []
    text = v.timeline[0][1]
    assert text == "c2 vrrp: vip_10_94_0_100: BACKUP -> MASTER (priority 140)"
