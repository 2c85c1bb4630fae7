"""Building clusters on GCP: per cluster a VPC network (custom subnets), a subnet with the
secondary ranges of VPC-native pods and services, a regional GKE cluster (google-cloud-container,
ClusterManagerClient over REST) with one node pool, a kubeconfig context as `gcloud container
clusters get-credentials` writes it; then the existing glue (provisioning.gcp) peers the
networks and opens the ports.

Tags: GKE clusters and their nodes carry resource labels (`managed-by: netconform`, the run id,
topology and cluster); networks, subnets and firewalls have no labels on GCP, so the same
pairs go in their description (`netconform: managed-by=netconform netconform-run-id=...`),
which destroy reads back. Endpoints: gcloud's own overrides
(CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE, _CONTAINER, _CLOUDRESOURCEMANAGER), scheme and host.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.auth.credentials import Credentials
from google.cloud import compute_v1, container_v1, resourcemanager_v3

from netconform.errors import CloudError, TopologyError
from netconform.topology import CloudNetwork, Cluster, Topology
from provisioning import gcp_creates, gcp_teardown, kubeconfig
from provisioning.build import (
    MANAGED_BY,
    MANAGER,
    RUN_ID_TAG,
    TOPOLOGY_TAG,
    DestroyReport,
    Found,
    Step,
    build_tags,
    built_clusters,
    is_loopback_endpoint,
)
from provisioning.cloud import print_plan
from provisioning.gcp import NO_CREDENTIALS, GcpProvider, _gce_name, _message
from provisioning.gcp import _default_credentials as default_credentials

T = TypeVar("T")
#: Seconds each create usually takes on GCP (a regional GKE cluster with its pool ~8 min).
ESTIMATES = {
    "network": 20.0,
    "subnet": 15.0,
    "gke cluster": 480.0,
    "kubeconfig context": 1.0,
    "network peering": 15.0,
}
#: What the build needs, read with testIamPermissions on the project before any create.
PERMISSIONS = (
    "compute.networks.create",
    "compute.subnetworks.create",
    "compute.networks.addPeering",
    "compute.firewalls.create",
    "container.clusters.create",
    "container.clusters.get",
    "container.operations.get",
    "iam.serviceAccounts.actAs",
)
ENDPOINT_ENV = "CLOUDSDK_API_ENDPOINT_OVERRIDES_"


def endpoint(api: str) -> str | None:
    """gcloud's override of an API's endpoint, as the Python clients want it (scheme://host)."""
    url = os.environ.get(ENDPOINT_ENV + api.upper())
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def label(value: str) -> str:
    """A GCP label value: lower case letters, digits, - and _, at most 63 characters."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in value.lower())[:63]


def description_tags(text: str) -> dict[str, str]:
    """The key=value pairs a build writes into a description."""
    if not text.startswith("netconform"):
        return {}
    return dict(w.split("=", 1) for w in text.split() if "=" in w)


class GcpBuilder:
    """Plans, builds and destroys the topology's `cloud: gcp` clusters that have a build."""

    cloud = "gcp"
    glue_kinds: tuple[str, ...] = ("firewall", "network peering")
    poll = 10.0
    """Seconds between reads of a cluster that is coming up or going."""

    def __init__(
        self,
        topology: Topology,
        run_id: str,
        credentials: Credentials | None = None,
        kubeconfig_path: Path | None = None,
        poll: float | None = None,
    ) -> None:
        self.topology = topology
        self.clusters = built_clusters(topology, "gcp")
        self.run_id = run_id
        self._credentials = credentials
        self._clients: dict[str, Any] = {}
        self.zones: dict[str, str] = {}
        self.kubeconfig_path = kubeconfig_path
        if poll is not None:
            self.poll = poll
        self.out: TextIO = sys.stdout

    # -- plumbing -------------------------------------------------------------------------

    def on_loopback(self) -> bool:
        return all(is_loopback_endpoint(endpoint(a)) for a in ("compute", "container"))

    def credentials(self) -> Credentials:
        if self._credentials is None:
            self._credentials = default_credentials()
        return self._credentials

    def options(self, api: str) -> ClientOptions | None:
        url = endpoint(api)
        return ClientOptions(api_endpoint=url) if url else None

    def client(self, kind: str) -> Any:
        """A compute_v1 client by class name, or `gke` / `projects`."""
        if kind not in self._clients:
            creds = self.credentials()
            if kind == "gke":
                self._clients[kind] = container_v1.ClusterManagerClient(
                    credentials=creds, transport="rest", client_options=self.options("container")
                )
            elif kind == "projects":
                self._clients[kind] = resourcemanager_v3.ProjectsClient(
                    credentials=creds,
                    transport="rest",
                    client_options=self.options("cloudresourcemanager"),
                )
            else:
                cls = getattr(compute_v1, kind)
                self._clients[kind] = cls(credentials=creds, client_options=self.options("compute"))
        return self._clients[kind]

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """One SDK call; its failure as one line (403s name the permission GCP names)."""
        try:
            return fn()
        except gexc.Forbidden as err:
            raise CloudError(f"gcp: permission denied: {what}: {_message(err)}") from None
        except gexc.Unauthorized:
            raise CloudError(f"gcp: credentials rejected: {what}") from None
        except gexc.GoogleAPICallError as err:
            raise CloudError(f"gcp: {what} failed ({err.code}): {_message(err)}") from None
        except auth_exc.DefaultCredentialsError:
            raise CloudError(NO_CREDENTIALS) from None
        except auth_exc.GoogleAuthError as err:
            raise CloudError(f"gcp: authentication failed: {what}: {err}") from None

    def get(self, what: str, fn: Callable[[], T]) -> T | None:
        """`call`, None for a 404."""
        try:
            return fn()
        except gexc.NotFound:
            return None
        except Exception as err:  # everything else worded as `call` words it, not re-sent
            self.call(what, partial(_reraise, err))
            raise

    def wait_op(self, project: str, op: Any, what: str, region: str = "") -> None:
        """Block until a compute operation (global, or of `region`) is DONE."""
        kind = "RegionOperationsClient" if region else "GlobalOperationsClient"
        ops = self.client(kind)
        where = {"region": region} if region else {}
        while op.status != compute_v1.Operation.Status.DONE:
            op = self.call(what, partial(ops.wait, project=project, operation=op.name, **where))
        if op.error and op.error.errors:
            raise CloudError(f"gcp: {what} failed: {'; '.join(e.message for e in op.error.errors)}")

    def project(self, c: Cluster | None = None) -> str:
        assert c is None or c.build is not None
        found = (c.build.project if c and c.build else "") or os.environ.get(
            "GOOGLE_CLOUD_PROJECT", os.environ.get("CLOUDSDK_CORE_PROJECT", "")
        )
        if not found:
            where = f"cluster {c.name}: build.project" if c else "gcp"
            raise TopologyError(f"{where}: no project (set it, or GOOGLE_CLOUD_PROJECT)")
        return found

    def projects(self) -> list[str]:
        return sorted({self.project(c) for c in self.clusters}) or [self.project()]

    def name(self, c: Cluster) -> str:
        return _gce_name(f"{self.topology.name}-{c.name}")[:40].rstrip("-")

    def labels(self, c: Cluster) -> dict[str, str]:
        return {k: label(v) for k, v in build_tags(self.run_id, self.topology, c.name).items()}

    def description(self, c: Cluster | None, what: str) -> str:
        tags = self.labels(c) if c else {k: label(v) for k, v in self._glue_tags().items()}
        return f"netconform: {what} " + " ".join(f"{k}={v}" for k, v in tags.items())

    def _glue_tags(self) -> dict[str, str]:
        return build_tags(self.run_id, self.topology)

    def path(self, c: Cluster, cluster: str = "") -> str:
        base = f"projects/{self.project(c)}/locations/{c.cloud_region}"
        return f"{base}/clusters/{cluster}" if cluster else base

    # -- validation (read-only, before any create) ------------------------------------------

    def validate(self) -> None:
        """Projects, regions, versions and machine types, one line naming the cluster; then
        the permissions the build needs (testIamPermissions on each project)."""
        for c in self.clusters:
            self._check_region(c)
        for c in self.clusters:
            self._check_version(c)
            self._check_machine_type(c)
        for project in self.projects():
            self._check_permissions(project)

    def _check_region(self, c: Cluster) -> None:
        project = self.project(c)
        region = self.get(
            f"regions.get {c.cloud_region}",
            lambda: self.client("RegionsClient").get(project=project, region=c.cloud_region),
        )
        if region is None:
            raise TopologyError(
                f"cluster {c.name}: cloud_region: gcp has no region {c.cloud_region!r}"
            )
        zones = sorted(z.rstrip("/").rsplit("/", 1)[-1] for z in region.zones)
        if not zones:
            raise CloudError(f"gcp: region {c.cloud_region} lists no zones")
        self.zones[c.name] = zones[0]

    def _check_version(self, c: Cluster) -> None:
        assert c.build is not None
        config = self.call(
            f"getServerConfig {c.cloud_region}",
            lambda: self.client("gke").get_server_config(name=self.path(c)),
        )
        offered = sorted(
            {".".join(v.split(".")[:2]) for v in config.valid_master_versions},
            key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()),
        )
        if c.build.kubernetes_version not in offered:
            raise TopologyError(
                f"cluster {c.name}: build.kubernetes_version: GKE offers {', '.join(offered)} "
                f"in {c.cloud_region}, not {c.build.kubernetes_version!r}"
            )

    def _check_machine_type(self, c: Cluster) -> None:
        assert c.build is not None
        zone, mt = self.zones[c.name], c.build.machine_type
        found = self.get(
            f"machineTypes.get {mt}",
            lambda: self.client("MachineTypesClient").get(
                project=self.project(c), zone=zone, machine_type=mt
            ),
        )
        if found is None:
            raise TopologyError(
                f"cluster {c.name}: build.machine_type: {zone} has no machine type {mt!r}"
            )

    def _check_permissions(self, project: str) -> None:
        request = {"resource": f"projects/{project}", "permissions": list(PERMISSIONS)}
        granted = self.call(
            f"projects.testIamPermissions {project}",
            lambda: self.client("projects").test_iam_permissions(request=request),
        )
        missing = [p for p in PERMISSIONS if p not in set(granted.permissions)]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise CloudError(
                f"gcp: missing permission {missing[0]}{more} on project {project} "
                "(testIamPermissions, before any create)"
            )

    # -- plan -----------------------------------------------------------------------------

    def _step(
        self,
        c: Cluster,
        kind: str,
        name: str,
        have: str,
        detail: str,
        run: Callable[[], list[Found]],
        region: str = "",
        concurrent: str = "",
    ) -> Step:
        region = region or c.cloud_region
        if have:
            return Step("gcp", region, kind, name, "noop", 0, have)
        return Step("gcp", region, kind, name, "create", ESTIMATES[kind], detail, run, concurrent)

    def _ours(self, c: Cluster, kind: str, name: str, tags: dict[str, str]) -> None:
        if tags.get(MANAGED_BY) != MANAGER or tags.get(TOPOLOGY_TAG) != label(self.topology.name):
            raise CloudError(
                f"gcp: {kind} {name} (cluster {c.name}) exists and is not this topology's "
                f"(no {MANAGED_BY}={MANAGER} and {TOPOLOGY_TAG}={label(self.topology.name)}): "
                "refusing to adopt or replace it"
            )
        if tags.get(RUN_ID_TAG):
            self.run_id = tags[RUN_ID_TAG]  # a rebuild keeps the run id of what it finds

    def plan(self) -> list[Step]:
        """Networks and subnets, then the clusters (side by side), then the contexts."""
        steps: list[Step] = []
        for c in self.clusters:
            steps += self._plan_network(c)
        steps += [self._plan_cluster(c) for c in self.clusters]
        steps += [self._plan_context(c) for c in self.clusters]
        return steps

    def _plan_network(self, c: Cluster) -> list[Step]:
        assert c.build is not None
        project, name = self.project(c), self.name(c)
        net = self.network(c)
        if net is not None:
            self._ours(c, "network", name, description_tags(net.description))
        sub = self.get(
            f"subnetworks.get {name}",
            lambda: self.client("SubnetworksClient").get(
                project=project, region=c.cloud_region, subnetwork=name
            ),
        )
        if sub is not None:
            self._ours(c, "subnet", name, description_tags(sub.description))
        ranges = [f"pods {c.pod_cidrs[0]}"] + [f"services {s}" for s in c.service_cidrs[:1]]
        return [
            self._step(
                c,
                "network",
                name,
                "present" if net else "",
                f"project {project}, custom subnets",
                lambda: gcp_creates.create_network(self, c),
                region="global",
            ),
            self._step(
                c,
                "subnet",
                name,
                "present" if sub else "",
                f"{c.build.vpc_cidr}; secondary {', '.join(ranges)}",
                lambda: gcp_creates.create_subnet(self, c),
            ),
        ]

    def network(self, c: Cluster) -> Any:
        project, name = self.project(c), self.name(c)
        return self.get(
            f"networks.get {name}",
            lambda: self.client("NetworksClient").get(project=project, network=name),
        )

    def cluster_info(self, c: Cluster) -> Any:
        return self.get(
            f"clusters.get {self.name(c)}",
            lambda: self.client("gke").get_cluster(name=self.path(c, self.name(c))),
        )

    def _plan_cluster(self, c: Cluster) -> Step:
        assert c.build is not None
        name, found = self.name(c), self.cluster_info(c)
        have = ""
        if found is not None:
            self._ours(c, "gke cluster", name, dict(found.resource_labels))
            have = f"{found.status.name}, version {found.current_master_version}"
        detail = (
            f"version {c.build.kubernetes_version}, {c.build.network_mode}, "
            f"{c.build.node_count} x {c.build.machine_type} in {self.zones.get(c.name, '?')}; "
            "up beside the others (cluster_ready)"
        )
        return self._step(
            c,
            "gke cluster",
            name,
            have,
            detail,
            lambda: gcp_creates.create_cluster(self, c),
            concurrent="gke cluster",
        )

    def _plan_context(self, c: Cluster) -> Step:
        path = self.kubeconfig()
        user = kubeconfig.gke_name(self.project(c), c.cloud_region, self.name(c))
        return self._step(
            c,
            "kubeconfig context",
            c.context,
            "present" if kubeconfig.has_user(path, c.context, user) else "",
            f"in {path} once the cluster is RUNNING; token by gke-gcloud-auth-plugin",
            lambda: gcp_creates.write_context(self, c),
        )

    def kubeconfig(self) -> Path:
        return self.kubeconfig_path or kubeconfig.default_path(self.topology)

    # -- teardown (provisioning/gcp_teardown.py) --------------------------------------------

    def find(self, run_id: str | None, regions: Sequence[str] | None = None) -> list[Found]:
        return gcp_teardown.find(self, run_id, regions)

    def destroy(self, resources: Sequence[Found], out: TextIO | None = None) -> DestroyReport:
        return gcp_teardown.destroy(self, resources, out)

    # -- the glue -------------------------------------------------------------------------

    def attached(self) -> Topology:
        clusters = []
        for c in self.topology.clusters:
            if c in self.clusters and c.build is not None:
                net = CloudNetwork(
                    id=self.name(c), cidrs=(c.build.vpc_cidr,), project=self.project(c)
                )
                c = replace(c, network=net)
            clusters.append(c)
        return replace(self.topology, clusters=tuple(clusters), kubeconfig=self.kubeconfig())

    def glue(self) -> GcpProvider:
        words = " ".join(f"{k}={label(v)}" for k, v in self._glue_tags().items())
        return GcpProvider(self.attached(), self.credentials(), self.options("compute"), words)

    def after_apply(self, out: TextIO) -> None:
        provider = self.glue()
        plan = provider.plan()
        print_plan(plan, out)
        print(f"gcp: {provider.apply(plan, out).summary()}", file=out)

    def glue_plan(self) -> list[Step]:
        """The glue's changes as build steps once every network exists, else the peerings."""
        exists = all(self.network(c) is not None for c in self.clusters)
        if not exists:
            names = [c.name for c in self.clusters]
            return [
                Step(
                    "gcp",
                    "global",
                    "network peering",
                    f"{a}<->{b}",
                    "create",
                    ESTIMATES["network peering"],
                    "both ways; then firewall rules for the ports",
                )
                for i, a in enumerate(names)
                for b in names[i + 1 :]
            ]
        return [
            Step(
                "gcp",
                ch.region,
                "glue",
                ch.resource,
                ch.action,
                0 if ch.action == "noop" else 5,
                ch.detail,
            )
            for ch in self.glue().plan()
        ]


def _reraise(err: Exception) -> None:
    raise err
