"""What Pacemaker's `ocf:heartbeat:rabbitmq-cluster` agent asks of the Pacemaker CLI, answered by
hakeeper's shims: the agent's own shell functions and command lines (taken from the installed
agent, not copied) run with bash against a cluster view, as the OCF class runs them.

- rmq_join_list: `cibadmin -Q --xpath` on the online nodes' `rmq-node-attr-<instance>` nvpairs
  (value last on the line, cut out with sed), and its fallback `crm_mon -r --as-xml | xmllint`
  on the online, not standby, nodes;
- rmq_notify's mapping of a stopped node: `crm_attribute -N $(ocf_attribute_target NODE) -l
  forever --query --name rmq-node-attr-last-known-<instance> -q` with the notify environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import needs_binary, needs_ocf_agent
from hakeeper.coord.store import Delete, Put
from hakeeper.resources.crm_attribute import install_shims
from hakeeper.resources.pacemaker_cli import (
    ClusterView,
    ResourceDef,
    RunningOn,
    forever_attributes,
    forever_ops,
    render_cib,
)

AGENT = "/usr/lib/ocf/resource.d/heartbeat/rabbitmq-cluster"
RMQ = ResourceDef("rabbitmq", "ocf:heartbeat:rabbitmq-cluster", "rabbitmq-clone")
NODES = ["q1", "q2", "q3"]


def _setup(tmp: Path, online: list[str], standby: list[str], attrs: dict[str, dict[str, str]],
           forever: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The environment hakeeper's OCF class gives the agent on q1, over this cluster view
    (`attrs` are the transient attributes the store holds, also of nodes that are not online:
    the CIB renders them, the agent's xpath must skip them)."""
    needs_ocf_agent("heartbeat/rabbitmq-cluster", "resource-agents")
    needs_binary("xmllint", "libxml2-utils")
    view = ClusterView(
        nodes=NODES, online=online, standby=standby, dc="q1", resources=[RMQ],
        status={n: {"rabbitmq": RunningOn("Started")} for n in online if n not in standby},
        attrs=attrs, forever=forever or {},
    )
    (tmp / "cluster-view.json").write_text(view.to_json())
    (tmp / "attrs-view.json").write_text(json.dumps(view.attrs))
    sbin = install_shims(str(tmp / "sbin"))
    return {
        "PATH": f"{sbin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HA_SBIN_DIR": sbin,
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": "rabbitmq",
        "OCF_RESKEY_CRM_meta_on_node": "q1",
        "HAKEEPER_NODE": "q1",
        "HAKEEPER_ATTRS_DIR": str(tmp / "attrs"),
        "HAKEEPER_ATTRS_VIEW": str(tmp / "attrs-view.json"),
        "SHELL": "/bin/bash",
    }


def _agent_bash(env: dict[str, str], script: str) -> str:
    """Run `script` in bash with ocf-shellfuncs, the agent's attribute names and its functions
    defined (the agent's file is read, its action dispatch is not run)."""
    prelude = (
        ". /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs\n"
        f"eval \"$(grep '^RMQ_CRM_ATTR_COOKIE' {AGENT})\"\n"
        f"eval \"$(sed -n '/^rmq_join_list()/,/^}}/p' {AGENT})\"\n"
    )
    out = subprocess.run(["bash", "-c", prelude + script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _names(rmq: str) -> dict[str, dict[str, str]]:
    return {n: {"rmq-node-attr-rabbitmq": f"rabbit@{n}"} for n in rmq.split()}


def _last_known(rmq: str) -> dict[str, dict[str, str]]:
    return {n: {"rmq-node-attr-last-known-rabbitmq": f"rabbit@{n}"} for n in rmq.split()}


def test_the_join_list_is_the_erlang_names_of_the_online_nodes_running_a_broker(tmp_path: Path) -> None:
    env = _setup(tmp_path, online=NODES, standby=[], attrs=_names("q1 q2"))
    assert _agent_bash(env, "rmq_join_list").split() == ["rabbit@q1", "rabbit@q2"]


def test_a_node_that_left_is_not_joined(tmp_path: Path) -> None:
    # q2 is not online (its transient attribute still in the view: the xpath's crmd='online' skips it).
    env = _setup(tmp_path, online=["q1", "q3"], standby=[], attrs=_names("q1 q2 q3"))
    assert _agent_bash(env, "rmq_join_list").split() == ["rabbit@q1", "rabbit@q3"]


def test_no_broker_running_gives_an_empty_join_list_through_the_crm_mon_fallback(tmp_path: Path) -> None:
    # Nobody published a name: the agent falls back to crm_mon's online, not standby, nodes; an
    # empty list is what makes its start found the cluster (after wiping its data).
    env = _setup(tmp_path, online=NODES, standby=["q2"], attrs={})
    assert _agent_bash(env, "rmq_join_list").strip() == ""
    nodes = _agent_bash(
        env,
        "crm_mon_no_validation -r --as-xml | "
        "xmllint --format --xpath \"//nodes//node[@online='true' and @standby='false']/@name\" -",
    )
    assert nodes.split() == ['name="q1"', 'name="q3"']


@pytest.mark.parametrize(("with_hosts", "q3_online"), [(False, True), (True, True), (False, False)])
def test_post_stop_maps_the_stopped_node_to_its_last_known_erlang_name(
        tmp_path: Path, with_hosts: bool, q3_online: bool) -> None:
    # q3 stopped (standby, or lost with its lease): its transient name is gone, the permanent
    # last-known one stays.
    online = NODES if q3_online else ["q1", "q2"]
    env = _setup(tmp_path, online=online, standby=["q3"] if q3_online else [], attrs=_names("q1 q2"),
                 forever=_last_known("q1 q2 q3"))
    env.update({
        "OCF_RESKEY_CRM_meta_notify_type": "post",
        "OCF_RESKEY_CRM_meta_notify_operation": "stop",
        "OCF_RESKEY_CRM_meta_notify_stop_uname": "q3",
        "OCF_RESKEY_CRM_meta_notify_all_uname": "q1 q2 q3",
    })
    if with_hosts:  # Pacemaker gives the hosts of guest nodes; for cluster nodes the names
        env["OCF_RESKEY_CRM_meta_notify_all_hosts"] = "q1 q2 q3"
    # The agent's line in rmq_notify, for each node of the stop list.
    line = ('for node in $(echo "$OCF_RESKEY_CRM_meta_notify_stop_uname"); do '
            '${HA_SBIN_DIR}/crm_attribute -N $(ocf_attribute_target $node) -l forever --query '
            '--name $RMQ_CRM_ATTR_COOKIE_LAST_KNOWN -q; done')
    assert _agent_bash(env, line).split() == ["rabbit@q3"]
    assert _agent_bash(env, "ocf_attribute_target").strip() == "q1"  # this node: CRM_meta_on_node


def test_a_node_never_seen_maps_to_nothing(tmp_path: Path) -> None:
    env = _setup(tmp_path, online=NODES, standby=[], attrs=_names("q1"), forever=_last_known("q1"))
    out = subprocess.run(
        [f"{env['HA_SBIN_DIR']}/crm_attribute", "-N", "q2", "-l", "forever", "--query",
         "--name", "rmq-node-attr-last-known-rabbitmq", "-q"],
        env=env, capture_output=True, text=True, timeout=30,
    )
    # The agent reads stdout only: empty, so it warns "Unable to map" and forgets nothing.
    assert out.returncode == 105 and out.stdout == ""


def _shim(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([f"{env['HA_SBIN_DIR']}/crm_attribute", *args], env=env, capture_output=True, text=True,
                          timeout=30)


def test_a_permanent_attribute_outlives_the_node_and_is_written_once(tmp_path: Path) -> None:
    """rmq_write_nodename's `-l forever` on q1: read back at once (before the agent publishes
    it), published without a lease, not written again while the store holds it, shown in the
    CIB's nodes section, deleted by -D."""
    env = _setup(tmp_path, online=NODES, standby=[], attrs={})
    name = "rmq-node-attr-last-known-rabbitmq"
    assert _shim(env, "-N", "q1", "-l", "forever", "--name", name, "-v", "rabbit@q1").returncode == 0
    got = _shim(env, "-N", "q1", "-l", "forever", "--query", "--name", name, "-q")
    assert (got.returncode, got.stdout) == (0, "rabbit@q1\n")
    assert not (tmp_path / "attrs" / name).exists()  # not a transient attribute: no lease ends it

    prefix = "/hakeeper/t/"
    ops = forever_ops({}, prefix, str(tmp_path))
    assert ops == [Put(f"{prefix}attrs-forever/q1/{name}", b'"rabbit@q1"')]  # lease 0: none
    stored = {op.key: op.value for op in ops if isinstance(op, Put)}
    assert forever_attributes(stored, prefix) == {"q1": {name: "rabbit@q1"}}
    # The same value again (every monitor sets it): nothing to write.
    _shim(env, "-N", "q1", "-l", "forever", "--name", name, "-v", "rabbit@q1")
    assert forever_ops(stored, prefix, str(tmp_path)) == []

    # q1 is gone (no lease, no transient attributes): q2 still maps it, from the CIB's nodes.
    view = ClusterView(nodes=NODES, online=["q2", "q3"], forever=forever_attributes(stored, prefix))
    (tmp_path / "cluster-view.json").write_text(view.to_json())
    env_q2 = {**env, "HAKEEPER_NODE": "q2"}
    got = _shim(env_q2, "-N", "q1", "-l", "forever", "--query", "--name", name, "-q")
    assert (got.returncode, got.stdout) == (0, "rabbit@q1\n")
    assert render_cib(view).xpath(f"//nodes/node[@uname='q1']//nvpair[@name='{name}']/@value") == ["rabbit@q1"]
    assert _shim(env_q2, "-N", "q1", "--query", "--name", name, "-q").returncode == 105  # not transient

    assert _shim(env, "-N", "q1", "-l", "forever", "--name", name, "-D").returncode == 0
    assert forever_ops(stored, prefix, str(tmp_path)) == [Delete(f"{prefix}attrs-forever/q1/{name}")]


def test_forever_attributes_ignore_other_keys() -> None:
    values = {
        "/hakeeper/t/attrs-forever/q1/a": b'"x"',
        "/hakeeper/t/attrs-forever/q1/bad": b"not json",
        "/hakeeper/t/attrs-forever/q2": b'"no name"',
        "/hakeeper/t/attrs/q1/a": b'"transient"',
    }
    assert forever_attributes(values, "/hakeeper/t/") == {"q1": {"a": "x"}}
