"""Seed 001's Ceph wiring: cluster start, `hakeeper ceph apply`, `plan` and `verify` times, against
the seed's own procedure (the ceph CLI and tee/chown by hand, as a script) on the same cluster.

    python3 bench/ceph_wiring.py [--rounds N]        (root; ceph-mon ceph-osd ceph-mgr ceph-common)

Each round starts from a cluster without the wiring: the seed's steps run first and are timed
(pools, users, keyrings written and chowned, config lines appended: no checking), then everything
they made is removed and hakeeper applies, plans again (must be "up to date") and verifies (must
pass). Prints the medians and the ratio hakeeper apply / seed script.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "ceph"))

from wiringlab import Wired, wired

from hakeeper.ceph.lab import CephLab

SEED_CAPS = {
    "volumes": ["mon", "allow r", "osd", "allow class-read object_prefix rbd_children, allow rwx pool=volumes, "
                "allow rx pool=images"],
    "images": ["mon", "allow r", "osd", "allow class-read object_prefix rbd_children, allow rwx pool=images"],
}


def seed_script(w: Wired) -> float:
    """The seed's steps, done the way it does them, timed."""
    c = w.ceph
    began = time.monotonic()
    for pool in ("volumes", "images"):
        c.check("osd", "pool", "create", pool, "16")
    for user, caps in SEED_CAPS.items():
        c.check("auth", "get-or-create", f"client.{user}", *caps)
    for user, owner in (("images", "glance"), ("volumes", "cinder")):
        path = w.root("controller01", f"/etc/ceph/ceph.client.{user}.keyring")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Path(path).write_text(c.check("auth", "get-or-create", f"client.{user}"))
        shutil.chown(path, owner, owner)
    for rel, lines in (("/etc/glance/glance-api.conf", "default_store=rbd\nrbd_store_user=images\n"
                        "rbd_store_pool=images\nshow_image_direct_url=True\n"),
                       ("/etc/cinder/cinder.conf", "volume_driver=cinder.volume.driver.RBDDriver\nrbd_pool=volumes\n"
                        "rbd_user=volumes\nrbd_secret_uuid=00000000-0000-4000-8000-000000000000\n")):
        path = w.root("controller01", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as f:
            f.write(lines)
    return time.monotonic() - began


def reset(w: Wired) -> None:
    c = w.ceph
    for pool in ("volumes", "images", "vms"):
        c.ceph("osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it", fmt=False)
    for user in ("volumes", "images", "nova"):
        c.ceph("auth", "del", f"client.{user}", fmt=False)
    for root in w.roots.values():
        shutil.rmtree(os.path.join(root, "etc"), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(w.state)  # a new secret UUID each round, as on a new deployment


def hk(w: Wired, command: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    began = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "hakeeper", "ceph", command, w.profile], capture_output=True,
                         text=True, timeout=900)
    return time.monotonic() - began, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"seed": [], "apply": [], "plan": [], "verify": [], "apply-again": []}
    with CephLab() as ceph, wired(ceph) as w:
        print(f"cluster start to HEALTH_OK: {ceph.started_in:.1f} s (1 mon, 1 mgr, 3 bluestore OSDs)")
        for r in range(args.rounds):
            figures["seed"].append(seed_script(w))
            reset(w)
            for step in ("apply", "plan", "verify", "apply-again"):
                took, out = hk(w, step.split("-")[0])
                ok = out.returncode == 0 and (step != "plan" or out.stdout.startswith("up to date"))
                if not ok:
                    print(f"round {r + 1}: {step} failed:\n{out.stdout}{out.stderr}", file=sys.stderr)
                    return 1
                figures[step].append(took)
            checks = hk(w, "verify")[1].stderr.strip().splitlines()[-1]
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in figures.items()) + f" ({checks})")
            reset(w)
    med = {k: statistics.median(v) for k, v in figures.items()}
    print("medians: " + ", ".join(f"{k} {v:.1f} s" for k, v in med.items()))
    print(f"hakeeper apply / seed script: {med['apply'] / med['seed']:.2f} "
          f"(apply + verify / seed script: {(med['apply'] + med['verify']) / med['seed']:.2f})")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
