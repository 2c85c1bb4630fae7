"""The NetworkPolicy oracle on the Calico stars demo (seed 004) and at benchmark scale."""

from __future__ import annotations

import random
from typing import Any

import pytest

from netconform.policy import (
    ContainerPort,
    NamespaceInfo,
    Pod,
    Policy,
    PolicySet,
    labels,
)
from netconform.policy.synthetic import PORTS, generate


def netpol(spec: dict[str, Any], ns: str = "x", name: str = "np", cluster: str = "east") -> Policy:
    return Policy.from_api(cluster, {"metadata": {"name": name, "namespace": ns}, "spec": spec})


# -- the Calico stars demo, seed 004 ----------------------------------------------------------

STARS_NS = (
    NamespaceInfo("east", "stars"),
    NamespaceInfo("east", "client", labels(role="client")),
    NamespaceInfo("east", "management-ui", labels(role="management-ui")),
)
STARS_PODS = (
    Pod(
        "east",
        "management-ui",
        "management-ui",
        "10.1.0.10",
        labels(role="management-ui"),
        (ContainerPort(9001, "ui"),),
    ),
    Pod("east", "stars", "frontend", "10.1.0.20", labels(role="frontend"), (ContainerPort(80),)),
    Pod("east", "stars", "backend", "10.1.0.30", labels(role="backend"), (ContainerPort(6379),)),
    Pod("east", "client", "client", "10.1.0.40", labels(role="client"), (ContainerPort(9000),)),
)
DEFAULT_DENY: dict[str, Any] = {"podSelector": {"matchLabels": {}}}
ALLOW_UI = {
    "podSelector": {"matchLabels": {}},
    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"role": "management-ui"}}}]}],
}
BACKEND = {
    "podSelector": {"matchLabels": {"role": "backend"}},
    "ingress": [
        {
            "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
            "ports": [{"protocol": "TCP", "port": 6379}],
        }
    ],
}
FRONTEND = {
    "podSelector": {"matchLabels": {"role": "frontend"}},
    "ingress": [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"role": "client"}}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        }
    ],
}
STEPS: list[tuple[str, list[Policy]]] = [("no policy", [])]
STEPS.append(
    (
        "default deny in stars and client",
        [
            *STEPS[-1][1],
            netpol(DEFAULT_DENY, "stars", "default-deny"),
            netpol(DEFAULT_DENY, "client", "default-deny"),
        ],
    )
)
STEPS.append(
    (
        "allow UI in stars and client",
        [
            *STEPS[-1][1],
            netpol(ALLOW_UI, "stars", "allow-ui"),
            netpol(ALLOW_UI, "client", "allow-ui"),
        ],
    )
)
STEPS.append(
    ("allow frontend -> backend", [*STEPS[-1][1], netpol(BACKEND, "stars", "backend-policy")])
)
STEPS.append(
    ("allow client -> frontend", [*STEPS[-1][1], netpol(FRONTEND, "stars", "frontend-policy")])
)

# Rows: sources; columns: destinations on their own TCP port (ui:9001 F:80 B:6379 C:9000).
STARS_TABLES = {
    "no policy": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  .  .
    B   .  .  -  .
    C   .  .  .  -
    """,
    "default deny in stars and client": """
        ui F  B  C
    ui  -  X  X  X
    F   .  -  X  X
    B   .  X  -  X
    C   .  X  X  -
    """,
    "allow UI in stars and client": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  X  X
    B   .  X  -  X
    C   .  X  X  -
    """,
    "allow frontend -> backend": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  .  X
    B   .  X  -  X
    C   .  X  X  -
    """,
    "allow client -> frontend": """
        ui F  B  C
    ui  -  .  .  .
    F   .  -  .  X
    B   .  X  -  X
    C   .  .  X  -
    """,
}
SHORT = {"management-ui": "ui", "frontend": "F", "backend": "B", "client": "C"}


def stars_table(ps: PolicySet) -> str:
    """The truth table: `.` allowed, `X` denied, `-` a pod to itself (not a case)."""
    lines = ["    " + "  ".join(f"{SHORT[p.name]:<2}" for p in ps.pods).rstrip()]
    for src in ps.pods:
        cells = [
            "-" if src == dst else "." if ps.allowed(src, dst, dst.ports[0].port, "TCP") else "X"
            for dst in ps.pods
        ]
        lines.append(f"{SHORT[src.name]:<4}" + "  ".join(f"{c:<2}" for c in cells).rstrip())
    return "\n".join(lines)


def normalize(table: str) -> str:
    return "\n".join(" ".join(line.split()) for line in table.strip().splitlines())


@pytest.mark.parametrize(("step", "policies"), STEPS, ids=[s for s, _ in STEPS])
def test_stars_demo_truth_table(step: str, policies: list[Policy]) -> None:
    ps = PolicySet(policies, STARS_NS, STARS_PODS)
    assert normalize(stars_table(ps)) == normalize(STARS_TABLES[step]), stars_table(ps)


def test_stars_demo_reasons() -> None:
    ps = PolicySet(STEPS[-1][1], STARS_NS, STARS_PODS)
    client, backend = ps.pod("east", "client"), ps.pod("east", "backend")
    frontend = ps.pod("east", "frontend")
    assert ps.why(client, backend, 6379, "TCP") == (
        "ingress of east/stars/backend denied by default-deny, allow-ui, backend-policy "
        "(no rule of them admits east/client/client on tcp/6379)"
    )
    assert ps.why(frontend, backend, 6379, "TCP").endswith(
        "ingress admitted by backend-policy rule 1"
    )
    assert not ps.allowed(frontend, backend, 6380, "TCP")
    assert not ps.allowed(frontend, backend, 0, "ICMP")


# -- at scale: bulk evaluation agrees with case by case (not timed) ---------------------------


def test_matrix_agrees_with_allowed_at_benchmark_scale() -> None:
    """100 policies x 1,000 pods x 5 ports, as benchmarks/bench_policy_oracle.py builds;
    the benchmark times it, this test only checks it."""
    ps = generate(n_policies=100, n_pods=1000).policy_set()
    rnd = random.Random(4)
    total = 0
    for port, protocol in PORTS:
        rows = ps.matrix(port, protocol)
        total += sum(r.bit_count() for r in rows)
        for _ in range(2000):
            s, d = rnd.randrange(len(ps.pods)), rnd.randrange(len(ps.pods))
            assert ps.allowed(s, d, port, protocol) == bool(rows[s] >> d & 1), ps.why(
                s, d, port, protocol
            )
    cases = len(PORTS) * len(ps.pods) ** 2
    assert 0 < total < cases, "the generated set should allow some cases and deny others"


@pytest.mark.parametrize("seed", range(5))
def test_matrix_agrees_with_allowed_exhaustively(seed: int) -> None:
    ps = generate(n_policies=15, n_pods=40, clusters=2, namespaces=3, seed=seed).policy_set()
    for port, protocol in (*PORTS, (0, "ICMP")):
        rows = ps.matrix(port, protocol)
        for s in range(len(ps.pods)):
            for d in range(len(ps.pods)):
                assert ps.allowed(s, d, port, protocol) == bool(rows[s] >> d & 1)
