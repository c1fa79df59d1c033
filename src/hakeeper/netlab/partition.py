"""A network partition for lab hosts: nftables in the host's namespace drops the packets of the
given peers, both ways, without a reset (as a broken switch would); everyone else (the test host)
still reaches it. Healing deletes the table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hakeeper.netlab.lab import Host


def cut_off(host: Host, peers: Sequence[str], table: str, workdir: str) -> None:
    """Drop every packet between `host` and the addresses `peers` (RuntimeError if nft refuses)."""
    addresses = ", ".join(peers)
    rules = (
        f"table inet {table} {{\n"
        f"  chain in {{ type filter hook input priority 0; ip saddr {{ {addresses} }} drop; }}\n"
        f"  chain out {{ type filter hook output priority 0; ip daddr {{ {addresses} }} drop; }}\n"
        "}\n"
    )
    path = os.path.join(workdir, f"{host.ns}.{table}.nft")
    Path(path).write_text(rules)
    out = host.run(["nft", "-f", path], timeout=10)
    if out.returncode != 0:
        raise RuntimeError(f"partitioning {host.ns}: {out.stderr}")


def heal(host: Host, table: str) -> None:
    """Remove the partition (nothing happens if there is none)."""
    host.run(["nft", "delete", "table", "inet", table], timeout=10)
