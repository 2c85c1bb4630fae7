"""Which live NetworkPolicies select the pods of a flat-network check, so a failure between
pods that a policy isolates names that policy as the likely cause (pod-to-pod expects every
pod to reach every other; a policy nobody expected, such as the lab's `policy-extra-deny`,
breaks that and is the first thing to look at).

Cheap: one list of policies and one of pods per namespace, read once when the scenario is
built; the selection is the policy oracle's own selector matching."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from netconform.cluster import ClusterClient
from netconform.outcomes import Case, Endpoint
from netconform.policy.model import Policy
from netconform.reachability import relation

_NAMED = re.compile(r"NetworkPolicy (\S+) selects the (source|destination)")


def selecting(
    policies: Sequence[Policy], namespace: str, pod_labels: Mapping[str, str]
) -> list[Policy]:
    """The policies of `namespace` whose podSelector selects a pod with these labels."""
    return [p for p in policies if p.namespace == namespace and p.pod_selector.matches(pod_labels)]


def read_selecting(
    clusters: Mapping[str, ClusterClient], namespaces: Mapping[str, str], pods: Sequence[Endpoint]
) -> dict[Endpoint, list[str]]:
    """Every pod's selecting policies (`cluster/namespace/name`, with the directions they
    isolate), read live from the pod's namespace; pods no policy selects are left out."""
    found: dict[Endpoint, list[str]] = {}
    for cluster, namespace in namespaces.items():
        client = clusters[cluster]

        def raw(obj: object, client: ClusterClient = client) -> dict[str, Any]:
            data = client.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
            return cast(dict[str, Any], data)

        listed = client.objects("NetworkPolicy", namespace)
        policies = [Policy.from_api(cluster, raw(p)) for p in listed]
        if not policies:
            continue
        labels = {p.metadata.name: dict(p.metadata.labels or {})
                  for p in client.objects("Pod", namespace)}  # fmt: skip
        for pod in (p for p in pods if p.cluster == cluster and p.name in labels):
            chosen = selecting(policies, namespace, labels[pod.name])
            if chosen:
                found[pod] = [f"{cluster}/{p.label}[{'+'.join(p.types)}]" for p in chosen]
    return found


def policy_note(selected: Mapping[Endpoint, Sequence[str]], src: Endpoint, dst: Endpoint) -> str:
    """`NetworkPolicy X selects the source; ...` for a case's detail ("" when none)."""
    notes = [f"NetworkPolicy {name} selects the source" for name in selected.get(src, ())]
    notes += [f"NetworkPolicy {name} selects the destination" for name in selected.get(dst, ())]
    return "; ".join(notes)


def with_policy_notes(
    selected: Mapping[Endpoint, Sequence[str]],
) -> Callable[[Endpoint, Endpoint], str]:
    """A case's context: how the pods relate, and the live policies selecting either."""

    def context(src: Endpoint, dst: Endpoint) -> str:
        return "; ".join(filter(None, (relation(src, dst), policy_note(selected, src, dst))))

    return context


def policy_cause(cases: Sequence[Case]) -> str:
    """When failed cases run between pods that live NetworkPolicies select: name them."""
    failed = [c for c in cases if not c.passed]
    named = sorted({m.group(1) for c in failed for m in _NAMED.finditer(c.detail)})
    if not failed or not named or not all(_NAMED.search(c.detail) for c in failed):
        return ""  # failures between pods no policy selects: policies do not explain them
    return (
        f"NetworkPolicies select the failing pods: {', '.join(named)}; a flat pod network "
        "expects every pod reachable, so one of these policies (an ingress or egress rule, or "
        "a default deny) likely drops this traffic"
    )
