"""The topology's per-cluster build section checked against its cloud (netconform.topology's
loader calls this for each cluster)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING

from netconform.topology_check import Checker

if TYPE_CHECKING:
    from netconform.topology import Cluster


def check_build(
    checker: Checker, i: int, cluster: Cluster, network_modes: Mapping[str, str]
) -> None:
    """A cluster's build section fits its cloud: a cloud that builds, the cloud's own network
    mode, no `network` besides it, and (vpc-cni, azure-cni) pod ranges inside the network."""
    build = cluster.build
    if build is None:
        return
    where = f"clusters[{i}].build"

    def fail(key: str, expected: str, got: object) -> None:
        path = f"{where}.{key}" if key else where
        checker.fail(path, checker.lines.get(path, checker.lines.get(where, 0)), expected, got)

    mode = network_modes.get(cluster.cloud)
    if mode is None:
        fail(
            "",
            f"a cluster with cloud {', '.join(network_modes)} (cloud is {cluster.cloud})",
            "build",
        )
    if build.network_mode != mode:
        fail(
            "network_mode", f"{mode} (the flat pod network of {cluster.cloud})", build.network_mode
        )
    if cluster.network is not None:
        fail(
            "", "either build (a network to create) or network (one that exists), not both", "both"
        )
    if not cluster.cloud_region and cluster.cloud != "lab":  # the lab has no cloud regions
        checker.fail(f"clusters[{i}].cloud_region", checker.lines.get(where, 0),
                     "the cloud region to build in", "")  # fmt: skip
    if mode in ("vpc-cni", "azure-cni", "lab-vpc"):
        vpc = ipaddress.IPv4Network(build.vpc_cidr)
        for j, pods in enumerate(cluster.pod_cidrs):
            if not ipaddress.IPv4Network(pods).subnet_of(vpc):
                fail(
                    "vpc_cidr",
                    f"a range holding pod_cidrs[{j}] {pods} ({mode}: pods take network addresses)",
                    build.vpc_cidr,
                )
    if mode == "vpc-native":
        subnet = ipaddress.IPv4Network(build.vpc_cidr)
        for j, pods in enumerate(cluster.pod_cidrs):
            if ipaddress.IPv4Network(pods).overlaps(subnet):
                fail(
                    "vpc_cidr",
                    f"a range apart from pod_cidrs[{j}] {pods} (vpc-native: pods take the "
                    "subnet's secondary range)",
                    build.vpc_cidr,
                )
