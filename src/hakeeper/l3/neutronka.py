"""The keepalived configuration Neutron's L3 agent writes for one HA router replica.

Used where hakeeper runs next to (or is measured against) Neutron's own layout: the wire
compatibility test and `bench/l3_routers.py`. What matters is what Neutron sets: `state BACKUP`
and `priority 50` on every replica with `nopreempt` (the first one up stays master),
`garp_master_delay 60`, `advert_int` and PASS authentication from l3_agent.ini, `track_interface`
on ha-, the primary VIP 169.254.0.<vrid>/24 on ha- and everything else master-only:
`virtual_ipaddress_excluded` (qr/qg and floating addresses) and `virtual_routes` (the default
route via the upstream gateway).
"""

from __future__ import annotations

from hakeeper.l3.dataplane import Layout
from hakeeper.l3.model import Settings


def keepalived_conf(lay: Layout, settings: Settings, garp_master_delay: int = 60) -> str:
    ha = lay.ha.name
    excluded = [f"        {addr} dev {dev}" for dev, addr in lay.master_addresses()[1:]]
    routes = []
    if lay.external is not None and lay.upstream is not None:
        routes.append(f"        0.0.0.0/0 via {lay.upstream} dev {lay.external.name}")
    auth = []
    if settings.ha_vrrp_auth_password is not None:
        auth = ["    authentication {", f"        auth_type {settings.ha_vrrp_auth_type or 'PASS'}",
                f"        auth_pass {settings.ha_vrrp_auth_password.get_secret_value()}", "    }"]
    lines = [
        "global_defs {",
        "    notification_email_from neutron@openstack.local",
        "    router_id neutron",
        "}",
        f"vrrp_instance VR_{lay.vrid} {{",
        "    state BACKUP",
        f"    interface {ha}",
        f"    virtual_router_id {lay.vrid}",
        "    priority 50",
        f"    garp_master_delay {garp_master_delay}",
        "    nopreempt",
        f"    advert_int {settings.ha_vrrp_advert_int}",
        *auth,
        "    track_interface {",
        f"        {ha}",
        "    }",
        "    virtual_ipaddress {",
        f"        {lay.vip} dev {ha}",
        "    }",
        "    virtual_ipaddress_excluded {",
        *excluded,
        "    }",
        "    virtual_routes {",
        *routes,
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"
