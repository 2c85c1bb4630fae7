"""LoadBalancer HTTP: from every probe pod, every OTHER region's `lb-echo` LoadBalancer answers
HTTP 200, served by one of that region's own `lb-echo` pods (the answer names the pod), as a
client in a peered VPC reaches a service of another region through its cloud load balancer.
The README's worked example of a check: this file and `lb-echo.yaml` beside it."""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment, Requirement, by_cluster, echo_probe, load_manifests
from netconform.outcomes import Served
from netconform.scenario import Scenario, other_cluster

MANIFESTS = load_manifests(Path(__file__).with_name("lb-echo.yaml"))
NAME = "lb-echo"


def served(env: Environment) -> dict[str, Served]:
    """cluster -> HTTP 200 from one of its own ready pods ({} when no cluster has a LoadBalancer
    implementation), once per environment: the requirement asks first, the scenario reuses it."""

    def deploy() -> dict[str, Served]:
        env.apply_all(MANIFESTS)
        return env.served_by(NAME) if env.load_balancers(NAME) else {}

    return env.remember(NAME, deploy)


def through_other_regions(env: Environment) -> Scenario:
    expect, lbs = by_cluster(served(env)), list(env.load_balancers(NAME).values())
    return env.scenario(env.sources(), lbs, [echo_probe(80)], include=other_cluster, expect=expect)


CHECK = Check(
    "lb-http", __doc__ or "", through_other_regions, param="peer_pair", converges=True,
    requires=(Requirement("no LoadBalancer implementation in any cluster", served),),
)  # fmt: skip


def test_lb_http(peer_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, peer_pair)
