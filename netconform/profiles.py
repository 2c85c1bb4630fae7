"""Profiles: `full` (nightly: every case) and `smoke` (gating: a fast subset).

A check declares its smoke subset as a function from its full scenario to a smaller one
(`Check.smoke`); a check that declares none runs whole in smoke too, so nothing is left out of
a gate silently. The selectors here are the common ones; a suite may write its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from netconform.outcomes import Endpoint
from netconform.scenario import Scenario

FULL = "full"
SMOKE = "smoke"
PROFILES = (SMOKE, FULL)

Selector = Callable[[Scenario], Scenario]
"""A profile's subset of a check's scenario."""


SMOKE_CONNECT_TIMEOUT = 1.0
"""Seconds a connect (and a DNS try) may take in smoke: a drop costs 1 s, as in the
Kubernetes e2e netpol tests, instead of the topology's `probe.connect_timeout`."""


def smoke_settings(scenario: Scenario) -> Scenario:
    """The smoke profile's probe settings: a drop costs at most `SMOKE_CONNECT_TIMEOUT`."""
    settings = scenario.settings
    timeout = min(settings.connect_timeout, SMOKE_CONNECT_TIMEOUT)
    return replace(scenario, settings=replace(settings, connect_timeout=timeout))


def _cluster(endpoint: Endpoint) -> str:
    return endpoint.cluster or endpoint.name


def one_pair_per_region_pair(scenario: Scenario) -> Scenario:
    """One source and one destination per ordered (source cluster, destination cluster): the
    first source by name that has a case into that cluster, and its first destination there
    (in the scenario's order), with every probe the pair had. Every region pair stays covered,
    one pod pair each."""
    sources = sorted(scenario.vantages, key=lambda e: (e.cluster, e.name))
    chosen: dict[tuple[str, str], tuple[Endpoint, Endpoint]] = {}
    for src in sources:
        for dst in scenario.destinations:
            key = (_cluster(src), _cluster(dst))
            if key not in chosen and scenario.include(src, dst):
                chosen[key] = (src, dst)
    keep = set(chosen.values())

    def include(src: Endpoint, dst: Endpoint) -> bool:
        return (src, dst) in keep

    used = {src for src, _ in keep}
    vantages = {src: v for src, v in scenario.vantages.items() if src in used}
    return replace(scenario, vantages=vantages, include=include)


def one_destination_per_host(scenario: Scenario) -> Scenario:
    """One request set per Ingress: for every source, only the first destination (in the
    scenario's order) of each cluster, kind and host; the other paths of a host are left
    out."""
    keep: set[Endpoint] = set()
    seen: set[tuple[str, str, str]] = set()
    for dst in scenario.destinations:
        key = (dst.cluster, dst.kind, dst.host or dst.name)
        if key not in seen:
            seen.add(key)
            keep.add(dst)
    include = scenario.include

    def first_per_host(src: Endpoint, dst: Endpoint) -> bool:
        return dst in keep and include(src, dst)

    return replace(scenario, include=first_per_host)


def first_source_per_cluster(scenario: Scenario) -> Scenario:
    """Only the first source (by name) of every cluster, with all its destinations."""
    firsts: dict[str, Endpoint] = {}
    for src in sorted(scenario.vantages, key=lambda e: (e.cluster, e.name)):
        firsts.setdefault(_cluster(src), src)
    keep = set(firsts.values())
    vantages = {src: v for src, v in scenario.vantages.items() if src in keep}
    return replace(scenario, vantages=vantages)
