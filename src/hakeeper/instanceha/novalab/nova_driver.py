# mypy: ignore-errors
"""The Nova lab's plug-ins, installed by scripts/setup-nova into the nova venv as nova.virt.hakeeper_fake.

This file runs inside Nova's own environment, never inside hakeeper's: Nova loads `compute_driver`
only from the nova.virt package, so the file is copied there (hakeeper does not import it).

- `ResumingFakeDriver` (compute_driver = hakeeper_fake.ResumingFakeDriver): the fake driver with a
  stable node (FakeDriverWithoutFakeNodes) whose guests come back when a nova-compute starts with
  `resume_guests_state_on_host_boot = true`. The stock fake driver keeps guests in memory and does
  nothing on resume, so a host identity moved to another node (seed 002) would report its servers
  as gone; with this driver they run again, as a real hypervisor booting them from shared storage.
  It also keeps the hypervisor's own ledger, `<state_path>/guests.ledger`: one line per guest
  started (spawn, rebuild, resume) or destroyed, with the time and the process id, so a test's
  independent checker can tell which process ran which guest when (novalab/guests.py reads it).
- `default_identity_filter`: a paste filter for the lab's nova-api pipeline (tests only, there is no
  Keystone) that fills X-User-Id/X-Project-Id/X-Roles/X-Auth-Token when a client sent none, so a plain
  clouds.yaml with `auth_type: none` works with every OpenStack client.
"""

import os
import time

import nova.conf
from nova.compute import power_state
from nova.virt import fake
from oslo_log import log as logging

LOG = logging.getLogger(__name__)
RESUMED = "hakeeper_fake: guest resumed"

LAB_USER = "novalab-admin"
LAB_PROJECT = "novalab"
LAB_ROLES = "admin,member,reader"
LAB_TOKEN = "novalab-token"
LEDGER = "guests.ledger"


def _ledger(event, uuid):
    # One short append per event (O_APPEND: whole lines even with the compute's green threads).
    line = f"{time.time():.6f} {os.getpid()} {event} {uuid}\n".encode()
    fd = os.open(os.path.join(nova.conf.CONF.state_path, LEDGER), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class ResumingFakeDriver(fake.FakeDriverWithoutFakeNodes):
    def spawn(self, context, instance, *args, **kwargs):
        # An evacuation's rebuild also spawns: the ledger shows the guest starting on the target.
        super().spawn(context, instance, *args, **kwargs)
        _ledger("start", instance.uuid)

    def destroy(self, context, instance, *args, **kwargs):
        super().destroy(context, instance, *args, **kwargs)
        _ledger("stop", instance.uuid)

    def resume_state_on_host_boot(self, context, instance, network_info, share_info, block_device_info=None):
        # A guest Nova expects running but this process never spawned: boot it again, as a
        # hypervisor would from the instance's disk on shared storage.
        if instance.uuid not in self.instances:
            flavor = instance.flavor
            self.resources.claim(vcpus=flavor.vcpus, mem=flavor.memory_mb, disk=flavor.root_gb)
            self.instances[instance.uuid] = fake.FakeInstance(instance.name, power_state.RUNNING, instance.uuid)
        else:
            self.instances[instance.uuid].state = power_state.RUNNING
        # The lab's tests read this line to tell a guest this process brought back.
        LOG.info("%s %s", RESUMED, instance.uuid)
        _ledger("start", instance.uuid)


def default_identity_filter(global_conf, **local_conf):
    def wrap(app):
        def middleware(environ, start_response):
            environ.setdefault("HTTP_X_USER_ID", LAB_USER)
            environ.setdefault("HTTP_X_PROJECT_ID", LAB_PROJECT)
            environ.setdefault("HTTP_X_ROLES", LAB_ROLES)
            # Nova hands the caller's token on to Glance and Neutron; theirs accept any.
            environ.setdefault("HTTP_X_AUTH_TOKEN", LAB_TOKEN)
            return app(environ, start_response)

        return middleware

    return wrap
