"""Hosts built from network namespaces on one Linux bridge, for tests, benchmarks and the demo.

    with Lab("hkv") as lab:
        a = lab.host("a", {"eth0": ["10.91.0.1/24"]})
        b = lab.host("b", {"eth0": ["10.91.0.2/24"]})
        proc = a.spawn(["ping", "-c1", "10.91.0.2"])
        b.cut("eth0"); b.restore("eth0")

The bridge lives in its own "switch" namespace (`<prefix>-<pid>-sw`), so the root namespace stays
clean; each host is a namespace `<prefix>-<pid>-<name>` with one veth per interface, named inside
the host as asked (e.g. `eth0`). Cutting a link downs the switch side, so the host sees NO-CARRIER
as with a pulled cable. `sweep(prefix)` removes leftovers of runs whose process is gone (the pid
in the names keeps concurrent runs apart); a Lab sweeps when it starts. `lab.attach_root(addr)`
plugs the root namespace (the test itself) into the bridge when it must reach the hosts directly.
"""

from hakeeper.netlab.lab import Host, Lab, sweep

__all__ = ["Host", "Lab", "sweep"]
