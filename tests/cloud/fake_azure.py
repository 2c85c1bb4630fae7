"""A stateful Azure Resource Manager (Microsoft.Network) subset on loopback, over TLS.

Serves what azure-mgmt-network's NetworkManagementClient sends: virtual networks, VNet
peerings (list/get/PUT/DELETE), network security groups and their security rules, in ARM's
wire format (`properties` envelopes, `{"value": [...]}` lists, `{"error": {code, message}}`).
PUTs answer `provisioningState: Succeeded`, so long-running operations finish at once.
Peerings are `Initiated` until both sides exist, then `Connected`; deleting one side leaves
the other `Disconnected`. A peering keeps the remote address space it saw when it connected.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.cloud.fakehttp import FakeServer, Router

RG = "/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft.Network"
Reply = tuple[int, Any]
DEFAULT_RULES = [
    ("AllowVnetInBound", 65000, "VirtualNetwork", "Allow"),
    ("AllowAzureLoadBalancerInBound", 65001, "AzureLoadBalancer", "Allow"),
    ("DenyAllInBound", 65500, "*", "Deny"),
]


def error(status: int, code: str, message: str) -> Reply:
    return status, {"error": {"code": code, "message": message}}


class FakeAzure:
    """State plus the routes that serve it."""

    def __init__(self, certfile: str, keyfile: str) -> None:
        self.vnets: dict[str, dict[str, Any]] = {}
        self.nsgs: dict[str, dict[str, Any]] = {}
        self.forbidden: set[str] = set()
        router = Router()
        vnet, nsg = f"{RG}/virtualNetworks/([^/]+)", f"{RG}/networkSecurityGroups/([^/]+)"
        router.add("GET", vnet, self.get_vnet)
        router.add("GET", f"{vnet}/virtualNetworkPeerings", self.list_peerings)
        router.add("GET", f"{vnet}/virtualNetworkPeerings/([^/]+)", self.get_peering)
        router.add("PUT", f"{vnet}/virtualNetworkPeerings/([^/]+)", self.put_peering)
        router.add("DELETE", f"{vnet}/virtualNetworkPeerings/([^/]+)", self.delete_peering)
        router.add("GET", nsg, self.get_nsg)
        router.add("PUT", f"{nsg}/securityRules/([^/]+)", self.put_rule)
        self.server = FakeServer(router, certfile, keyfile)

    # -- fixture helpers --------------------------------------------------------------------

    def add_vnet(self, sub: str, rg: str, name: str, location: str, prefixes: list[str]) -> str:
        vid = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
            f"virtualNetworks/{name}"
        )
        self.vnets[vid.lower()] = {
            "id": vid,
            "name": name,
            "type": "Microsoft.Network/virtualNetworks",
            "location": location,
            "properties": {
                "addressSpace": {"addressPrefixes": prefixes},
                "provisioningState": "Succeeded",
                "subnets": [],
                "virtualNetworkPeerings": [],
            },
        }
        return vid

    def add_nsg(self, sub: str, rg: str, name: str, location: str) -> str:
        nid = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
            f"networkSecurityGroups/{name}"
        )
        defaults = [
            self._rule_json(
                nid,
                n,
                {
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": src,
                    "destinationAddressPrefix": "*",
                    "access": access,
                    "priority": prio,
                    "direction": "Inbound",
                },
                "defaultSecurityRules",
            )
            for n, prio, src, access in DEFAULT_RULES
        ]
        self.nsgs[nid.lower()] = {
            "id": nid,
            "name": name,
            "type": "Microsoft.Network/networkSecurityGroups",
            "location": location,
            "properties": {
                "securityRules": [],
                "defaultSecurityRules": defaults,
                "provisioningState": "Succeeded",
            },
        }
        return nid

    def add_rule(self, nsg_id: str, name: str, props: dict[str, Any]) -> None:
        rules = self.nsgs[nsg_id.lower()]["properties"]["securityRules"]
        rules[:] = [r for r in rules if r["name"] != name]
        rules.append(self._rule_json(nsg_id, name, props, "securityRules"))

    def add_address_space(self, vnet_id: str, prefix: str) -> None:
        """Grow a VNet without syncing its peerings (their remote space goes stale)."""
        vnet = self.vnets[vnet_id.lower()]
        vnet["properties"]["addressSpace"]["addressPrefixes"].append(prefix)
        for other in self.vnets.values():
            for p in other["properties"]["virtualNetworkPeerings"]:
                if p["properties"]["remoteVirtualNetwork"]["id"].lower() == vnet_id.lower():
                    p["properties"]["peeringSyncLevel"] = "LocalNotInSync"

    def peering(self, vnet_id: str, name: str) -> dict[str, Any]:
        return next(
            p
            for p in self.vnets[vnet_id.lower()]["properties"]["virtualNetworkPeerings"]
            if p["name"] == name
        )

    @staticmethod
    def _rule_json(nsg_id: str, name: str, props: dict[str, Any], kind: str) -> dict[str, Any]:
        return {
            "id": f"{nsg_id}/{kind}/{name}",
            "name": name,
            "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "properties": {**props, "provisioningState": "Succeeded"},
        }

    # -- handlers -----------------------------------------------------------------------------

    def _guard(self, headers: dict[str, str], action: str, scope: str) -> Reply | None:
        if not headers.get("authorization", "").startswith("Bearer "):
            return error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        if action in self.forbidden:
            return error(
                403,
                "AuthorizationFailed",
                f"The client 'netconform-test' does not have authorization to perform "
                f"action 'Microsoft.Network/{action}' over scope '{scope}' or the "
                f"scope is invalid.",
            )
        return None

    def _vnet(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        vid = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
            f"virtualNetworks/{name}"
        )
        return self.vnets.get(vid.lower())

    def _missing(self, kind: str, rg: str, name: str) -> Reply:
        return error(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.Network/{kind}/{name}' "
            f"under resource group '{rg}' was not found.",
        )

    def get_vnet(self, sub: str, rg: str, name: str, *, headers: dict[str, str], **_: Any) -> Reply:
        denied = self._guard(headers, "virtualNetworks/read", name)
        if denied:
            return denied
        vnet = self._vnet(sub, rg, name)
        return (200, vnet) if vnet else self._missing("virtualNetworks", rg, name)

    def list_peerings(
        self, sub: str, rg: str, name: str, *, headers: dict[str, str], **_: Any
    ) -> Reply:
        denied = self._guard(headers, "virtualNetworks/virtualNetworkPeerings/read", name)
        if denied:
            return denied
        vnet = self._vnet(sub, rg, name)
        if vnet is None:
            return self._missing("virtualNetworks", rg, name)
        return 200, {"value": vnet["properties"]["virtualNetworkPeerings"]}

    def get_peering(
        self, sub: str, rg: str, name: str, peering: str, *, headers: dict[str, str], **_: Any
    ) -> Reply:
        vnet = self._vnet(sub, rg, name)
        for p in vnet["properties"]["virtualNetworkPeerings"] if vnet else []:
            if p["name"] == peering:
                return 200, p
        return self._missing("virtualNetworks/virtualNetworkPeerings", rg, peering)

    def put_peering(
        self,
        sub: str,
        rg: str,
        name: str,
        peering: str,
        *,
        body: Any,
        headers: dict[str, str],
        **_: Any,
    ) -> Reply:
        denied = self._guard(headers, "virtualNetworks/virtualNetworkPeerings/write", name)
        if denied:
            return denied
        vnet = self._vnet(sub, rg, name)
        if vnet is None:
            return self._missing("virtualNetworks", rg, name)
        remote_id = body["properties"]["remoteVirtualNetwork"]["id"]
        if remote_id.lower() not in self.vnets:
            return error(
                400,
                "InvalidResourceReference",
                f"Resource {remote_id} referenced by resource {vnet['id']} was not found.",
            )
        peerings = vnet["properties"]["virtualNetworkPeerings"]
        old = next((p for p in peerings if p["name"] == peering), None)
        props = {
            **(old["properties"] if old else {}),
            **body["properties"],
            "provisioningState": "Succeeded",
        }
        props.setdefault("peeringState", "Initiated")
        entry = {
            "id": f"{vnet['id']}/virtualNetworkPeerings/{peering}",
            "name": peering,
            "type": "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
            "properties": props,
        }
        peerings[:] = [p for p in peerings if p["name"] != peering] + [entry]
        self._settle()
        return (200 if old else 201), entry

    def delete_peering(
        self, sub: str, rg: str, name: str, peering: str, *, headers: dict[str, str], **_: Any
    ) -> Reply:
        denied = self._guard(headers, "virtualNetworks/virtualNetworkPeerings/delete", name)
        if denied:
            return denied
        vnet = self._vnet(sub, rg, name)
        if vnet is not None:
            peerings = vnet["properties"]["virtualNetworkPeerings"]
            peerings[:] = [p for p in peerings if p["name"] != peering]
            self._settle()
        return 200, {}

    def _settle(self) -> None:
        for vid, vnet in self.vnets.items():
            for p in vnet["properties"]["virtualNetworkPeerings"]:
                props = p["properties"]
                remote = self.vnets.get(props["remoteVirtualNetwork"]["id"].lower())
                back = remote is not None and any(
                    q["properties"]["remoteVirtualNetwork"]["id"].lower() == vid
                    for q in remote["properties"]["virtualNetworkPeerings"]
                )
                if back and remote is not None and props["peeringState"] != "Connected":
                    props["peeringState"] = "Connected"
                    props["peeringSyncLevel"] = "FullyInSync"
                    props["remoteAddressSpace"] = copy.deepcopy(
                        remote["properties"]["addressSpace"]
                    )
                elif not back and props["peeringState"] == "Connected":
                    props["peeringState"] = "Disconnected"

    def get_nsg(self, sub: str, rg: str, name: str, *, headers: dict[str, str], **_: Any) -> Reply:
        denied = self._guard(headers, "networkSecurityGroups/read", name)
        if denied:
            return denied
        nid = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
            f"networkSecurityGroups/{name}"
        )
        nsg = self.nsgs.get(nid.lower())
        return (200, nsg) if nsg else self._missing("networkSecurityGroups", rg, name)

    def put_rule(
        self,
        sub: str,
        rg: str,
        name: str,
        rule: str,
        *,
        body: Any,
        headers: dict[str, str],
        **_: Any,
    ) -> Reply:
        denied = self._guard(headers, "networkSecurityGroups/securityRules/write", name)
        if denied:
            return denied
        nid = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
            f"networkSecurityGroups/{name}"
        )
        if nid.lower() not in self.nsgs:
            return self._missing("networkSecurityGroups", rg, name)
        existed = any(
            r["name"] == rule for r in self.nsgs[nid.lower()]["properties"]["securityRules"]
        )
        self.add_rule(nid, rule, body["properties"])
        return (200 if existed else 201), self.nsgs[nid.lower()]["properties"]["securityRules"][-1]
