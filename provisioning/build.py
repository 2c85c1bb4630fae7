"""Building clusters and their networks: the plan of resources, applying it, tearing down.

Cloud-neutral: a builder (provisioning.aws_build, ...) reads what exists (by tag) and lists
`Step`s; `apply_steps` runs them in order and journals every resource it creates, so a
failure in the middle rolls back exactly what this run made; `destroy` removes `Found`
resources in dependency order, naming each one that refuses to go and removing the rest.
Every resource carries `managed-by: netconform` and the run id: nothing untagged is touched.
"""

from __future__ import annotations

import ipaddress
import os
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, TextIO

from netconform.cidr import refuse_overlaps
from netconform.errors import CloudError, NetconformError, UsageError
from netconform.topology import CloudNetwork, Cluster, Topology

StepAction = Literal["create", "update", "noop"]
MANAGED_BY = "managed-by"
MANAGER = "netconform"
RUN_ID_TAG = "netconform-run-id"
TOPOLOGY_TAG = "netconform-topology"
CLUSTER_TAG = "netconform-cluster"


@dataclass(frozen=True)
class Found:
    """A resource that exists (or was just created): what destroy and rollback remove."""

    cloud: str
    region: str
    kind: str
    """`vpc`, `subnet`, `eks cluster`...: the builder's deletion order is by kind."""
    id: str
    """The cloud's id (vpc-..., a cluster name, a role name)."""
    parent: str = ""
    """The resource it lives in, where deleting needs it (a node group's cluster)."""

    @property
    def label(self) -> str:
        return f"{self.cloud} {self.region} {self.kind} {self.id}"


@dataclass(frozen=True)
class Step:
    """One resource the build creates or finds already there."""

    cloud: str
    region: str
    kind: str
    name: str
    action: StepAction
    estimate: float
    """Seconds the create usually takes (0 for a noop)."""
    detail: str = ""
    run: Callable[[], list[Found]] | None = field(default=None, compare=False, repr=False)
    """Makes it; returns what now exists because of it (for rollback)."""
    concurrent: str = ""
    """A group whose time passes side by side (EKS control planes come up together: the
    create returns at once, a later step waits); '' when its time adds up."""

    def line(self) -> str:
        extra = f"  ({self.detail})" if self.detail else ""
        when = f"  ~{_duration(self.estimate)}" if self.action != "noop" else ""
        where = f"{self.cloud} {self.region}"
        return f"  {self.action:<6} {where:<18} {self.kind} {self.name}{extra}{when}"


@dataclass
class DestroyReport:
    removed: list[Found] = field(default_factory=list)
    refused: list[tuple[Found, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"destroyed {len(self.removed)} resources"
        if self.refused:
            text += f"; {len(self.refused)} refused to go"
        return text


def destroy_in_order(
    resources: Sequence[Found],
    order: Sequence[str],
    delete: Callable[[Found], None],
    out: TextIO | None = None,
) -> DestroyReport:
    """Delete `resources` in dependency order (`order`: kinds, first deleted first; others
    last); a refusal is named with the cloud's error and the rest still go."""
    report = DestroyReport()
    rank = {kind: i for i, kind in enumerate(order)}
    for item in sorted(resources, key=lambda f: rank.get(f.kind, len(rank))):
        try:
            delete(item)
        except CloudError as err:
            report.refused.append((item, str(err)))
            if out is not None:
                print(f"  refused {item.label}: {err}", file=out, flush=True)
            continue
        report.removed.append(item)
        if out is not None:
            print(f"  gone   {item.label}", file=out, flush=True)
    return report


class Builder(Protocol):
    """What a cloud's builder provides (provisioning.aws_build.AwsBuilder, gcp_build,
    azure_build)."""

    cloud: str
    run_id: str
    out: TextIO
    """Where progress lines go."""
    clusters: tuple[Cluster, ...]
    glue_kinds: tuple[str, ...]
    """Kinds of what the glue makes (found by run id after it ran, for the rollback)."""

    def validate(self) -> None:
        """Read-only checks of every cluster (region, version, machine type, credentials,
        permissions)."""

    def plan(self) -> list[Step]: ...

    def glue_plan(self) -> list[Step]:
        """The network glue's changes (peering, routes, firewall) as steps."""
        ...

    def after_apply(self, out: TextIO) -> None:
        """The network glue (peering, routes, firewall) once the clusters exist."""

    def find(self, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]: ...

    def destroy(self, resources: Sequence[Found], out: TextIO | None = None) -> DestroyReport: ...

    def attached(self) -> Topology:
        """The topology as the suites see it once built: networks instead of builds."""
        ...

    def on_loopback(self) -> bool:
        """True when every call goes to an endpoint on this machine (nothing is billed)."""
        ...


def new_build_id() -> str:
    """A run id usable as a tag value on every cloud (lower case, digits, dashes)."""
    return "nc-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + os.urandom(2).hex()


def build_tags(run_id: str, topology: Topology, cluster: str = "") -> dict[str, str]:
    tags = {MANAGED_BY: MANAGER, RUN_ID_TAG: run_id, TOPOLOGY_TAG: topology.name}
    if cluster:
        tags[CLUSTER_TAG] = cluster
    return tags


def built_clusters(topology: Topology, cloud: str) -> tuple[Cluster, ...]:
    return tuple(c for c in topology.clusters if c.cloud == cloud and c.build is not None)


def planned_network(cluster: Cluster) -> Cluster:
    """The cluster as it will be once built: its network is the VPC the build makes."""
    assert cluster.build is not None
    net = CloudNetwork(id=f"(new vpc of {cluster.name})", cidrs=(cluster.build.vpc_cidr,))
    return replace(cluster, network=net)


def check_build_overlaps(topology: Topology) -> None:
    """Refuse, before any create, networks that overlap (the glue's own check), and a service
    range inside a network range (its addresses would shadow real ones)."""
    planned = [planned_network(c) for c in topology.clusters if c.build is not None]
    refuse_overlaps(planned)
    for c in planned:
        assert c.build is not None
        vpc = ipaddress.IPv4Network(c.build.vpc_cidr)
        for svc in c.service_cidrs:
            if ipaddress.IPv4Network(svc).overlaps(vpc):
                raise UsageError(
                    f"cluster {c.name}: service_cidrs {svc} overlaps build.vpc_cidr {vpc}"
                )


def print_build_plan(steps: Sequence[Step], out: TextIO) -> None:
    for step in steps:
        print(step.line(), file=out)
    todo = [s for s in steps if s.action != "noop"]
    total = sum(s.estimate for s in todo if not s.concurrent)
    for group in {s.concurrent for s in todo if s.concurrent}:
        total += max(s.estimate for s in todo if s.concurrent == group)
    print(
        f"build plan: {len(todo)} to create, {len(steps) - len(todo)} unchanged"
        + (f", about {_duration(total)}" if todo else ""),
        file=out,
    )


def apply_steps(
    steps: Sequence[Step], rollback: Callable[[list[Found]], DestroyReport], out: TextIO
) -> list[Found]:
    """Run the steps in order; on a refusal stop, roll back what this run created, and raise
    one line naming the resource and the cloud's reason."""
    journal: list[Found] = []
    for step in steps:
        if step.action == "noop" or step.run is None:
            continue
        try:
            journal += step.run()
        except NetconformError as err:
            report = rollback(journal)
            undone = f"rolled back {len(report.removed)} resources this run created"
            if report.refused:
                left = ", ".join(f.label for f, _ in report.refused)
                undone += f" ({len(report.refused)} refused: {left})"
            raise CloudError(f"{err} -- creating {step.kind} {step.name}; {undone}") from None
        print(f"  done   {step.kind} {step.name}", file=out, flush=True)
    return journal


def is_loopback_endpoint(url: str | None) -> bool:
    """True when the cloud endpoint is on this machine (moto, a fake): nothing is billed."""
    if not url:
        return False
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f} min"
