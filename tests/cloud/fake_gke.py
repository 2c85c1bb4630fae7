"""GKE and the Compute calls a GKE build makes, on loopback, in the REST wire format the
google-cloud-container (v1), google-cloud-compute (v1) and google-cloud-resource-manager (v3)
clients send and parse.

Extends tests.cloud.fake_gcp.FakeGcp (networks, peerings, firewalls, global operations) with:
networks insert/list/delete/removePeering, subnetworks insert/get/aggregatedList/delete with
their region operations, zones' machine types, firewalls delete; GKE serverConfig, clusters
create/get/list/delete and their operations (a cluster is PROVISIONING for a few reads, then
RUNNING; STOPPING for a few reads after a delete, then gone); the project's
testIamPermissions. Deletes refuse what is still in use, as GCP does
(`resourceInUseByAnotherResource`).
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from tests.cloud.fake_gcp import API, FakeGcp, P, Reply, error

V1 = "/v1/projects/([^/]+)/locations/([^/]+)"
MACHINE_TYPES = ("e2-standard-4", "e2-standard-2", "n2-standard-4")
GKE_VERSIONS = ("1.33.5-gke.1201000", "1.32.9-gke.1108000", "1.31.13-gke.1023000")
#: Reads of a cluster before its status moves on (PROVISIONING -> RUNNING, STOPPING -> gone).
READS = 2


def gke_error(code: int, status: str, message: str) -> Reply:
    """GKE's and Resource Manager's error envelope (google.rpc.Status as JSON)."""
    return code, {"error": {"code": code, "message": message, "status": status}}


class FakeGke(FakeGcp):
    def __init__(self) -> None:
        super().__init__()
        self.subnets: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.clusters: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.reads: dict[tuple[str, str, str], int] = {}
        self.gke_ops: dict[str, dict[str, Any]] = {}
        self.missing_permissions: set[str] = set()
        self._n = itertools.count(1)
        r = self.server.router
        r.add("GET", f"{P}/global/networks", self.list_networks)
        r.add("POST", f"{P}/global/networks", self.insert_network)
        r.add("DELETE", f"{P}/global/networks/([^/]+)", self.delete_network)
        r.add("POST", f"{P}/global/networks/([^/]+)/removePeering", self.remove_peering)
        r.add("DELETE", f"{P}/global/firewalls/([^/]+)", self.delete_firewall)
        r.add("GET", f"{P}/zones/([^/]+)/machineTypes/([^/]+)", self.get_machine_type)
        r.add("POST", f"{P}/regions/([^/]+)/subnetworks", self.insert_subnet)
        r.add("GET", f"{P}/regions/([^/]+)/subnetworks/([^/]+)", self.get_subnet)
        r.add("DELETE", f"{P}/regions/([^/]+)/subnetworks/([^/]+)", self.delete_subnet)
        r.add("GET", f"{P}/aggregated/subnetworks", self.aggregated_subnets)
        r.add("POST", f"{P}/regions/([^/]+)/operations/([^/]+)/wait", self.wait_region_op)
        r.add("GET", f"{V1}/serverConfig", self.server_config)
        r.add("POST", f"{V1}/clusters", self.create_cluster)
        r.add("GET", f"{V1}/clusters", self.list_clusters)
        r.add("GET", f"{V1}/clusters/([^/]+)", self.get_cluster)
        r.add("DELETE", f"{V1}/clusters/([^/]+)", self.delete_cluster)
        r.add("GET", f"{V1}/operations/([^/]+)", self.get_gke_op)
        r.add("POST", "/v3/projects/([^/:]+):testIamPermissions", self.test_permissions)

    # -- compute ------------------------------------------------------------------------------

    def get_region(self, project: str, region: str, **_: Any) -> Reply:
        status, body = super().get_region(project, region)
        if status == 200:
            body["zones"] = [f"{API}/projects/{project}/zones/{region}-{z}" for z in "abc"]
        return status, body

    def get_machine_type(self, project: str, zone: str, name: str, **_: Any) -> Reply:
        if name not in MACHINE_TYPES or zone.rsplit("-", 1)[0] not in self.regions:
            return error(
                404,
                "notFound",
                f"The resource 'projects/{project}/zones/{zone}/machineTypes/{name}' was not found",
            )
        return 200, {"kind": "compute#machineType", "name": name, "zone": zone, "guestCpus": 4}

    def list_networks(self, project: str, **_: Any) -> Reply:
        items = [n for (p, _n), n in self.networks.items() if p == project]
        return 200, {"kind": "compute#networkList", "id": "1", "items": items}

    def insert_network(self, project: str, *, body: Any, **_: Any) -> Reply:
        res = f"projects/{project}/global/networks/{body['name']}"
        denied = self._denied("networks.create", res)
        if denied:
            return denied
        if (project, body["name"]) in self.networks:
            return error(409, "alreadyExists", f"The resource '{res}' already exists")
        self.add_network(project, body["name"], [])
        self.networks[(project, body["name"])]["description"] = body.get("description", "")
        return self._operation(project, "insert", res)

    def _in_use(self, res: str, by: str) -> Reply:
        return error(
            400,
            "resourceInUseByAnotherResource",
            f"The {res} resource is already being used by '{by}'",
        )

    def delete_network(self, project: str, name: str, **_: Any) -> Reply:
        res = f"projects/{project}/global/networks/{name}"
        if (project, name) not in self.networks:
            return error(404, "notFound", f"The resource '{res}' was not found")
        url = self.networks[(project, name)]["selfLink"]
        for (p, region, sub), s in self.subnets.items():
            if p == project and s["network"] == url:
                return self._in_use(res, f"projects/{p}/regions/{region}/subnetworks/{sub}")
        for (p, fw), rule in self.firewalls.items():
            if p == project and rule.get("network") == url:
                return self._in_use(res, f"projects/{p}/global/firewalls/{fw}")
        for peering in self.networks[(project, name)]["peerings"]:
            return self._in_use(res, f"peering {peering['name']}")
        del self.networks[(project, name)]
        self._settle()
        return self._operation(project, "delete", res)

    def remove_peering(self, project: str, name: str, *, body: Any, **_: Any) -> Reply:
        net = self.networks.get((project, name))
        if net is None:
            return error(404, "notFound", f"network {name} not found")
        net["peerings"] = [p for p in net["peerings"] if p["name"] != body["name"]]
        self._settle()
        return self._operation(
            project, "removePeering", f"projects/{project}/global/networks/{name}"
        )

    def delete_firewall(self, project: str, name: str, **_: Any) -> Reply:
        res = f"projects/{project}/global/firewalls/{name}"
        if self.firewalls.pop((project, name), None) is None:
            return error(404, "notFound", f"The resource '{res}' was not found")
        return self._operation(project, "delete", res)

    def insert_subnet(self, project: str, region: str, *, body: Any, **_: Any) -> Reply:
        res = f"projects/{project}/regions/{region}/subnetworks/{body['name']}"
        denied = self._denied("subnetworks.create", res)
        if denied:
            return denied
        if (project, region, body["name"]) in self.subnets:
            return error(409, "alreadyExists", f"The resource '{res}' already exists")
        network = _key_of(body["network"])
        if network not in self.networks:
            return error(
                400, "invalid", f"Invalid value for field 'resource.network': '{body['network']}'"
            )
        subnet = {
            "kind": "compute#subnetwork",
            "id": str(next(self._ids)),
            **body,
            "network": self.networks[network]["selfLink"],
            "region": f"{API}/projects/{project}/regions/{region}",
            "selfLink": f"{API}/{res}",
            "gatewayAddress": body["ipCidrRange"].rsplit(".", 1)[0] + ".1",
        }
        self.subnets[(project, region, body["name"])] = subnet
        ranges = [body["ipCidrRange"]] + [
            s["ipCidrRange"] for s in body.get("secondaryIpRanges", [])
        ]
        self.subnet_ranges[network] = self.subnet_ranges.get(network, []) + ranges
        return self._region_operation(project, region, "insert", res)

    def get_subnet(self, project: str, region: str, name: str, **_: Any) -> Reply:
        subnet = self.subnets.get((project, region, name))
        if subnet is None:
            return error(
                404,
                "notFound",
                f"The resource 'projects/{project}/regions/{region}/"
                f"subnetworks/{name}' was not found",
            )
        return 200, subnet

    def delete_subnet(self, project: str, region: str, name: str, **_: Any) -> Reply:
        res = f"projects/{project}/regions/{region}/subnetworks/{name}"
        subnet = self.subnets.get((project, region, name))
        if subnet is None:
            return error(404, "notFound", f"The resource '{res}' was not found")
        for (p, loc, cname), cluster in self.clusters.items():
            if p == project and cluster["subnetwork"] == name:
                return self._in_use(res, f"projects/{p}/locations/{loc}/clusters/{cname}")
        del self.subnets[(project, region, name)]
        return self._region_operation(project, region, "delete", res)

    def aggregated_subnets(self, project: str, **_: Any) -> Reply:
        items: dict[str, Any] = {}
        for (p, region, _name), subnet in self.subnets.items():
            if p == project:
                items.setdefault(f"regions/{region}", {"subnetworks": []})["subnetworks"].append(
                    subnet
                )
        return 200, {"kind": "compute#subnetworkAggregatedList", "id": "1", "items": items}

    def _region_operation(self, project: str, region: str, kind: str, target: str) -> Reply:
        status, op = self._operation(project, kind, target)
        op["region"] = f"{API}/projects/{project}/regions/{region}"
        op["selfLink"] = f"{API}/projects/{project}/regions/{region}/operations/{op['name']}"
        return status, op

    def wait_region_op(self, project: str, _region: str, name: str, **kw: Any) -> Reply:
        return self.wait_operation(project, name, **kw)

    # -- GKE ----------------------------------------------------------------------------------

    def _gke_denied(self, permission: str, resource: str) -> Reply | None:
        if permission in self.forbidden:
            return gke_error(
                403,
                "PERMISSION_DENIED",
                f'Required "{permission}" permission(s) for "{resource}".',
            )
        return None

    def server_config(self, project: str, location: str, **_: Any) -> Reply:
        if location not in self.regions:
            return gke_error(
                400, "INVALID_ARGUMENT", f'Location "{location}" is not a valid location.'
            )
        return 200, {
            "defaultClusterVersion": GKE_VERSIONS[1],
            "validMasterVersions": list(GKE_VERSIONS),
            "validNodeVersions": list(GKE_VERSIONS),
            "channels": [
                {
                    "channel": "REGULAR",
                    "defaultVersion": GKE_VERSIONS[1],
                    "validVersions": list(GKE_VERSIONS),
                }
            ],
        }

    def _op(self, project: str, location: str, kind: str, cluster: str) -> dict[str, Any]:
        name = f"operation-{next(self._n)}-{cluster}"
        op = {
            "name": name,
            "zone": location,
            "operationType": kind,
            "status": "RUNNING",
            "selfLink": f"https://container.googleapis.com/v1/projects/{project}/locations/"
            f"{location}/operations/{name}",
            "targetLink": f"https://container.googleapis.com/v1/projects/{project}/locations/"
            f"{location}/clusters/{cluster}",
            "location": f"https://container.googleapis.com/v1/projects/{project}/locations/"
            f"{location}",
        }
        self.gke_ops[name] = op
        return op

    def create_cluster(self, project: str, location: str, *, body: Any, **_: Any) -> Reply:
        cluster = dict(body["cluster"])
        res = f"projects/{project}/locations/{location}/clusters/{cluster['name']}"
        denied = self._gke_denied("container.clusters.create", f"projects/{project}")
        if denied:
            return denied
        key = (project, location, cluster["name"])
        if key in self.clusters:
            return gke_error(409, "ALREADY_EXISTS", f"Already exists: {res}.")
        if (project, location, cluster.get("subnetwork", "")) not in self.subnets:
            return gke_error(
                400, "INVALID_ARGUMENT", f'Subnetwork "{cluster.get("subnetwork")}" not found.'
            )
        version = next(
            v for v in GKE_VERSIONS if v.startswith(cluster.get("initialClusterVersion", "") + ".")
        )
        ca = base64.b64encode(f"fake CA of {cluster['name']}".encode()).decode()
        pools = [
            {**pool, "status": "PROVISIONING", "version": version}
            for pool in cluster.get("nodePools", [])
        ]
        cluster.update(
            location=location,
            status="PROVISIONING",
            currentMasterVersion=version,
            currentNodeVersion=version,
            endpoint=f"34.1.{len(self.clusters)}.{next(self._n)}",
            masterAuth={"clusterCaCertificate": ca},
            nodePools=pools,
            selfLink=f"https://container.googleapis.com/v1/{res}",
        )
        self.clusters[key] = cluster
        self.reads[key] = 0
        return 200, self._op(project, location, "CREATE_CLUSTER", cluster["name"])

    def _advance(self, key: tuple[str, str, str]) -> None:
        cluster = self.clusters[key]
        self.reads[key] += 1
        if self.reads[key] < READS:
            return
        if cluster["status"] == "PROVISIONING":
            cluster["status"] = "RUNNING"
            for pool in cluster["nodePools"]:
                pool["status"] = "RUNNING"
        elif cluster["status"] == "STOPPING":
            del self.clusters[key]

    def get_cluster(self, project: str, location: str, name: str, **_: Any) -> Reply:
        key = (project, location, name)
        if key not in self.clusters:
            return gke_error(
                404,
                "NOT_FOUND",
                f"Not found: projects/{project}/locations/{location}/clusters/{name}.",
            )
        body = self.clusters[key]
        self._advance(key)
        return 200, body

    def list_clusters(self, project: str, location: str, **_: Any) -> Reply:
        items = [
            c
            for (p, loc, _n), c in self.clusters.items()
            if p == project and location in ("-", loc)
        ]
        return 200, {"clusters": items}

    def delete_cluster(self, project: str, location: str, name: str, **_: Any) -> Reply:
        key = (project, location, name)
        denied = self._gke_denied("container.clusters.delete", f"projects/{project}")
        if denied:
            return denied
        if key not in self.clusters:
            return gke_error(404, "NOT_FOUND", f"Not found: {name}.")
        self.clusters[key]["status"] = "STOPPING"
        self.reads[key] = 0
        return 200, self._op(project, location, "DELETE_CLUSTER", name)

    def get_gke_op(self, project: str, location: str, name: str, **_: Any) -> Reply:
        op = self.gke_ops.get(name)
        if op is None:
            return gke_error(404, "NOT_FOUND", f"Not found: operation {name}.")
        op["status"] = "DONE"
        return 200, op

    def test_permissions(self, project: str, *, body: Any, **_: Any) -> Reply:
        granted = [p for p in body.get("permissions", []) if p not in self.missing_permissions]
        return 200, {"permissions": granted}


def _key_of(url: str) -> tuple[str, str]:
    parts = url.rstrip("/").split("/")
    return parts[parts.index("projects") + 1], parts[-1]
