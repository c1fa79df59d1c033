"""The lab's configuration files, rendered from addresses and paths (pure: text in, text out).

The settings follow what was measured on this machine (../shared/notes/real-services.md): computes
report every 2 s and count as down after 10 s, hosts are mapped to the cell every 2 s, the fake
driver keeps a stable node, and no service but the API, conductor, scheduler and nova-manage gets
a database connection (nova-compute must not have one).
"""

from __future__ import annotations

from dataclasses import dataclass

DB_PASSWORD = "novalab-db"
RABBIT_USER, RABBIT_PASSWORD = "novalab", "novalab-mq"
# Placement's noauth2 reads "user:project" from the token; "admin" in the user makes it admin.
ADMIN_TOKEN = "admin:admin"
DRIVER = "hakeeper_fake.ResumingFakeDriver"
DATABASES = ("nova_api", "nova_cell0", "nova", "placement", "glance", "neutron")
POWER_SYNC_INTERVAL = 2


@dataclass(frozen=True)
class Ports:
    nova: int = 8774
    placement: int = 8778
    glance: int = 9292
    neutron: int = 9696
    mysql: int = 3306
    rabbit: int = 5672


@dataclass(frozen=True)
class Controller:
    ip: str
    workdir: str  # the controller's directory: configs, data, logs
    ports: Ports = Ports()

    def db(self, name: str) -> str:
        return f"mysql+pymysql://root:{DB_PASSWORD}@{self.ip}:{self.ports.mysql}/{name}?charset=utf8"

    @property
    def transport_url(self) -> str:
        return f"rabbit://{RABBIT_USER}:{RABBIT_PASSWORD}@{self.ip}:{self.ports.rabbit}/"

    def url(self, service: str) -> str:
        port = getattr(self.ports, service)
        suffix = {"nova": "/v2.1", "neutron": "/"}.get(service, "")
        return f"http://{self.ip}:{port}{suffix}"


def my_cnf(ctl: Controller) -> str:
    d = f"{ctl.workdir}/mysql"
    return f"""[mysqld]
user = root
datadir = {d}/data
socket = {d}/mysqld.sock
pid-file = {d}/mysqld.pid
log-error = {d}/error.log
bind-address = {ctl.ip}
port = {ctl.ports.mysql}
skip-name-resolve
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
innodb_log_buffer_size = 1M
key_buffer_size = 1M
aria_pagecache_buffer_size = 1M
max_connections = 300
table_open_cache = 400
performance_schema = OFF
innodb_flush_log_at_trx_commit = 2
"""


def rabbit_conf(ctl: Controller) -> str:
    return (f"listeners.tcp.default = {ctl.ip}:{ctl.ports.rabbit}\nloopback_users = none\n"
            "disk_free_limit.absolute = 50MB\n")


def _service_auth(group: str, ctl: Controller, service: str) -> str:
    return (f"[{group}]\nauth_type = admin_token\ntoken = {ADMIN_TOKEN}\nendpoint = {ctl.url(service)}\n"
            f"endpoint_override = {ctl.url(service)}\n")


def _nova_common(ctl: Controller, host: str, state_path: str) -> str:
    return f"""[DEFAULT]
host = {host}
state_path = {state_path}
transport_url = {ctl.transport_url}
compute_driver = {DRIVER}
report_interval = 2
service_down_time = 10
periodic_fuzzy_delay = 0
resume_guests_state_on_host_boot = true
sync_power_state_interval = {POWER_SYNC_INTERVAL}
heal_instance_info_cache_interval = -1
use_stderr = true
debug = false

[oslo_concurrency]
lock_path = {state_path}/lock

[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0

[oslo_messaging_notifications]
driver = noop

[scheduler]
discover_hosts_in_cells_interval = 2

[filter_scheduler]
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter

[api]
auth_strategy = keystone

{_service_auth("glance", ctl, "glance")}
[cinder]
os_region_name = RegionOne

{_service_auth("placement", ctl, "placement")}
{_service_auth("neutron", ctl, "neutron")}
[wsgi]
api_paste_config = {ctl.workdir}/nova/api-paste.ini
"""


def nova_controller_conf(ctl: Controller) -> str:
    """api, conductor, scheduler and nova-manage: the only ones with database access."""
    return _nova_common(ctl, "controller", f"{ctl.workdir}/nova/state") + f"""
[api_database]
connection = {ctl.db("nova_api")}

[database]
connection = {ctl.db("nova")}

[conductor]
workers = 1

[scheduler]
workers = 1
"""


def nova_compute_conf(ctl: Controller, host: str, state_path: str) -> str:
    return _nova_common(ctl, host, state_path)


def nova_api_paste() -> str:
    """Nova's API without Keystone (tests only): the lab's identity filter fills the headers that
    keystonecontext turns into the request context, when a client sent none."""
    shared = "compute_req_id faultwrap sizelimit"
    return f"""[composite:osapi_compute]
use = call:nova.api.openstack.urlmap:urlmap_factory
/: oscomputeversions
/v2.1: oscomputeversion_v2
/v2.1/+: openstack_compute_api_v21

[composite:openstack_compute_api_v21]
use = call:nova.api.auth:pipeline_factory_v21
keystone = {shared} labidentity keystonecontext osapi_compute_app_v21

[filter:labidentity]
paste.filter_factory = nova.virt.hakeeper_fake:default_identity_filter

[filter:compute_req_id]
paste.filter_factory = nova.api.compute_req_id:ComputeReqIdMiddleware.factory

[filter:faultwrap]
paste.filter_factory = nova.api.openstack:FaultWrapper.factory

[filter:sizelimit]
paste.filter_factory = oslo_middleware:RequestBodySizeLimiter.factory

[filter:keystonecontext]
paste.filter_factory = nova.api.auth:NovaKeystoneContext.factory

[app:osapi_compute_app_v21]
paste.app_factory = nova.api.openstack.compute:APIRouterV21.factory

[pipeline:oscomputeversions]
pipeline = faultwrap oscomputeversionapp

[pipeline:oscomputeversion_v2]
pipeline = compute_req_id faultwrap oscomputeversionapp_v2

[app:oscomputeversionapp]
paste.app_factory = nova.api.openstack.compute.versions:Versions.factory

[app:oscomputeversionapp_v2]
paste.app_factory = nova.api.openstack.compute.versions:VersionsV2.factory
"""


def placement_conf(ctl: Controller) -> str:
    return f"""[DEFAULT]
use_stderr = true

[api]
auth_strategy = noauth2

[placement_database]
connection = {ctl.db("placement")}
"""


def glance_conf(ctl: Controller) -> str:
    d = f"{ctl.workdir}/glance"
    return f"""[DEFAULT]
use_stderr = true
enabled_backends = file:file

[database]
connection = {ctl.db("glance")}

[paste_deploy]
flavor =
config_file = {d}/glance-api-paste.ini

[oslo_policy]
policy_file = {d}/policy.yaml

[glance_store]
default_backend = file

[file]
filesystem_store_datadir = {d}/images

[os_glance_staging_store]
filesystem_store_datadir = {d}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {d}/tasks
"""


# Glance without Keystone gives every request an admin context with no roles and no project,
# which its default policies refuse: the lab opens the image calls it and Nova make.
GLANCE_POLICY = "".join(f'"{rule}": ""\n' for rule in (
    "add_image", "upload_image", "publicize_image", "get_image", "get_images", "download_image",
    "modify_image", "delete_image", "get_image_location", "set_image_location"))


def neutron_conf(ctl: Controller, paste: str) -> str:
    """A bare neutron-server: ML2 without mechanism drivers or agents; Nova only asks it for ports."""
    return f"""[DEFAULT]
use_stderr = true
core_plugin = ml2
service_plugins =
auth_strategy = noauth
transport_url = {ctl.transport_url}
api_paste_config = {paste}
rpc_workers = 0
rpc_state_report_workers = 0
api_workers = 1
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false

[database]
connection = {ctl.db("neutron")}

[ml2]
type_drivers = local,flat
tenant_network_types = local
mechanism_drivers =
extension_drivers =

[oslo_concurrency]
lock_path = {ctl.workdir}/neutron/lock
"""


def clouds_yaml(ctl: Controller, cloud: str, compute_microversion: str) -> str:
    """A clouds.yaml for openstacksdk and the openstack CLI: no Keystone (a fixed token that
    Placement's noauth2 takes for an admin; Nova's lab filter and Glance/Neutron accept any), every
    service's endpoint given, the compute microversion pinned (it decides whether evacuated
    servers end ACTIVE)."""
    return f"""clouds:
  {cloud}:
    auth_type: admin_token
    auth:
      endpoint: {ctl.url("nova")}
      token: "{ADMIN_TOKEN}"
    region_name: RegionOne
    compute_api_version: "{compute_microversion}"
    compute_endpoint_override: {ctl.url("nova")}
    placement_endpoint_override: {ctl.url("placement")}
    image_endpoint_override: {ctl.url("glance")}
    network_endpoint_override: {ctl.url("neutron")}
"""
