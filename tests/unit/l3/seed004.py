"""Seed 004's Neutron settings, taken from the seed itself at test time (the seed is not copied).

The seed is a blog post: its controller's neutron.conf [DEFAULT] section comes first, the L3
agent's [DEFAULT] section is the one that sets ha_vrrp_auth_type. Each block ends at a blank line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[3].parent / "shared" / "seeds" / "004_faf332606de7d3da.txt"
if not SEED.exists():
    SEED = Path("/work/shared/seeds/004_faf332606de7d3da.txt")


def _blocks(text: str) -> list[str]:
    lines = text.split("\n")
    out = []
    for n, line in enumerate(lines):
        if line.strip() != "[DEFAULT]":
            continue
        end = n + 1
        while end < len(lines) and lines[end].strip():
            end += 1
        out.append("\n".join(lines[n:end]) + "\n")
    return out


def seed_sections() -> tuple[str, str]:
    """(neutron.conf, l3_agent.ini) as the seed writes them."""
    if not SEED.exists():
        pytest.skip(f"seed 004 not found at {SEED}")
    blocks = _blocks(SEED.read_text())
    neutron = next(b for b in blocks if "l3_ha_net_cidr" in b)
    l3 = next(b for b in blocks if "ha_vrrp_auth_type" in b)
    return neutron, l3


def write_seed_files(directory: Path) -> tuple[Path, Path]:
    neutron, l3 = seed_sections()
    conf, ini = directory / "neutron.conf", directory / "l3_agent.ini"
    conf.write_text(neutron)
    ini.write_text(l3)
    return conf, ini
