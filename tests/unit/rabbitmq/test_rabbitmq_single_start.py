"""`rabbitmq:single` (seed 002's active/passive broker): the class the agent string picks, the
node named after its VIP wherever it runs, and the refusals that keep it off another broker's
data (a bad node_host, a data directory of another node), touching nothing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from hakeeper.rabbitmq.agent import RabbitAgent
from hakeeper.rabbitmq.single import SingleRabbitAgent, foreign_nodes
from hakeeper.resources.base import make_agent
from hakeeper.resources.result import Status


def test_the_agent_string_picks_the_mode(tmp_path: Path) -> None:
    params = {"cookie": "c", "base_dir": str(tmp_path), "node_host": "mqvip"}
    single = make_agent("rabbitmq", "rabbitmq:single", params, str(tmp_path / "state"))
    clustered = make_agent("rabbitmq", "rabbitmq:cluster", params, str(tmp_path / "state"))
    assert isinstance(single, SingleRabbitAgent) and type(clustered) is RabbitAgent
    single.meta["on_node"] = "c2"  # whichever host runs it, the node is the VIP's
    assert single.nodename == "rabbit@mqvip" and single.peers() == []
    assert single.mnesia_dir == os.path.join(str(tmp_path), "mnesia", "rabbit@mqvip")


def test_foreign_data_is_named(tmp_path: Path) -> None:
    mnesia = tmp_path / "mnesia"
    assert foreign_nodes(str(mnesia), "rabbit@mqvip") == []  # nothing yet: a first start
    (mnesia / "rabbit@other").mkdir(parents=True)
    (mnesia / "rabbit@other-feature_flags").write_text("[]")  # a file, not a node's directory
    assert foreign_nodes(str(mnesia), "rabbit@mqvip") == ["rabbit@other"]
    (mnesia / "rabbit@mqvip").mkdir()
    assert foreign_nodes(str(mnesia), "rabbit@mqvip") == []  # ours is there


@pytest.mark.parametrize("host", ["", "-x", "a b", "x" * 64, "vip.example.com"])
def test_a_bad_node_host_is_refused(tmp_path: Path, host: str) -> None:
    agent = make_agent("rabbitmq", "rabbitmq:single", {"cookie": "c", "base_dir": str(tmp_path), "node_host": host},
                       str(tmp_path / "state"))
    reason = agent.installed()
    assert reason is not None and ("node_host" in reason or "rabbitmq-server" in reason or "user" in reason)


def test_another_brokers_data_is_refused_and_left_alone(tmp_path: Path) -> None:
    if not os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK):
        pytest.skip("rabbitmq-server is not installed (installed() refuses before the data check)")
    other = tmp_path / "mnesia" / "rabbit@elsewhere"
    other.mkdir(parents=True)
    (other / "schema.DAT").write_bytes(b"x")
    agent = make_agent("rabbitmq", "rabbitmq:single",
                       {"cookie": "c", "base_dir": str(tmp_path), "node_host": "localhost"}, str(tmp_path / "state"))
    result = asyncio.run(agent.start(10))
    assert result.status is Status.NOT_CONFIGURED and "rabbit@elsewhere" in result.output, result
    assert sorted(os.listdir(tmp_path)) == ["mnesia"] and os.listdir(other) == ["schema.DAT"]
