"""Keep secrets out of what operators print: status, events and `config show`.

A primitive's parameter is secret when the primitive lists it (`secret: [password, ...]`) or
when its name says so (password, passwd, auth_pass, secret, token, cookie, credentials: the names
OCF agents and OpenStack give their passwords). Pacemaker's `crm resource secret` keeps such a
value off the CIB; here the value stays in the store (agents need it), and what prints the
configuration or anything derived from it masks it:

- `mask_spec` gives the configuration with every secret value replaced by MASK (config show);
- `Redactor` replaces every secret value wherever it appears in a status view or an event (an
  agent's error output may quote its own command line), and masks any field whose name says it
  is a secret (a VRRP instance's auth_pass).

A configuration shown masked must not be applied back with the placeholders as passwords, nor
one imported from a CIB whose secrets Pacemaker kept on the nodes (`lrm://`): `refuse_masked`
stops both, naming the primitive and parameter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hakeeper.errors import InputError, Problem
from hakeeper.spec import ClusterSpec
from hakeeper.spec.model import Primitive

MASK = "********"
# What a CIB holds instead of a parameter `crm resource secret` moved to the nodes' local files.
PACEMAKER_SECRET = "lrm://"
# A parameter or field named like this holds a secret (whole words between underscores/dashes).
_SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:pass|passwd|password|pwd|auth[_\-]?pass|secret|token|cookie|credentials?|private[_\-]?key)"
    r"(?:$|[_\-.])",
    re.IGNORECASE,
)
# Values shorter than this are not searched for in free text: masking every "1" or "on" in an
# event message would hide what the message says and protect nothing.
MIN_REDACTED_LENGTH = 4


def secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def secret_params(primitive: Primitive) -> set[str]:
    """The names of the primitive's secret parameters (listed, or named like a secret)."""
    names = set(primitive.params).union(*(p.keys() for p in primitive.node_params.values()))
    return {n for n in names if secret_name(n)} | set(primitive.secret)


def secret_values(spec: ClusterSpec | None) -> set[str]:
    """Every value of a secret parameter in the configuration, on any node."""
    found: set[str] = set()
    for primitive in spec.resources.primitives if spec is not None else ():
        secret = secret_params(primitive)
        for params in (primitive.params, *primitive.node_params.values()):
            found.update(v for k, v in params.items() if k in secret and v)
    return found


def mask_spec(spec: ClusterSpec) -> ClusterSpec:
    """A copy of the configuration with every secret parameter's value replaced by MASK."""
    masked = spec.model_copy(deep=True)
    for primitive in masked.resources.primitives:
        secret = secret_params(primitive)
        primitive.params = {k: (MASK if k in secret else v) for k, v in primitive.params.items()}
        primitive.node_params = {
            node: {k: (MASK if k in secret else v) for k, v in params.items()}
            for node, params in primitive.node_params.items()
        }
    return masked


def refuse_masked(spec: ClusterSpec, file: str) -> None:
    """InputError when a secret list names no parameter of its primitive, or when a parameter
    holds MASK (a configuration copied from `config show`, whose passwords are not there)."""
    problems: list[Problem] = []
    for i, primitive in enumerate(spec.resources.primitives):
        names = set(primitive.params).union(*(p.keys() for p in primitive.node_params.values()))
        for name in primitive.secret:
            if name not in names:
                problems.append(Problem(
                    f"primitive {primitive.id} has no parameter {name!r} to keep secret",
                    file, field=f"resources.primitives.{i}.secret",
                ))
        for params in (primitive.params, *primitive.node_params.values()):
            for key, value in params.items():
                if value == MASK:
                    problems.append(Problem(
                        f"primitive {primitive.id}: parameter {key} is the placeholder `config show` prints "
                        "for a secret, not its value (`config show --show-secrets` prints the values)",
                        file, field=f"resources.primitives.{i}.params.{key}",
                    ))
                elif value == PACEMAKER_SECRET:
                    problems.append(Problem(
                        f"primitive {primitive.id}: parameter {key} was kept out of the CIB by `crm resource "
                        "secret` (its value is in /var/lib/pacemaker/lrm/secrets on each node): write the "
                        f"value here and list {key} under `secret:`",
                        file, field=f"resources.primitives.{i}.params.{key}",
                    ))
    if problems:
        raise InputError(problems)


class Redactor:
    """Masks secret values in free text and secret-named fields in documents (JSON-like)."""

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted({v for v in values if len(v) >= MIN_REDACTED_LENGTH}, key=len, reverse=True)

    @classmethod
    def for_spec(cls, spec: ClusterSpec | None) -> Redactor:
        return cls(secret_values(spec))

    def text(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text

    def doc(self, doc: Any) -> Any:
        if isinstance(doc, str):
            return self.text(doc)
        if isinstance(doc, Mapping):
            return {
                k: (MASK if isinstance(k, str) and secret_name(k) and v not in (None, "") else self.doc(v))
                for k, v in doc.items()
            }
        if isinstance(doc, list | tuple):
            return [self.doc(v) for v in doc]
        return doc


class SecretLogFilter(logging.Filter):
    """Masks the configuration's secret values in every log record of a process (the agent logs
    what resource agents print, and they may print their own command line). `spec` gives the
    configuration in force; it is read per record, its Redactor built once per configuration."""

    def __init__(self, spec: Callable[[], ClusterSpec | None]) -> None:
        super().__init__()
        self._spec = spec
        self._seen: ClusterSpec | None = None
        self._redactor = Redactor(())

    def filter(self, record: logging.LogRecord) -> bool:
        spec = self._spec()
        if spec is not self._seen:
            self._seen, self._redactor = spec, Redactor.for_spec(spec)
        message = record.getMessage()
        masked = self._redactor.text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_redaction(spec: Callable[[], ClusterSpec | None]) -> SecretLogFilter:
    """Mask secrets in everything the root logger's handlers write (call after logging is set up)."""
    secret_filter = SecretLogFilter(spec)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)
    return secret_filter
