"""`netconform-cloud build|destroy`: the build plan first, then exactly that plan; teardown
by tag.

    build   --topology F [--dry-run] [--yes] [--run-id ID] [--kubeconfig PATH]
    destroy (--topology F | --run-id ID) [--region R ...]
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import boto3
import yaml

from netconform import dnsglue
from netconform.errors import CloudError, ConfirmationError, TopologyError, UsageError
from netconform.topology import Topology, load_topology
from provisioning import lab_build
from provisioning.aws_build import AwsBuilder
from provisioning.build import (
    Builder,
    DestroyReport,
    Found,
    Step,
    apply_steps,
    check_build_overlaps,
    is_loopback_endpoint,
    new_build_id,
    print_build_plan,
)

BUILT_CLOUDS = ("aws", "gcp", "azure")


@dataclass
class BuildRun:
    """What a build has done so far: the run id to destroy by, even after an interrupt."""

    run_id: str = ""
    created: list[Found] = field(default_factory=list)
    builder: Builder | None = None

    def note(self, builder: lab_build.LabBuilder) -> None:
        self.run_id = builder.run_id


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = sub.add_parser("build", help="print the build plan, then build exactly it")
    build.add_argument("--topology", required=True, help="topology YAML file with build sections")
    build.add_argument("--dry-run", action="store_true", help="print the plan; create nothing")
    build.add_argument("--yes", action="store_true", help="build on a real cloud (it costs money)")
    build.add_argument("--run-id", help="tag value of this build (default: a new one)")
    build.add_argument("--kubeconfig", help="write the contexts here (default: the topology's)")
    destroy = sub.add_parser("destroy", help="remove what a build made, found by its tags")
    destroy.add_argument("--topology", help="every resource tagged with this topology's name")
    destroy.add_argument("--run-id", help="every resource tagged with this run id")
    destroy.add_argument(
        "--region", action="append", help="look only here (default: the topology's regions)"
    )
    destroy.add_argument(
        "--cloud", choices=BUILT_CLOUDS, help="where to look without --topology (default: aws)"
    )


def aws_endpoint() -> str | None:
    """Where boto3 sends calls when told nothing else (its own AWS_ENDPOINT_URL setting)."""
    return os.environ.get("AWS_ENDPOINT_URL_EC2") or os.environ.get("AWS_ENDPOINT_URL")


def builder_for(
    topology: Topology,
    run_id: str,
    session: boto3.Session | None,
    kubeconfig: str | None = None,
    cloud: str | None = None,
) -> Builder:
    """The builder of the one cloud the topology's built clusters name (`cloud` without any)."""
    others = sorted({c.cloud for c in topology.clusters if c.build and c.cloud not in BUILT_CLOUDS})
    if others:
        name = next(c.name for c in topology.clusters if c.build and c.cloud in others)
        raise TopologyError(
            f"cluster {name}: build: building on {', '.join(others)} is not implemented "
            f"(clouds that build: {', '.join(BUILT_CLOUDS)})"
        )
    clouds = list(dict.fromkeys(c.cloud for c in topology.clusters if c.build))
    if len(clouds) > 1:
        name = next(c.name for c in topology.clusters if c.build and c.cloud == clouds[1])
        raise TopologyError(
            f"cluster {name}: cloud: one build builds one cloud ({clouds[0]} first, then "
            f"{clouds[1]}): split the topology"
        )
    path = Path(kubeconfig) if kubeconfig else None
    chosen = clouds[0] if clouds else cloud or "aws"
    if chosen == "gcp":
        from provisioning.gcp_build import GcpBuilder

        return GcpBuilder(topology, run_id, kubeconfig_path=path)
    if chosen == "azure":
        from provisioning.azure_build import AzureBuilder

        return AzureBuilder(topology, run_id, kubeconfig_path=path)
    return AwsBuilder(topology, run_id, session, kubeconfig_path=path)


def _on_loopback(builder: Builder) -> bool:
    if isinstance(builder, AwsBuilder):
        return is_loopback_endpoint(aws_endpoint())
    return builder.on_loopback()


def build(
    args: argparse.Namespace, out: TextIO, run: BuildRun, session: boto3.Session | None
) -> int:
    if lab_build.is_lab_build_file(args.topology):  # the lab builds itself (lab_build)
        lab_build.build_topology(
            Path(args.topology), out, args.run_id, dry_run=args.dry_run, on_run_id=run.note
        )
        return 0
    build_topology(
        Path(args.topology),
        out,
        run,
        session,
        run_id=args.run_id,
        dry_run=args.dry_run,
        yes=args.yes,
        kubeconfig=args.kubeconfig,
    )
    return 0


def build_topology(
    path: Path,
    out: TextIO,
    run: BuildRun,
    session: boto3.Session | None = None,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    yes: bool = False,
    kubeconfig: str | None = None,
) -> Builder | None:
    """Validate, print the plan, then (unless a dry run) build exactly it and the glue.
    None when nothing has a build section. `run` holds the run id as soon as it is known."""
    topology = load_topology(path)
    if not any(c.build is not None for c in topology.clusters):
        print("nothing to build: no cluster has a build section", file=out)
        return None
    check_build_overlaps(topology)
    builder = builder_for(topology, run_id or new_build_id(), session, kubeconfig)
    builder.out = out
    builder.validate()
    steps = builder.plan()
    glue = builder.glue_plan()
    run.run_id, run.builder = builder.run_id, builder
    dns = _dns_glue_step(builder, out)
    print(f"run id: {builder.run_id}", file=out)
    print_build_plan([*steps, *glue, dns], out)
    if dry_run:
        print("dry run: nothing created", file=out)
        return builder
    if not (yes or topology.build.confirm or _on_loopback(builder)):
        raise ConfirmationError(
            f"refusing to build on {builder.cloud} without --yes or build.confirm: true "
            "(the plan above creates billed resources)"
        )
    todo = [*steps, _glue_step(builder, glue, out), dns]
    run.created = apply_steps(todo, lambda made: builder.destroy(made, out), out)
    print(
        f"built: run id {builder.run_id}; contexts "
        f"{', '.join(c.context for c in builder.clusters)} in {builder.attached().kubeconfig}",
        file=out,
    )
    return builder


def _glue_step(builder: Builder, glue: list[Step], out: TextIO) -> Step:
    """The network glue (provisioning.aws, gcp, azure) as one step; what it made is found by
    run id."""

    def run() -> list[Found]:
        builder.after_apply(out)
        return [f for f in builder.find(builder.run_id) if f.kind in builder.glue_kinds]

    todo = any(s.action != "noop" for s in glue)
    return Step(
        builder.cloud,
        "all",
        "network glue",
        "peering, routes, firewall",
        "create" if todo else "noop",
        0,
        "",
        run,
    )


DNS_GLUE_ESTIMATE = 90.0
"""Seconds the kube glue usually takes on a cloud: an internal LoadBalancer's address."""


def _dns_glue_step(builder: Builder, out: TextIO) -> Step:
    """The kube glue (`netconform-kube apply`: each cluster's internal DNS LoadBalancer and
    the other clusters' zones as stub domains) on the clusters just built, so cross-cluster
    names resolve before the suites run. Against a cloud's offline fake (a loopback
    endpoint) the clusters serve no Kubernetes API: the plan says so and nothing is sent."""
    offline = _on_loopback(builder)

    def run() -> list[Found]:
        applied = io.StringIO()
        dnsglue.run(builder.attached(), True, "lb", applied, dnsglue.LB_READY)
        for line in applied.getvalue().splitlines():
            print(f"  dns glue: {line}", file=out)
        return []  # Kubernetes objects go with their clusters

    return Step(
        builder.cloud,
        "all",
        "dns glue",
        "DNS LoadBalancers and stub domains (netconform-kube apply)",
        "noop" if offline else "create",
        DNS_GLUE_ESTIMATE,
        "not applied: an offline fake's clusters serve no Kubernetes API" if offline else "",
        run,
    )


def destroy(args: argparse.Namespace, out: TextIO, session: boto3.Session | None) -> int:
    if not args.topology and not args.run_id:
        raise UsageError("destroy: give --topology F or --run-id ID (what to look for)")
    if lab_build.destroys(args.topology, args.run_id):  # a lab build's lab (lab_build)
        return lab_build.destroy(args.topology, args.run_id, out)
    if args.topology:
        topology = load_topology(args.topology)
    else:
        topology = Topology(name=f"(run {args.run_id})", clusters=())
    builder = builder_for(topology, args.run_id or "", session, cloud=args.cloud)
    regions: Sequence[str] | None = args.region
    if not regions and not builder.clusters and isinstance(builder, AwsBuilder):
        regions = _enabled_regions(builder)
    found = builder.find(args.run_id, regions)
    what = f"run id {args.run_id}" if args.run_id else f"topology {topology.name}"
    print(f"destroy: {len(found)} resources tagged with {what}", file=out)
    report: DestroyReport = builder.destroy(found, out)
    print(report.summary(), file=out)
    if report.refused:
        first, err = report.refused[0]
        raise CloudError(f"{len(report.refused)} refused to go, first {first.label}: {err}")
    return 0


def _enabled_regions(builder: AwsBuilder) -> list[str]:
    regions = builder.call("ec2", "us-east-1", lambda ec2: ec2.describe_regions()["Regions"])
    return sorted(r["RegionName"] for r in regions)


def write_attached(builder: Builder, source: Path, dest: Path) -> Path:
    """The topology file as the suites read it once built: each built cluster's `build`
    replaced by the `network` the build made, the kubeconfig the build wrote; every other
    key as the user wrote it."""
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    attached = builder.attached()
    for entry in doc["clusters"]:
        if entry.pop("build", None) is None:
            continue
        net = attached.cluster(entry["name"]).network
        assert net is not None
        entry["network"] = {
            "id": net.id,
            "cidrs": list(net.cidrs),
            "route_tables": list(net.route_tables),
            "security_groups": list(net.security_groups),
        }
    doc.pop("build", None)
    kube = attached.kubeconfig
    if kube is not None:
        doc["kubeconfig"] = str(kube.resolve())
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return dest
