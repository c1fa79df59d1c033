"""`instanceha:nova-compute`, the decisions (pure: text and values in, decisions out).

Seed 002 runs one nova-compute per Nova host identity (`p_nova-compute-host1` ...): the process
believes it is `host1` wherever it runs, so when host1's server dies the cluster starts host1's
nova-compute on another node and Nova brings host1's instances back there
(`resume_guests_state_on_host_boot`). Nova accepts the identity only with the host's node
identity file, `<state_path>/compute_id` (since Nova 2023.1): the state_path lives on storage
every node sees, or the UUID is pinned in the resource (`node_uuid`) and written where missing.

What is decided here:
- the settings from the resource's params and the text of its config files (`settings`): the
  Nova host comes from `host`, else from the config files (the last one that sets it wins, as
  oslo.config reads them); without either, nothing is started (a nova-compute that takes the
  node's hostname would claim another identity on every node);
- the config file hakeeper adds last on the command line (`overlay`), so the identity and the
  state_path Nova uses are the ones decided here;
- whether the node identity file is usable (`judge_identity`);
- what a monitor reports from the process and Nova's view of the service (`judge_monitor`);
- the translation of Pacemaker's `ocf:openstack:nova-compute` params (`from_ocf`), for the import.
"""

from __future__ import annotations

import configparser
import math
import shlex
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

OCF_AGENT = "ocf:openstack:nova-compute"
NATIVE_AGENT = "instanceha:nova-compute"
DEFAULT_CONFIG = "/etc/nova/nova.conf"
DEFAULT_STATE_PATH = "/var/lib/nova"  # Nova's own default
DEFAULT_BINARY = "nova-compute"
IDENTITY_FILE = "compute_id"
# How long a started nova-compute may go without Nova seeing it up before a monitor fails it: its
# start (imports, the first report) takes seconds to tens of seconds on a loaded host.
DEFAULT_UP_GRACE = 120.0
KNOWN_PARAMS = frozenset({"host", "config", "additional_config", "state_path", "node_uuid", "binary",
                          "additional_parameters", "clouds_yaml", "cloud", "up_grace"})


class SettingsError(ValueError):
    """The params or config files do not say how to run this nova-compute (the reason)."""


@dataclass(frozen=True)
class Settings:
    host: str  # the Nova host identity the process claims
    state_path: str  # where Nova keeps compute_id and the instances (shared between nodes)
    config_files: tuple[str, ...]  # the operator's files, in order (hakeeper's overlay follows)
    binary: str
    extra_args: tuple[str, ...]
    node_uuid: str | None  # pinned node identity, written into state_path when missing
    clouds_yaml: str | None  # with `cloud`: ask Nova whether the service is up
    cloud: str | None
    up_grace: float


def config_files(params: Mapping[str, str]) -> tuple[str, ...]:
    """`config` (default /etc/nova/nova.conf), then every `additional_config` (comma or space
    separated), in the order oslo.config will read them."""
    extra = [f for f in params.get("additional_config", "").replace(",", " ").split() if f]
    return (params.get("config") or DEFAULT_CONFIG, *extra)


def default_option(texts: Sequence[str], option: str) -> str | None:
    """`option` of the [DEFAULT] section as nova-compute would see it with these files in order
    (the last file that sets it wins); None when none does. A file that does not parse is
    skipped: Nova will say why when it starts."""
    found: str | None = None
    for text in texts:
        parser = configparser.ConfigParser(strict=False, interpolation=None, default_section="\0none")
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        if parser.has_option("DEFAULT", option):
            value = parser.get("DEFAULT", option).strip()
            found = value or found
    return found


def settings(params: Mapping[str, str], texts: Sequence[str]) -> Settings:
    """The settings from the params and the text of the config files (same order as
    `config_files`). Raises SettingsError with the reason."""
    host = (params.get("host") or "").strip() or default_option(texts, "host")
    if not host:
        files = ", ".join(config_files(params))
        raise SettingsError(f"no Nova host identity: give the parameter `host` or set host= in [DEFAULT] of {files}")
    if any(c.isspace() for c in host):
        raise SettingsError(f"host {host!r} holds whitespace")
    state_path = (params.get("state_path") or "").strip() or default_option(texts, "state_path") or DEFAULT_STATE_PATH
    pinned = (params.get("node_uuid") or "").strip() or None
    if pinned is not None and _uuid(pinned) is None:
        raise SettingsError(f"node_uuid {pinned!r} is not a UUID")
    clouds_yaml, cloud = params.get("clouds_yaml") or None, params.get("cloud") or None
    if (clouds_yaml is None) != (cloud is None):
        raise SettingsError("clouds_yaml and cloud go together (they let the monitor ask Nova)")
    try:
        grace = float(params.get("up_grace") or DEFAULT_UP_GRACE)
        extra = tuple(shlex.split(params.get("additional_parameters", "")))
    except ValueError as exc:
        raise SettingsError(f"up_grace or additional_parameters: {exc}") from None
    return Settings(host=host, state_path=state_path, config_files=config_files(params),
                    binary=params.get("binary") or DEFAULT_BINARY, extra_args=extra, node_uuid=pinned,
                    clouds_yaml=clouds_yaml, cloud=cloud, up_grace=grace)


def overlay(s: Settings) -> str:
    """The config file read last: the identity and state_path decided here win over the files."""
    return ("# Written by hakeeper (instanceha:nova-compute): read last, so these win.\n"
            f"[DEFAULT]\nhost = {s.host}\nstate_path = {s.state_path}\n")


def argv(s: Settings, overlay_path: str) -> list[str]:
    files = [arg for f in (*s.config_files, overlay_path) for arg in ("--config-file", f)]
    return [s.binary, *files, *s.extra_args]


# ----- the node identity file -------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    action: Literal["use", "write", "first-start", "refuse"]
    node_uuid: str | None
    reason: str


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def judge_identity(file_text: str | None, pinned: str | None) -> Identity:
    """What to do with `<state_path>/compute_id` (its text, None when absent) before a start.

    Nova refuses to start a host whose service it knows without the UUID that host had; with a
    different UUID it would take the node for another one. So: a file with a UUID is used (when
    the resource pins one, it must be that one); a missing file gets the pinned UUID; a missing
    file and nothing pinned is a first start, where Nova makes the file (on shared storage the
    next node finds it); a file that holds no UUID is never overwritten (hakeeper did not write
    it), the start is refused."""
    pinned_uuid = _uuid(pinned) if pinned else None
    if pinned and pinned_uuid is None:
        return Identity("refuse", None, f"node_uuid {pinned!r} is not a UUID")
    if file_text is None:
        if pinned_uuid is not None:
            return Identity("write", pinned_uuid, f"{IDENTITY_FILE} missing: writing the pinned {pinned_uuid}")
        return Identity("first-start", None, f"no {IDENTITY_FILE} yet: Nova makes one at the first start")
    found = _uuid(file_text)
    if found is None:
        return Identity("refuse", None, f"{IDENTITY_FILE} holds no UUID ({file_text.strip()[:40]!r}): "
                                        "fix or remove it")
    if pinned_uuid is not None and found != pinned_uuid:
        return Identity("refuse", found, f"{IDENTITY_FILE} holds {found} but node_uuid is {pinned_uuid}: "
                                         "this state_path belongs to another node")
    return Identity("use", found, f"node identity {found}")


# ----- the monitor --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NovaView:
    """Nova's os-services entry for the host, or why Nova could not tell (`error`)."""

    state: str = ""  # up / down
    forced_down: bool = False
    updated_at: float = 0.0  # the service's last report (epoch seconds; Nova keeps whole seconds)
    error: str | None = None


Verdict = Literal["running", "not-running", "failed"]


def reported_since(nova: NovaView, started_at: float) -> bool:
    """Nova has a report made after the process began. Nova keeps whole seconds, so only a report
    from the next second on is surely this process's (nova-compute takes seconds to make its
    first one)."""
    return nova.error is None and nova.updated_at >= math.floor(started_at) + 1


def seen_up(nova: NovaView, started_at: float) -> bool:
    """Nova sees *this* process up: the service is up by a report made after the process began.
    Right after an identity move Nova still says "up" from the dead node's last report (for
    service_down_time), which says nothing of the new process."""
    return nova.state == "up" and reported_since(nova, started_at)


def start_done(nova: NovaView, started_at: float) -> bool:
    """A start is over when Nova has this process's report: up, or forced down (someone, an
    evacuator say, marked the host down; Nova counts it down whatever it reports)."""
    return reported_since(nova, started_at) and (nova.state == "up" or nova.forced_down)


def judge_monitor(alive: bool, nova: NovaView | None, started_at: float, now: float,
                  grace: float) -> tuple[Verdict, str]:
    """The monitor's answer from the process (alive or not, since `started_at`) and Nova's view
    (None: not asked). Nova not answering is no failure of nova-compute (restarting it would not
    help), nor is the service forced down by someone; Nova not seeing this process up past the
    grace period is: the process runs but does not work (it lost its message queue, it hangs, or
    Nova refused its identity), and a restart may cure it."""
    running_for = now - started_at
    if not alive:
        return "not-running", "nova-compute is not running"
    if nova is None:
        return "running", "running"
    if nova.error is not None:
        return "running", f"running; Nova could not tell: {nova.error}"
    if seen_up(nova, started_at):
        return "running", "running; Nova sees the service up"
    if nova.forced_down:
        return "running", "running; Nova has the service forced down"
    if running_for < grace:
        return "running", f"running for {running_for:.0f} s; Nova has no report from it yet"
    service = nova.state or "unknown"
    return "failed", f"running for {running_for:.0f} s but Nova has no report from it (service {service})"


# ----- the crm import -----------------------------------------------------------------------------

# Pacemaker's ocf:openstack:nova-compute params without a meaning here, and why.
_OCF_DROPPED = {
    "user": "hakeeper runs nova-compute as the agent's user",
    "pid": "hakeeper tracks the process itself",
    "database_server_port": "nova-compute has no database connection since Nova's conductor",
    "amqp_server_port": "the monitor asks Nova whether the service is up (give clouds_yaml and cloud) "
                        "instead of looking for a connection to this port",
    "zeromq": "Nova dropped ZeroMQ",
    "libvirt_uri": "nova.conf's [libvirt] connection_uri says it",
}
_OCF_KEPT = ("binary", "config", "additional_config", "additional_parameters")


def from_ocf(params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Params of an `ocf:openstack:nova-compute` primitive -> those of instanceha:nova-compute,
    and a warning for each param that has no meaning here (dropped). A warning names the param,
    never its value: a dropped param may hold a secret."""
    kept = {k: v for k, v in params.items() if k in _OCF_KEPT}
    notes = [f"param {k} dropped: {_OCF_DROPPED.get(k, 'instanceha:nova-compute has no such param')}"
             for k in params if k not in _OCF_KEPT]
    return kept, notes
