"""The lab as a build target: `cloud: lab` clusters with a `build` section.

`netconform-cloud build --topology lab.yaml` and `pytest suites --build --topology lab.yaml`
build the embedded lab from the same build section a cloud build reads: one region per
cluster, named as the cluster, in the topology's order; its VPC, pod and service ranges and
node count as written. What the lab cannot honour (a VPC range other than the one the lab
gives that region, a machine type, a Kubernetes version its API server does not serve, a
context, namespace or DNS zone other than the lab's) is refused before anything starts, in
one line naming the cluster and the field: never a silent difference.

A built lab is its run's: its state directory is `.build/RUN/lab` (the lab's owner, see
`provisioning.lab.ownership`), its name prefix `b` and six hex digits of the run id, and
`build.json` in the state directory names the run and the topology file. `destroy --run-id`
finds exactly that lab (its prefix's claim, or its state directory) and downs it with the
lab's own `down`, which sweeps only namespaces marked as that state directory's.

The lab makes its own peerings, routes and firewall (the network glue is a noop), and its `up`
seeds seed 000's stub domains as `netconform-kube apply` does (the DNS glue is a noop the plan
names; after the build a `netconform-kube plan` confirms there is nothing left to change).
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from netconform import dnsglue
from netconform.errors import LabError, TopologyError
from netconform.topology import Topology, load_topology
from provisioning.build import (
    DestroyReport,
    Found,
    Step,
    apply_steps,
    built_clusters,
    check_build_overlaps,
    new_build_id,
    print_build_plan,
)
from provisioning.lab import control, layouts, network, ownership
from provisioning.lab.apiserver.discovery import VERSION_INFO
from provisioning.lab.control import LabPaths
from provisioning.lab.controllers.firewall import LAB_CLOSED_PORTS, LAB_REQUIRED_PORTS
from provisioning.lab.network import LabPlan

CLOUD = "lab"
#: The version the lab's API server serves (`/version`): the only one a lab build offers.
LAB_VERSION = f"{VERSION_INFO['major']}.{VERSION_INFO['minor']}"
BUILD_FILE = "build.json"
#: Seconds the lab daemon takes to build and serve: a base, then per region (measured here,
#: 2 CPUs shared: 2 regions up in about 8 s, 3 in about 10 s).
LAB_UP_BASE, LAB_UP_PER_REGION = 4.0, 2.0
_NAME = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
_RESERVED = ("world", "shared")  # the lab's own namespaces and `shell` targets
#: What the lab itself addresses: peering and world links, the world's LoadBalancers.
LINKS, LB_SPACE = "100.64.0.0/10", "198.18.0.0/15"


def is_lab_build(topology: Topology) -> bool:
    """True when the topology builds lab clusters (this module's builder is the one)."""
    return any(c.cloud == CLOUD and c.build is not None for c in topology.clusters)


def lab_prefix(run_id: str) -> str:
    """The name prefix of the lab run `run_id` builds: `b` and 6 hex digits of the id, so a
    lab's namespaces name their run, and two runs never share names."""
    return "b" + hashlib.sha256(run_id.encode()).hexdigest()[:6]


def build_root() -> Path:
    """`.build` beside the project's `.lab` (where `pytest --build` puts its runs too)."""
    return control.project_state_dir().parent / ".build"


def default_state_dir(run_id: str) -> Path:
    """`.build/RUN/lab`: the state dir of the lab run `run_id` builds."""
    return build_root() / run_id / "lab"


class LabBuilder:
    """Plans, builds and destroys the lab of a topology's `cloud: lab` build sections."""

    cloud = CLOUD

    def __init__(
        self,
        topology: Topology,
        run_id: str,
        state_dir: Path | None = None,
        owner_pid: int = 0,
    ) -> None:
        self.topology = topology
        self.clusters = built_clusters(topology, CLOUD)
        self.run_id = run_id
        self.paths = LabPaths(state_dir or default_state_dir(run_id))
        self.prefix = lab_prefix(run_id)
        self.owner_pid = owner_pid
        """With a pid, the lab goes when that process does (a pytest session's own lab)."""
        self.out: TextIO = sys.stdout
        self._doc = _raw(topology)

    @property
    def nodes(self) -> int:
        first = self.clusters[0].build if self.clusters else None
        return first.node_count if first is not None else network.NODES_PER_REGION

    def lab_plan(self) -> LabPlan:
        """The lab these build sections make (after `validate`: every range one it can)."""
        names = tuple(c.name for c in self.clusters)
        owner = ownership.owner_of_dir(self.paths.root)
        vpcs = tuple(c.build.vpc_cidr for c in self.clusters if c.build is not None)
        services = tuple(
            c.service_cidrs[0] if c.service_cidrs else network.default_service_cidr(i)
            for i, c in enumerate(self.clusters)
        )
        return layouts.plan(
            self.prefix, len(names), "default", owner, names, self.nodes, vpcs, services
        )

    # -- validation: what the lab cannot honour, refused before it starts ------------------

    def validate(self) -> None:
        """One TopologyError line naming the cluster and the field, else nothing."""
        for c in self.topology.clusters:
            if c.build is None:
                raise TopologyError(
                    f"cluster {c.name}: build: a lab build builds every cluster of the "
                    f"topology ({c.name} has no build section)"
                )
            if c.cloud != CLOUD:
                raise TopologyError(
                    f"cluster {c.name}: cloud: a lab build builds lab clusters only, not "
                    f"{c.cloud} ones"
                )
        if len(self.clusters) > network.MAX_REGIONS:
            raise TopologyError(
                f"cluster {self.clusters[-1].name}: the lab builds at most "
                f"{network.MAX_REGIONS} regions, not {len(self.clusters)}"
            )
        self._validate_top()
        for c in self.clusters:
            self._validate_names(c.name)
            self._validate_ranges(c.name)
        plan = self.lab_plan()
        for c, region in zip(self.clusters, plan.regions, strict=True):
            self._validate_cluster(c.name, region)
        self._validate_apart(plan)

    def _validate_top(self) -> None:
        for key, what in (
            ("kubeconfig", "a lab build writes its contexts into its state dir's kubeconfig"),
            ("runner_netns", "a lab build's runner is in its world namespace"),
        ):
            if key in self._doc:
                raise TopologyError(f"{key}: {what}; remove it from the build topology")
        ports = self._doc.get("ports") or {}
        for key, lab in (("required", LAB_REQUIRED_PORTS), ("closed", LAB_CLOSED_PORTS)):
            if key in ports and tuple(ports[key]) != lab:
                raise TopologyError(
                    f"ports.{key}: the lab's firewall {'passes' if key == 'required' else 'drops'}"
                    f" {', '.join(map(str, lab))} between regions, not "
                    f"{', '.join(map(str, ports[key])) or 'none'}"
                )

    def _validate_names(self, name: str) -> None:
        if not _NAME.fullmatch(name) or name in _RESERVED:
            raise TopologyError(
                f"cluster {name}: name: a lab region is named as its cluster: 1-32 lowercase "
                f"letters, digits and dashes, starting with a letter, not {', '.join(_RESERVED)}"
            )
        c = self.topology.cluster(name)
        entry = self._entry(name)
        wanted = {
            "region": (c.region, name),
            "namespace": (c.namespace, name),
            "dns_zone": (c.dns_zone, f"{name}.svc.cluster.local"),
            "context": (entry.get("context", f"lab-{name}"), f"lab-{name}"),
            "cloud_region": (c.cloud_region, ""),
            "ingress_address": (c.ingress_address, ""),
        }
        for key, (got, lab) in wanted.items():
            if got != lab:
                shown = f"{lab!r}" if lab else "none (remove the key)"
                raise TopologyError(
                    f"cluster {name}: {key}: the lab's is {shown}, not {got!r} "
                    "(a lab build cannot honour it)"
                )

    def _validate_ranges(self, name: str) -> None:
        """A VPC the lab can carve (10.X.0.0/16), pods in all of it, one service range."""
        c = self.topology.cluster(name)
        assert c.build is not None
        try:
            network.vpc_octet(c.build.vpc_cidr)
        except LabError as err:
            raise TopologyError(f"cluster {name}: build.vpc_cidr: {err}") from None
        if c.pod_cidrs != (c.build.vpc_cidr,):
            raise TopologyError(
                f"cluster {name}: pod_cidrs: the lab's pods take addresses from their node's "
                f"slice of the whole VPC: [{c.build.vpc_cidr}], not [{', '.join(c.pod_cidrs)}]"
            )
        if len(c.service_cidrs) > 1:
            raise TopologyError(
                f"cluster {name}: service_cidrs: the lab serves one service range per "
                f"cluster, not {len(c.service_cidrs)}"
            )

    def _validate_apart(self, plan: LabPlan) -> None:
        """Every VPC, service range and LoadBalancer range of the lab apart from the others
        (the lab routes them all in one world); the lab's own links apart from all."""
        taken: list[tuple[str, str, ipaddress.IPv4Network]] = [
            ("the lab", "its links", ipaddress.IPv4Network(LINKS)),
            ("the lab", "its LoadBalancer space", ipaddress.IPv4Network(LB_SPACE)),
        ]
        for r in plan.regions:
            for key, cidr in (("build.vpc_cidr", r.vpc_cidr), ("service_cidrs", r.service_cidr)):
                net = ipaddress.IPv4Network(cidr)
                for who, what, other in taken:
                    if net.overlaps(other):
                        raise TopologyError(
                            f"cluster {r.name}: {key}: {cidr} overlaps {what} {other} ({who}); "
                            "the lab routes every range in one world"
                        )
                taken.append((f"cluster {r.name}", key, net))

    def _validate_cluster(self, name: str, region: network.RegionPlan) -> None:
        c = self.topology.cluster(name)
        build = c.build
        assert build is not None
        where = f"its region {region.index + 1} ({name})"

        def refuse(key: str, lab: str, got: object) -> None:
            raise TopologyError(f"cluster {name}: {key}: the lab gives {where} {lab}, not {got}")

        if not 1 <= build.node_count <= network.MAX_NODES:
            refuse("build.node_count", f"1 to {network.MAX_NODES} nodes", build.node_count)
        if build.node_count != self.nodes:
            refuse(
                "build.node_count",
                f"as many nodes as every other region ({self.clusters[0].name}: {self.nodes})",
                build.node_count,
            )
        if build.kubernetes_version != LAB_VERSION:
            refuse("build.kubernetes_version", f"Kubernetes {LAB_VERSION} only", repr(
                build.kubernetes_version))  # fmt: skip
        if build.machine_type:
            refuse("build.machine_type", "nodes that are network namespaces (no machine type)",
                   repr(build.machine_type))  # fmt: skip

    def _entry(self, name: str) -> dict[str, Any]:
        for entry in self._doc.get("clusters") or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
        return {}

    # -- plan -------------------------------------------------------------------------------

    def running(self) -> dict[str, Any] | None:
        """The state of this run's lab when its daemon serves."""
        state = control.read_state(self.paths)
        return state if state is not None and state.get("prefix") == self.prefix else None

    def plan(self) -> list[Step]:
        """The daemon (it makes all of it at once, then every API answers within lab_up),
        then every resource it makes: noops when this run's lab is up already."""
        lab = self.lab_plan()
        state = self.running()
        have = f"running, daemon pid {state['pid']}" if state else ""
        total = LAB_UP_BASE + LAB_UP_PER_REGION * len(lab.regions)
        rel = _shown(self.paths.root)

        def step(region: str, kind: str, name: str, detail: str, run: Any = None) -> Step:
            if have:
                return Step(CLOUD, region, kind, name, "noop", 0, have)
            # the daemon makes all of it at once: side by side, one estimate
            return Step(CLOUD, region, kind, name, "create", total, detail, run, "lab")

        steps = [
            step(
                "all",
                "lab daemon",
                self.prefix,
                f"state dir {rel}, owner of all below; every API answers within lab_up "
                f"{self.topology.timeouts.lab_up:g}s",
                self._up,
            ),
            step("all", "netns", lab.world_netns, "the world: LoadBalancer space 198.18.0.0/15"),
        ]
        for r in lab.regions:
            steps.append(
                step(
                    r.name,
                    "vpc",
                    r.router_netns,
                    f"{r.vpc_cidr}: router {r.router_ip}, internal LBs {r.ilb_cidr}, "
                    f"NAT gateway to the world",
                )
            )
            steps += [
                step(r.name, "node", n.name, f"netns {n.netns}, {n.ip}, pods {n.pod_cidr}")
                for n in r.nodes
            ]
            steps.append(
                step(
                    r.name,
                    "kubernetes api",
                    f"lab-{r.name}",
                    f"{LAB_VERSION} on loopback, services {r.service_cidr}, namespace {r.name}; "
                    f"context in {rel}/kubeconfig",
                )
            )
        steps += [
            step("all", "vpc peering", f"{p.a}<->{p.b}", f"{p.a_ip}/31, routes both ways")
            for p in lab.peerings
        ]
        return steps

    def glue_plan(self) -> list[Step]:
        """The glue the lab does itself, named as such: nothing to do twice."""
        return [
            Step(CLOUD, "all", "network glue", "peering, routes, firewall", "noop", 0,
                 "the lab builds its own: peerings above, the firewall controller opens "
                 f"{', '.join(map(str, LAB_REQUIRED_PORTS))}"),
            Step(CLOUD, "all", "dns glue", "kube-dns-lb and stub domains", "noop", 0,
                 "done by the lab's up (it seeds them as netconform-kube apply does); "
                 "checked after the build"),
        ]  # fmt: skip

    def _up(self) -> list[Found]:
        self.paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {
            "run_id": self.run_id,
            "prefix": self.prefix,
            "topology": self.topology.name,
            "topology_file": str(self.topology.source.resolve()) if self.topology.source else "",
        }
        (self.paths.root / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n")
        made = [Found(CLOUD, "all", "lab", self.prefix, str(self.paths.root))]
        try:
            control.up(
                self.paths,
                regions=len(self.clusters),
                prefix=self.prefix,
                timeout=self.topology.timeouts.lab_up,
                progress=lambda msg: print(f"  {msg}", file=self.out, flush=True),
                owner_pid=self.owner_pid,
                names=tuple(c.name for c in self.clusters),
                nodes=self.nodes,
            )
        except LabError as err:  # apply_steps rolls back what the journal holds: none yet
            self.destroy(made, None)
            raise LabError(f"lab: {err}") from None
        return made

    def after_apply(self, out: TextIO) -> None:
        """Confirm the DNS glue the lab's up made (`netconform-kube plan`: no changes); should
        anything be missing, apply it (idempotent)."""
        lab = load_topology(self.paths.topology)
        seen = io.StringIO()
        dnsglue.run(lab, False, "lb", seen, dnsglue.LB_READY)
        if seen.getvalue().splitlines()[-1:] == ["no changes"]:
            print("  dns glue: netconform-kube plan: no changes (the lab's up seeded it)", file=out)
            return
        done = io.StringIO()
        dnsglue.run(lab, True, "lb", done, dnsglue.LB_READY)
        for line in done.getvalue().splitlines():
            print(f"  dns glue: {line}", file=out)

    # -- find and destroy ---------------------------------------------------------------------

    def find(self, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]:
        """The lab of `run_id` (else every lab built from this topology's file) that still
        runs or left namespaces behind; `regions` is ignored (one lab, one machine)."""
        del regions
        if run_id:
            prefix = lab_prefix(run_id)
            # the prefix's holder only when its build record names this run (someone's
            # `netconform-lab up --prefix` of the same name is not this run's); the run's
            # own state dir unless its record names another
            claimed = _claimed(prefix)
            dirs = [claimed] if claimed and _record(claimed).get("run_id") == run_id else []
            own = self._dir_of(run_id)
            if _record(own).get("run_id", run_id) == run_id:
                dirs.append(own)
            return [
                Found(CLOUD, "all", "lab", prefix, str(d))
                for d in dict.fromkeys(p.resolve() for p in dirs)
                if _exists(prefix, d)
            ][:1]
        source = str(self.topology.source.resolve()) if self.topology.source else None
        found = []
        for d in _build_dirs(build_root()):
            record = _record(d)
            prefix = str(record.get("prefix", ""))
            if source and record.get("topology_file") == source and _exists(prefix, d):
                found.append(Found(CLOUD, "all", "lab", prefix, str(d)))
        return found

    def _dir_of(self, run_id: str) -> Path:
        return self.paths.root if run_id == self.run_id else default_state_dir(run_id)

    def destroy(self, resources: Sequence[Found], out: TextIO | None = None) -> DestroyReport:
        """Each lab down with the lab's own `down` (its daemon stops and removes its
        namespaces; what a dead one left is swept by owner; others' are left alone)."""
        report = DestroyReport()
        for found in resources:
            paths = LabPaths(Path(found.parent))
            try:
                sweep = control.down(paths, prefix=found.id)
            except (LabError, OSError) as err:
                report.refused.append((found, str(err)))
                continue
            (paths.root / BUILD_FILE).unlink(missing_ok=True)
            report.removed.append(found)
            if out is not None:
                print(f"  removed lab {found.id} ({_shown(paths.root)}): {sweep.summary()}",
                      file=out)  # fmt: skip
        return report

    def attached(self) -> Topology:
        """The lab as the suites see it (its own topology file: contexts, kubeconfig, world)."""
        return load_topology(self.paths.topology)


def build_topology(
    path: Path,
    out: TextIO,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
    state_dir: Path | None = None,
    owner_pid: int = 0,
    on_run_id: Any = None,
) -> LabBuilder:
    """Validate, print the plan, then (unless a dry run) build the lab and check its glue.
    `on_run_id(builder)` is called once the run id is known (before anything starts)."""
    topology = load_topology(path)
    check_build_overlaps(topology)
    run_id = run_id or new_build_id()
    builder = LabBuilder(topology, run_id, state_dir or None, owner_pid)
    builder.out = out
    builder.validate()
    steps = builder.plan()
    if on_run_id is not None:
        on_run_id(builder)
    print(f"run id: {builder.run_id}", file=out)
    print_build_plan(steps + builder.glue_plan(), out)
    if dry_run:
        print("dry run: nothing created", file=out)
        return builder
    apply_steps(steps, lambda made: builder.destroy(made, out), out)
    builder.after_apply(out)
    lab = builder.attached()
    print(
        f"built: run id {builder.run_id}; contexts {', '.join(c.context for c in lab.clusters)} "
        f"in {lab.kubeconfig}",
        file=out,
    )
    return builder


def destroys(topology: str | None, run_id: str | None) -> bool:
    """`netconform-cloud destroy` is this module's: a lab build topology, or (a run id
    alone) a lab that run built is still here."""
    if topology:
        return is_lab_build_file(topology)
    return bool(run_id) and bool(_nobody(run_id).find(run_id))


def destroy(topology: str | None, run_id: str | None, out: TextIO) -> int:
    """Down the lab of `run_id` (else every lab built from the `topology` file), nothing of
    another lab; a lab that refuses to go is named with the lab's error (LabError)."""
    builder = LabBuilder(load_topology(topology), run_id or "") if topology else _nobody(run_id)
    found = builder.find(run_id)
    what = f"run id {run_id}" if run_id else f"topology {builder.topology.name}"
    print(f"destroy: {len(found)} lab(s) built by {what}", file=out)
    report = builder.destroy(found, out)
    print(report.summary(), file=out)
    if report.refused:
        first, err = report.refused[0]
        raise LabError(f"{len(report.refused)} refused to go, first {first.label}: {err}")
    return 0


def _nobody(run_id: str | None) -> LabBuilder:
    """A builder knowing only the run id (what `destroy --run-id` has)."""
    return LabBuilder(Topology(name=f"(run {run_id})", clusters=()), run_id or "")


def write_attached(builder: LabBuilder, source: Path, dest: Path) -> Path:
    """The topology file as the suites read it once built: each cluster's `build` gone, its
    context the lab's, the lab's kubeconfig, world and ports; every other key as written."""
    doc = _raw_file(source)
    lab = builder.lab_plan()
    for entry, region in zip(doc["clusters"], lab.regions, strict=True):
        entry.pop("build", None)
        entry["context"] = f"lab-{region.name}"
        entry.setdefault("service_cidrs", [region.service_cidr])
        if not entry["service_cidrs"]:
            entry["service_cidrs"] = [region.service_cidr]
    doc.pop("build", None)
    doc["kubeconfig"] = str(builder.paths.kubeconfig.resolve())
    doc["runner_netns"] = lab.world_netns
    doc["ports"] = {"required": list(LAB_REQUIRED_PORTS), "closed": list(LAB_CLOSED_PORTS)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return dest


def is_lab_build_file(path: Path | str) -> bool:
    """True when the file is a lab build topology (read and validated)."""
    return is_lab_build(load_topology(path))


def _raw(topology: Topology) -> dict[str, Any]:
    return _raw_file(topology.source) if topology.source is not None else {}


def _raw_file(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else {}


def _record(state_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads((state_dir / BUILD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _claimed(prefix: str) -> Path | None:
    held = ownership.read_claim(prefix)
    return Path(held.state_dir) if held is not None else None


def _exists(prefix: str, state_dir: Path) -> bool:
    """Its daemon serves, or namespaces marked as this state dir's remain."""
    if not prefix:
        return False
    if control.read_state(LabPaths(state_dir)) is not None:
        return True
    own, _others = ownership.split_by_owner(
        network.list_netns(prefix), ownership.owner_of_dir(state_dir)
    )
    return bool(own)


def _build_dirs(root: Path) -> list[Path]:
    """The state dirs of labs built under `root` (`.build/*/lab` with a build record)."""
    try:
        return sorted(p.parent for p in root.glob(f"*/lab/{BUILD_FILE}"))
    except OSError:
        return []


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
