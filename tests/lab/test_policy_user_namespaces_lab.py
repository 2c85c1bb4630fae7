"""Generic network-policy mode judges the users' namespaces (suites/network_policy/
test_policies.py, netconform/policyscope.py): a user's application namespace `shop` in east,
its pods web (TCP 80) and db (TCP 5432), and its policy letting only web reach db.

- Healthy: green, the lab blocking db as the oracle says; no probe pod deployed into shop.
- Enforcement off in east: SECURITY findings into shop/db naming the user's policy.
- The topology narrowing generic mode to other namespaces: shop is no longer judged.
- The topology allowing probe pods into shop: they are deployed there, and shop's own egress
  policy (only within shop) is judged on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from netconform.cluster import ClusterClient
from netconform.topology import load_topology
from netconform.waits import wait_until
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.labrun import SuiteRun, run_suite

SUITE = "suites/network_policy/test_policies.py"
RUN_ID = "selftest-policy-user-ns"
SHOP = "shop"
PROBE_ROLE = "netconform.io/role=probe"


def _pod(name: str, port: int) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox",
                 "ports": [{"name": "serve", "containerPort": port}]}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": SHOP, "labels": {"app": name}},
            "spec": {"containers": [container]}}  # fmt: skip


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": SHOP}, "spec": spec}  # fmt: skip


DB_FROM_WEB = _policy("db-from-web", {
    "podSelector": {"matchLabels": {"app": "db"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                 "ports": [{"port": 5432}]}],
})  # fmt: skip
SHOP_EGRESS = _policy("shop-egress-within", {
    "podSelector": {},
    "policyTypes": ["Egress"],
    "egress": [{"to": [{"namespaceSelector": {
        "matchLabels": {"kubernetes.io/metadata.name": SHOP}}}]}],
})  # fmt: skip


@pytest.fixture(scope="module")
def east(lab: LabPaths) -> Iterator[ClusterClient]:
    topology = load_topology(lab.topology)
    client = ClusterClient(topology.cluster("east"), topology.kubeconfig, topology.timeouts)
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SHOP}})
    for obj in (_pod("web", 80), _pod("db", 5432), DB_FROM_WEB, SHOP_EGRESS):
        client.apply(obj)
    client.wait_pods_ready(SHOP, "", 2)
    try:
        yield client
    finally:
        for cluster in topology.clusters:
            other = ClusterClient(cluster, topology.kubeconfig, topology.timeouts)
            other.delete_labelled(cluster.namespace, f"netconform.io/run-id={RUN_ID}")
        client.delete("Namespace", SHOP, "")


def topology_with(lab: LabPaths, tmp_path: Path, network_policy: dict[str, Any]) -> Path:
    doc = yaml.safe_load(lab.topology.read_text())
    doc["network_policy"] = network_policy
    doc["kubeconfig"] = str(lab.kubeconfig)  # relative to the lab's own topology file
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def suite(topology: Path, tmp_path: Path) -> SuiteRun:
    return run_suite([SUITE, "--topology", str(topology), "--run-id", RUN_ID, "--keep-workloads"],
                     tmp_path)  # fmt: skip


def probes_in_shop(east: ClusterClient) -> list[str]:
    return [p.metadata.name for p in east.objects("Pod", SHOP, PROBE_ROLE)]


def test_a_user_policy_is_judged_and_probe_pods_stay_out(
    lab: LabPaths, east: ClusterClient, tmp_path: Path
) -> None:
    healthy = suite(lab.topology, tmp_path)
    assert set(healthy.outcomes.values()) == {"passed"}, healthy.output[-3000:]
    assert probes_in_shop(east) == []  # the topology does not allow it
    control.call(lab, "POST", "/fault", {"name": "policy-off", "args": ["east"]})
    try:
        off = suite(lab.topology, tmp_path)
    finally:
        control.call(lab, "POST", "/heal", {})
    assert off.failed() == {"east"}, off.output[-3000:]
    findings = [ln for ln in off.messages["east"].splitlines() if "unexpected" in ln]
    into_db = [ln for ln in findings if "-> east/db (" in ln]
    assert into_db and all("SECURITY: unexpected allow" in ln and ":5432 tcp" in ln
                           and "db-from-web" in ln for ln in into_db), findings  # fmt: skip
    assert not [ln for ln in findings if "-> east/web (" in ln]  # web is open to everyone


def test_the_topology_narrows_the_judged_namespaces(
    lab: LabPaths, east: ClusterClient, tmp_path: Path
) -> None:
    narrowed = topology_with(lab, tmp_path, {"namespaces": ["not-shop"]})
    control.call(lab, "POST", "/fault", {"name": "policy-off", "args": ["east"]})
    try:
        run = suite(narrowed, tmp_path)
    finally:
        control.call(lab, "POST", "/heal", {})
    assert set(run.outcomes.values()) == {"passed"}, run.output[-3000:]  # shop not judged


def test_probe_pods_go_into_a_namespace_the_topology_allows(
    lab: LabPaths, east: ClusterClient, tmp_path: Path
) -> None:
    allowed = topology_with(lab, tmp_path, {"probe_namespaces": [SHOP]})
    run = suite(allowed, tmp_path)
    assert set(run.outcomes.values()) == {"passed"}, run.output[-3000:]
    assert probes_in_shop(east), "no probe pod deployed into shop"
    control.call(lab, "POST", "/fault", {"name": "policy-off", "args": ["east"]})
    try:
        off = suite(allowed, tmp_path)
    finally:
        control.call(lab, "POST", "/heal", {})
        east.delete_labelled(SHOP, f"netconform.io/run-id={RUN_ID}")
        wait_until(lambda: not probes_in_shop(east), timeout=30, name="shop_probes_deleted")
    findings = [ln for text in off.messages.values() for ln in text.splitlines()
                if "SECURITY: unexpected allow" in ln]  # fmt: skip
    # shop's egress policy keeps its probe pods inside shop: reaching another namespace's
    # pods with enforcement off is a finding naming that policy
    leaving = [ln for ln in findings if "egress of east/shop/probe-" in ln
               and "shop-egress-within" in ln]  # fmt: skip
    assert leaving, findings[:10]
