"""Read a native spec file: YAML → validated ClusterSpec, or an InputError naming file, line, field."""

from __future__ import annotations

from pathlib import Path

import yaml

from hakeeper.errors import InputError, Problem
from hakeeper.spec.checks import SpecPath, find_problems
from hakeeper.spec.model import ClusterSpec, ClusterState
from hakeeper.yamlsource import YamlDocument, load_yaml, parse_yaml


def _yaml_path(path: SpecPath) -> SpecPath:
    # Spec paths use field names; YAML uses their hyphenated aliases. A resource agent's parameter
    # names are its own (wsrep_cluster_address): they are written as they are.
    return tuple(
        p.replace("_", "-") if isinstance(p, str) and (i == 0 or path[i - 1] != "params") else p
        for i, p in enumerate(path)
    )


def spec_from_document(doc: YamlDocument) -> ClusterSpec:
    spec = doc.validate(ClusterSpec)
    # Checked here too, not only by `import crm`: a galera primitive whose members are not all
    # cluster nodes would make Pacemaker's agent wait for them forever.
    from hakeeper.galera.spec_checks import galera_problems

    problems = find_problems(spec) + galera_problems(spec)
    if problems:
        raise InputError([
            Problem(p.message, doc.file, doc.line_of(_yaml_path(p.path)),
                    ".".join(str(x) for x in _yaml_path(p.path)))
            for p in problems
        ])
    return spec


def load_spec(path: str | Path) -> ClusterSpec:
    return spec_from_document(load_yaml(path))


def parse_spec(text: str, file: str = "<input>") -> ClusterSpec:
    return spec_from_document(parse_yaml(text, file))


def load_state(path: str | Path) -> ClusterState:
    """A state file on its own (`simulate --state FILE`): the `state:` section's content."""
    return load_yaml(path).validate(ClusterState)


def dump_spec(spec: ClusterSpec) -> str:
    """The spec as native YAML: hyphenated keys, defaults left out so the file stays short."""
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
