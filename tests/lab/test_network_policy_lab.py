"""NetworkPolicy enforcement in the real lab: probed with TCP connects between pods, the
policies written through the official Kubernetes client, every change observed within 2 s."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from netconform.waits import wait_until
from provisioning.lab import control
from provisioning.lab.control import LabPaths
from tests.lab.apiserver_kit import api_client
from tests.lab.fields import cluster_ip, model, name_of, phase

#: policies apply within 2 s; a dropped probe itself takes 1 s (nc -w 1)
APPLY = 3.5
CLUSTER = "east"


@dataclass(frozen=True)
class Pod:
    name: str
    ip: str
    netns: str


@dataclass
class Env:
    lab: LabPaths
    core: client.CoreV1Api
    net: client.NetworkingV1Api
    ns: str
    pods: dict[str, Pod]

    def policy(self, name: str, spec: dict[str, Any]) -> None:
        policy = model(client.V1NetworkPolicy, {"metadata": {"name": name}, "spec": spec})
        self.net.create_namespaced_network_policy(self.ns, policy)

    def delete(self, name: str) -> None:
        self.net.delete_namespaced_network_policy(name, self.ns)


def matrix(env: Env, ports: tuple[int, ...] = (80, 81)) -> dict[str, bool]:
    """Every ordered pair of the three pods on every port, probed at once: reachable or not."""
    procs = {
        f"{a}->{b}:{port}": subprocess.Popen(
            ["ip", "netns", "exec", src.netns, "nc", "-z", "-w", "1", dst.ip, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for a, src in env.pods.items()
        for b, dst in env.pods.items()
        if a != b
        for port in ports
    }
    return {key: proc.wait(timeout=10) == 0 for key, proc in procs.items()}


def settle(env: Env, expected: dict[str, bool], name: str) -> None:
    """Poll the matrix until it is `expected` (within APPLY seconds)."""
    last: dict[str, dict[str, bool]] = {}

    def check() -> bool:
        last["m"] = matrix(env)
        return last["m"] == expected

    wait_until(check, timeout=APPLY, name=name,
               describe=lambda: f"observed {last.get('m')}, expected {expected}")  # fmt: skip


def everything(open_: bool = True) -> dict[str, bool]:
    names = ("client", "server", "other")
    return {f"{a}->{b}:{p}": open_ for a in names for b in names if a != b for p in (80, 81)}


@pytest.fixture(scope="module")
def env(lab: LabPaths) -> Iterator[Env]:
    api = api_client(lab.kubeconfig, f"lab-{CLUSTER}")
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    ns = f"np-{uuid.uuid4().hex[:6]}"
    namespace = {"metadata": {"name": ns, "labels": {"team": "np"}}}
    core.create_namespace(model(client.V1Namespace, namespace))
    ports = [{"name": "http", "containerPort": 80}, {"name": "alt", "containerPort": 81}]
    for name in ("client", "server", "other"):
        container = {"name": "c", "image": "busybox", "ports": ports}
        body = {"metadata": {"name": name, "labels": {"app": name}},
                "spec": {"containers": [container]}}  # fmt: skip
        core.create_namespaced_pod(ns, model(client.V1Pod, body))

    def running() -> dict[str, Pod] | None:
        found = {
            p["name"]: Pod(p["name"], p["ip"], p["netns"])
            for p in control.call(lab, "GET", "/status")["pods"]
            if p["cluster"] == CLUSTER and p["namespace"] == ns
        }
        phases = {phase(p) for p in core.list_namespaced_pod(ns).items}
        return found if len(found) == 3 and phases == {"Running"} else None

    pods = wait_until(running, timeout=15, name="policy_probe_pods_running")
    try:
        yield Env(lab, core, net, ns, pods)
    finally:
        control.call(lab, "POST", "/heal", {})
        for pol in net.list_namespaced_network_policy(ns).items:
            net.delete_namespaced_network_policy(name_of(pol), ns)
        core.delete_namespace(ns)


def test_policies_are_enforced_and_removed(env: Env) -> None:
    # (a) no policy: everything connects
    settle(env, everything(), "no_policy_all_open")

    # (b) default-deny ingress on the server: nothing reaches it, the rest stays open
    env.policy("deny-server", {"podSelector": {"matchLabels": {"app": "server"}}})
    denied = {k: not k.split(":")[0].endswith("->server") for k in everything()}
    settle(env, denied, "default_deny_ingress_applied")

    # kube-proxy rewrites its own tables for a new Service: the policy rules stay
    svc = {"metadata": {"name": "server"},
           "spec": {"selector": {"app": "server"}, "ports": [{"port": 80}]}}  # fmt: skip
    service_ip = cluster_ip(
        env.core.create_namespaced_service(env.ns, model(client.V1Service, svc))
    )
    node = control.call(env.lab, "GET", f"/netns?name={CLUSTER}-node-0")["netns"]

    def tables() -> str | None:
        save = ["ip", "netns", "exec", node, "iptables-save"]
        out = subprocess.run(save, capture_output=True, text=True, check=True).stdout
        return out if service_ip in out else None

    assert "LAB-POLICY-FORWARD" in wait_until(tables, timeout=APPLY, name="service_programmed")
    assert matrix(env) == denied

    # (c) allow the client on the named port http (80) only
    env.policy(
        "allow-client",
        {
            "podSelector": {"matchLabels": {"app": "server"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                    "ports": [{"protocol": "TCP", "port": "http"}],
                }
            ],
        },
    )
    allowed = dict(denied, **{"client->server:80": True})
    settle(env, allowed, "allow_client_on_http")

    # (d) deleting the policies restores everything
    env.delete("allow-client")
    env.delete("deny-server")
    settle(env, everything(), "policies_deleted_all_open")


def test_egress_deny_with_an_exception_by_ip_block_and_port_range(env: Env) -> None:
    # (e) the client may reach 10/8 except the other pod, on ports 81..82 (endPort) only
    other = env.pods["other"].ip
    env.policy(
        "client-egress",
        {
            "podSelector": {"matchLabels": {"app": "client"}},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": [f"{other}/32"]}}],
                    "ports": [{"port": 81, "endPort": 82}],
                }
            ],
        },
    )
    try:
        expected = {
            k: (not k.startswith("client->")) or k == "client->server:81" for k in everything()
        }
        settle(env, expected, "egress_restricted")
    finally:
        env.delete("client-egress")
    settle(env, everything(), "egress_policy_deleted")


def test_policy_off_fault_stops_enforcement_and_heal_resumes(env: Env) -> None:
    # (f) with enforcement off the deny is not applied; heal applies it again
    env.policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    try:
        settle(env, everything(open_=False), "deny_all_applied")
        control.call(env.lab, "POST", "/fault", {"name": "policy-off", "args": [CLUSTER]})
        settle(env, everything(), "policy_off_all_open")
        control.call(env.lab, "POST", "/heal", {})
        settle(env, everything(open_=False), "healed_deny_all_again")
    finally:
        env.delete("deny-all")
    settle(env, everything(), "deny_all_deleted")
