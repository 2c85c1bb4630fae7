"""Writing kubeconfig contexts for built clusters, as `aws eks update-kubeconfig` writes them.

The EKS entry (awscli's customizations/eks/update_kubeconfig.py, KubeconfigAppender and
EKSClient.get_user_entry): cluster and user named by the cluster ARN, the user an exec plugin
(`client.authentication.k8s.io/v1beta1`) running `aws --region R eks get-token
--cluster-name NAME --output json`. Existing entries of other names are kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from netconform.errors import CloudError
from netconform.topology import Topology

EXEC_API = "client.authentication.k8s.io/v1beta1"


def default_path(topology: Topology) -> Path:
    """The topology's kubeconfig, else KUBECONFIG's first file, else ~/.kube/config."""
    if topology.kubeconfig is not None:
        return topology.kubeconfig
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return Path(first) if first else Path.home() / ".kube" / "config"


def read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise CloudError(f"{path}: cannot read kubeconfig: {err.strerror}") from None
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise CloudError(f"{path}: not a kubeconfig (malformed YAML)") from None
    if not isinstance(doc, dict):
        raise CloudError(f"{path}: not a kubeconfig (not a mapping)")
    return doc


def has_context(path: Path, context: str, cluster_name: str) -> bool:
    """True when `context` is there and its user runs get-token for `cluster_name`."""
    doc = read(path)
    for entry in doc.get("contexts") or []:
        if entry.get("name") == context:
            user = (entry.get("context") or {}).get("user")
            for u in doc.get("users") or []:
                if u.get("name") == user:
                    args = ((u.get("user") or {}).get("exec") or {}).get("args") or []
                    return cluster_name in args
    return False


def has_user(path: Path, context: str, user: str) -> bool:
    """True when `context` is there and uses the kubeconfig user `user` (GKE, AKS entries)."""
    for entry in read(path).get("contexts") or []:
        if entry.get("name") == context:
            return bool((entry.get("context") or {}).get("user") == user)
    return False


def gke_name(project: str, location: str, cluster: str) -> str:
    """The cluster, user and (there) context name `gcloud container clusters get-credentials`
    gives: gke_PROJECT_LOCATION_CLUSTER."""
    return f"gke_{project}_{location}_{cluster}"


def write_gke_context(
    path: Path,
    context: str,
    *,
    project: str,
    location: str,
    cluster: str,
    endpoint: str,
    ca_data: str,
) -> None:
    """As `gcloud container clusters get-credentials` writes it (googlecloudsdk's
    container/kubeconfig.py): server https://ENDPOINT, the user an exec plugin running
    gke-gcloud-auth-plugin with provideClusterInfo."""
    name = gke_name(project, location, cluster)
    user = {
        "name": name,
        "user": {
            "exec": {
                "apiVersion": EXEC_API,
                "command": "gke-gcloud-auth-plugin",
                "installHint": "Install gke-gcloud-auth-plugin for use with kubectl by "
                "following https://cloud.google.com/kubernetes-engine/docs/how-to/"
                "cluster-access-for-kubectl#install_plugin",
                "provideClusterInfo": True,
            }
        },
    }
    cluster_entry = {
        "name": name,
        "cluster": {"server": f"https://{endpoint}", "certificate-authority-data": ca_data},
    }
    _merge(path, context, [cluster_entry], [user], name, name)


def merge_kubeconfig(path: Path, context: str, text: str) -> str:
    """Merge a kubeconfig the cloud handed out (AKS listClusterUserCredential) as `az aks
    get-credentials` does: its clusters and users kept by name, its context renamed
    `context`. Returns the user's name."""
    try:
        doc = yaml.safe_load(text) or {}
        entry = (doc.get("contexts") or [])[0]["context"]
    except (yaml.YAMLError, AttributeError, IndexError, KeyError, TypeError):
        raise CloudError(f"{context}: the cloud's kubeconfig does not parse") from None
    _merge(
        path,
        context,
        doc.get("clusters") or [],
        doc.get("users") or [],
        str(entry["cluster"]),
        str(entry["user"]),
    )
    return str(entry["user"])


def _merge(
    path: Path,
    context: str,
    clusters: list[dict[str, Any]],
    users: list[dict[str, Any]],
    cluster: str,
    user: str,
) -> None:
    doc = read(path)
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    doc.setdefault("preferences", {})
    for key, entries in (("clusters", clusters), ("users", users)):
        items = doc.get(key) or []
        for entry in entries:
            items = _upsert(items, entry)
        doc[key] = items
    doc["contexts"] = _upsert(
        doc.get("contexts") or [], {"name": context, "context": {"cluster": cluster, "user": user}}
    )
    doc.setdefault("current-context", context)
    _write(path, doc)


def _upsert(items: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in items if i.get("name") != entry["name"]] + [entry]


def write_eks_context(
    path: Path, context: str, *, arn: str, cluster: str, region: str, server: str, ca_data: str
) -> None:
    doc = read(path)
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    doc.setdefault("preferences", {})
    user = {
        "name": arn,
        "user": {
            "exec": {
                "apiVersion": EXEC_API,
                "command": "aws",
                "args": [
                    "--region",
                    region,
                    "eks",
                    "get-token",
                    "--cluster-name",
                    cluster,
                    "--output",
                    "json",
                ],
            }
        },
    }
    doc["clusters"] = _upsert(
        doc.get("clusters") or [],
        {"name": arn, "cluster": {"server": server, "certificate-authority-data": ca_data}},
    )
    doc["users"] = _upsert(doc.get("users") or [], user)
    doc["contexts"] = _upsert(
        doc.get("contexts") or [], {"name": context, "context": {"cluster": arn, "user": arn}}
    )
    doc.setdefault("current-context", context)
    _write(path, doc)


def _write(path: Path, doc: dict[str, Any]) -> None:
    """Atomically, readable by its owner only (it names credentials' commands and CAs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(doc, handle, sort_keys=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
