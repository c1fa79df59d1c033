"""RabbitMQ under hakeeper: broker loss → publishing through another broker; full outage →
publishing again; confirmed vs delivered (root; rabbitmq-server, etcd-server, pika).

Three brokers in network namespaces, each node with an etcd member and a hakeeper agent running
the native `rabbitmq` class as a clone, a quorum queue in OpenStack's vhost. The independent
checker (hakeeper.rabbitmq.checker) publishes with confirms and retries and consumes with manual
acks.

  leader    each round SIGKILLs the Erlang VM of the queue leader's node and measures kill → first
            confirm through another broker, for a publisher that was connected to it (it must
            reconnect) and for one already connected to a survivor; then waits until hakeeper
            has restarted it and it rejoined (kill → three brokers running again)
  outage    every broker SIGKILLed at once while the publisher keeps retrying; kill → first
            confirm again, kill → three brokers running, and last broker back → first confirm
  checker   confirmed vs delivered (distinct), duplicates, missing (must be 0)

There is no real peer here on the same input (Pacemaker's rabbitmq-cluster agent needs Pacemaker
and corosync), so no ratio is printed.

    python3 bench/rabbitmq_failover.py [--rounds 5]      (about 5-8 minutes)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hakeeper.rabbitmq import checker
from hakeeper.rabbitmq.lab import VHOST, RabbitLab, rabbitmq_spec

QUEUE = "hk-bench"


def _hosts(lab: RabbitLab, first: str | None = None) -> list[str]:
    return [lab.addr[n] for n in sorted(lab.names, key=lambda n: n != first)]


def _wait_confirm(pub: checker.Publisher, after: float, not_from: str | None, limit: float) -> float | None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = pub.first_confirm_after(after, not_from)
        if got is not None:
            return got[0] - after
        time.sleep(0.01)
    return None


def leader_rounds(
    lab: RabbitLab, rounds: int
) -> tuple[list[float], list[float], list[float], list[checker.Publisher]]:
    """Two publishers per round: one connected to the victim (it must reconnect elsewhere), one
    already connected to a survivor."""
    moved, stayed, rejoins, pubs = [], [], [], []
    for r in range(rounds):
        victim = lab.leader_of(QUEUE)
        survivor = next(n for n in lab.names if n != victim)
        pub = checker.Publisher(_hosts(lab, victim), vhost=VHOST, queue=QUEUE, tag=f"leader{r}")
        near = checker.Publisher(_hosts(lab, survivor), vhost=VHOST, queue=QUEUE, tag=f"near{r}")
        pub.start()
        near.start()
        pubs += [pub, near]
        time.sleep(1.5)
        killed = time.monotonic()
        lab.kill_broker(victim)
        took = _wait_confirm(pub, killed, lab.addr[victim], 60)
        took_near = _wait_confirm(near, killed, lab.addr[victim], 60)
        lab.wait_cluster(3, 240)
        back = time.monotonic() - killed
        pub.stop()
        near.stop()
        print(f"  round {r + 1}: leader on {victim}; first confirm after the kill: publisher that was on it "
              f"{'none' if took is None else f'{took:.3f} s'} (retries {dict(pub.errors) or 0}), publisher on "
              f"{survivor} {'none' if took_near is None else f'{took_near:.3f} s'} (retries {dict(near.errors) or 0}); "
              f"3 brokers running again after {back:.1f} s", flush=True)
        if took is not None:
            moved.append(took)
        if took_near is not None:
            stayed.append(took_near)
        rejoins.append(back)
    return moved, stayed, rejoins, pubs


def outage(lab: RabbitLab) -> tuple[checker.Publisher, float | None, float, float | None]:
    pub = checker.Publisher(_hosts(lab), vhost=VHOST, queue=QUEUE, tag="outage")
    pub.start()
    time.sleep(2)
    killed = time.monotonic()
    for n in lab.names:
        lab.kill_broker(n)
    lab.wait_cluster(3, 300)
    all_back = time.monotonic()
    took = _wait_confirm(pub, killed + 0.5, None, 120)
    after_back = None if took is None else killed + 0.5 + took - all_back
    pub.stop()
    return pub, took, all_back - killed, after_back


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="hkr-bench-", dir="/tmp")
    lab = RabbitLab(workdir, subnet=3)
    try:
        began = time.monotonic()
        lab.start()
        lab.apply(rabbitmq_spec(lab))
        lab.wait_cluster(3, 300)
        print(f"cluster of 3 formed under hakeeper in {time.monotonic() - began:.1f} s", flush=True)
        lab.setup_openstack_vhost(lab.names[0])
        checker.declare(lab.addr[lab.names[0]], vhost=VHOST, queue=QUEUE)
        con = checker.Consumer(_hosts(lab), vhost=VHOST, queue=QUEUE)
        con.start()
        print(f"leader's broker SIGKILLed, {args.rounds} rounds:", flush=True)
        confirms, near, rejoins, pubs = leader_rounds(lab, args.rounds)
        print("full outage (every broker SIGKILLed at once):", flush=True)
        opub, took, back, after_back = outage(lab)
        pubs.append(opub)
        # Judge everything published against everything delivered, after a drain.
        deadline = time.monotonic() + 60
        confirmed = set().union(*(p.confirmed_ids() for p in pubs))
        while time.monotonic() < deadline and not confirmed <= set(con.delivered()):
            time.sleep(0.2)
        time.sleep(2)
        con.stop()
        seen = con.delivered()
        missing = confirmed - set(seen)
        print()
        for label, figures in (("publisher that was on it (reconnects)", confirms),
                               ("publisher already on a survivor", near)):
            if figures:
                print(f"leader's broker killed -> first confirm through another broker, {label}: median "
                      f"{statistics.median(figures):.3f} s (min {min(figures):.3f}, max {max(figures):.3f}, "
                      f"{len(figures)}/{args.rounds} rounds)")
        print(f"leader's broker killed -> 3 brokers running again (hakeeper restart + rejoin): median "
              f"{statistics.median(rejoins):.1f} s")
        print(f"full outage -> 3 brokers running again: {back:.1f} s; first confirm after the kill: "
              f"{'none' if took is None else f'{took:.1f} s'}; after the last broker was back: "
              f"{'n/a' if after_back is None else f'{after_back:.1f} s'}")
        print(f"checker: {len(confirmed)} confirmed, {len(seen)} delivered, "
              f"{sum(c - 1 for c in seen.values())} duplicates, {len(missing)} confirmed but lost, "
              f"{sum(p.retries for p in pubs)} publish retries")
        return 1 if missing else 0
    finally:
        lab.close()


if __name__ == "__main__":
    sys.exit(main())
