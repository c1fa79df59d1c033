"""instanceha:nova-compute's decisions (instanceha/novacompute.py): the settings from params and
config files, the overlay, the node identity file, the monitor's verdict, the OCF translation."""

from __future__ import annotations

import configparser
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.instanceha import novacompute as nc

U1, U2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def test_host_from_the_last_config_file_that_sets_it() -> None:
    base = "[DEFAULT]\nhost = node-a\nstate_path = /srv/nova\n[libvirt]\nhost = not-this\n"
    extra = "[DEFAULT]\nhost = host1\n"
    s = nc.settings({"additional_config": "/etc/nova/nova-compute-host1.conf"}, [base, extra])
    assert (s.host, s.state_path) == ("host1", "/srv/nova")
    assert s.config_files == ("/etc/nova/nova.conf", "/etc/nova/nova-compute-host1.conf")
    # The param wins over the files; an empty host= in a later file leaves the earlier one.
    assert nc.settings({"host": "h9"}, [base, extra]).host == "h9"
    assert nc.settings({}, [extra, "[DEFAULT]\nhost =\n"]).host == "host1"
    assert nc.settings({}, [extra]).state_path == nc.DEFAULT_STATE_PATH


def test_settings_refuse_what_cannot_run() -> None:
    with pytest.raises(nc.SettingsError, match=r"no Nova host identity.*nova-compute-host1\.conf"):
        nc.settings({"additional_config": "/etc/nova/nova-compute-host1.conf"}, ["[DEFAULT]\n", "not ini ["])
    with pytest.raises(nc.SettingsError, match="not a UUID"):
        nc.settings({"host": "h", "node_uuid": "nope"}, [])
    with pytest.raises(nc.SettingsError, match="go together"):
        nc.settings({"host": "h", "clouds_yaml": "/x"}, [])
    with pytest.raises(nc.SettingsError, match="whitespace"):
        nc.settings({"host": "h 1"}, [])


def test_argv_reads_the_overlay_last_and_it_sets_identity_and_state_path() -> None:
    s = nc.settings({"host": "host1", "state_path": "/shared/host1", "additional_config": "/a.conf,/b.conf",
                     "binary": "/opt/nova/bin/nova-compute", "additional_parameters": "--debug"}, ["", "", ""])
    assert nc.argv(s, "/run/x.conf") == ["/opt/nova/bin/nova-compute", "--config-file", "/etc/nova/nova.conf",
                                         "--config-file", "/a.conf", "--config-file", "/b.conf",
                                         "--config-file", "/run/x.conf", "--debug"]
    parser = configparser.ConfigParser()
    parser.read_string(nc.overlay(s))
    assert parser["DEFAULT"]["host"] == "host1" and parser["DEFAULT"]["state_path"] == "/shared/host1"


HOSTS = st.text(alphabet="abcdefghij0123456789-.", min_size=1, max_size=12)


@given(st.lists(st.one_of(st.none(), HOSTS), min_size=1, max_size=5), st.one_of(st.none(), HOSTS))
def test_host_is_what_oslo_config_would_read(per_file: list[str | None], param: str | None) -> None:
    texts = [f"[DEFAULT]\nhost = {h}\n" if h else "[DEFAULT]\ndebug = true\n" for h in per_file]
    set_in_files = [h for h in per_file if h]
    expected = param or (set_in_files[-1] if set_in_files else None)
    params = {"host": param} if param else {}
    if expected is None:
        with pytest.raises(nc.SettingsError):
            nc.settings(params, texts)
    else:
        assert nc.settings(params, texts).host == expected


def test_identity_file_decisions() -> None:
    assert nc.judge_identity(None, None).action == "first-start"
    assert nc.judge_identity(None, U1) == nc.Identity("write", U1, nc.judge_identity(None, U1).reason)
    assert nc.judge_identity(f"{U1}\n", None).node_uuid == U1
    assert nc.judge_identity(f"{U1}\n", U1.upper()).action == "use"
    mismatch = nc.judge_identity(U1, U2)
    assert mismatch.action == "refuse" and "another node" in mismatch.reason
    garbage = nc.judge_identity("hello\n", None)
    assert garbage.action == "refuse" and "holds no UUID" in garbage.reason
    assert nc.judge_identity(None, "not-a-uuid").action == "refuse"


@given(st.one_of(st.none(), st.uuids().map(str), st.text(max_size=40)),
       st.one_of(st.none(), st.uuids().map(str), st.text(max_size=40)))
def test_identity_never_overwrites_and_never_starts_with_another_identity(file_text: str | None,
                                                                           pinned: str | None) -> None:
    verdict = nc.judge_identity(file_text, pinned or None)
    in_file = nc._uuid(file_text) if file_text is not None else None
    pinned_ok = nc._uuid(pinned) if pinned else None
    # A file is written only where there was none, with the pinned UUID.
    if verdict.action == "write":
        assert file_text is None and verdict.node_uuid == pinned_ok is not None
    # Nova starts (use / first-start) only with the identity the file holds, and never against a pin.
    if verdict.action == "use":
        assert verdict.node_uuid == in_file is not None and (pinned_ok is None or pinned_ok == in_file)
    if verdict.action == "first-start":
        assert file_text is None and not pinned
    if file_text is not None and in_file is None:
        assert verdict.action == "refuse"
    if pinned and pinned_ok is None:
        assert verdict.action == "refuse"


def test_monitor_verdicts() -> None:
    t0 = 1000.4  # the process began
    up, down = nc.NovaView(state="up", updated_at=1500), nc.NovaView(state="down", updated_at=1000)
    assert nc.judge_monitor(False, up, t0, 1500, 120)[0] == "not-running"
    assert nc.judge_monitor(True, None, t0, 1500, 120)[0] == "running"
    assert nc.judge_monitor(True, up, t0, 1500, 120)[0] == "running"
    assert nc.judge_monitor(True, down, t0, t0 + 30, 120)[0] == "running"  # still starting
    verdict, text = nc.judge_monitor(True, down, t0, t0 + 500, 120)
    assert verdict == "failed" and "Nova has no report from it" in text
    # Nova not answering, or someone forcing the service down, is no failure of the process.
    assert nc.judge_monitor(True, nc.NovaView(error="Nova does not answer"), t0, t0 + 500, 120)[0] == "running"
    forced = nc.NovaView(state="down", forced_down=True, updated_at=1000)
    assert nc.judge_monitor(True, forced, t0, t0 + 500, 120)[0] == "running"


def test_up_from_the_dead_nodes_last_report_is_not_this_process() -> None:
    # Right after the move Nova says "up" from the report the dead node made before the start.
    stale = nc.NovaView(state="up", updated_at=1000)
    assert not nc.seen_up(stale, 1000.4)
    assert nc.judge_monitor(True, stale, 1000.4, 1000.4 + 500, 120)[0] == "failed"
    assert nc.seen_up(nc.NovaView(state="up", updated_at=1001), 1000.4)
    assert not nc.seen_up(nc.NovaView(state="down", updated_at=1001), 1000.4)


def test_a_start_is_over_with_this_process_report_up_or_forced_down() -> None:
    assert nc.start_done(nc.NovaView(state="up", updated_at=1001), 1000.4)
    assert nc.start_done(nc.NovaView(state="down", forced_down=True, updated_at=1001), 1000.4)
    assert not nc.start_done(nc.NovaView(state="up", updated_at=1000), 1000.4)  # the dead node's report
    assert not nc.start_done(nc.NovaView(state="down", updated_at=1001), 1000.4)
    assert not nc.start_done(nc.NovaView(error="Nova does not answer", state="up", updated_at=1001), 1000.4)


@given(st.floats(0, 1e6), st.floats(0, 1e6), st.sampled_from(["up", "down"]), st.booleans())
def test_seen_up_only_by_a_report_made_after_the_start(started: float, report: float, state: str,
                                                       forced: bool) -> None:
    # Nova keeps whole seconds: a report at `report` shows as its floor.
    view = nc.NovaView(state=state, forced_down=forced, updated_at=float(int(report)))
    if nc.seen_up(view, started):
        assert state == "up" and report > started
    if nc.start_done(view, started):
        assert report > started and (state == "up" or forced)


def test_ocf_params_translated_and_the_rest_dropped_with_a_reason() -> None:
    params, notes = nc.from_ocf({"additional_config": "/etc/nova/h1.conf", "config": "/etc/nova/nova.conf",
                                 "user": "nova", "amqp_server_port": "5672", "whatever": "1"})
    assert params == {"additional_config": "/etc/nova/h1.conf", "config": "/etc/nova/nova.conf"}
    assert len(notes) == 3
    assert any(n.startswith("param user dropped: hakeeper runs") for n in notes)
    assert not any("nova" in n.split(":")[0] or "5672" in n for n in notes)  # values never echoed
    assert any("amqp_server_port" in n and "clouds_yaml" in n for n in notes)
    assert any("whatever" in n and "no such param" in n for n in notes)
    assert set(params) <= nc.KNOWN_PARAMS
