"""NetworkPolicy, generic mode: the policies of every namespace with probe-able pods, enforced as
the API reference says.

Sources are the suite's probe pods: those of each cluster's region namespace, and those it
deploys into the topology's `network_policy.probe_namespaces` (none unless the topology allows
it). Destinations are the probe pods (the probe TCP port, and UDP as well when a live policy
names UDP) and the probe-able pods of the users' namespaces, on each TCP port they declare
(`netconform.policyscope`: every namespace holding such pods, or the topology's
`network_policy.namespaces`). The policies, namespaces and pods are read live; the oracle
gives the expected allow or drop within and across clusters. With no policies everything is
allowed. One test per destination cluster (what its policies admit into it, and out of it to
the others).
"""

from __future__ import annotations

from collections.abc import Sequence

from fixtures.checks import Verify
from fixtures.plugin import RegionName
from fixtures.workloads import Workloads
from netconform.outcomes import Endpoint
from netconform.policy import PolicySet
from netconform.policycheck import PolicyCheck, measure_step, read_policy_set
from netconform.policyscope import Target, targets
from netconform.probes import Probe
from netconform.result import Result
from netconform.scenario import Scenario, distinct
from netconform.vantage import PodVantage, Vantage


def names_udp(policies: PolicySet) -> bool:
    """A live policy of a judged namespace has a UDP port rule."""
    rules = [r for p in policies.policies for r in (*p.ingress, *p.egress)]
    return any(port.protocol == "UDP" for r in rules for port in r.ports)


def sources(env: Workloads) -> dict[Endpoint, Vantage]:
    """The probe pods of the region namespaces and of the allowed probe namespaces."""
    out: dict[Endpoint, Vantage] = {}
    placed: list[tuple[str, list[Endpoint]]] = [
        (env.topology.cluster(c).namespace, pods) for c, pods in env.probe_pods().items()
    ]
    for namespace in env.topology.network_policy.probe_namespaces:
        placed += [(namespace, pods) for pods in env.probe_pods_in(namespace).values()]
    for namespace, pods in placed:
        for pod in pods:
            out[pod] = PodVantage(env.clusters[pod.cluster], namespace, pod.name)
    return out


def measure(env: Workloads) -> Result:
    vantages = sources(env)
    settings = env.topology.network_policy
    users: dict[Endpoint, Target] = {}
    namespaces: dict[str, list[str]] = {}
    for cluster, client in env.clusters.items():
        region = env.topology.cluster(cluster).namespace
        found = targets(cluster, client, [region], settings)
        users.update((t.endpoint, t) for t in found)
        spaces = [*env.topology.deploy_namespaces(cluster), *(t.namespace for t in found)]
        namespaces[cluster] = list(dict.fromkeys(spaces))
    policies = read_policy_set(env.clusters, namespaces)
    port = env.topology.probe.tcp_port
    own = [Probe("tcp", port), *([Probe("udp", port)] if names_udp(policies) else [])]

    def probes_of(dst: Endpoint) -> Sequence[Probe]:
        target = users.get(dst)
        return own if target is None else [Probe("tcp", p) for p in target.ports]

    destinations = [*vantages, *users]
    scenario = Scenario(vantages, destinations, own, distinct, settings=env.topology.probe,
                        probes_of=probes_of)  # fmt: skip
    converge = env.topology.timeouts.converge
    return measure_step(scenario, policies, converge, "policies", refusing=set(users))


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
