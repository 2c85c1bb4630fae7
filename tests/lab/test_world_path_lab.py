"""Pod traffic to world addresses leaves each region through its own NAT gateway (issue 17.5):
with east<->west's peering cut, east's pods still reach west's external LoadBalancer over the
world (the lab's `world` namespace), seen there from east's gateway address, while east's pods
no longer reach west's pods (the peered path)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
import yaml

from netconform.waits import wait_until
from provisioning.lab import control, layouts
from provisioning.lab.control import LabPaths
from tests.tools import kubectl_binary

#: a Pod Running and its LoadBalancer given an address and programmed
READY = 60.0
PORT = 8080
Kubectl = Callable[..., str]


def _pod(name: str, namespace: str, labels: dict[str, str]) -> dict[str, object]:
    container = {"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                 "ports": [{"containerPort": PORT}]}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]},
    }


def _lb(name: str, namespace: str, app: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",  # the backend sees the client's address
            "selector": {"app": app},
            "ports": [{"port": 80, "targetPort": PORT}],
        },
    }


@pytest.fixture
def kubectl(lab: LabPaths) -> Kubectl:
    def run(cluster: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
        argv = [kubectl_binary(), "--kubeconfig", str(lab.kubeconfig), "--context",
                f"lab-{cluster}", *args]  # fmt: skip
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
        assert not check or done.returncode == 0, (args, done.stderr)
        return done.stdout if done.returncode == 0 else ""

    return run


@pytest.fixture
def world_lb(lab: LabPaths, kubectl: Kubectl) -> Iterator[tuple[str, str, str]]:
    """(west's external LB address, west's backend pod IP, east's client pod name)."""
    tag = uuid.uuid4().hex[:6]
    backend, client, app = f"wp-backend-{tag}", f"wp-client-{tag}", f"wp-{tag}"
    west = [_pod(backend, "west", {"app": app}), _lb(f"wp-lb-{tag}", "west", app)]
    kubectl("west", "apply", "-f", "-", stdin=yaml.safe_dump_all(west))
    kubectl("east", "apply", "-f", "-", stdin=yaml.safe_dump(_pod(client, "east", {})))
    try:
        for cluster, pod in (("west", backend), ("east", client)):
            kubectl(cluster, "wait", "--for=condition=Ready", f"pod/{pod}", "-n", cluster,
                    f"--timeout={READY:g}s")  # fmt: skip

        def address() -> str:
            svc = json.loads(kubectl("west", "get", "service", f"wp-lb-{tag}", "-n", "west",
                                     "-o", "json"))  # fmt: skip
            ingress = (svc.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
            return str(ingress[0]["ip"]) if ingress else ""

        lb = wait_until(address, timeout=READY, name="lb_address")
        pod = json.loads(kubectl("west", "get", "pod", backend, "-n", "west", "-o", "json"))
        yield lb, str(pod["status"]["podIP"]), client
    finally:
        control.call(lab, "POST", "/heal", {})
        kubectl("west", "delete", "service", f"wp-lb-{tag}", "-n", "west", "--wait=false")
        kubectl("west", "delete", "pod", backend, "-n", "west", "--wait=false")
        kubectl("east", "delete", "pod", client, "-n", "east", "--wait=false")


def _ask(kubectl: Kubectl, client: str, host: str, port: int) -> str:
    """What the echo at host:port says to east's client pod ('' when nothing answers)."""
    return kubectl("east", "exec", client, "-n", "east", "--", "sh", "-c",
                   f"echo | nc -w 5 {host} {port}", check=False)  # fmt: skip


def test_cut_peering_leaves_the_world_path_to_an_external_lb(
    lab: LabPaths, kubectl: Kubectl, world_lb: tuple[str, str, str]
) -> None:
    lb, backend_ip, client = world_lb
    state = control.read_state(lab)
    assert state is not None
    east_gateway = layouts.plan(state["prefix"], 3).region("east").world_link[1]
    before = wait_until(lambda: _ask(kubectl, client, lb, 80), timeout=READY, name="lb_answers")
    assert east_gateway in before, f"west's backend saw no NAT gateway address: {before}"
    assert _ask(kubectl, client, backend_ip, PORT), "east's pod does not reach west's pod"
    control.call(lab, "POST", "/fault", {"name": "cut-peering", "args": ["east", "west"]})
    through_world = _ask(kubectl, client, lb, 80)
    assert east_gateway in through_world, (
        f"west's external LB lost with the peering: {through_world!r}"
    )
    assert not _ask(kubectl, client, backend_ip, PORT), "the peered path survived its cut"
