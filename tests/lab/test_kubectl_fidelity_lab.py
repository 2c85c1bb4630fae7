"""The real kubectl against the lab API server: what a new user tries first works as on a real
cluster (what a cluster starts with, events, ReplicaSets, server-side apply, can-i,
port-forward's refusal, Pod Security admission)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from kubernetes import client

from tests.lab.apiserver_kit import running_pod, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_fresh_cluster_has_what_every_cluster_starts_with(kubectl: Kubectl) -> None:
    names = ok(kubectl("get", "ns", "-o", "jsonpath={.items[*].metadata.name}")).split()
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)
    svc = json.loads(ok(kubectl("get", "svc", "kubernetes", "-n", "default", "-o", "json")))
    assert svc["spec"]["clusterIP"] == "10.201.0.1"
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("https", 443)]
    ep = json.loads(ok(kubectl("get", "ep", "kubernetes", "-n", "default", "-o", "json")))
    assert not ep.get("subsets") and "loopback" in ep["metadata"]["annotations"]["netconform.lab/note"]
    node = json.loads(ok(kubectl("get", "node", "east-node-1", "-o", "json")))
    assert node["spec"]["podCIDR"] == "10.101.2.0/24" and node["spec"]["podCIDRs"] == ["10.101.2.0/24"]
    assert {c["type"] for c in node["status"]["conditions"]} >= {"Ready", "MemoryPressure"}
    assert node["status"]["allocatable"]["pods"] == "110"
    described = ok(kubectl("describe", "node", "east-node-1"))
    assert "PodCIDR:" in described and "10.101.2.0/24" in described


def test_describe_pod_shows_its_events(kubectl: Kubectl, core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "ev")
    described = ok(kubectl("describe", "pod", "ev", "-n", ns))
    assert "Scheduled" in described and f"Successfully assigned {ns}/ev to east-node" in described
    listed = ok(kubectl("get", "events", "-n", ns))
    assert "Scheduled" in listed and "pod/ev" in listed, listed
    ok(kubectl("delete", "pod", "ev", "-n", ns, "--wait=false"))
    killing = wait_for(lambda: "Killing" in (out := ok(kubectl("get", "ev", "-n", ns))) and out)
    assert "Stopping container main" in killing


def test_port_forward_says_it_is_not_supported(
    kubectl: Kubectl, core: client.CoreV1Api, ns: str
) -> None:
    running_pod(core, ns, "pf")
    refused = kubectl("port-forward", "-n", ns, "pod/pf", "18080:8080")
    assert refused.returncode != 0
    assert "port-forward is not supported by the netconform lab" in refused.stderr
    assert "could not find the requested resource" not in refused.stderr


def test_auth_can_i_answers_as_each_identity_really_is(kubectl: Kubectl, ns: str) -> None:
    admin = kubectl("auth", "can-i", "create", "pods/exec", "-n", ns)
    assert (admin.returncode, admin.stdout.strip()) == (0, "yes"), admin.stderr
    viewer = "lab-east-viewer"
    for args, answer in (
        (("create", "pods/exec"), "no"),
        (("delete", "deployments"), "no"),
        (("get", "pods"), "yes"),
        (("watch", "services"), "yes"),
        (("get", "pods", "--subresource", "log"), "yes"),
    ):
        got = kubectl("auth", "can-i", *args, "-n", ns, context=viewer)
        assert got.stdout.split(" ")[0].strip() == answer, (args, got.stdout, got.stderr)
        assert got.returncode == (0 if answer == "yes" else 1)
    listed = ok(kubectl("auth", "can-i", "--list", "-n", ns, context=viewer))
    assert "pods/log" in listed and "[get list watch]" in listed, listed
