"""The topology: which clusters exist, how to reach them, and what the network must allow.

Loaded from YAML and validated up front, so that a typo is reported as
`topology.yaml: clusters[1].pod_cidrs[0]: expected an IPv4 CIDR, got '10.300.0.0/16'`
before anything touches a cluster.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NewType

import yaml

from netconform.errors import TopologyError, UsageError

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
    canary_weight: int = 5
    """canary-weight of the canary Ingress (percent, seed 004's 5)."""
    canary_tolerance: float = 0.0
    """Skew (percentage points) the canary verdict must catch; 0: 5 points, or half the
    weight for weights of 10% and less."""
    tls_host: str = "secure.example"
    tls_expiry_days: int = 14
    """Days a served certificate must still be valid."""


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


def load_topology(path: Path | str) -> Topology:
    """Read and validate a topology file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TopologyError(f"{path}: cannot read topology file: {err.strerror}") from None
    except UnicodeDecodeError:
        raise TopologyError(f"{path}: not a text (UTF-8) file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise TopologyError(f"{path}:{where} malformed YAML: {problem}") from None
    return parse_topology(data, source=path)


def parse_topology(data: Any, source: Path | None = None) -> Topology:
    """Validate a decoded topology document."""
    reader = _Reader(str(source) if source else "<topology>")
    root = reader.mapping(data, "")
    clusters_raw = reader.require(root, "clusters", "")
    if not isinstance(clusters_raw, list) or not clusters_raw:
        reader.fail("clusters", "a non-empty list of clusters", clusters_raw)
    clusters = tuple(
        _parse_cluster(reader, item, f"clusters[{i}]") for i, item in enumerate(clusters_raw)
    )
    _check_unique(reader, clusters)
    if any(c.cloud == "lab" for c in clusters) and not root.get("runner_netns"):
        # the runner's probes must stay inside the lab's world: never this machine's own network
        reader.fail("runner_netns", "the lab's world namespace (a lab topology needs it)", None)
    kubeconfig = root.get("kubeconfig")
    if kubeconfig is not None:
        kubeconfig = Path(reader.string(kubeconfig, "kubeconfig"))
        if source is not None and not kubeconfig.is_absolute():
            kubeconfig = source.parent / kubeconfig
    ports = reader.mapping(root.get("ports", {}), "ports")
    return Topology(
        name=reader.string(root.get("name", "topology"), "name"),
        clusters=clusters,
        kubeconfig=kubeconfig,
        required_ports=reader.ports(
            ports.get("required", list(DEFAULT_REQUIRED_PORTS)), "ports.required"
        ),
        closed_ports=reader.ports(ports.get("closed", []), "ports.closed"),
        images=reader.dataclass_of(Images, root.get("images", {}), "images"),
        probe=reader.dataclass_of(ProbeSettings, root.get("probe", {}), "probe"),
        timeouts=reader.dataclass_of(Timeouts, root.get("timeouts", {}), "timeouts"),
        drift=reader.dataclass_of(Drift, root.get("drift", {}), "drift"),
        ingress=reader.dataclass_of(IngressSettings, root.get("ingress", {}), "ingress"),
        source=source,
        runner_netns=reader.string(root["runner_netns"], "runner_netns")
        if root.get("runner_netns") is not None
        else None,
    )


def _parse_cluster(reader: _Reader, raw: Any, where: str) -> Cluster:
    item = reader.mapping(raw, where)
    name = reader.string(reader.require(item, "name", where), f"{where}.name")
    cloud = reader.string(item.get("cloud", "none"), f"{where}.cloud")
    if cloud not in CLOUDS:
        reader.fail(f"{where}.cloud", f"one of {', '.join(CLOUDS)}", cloud)
    network = None
    if "network" in item:
        network = _parse_network(reader, item["network"], f"{where}.network")
    return Cluster(
        name=ClusterName(name),
        context=reader.string(item.get("context", name), f"{where}.context"),
        region=Region(reader.string(item.get("region", name), f"{where}.region")),
        namespace=Namespace(reader.string(item.get("namespace", name), f"{where}.namespace")),
        pod_cidrs=reader.cidrs(reader.require(item, "pod_cidrs", where), f"{where}.pod_cidrs"),
        service_cidrs=reader.cidrs(item.get("service_cidrs", []), f"{where}.service_cidrs"),
        dns_zone=reader.string(
            item.get("dns_zone", f"{item.get('namespace', name)}.svc.cluster.local"),
            f"{where}.dns_zone",
        ),
        cloud=cloud,
        cloud_region=reader.string(
            item.get("cloud_region", ""), f"{where}.cloud_region", allow_empty=True
        ),
        network=network,
        ingress_address=reader.string(
            item.get("ingress_address", ""), f"{where}.ingress_address", allow_empty=True
        ),
    )


def _parse_network(reader: _Reader, raw: Any, where: str) -> CloudNetwork:
    item = reader.mapping(raw, where)
    return CloudNetwork(
        id=reader.string(reader.require(item, "id", where), f"{where}.id"),
        cidrs=reader.cidrs(item.get("cidrs", []), f"{where}.cidrs"),
        project=reader.string(item.get("project", ""), f"{where}.project", allow_empty=True),
        resource_group=reader.string(
            item.get("resource_group", ""), f"{where}.resource_group", allow_empty=True
        ),
        subscription=reader.string(
            item.get("subscription", ""), f"{where}.subscription", allow_empty=True
        ),
        route_tables=reader.strings(item.get("route_tables", []), f"{where}.route_tables"),
        security_groups=reader.strings(item.get("security_groups", []), f"{where}.security_groups"),
    )


def _check_unique(reader: _Reader, clusters: tuple[Cluster, ...]) -> None:
    for attr in ("name", "context"):
        seen: dict[str, int] = {}
        for i, cluster in enumerate(clusters):
            value = getattr(cluster, attr)
            if value in seen:
                reader.fail(
                    f"clusters[{i}].{attr}",
                    f"a value unique across clusters (clusters[{seen[value]}] has it too)",
                    value,
                )
            seen[value] = i


#: Allowed (low, high) of numeric settings; the rest must be at least 1 (seconds or counts).
_RANGES: dict[str, tuple[float, float | None]] = {
    "tcp_port": (1, 65535),
    "max_loss_percent": (0, 100),
    "max_loss": (0, 1),
    "loss_rounds": (0, 20),
    "converge_rounds": (1, 20),
    "expected_mtu": (576, 65535),
    "ping_interval": (0.2, None),
    "ping_deadline": (0.1, None),
    "connect_timeout": (0.1, None),
    "rtt_ms": (0, None),
    "connect_ms": (0, None),
    "dns_ms": (0, None),
    "relative": (0, None),
    "loss": (0, 1),
    "share": (0, 1),
    "mtu_bytes": (0, 65535),
    "min_samples": (2, 100000),
    "canary_weight": (0, 100),
    "canary_tolerance": (0, 50),
    "tls_expiry_days": (0, 3650),
}

#: Allowed values of string settings.
_CHOICES: dict[str, tuple[str, ...]] = {"icmp_tool": ("fping", "ping")}


class _Reader:
    """Type checks that raise TopologyError naming file, key and expectation."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any) -> None:
        raise TopologyError(f"{self.source}: {key or '<root>'}: expected {expected}, got {got!r}")

    def require(self, mapping: dict[str, Any], key: str, where: str) -> Any:
        if key not in mapping:
            path = f"{where}.{key}" if where else key
            raise TopologyError(f"{self.source}: {path}: missing required key")
        return mapping[key]

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, "a mapping", value)
        return value  # type: ignore[no-any-return]

    def string(self, value: Any, key: str, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or not (allow_empty or value.strip()):
            self.fail(key, "a string" if allow_empty else "a non-empty string", value)
        return str(value)

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(key, "a list of strings", value)
        return tuple(self.string(v, f"{key}[{i}]") for i, v in enumerate(value))

    def cidrs(self, value: Any, key: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(key, "a list of IPv4 CIDRs", value)
        result = []
        for i, item in enumerate(value):
            try:
                result.append(str(ipaddress.IPv4Network(str(item), strict=True)))
            except ValueError:
                self.fail(f"{key}[{i}]", "an IPv4 CIDR like 10.0.0.0/16", item)
        return tuple(result)

    def ports(self, value: Any, key: str) -> tuple[int, ...]:
        if not isinstance(value, list):
            self.fail(key, "a list of TCP ports", value)
        for i, port in enumerate(value):
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                self.fail(f"{key}[{i}]", "a TCP port 1-65535", port)
        return tuple(value)

    def dataclass_of(self, cls: type[Any], value: Any, key: str) -> Any:
        """A dataclass from a mapping; keys, types and ranges checked."""
        raw = self.mapping(value, key)
        defaults = cls()
        kwargs: dict[str, Any] = {}
        for name, item in raw.items():
            if not hasattr(defaults, name):
                known = ", ".join(f for f in vars(defaults))
                raise TopologyError(f"{self.source}: {key}.{name}: unknown key (known: {known})")
            expected = type(getattr(defaults, name))
            if expected is float and isinstance(item, int) and not isinstance(item, bool):
                item = float(item)
            if not isinstance(item, expected) or isinstance(item, bool):
                self.fail(f"{key}.{name}", f"a {expected.__name__}", item)
            low, high = _RANGES.get(name, (1, None))
            if expected in (int, float) and (item < low or (high is not None and item > high)):
                bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
                self.fail(f"{key}.{name}", f"a number {bounds}", item)
            choices = _CHOICES.get(name)
            if choices is not None and item not in choices:
                self.fail(f"{key}.{name}", f"one of {', '.join(choices)}", item)
            kwargs[name] = item
        return cls(**kwargs)


def timeout_overrides(values: Sequence[str], option: str = "--timeout") -> dict[str, float]:
    """`["exec=90", "converge=20"]` -> {"exec": 90.0, "converge": 20.0}: named timeouts given
    on the command line, checked as the topology's own (a name of `Timeouts`, in range)."""
    names = [f.name for f in fields(Timeouts)]
    found: dict[str, float] = {}
    for value in values:
        name, equals, seconds = value.partition("=")
        name = name.strip()
        if not equals or name not in names:
            raise UsageError(
                f"{option} {value!r}: expected NAME=SECONDS, NAME one of {', '.join(names)}"
            )
        low, high = _RANGES.get(name, (1, None))
        try:
            number = float(seconds)
        except ValueError:
            number = float("nan")
        if not (math.isfinite(number) and number >= low and (high is None or number <= high)):
            raise UsageError(
                f"{option} {value!r}: expected {name}=SECONDS, a number at least {low:g}"
            )
        found[name] = number
    return found


def with_timeouts(topology: Topology, overrides: dict[str, float]) -> Topology:
    """The topology with some named timeouts replaced (`timeout_overrides`)."""
    if not overrides:
        return topology
    return replace(topology, timeouts=replace(topology.timeouts, **overrides))


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
    doc["ports"] = {
        "required": list(topology.required_ports),
        "closed": list(topology.closed_ports),
    }
    return doc
