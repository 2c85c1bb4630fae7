"""The lab's kubeconfig: admin and viewer contexts per cluster."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import yaml

from provisioning.lab.apiserver.model import Obj
from provisioning.lab.apiserver.routing import VIEWER_PREFIX

ADMIN_TOKEN: Final = "admin"


def write_kubeconfig(
    path: Path,
    clusters: Mapping[str, int],
    context_prefix: str = "lab-",
    users: Mapping[str, str] | None = None,
    secret: str = "",
) -> Path:
    """Write contexts `<prefix><cluster>` (admin) and `<prefix><cluster>-viewer` (read-only:
    the viewer token from `users`, cluster -> token, default "viewer", and the `/viewer` URL
    prefix, which is what makes kubectl read-only: it sends no token over plain http).
    The current context is the first cluster's."""
    users = users or {}
    admin = f"{context_prefix}admin"
    doc: Obj = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "contexts": [],
        "users": [{"name": admin, "user": {"token": ADMIN_TOKEN}}],
    }
    for name, port in clusters.items():
        ctx = f"{context_prefix}{name}"
        server = f"http://127.0.0.1:{port}" + (f"/s/{secret}" if secret else "")
        viewer = f"{ctx}-viewer"
        doc["clusters"] += [
            {"name": ctx, "cluster": {"server": server}},
            {"name": viewer, "cluster": {"server": server + VIEWER_PREFIX}},
        ]
        doc["users"].append({"name": viewer, "user": {"token": users.get(name, "viewer")}})
        doc["contexts"] += [
            {"name": c, "context": {"cluster": c, "user": u, "namespace": "default"}}
            for c, u in ((ctx, admin), (viewer, viewer))
        ]
    if clusters:
        doc["current-context"] = f"{context_prefix}{next(iter(clusters))}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the secret
    with os.fdopen(fd, "w") as out:
        out.write(yaml.safe_dump(doc, sort_keys=False))
    return path
