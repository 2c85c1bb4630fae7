"""Pod Security Standards as the suite meets them: the level a region namespace enforces, what
the suite's probe pods must carry to be admitted there, and which probe kinds then cannot run.

Under `restricted` a pod must drop ALL capabilities, so a probe whose tool needs one (ICMP echo
needs NET_RAW for its raw socket, unless the runtime widened `net.ipv4.ping_group_range`) is
reported `not supported` from that namespace instead of failing; `baseline` keeps the
runtime's default capabilities (NET_RAW among them)."""

from __future__ import annotations

import copy
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from netconform.cluster import ClusterClient
from netconform.errors import ForbiddenError

ENFORCE: Final = "pod-security.kubernetes.io/enforce"
#: Capabilities a container keeps at each level without asking (containerd's defaults at
#: baseline; none at restricted, where `drop: [ALL]` is required).
KEPT_CAPABILITIES: Final = {
    "privileged": frozenset({"NET_RAW", "NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID"}),
    "baseline": frozenset({"NET_RAW", "NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID"}),
    "restricted": frozenset({"NET_BIND_SERVICE"}),
}
#: The user the probe pods run as where the level forbids root (nobody).
NON_ROOT_USER: Final = 65534


def enforced_level(cluster: ClusterClient, namespace: str) -> str:
    """The level `namespace` enforces (`privileged` when unlabelled or unreadable: a suite
    without `get namespaces` cannot know, and pods are then admitted or refused as they are)."""
    api = client.CoreV1Api(cluster.api)
    try:
        ns = cluster.call(f"get Namespace {namespace}", api.read_namespace, namespace)
    except (ForbiddenError, ApiException):
        return "privileged"
    labels = (ns.metadata.labels if ns.metadata else None) or {}
    level = (labels.get(ENFORCE) or "privileged").strip()
    return level if level in KEPT_CAPABILITIES else "privileged"


def missing_capability(level: str, needs: frozenset[str]) -> str:
    """The first capability of `needs` a pod at `level` does not have ("" when none)."""
    kept = KEPT_CAPABILITIES.get(level, KEPT_CAPABILITIES["privileged"])
    return next((cap for cap in sorted(needs) if cap not in kept), "")


def compliant_manifest(manifest: dict[str, Any], level: str) -> dict[str, Any]:
    """A Pod, or a workload's pod template, made compliant with `level`."""
    if manifest.get("kind") == "Pod":
        return compliant(manifest, level)
    template = (manifest.get("spec") or {}).get("template")
    if level != "restricted" or not isinstance(template, dict) or "spec" not in template:
        return manifest
    manifest = copy.deepcopy(manifest)
    manifest["spec"]["template"] = compliant(template, level)
    return manifest


def compliant(pod: dict[str, Any], level: str) -> dict[str, Any]:
    """`pod` with the security context `level` requires (unchanged below restricted)."""
    if level != "restricted":
        return pod
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    spec["securityContext"] = {**(spec.get("securityContext") or {}), "runAsNonRoot": True,
                               "runAsUser": NON_ROOT_USER, "runAsGroup": NON_ROOT_USER,
                               "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    for container in spec["containers"]:
        container["securityContext"] = {
            **(container.get("securityContext") or {}),
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    return pod
