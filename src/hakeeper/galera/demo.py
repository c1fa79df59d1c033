"""`hakeeper demo galera`: three real MariaDB Galera nodes under hakeeper, live (root).

What an operator fears most about the database tier, shown end to end in network namespaces: a
client writes numbered rows through the MySQL VIP (haproxy asking hakeeper's clustercheck, one
writer at a time); the writer's database is SIGKILLed and writes go on through another node; then
every node loses power at once and comes back, and the cluster bootstraps itself from the most
advanced node with no operator action. At the end an independent checker reads every node and
counts the acknowledged rows that are missing: the demo fails if one is.

`run_scenario` is the demo without its setup, so a test can run it on a cluster it already has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hakeeper.galera import checker, live
from hakeeper.galera.lab import CHECK_PASSWORD, CHECK_USER, GaleraLab, galera_spec
from hakeeper.netlab.livedemo import Closable, Say, first_within, run_lab_demo, seconds, ticker

TAG, SUBNET = "gd", 9  # namespaces hkg-gd*, addresses 10.95.9.0/24: apart from the test modules'
NEEDED = ("etcd", "mariadbd", "mariadb-install-db", "haproxy", "nft")
OCF_GALERA = "/usr/lib/ocf/resource.d/heartbeat/galera"


@dataclass(frozen=True)
class Outcome:
    """What the demo measured; None where the step did not get that far."""

    kill_resume_s: float | None  # writer's database killed -> first write acknowledged again
    outage_writable_s: float | None  # last node powered on -> first write acknowledged again
    acknowledged: int
    missing: int  # acknowledged rows absent from some node: must be 0
    checked: bool  # the checker's verdict: every node reached, nothing missing, the nodes agree
    verdict: str

    @property
    def ok(self) -> bool:
        return self.checked and self.acknowledged > 0 and None not in (self.kill_resume_s, self.outage_writable_s)

    def result_line(self) -> str:
        return (f"RESULT kill_resume_s={seconds(self.kill_resume_s)} "
                f"outage_writable_s={seconds(self.outage_writable_s)} "
                f"acknowledged={self.acknowledged} missing={self.missing}")


def _client_cnf(lab: GaleraLab) -> str:
    path = Path(lab.workdir, "demo-client.cnf")
    path.write_text(f"[client]\nuser = {CHECK_USER}\npassword = {CHECK_PASSWORD}\n")
    path.chmod(0o600)  # the checker's password is not for other users of the machine
    return str(path)


def _wait(what: str, until: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout:g}s")
        time.sleep(0.2)


def vip_writer(lab: GaleraLab, cnf: str, timeout: float) -> str:
    """The node a new client of the VIP lands on, once the VIP answers."""
    found: list[str] = []

    def lands() -> bool:
        node, _ = live.vip_writer(lab.vip, cnf)
        if node is not None:
            found.append(node)
        return node is not None

    _wait(f"the VIP {lab.vip} took no client", lands, timeout)
    return found[-1]


def cluster_line(lab: GaleraLab, writer: checker.Writer, cnf: str) -> str:
    """One line: each node's role in hakeeper and its wsrep state, the VIP's writer, the rows."""
    try:
        roles = lab.galera_roles()
    except Exception:  # the store may be down with the nodes; say so and go on
        roles = {}
    nodes = []
    for name in lab.names:
        try:
            state = lab.wsrep(name).get("wsrep_local_state_comment", "")
        except Exception:  # a powered-off node has no database to ask
            state = "down"
        nodes.append(f"{name} {roles.get(name, 'Stopped')}/{state or 'down'}")
    node, _ = live.vip_writer(lab.vip, cnf, timeout=1.0)
    return f"{'  '.join(nodes)} | VIP writer {node or '-'} | {len(writer.acknowledged())} rows acknowledged"


def _resumed(writer: checker.Writer, after: float, timeout: float) -> float | None:
    at = first_within(lambda: writer.first_ack_after(after), timeout, every=0.1)
    return None if at is None else at - after


def run_scenario(lab: GaleraLab, say: Say, *, tick: float = 2.0, settle: float = 480) -> Outcome:
    """On a formed cluster with its front (galera_spec(front=True)): kill the VIP writer's database,
    then power every node off and on; count what was acknowledged and what every node has."""
    cnf = _client_cnf(lab)
    first = vip_writer(lab, cnf, 120)
    writer = checker.Writer([lab.vip], CHECK_USER, CHECK_PASSWORD, interval=0.05)
    writer.start()
    kill_resume = outage_writable = None
    try:
        with ticker(say, lambda: cluster_line(lab, writer, cnf), tick):
            say(f"a client writes a numbered row every 50 ms through the VIP {lab.vip}; the VIP's writer is {first}")
            _resumed(writer, time.monotonic() - 1, 30)
            time.sleep(tick)  # rows flowing before the fault
            killed = time.monotonic()
            say(f"SIGKILL of {first}'s mariadbd (the VIP's writer)")
            lab.kill_database(first)
            kill_resume = _resumed(writer, killed + 0.2, 60)
            say(f"writes acknowledged again {kill_resume:.2f}s after the kill" if kill_resume is not None
                else "no write acknowledged within 60 s of the kill")
            say("hakeeper restarts the killed database; it rejoins by incremental state transfer")
            lab.wait_quiet(settle)
            say("every node is Synced and promoted again; now every node loses power at once")
            for name in lab.names:
                lab.power_off(name)
            time.sleep(3)
            say("power is back: the agents read each node's last committed position and bootstrap "
                "from the most advanced node, with no operator action")
            for name in lab.names:
                lab.power_on(name)
            back = time.monotonic()
            outage_writable = _resumed(writer, back, settle)
            say(f"writes acknowledged again {outage_writable:.2f}s after the last node came back"
                if outage_writable is not None else f"no write acknowledged within {settle:g}s of power-on")
            lab.wait_quiet(settle)
            say("every node is Synced and promoted again")
    finally:
        writer.stop()
    verdict = checker.verify(lab.addr, writer.acknowledged(), CHECK_USER, CHECK_PASSWORD)
    missing = len(set().union(*verdict.missing.values())) if verdict.missing else 0
    say(f"independent checker: {verdict.describe()}")
    return Outcome(kill_resume, outage_writable, verdict.acknowledged, missing, verdict.ok, verdict.describe())


def run_demo(*, workdir: str | None = None, say: Say = print) -> int:
    def body(base: str, timed: Say, labs: list[Closable]) -> Outcome:
        timed("building three nodes in network namespaces (etcd, a hakeeper agent and MariaDB on each); "
              "Pacemaker's galera agent runs unchanged under hakeeper; about a minute")
        lab = GaleraLab(base, tag=TAG, subnet=SUBNET)
        labs.append(lab)
        lab.form(galera_spec(lab, front=True))
        timed("the cluster is formed: three Synced nodes, the VIP and haproxy on one of them")
        return run_scenario(lab, timed)

    return run_lab_demo("galera", [*NEEDED, OCF_GALERA], body, workdir=workdir, say=say)
