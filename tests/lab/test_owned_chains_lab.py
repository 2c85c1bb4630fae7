"""The lab's controllers own their chains and nothing else (issue 15.8): a rule typed by hand
into a node's built-in chains survives a new Service, a NetworkPolicy resync, kube-proxy's full
resync and the fault CLI's faults and heal; a flushed `KUBE-SERVICES` is repaired within the
resync period."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from netconform.waits import wait_until
from provisioning.lab import control, layouts
from provisioning.lab.control import LabPaths
from provisioning.lab.network import NodePlan
from provisioning.lab.owned_chains import SYNC_PERIOD
from tests.tools import kubectl_binary

#: a full resync comes within one period of the flush; two, and a margin for a busy machine
RESYNC_TIMEOUT = 2 * SYNC_PERIOD + 10
#: a Service event reaches every node's chains within this
SERVICE_PROGRAMMED = 20.0
#: rules an operator typed by hand (TEST-NET-1 addresses: nothing in the lab uses them)
BY_HAND = (
    ("nat", ["PREROUTING", "-s", "192.0.2.7/32", "-p", "udp", "-m", "udp", "--dport", "9",
             "-m", "comment", "--comment", "by-hand", "-j", "RETURN"]),
    ("filter", ["FORWARD", "-s", "192.0.2.7/32", "-m", "comment", "--comment", "by-hand",
                "-j", "DROP"]),
)  # fmt: skip


@dataclass(frozen=True)
class Node:
    plan: NodePlan

    def iptables(self, table: str, *args: str, check: bool = True) -> str:
        argv = ["ip", "netns", "exec", self.plan.netns, "iptables", "-w", "-t", table, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check).stdout

    def has(self, table: str, spec: list[str]) -> bool:
        argv = ["ip", "netns", "exec", self.plan.netns, "iptables", "-w", "-t", table, "-C"]
        return subprocess.run([*argv, *spec], capture_output=True, check=False).returncode == 0

    def raw_rules(self) -> str:
        return self.iptables("raw", "-S")


@pytest.fixture
def node(lab: LabPaths) -> Iterator[Node]:
    """East's first node with the hand-typed rules in its nat PREROUTING and filter FORWARD
    (removed afterwards, and any fault healed)."""
    state = control.read_state(lab)
    assert state is not None
    plan = layouts.plan(state["prefix"], 3)
    east = Node(plan.region("east").nodes[0])
    for table, spec in BY_HAND:
        east.iptables(table, "-I", spec[0], "1", *spec[1:])
    yield east
    control.call(lab, "POST", "/heal", {})
    for table, spec in BY_HAND:
        east.iptables(table, "-D", *spec, check=False)


def _kubectl(lab: LabPaths, *args: str) -> str:
    command = [kubectl_binary(), "--kubeconfig", str(lab.kubeconfig), "--context", "lab-east"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _assert_by_hand_kept(node: Node, after: str) -> None:
    for table, spec in BY_HAND:
        assert node.has(table, spec), f"the hand-typed {table} {spec[0]} rule is gone {after}"


def test_hand_typed_rules_survive_every_controller_sync(lab: LabPaths, node: Node) -> None:
    name = f"owned-{uuid.uuid4().hex[:6]}"
    _kubectl(lab, "create", "service", "loadbalancer", name, "--tcp=80:8080", "-n", "east")
    try:
        cluster_ip = _kubectl(lab, "get", "service", name, "-n", "east",
                              "-o", "jsonpath={.spec.clusterIP}")  # fmt: skip
        wait_until(
            lambda: cluster_ip in node.iptables("filter", "-S", "KUBE-SERVICES"),
            timeout=SERVICE_PROGRAMMED,
            name="service_programmed",
        )
        _assert_by_hand_kept(node, "after a new Service")
        # NetworkPolicy's resync (synchronous: the fault returns once every node is rewritten)
        control.call(lab, "POST", "/fault", {"name": "policy-off", "args": ["east"]})
        control.call(lab, "POST", "/heal", {})
        _assert_by_hand_kept(node, "after the NetworkPolicy controller's resyncs")
        # kube-proxy's full resync: a flushed KUBE-SERVICES comes back, nothing else changes
        programmed = node.iptables("nat", "-S", "KUBE-SERVICES")
        assert "-A KUBE-SERVICES" in programmed, "east has no Service with endpoints"
        node.iptables("nat", "-F", "KUBE-SERVICES")
        wait_until(
            lambda: node.iptables("nat", "-S", "KUBE-SERVICES") == programmed,
            timeout=RESYNC_TIMEOUT,
            name="kube_proxy_resync",
            describe=lambda: node.iptables("nat", "-S", "KUBE-SERVICES"),
        )
        _assert_by_hand_kept(node, "after kube-proxy's full resync")
    finally:
        _kubectl(lab, "delete", "service", name, "-n", "east")
    wait_until(
        lambda: cluster_ip not in node.iptables("filter", "-S", "KUBE-SERVICES"),
        timeout=SERVICE_PROGRAMMED,
        name="service_unprogrammed",
    )
    _assert_by_hand_kept(node, "after a Service was deleted")


def test_fault_cli_faults_are_healed_and_hand_typed_rules_are_not(
    lab: LabPaths, node: Node
) -> None:
    raw_before = node.raw_rules()
    for fault in (("nodeport-off", node.plan.name), ("firewall-close", "east", "west", "9092")):
        control.call(lab, "POST", "/fault", {"name": fault[0], "args": list(fault[1:])})
    assert node.raw_rules() != raw_before, "nodeport-off put no rule in the node's raw table"
    healed = control.call(lab, "POST", "/heal", {})["healed"]
    assert len(healed) == 2, healed
    assert node.raw_rules() == raw_before
    _assert_by_hand_kept(node, "after heal")
