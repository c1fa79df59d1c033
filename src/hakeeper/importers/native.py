"""OCF agents that an import turns into a hakeeper class doing the same job, for both importers
(crm shell text and CIB XML): the agent replaced, its params translated, a warning for each param
dropped."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hakeeper.instanceha import novacompute

Translate = Callable[[Mapping[str, str]], tuple[dict[str, str], list[str]]]

# OCF agent -> (native agent, params translation with warnings).
EQUIVALENTS: dict[str, tuple[str, Translate]] = {
    novacompute.OCF_AGENT: (novacompute.NATIVE_AGENT, novacompute.from_ocf),  # seed 002's p_nova-compute-hostN
}


def equivalent(agent: str, params: Mapping[str, str]) -> tuple[str, dict[str, str], list[str]]:
    """(agent, params, notes): the native equivalent of `agent` if there is one, else unchanged."""
    found = EQUIVALENTS.get(agent)
    if found is None:
        return agent, dict(params), []
    native, translate = found
    translated, notes = translate(params)
    return native, translated, notes
