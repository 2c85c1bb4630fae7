"""Workloads kept between runs (`--reuse-workloads`): a stable identity, a manifest's hash, and
adoption of what an earlier run left when it is still what this run would apply.

Gating is "run, change the network, run again": deploying the same probe pods, echo servers,
Services and Ingresses each time is most of a smoke run at 3 regions. As Cilium's connectivity
test keeps its `cilium-test` namespace and gateway-api's conformance its base resources
(`--cleanup-base-resources=false`), a reusing run leaves its workloads deployed under an
identity derived from the topology (not the run id), each stamped with the hash of what was
applied; the next reusing run reads each object back and adopts it, writing nothing, when its
hash and identity are this run's, and re-applies it otherwise (a Pod, whose spec cannot
change, is deleted and created again). Readiness is never taken from an earlier run: the
checks wait for it as usual (pods running, endpoints, LoadBalancer addresses, the ingress
controller serving), and probe everything they claim, every run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections import Counter
from typing import Any

from netconform.cluster import ClusterClient
from netconform.topology import Topology
from netconform.waits import wait_until

REUSE = "netconform.io/reuse"
"""Label of a reused workload: the identity of the topology it was deployed for."""
MANIFEST = "netconform.io/manifest-sha256"
"""Annotation: the hash of the object as applied (without this annotation)."""

ADOPTED, CREATED, REAPPLIED, REPLACED = "adopted", "created", "re-applied", "replaced"
"""What `put` did: nothing (the live object is this run's), create, patch, delete + create."""


def identity(topology: Topology) -> str:
    """A label value naming the topology's reused workloads: its name, then a hash of its name
    and every cluster's name and region namespace (stable across runs, runners and context
    names; two topologies sharing a cluster get apart sets)."""
    parts = [topology.name, *(f"{c.name}/{c.namespace}" for c in topology.clusters)]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", topology.name).strip("-._")[:40].rstrip("-._")
    return f"{name}-{digest}" if name else digest


def manifest_hash(obj: dict[str, Any]) -> str:
    """SHA-256 of the object's canonical JSON, its own `MANIFEST` annotation left out."""
    body = copy.deepcopy(obj)
    annotations = body.get("metadata", {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(MANIFEST, None)
        if not annotations:
            del body["metadata"]["annotations"]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def stamped(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` carrying its hash in the `MANIFEST` annotation."""
    out = copy.deepcopy(obj)
    digest = manifest_hash(out)
    out.setdefault("metadata", {}).setdefault("annotations", {})[MANIFEST] = digest
    return out


def adoptable(live: Any, wanted: dict[str, Any]) -> bool:
    """True when the live object (a kubernetes client model) is what `wanted` (stamped)
    applies: the same hash and the same reuse identity, and not being deleted."""
    meta = live.metadata
    if meta is None or meta.deletion_timestamp is not None:
        return False
    annotations = meta.annotations or {}
    labels = meta.labels or {}
    want_meta = wanted["metadata"]
    return bool(
        annotations.get(MANIFEST)
        and annotations.get(MANIFEST) == want_meta["annotations"][MANIFEST]
        and labels.get(REUSE) == want_meta.get("labels", {}).get(REUSE)
    )


class Reuse:
    """Puts objects for a reusing run and counts what it did (adopted, created...)."""

    def __init__(self, deletion_timeout: float) -> None:
        self.deletion_timeout = deletion_timeout
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def put(self, client: ClusterClient, obj: dict[str, Any]) -> str:
        """Adopt the live object when it is `obj` as stamped; create it when absent; else
        re-apply (a Pod is deleted, waited gone (named timeout `deletion`) and created)."""
        wanted = stamped(obj)
        kind, meta = wanted["kind"], wanted["metadata"]
        name, namespace = meta["name"], meta.get("namespace", "")
        live = client.get(kind, name, namespace)
        if live is None:
            done = CREATED
        elif adoptable(live, wanted):
            done = ADOPTED
        elif kind == "Pod":
            client.delete(kind, name, namespace)
            self._wait_gone(client, kind, name, namespace)
            done = REPLACED
        else:
            done = REAPPLIED
        if done != ADOPTED:
            client.apply(wanted)
        with self._lock:
            self.counts[done] += 1
        return done

    def _wait_gone(self, client: ClusterClient, kind: str, name: str, namespace: str) -> None:
        def gone() -> bool:
            return client.get(kind, name, namespace) is None

        wait_until(
            gone,
            timeout=self.deletion_timeout,
            name="deletion",
            interval=0.1,
            describe=lambda: f"{client.name}/{namespace} {kind} {name}: still there",
        )

    def summary(self) -> str:
        """`41 adopted, 2 re-applied` (what this process did), or ''."""
        order = (ADOPTED, CREATED, REAPPLIED, REPLACED)
        return ", ".join(f"{self.counts[k]} {k}" for k in order if self.counts[k])
