"""The topology: which clusters exist, how to reach them, and what the network must allow.

Loaded from YAML and validated up front, so that a typo is reported as
`topology.yaml: clusters[1].pod_cidrs[0]: expected an IPv4 CIDR, got '10.300.0.0/16'`
before anything touches a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NewType

from netconform.errors import TopologyError
from netconform.topology_build_check import check_build
from netconform.topology_check import Checker, load_yaml
from netconform.topology_schema import Key, Section, attribute_docs, section_of

ClusterName = NewType("ClusterName", str)
Region = NewType("Region", str)
Namespace = NewType("Namespace", str)

#: ZooKeeper client/peer/election, Kafka and Schema Registry (seed 000).
DEFAULT_REQUIRED_PORTS: tuple[int, ...] = (2181, 2888, 3888, 9092, 8081)
CLOUDS = ("lab", "aws", "gcp", "azure", "none")


@dataclass(frozen=True)
class Timeouts:
    """Named waits in seconds; one field per kind of wait (gateway-api style)."""

    api_ready: float = 30.0
    """The API server answers /version."""
    pod_ready: float = 120.0
    """A pod reports phase Running with an IP."""
    deletion: float = 60.0
    """Workloads labelled with a run id are gone."""
    exec: float = 60.0
    """One exec (one batch of probes) finishes."""
    lab_up: float = 120.0
    """The embedded lab answers on every cluster."""
    converge: float = 10.0
    """Failed cases of a converging check are re-probed until they pass, this long."""
    load_balancer: float = 60.0
    """A LoadBalancer Service gets an address in its status."""
    ingress: float = 30.0
    """An ingress controller serves a new Ingress (its routes answer from their backends)."""
    cluster_ready: float = 1800.0
    """A cluster being built reports ACTIVE / RUNNING / Succeeded (EKS takes 10-15 min)."""
    nodes_ready: float = 1200.0
    """A cluster's node group (node pool) being built reports ready."""
    cluster_deleted: float = 1800.0
    """A cluster (or its node group) being destroyed is gone."""


@dataclass(frozen=True)
class ProbeSettings:
    """How hard each probe tries before it calls a destination unreachable."""

    ping_count: int = 3
    """Echo requests per pair."""
    ping_interval: float = 0.2
    """Seconds between echo requests (0.2 is the smallest an unprivileged ping allows)."""
    ping_deadline: float = 1.0
    """Seconds to wait for the last reply."""
    tcp_port: int = 8080
    """Port the probe pods listen on, for pod-to-pod TCP connects."""
    connect_timeout: float = 2.0
    """Seconds a TCP connect may take before it counts as a timeout."""
    max_loss_percent: float = 0.0
    """Packet loss above this fails one pod pair's ping, where pairs are judged alone."""
    max_loss: float = 0.01
    """Loss budget of a region pair (a fraction): pod-to-pod fails a pair only when its loss
    over every ping between the two regions is credibly (99% bound) above it."""
    loss_rounds: int = 3
    """Re-probes of a region pair whose loss looks above budget but is not yet credibly so."""
    expected_mtu: int = 1500
    """Path MTU (bytes) every region pair must carry unfragmented."""
    pods_per_node: int = 2
    """Probe pods per node; two give same-node pairs too."""
    parallel_execs: int = 40
    """Batches (one exec per source pod) running at the same time (40: all 36 sources of a
    9-region lab in one round; measured 9.7 -> 8.1 s against 16)."""
    probes_per_wave: int = 48
    """Probes one batch starts at once; bounds the processes a source pod runs."""
    icmp_tool: str = "fping"
    """`fping` (one process reaches every destination) or `ping` (one per destination)."""
    converge_rounds: int = 2
    """A converging check has converged once its expectation held on this many consecutive
    rounds of re-probing (the cases that failed in any round), as gateway-api's
    AwaitConvergence threshold: one lucky retry is not enough."""


@dataclass(frozen=True)
class Drift:
    """How far a number may move from a baseline run before it is flagged; a move is flagged
    only when it is also beyond the two runs' own noise (see `reports.baseline`)."""

    rtt_ms: float = 5.0
    """ICMP round trip, p50 and p99 per region pair: ms on top of the baseline's value."""
    connect_ms: float = 50.0
    """TCP handshake time (curl's connect time), p50 and p99 per region pair, ms."""
    dns_ms: float = 50.0
    """DNS query time (dig's), p50 and p99 per region pair, ms."""
    relative: float = 0.5
    """...or this fraction of the baseline's value, whichever is larger (latencies)."""
    loss: float = 0.02
    """Packet loss per region pair, as a fraction (0.02: two percentage points)."""
    share: float = 0.05
    """A measured traffic share (canary), as a fraction."""
    mtu_bytes: int = 0
    """A path MTU may shrink by this many bytes (0: any decrease is flagged)."""
    min_samples: int = 8
    """Fewer samples than this in either run: the metric is not judged (said so)."""


@dataclass(frozen=True)
class Images:
    """Container images the suite deploys."""

    probe: str = "nicolaka/netshoot:v0.13"
    """Has ping, dig, curl, nc and openssl; listens on the probe TCP port."""
    echo: str = "registry.k8s.io/e2e-test-images/agnhost:2.47"
    """Answers HTTP with its pod name."""


@dataclass(frozen=True)
class IngressSettings:
    """What the ingress, canary and tls suites deploy and where they reach it."""

    ingress_class: str = "nginx"
    """The IngressClass of the suites' Ingresses; a cluster without it is not supported."""
    service: str = "ingress-nginx/ingress-nginx-controller"
    """NAMESPACE/NAME of the controller's LoadBalancer Service (its address is dialled)."""
    internal_service: str = "ingress-nginx/ingress-nginx-controller-internal"
    """NAMESPACE/NAME of an internal LoadBalancer in front of the controller, where one
    exists (seed 003: reached from the other cluster)."""
    routing_host: str = "echo.example"
    """Host of the routing suite's Ingress (also `*.` + it, for the wildcard rule)."""
    canary_host: str = "canary.example"
    """Host of the canary suite's stable and canary Ingresses."""
    canary_weight: int = 5
    """canary-weight of the canary Ingress (percent, seed 004's 5)."""
    canary_tolerance: float = 0.0
    """Skew (percentage points) the canary verdict must catch; 0: 5 points, or half the
    weight for weights of 10% and less."""
    tls_host: str = "secure.example"
    """Host of the tls suite's Ingress and certificate."""
    tls_expiry_days: int = 14
    """Days a served certificate must still be valid."""


@dataclass(frozen=True)
class PolicySettings:
    """What the network-policy suite's generic mode judges (topology key `network_policy`)."""

    namespaces: tuple[str, ...] = ()
    """The namespaces whose policies and pods are judged besides the region namespace; empty:
    every namespace with probe-able pods (running, on the pod network, declaring a port)."""
    probe_namespaces: tuple[str, ...] = ()
    """Namespaces the suite may deploy its probe pods into (as sources under their egress
    policies and destinations under their ingress policies); empty: none, only the region
    namespace. Deploying into a user's namespace is opt-in."""


@dataclass(frozen=True)
class CloudNetwork:
    """Where a cluster lives on its cloud; used by provisioning and the cloud audits."""

    id: str
    """VPC id (aws), VPC network name (gcp) or VNet resource id (azure)."""
    cidrs: tuple[str, ...] = ()
    """The network's address ranges; empty means the cluster's pod CIDRs."""
    project: str = ""
    """GCP project id."""
    resource_group: str = ""
    """Azure resource group of the VNet and NSG."""
    subscription: str = ""
    """Azure subscription id."""
    route_tables: tuple[str, ...] = ()
    """AWS route table ids used by the cluster subnets (empty: all of the VPC's)."""
    security_groups: tuple[str, ...] = ()
    """AWS security group ids of the nodes, or the Azure NSG name (one)."""


#: The flat pod network each cloud's flavour builds: pods take routable network addresses.
NETWORK_MODES = {"aws": "vpc-cni", "gcp": "vpc-native", "azure": "azure-cni", "lab": "lab-vpc"}
#: The node size a build uses when the topology names none.
DEFAULT_MACHINE_TYPES = {"aws": "m5.large", "gcp": "e2-standard-4", "azure": "Standard_D4s_v5"}
#: The Kubernetes version a build asks for when the topology names none (the lab's API
#: server serves one version only).
DEFAULT_VERSIONS = {"lab": "1.32"}


@dataclass(frozen=True)
class ClusterBuild:
    """How `netconform-cloud build` makes this cluster and its network (the cluster's
    `cloud`, `cloud_region`, `pod_cidrs` and `service_cidrs` are used as given)."""

    vpc_cidr: str
    """Address range of the VPC (aws), VPC subnet (gcp) or VNet (azure) the build creates."""
    kubernetes_version: str = "1.31"
    """Kubernetes minor version; refused before any create when the flavour does not offer it
    (the lab: 1.32, the default there)."""
    node_count: int = 2
    """Nodes of the cluster's one node group (node pool)."""
    machine_type: str = ""
    """Instance type of the nodes."""
    network_mode: str = ""
    """The flavour's flat pod network (the lab: its routed VPCs, pods in their node's slice)."""
    project: str = ""
    """GCP project to build in (gcp; default: GOOGLE_CLOUD_PROJECT)."""
    subscription: str = ""
    """Azure subscription to build in (azure; default: AZURE_SUBSCRIPTION_ID); the build makes
    a resource group TOPOLOGY-CLUSTER in it."""


@dataclass(frozen=True)
class BuildSettings:
    """What `netconform-cloud build` and `pytest --build` may do (topology key `build`)."""

    confirm: bool = False
    """A build on a real cloud goes ahead without `--yes` (it costs money)."""


@dataclass(frozen=True)
class Cluster:
    """One region's cluster."""

    name: ClusterName
    """Short name used in ids and messages (`east`)."""
    context: str
    """kubeconfig context (`mrc-east`, `lab-east`)."""
    region: Region
    """Region label; usually the same as the name."""
    namespace: Namespace
    """The region namespace the suite deploys into (seed: one per cluster)."""
    pod_cidrs: tuple[str, ...]
    """Flat, routable pod address ranges."""
    service_cidrs: tuple[str, ...] = ()
    """ClusterIP ranges."""
    dns_zone: str = ""
    """The zone this cluster is authoritative for (`east.svc.cluster.local`)."""
    cloud: str = "none"
    """aws, gcp, azure, lab or none."""
    cloud_region: str = ""
    """The cloud's own region name (`us-east-2`)."""
    network: CloudNetwork | None = None
    """The cloud network, when provisioning or auditing it."""
    ingress_address: str = ""
    """The ingress controller's address, when not the `ingress.service`'s status address."""
    build: ClusterBuild | None = None
    """What `netconform-cloud build` creates for this cluster (instead of naming a `network`)."""


@dataclass(frozen=True)
class Topology:
    """Everything the suite knows about the clusters under test."""

    name: str
    """A label for reports (`lab`, `mrc-prod`)."""
    clusters: tuple[Cluster, ...]
    """One per region."""
    kubeconfig: Path | None = None
    """kubeconfig file; None means the client's default (KUBECONFIG or ~/.kube/config)."""
    required_ports: tuple[int, ...] = DEFAULT_REQUIRED_PORTS
    """TCP ports that must be open between every pair of region pod subnets."""
    closed_ports: tuple[int, ...] = ()
    """TCP ports declared closed between regions."""
    images: Images = field(default_factory=Images)
    """Images to deploy."""
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    """Probe tuning."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    """Named waits."""
    source: Path | None = None
    """The file this was loaded from, for messages."""
    runner_netns: str | None = None
    """The network namespace the runner's probes run in (the lab's world); None: this machine
    as it is (real clusters)."""
    drift: Drift = field(default_factory=Drift)
    """Thresholds of numeric drift against a baseline run."""
    ingress: IngressSettings = field(default_factory=IngressSettings)
    """The ingress, canary and tls suites' settings."""
    network_policy: PolicySettings = field(default_factory=PolicySettings)
    """What generic NetworkPolicy mode judges and where it may deploy."""
    build: BuildSettings = field(default_factory=BuildSettings)
    """What a build may do."""

    def cluster(self, name: str) -> Cluster:
        """The cluster called `name`; TopologyError naming the known ones otherwise."""
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        known = ", ".join(c.name for c in self.clusters)
        raise TopologyError(f"no cluster named {name!r} in the topology (known: {known})")

    @property
    def names(self) -> tuple[ClusterName, ...]:
        return tuple(c.name for c in self.clusters)

    def deploy_namespaces(self, name: str) -> tuple[str, ...]:
        """Where the suite may deploy in cluster `name`: its region namespace, then the
        `network_policy.probe_namespaces`."""
        region = self.cluster(name).namespace
        return (region, *(n for n in self.network_policy.probe_namespaces if n != region))


#: Allowed (low, high) of numeric settings; the rest are between 1 and a day (seconds, counts).
_RANGES: dict[str, tuple[float, float | None]] = {
    "ping_count": (1, 1000),
    "tcp_port": (1, 65535),
    "max_loss_percent": (0, 100),
    "max_loss": (0, 1),
    "loss_rounds": (0, 20),
    "converge_rounds": (1, 20),
    "expected_mtu": (576, 65535),
    "ping_interval": (0.2, 60),
    "ping_deadline": (0.1, 600),
    "connect_timeout": (0.1, 600),
    "pods_per_node": (1, 100),
    "parallel_execs": (1, 1000),
    "probes_per_wave": (1, 1000),
    "rtt_ms": (0, 60000),
    "connect_ms": (0, 60000),
    "dns_ms": (0, 60000),
    "relative": (0, 100),
    "loss": (0, 1),
    "share": (0, 1),
    "mtu_bytes": (0, 65535),
    "min_samples": (2, 100000),
    "canary_weight": (0, 100),
    "canary_tolerance": (0, 50),
    "tls_expiry_days": (0, 3650),
    "node_count": (1, 100),
}

#: Allowed values of string settings.
_CHOICES: dict[str, tuple[str, ...]] = {
    "icmp_tool": ("fping", "ping"),
    "cloud": CLOUDS,
    "network_mode": tuple(NETWORK_MODES.values()),
}


def _schema() -> Section:
    """The topology file's schema, derived from the dataclasses above (see topology_schema)."""
    docs = attribute_docs(Topology)
    cluster_docs = attribute_docs(Cluster)

    def derived(name: str, what: str) -> Key:
        return Key(name, "string", f"{cluster_docs[name]} Default: {what}.")

    network = section_of(CloudNetwork, _RANGES, _CHOICES)
    build_docs = attribute_docs(ClusterBuild)
    modes = ", ".join(f"{k}: {v}" for k, v in NETWORK_MODES.items())
    types = ", ".join(f"{k}: {v}" for k, v in DEFAULT_MACHINE_TYPES.items())
    build = section_of(
        ClusterBuild,
        _RANGES,
        _CHOICES,
        {
            "vpc_cidr": Key("vpc_cidr", "cidr", build_docs["vpc_cidr"], required=True),
            "machine_type": Key(
                "machine_type", "string", f"{build_docs['machine_type']} Default: {types}."
            ),
            "network_mode": Key(
                "network_mode",
                "choice",
                f"{build_docs['network_mode']} Default and only choice per cloud: {modes}.",
                choices=tuple(NETWORK_MODES.values()),
            ),
        },
    )
    cluster = section_of(
        Cluster,
        _RANGES,
        _CHOICES,
        {
            "context": derived("context", "the cluster's name"),
            "region": derived("region", "the cluster's name"),
            "namespace": derived("namespace", "the cluster's name"),
            "dns_zone": derived("dns_zone", "NAMESPACE.svc.cluster.local"),
            "network": Key("network", "section", cluster_docs["network"], section=network),
            "build": Key("build", "section", cluster_docs["build"], section=build),
        },
    )
    ports = Section(
        "ports",
        (
            Key("required", "ports", docs["required_ports"], default=list(DEFAULT_REQUIRED_PORTS)),
            Key("closed", "ports", docs["closed_ports"], default=[]),
        ),
        "TCP ports between regions.",
    )
    sections = {
        "images": Images,
        "probe": ProbeSettings,
        "timeouts": Timeouts,
        "drift": Drift,
        "ingress": IngressSettings,
        "network_policy": PolicySettings,
        "build": BuildSettings,
    }
    return Section(
        "Topology",
        (
            Key("name", "string", docs["name"], default="topology"),
            Key("clusters", "sections", docs["clusters"], required=True, section=cluster),
            Key("kubeconfig", "path", f"{docs['kubeconfig']} Relative to the topology file."),
            Key("runner_netns", "string", docs["runner_netns"]),
            Key("ports", "section", ports.description, section=ports),
            *(
                Key(name, "section", docs[name], section=section_of(cls, _RANGES, _CHOICES))
                for name, cls in sections.items()
            ),
        ),
        " ".join((Topology.__doc__ or "").split()),
    )


#: The schema the loader checks every key against; the JSON Schema file is generated from it.
SCHEMA = _schema()


def load_topology(path: Path | str) -> Topology:
    """Read and validate a topology file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TopologyError(f"{path}: cannot read topology file: {err.strerror}") from None
    except UnicodeDecodeError:
        raise TopologyError(f"{path}: not a text (UTF-8) file") from None
    return parse_topology(load_yaml(text, str(path)), source=path)


def parse_topology(data: Any, source: Path | None = None) -> Topology:
    """Validate a decoded topology document: every key of every section, before anything."""
    checker = Checker(str(source) if source else "<topology>")
    root = checker.section(data, SCHEMA, "", getattr(data, "line", 1))
    clusters = tuple(_cluster(item) for item in root["clusters"])
    _check_unique(checker, clusters)
    for i, cluster in enumerate(clusters):
        check_build(checker, i, cluster, NETWORK_MODES)
    # the runner's probes must stay inside the lab's world: never this machine's own network
    # (a lab the topology builds sets it: the build names its world namespace)
    if any(c.cloud == "lab" and c.build is None for c in clusters) and not root.get("runner_netns"):
        checker.fail("runner_netns", 0, "the lab's world namespace (a lab topology needs it)", None)
    kubeconfig = root.get("kubeconfig")
    if kubeconfig is not None:
        kubeconfig = Path(kubeconfig)
        if source is not None and not kubeconfig.is_absolute():
            kubeconfig = source.parent / kubeconfig
    ports = root.get("ports", {})
    return Topology(
        name=root.get("name", "topology"),
        clusters=clusters,
        kubeconfig=kubeconfig,
        required_ports=ports.get("required", DEFAULT_REQUIRED_PORTS),
        closed_ports=ports.get("closed", ()),
        images=Images(**root.get("images", {})),
        probe=ProbeSettings(**root.get("probe", {})),
        timeouts=Timeouts(**root.get("timeouts", {})),
        drift=Drift(**root.get("drift", {})),
        ingress=IngressSettings(**root.get("ingress", {})),
        network_policy=PolicySettings(**root.get("network_policy", {})),
        build=BuildSettings(**root.get("build", {})),
        source=source,
        runner_netns=root.get("runner_netns"),
    )


def _cluster(item: dict[str, Any]) -> Cluster:
    """A checked cluster entry, its derived defaults filled in."""
    name = item["name"]
    namespace = item.get("namespace", name)
    network = item.get("network")
    build = item.get("build")
    cloud = item.get("cloud", "none")
    if build is not None:
        build = ClusterBuild(
            **{
                **build,
                "kubernetes_version": build.get(
                    "kubernetes_version", DEFAULT_VERSIONS.get(cloud, "1.31")
                ),
                "machine_type": build.get("machine_type", DEFAULT_MACHINE_TYPES.get(cloud, "")),
                "network_mode": build.get("network_mode", NETWORK_MODES.get(cloud, "")),
            }
        )
    return Cluster(
        **{
            **item,
            "context": item.get("context", name),
            "region": item.get("region", name),
            "namespace": namespace,
            "dns_zone": item.get("dns_zone", f"{namespace}.svc.cluster.local"),
            "network": CloudNetwork(**network) if network is not None else None,
            "build": build,
        }
    )


def _check_unique(checker: Checker, clusters: tuple[Cluster, ...]) -> None:
    for attr in ("name", "context"):
        seen: dict[str, int] = {}
        for i, cluster in enumerate(clusters):
            value = getattr(cluster, attr)
            if value in seen:
                where = f"clusters[{i}].{attr}"
                checker.fail(
                    where,
                    checker.lines.get(where, checker.lines.get(f"clusters[{i}]", 0)),
                    f"a value unique across clusters (clusters[{seen[value]}] has it too)",
                    value,
                )
            seen[value] = i


def dump_topology(topology: Topology) -> dict[str, Any]:
    """The YAML-ready form of a topology (the lab writes one)."""
    clusters = []
    for c in topology.clusters:
        entry: dict[str, Any] = {
            "name": c.name,
            "context": c.context,
            "region": c.region,
            "namespace": c.namespace,
            "pod_cidrs": list(c.pod_cidrs),
            "service_cidrs": list(c.service_cidrs),
            "dns_zone": c.dns_zone,
            "cloud": c.cloud,
        }
        if c.cloud_region:
            entry["cloud_region"] = c.cloud_region
        if c.ingress_address:
            entry["ingress_address"] = c.ingress_address
        clusters.append(entry)
    doc: dict[str, Any] = {"name": topology.name, "clusters": clusters}
    if topology.kubeconfig is not None:
        doc["kubeconfig"] = str(topology.kubeconfig)
    if topology.runner_netns is not None:
        doc["runner_netns"] = topology.runner_netns
    if topology.ingress != IngressSettings():
        doc["ingress"] = {k: v for k, v in vars(topology.ingress).items()
                          if v != getattr(IngressSettings(), k)}  # fmt: skip
    if topology.network_policy != PolicySettings():
        doc["network_policy"] = {k: list(v) for k, v in vars(topology.network_policy).items()}
    doc["ports"] = {
        "required": list(topology.required_ports),
        "closed": list(topology.closed_ports),
    }
    return doc
