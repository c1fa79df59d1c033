"""Results of resource actions, with OCF's return codes as the common language.

Every class maps what it sees onto these: a class that is not OCF still answers "running",
"not running" or "failed", and the agent decides on them the same way. A timeout and a code
outside OCF's 0-9 are results of their own, never mistaken for success.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    SUCCESS = "success"  # 0: done / running
    ERROR = "error"  # 1 generic, 2 args, 3 unimplemented, 4 permissions
    NOT_INSTALLED = "not-installed"  # 5: a hard error on this node
    NOT_CONFIGURED = "not-configured"  # 6: a fatal error everywhere
    NOT_RUNNING = "not-running"  # 7: cleanly stopped
    PROMOTED = "promoted"  # 8: running as promoted
    FAILED_PROMOTED = "failed-promoted"  # 9
    TIMEOUT = "timeout"  # the action did not finish within its timeout (and was killed)
    UNDEFINED = "undefined"  # a code outside 0-9, or killed by a signal


OCF_CODES = {
    0: Status.SUCCESS,
    1: Status.ERROR,
    2: Status.ERROR,
    3: Status.ERROR,
    4: Status.ERROR,
    5: Status.NOT_INSTALLED,
    6: Status.NOT_CONFIGURED,
    7: Status.NOT_RUNNING,
    8: Status.PROMOTED,
    9: Status.FAILED_PROMOTED,
}
UNIMPLEMENTED = 3


@dataclass(frozen=True)
class Result:
    status: Status
    rc: int | None = None  # the process's exit code, None on timeout or signal
    output: str = ""
    duration: float = 0.0

    @classmethod
    def from_ocf(cls, rc: int | None, output: str = "", duration: float = 0.0) -> Result:
        status = Status.UNDEFINED if rc is None else OCF_CODES.get(rc, Status.UNDEFINED)
        return cls(status, rc, output, duration)

    @property
    def running(self) -> bool:
        """For a monitor: the resource is active (in any role)."""
        return self.status in (Status.SUCCESS, Status.PROMOTED)

    @property
    def stopped(self) -> bool:
        """For a monitor: cleanly not running (safe to start elsewhere)."""
        return self.status is Status.NOT_RUNNING

    def ok_for(self, action: str) -> bool:
        """Did `action` achieve what it was asked to do?"""
        if action == "stop":
            return self.status in (Status.SUCCESS, Status.NOT_RUNNING)
        if action == "monitor":
            return self.status in (Status.SUCCESS, Status.PROMOTED, Status.NOT_RUNNING)
        return self.status is Status.SUCCESS

    def describe(self) -> str:
        code = "" if self.rc is None else f" (rc={self.rc})"
        return f"{self.status.value}{code}"
