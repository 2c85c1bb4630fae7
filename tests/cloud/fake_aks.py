"""AKS and the Resource Manager calls an AKS build makes, on loopback over TLS, in ARM's wire
format as azure-mgmt-containerservice, -network, -resource, -compute and -authorization send
and parse them (`properties` envelopes, `{"value": [...]}` lists, `{"error": {code,
message}}`).

Extends tests.cloud.fake_azure.FakeAzure (VNets, peerings, NSGs and rules) with: resource
groups (PUT/GET/DELETE, list by tag), the resources of a group, VNet and NSG PUT/DELETE/list,
VM sizes and Kubernetes versions of a location, the permissions on a resource group, managed
clusters (PUT answers `Creating`, a few reads later `Succeeded`; DELETE answers 202 and the
cluster reads `Deleting` a few times before it is gone) and listClusterUserCredential. Deletes
refuse what is in use (`InUseSubnetCannotBeDeleted`), as ARM does.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import yaml

from tests.cloud.fake_azure import RG, FakeAzure, Reply, error

SUB = "/subscriptions/([^/]+)"
GROUP = f"{SUB}/resource[Gg]roups/([^/]+)"
AKS = f"{GROUP}/providers/Microsoft.ContainerService/managedClusters"
LOCATIONS = ("canadacentral", "eastus2", "westus2")
VM_SIZES = ("Standard_D4s_v5", "Standard_D2s_v5", "Standard_B2s")
VERSIONS = ("1.31", "1.32", "1.33")
READS = 2


class FakeAks(FakeAzure):
    def __init__(self, certfile: str, keyfile: str) -> None:
        super().__init__(certfile, keyfile)
        self.groups: dict[str, dict[str, Any]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}
        self.reads: dict[str, int] = {}
        self.not_actions: list[str] = []
        r = self.server.router
        vnet, nsg = f"{RG}/virtualNetworks/([^/]+)", f"{RG}/networkSecurityGroups/([^/]+)"
        r.add("PUT", vnet, self.put_vnet)
        r.add("DELETE", vnet, self.delete_vnet)
        r.add("GET", f"{RG}/virtualNetworks", self.list_vnets)
        r.add("PUT", nsg, self.put_nsg)
        r.add("GET", f"{RG}/networkSecurityGroups", self.list_nsgs)
        r.add("DELETE", nsg, self.delete_nsg)
        r.add("GET", f"{SUB}/resourcegroups", self.list_groups)
        r.add("PUT", f"{SUB}/resourcegroups/([^/]+)", self.put_group)
        r.add("GET", f"{SUB}/resourcegroups/([^/]+)", self.get_group)
        r.add("DELETE", f"{SUB}/resourcegroups/([^/]+)", self.delete_group)
        r.add("GET", f"{GROUP}/resources", self.group_resources)
        r.add("GET", f"{GROUP}/providers/Microsoft.Authorization/permissions", self.permissions)
        r.add("GET", f"{SUB}/providers/Microsoft.Compute/locations/([^/]+)/vmSizes", self.sizes)
        r.add(
            "GET",
            f"{SUB}/providers/Microsoft.ContainerService/locations/([^/]+)/kubernetesVersions",
            self.versions,
        )
        r.add("GET", AKS, self.list_clusters)
        r.add("PUT", f"{AKS}/([^/]+)", self.put_cluster)
        r.add("GET", f"{AKS}/([^/]+)", self.get_cluster)
        r.add("DELETE", f"{AKS}/([^/]+)", self.delete_cluster)
        r.add("POST", f"{AKS}/([^/]+)/listClusterUserCredential", self.user_credential)

    def _rg_id(self, sub: str, rg: str) -> str:
        return f"/subscriptions/{sub}/resourceGroups/{rg}"

    def _no_group(self, rg: str) -> Reply:
        return error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")

    # -- resource groups ----------------------------------------------------------------------

    def put_group(
        self, sub: str, rg: str, *, body: Any, headers: dict[str, str], **_: Any
    ) -> Reply:
        denied = self._guard(headers, "", rg)
        if denied:
            return denied
        key = self._rg_id(sub, rg).lower()
        existed = key in self.groups
        self.groups[key] = {
            "id": self._rg_id(sub, rg),
            "name": rg,
            "type": "Microsoft.Resources/resourceGroups",
            "location": body["location"],
            "tags": body.get("tags") or {},
            "properties": {"provisioningState": "Succeeded"},
        }
        return (200 if existed else 201), self.groups[key]

    def get_group(self, sub: str, rg: str, **_: Any) -> Reply:
        group = self.groups.get(self._rg_id(sub, rg).lower())
        return (200, group) if group else self._no_group(rg)

    def list_groups(self, sub: str, *, query: dict[str, list[str]], **_: Any) -> Reply:
        items = list(self.groups.values())
        flt = query.get("$filter", [""])[0]
        if flt:  # tagName eq 'k' and tagValue eq 'v': the one tag filter ARM takes
            parts = flt.split("'")
            key, value = parts[1], parts[3]
            items = [g for g in items if g["tags"].get(key) == value]
        return 200, {"value": items}

    def _in_group(self, sub: str, rg: str) -> list[dict[str, Any]]:
        prefix = self._rg_id(sub, rg).lower() + "/"
        found = [v for k, v in self.vnets.items() if k.startswith(prefix)]
        found += [v for k, v in self.nsgs.items() if k.startswith(prefix)]
        found += [v for k, v in self.clusters.items() if k.startswith(prefix)]
        return found

    def group_resources(self, sub: str, rg: str, **_: Any) -> Reply:
        if self._rg_id(sub, rg).lower() not in self.groups:
            return self._no_group(rg)
        items = [
            {k: r[k] for k in ("id", "name", "type", "location")} | {"tags": r.get("tags") or {}}
            for r in self._in_group(sub, rg)
        ]
        return 200, {"value": items}

    def delete_group(self, sub: str, rg: str, **_: Any) -> Reply:
        """ARM deletes a group with everything in it."""
        key = self._rg_id(sub, rg).lower()
        if key not in self.groups:
            return self._no_group(rg)
        for store in (self.vnets, self.nsgs, self.clusters):
            for rid in [k for k in store if k.startswith(key + "/")]:
                del store[rid]
        del self.groups[key]
        return 200, None

    def permissions(self, sub: str, rg: str, **_: Any) -> Reply:
        if self._rg_id(sub, rg).lower() not in self.groups:
            return self._no_group(rg)
        return 200, {"value": [{"actions": ["*"], "notActions": list(self.not_actions)}]}

    def sizes(self, sub: str, location: str, **_: Any) -> Reply:
        if location not in LOCATIONS:
            return error(
                404,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{location}'.",
            )
        return 200, {
            "value": [{"name": s, "numberOfCores": 4, "memoryInMB": 16384} for s in VM_SIZES]
        }

    def versions(self, sub: str, location: str, **_: Any) -> Reply:
        if location not in LOCATIONS:
            return error(
                400,
                "LocationNotAvailableForResourceType",
                f"The provided location '{location}' is not available for resource type "
                "'Microsoft.ContainerService/locations/kubernetesVersions'. List of available "
                f"regions for the resource type is '{','.join(LOCATIONS)}'.",
            )
        return 200, {
            "values": [
                {"version": v, "isPreview": False, "patchVersions": {f"{v}.5": {"upgrades": []}}}
                for v in VERSIONS
            ]
        }

    # -- network --------------------------------------------------------------------------------

    def _group_or_404(self, sub: str, rg: str) -> Reply | None:
        return None if self._rg_id(sub, rg).lower() in self.groups else self._no_group(rg)

    def put_vnet(
        self, sub: str, rg: str, name: str, *, body: Any, headers: dict[str, str], **_: Any
    ) -> Reply:
        missing = self._guard(headers, "virtualNetworks/write", name) or self._group_or_404(sub, rg)
        if missing:
            return missing
        vid = self.add_vnet(
            sub, rg, name, body["location"], body["properties"]["addressSpace"]["addressPrefixes"]
        )
        vnet = self.vnets[vid.lower()]
        vnet["tags"] = body.get("tags") or {}
        vnet["properties"]["subnets"] = [
            {
                "id": f"{vid}/subnets/{s['name']}",
                "name": s["name"],
                "properties": {**s["properties"], "provisioningState": "Succeeded"},
            }
            for s in body["properties"].get("subnets", [])
        ]
        return 201, vnet

    def list_vnets(self, sub: str, rg: str, **_: Any) -> Reply:
        prefix = self._rg_id(sub, rg).lower() + "/"
        return 200, {"value": [v for k, v in self.vnets.items() if k.startswith(prefix)]}

    def delete_vnet(self, sub: str, rg: str, name: str, **_: Any) -> Reply:
        vid = f"{self._rg_id(sub, rg)}/providers/Microsoft.Network/virtualNetworks/{name}"
        for cluster in self.clusters.values():
            for pool in cluster["properties"]["agentPoolProfiles"]:
                if pool.get("vnetSubnetID", "").lower().startswith(vid.lower() + "/"):
                    return error(
                        400,
                        "InUseSubnetCannotBeDeleted",
                        f"Subnet {pool['vnetSubnetID'].rsplit('/', 1)[-1]} is in use by "
                        f"{cluster['id']} and cannot be deleted.",
                    )
        self.vnets.pop(vid.lower(), None)
        self._settle()
        return 200, None

    def put_nsg(
        self, sub: str, rg: str, name: str, *, body: Any, headers: dict[str, str], **_: Any
    ) -> Reply:
        missing = self._guard(headers, "networkSecurityGroups/write", name)
        missing = missing or self._group_or_404(sub, rg)
        if missing:
            return missing
        nid = self.add_nsg(sub, rg, name, body["location"])
        self.nsgs[nid.lower()]["tags"] = body.get("tags") or {}
        return 201, self.nsgs[nid.lower()]

    def list_nsgs(self, sub: str, rg: str, **_: Any) -> Reply:
        prefix = self._rg_id(sub, rg).lower() + "/"
        return 200, {"value": [v for k, v in self.nsgs.items() if k.startswith(prefix)]}

    def delete_nsg(self, sub: str, rg: str, name: str, **_: Any) -> Reply:
        nid = f"{self._rg_id(sub, rg)}/providers/Microsoft.Network/networkSecurityGroups/{name}"
        for vnet in self.vnets.values():
            for subnet in vnet["properties"]["subnets"]:
                used = (subnet["properties"].get("networkSecurityGroup") or {}).get("id", "")
                if used.lower() == nid.lower():
                    return error(
                        400,
                        "InUseNetworkSecurityGroupCannotBeDeleted",
                        f"Network security group {nid} cannot be deleted because it "
                        f"is in use by subnet {subnet['id']}.",
                    )
        self.nsgs.pop(nid.lower(), None)
        return 200, None

    # -- AKS ------------------------------------------------------------------------------------

    def _cluster_id(self, sub: str, rg: str, name: str) -> str:
        return f"{self._rg_id(sub, rg)}/providers/Microsoft.ContainerService/managedClusters/{name}"

    def put_cluster(
        self, sub: str, rg: str, name: str, *, body: Any, headers: dict[str, str], **_: Any
    ) -> Reply:
        if "Microsoft.ContainerService/managedClusters/write" in self.forbidden:
            return error(
                403,
                "AuthorizationFailed",
                "The client 'netconform-test' does not have authorization to perform action "
                f"'Microsoft.ContainerService/managedClusters/write' over scope "
                f"'{self._cluster_id(sub, rg, name)}' or the scope is invalid.",
            )
        missing = self._group_or_404(sub, rg)
        if missing:
            return missing
        props = copy.deepcopy(body["properties"])
        for pool in props.get("agentPoolProfiles", []):
            subnet = pool.get("vnetSubnetID", "")
            vnet = subnet.lower().rsplit("/subnets/", 1)[0]
            if vnet not in self.vnets:
                return error(400, "InvalidParameter", f"vnetSubnetID {subnet} not found.")
            pool["provisioningState"] = "Creating"
        props.update(
            provisioningState="Creating",
            currentKubernetesVersion=f"{props['kubernetesVersion']}.5",
            fqdn=f"{props['dnsPrefix']}-abc123.hcp.{body['location']}.azmk8s.io",
            nodeResourceGroup=f"MC_{rg}_{name}_{body['location']}",
            powerState={"code": "Running"},
        )
        cid = self._cluster_id(sub, rg, name)
        self.clusters[cid.lower()] = {
            "id": cid,
            "name": name,
            "type": "Microsoft.ContainerService/ManagedClusters",
            "location": body["location"],
            "tags": body.get("tags") or {},
            "identity": {"type": "SystemAssigned", "principalId": "p", "tenantId": "t"},
            "properties": props,
        }
        self.reads[cid.lower()] = 0
        return 201, self.clusters[cid.lower()]

    def get_cluster(self, sub: str, rg: str, name: str, **_: Any) -> Reply:
        key = self._cluster_id(sub, rg, name).lower()
        cluster = self.clusters.get(key)
        if cluster is None:
            return self._missing_cluster(rg, name)
        body = copy.deepcopy(cluster)
        self.reads[key] += 1
        props = cluster["properties"]
        if self.reads[key] >= READS:
            if props["provisioningState"] == "Creating":
                props["provisioningState"] = "Succeeded"
                for pool in props["agentPoolProfiles"]:
                    pool["provisioningState"] = "Succeeded"
            elif props["provisioningState"] == "Deleting":
                del self.clusters[key]
        return 200, body

    def _missing_cluster(self, rg: str, name: str) -> Reply:
        return error(
            404,
            "ResourceNotFound",
            f"The Resource 'Microsoft.ContainerService/"
            f"managedClusters/{name}' under resource group '{rg}' was not found.",
        )

    def list_clusters(self, sub: str, rg: str, **_: Any) -> Reply:
        prefix = self._rg_id(sub, rg).lower() + "/"
        return 200, {"value": [c for k, c in self.clusters.items() if k.startswith(prefix)]}

    def delete_cluster(self, sub: str, rg: str, name: str, **_: Any) -> Reply:
        key = self._cluster_id(sub, rg, name).lower()
        if key not in self.clusters:
            return 204, None
        self.clusters[key]["properties"]["provisioningState"] = "Deleting"
        self.reads[key] = 0
        return 202, None

    def user_credential(self, sub: str, rg: str, name: str, **_: Any) -> Reply:
        cluster = self.clusters.get(self._cluster_id(sub, rg, name).lower())
        if cluster is None:
            return self._missing_cluster(rg, name)
        user = f"clusterUser_{rg}_{name}"
        server = f"https://{cluster['properties']['fqdn']}:443"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [
                {"name": name, "cluster": {"server": server, "certificate-authority-data": "Q0E="}}
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": "Y2VydA==",
                        "client-key-data": "a2V5",
                        "token": "t0k",
                    },
                }
            ],
        }
        value = base64.b64encode(yaml.safe_dump(doc).encode()).decode()
        return 200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
