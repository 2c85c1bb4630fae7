"""GCP glue through google-cloud-compute: VPC network peering both ways, ingress firewalls.

Clusters in the same VPC network need no peering (their ranges are routed inside it).
Long-running operations are awaited through a GlobalOperationsClient built with the same
endpoint and credentials as the other clients, so a custom endpoint is honoured throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TextIO, TypeVar

import google.auth
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.auth.credentials import Credentials
from google.cloud import compute_v1

from netconform.cidr import pairs
from netconform.cloudaudit import (
    ALL_PORTS,
    PeeringView,
    PortRange,
    Route,
    RouteTable,
    Rule,
    Snapshot,
    allows,
)
from netconform.errors import CloudError, TopologyError
from netconform.topology import Cluster, Topology
from provisioning.cloud import Action, ApplyReport, Change, apply_changes, cloud_clusters

T = TypeVar("T")
SCOPE = "https://www.googleapis.com/auth/compute"
NO_CREDENTIALS = (
    "gcp: no credentials (set GOOGLE_APPLICATION_CREDENTIALS or run "
    "`gcloud auth application-default login`)"
)


class GcpProvider:
    """Peerings between the clusters' VPC networks and firewall rules for the required ports."""

    cloud = "gcp"

    def __init__(
        self,
        topology: Topology,
        credentials: Credentials | None = None,
        client_options: ClientOptions | None = None,
        tags: str = "",
    ) -> None:
        """`tags`: words added to each firewall's description (a build's run id: firewalls
        have no labels)."""
        self.clusters = cloud_clusters(topology, "gcp")
        self._tags = tags
        for c in self.clusters:
            if not _net(c).project:
                raise TopologyError(
                    f"cluster {c.name} (cloud gcp): network.project: missing required key"
                )
        self.ports = topology.required_ports
        self._credentials = credentials
        self._options = client_options
        self._clients: dict[str, Any] = {}
        self._checked = False

    # -- plumbing -------------------------------------------------------------------------

    def _client(self, kind: str) -> Any:
        if kind not in self._clients:
            if self._credentials is None:
                self._credentials = _default_credentials()
            cls = getattr(compute_v1, kind)
            self._clients[kind] = cls(credentials=self._credentials, client_options=self._options)
        return self._clients[kind]

    def _call(self, what: str, fn: Callable[[], T], not_found: str = "") -> T:
        """Run one API call; errors become one-line CloudErrors (`not_found` for a 404)."""
        try:
            return fn()
        except gexc.Forbidden as err:
            raise CloudError(f"gcp: permission denied: {what}: {_message(err)}") from None
        except gexc.Unauthorized:
            raise CloudError(f"gcp: credentials rejected: {what}") from None
        except gexc.NotFound as err:
            raise CloudError(not_found or f"gcp: not found: {what}: {_message(err)}") from None
        except gexc.GoogleAPICallError as err:
            raise CloudError(f"gcp: {what} failed: {_message(err)}") from None
        except auth_exc.DefaultCredentialsError:
            raise CloudError(NO_CREDENTIALS) from None
        except auth_exc.GoogleAuthError as err:
            raise CloudError(f"gcp: authentication failed: {what}: {err}") from None

    def _wait(self, project: str, op: Any, what: str) -> None:
        """Block until a global operation is DONE; its error becomes a CloudError."""
        ops = self._client("GlobalOperationsClient")
        while op.status != compute_v1.Operation.Status.DONE:
            op = self._call(what, partial(ops.wait, project=project, operation=op.name))
        if op.error and op.error.errors:
            detail = "; ".join(e.message for e in op.error.errors)
            raise CloudError(f"gcp: {what} failed: {detail}")

    def preflight(self) -> None:
        """Credentials, known regions, existing networks: read-only, once."""
        if self._checked:
            return
        for c in self.clusters:
            self._check_region(c)
        for c in self.clusters:
            self._network(c)
        self._checked = True

    def _check_region(self, c: Cluster) -> None:
        project, region = _net(c).project, c.cloud_region
        self._call(
            f"regions.get {region}",
            lambda: self._client("RegionsClient").get(project=project, region=region),
            f"gcp: unknown region {region!r} for cluster {c.name} (project {project})",
        )

    def _network(self, c: Cluster) -> Any:
        net = _net(c)
        return self._call(
            f"networks.get {net.id}",
            lambda: self._client("NetworksClient").get(project=net.project, network=net.id),
            f"gcp: VPC network {net.id} of cluster {c.name} does not exist in project "
            f"{net.project}",
        )

    def _firewalls(self, c: Cluster) -> list[Any]:
        net = _net(c)
        pager = self._call(
            f"firewalls.list {net.project}",
            lambda: list(self._client("FirewallsClient").list(project=net.project)),
        )
        return [f for f in pager if _same_network(f.network, net.project, net.id)]

    # -- plan -----------------------------------------------------------------------------

    def plan(self) -> list[Change]:
        """Peerings (both sides) first, then firewall rules."""
        self.preflight()
        changes: list[Change] = []
        for a, b in pairs(self.clusters):
            changes += self._plan_peering(a, b)
        for dst in self.clusters:
            changes += self._plan_firewalls(dst)
        return changes

    def _plan_peering(self, a: Cluster, b: Cluster) -> list[Change]:
        if _shared(a, b):
            what = f"peering {a.name}<->{b.name}"
            return [Change("gcp", "global", "noop", what, f"same network {_net(a).id}")]
        return [self._plan_side(local, remote) for local, remote in ((a, b), (b, a))]

    def _plan_side(self, local: Cluster, remote: Cluster) -> Change:
        net = _net(local)
        name = _peering_name(local, remote)
        what = f"peering {name} on {net.id} -> {_net(remote).id} ({local.name}->{remote.name})"
        found = _find_peering(self._network(local), remote)
        if found is not None:
            return Change("gcp", "global", "noop", what, f"{found.name} {found.state}")
        return Change(
            "gcp",
            "global",
            "create",
            what,
            f"project {net.project}",
            lambda: self._add_peering(local, remote, name),
        )

    def _add_peering(self, local: Cluster, remote: Cluster, name: str) -> str:
        net = _net(local)
        body = compute_v1.NetworksAddPeeringRequest(
            network_peering=compute_v1.NetworkPeering(
                name=name,
                network=_network_url(remote),
                exchange_subnet_routes=True,
                export_custom_routes=True,
                import_custom_routes=True,
            )
        )
        what = f"networks.addPeering {name} on {net.id}"
        op = self._call(
            what,
            lambda: self._client("NetworksClient").add_peering_unary(
                project=net.project, network=net.id, networks_add_peering_request_resource=body
            ),
        )
        self._wait(net.project, op, what)
        return f"{name} on {net.id}"

    def _plan_firewalls(self, dst: Cluster) -> list[Change]:
        existing = self._firewalls(dst)
        rules = [r for f in existing for r in _rules(dst.name, f)]
        by_name = {f.name: f for f in existing}
        changes = []
        for src in self.clusters:
            if src.name != dst.name:
                changes.append(self._plan_firewall(dst, src, rules, by_name))
        return changes

    def _plan_firewall(
        self, dst: Cluster, src: Cluster, rules: list[Rule], by_name: dict[str, Any]
    ) -> Change:
        name = _rule_name(dst, src)
        ports = ",".join(map(str, self.ports))
        what = (
            f"firewall {name} on {_net(dst).id}: tcp/{ports} from "
            f"{','.join(src.pod_cidrs)} (peer {src.name})"
        )
        if all(allows(rules, cidr, p) for cidr in src.pod_cidrs for p in self.ports):
            return Change("gcp", "global", "noop", what, "already allowed")
        body = self._firewall_body(dst, src, name)
        action: Action = "update" if name in by_name else "create"
        return Change(
            "gcp",
            "global",
            action,
            what,
            f"project {_net(dst).project}",
            lambda: self._put_firewall(dst, body, action),
        )

    def _firewall_body(self, dst: Cluster, src: Cluster, name: str) -> Any:
        return compute_v1.Firewall(
            name=name,
            network=_network_url(dst),
            direction="INGRESS",
            priority=1000,
            source_ranges=list(src.pod_cidrs),
            description=f"netconform: peer {src.name}" + (f" {self._tags}" if self._tags else ""),
            allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=[str(p) for p in self.ports])],
        )

    def _put_firewall(self, dst: Cluster, body: Any, action: str) -> str:
        project, client = _net(dst).project, self._client("FirewallsClient")
        what = f"firewalls.{'insert' if action == 'create' else 'patch'} {body.name}"
        if action == "create":
            op = self._call(
                what, lambda: client.insert_unary(project=project, firewall_resource=body)
            )
        else:
            op = self._call(
                what,
                lambda: client.patch_unary(
                    project=project, firewall=body.name, firewall_resource=body
                ),
            )
        self._wait(project, op, what)
        return f"{body.name} in {project}"

    def apply(self, plan: Sequence[Change], out: TextIO | None = None) -> ApplyReport:
        """Make the plan's changes in order."""
        return apply_changes(plan, out)

    # -- audit input ----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Peerings, imported peering routes and firewall rules, read-only."""
        self.preflight()
        nets = {c.name: self._network(c) for c in self.clusters}
        views = [v for c in self.clusters for v in self._views(c, nets[c.name])]
        tables = tuple(self._route_table(c, nets[c.name]) for c in self.clusters)
        rules = tuple(
            r for c in self.clusters for f in self._firewalls(c) for r in _rules(c.name, f)
        )
        shared = frozenset(
            frozenset((a.name, b.name)) for a, b in pairs(self.clusters) if _shared(a, b)
        )
        return Snapshot(
            cloud="gcp",
            clusters=self.clusters,
            peerings=tuple(views),
            route_tables=tables,
            rules=rules,
            shared=shared,
            firewall_labels={
                c.name: f"firewall of network {_net(c).id} (project {_net(c).project})"
                for c in self.clusters
            },
            rule_sources={c.name: c.pod_cidrs for c in self.clusters},
            route_destinations={c.name: c.pod_cidrs for c in self.clusters},
        )

    def _views(self, local: Cluster, network: Any) -> list[PeeringView]:
        views = []
        for remote in self.clusters:
            p = _find_peering(network, remote) if remote.name != local.name else None
            if p is not None:
                label = f"peering {p.name} on network {_net(local).id}"
                views.append(
                    PeeringView(
                        local.name, remote.name, p.name, label, p.state, p.state == "ACTIVE"
                    )
                )
        return views

    def _imported(self, local: Cluster, peering: str) -> list[Any]:
        net, client = _net(local), self._client("NetworksClient")
        request = compute_v1.ListPeeringRoutesNetworksRequest(
            project=net.project,
            network=net.id,
            direction="INCOMING",
            peering_name=peering,
            region=local.cloud_region,
        )
        return self._call(
            f"networks.listPeeringRoutes {peering}",
            lambda: list(client.list_peering_routes(request=request)),
        )

    def _route_table(self, local: Cluster, network: Any) -> RouteTable:
        net, routes = _net(local), []
        for remote in self.clusters:
            p = _find_peering(network, remote) if remote.name != local.name else None
            if p is None:
                continue
            routes += [Route(r.dest_range, p.name) for r in self._imported(local, p.name)]
        label = f"network {net.id} in {local.cloud_region} (imported peering routes)"
        return RouteTable(local.name, label, tuple(routes))


def _message(err: gexc.GoogleAPICallError) -> str:
    """The API's own message, without the `POST https://...:` prefix the client adds."""
    for item in err.errors or []:
        if isinstance(item, dict) and item.get("message"):
            return str(item["message"])
    return str(err.message).split(": ", 1)[-1]


def _default_credentials() -> Credentials:
    try:
        creds, _ = google.auth.default(scopes=[SCOPE])
    except auth_exc.DefaultCredentialsError:
        raise CloudError(NO_CREDENTIALS) from None
    return creds


def _net(c: Cluster) -> Any:
    assert c.network is not None
    return c.network


def _shared(a: Cluster, b: Cluster) -> bool:
    return bool((_net(a).project, _net(a).id) == (_net(b).project, _net(b).id))


def _network_url(c: Cluster) -> str:
    net = _net(c)
    return f"https://www.googleapis.com/compute/v1/projects/{net.project}/global/networks/{net.id}"


def _same_network(url: str, project: str, name: str) -> bool:
    return url.endswith(f"projects/{project}/global/networks/{name}")


def _find_peering(network: Any, remote: Cluster) -> Any:
    for p in network.peerings:
        if _same_network(p.network, _net(remote).project, _net(remote).id):
            return p
    return None


def _peering_name(local: Cluster, remote: Cluster) -> str:
    return _gce_name(f"netconform-{local.name}-to-{remote.name}")


def _rule_name(dst: Cluster, src: Cluster) -> str:
    return _gce_name(f"netconform-{dst.name}-from-{src.name}")


def _gce_name(raw: str) -> str:
    """RFC 1035 label: lowercase letters, digits, hyphens, at most 63 characters."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in raw.lower())
    return cleaned[:63].rstrip("-")


def _rules(cluster: str, fw: Any) -> list[Rule]:
    if fw.direction != "INGRESS" or fw.disabled or not fw.source_ranges:
        return []
    sources = tuple(fw.source_ranges)
    out = [
        Rule(cluster, fw.name, sources, _ports(a), True, fw.priority)
        for a in fw.allowed
        if a.I_p_protocol in ("tcp", "all", "6")
    ]
    out += [
        Rule(cluster, fw.name, sources, _ports(d), False, fw.priority)
        for d in fw.denied
        if d.I_p_protocol in ("tcp", "all", "6")
    ]
    return out


def _ports(entry: Any) -> tuple[PortRange, ...]:
    if not entry.ports:
        return ALL_PORTS
    ranges = []
    for spec in entry.ports:
        first, _, last = str(spec).partition("-")
        ranges.append(PortRange(int(first), int(last or first)))
    return tuple(ranges)
