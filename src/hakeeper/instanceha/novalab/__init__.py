"""Real OpenStack Nova services in network namespaces, for instance-HA tests and benchmarks.

Install once with `scripts/setup-nova` (run by scripts/setup as root): Nova 34 + Placement 16,
Glance 33 and Neutron 29 from PyPI, each in a venv of its own under /opt/hakeeper/venvs
($HAKEEPER_VENVS), plus the lab's plug-ins copied into the nova venv as nova.virt.hakeeper_fake
(source: nova_driver.py here; Nova loads its compute driver only from the nova.virt package).
`missing_install()` says why the lab cannot run (None when it can); a driver file that differs
from nova_driver.py counts as missing (run scripts/setup-nova again).

    from hakeeper.instanceha.novalab import NovaLab

    with NovaLab(computes=2) as lab:             # subnet=N for 10.97.N.0/24; default: a free one
        ids = lab.boot(3, "compute-1")            # pinned, networks "none"; returns when ACTIVE
        lab.kill_compute("compute-1")             # SIGKILL, as a crash: Nova still says "up" ~10 s
        conn = lab.connection()                   # openstacksdk Connection (fixed token, endpoints)
        ...                                       # force down + evacuate (see the test)
        lab.wait_servers(ids, "ACTIVE", "compute-2")
        lab.start_compute("compute-1", in_namespace="compute-2")   # seed 002's identity move
        lab.wait_compute("compute-1", up=True)

Layout: namespaces `hknv-<pid>.<n>-{controller,compute-1..N}` on one bridge, 10.97.N.0/24:
controller .1, compute-i .(10+i), the test process itself .254 (root namespace, so the APIs are
reached directly). The controller runs MariaDB (one node, databases nova_api/nova_cell0/nova/
placement/glance/neutron), RabbitMQ, placement-api, glance-api (file store), a bare neutron-server
(ML2, no agents, noauth), nova-api (gunicorn; no Keystone: a test-only paste filter fills
X-User-Id/X-Project-Id/X-Roles/X-Auth-Token when a client sent none, so any client works with
`auth_type: none`; Placement runs noauth2), nova-conductor and nova-scheduler. Each compute runs nova-compute with the
driver `hakeeper_fake.ResumingFakeDriver` (FakeDriverWithoutFakeNodes whose guests come back on
resume_state_on_host_boot), its own host and state_path, report_interval 2, service_down_time 10,
periodic_fuzzy_delay 0, sync_power_state_interval 2; the scheduler maps new hosts every 2 s.
Everything lives under `lab.workdir` (logs in workdir/logs/<daemon>.log); close() SIGKILLs every
daemon (nova-compute takes 10-15 s on SIGTERM), deletes the namespaces and the directory, also
when start() failed half way.

API (NovaLab):
- `NovaLab(computes=2, subnet=None, workdir=None, keep_workdir=False)`; context manager, or
  start()/close(). Raises LabError (naming the daemon and the tail of its log) when a daemon dies
  or does not come up.
- `lab.ctl.url("nova"|"placement"|"glance"|"neutron")`, `lab.ctl.ip`, `lab.clouds_yaml` (a
  clouds.yaml with cloud `novalab`: auth_type admin_token with token "admin:admin", which
  Placement's noauth2 takes for an admin, endpoint overrides, compute microversion 2.68),
  `lab.connection(microversion="2.68")` (openstacksdk Connection, same token), `lab.nova(method, path, body,
  microversion)` (plain JSON call as the lab's admin), `lab.hosts[name]` (hakeeper.netlab Host:
  `.cut("eth0")`/`.restore("eth0")` for a partition), `lab.net` (the netlab Lab).
- `lab.boot(n, host, name="vm") -> [server ids]`; `lab.server(id)`; `lab.wait_servers(ids, status,
  host=None, timeout=240, extra=None)` (fails at once on ERROR).
- `lab.kill_compute(name)`: SIGKILL the nova-compute claiming host `name`.
- `lab.start_compute(name, identity=None, in_namespace=None, carry_identity=True) -> Compute`:
  start nova-compute for host `name`, at home (its own state_path) or in another compute's
  namespace with a fresh state_path holding the node identity file `compute_id` (the UUID `name`
  had at home, or `identity`); `carry_identity=False` leaves it out (Nova then refuses the host).
- `lab.wait_compute(name, up=True, timeout=240)`: until Nova's service state is up (and the host is
  mapped to the cell) or down; `lab.service(name)`: Nova's os-services entry;
  `lab.computes[name]` (Compute: identity, namespace, state_path, daemon with .pid/.alive()/.log);
  `lab.node_ids[name]`; `lab.resumed_guests(name)`: servers that process booted again at start.
- `lab.timings` ("databases", "cold_start" in s), `lab.rss_mb()` (every process of the lab).

Microversions: boot with "host" needs >= 2.74; evacuate with 2.68-2.94 ends ACTIVE, >= 2.95 SHUTOFF
(openstacksdk's evacuate_server uses its highest: post the action with microversion="2.68").
Evacuation needs the source service forced down first (else 400). Placement usage on a dead
host is freed only when its nova-compute starts again; then unset forced_down.

Figures (this machine: 2 cores shared with six other helpers' clusters; measured by
`HAKEEPER_KEEP_NOVALAB=0 python3 -m pytest -s tests/integration/instanceha/test_novalab.py`):
- install (scripts/setup-nova, three venvs from PyPI): 94 s, 1.0 GB on disk.
- cold start (namespaces to computes up and mapped, flavor and image made): 140 s at load ~20
  (schema syncs 107 s of it); 477 s and 926 s at load 40-60. RSS of the whole lab ~1.6 GiB.
- 3 servers evacuated through openstacksdk (SIGKILL, force down, 3 evacuate calls at 2.68, all
  ACTIVE on compute-2): 13.9 s after the kill at load ~20 (the notes measured 2-3.5 s on a quiet
  machine).
"""

from hakeeper.instanceha.novalab.lab import (
    BOOT_MICROVERSION,
    CLOUD,
    EVACUATE_MICROVERSION,
    Compute,
    NovaLab,
)
from hakeeper.instanceha.novalab.services import LabError, missing_install

__all__ = ["BOOT_MICROVERSION", "CLOUD", "EVACUATE_MICROVERSION", "Compute", "LabError", "NovaLab",
           "missing_install"]
