"""LoadBalancer HTTP: from every probe pod, every OTHER region's `lb-echo` LoadBalancer answers
HTTP 200, served by one of that region's own `lb-echo` pods (the answer names the pod), as a
client in a peered VPC reaches a service of another region through its cloud load balancer.

The README's worked example of a check: this file and `lb-echo.yaml` beside it.
"""

from __future__ import annotations

from pathlib import Path

from fixtures.checks import Verify
from fixtures.plugin import RegionPair
from netconform.check import Check, Environment, Requirement, load_manifests
from netconform.echo import ECHO_PATH
from netconform.outcomes import Served, Verdict
from netconform.probes import Probe
from netconform.scenario import Scenario, other_cluster

MANIFESTS = load_manifests(Path(__file__).with_name("lb-echo.yaml"))
NAME = "lb-echo"


def served(env: Environment) -> dict[str, Served]:
    """cluster -> what its LB must answer: HTTP 200 from one of its own ready pods; {} when
    no cluster has a LoadBalancer implementation. Once per environment (the requirement
    asks first, the scenario reuses it)."""

    def deploy() -> dict[str, Served]:
        env.apply_all(MANIFESTS)
        if not env.load_balancers(NAME):
            return {}
        pods = {c: tuple(p.name for p in env.ready_pods(c, NAME)) for c in env.clusters}
        return {c: Served(Verdict.ALLOW, 200, f"{c}/{NAME}", pods[c]) for c in env.clusters}

    return env.remember(NAME, deploy)


def through_other_regions(env: Environment) -> Scenario:
    expected = served(env)
    lbs = list(env.load_balancers(NAME).values())
    probe = Probe("http", 80, params=(("path", ECHO_PATH),))
    return env.scenario(
        env.sources(),
        lbs,
        [probe],
        include=other_cluster,
        expect=lambda _src, dst, _probe: expected[dst.cluster],
    )


CHECK = Check(
    "lb-http",
    __doc__ or "",
    through_other_regions,
    requires=(Requirement("no LoadBalancer implementation in any cluster", served),),
    param="peer_pair",
    converges=True,
)


def test_lb_http(peer_pair: RegionPair, verify: Verify) -> None:
    verify(CHECK, peer_pair)
