"""instanceha:nova-compute's shell (novacompute_agent.py) around a stand-in nova-compute: a
script that records its command line and runs until killed, or exits at once. The real
nova-compute runs in tests/integration/instanceha/test_identity_move.py."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from hakeeper.resources.base import make_agent
from hakeeper.resources.result import Status

U1, U2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def stand_in(tmp_path: Path, exits: bool = False) -> Path:
    script = tmp_path / "nova-compute"
    body = 'echo "identity refused" >&2; exit 1' if exits else "exec sleep 300"
    script.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/argv"\n{body}\n')
    script.chmod(0o755)
    return script


def setup(tmp_path: Path, **extra: str) -> dict[str, str]:
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    (tmp_path / "nova.conf").write_text(f"[DEFAULT]\nstate_path = {shared}\n")
    (tmp_path / "host1.conf").write_text("[DEFAULT]\nhost = host1\n")
    return {"binary": str(stand_in(tmp_path)), "config": str(tmp_path / "nova.conf"),
            "additional_config": str(tmp_path / "host1.conf"), **extra}


def test_start_writes_the_pinned_identity_and_passes_the_overlay_last(tmp_path: Path) -> None:
    async def main() -> None:
        agent = make_agent("p_nova-compute-host1", "instanceha:nova-compute", setup(tmp_path, node_uuid=U1),
                           str(tmp_path / "state"))
        assert agent.installed() is None
        assert (await agent.monitor(5)).status == Status.NOT_RUNNING
        started = await agent.start(20)
        assert started.status == Status.SUCCESS, started.output
        assert "host1" in started.output
        assert (tmp_path / "shared" / "compute_id").read_text().strip() == U1
        overlay = tmp_path / "state" / "p_nova-compute-host1.nova.conf"
        argv = (tmp_path / "argv").read_text().split()
        assert argv[-1] == str(overlay) and argv.count("--config-file") == 3
        assert "host = host1" in overlay.read_text() and f"state_path = {tmp_path / 'shared'}" in overlay.read_text()
        assert (await agent.monitor(5)).status == Status.SUCCESS
        assert (await agent.start(20)).status == Status.SUCCESS  # already running: nothing more
        assert (await agent.stop(10)).status == Status.SUCCESS
        assert (await agent.monitor(5)).status == Status.NOT_RUNNING

    asyncio.run(main())


def test_start_refused_when_the_state_path_holds_another_identity(tmp_path: Path) -> None:
    async def main() -> None:
        params = setup(tmp_path, node_uuid=U2)
        (tmp_path / "shared" / "compute_id").write_text(U1 + "\n")
        agent = make_agent("h1", "instanceha:nova-compute", params, str(tmp_path / "state"))
        result = await agent.start(10)
        assert result.status == Status.NOT_CONFIGURED and "another node" in result.output
        assert not (tmp_path / "argv").exists()  # nothing was started
        assert (tmp_path / "shared" / "compute_id").read_text().strip() == U1  # and nothing overwritten

    asyncio.run(main())


def test_a_nova_compute_that_exits_during_its_start_fails_the_start(tmp_path: Path) -> None:
    async def main() -> None:
        params = {**setup(tmp_path), "binary": str(stand_in(tmp_path, exits=True))}
        agent = make_agent("h1", "instanceha:nova-compute", params, str(tmp_path / "state"))
        result = await agent.start(10)
        assert result.status in (Status.ERROR, Status.NOT_RUNNING), result
        assert (await agent.monitor(5)).status == Status.NOT_RUNNING

    asyncio.run(main())


def test_installed_names_what_is_missing(tmp_path: Path) -> None:
    params = setup(tmp_path)
    no_host = make_agent("h1", "instanceha:nova-compute", {**params, "additional_config": ""}, str(tmp_path))
    assert "no Nova host identity" in (no_host.installed() or "")
    gone = make_agent("h1", "instanceha:nova-compute", {**params, "config": "/nonexistent/nova.conf"}, str(tmp_path))
    assert "/nonexistent/nova.conf" in (gone.installed() or "")
    odd = make_agent("h1", "instanceha:nova-compute", {**params, "user": "nova"}, str(tmp_path))
    assert "user" in (odd.installed() or "")
    nobin = make_agent("h1", "instanceha:nova-compute", {**params, "binary": "/nonexistent/nc"}, str(tmp_path))
    assert "not installed" in (nobin.installed() or "")
    assert os.path.isdir(tmp_path)


def test_nova_not_answering_does_not_fail_the_start_or_the_monitor(tmp_path: Path) -> None:
    # A clouds.yaml whose Nova endpoint is a closed port: nova-compute works without Nova's API,
    # so the start ends at its timeout as a success that says Nova could not tell.
    clouds = tmp_path / "clouds.yaml"
    nova = "http://127.0.0.1:9/v2.1"
    clouds.write_text(f"clouds:\n  lab:\n    auth_type: admin_token\n    auth: {{endpoint: '{nova}', token: t}}\n"
                      f"    region_name: RegionOne\n    compute_endpoint_override: '{nova}'\n")

    async def main() -> None:
        params = setup(tmp_path, clouds_yaml=str(clouds), cloud="lab")
        agent = make_agent("h1", "instanceha:nova-compute", params, str(tmp_path / "state"))
        started = await agent.start(8)
        assert started.status == Status.SUCCESS and "Nova could not tell" in started.output, started
        watched = await agent.monitor(5)
        assert watched.status == Status.SUCCESS and "Nova could not tell" in watched.output, watched
        assert (await agent.stop(10)).status == Status.SUCCESS

    asyncio.run(main())
