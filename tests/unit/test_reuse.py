"""--reuse-workloads without a cluster: the identity, the manifest hash, adoption decisions, the
leftover sweep's selector, and the stop of a run that does not reuse."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from fixtures.kept import NOT_REUSED, refuse_reused, remove_reused
from fixtures.lab import lab_preview
from fixtures.plugin import MANAGED_BY, RUN_ID
from netconform.cluster import ClusterClient
from netconform.errors import UsageError
from netconform.reuse import (
    ADOPTED,
    CREATED,
    MANIFEST,
    REAPPLIED,
    REPLACED,
    REUSE,
    Reuse,
    identity,
    manifest_hash,
    stamped,
)
from provisioning.lab.apiserver.selectors import parse_label_selector, selector_matches

LABEL_VALUE = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"


class FakeClient:
    """A cluster of dicts: get/apply/delete/objects as ClusterClient's, each call logged."""

    name = "east"

    def __init__(self) -> None:
        self.live: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    def get(self, kind: str, name: str, namespace: str = "") -> Any | None:
        self.calls.append(("get", name))
        obj = self.live.get((kind, namespace, name))
        if obj is None:
            return None
        meta = obj["metadata"]
        return SimpleNamespace(
            metadata=SimpleNamespace(
                name=name,
                labels=meta.get("labels"),
                annotations=meta.get("annotations"),
                deletion_timestamp=meta.get("deletionTimestamp"),
            )
        )

    def apply(self, obj: dict[str, Any]) -> None:
        self.calls.append(("apply", obj["metadata"]["name"]))
        meta = obj["metadata"]
        self.live[obj["kind"], meta.get("namespace", ""), meta["name"]] = copy.deepcopy(obj)

    def delete(self, kind: str, name: str, namespace: str = "") -> bool:
        self.calls.append(("delete", name))
        return self.live.pop((kind, namespace, name), None) is not None

    def objects(self, kind: str, namespace: str, selector: str = "") -> list[Any]:
        wanted = parse_label_selector(selector)
        return [
            SimpleNamespace(metadata=SimpleNamespace(name=n))
            for (k, ns, n), obj in self.live.items()
            if k == kind and (ns == namespace or not namespace)
            and selector_matches(wanted, obj["metadata"].get("labels") or {})
        ]  # fmt: skip

    def delete_labelled(self, namespace: str, selector: str) -> int:
        kinds = ("Pod", "Deployment", "Service", "Ingress", "ConfigMap", "Secret")
        found = [(k, o.metadata.name) for k in kinds for o in self.objects(k, namespace, selector)]
        return sum(self.delete(k, n, namespace) for k, n in found)

    def delete_suite_namespaces(self, selector: str) -> int:
        return sum(self.delete("Namespace", o.metadata.name) for o in
                   self.objects("Namespace", "", selector))  # fmt: skip

    def wait_deleted(self, namespace: str, selector: str) -> None:
        assert not self.objects("Pod", namespace, selector)


def as_client(fake: FakeClient) -> ClusterClient:
    return cast(ClusterClient, fake)


def pod(name: str, image: str = "probe", kept: str = "lab-1") -> dict[str, Any]:
    labels = {MANAGED_BY: "netconform", REUSE: kept}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "east", "labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    obj = pod(name)
    obj.update(kind="Deployment", apiVersion="apps/v1", spec={"replicas": replicas})
    return obj


def test_identity_is_a_stable_label_value_of_the_topology_not_the_run(tmp_path: Path) -> None:
    topology = lab_preview(3, tmp_path / "lab", "default")
    kept = identity(topology)
    assert kept == identity(lab_preview(3, tmp_path / "elsewhere", "default"))
    assert kept.startswith(topology.name[:10])
    assert re.fullmatch(LABEL_VALUE, kept)
    assert identity(lab_preview(2, tmp_path / "lab", "default")) != kept  # other clusters
    odd = replace(topology, name="  Prod / EU (new) " + "x" * 80)
    assert re.fullmatch(LABEL_VALUE, identity(odd)) and identity(odd) != kept


def test_the_hash_is_of_what_is_applied_without_its_own_annotation() -> None:
    one = stamped(pod("probe-0-0"))
    assert one["metadata"]["annotations"][MANIFEST] == manifest_hash(pod("probe-0-0"))
    assert manifest_hash(one) == manifest_hash(pod("probe-0-0"))  # stamping changes nothing
    assert manifest_hash(pod("probe-0-0", image="other")) != manifest_hash(pod("probe-0-0"))
    assert manifest_hash(pod("probe-0-0", kept="lab-2")) != manifest_hash(pod("probe-0-0"))
    assert "annotations" not in pod("probe-0-0")["metadata"]  # the caller's is left alone


def test_an_unchanged_object_is_adopted_with_one_read_and_no_write() -> None:
    client = FakeClient()
    reuse = Reuse(deletion_timeout=1)
    assert reuse.put(as_client(client), deployment("echo")) == CREATED
    client.calls.clear()
    assert reuse.put(as_client(client), deployment("echo")) == ADOPTED
    assert client.calls == [("get", "echo")]
    assert reuse.summary() == "1 adopted, 1 created"


def test_a_changed_object_is_reapplied_and_a_changed_pod_recreated() -> None:
    client = FakeClient()
    reuse = Reuse(deletion_timeout=1)
    reuse.put(as_client(client), deployment("echo"))
    reuse.put(as_client(client), pod("probe-0-0"))
    client.calls.clear()
    assert reuse.put(as_client(client), deployment("echo", replicas=2)) == REAPPLIED
    assert client.live["Deployment", "east", "echo"]["spec"] == {"replicas": 2}
    assert reuse.put(as_client(client), pod("probe-0-0", image="v2")) == REPLACED
    assert client.calls[-4:] == [
        ("get", "probe-0-0"), ("delete", "probe-0-0"), ("get", "probe-0-0"), ("apply", "probe-0-0")
    ]  # fmt: skip
    spec = client.live["Pod", "east", "probe-0-0"]["spec"]
    assert spec["containers"][0]["image"] == "v2"


def test_an_object_without_the_hash_or_of_another_identity_is_not_adopted() -> None:
    client = FakeClient()
    reuse = Reuse(deletion_timeout=1)
    client.apply(deployment("echo"))  # no hash: a run's own
    assert reuse.put(as_client(client), deployment("echo")) == REAPPLIED
    other = stamped(deployment("web"))
    other["metadata"]["labels"][REUSE] = "lab-2"
    other["metadata"]["annotations"][MANIFEST] = manifest_hash(deployment("web"))
    client.apply(other)
    assert reuse.put(as_client(client), deployment("web")) == REAPPLIED
    gone = stamped(deployment("old"))
    gone["metadata"]["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    client.apply(gone)
    assert reuse.put(as_client(client), deployment("old")) == REAPPLIED


@pytest.mark.parametrize(
    ("labels", "swept"),
    [
        ({MANAGED_BY: "netconform", RUN_ID: "old-run"}, True),
        ({MANAGED_BY: "netconform", RUN_ID: "this-run"}, False),
        ({MANAGED_BY: "netconform", REUSE: "lab-1"}, False),
        ({MANAGED_BY: "netconform", RUN_ID: "old-run", REUSE: "lab-1"}, False),
        ({"app": "users-own"}, False),
    ],
)
def test_the_leftover_sweep_never_selects_a_reused_workload(
    labels: dict[str, str], swept: bool
) -> None:
    selector = parse_label_selector(f"{MANAGED_BY}=netconform,{RUN_ID}!=this-run,{NOT_REUSED}")
    assert selector_matches(selector, labels) is swept


def test_a_run_that_does_not_reuse_stops_naming_both_ways_on() -> None:
    client = FakeClient()
    refuse_reused(as_client(client), ["east"], "lab-1")  # nothing kept: runs
    for i in range(5):
        client.apply(pod(f"probe-{i}-0"))
    refuse_reused(as_client(client), ["east"], "lab-2")  # another topology's
    with pytest.raises(UsageError) as err:
        refuse_reused(as_client(client), ["east"], "lab-1")
    message = str(err.value)
    assert "east/Pod/probe-0-0" in message and "and 2 more" in message
    assert "--reuse-workloads" in message and "--remove-reused-workloads" in message


def test_the_cleanup_removes_exactly_the_topologys_reused_objects() -> None:
    client = FakeClient()
    for name in ("probe-0-0", "probe-1-0"):
        client.apply(pod(name))
    client.apply(pod("theirs", kept="lab-2"))
    mine = pod("run-own")
    mine["metadata"]["labels"] = {MANAGED_BY: "netconform", RUN_ID: "r1"}
    client.apply(mine)
    assert remove_reused(as_client(client), ["east"], "lab-1") == 2
    assert {n for _, _, n in client.live} == {"theirs", "run-own"}
