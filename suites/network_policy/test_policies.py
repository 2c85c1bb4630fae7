"""NetworkPolicy, generic mode: the policies found in the region namespaces, enforced as the
API reference says.

The NetworkPolicies of each cluster's region namespace are read live with their namespaces'
and pods' labels; the probe pods of every cluster are the sources and destinations; the oracle
gives the expected allow or drop on the probe port (TCP, and UDP as well when a policy names
UDP), within and across clusters. With no policies everything is allowed. One test per
destination cluster (what its policies admit into it, and out of it to the others).
"""

from __future__ import annotations

from fixtures.checks import Verify
from fixtures.plugin import RegionName
from fixtures.workloads import Workloads
from netconform.policycheck import PolicyCheck, measure_step, read_policy_set
from netconform.probes import Probe
from netconform.result import Result
from netconform.scenario import Scenario


def names_udp(env: Workloads) -> bool:
    """A live policy in a region namespace has a UDP port rule."""
    for cluster, client in env.clusters.items():
        namespace = env.topology.cluster(cluster).namespace
        for policy in client.objects("NetworkPolicy", namespace):
            rules = [*(policy.spec.ingress or []), *(policy.spec.egress or [])]
            if any(p.protocol == "UDP" for r in rules for p in (r.ports or [])):
                return True
    return False


def measure(env: Workloads) -> Result:
    pods = env.sources()
    port = env.topology.probe.tcp_port
    probes = [Probe("tcp", port), *([Probe("udp", port)] if names_udp(env) else [])]
    scenario = env.scenario(pods, pods, probes)
    namespaces = {c: (env.topology.cluster(c).namespace,) for c in env.clusters}
    policies = read_policy_set(env.clusters, namespaces)
    return measure_step(scenario, policies, env.topology.timeouts.converge, "policies")


def _unused(_env: object) -> Scenario:
    raise NotImplementedError("the policies check measures with `measure`")


CHECK = PolicyCheck(
    "network-policy",
    __doc__ or "",
    _unused,
    slice_by=lambda c: c.destination.cluster,
    measure=measure,
    param="region",
)


def test_policies(region: RegionName, verify: Verify) -> None:
    verify(CHECK, region)
