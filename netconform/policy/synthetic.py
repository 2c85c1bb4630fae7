"""A seeded generator of policy sets for the benchmark and the property tests: pods spread over
clusters and namespaces, and policies using every construct (selectors with expressions,
ipBlock with except, named ports, endPort, UDP, egress). Pure; same seed, same set."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from netconform.policy.evaluate import PolicySet
from netconform.policy.model import ContainerPort, NamespaceInfo, Pod, Policy, labels

PORTS: tuple[tuple[int, str], ...] = (
    (80, "TCP"),
    (443, "TCP"),
    (53, "UDP"),
    (8080, "TCP"),
    (9092, "TCP"),
)
"""The five (port, protocol) pairs the benchmark evaluates."""


@dataclass(frozen=True)
class Synthetic:
    pods: tuple[Pod, ...]
    namespaces: tuple[NamespaceInfo, ...]
    policies: tuple[Policy, ...]

    def policy_set(self) -> PolicySet:
        return PolicySet(self.policies, self.namespaces, self.pods)


def generate(
    n_policies: int = 100,
    n_pods: int = 1000,
    clusters: int = 3,
    namespaces: int = 10,
    seed: int = 10,
) -> Synthetic:
    rnd = random.Random(seed)
    names = [f"c{c}" for c in range(clusters)]
    spaces = tuple(
        NamespaceInfo(c, f"ns{n}", labels(team=f"t{n % 4}", env=rnd.choice(["prod", "dev"])))
        for c in names
        for n in range(namespaces)
    )
    pods = []
    for i in range(n_pods):
        c = i % clusters
        ports = [ContainerPort(80, "http"), ContainerPort(53, "dns", "UDP")]
        if i % 3 == 0:
            ports.append(ContainerPort(8080, "metrics"))
        pods.append(
            Pod(
                cluster=names[c],
                namespace=f"ns{rnd.randrange(namespaces)}",
                name=f"p{i}",
                ip=f"10.{c}.{i // 250}.{i % 250 + 1}",
                labels=labels(app=f"a{rnd.randrange(20)}", tier=rnd.choice(["web", "db", "cache"])),
                ports=tuple(ports),
            )
        )
    policies = tuple(
        Policy.from_api(rnd.choice(names), _policy(rnd, n, namespaces, clusters))
        for n in range(n_policies)
    )
    return Synthetic(tuple(pods), spaces, policies)


def _selector(rnd: random.Random) -> dict[str, Any]:
    pick = rnd.randrange(4)
    if pick == 0:
        return {}
    if pick == 1:
        return {"matchLabels": {"app": f"a{rnd.randrange(20)}"}}
    if pick == 2:
        return {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "db"]}]}
    return {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a1", "a2"]}]}


def _peer(rnd: random.Random, clusters: int) -> dict[str, Any]:
    pick = rnd.randrange(5)
    if pick == 0:
        return {"podSelector": _selector(rnd)}
    if pick == 1:
        return {"namespaceSelector": {"matchLabels": {"team": f"t{rnd.randrange(4)}"}}}
    if pick == 2:
        return {"namespaceSelector": {}, "podSelector": _selector(rnd)}
    c = rnd.randrange(clusters)
    block: dict[str, Any] = {"cidr": f"10.{c}.0.0/16"}
    if pick == 4:
        block["except"] = [f"10.{c}.{rnd.randrange(4)}.0/24"]
    return {"ipBlock": block}


def _ports(rnd: random.Random) -> list[dict[str, Any]]:
    pick = rnd.randrange(6)
    if pick == 0:
        return []
    if pick == 1:
        return [{"port": 80}]
    if pick == 2:
        return [{"protocol": "UDP", "port": 53}, {"port": 443}]
    if pick == 3:
        return [{"port": "metrics"}]
    if pick == 4:
        return [{"port": 8000, "endPort": 9100}]
    return [{"protocol": "UDP"}]


def _rules(rnd: random.Random, peers: str, clusters: int) -> list[dict[str, Any]]:
    rules = []
    for _ in range(rnd.randrange(4)):
        rule: dict[str, Any] = {}
        if rnd.random() < 0.8:
            rule[peers] = [_peer(rnd, clusters) for _ in range(rnd.randrange(1, 3))]
        ports = _ports(rnd)
        if ports:
            rule["ports"] = ports
        rules.append(rule)
    return rules


def _policy(rnd: random.Random, n: int, namespaces: int, clusters: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": _selector(rnd)}
    spec["ingress"] = _rules(rnd, "from", clusters)
    if rnd.random() < 0.4:
        spec["egress"] = _rules(rnd, "to", clusters)
        if not spec["egress"]:
            spec["policyTypes"] = ["Ingress", "Egress"]
    return {
        "metadata": {"name": f"np{n}", "namespace": f"ns{rnd.randrange(namespaces)}"},
        "spec": spec,
    }
