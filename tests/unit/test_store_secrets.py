"""Secret parameters never reach what operators print; a masked configuration is never applied."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.coord.secrets import MASK, Redactor, mask_spec, refuse_masked, secret_name, secret_values
from hakeeper.errors import InputError
from hakeeper.spec import ClusterSpec
from hakeeper.spec.crm_render import render_crm
from hakeeper.spec.loader import dump_spec


def _spec(
    params: dict[str, str], secret: list[str] | None = None, node_params: dict[str, str] | None = None
) -> ClusterSpec:
    primitive: dict[str, object] = {"id": "db", "agent": "ocf:heartbeat:galera", "params": params}
    if secret is not None:
        primitive["secret"] = secret
    if node_params:
        primitive["node-params"] = {"n1": node_params}
    return ClusterSpec.model_validate({"nodes": [{"name": "n1"}], "resources": {"primitives": [primitive]}})


@pytest.mark.parametrize(
    "name", ["password", "check_passwd", "replication_passwd", "auth_pass", "ha_vrrp_auth_password", "os-password",
             "api_token", "erlang_cookie", "secret", "ssl_private_key", "PASSWORD"]
)
def test_secret_names(name: str) -> None:
    assert secret_name(name)


@pytest.mark.parametrize("name", ["passive", "bypass", "ip", "user", "keyfile", "tokenizer", "compass"])
def test_ordinary_names(name: str) -> None:
    assert not secret_name(name)


SECRET = st.text(alphabet="QXZJWVKqxzjwvk0123456789", min_size=6, max_size=16)


@settings(max_examples=100, deadline=None)
@given(listed=SECRET, named=SECRET, on_node=SECRET)
def test_no_secret_value_in_config_show(listed: str, named: str, on_node: str) -> None:
    spec = _spec({"wsrep": listed, "check_passwd": named, "user": "monitor"}, ["wsrep"], {"check_passwd": on_node})
    assert secret_values(spec) == {listed, named, on_node}
    for shown in (dump_spec(mask_spec(spec)), render_crm(mask_spec(spec))):
        for value in (listed, named, on_node):
            assert value not in shown
        assert "monitor" in shown and MASK in shown
    assert spec.resources.primitives[0].params["wsrep"] == listed  # the original is untouched


def test_redactor_masks_values_in_text_and_secret_fields() -> None:
    redact = Redactor.for_spec(_spec({"password": "Hunter2!x", "ip": "10.0.0.5"}))
    event = {"kind": "monitor-failed", "message": "mysql -uroot -pHunter2!x: access denied", "node": "n1",
             "vrrp": {"auth_pass": "vrrpPW", "vrid": 51}, "ip": "10.0.0.5"}
    shown = redact.doc(event)
    assert "Hunter2!x" not in str(shown) and "vrrpPW" not in str(shown)
    assert shown["message"] == f"mysql -uroot -p{MASK}: access denied"
    assert shown["vrrp"] == {"auth_pass": MASK, "vrid": 51} and shown["ip"] == "10.0.0.5"


def test_masked_or_unknown_secrets_are_refused() -> None:
    refuse_masked(_spec({"password": "real"}, ["password"]), "c.yaml")
    with pytest.raises(InputError) as err:
        refuse_masked(_spec({"password": MASK}), "c.yaml")
    assert "c.yaml" in str(err.value) and "params.password" in str(err.value) and "--show-secrets" in str(err.value)
    with pytest.raises(InputError, match=r"crm resource secret.*list password under `secret:`"):
        refuse_masked(_spec({"password": "lrm://"}), "c.yaml")
    with pytest.raises(InputError, match="has no parameter 'pasword' to keep secret"):
        refuse_masked(_spec({"password": "x"}, ["pasword"]), "c.yaml")


def test_log_records_are_masked_with_the_configuration_in_force() -> None:
    import io
    import logging

    from hakeeper.coord.secrets import SecretLogFilter

    current: list[ClusterSpec | None] = [None]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(SecretLogFilter(lambda: current[0]))
    log = logging.getLogger("test-secret-filter")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("monitor of db failed: %s", "mysql -pFirstPW1 refused")
        current[0] = _spec({"password": "FirstPW1"})
        log.warning("monitor of db failed: %s", "mysql -pFirstPW1 refused")
        current[0] = _spec({"password": "SecondPW2"})  # a new configuration, a new password
        log.warning("start: -pSecondPW2 and the old -pFirstPW1")
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("mysql -pFirstPW1 refused")  # no configuration yet: nothing known
    assert lines[1] == f"monitor of db failed: mysql -p{MASK} refused"
    assert lines[2] == f"start: -p{MASK} and the old -pFirstPW1"
