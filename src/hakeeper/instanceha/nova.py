"""The Nova edge: the few compute API calls a recovery needs, through openstacksdk's connection
(clouds.yaml, Keystone, endpoint discovery), each with its microversion pinned.

2.68 for everything: services by id with `forced_down` (>= 2.53), the flavor's extra specs in a
server (>= 2.47), tags (>= 2.26), and an evacuation that leaves the server ACTIVE (2.68-2.94; from
2.95 Nova leaves evacuated servers SHUTOFF). Every failure becomes a NovaError with a reason an
operator can act on and whether trying again can help; nothing here raises anything else.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeVar

from hakeeper.instanceha.recovery import NovaInstance

MICROVERSION = "2.68"
T = TypeVar("T")


class NovaError(Exception):
    def __init__(self, reason: str, permanent: bool = False, unsure: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent  # the same call can only fail the same way
        # The request may have reached Nova, which may still act on it: no answer came in time (a
        # read timeout: Nova goes on with a request whose client gave up), the connection broke
        # after sending, or Nova failed with 5xx part way. For an evacuate call this is not a
        # refusal: calling again could make a second evacuation.
        self.unsure = unsure


@dataclass(frozen=True)
class Service:
    id: str
    host: str
    state: str  # up / down
    status: str  # enabled / disabled
    forced_down: bool
    updated_at: str


def nova_time(text: str | None) -> float:
    """Nova's timestamps are UTC without a zone ("2026-12-06T05:01:02.000000")."""
    if not text:
        return 0.0
    try:
        return calendar.timegm(time.strptime(text.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0


class Nova:
    def __init__(self, conn: Any, timeout: float = 20.0) -> None:
        self.conn = conn  # openstacksdk's Connection; its compute proxy is a keystoneauth adapter
        self.timeout = timeout

    @classmethod
    def from_clouds_yaml(cls, path: str, cloud: str, timeout: float = 20.0) -> Nova:
        """A client for `cloud` in the clouds.yaml at `path`. Nothing is called yet: credentials that
        do not authenticate show on the first call, as a NovaError."""
        try:
            import openstack.config
            import openstack.connection

            region = openstack.config.OpenStackConfig(config_files=[path]).get_one(cloud=cloud)
            return cls(openstack.connection.Connection(config=region), timeout)
        except Exception as exc:  # openstacksdk raises many kinds for a bad file or cloud
            raise NovaError(f"clouds.yaml {path}, cloud {cloud!r}: {_one_line(exc)}", permanent=True) from exc

    # ----- calls -----

    def _call(self, what: str, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        from keystoneauth1 import exceptions as ks

        try:
            # The proxy is made on first use (it discovers the endpoint): Nova being down then is a
            # failed call like any other, tried again later.
            response = self.conn.compute.request(
                url, method, json=body, microversion=MICROVERSION, raise_exc=False, timeout=self.timeout
            )
        except ks.Unauthorized as exc:
            raise NovaError(f"{what}: the clouds.yaml credentials do not authenticate: {_one_line(exc)}") from exc
        except ks.ConnectionError as exc:
            # keystoneauth reports a read timeout as ConnectTimeout and a connection dropped after the
            # request went out as ConnectFailure: either way the request may be in Nova's hands.
            raise NovaError(f"{what}: Nova does not answer: {_one_line(exc)}", unsure=True) from exc
        except ks.ClientException as exc:  # endpoint not found, discovery: nothing was sent
            raise NovaError(f"{what}: Nova does not answer: {_one_line(exc)}") from exc
        except Exception as exc:
            raise NovaError(f"{what}: {_one_line(exc)}", unsure=True) from exc
        if response.status_code >= 400:
            hint = " (the clouds.yaml credentials were refused)" if response.status_code in (401, 403) else ""
            raise NovaError(
                f"{what}: Nova answered {response.status_code}{hint}: {_fault(response)}",
                permanent=response.status_code == 404,
                unsure=response.status_code >= 500,
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise NovaError(f"{what}: Nova's answer is not JSON") from exc

    def warm_up(self) -> None:
        """One cheap call, so the client is built and the endpoint discovered before it matters."""
        self._call("nova-compute services", "GET", "/os-services?binary=nova-compute")

    def service(self, host: str) -> Service:
        doc = self._call(f"nova-compute of {host}", "GET", f"/os-services?binary=nova-compute&host={host}")
        services = [s for s in doc.get("services", []) if s.get("host") == host]
        if not services:
            raise NovaError(f"Nova knows no nova-compute service on host {host!r}", permanent=True)
        s = services[0]
        return Service(
            str(s.get("id")),
            host,
            str(s.get("state")),
            str(s.get("status")),
            bool(s.get("forced_down")),
            str(s.get("updated_at") or ""),
        )

    def force_down(self, host: str) -> str:
        """Mark nova-compute on `host` down (Nova accepts evacuations from it at once); returns the
        service's last report time, which moves again when the host's nova-compute runs again."""
        service = self.service(host)
        self._call(f"force down {host}", "PUT", f"/os-services/{service.id}", {"forced_down": True})
        return service.updated_at

    def unforce(self, host: str) -> None:
        service = self.service(host)
        self._call(f"unset forced_down on {host}", "PUT", f"/os-services/{service.id}", {"forced_down": False})

    def enable(self, host: str) -> None:
        service = self.service(host)
        if service.status != "enabled":
            self._call(f"enable {host}", "PUT", f"/os-services/{service.id}", {"status": "enabled"})

    def _servers(self, query: str) -> list[dict[str, Any]]:
        doc = self._call("list servers", "GET", f"/servers/detail?all_tenants=1{query}")
        return [s for s in doc.get("servers", []) if isinstance(s, dict)]

    def on_host(self, host: str, ha_tag: str, ha_flavor_key: str) -> list[NovaInstance]:
        self.service(host)  # a host Nova does not know is an error, not an empty host
        return [_instance(s, ha_tag, ha_flavor_key) for s in self._servers(f"&host={host}")]

    def instances(
        self, ids: AbstractSet[str], ha_tag: str, ha_flavor_key: str, since: float | None = None
    ) -> dict[str, NovaInstance]:
        """Nova's current view of these instances (one listing, whatever their host); with `since`
        (wall time), only those updated since then, deleted ones included (status DELETED)."""
        if not ids:
            return {}
        query = "" if since is None else "&changes-since=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
        return {s["id"]: _instance(s, ha_tag, ha_flavor_key) for s in self._servers(query) if s.get("id") in ids}

    def evacuations(self, iid: str, since: float) -> int:
        """Evacuate actions Nova recorded for the instance since `since` (Nova's own count)."""
        doc = self._call(f"actions of {iid}", "GET", f"/servers/{iid}/os-instance-actions")
        return sum(
            1
            for a in doc.get("instanceActions", [])
            if a.get("action") == "evacuate" and nova_time(a.get("start_time")) >= since - 1
        )

    def evacuation_status(self, iid: str, since: float) -> str:
        """The status of Nova's migration record of the instance's latest evacuation since `since`
        ("" if none): "done", "failed" and "error" are final."""
        doc = self._call(
            f"migrations of {iid}", "GET", f"/os-migrations?instance_uuid={iid}&migration_type=evacuation"
        )
        mine = [
            m
            for m in doc.get("migrations", [])
            if m.get("instance_uuid") == iid
            and m.get("migration_type", "evacuation") == "evacuation"
            and nova_time(m.get("created_at")) >= since - 1
        ]
        latest = max(mine, key=lambda m: (nova_time(m.get("created_at")), int(m.get("id") or 0)), default=None)
        return str(latest.get("status") or "") if latest else ""

    def evacuate(self, iid: str, target: str) -> None:
        body: dict[str, Any] = {"evacuate": {"host": target} if target else {}}
        self._call(f"evacuate {iid}" + (f" to {target}" if target else ""), "POST", f"/servers/{iid}/action", body)


def guarded(call: Callable[[], T]) -> tuple[T | None, NovaError | None]:
    try:
        return call(), None
    except NovaError as exc:
        return None, exc


def _instance(s: dict[str, Any], ha_tag: str, ha_flavor_key: str) -> NovaInstance:
    flavor = s.get("flavor")
    specs = flavor.get("extra_specs") if isinstance(flavor, dict) else None
    specs = specs if isinstance(specs, dict) else {}
    ha = bool(ha_tag and ha_tag in (s.get("tags") or [])) or bool(
        ha_flavor_key and str(specs.get(ha_flavor_key, "")).lower() in ("true", "1", "yes")
    )
    return NovaInstance(
        id=str(s.get("id")),
        name=str(s.get("name", "")),
        host=str(s.get("OS-EXT-SRV-ATTR:host") or ""),
        status=str(s.get("status", "")),
        task_state=s.get("OS-EXT-STS:task_state") or None,
        ha=ha,
    )


def _fault(response: Any) -> str:
    try:
        doc = response.json()
        inner = next(iter(doc.values())) if isinstance(doc, dict) and doc else {}
        return _one_line(inner.get("message") if isinstance(inner, dict) else doc)
    except (ValueError, AttributeError, StopIteration):
        return _one_line(response.text)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:500]
