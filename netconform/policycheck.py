"""NetworkPolicy checks on the engine: the live policy set, a step's measurement as the
Kubernetes e2e netpol tests do it, and failures as findings.

The policies, namespaces and pods are read live from the API (with their labels and IPs), so
the oracle (`netconform.policy`, pure) judges what the clusters hold, not what the suite meant
to apply. A step is probed until observed equals expected or the named `converge` timeout ends,
then once more in full: that final matrix is the step's result.

A failure is a finding: an unexpected allow (traffic a policy should drop got through) is a
`SECURITY` finding; an unexpected drop (traffic that should pass was dropped) is an `OUTAGE`;
each line names the pods, port, protocol, the deciding policy (the oracle's `why`) and
expected vs observed, and each kind has its own report category.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from netconform.check import Check, Environment, Lead
from netconform.cluster import ClusterClient
from netconform.outcomes import SCREENFUL, Case, Endpoint, Verdict
from netconform.policy import NamespaceInfo, Pod, Policy, PolicyOracle, PolicySet
from netconform.policyscope import Target, targets
from netconform.probes import Probe
from netconform.profiles import FULL, SMOKE
from netconform.result import Result
from netconform.scenario import Scenario, distinct, measure
from netconform.vantage import PodVantage, Vantage

SECURITY = "SECURITY: unexpected allow"
OUTAGE = "OUTAGE: unexpected drop"
REFUSAL = "OUTAGE: unexpected refusal (the pod was reached: nothing listens, no policy dropped it)"
PROBE_ERROR = "PROBE ERROR"


def read_policy_set(
    clusters: Mapping[str, ClusterClient], namespaces: Mapping[str, Sequence[str]]
) -> PolicySet:
    """Policies and pods of `namespaces` (per cluster) and every namespace's labels, live."""
    policies: list[Policy] = []
    spaces: list[NamespaceInfo] = []
    pods: list[Pod] = []
    for name, client in clusters.items():

        def raw(obj: object, client: ClusterClient = client) -> dict[str, Any]:
            data = client.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
            return cast(dict[str, Any], data)

        spaces += [NamespaceInfo.from_api(name, raw(n)) for n in client.objects("Namespace", "")]
        for namespace in namespaces.get(name, ()):
            policies += [
                Policy.from_api(name, raw(p)) for p in client.objects("NetworkPolicy", namespace)
            ]
            pods += [Pod.from_api(name, raw(p)) for p in client.objects("Pod", namespace)]
    return PolicySet(policies, spaces, pods)


def measure_step(
    scenario: Scenario,
    policies: PolicySet,
    converge: float,
    step: str,
    refusing: Collection[Endpoint] = (),
) -> Result:
    """Re-probe until observed == expected or `converge` ends, then, if it did not converge,
    the full matrix once more (the k8s e2e netpol tests' reprobe); every case's detail names
    its step and what the oracle says decided it. At `refusing` destinations (users' pods) a
    refused connection counts as reached."""
    oracle = PolicyOracle(policies, refusing)
    final = measure(scenario, oracle, converge)
    if final.failed:
        final = measure(scenario, oracle)
    tasks = [t for ts in scenario.tasks().values() for t in ts]
    probe_of = {(t.destination, t.probe.kind, t.probe.port): t.probe for t in tasks}
    cases = []
    for case in final.cases:
        probe = probe_of[case.destination, case.protocol, case.port]
        why = oracle.why(case.source, case.destination, probe)
        cases.append(replace(case, detail=f"{step}; {case.detail}; policy: {why}"))
    return Result(tuple(cases))


def step_of(case: Case) -> str:
    """The step a case was measured in (the first part of its detail)."""
    return case.detail.split(";", 1)[0]


def finding(case: Case) -> str:
    """One failed case as a finding: its kind, the case, the policy's verdict."""
    if case.expected.verdict == Verdict.ALLOW and case.observed.verdict == Verdict.REFUSED:
        kind = REFUSAL
    elif case.expected.verdict == Verdict.ALLOW:
        kind = OUTAGE
    elif case.observed.verdict in (Verdict.ALLOW, Verdict.REFUSED):  # it reached the pod
        kind = SECURITY
    else:
        kind = PROBE_ERROR
    return f"{kind}: {case.describe()}"


def findings_report(cases: Iterable[Case], limit: int = SCREENFUL) -> str:
    """Security findings first (they are what a policy suite exists for), then outages; at
    most `limit` lines, the rest in the report's attachment."""
    failed = [c for c in cases if not c.passed]
    lines = sorted((finding(c) for c in failed), key=lambda ln: not ln.startswith(SECURITY))
    security = sum(ln.startswith(SECURITY) for ln in lines)
    outage = sum(ln.startswith(("OUTAGE", REFUSAL)) for ln in lines)
    head = f"{len(failed)} case(s) failed ({security} security, {outage} outage):"
    more = [f"  ... {len(lines) - limit} more in the attachment 'failed cases'"]
    return "\n".join([head, *(f"  {ln}" for ln in lines[:limit]), *more[: len(lines) > limit]])


@dataclass(frozen=True)
class PolicyCheck(Check):
    """A check whose failures are findings; `measure` replaces the scenario/oracle pair (the
    oracle is read live after the check's own setup)."""

    measure: Callable[..., Result] | None = None
    smoke_measure: Callable[..., Result] | None = None
    """The `smoke` profile's measurement (the stars demo's first and last step); None: the
    whole `measure`."""

    def run(self, env: object, profile: str = FULL) -> Result:
        measure = self.smoke_measure if profile == SMOKE and self.smoke_measure else self.measure
        assert measure is not None
        return measure(env)

    def verdict(self, result: Result, key: str, lead: Lead | None = None) -> tuple[Result, str]:
        """The findings of the slice, led by the run's diagnosis where it explains them (an
        unexpected drop on a path that is down is the path's, not a policy's)."""
        part = result.slice(self.slice_by, key)
        if not part.cases:
            return part, f"{key}: nothing to test (no cases in this slice)"
        if not part.failed:
            return part, ""
        lines, _ = lead(part.failed) if lead is not None else ([], False)
        wrong = f"{len(part.failed)} wrong out of {len(part.cases)}"
        return part, "\n".join([f"{key}: {wrong}", *lines, findings_report(part.cases)])


# -- generic mode (`suites/network_policy/test_policies.py`) ---------------------------------


def names_udp(policies: PolicySet) -> bool:
    """A live policy of a judged namespace has a UDP port rule."""
    rules = [r for p in policies.policies for r in (*p.ingress, *p.egress)]
    return any(port.protocol == "UDP" for r in rules for port in r.ports)


def generic_sources(env: Environment) -> dict[Endpoint, Vantage]:
    """The probe pods of the region namespaces and of the allowed probe namespaces."""
    out: dict[Endpoint, Vantage] = {}
    placed: list[tuple[str, list[Endpoint]]] = [
        (env.region_namespace(c), pods) for c, pods in env.probe_pods().items()
    ]
    for namespace in env.topology.network_policy.probe_namespaces:
        placed += [(namespace, pods) for pods in env.probe_pods_in(namespace).values()]
    for namespace, pods in placed:
        for pod in pods:
            out[pod] = PodVantage(env.clusters[pod.cluster], namespace, pod.name)
    return out


def measure_generic(env: Environment) -> Result:
    """Generic mode: the live policies of every namespace with probe-able pods, judged over
    the probe pods' port (and UDP where a policy names it) and each user pod's TCP ports."""
    vantages = generic_sources(env)
    settings = env.topology.network_policy
    users: dict[Endpoint, Target] = {}
    namespaces: dict[str, list[str]] = {}
    for cluster, client in env.clusters.items():
        found = targets(cluster, client, [env.region_namespace(cluster)], settings)
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


def unused_scenario(_env: object) -> Scenario:
    """A PolicyCheck's `scenario`: it measures with `measure` instead."""
    raise NotImplementedError("a policy check measures with `measure`")
