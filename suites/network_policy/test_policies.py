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

from fixtures.checks import Verify
from fixtures.plugin import RegionName
from netconform.policycheck import PolicyCheck, measure_generic, unused_scenario

CHECK = PolicyCheck(
    "network-policy",
    __doc__ or "",
    unused_scenario,
    slice_by=lambda c: c.destination.cluster,
    measure=measure_generic,
    param="region",
)


def test_policies(region: RegionName, verify: Verify) -> None:
    verify(CHECK, region)
