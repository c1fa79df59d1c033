"""Resources dropped from the configuration (orphans) are stopped with their last known
definition, by real agents on one embedded store: a process and an OCF Dummy removed, everything
removed (an empty configuration), two removals in a row, an orphan found by the probe of a
restarted agent, a promoted Stateful instance demoted before its stop, and a shutdown that
cannot stop a resource saying so within its budget.

What runs is checked independently of hakeeper's reports: the process's pid in /proc, the OCF
agents' own state files."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest
from test_agent_embedded import Harness, run

from conftest import needs_ocf_agent
from hakeeper.agent import state as st
from hakeeper.agent.daemon import SHUTDOWN_MARGIN

NODES = "nodes: [{name: n1}, {name: n2}, {name: n3}]"
HEAD = "cluster: {name: t, stonith-enabled: false, resource-stickiness: 100}\n" + NODES + "\n"


def prim(rid: str, agent: str = "process", extra: str = "") -> str:
    params = '    params: {command: "sleep 1000"}\n' if agent == "process" else ""
    return (
        f"    - id: {rid}\n      agent: {agent}\n"
        + params.replace("    params", "      params")
        + "      operations: [{name: monitor, interval: 1s, timeout: 10s}"
        + extra
        + "]\n"
    )


def spec(*prims: str) -> str:
    return HEAD + "resources:\n  primitives:\n" + "".join(prims) if prims else HEAD


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (read from /proc, not from hakeeper)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def pid_of(h: Harness, node: str, rsc: str) -> int:
    return int((h.tmp / node / f"{rsc}.pid").read_text().split()[0])


def dummy_state(h: Harness, node: str, rsc: str) -> Path:
    return h.tmp / node / "rsctmp" / f"Dummy-{rsc}.state"


async def reports(h: Harness) -> dict[str, dict[str, dict[str, object]]]:
    """{rsc: {node: report}} from the store."""
    kvs, _ = await h.store.get_prefix(h.keys.status)
    out: dict[str, dict[str, dict[str, object]]] = {}
    for kv in kvs:
        node, rsc = kv.key[len(h.keys.status) :].split("/")
        out.setdefault(rsc, {})[node] = st.loads(kv.value)
    return out


async def running(h: Harness, *rscs: str) -> bool:
    w = await h.where()
    return all(len(w.get(r, [])) == 1 for r in rscs)


async def events(h: Harness) -> list[dict[str, object]]:
    kvs, _ = await h.store.get_prefix(h.keys.events)
    return [st.loads(kv.value) for kv in kvs]


async def apply(h: Harness, text: str, version: int) -> None:
    from hakeeper.spec import parse_spec

    await h.store.put(h.keys.config, st.dumps({"version": version, "spec": parse_spec(text).model_dump(mode="json")}))


def start_all(h: Harness) -> None:
    for n in ("n1", "n2", "n3"):
        h.start(n)


async def until_true(h: Harness, cond: object, timeout: float = 30) -> float:
    """Wait for a plain condition (a callable returning bool); seconds it took."""
    t0 = time.monotonic()

    async def check() -> bool:
        return bool(cond())  # type: ignore[operator]

    await h.until(check, timeout)
    return time.monotonic() - t0


def test_a_removed_resource_is_stopped_and_forgotten(tmp_path: Path) -> None:
    """A, B (process) and D (OCF Dummy) run; the configuration keeps only A: B's process and D's
    state file are gone, their reports too, A was left alone, and the events name the orphans."""
    needs_ocf_agent("heartbeat/Dummy", "resource-agents")

    async def body(h: Harness) -> None:
        start_all(h)
        await apply(h, spec(prim("a"), prim("b"), prim("d", "ocf:heartbeat:Dummy")), 1)
        await h.until(lambda: running(h, "a", "b", "d"))
        w = await h.where()
        a_node, b_node, d_node = w["a"][0], w["b"][0], w["d"][0]
        a_pid, b_pid = pid_of(h, a_node, "a"), pid_of(h, b_node, "b")
        assert alive(b_pid) and dummy_state(h, d_node, "d").exists()
        # The report carries what stopping it later needs.
        assert (await reports(h))["b"][b_node]["definition"]["agent"] == "process"  # type: ignore[index]

        await apply(h, spec(prim("a")), 2)
        took = await until_true(h, lambda: not alive(b_pid) and not dummy_state(h, d_node, "d").exists())
        print(f"apply -> orphan process gone and Dummy stopped: {took:.2f}s")

        async def forgotten() -> bool:
            r = await reports(h)
            return "b" not in r and "d" not in r

        await h.until(forgotten)
        assert alive(a_pid) and pid_of(h, a_node, "a") == a_pid  # untouched
        stops = [e for e in await events(h) if e["kind"] == "stop"]
        assert {e["rsc"] for e in stops} == {"b", "d"}, stops
        assert all("orphan" in str(e["message"]) for e in stops)
        assert not [e for e in await events(h) if str(e["kind"]).endswith("-failed")]
        # Its last known definition went with it.
        assert "b" not in h.agents[b_node].definitions

    run(tmp_path, body)


def test_an_empty_configuration_stops_everything_everywhere(tmp_path: Path) -> None:
    """No nodes, no resources: every agent still running stops what it runs (its node is no
    longer configured, nothing may run there) instead of leaving it running unseen."""
    needs_ocf_agent("heartbeat/Dummy", "resource-agents")

    async def body(h: Harness) -> None:
        start_all(h)
        await apply(h, spec(prim("a"), prim("b"), prim("d", "ocf:heartbeat:Dummy")), 1)
        await h.until(lambda: running(h, "a", "b", "d"))
        w = await h.where()
        pids = [pid_of(h, w["a"][0], "a"), pid_of(h, w["b"][0], "b")]
        state = dummy_state(h, w["d"][0], "d")

        await apply(h, "{}", 2)
        took = await until_true(h, lambda: not any(map(alive, pids)) and not state.exists())
        print(f"empty configuration -> everything stopped: {took:.2f}s")

        async def no_reports() -> bool:
            return not await reports(h)

        await h.until(no_reports)

    run(tmp_path, body)


def test_two_removals_in_a_row_and_a_restarted_agent_finds_its_orphan(tmp_path: Path) -> None:
    """Version 2 drops B, version 3 drops C right after (before B's stop is seen): both stop. Then
    an agent that died while running E comes back after E was dropped: its probe finds E from
    its report's definition and E is stopped."""

    async def body(h: Harness) -> None:
        start_all(h)
        await apply(h, spec(prim("a"), prim("b"), prim("c"), prim("e")), 1)
        await h.until(lambda: running(h, "a", "b", "c", "e"))
        w = await h.where()
        b_pid, c_pid = pid_of(h, w["b"][0], "b"), pid_of(h, w["c"][0], "c")
        await apply(h, spec(prim("a"), prim("c"), prim("e")), 2)
        await apply(h, spec(prim("a"), prim("e")), 3)
        await until_true(h, lambda: not alive(b_pid) and not alive(c_pid))

        # The agent running E dies without a word; E keeps running, as it would.
        e_node = w["e"][0]
        e_pid = pid_of(h, e_node, "e")
        await h.kill(e_node)
        await apply(h, spec(prim("a")), 4)
        await asyncio.sleep(1)
        assert alive(e_pid), "nothing may stop E while its node's agent is away"
        h.start(e_node)
        took = await until_true(h, lambda: not alive(e_pid))
        print(f"restarted agent -> its orphan stopped: {took:.2f}s")
        probes = [e for e in await events(h) if e["kind"] == "probe" and "orphan" in str(e["message"])]
        assert probes, "the probe names the orphan it found"

        async def forgotten() -> bool:
            return set(await reports(h)) == {"a"}

        await h.until(forgotten)

    run(tmp_path, body)


PROMOTABLE = (
    HEAD
    + """resources:
  primitives:
    - id: db
      agent: ocf:pacemaker:Stateful
      operations:
        - {name: monitor, interval: 1s, timeout: 10s, role: Unpromoted}
        - {name: monitor, interval: 1500ms, timeout: 10s, role: Promoted}
    - id: keep
      agent: process
      params: {command: "sleep 1000"}
  clones:
    - id: db-clone
      child: db
      meta: {promotable: true}
"""
)


def test_a_promoted_orphan_is_demoted_then_stopped(tmp_path: Path) -> None:
    """The promotable clone is dropped: its promoted instance is demoted, then every instance is
    stopped (Stateful refuses to stop a promoted instance, so a plain stop would fail)."""
    needs_ocf_agent("pacemaker/Stateful", "pacemaker-resource-agents")

    def state_files(h: Harness) -> list[Path]:
        return [h.tmp / n / "varrun" / "Stateful-db.state" for n in ("n1", "n2", "n3")]

    async def body(h: Harness) -> None:
        start_all(h)
        await apply(h, PROMOTABLE, 1)

        async def one_promoted() -> bool:
            roles = {n: d.get("role") for n, d in (await reports(h)).get("db", {}).items()}
            return sorted(roles.values()) == ["Promoted", "Unpromoted", "Unpromoted"]

        await h.until(one_promoted)
        promoted = next(n for n, d in (await reports(h))["db"].items() if d["role"] == "Promoted")
        assert all(f.exists() for f in state_files(h))
        assert (h.tmp / promoted / "varrun" / "Stateful-db.state").read_text().strip().lower() == "promoted"

        await apply(h, spec(prim("keep")), 2)
        took = await until_true(h, lambda: not any(f.exists() for f in state_files(h)))
        print(f"promotable clone dropped -> demoted and stopped everywhere: {took:.2f}s")

        # The agent removes the state file (the agent's stop) before it writes the stop event, so
        # the events are read once all three stops are on record.
        async def three_stops() -> bool:
            return sum(e["kind"] == "stop" for e in await events(h) if e.get("rsc") == "db") >= 3

        await h.until(three_stops)
        evs = await events(h)
        kinds = [(e["kind"], e["node"]) for e in evs if e.get("rsc") == "db"]
        assert kinds.index(("demote", promoted)) < kinds.index(("stop", promoted)), kinds
        assert sum(k == "stop" for k, _ in kinds) == 3, kinds
        assert not [e for e in evs if str(e["kind"]).endswith("-failed")], evs

        async def forgotten() -> bool:
            return "db" not in await reports(h)

        await h.until(forgotten)

    run(tmp_path, body)


STUBBORN = """#!/bin/sh
# A resource whose stop always fails: its state file stays.
state="$HA_RSCTMP/Stubborn-$OCF_RESOURCE_INSTANCE.state"
case "$1" in
  start) touch "$state"; exit 0;;
  stop) exit 1;;
  monitor) [ -f "$state" ] && exit 0; exit 7;;
  meta-data) echo '<resource-agent name="Stubborn"/>'; exit 0;;
  *) exit 3;;
esac
"""


def test_a_shutdown_that_cannot_stop_a_resource_says_so_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent shutting down with a resource whose stop fails: it ends within the stop timeout
    plus the margin, a `left-running` event names the resource, and its report stays (a failed
    stop with the definition to stop it with), so the next agent there can find it."""
    root = tmp_path / "ocf"
    (root / "resource.d" / "test").mkdir(parents=True)
    agent = root / "resource.d" / "test" / "Stubborn"
    agent.write_text(STUBBORN)
    agent.chmod(agent.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("HAKEEPER_OCF_ROOT", str(root))
    stubborn = (
        "    - id: s\n      agent: ocf:test:Stubborn\n"
        "      operations: [{name: monitor, interval: 1s, timeout: 5s}, {name: stop, interval: 0, timeout: 2s}]\n"
    )

    async def body(h: Harness) -> None:
        start_all(h)
        await apply(h, spec(stubborn), 1)
        await h.until(lambda: running(h, "s"))
        node = (await h.where())["s"][0]
        state = h.tmp / node / "rsctmp" / "Stubborn-s.state"
        assert state.exists()
        t0 = time.monotonic()
        await asyncio.wait_for(h.agents[node].shutdown(), 60)
        took = time.monotonic() - t0
        print(f"shutdown with a stop that fails: {took:.2f}s (budget {2 + SHUTDOWN_MARGIN:.0f}s)")
        assert took <= 2 + SHUTDOWN_MARGIN + 1, took
        assert state.exists()  # really still running
        left = [e for e in await events(h) if e["kind"] == "left-running" and e["node"] == node]
        assert left and "s" in str(left[0]["message"]), await events(h)
        report = (await reports(h)).get("s", {}).get(node)
        assert report is not None and report.get("failed") and report.get("op") == "stop", report
        assert report["definition"]["agent"] == "ocf:test:Stubborn"  # type: ignore[index]

    run(tmp_path, body)


def test_secrets_in_params_never_reach_events(tmp_path: Path) -> None:
    """A definition's params are kept in the report (same store as the configuration) but no
    event or log line carries them."""
    secret = "s3cr3t-" + os.urandom(4).hex()
    with_secret = prim("p").replace('"sleep 1000"', '"sleep 1000", password: ' + secret)

    async def body(h: Harness) -> None:
        start_all(h)
        await apply(h, spec(with_secret, prim("a")), 1)
        await h.until(lambda: running(h, "p", "a"))
        p_pid = pid_of(h, (await h.where())["p"][0], "p")
        await apply(h, spec(prim("a")), 2)
        await until_true(h, lambda: not alive(p_pid))
        assert secret not in repr(await events(h))

    run(tmp_path, body)
