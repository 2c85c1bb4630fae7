"""A stateful Compute Engine REST API subset on loopback, for google-cloud-compute clients.

Speaks the v1 wire format the SDK uses (camelCase JSON, `compute#operation` objects, the
`{"error": {...}}` envelope): networks get/addPeering/listPeeringRoutes, firewalls
list/insert/patch, regions get, global operations wait. Peerings become ACTIVE when both
sides exist; subnet ranges are always exchanged, custom routes only when the exporting side
exports and the importing side imports them (as on GCP).
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.cloud.fakehttp import FakeServer, Router

API = "https://www.googleapis.com/compute/v1"
P = "/compute/v1/projects/([^/]+)"
Reply = tuple[int, Any]


def error(code: int, reason: str, message: str) -> Reply:
    return code, {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }


class FakeGcp:
    """State plus the routes that serve it."""

    def __init__(self, regions: tuple[str, ...] = ("us-central1", "us-east4", "us-west1")) -> None:
        self.regions = set(regions)
        self.networks: dict[tuple[str, str], dict[str, Any]] = {}
        self.subnet_ranges: dict[tuple[str, str], list[str]] = {}
        self.custom_routes: dict[tuple[str, str], list[str]] = {}
        self.firewalls: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[tuple[str, str], dict[str, Any]] = {}
        self.forbidden: set[str] = set()
        self._ids = itertools.count(1000)
        router = Router()
        router.add("GET", f"{P}/regions/([^/]+)", self.get_region)
        router.add("GET", f"{P}/global/networks/([^/]+)", self.get_network)
        router.add("POST", f"{P}/global/networks/([^/]+)/addPeering", self.add_peering)
        router.add("GET", f"{P}/global/networks/([^/]+)/listPeeringRoutes", self.peering_routes)
        router.add("GET", f"{P}/global/firewalls", self.list_firewalls)
        router.add("POST", f"{P}/global/firewalls", self.insert_firewall)
        router.add("PATCH", f"{P}/global/firewalls/([^/]+)", self.patch_firewall)
        router.add("POST", f"{P}/global/operations/([^/]+)/wait", self.wait_operation)
        router.add("GET", f"{P}/global/operations/([^/]+)", self.wait_operation)
        self.server = FakeServer(router)

    # -- fixture helpers --------------------------------------------------------------------

    def add_network(
        self, project: str, name: str, subnets: list[str], custom: list[str] | None = None
    ) -> None:
        self.networks[(project, name)] = {
            "kind": "compute#network",
            "id": str(next(self._ids)),
            "name": name,
            "selfLink": f"{API}/projects/{project}/global/networks/{name}",
            "autoCreateSubnetworks": False,
            "peerings": [],
        }
        self.subnet_ranges[(project, name)] = subnets
        self.custom_routes[(project, name)] = custom or []

    def add_firewall(self, project: str, rule: dict[str, Any]) -> None:
        rule = {
            "kind": "compute#firewall",
            "id": str(next(self._ids)),
            "priority": 1000,
            "direction": "INGRESS",
            "disabled": False,
            **rule,
        }
        self.firewalls[(project, rule["name"])] = rule

    def peering(self, project: str, network: str, name: str) -> dict[str, Any]:
        return next(p for p in self.networks[(project, network)]["peerings"] if p["name"] == name)

    # -- handlers -----------------------------------------------------------------------------

    def _denied(self, permission: str, resource: str) -> Reply | None:
        if permission in self.forbidden:
            return error(
                403, "forbidden", f"Required 'compute.{permission}' permission for '{resource}'"
            )
        return None

    def get_region(self, project: str, region: str, **_: Any) -> Reply:
        if region not in self.regions:
            return error(
                404, "notFound", f"The resource 'projects/{project}/regions/{region}' was not found"
            )
        return 200, {"kind": "compute#region", "name": region, "status": "UP"}

    def get_network(self, project: str, name: str, **_: Any) -> Reply:
        res = f"projects/{project}/global/networks/{name}"
        denied = self._denied("networks.get", res)
        if denied:
            return denied
        if (project, name) not in self.networks:
            return error(404, "notFound", f"The resource '{res}' was not found")
        return 200, self.networks[(project, name)]

    def add_peering(self, project: str, name: str, *, body: Any, **_: Any) -> Reply:
        res = f"projects/{project}/global/networks/{name}"
        denied = self._denied("networks.addPeering", res)
        if denied:
            return denied
        if (project, name) not in self.networks:
            return error(404, "notFound", f"The resource '{res}' was not found")
        peering = dict(body["networkPeering"])
        remote = _key(peering["network"])
        if remote not in self.networks:
            return error(
                400,
                "invalid",
                f"Invalid value for field 'networkPeering.network': '{peering['network']}'",
            )
        peering.setdefault("exchangeSubnetRoutes", True)
        self.networks[(project, name)]["peerings"].append(peering)
        self._settle()
        return self._operation(project, "addPeering", res)

    def _settle(self) -> None:
        for key, net in self.networks.items():
            for p in net["peerings"]:
                back = any(
                    _key(q["network"]) == key
                    for q in self.networks.get(_key(p["network"]), {}).get("peerings", [])
                )
                p["state"] = "ACTIVE" if back else "INACTIVE"
                p["stateDetails"] = (
                    "[2026-11-23T00:00:00] Connected."
                    if back
                    else ("[2026-11-23T00:00:00] Waiting for peer network to connect.")
                )

    def peering_routes(
        self, project: str, name: str, *, query: dict[str, list[str]], **_: Any
    ) -> Reply:
        peering_name, region = query["peeringName"][0], query["region"][0]
        try:
            local = self.peering(project, name, peering_name)
        except StopIteration:
            return error(404, "notFound", f"Peering '{peering_name}' not found")
        items: list[dict[str, Any]] = []
        remote_key = _key(local["network"])
        if local.get("state") == "ACTIVE" and query["direction"][0] == "INCOMING":
            remote = next(
                q
                for q in self.networks[remote_key]["peerings"]
                if _key(q["network"]) == (project, name)
            )
            ranges = list(self.subnet_ranges[remote_key])
            if remote.get("exportCustomRoutes") and local.get("importCustomRoutes"):
                ranges += self.custom_routes[remote_key]
            items = [
                {
                    "destRange": r,
                    "type": "SUBNET_PEERING_ROUTE",
                    "nextHopRegion": region,
                    "priority": 0,
                    "imported": True,
                }
                for r in ranges
            ]
        return 200, {"kind": "compute#exchangedPeeringRoutesList", "id": "1", "items": items}

    def list_firewalls(self, project: str, **_: Any) -> Reply:
        items = [f for (p, _n), f in self.firewalls.items() if p == project]
        return 200, {"kind": "compute#firewallList", "id": "1", "items": items}

    def insert_firewall(self, project: str, *, body: Any, **_: Any) -> Reply:
        res = f"projects/{project}/global/firewalls/{body['name']}"
        denied = self._denied("firewalls.create", res)
        if denied:
            return denied
        if (project, body["name"]) in self.firewalls:
            return error(409, "alreadyExists", f"The resource '{res}' already exists")
        self.add_firewall(project, body)
        return self._operation(project, "insert", res)

    def patch_firewall(self, project: str, name: str, *, body: Any, **_: Any) -> Reply:
        res = f"projects/{project}/global/firewalls/{name}"
        denied = self._denied("firewalls.update", res)
        if denied:
            return denied
        if (project, name) not in self.firewalls:
            return error(404, "notFound", f"The resource '{res}' was not found")
        self.firewalls[(project, name)].update(body)
        return self._operation(project, "patch", res)

    def _operation(self, project: str, kind: str, target: str) -> Reply:
        name = f"operation-{next(self._ids)}"
        op = {
            "kind": "compute#operation",
            "id": name[10:],
            "name": name,
            "operationType": kind,
            "status": "RUNNING",
            "progress": 0,
            "targetLink": f"{API}/{target}",
            "selfLink": f"{API}/projects/{project}/global/operations/{name}",
        }
        self.operations[(project, name)] = op
        return 200, op

    def wait_operation(self, project: str, name: str, **_: Any) -> Reply:
        op = self.operations.get((project, name))
        if op is None:
            return error(404, "notFound", f"operation {name} not found")
        op.update(status="DONE", progress=100)
        return 200, op


def _key(url: str) -> tuple[str, str]:
    parts = url.rstrip("/").split("/")
    return parts[parts.index("projects") + 1], parts[-1]
