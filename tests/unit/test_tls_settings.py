"""Store settings from flags, variables and the config file: precedence, and bad input named by
file, line and setting, with no secret echoed."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.coord.settings import add_security_args, apply_config, etcd_security, read_config
from hakeeper.errors import InputError


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--etcd")
    p.add_argument("--store")
    add_security_args(p)
    return p.parse_args(list(argv))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HAKEEPER_CONFIG", "HAKEEPER_ETCD", "HAKEEPER_STORE", "HAKEEPER_CACERT", "HAKEEPER_CERT",
                 "HAKEEPER_KEY", "HAKEEPER_ETCD_USER", "HAKEEPER_ETCD_PASSWORD", "HAKEEPER_ETCD_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("hakeeper.coord.settings.DEFAULT_CONFIG", "/nonexistent/hakeeper.conf")


def test_flag_beats_variable_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "hakeeper.conf"
    conf.write_text(
        "# site settings\n\netcd = 10.0.0.1:2379\ncacert = /file/ca.pem\ncert = /file/c.pem\nkey = /file/k.pem\n"
    )
    monkeypatch.setenv("HAKEEPER_CERT", "/env/c.pem")
    args = _args("--config", str(conf), "--key", "/flag/k.pem")
    apply_config(args)
    got = (args.etcd, args.cacert, args.cert, args.key)
    assert got == ("10.0.0.1:2379", "/file/ca.pem", "/env/c.pem", "/flag/k.pem")
    assert args.setting_sources["cacert"] == f"{conf}:4" and args.setting_sources["cert"] == "HAKEEPER_CERT"
    # A store given by flag or variable is taken whole: the file's etcd is not mixed in.
    args = _args("--config", str(conf), "--store", "/run/s.sock")
    apply_config(args)
    assert args.etcd is None and args.store == "/run/s.sock"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("etcd = 10.0.0.1:2379\ncacrt = /x\n", ":2: cacrt:", "unknown setting"),
        ("cert = /a\ncert = /b\n", ":2: cert:", "set twice (first on line 1)"),
        ("etcd = 10.0.0.1\n", ":1", "no port"),
        ("key\n", ":1", "expected `name = value`"),
        ("etcd-password = hunter2\n", ":1: etcd-password:", "no password in the config file"),
        ("cert =\n", ":1: cert:", "empty value"),
    ],
)
def test_bad_config_is_located(tmp_path: Path, text: str, where: str, message: str) -> None:
    conf = tmp_path / "hakeeper.conf"
    conf.write_text(text)
    with pytest.raises(InputError) as err:
        read_config(str(conf))
    shown = str(err.value)
    assert f"{conf}{where}" in shown and message in shown and "hunter2" not in shown, shown


def test_missing_named_config_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAKEEPER_CONFIG", str(tmp_path / "absent.conf"))
    with pytest.raises(InputError, match="config file not found"):
        apply_config(_args())


def test_password_from_file_or_variable_never_a_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _args("--etcd-password", "hunter2")
    assert "hunter2" not in capsys.readouterr().err
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    args = _args("--etcd-user", "u", "--etcd-password-file", str(secret))
    apply_config(args)
    security = etcd_security(args)
    assert security is not None and security.password == "s3cret" and "s3cret" not in repr(security)
    args = _args("--etcd-user", "u")
    apply_config(args)
    with pytest.raises(InputError, match="needs a password"):
        etcd_security(args)
    monkeypatch.setenv("HAKEEPER_ETCD_PASSWORD", "from-env")
    security = etcd_security(args)
    assert security is not None and security.password == "from-env"
    (tmp_path / "empty").write_text("")
    args = _args("--etcd-user", "u", "--etcd-password-file", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="is empty"):
        etcd_security(args)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_as_input(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    conf = tmp_path_factory.mktemp("c") / "hakeeper.conf"
    conf.write_text(text)
    with contextlib.suppress(InputError):
        read_config(str(conf))
