"""EndpointSlices with the real kubectl: `describe svc` reads them (kubectl 1.37 no longer reads
Endpoints), `get endpointslices` lists them, and they follow pods' readiness and the Service."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from kubernetes import client

from tests.lab.apiserver_kit import running_pod, svc_body, wait_for
from tests.lab.fields import meta, model, name_of, node_name, pod_ip

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SERVICE_LABEL = "kubernetes.io/service-name"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def slices(kubectl: Kubectl, ns: str, svc: str) -> list[dict[str, Any]]:
    out = ok(kubectl("get", "endpointslices", "-n", ns, "-l", f"{SERVICE_LABEL}={svc}",
                     "-o", "json"))  # fmt: skip
    return list(json.loads(out)["items"])


def described_endpoints(kubectl: Kubectl, ns: str, svc: str) -> str:
    out = ok(kubectl("describe", "svc", svc, "-n", ns))
    return next(line.split()[1] for line in out.splitlines() if line.startswith("Endpoints:"))


def test_describe_service_shows_its_endpoints_from_slices(
    kubectl: Kubectl, core: client.CoreV1Api, ns: str
) -> None:
    ips = sorted(
        pod_ip(running_pod(core, ns, name, labels={"app": "web"})) for name in ("w1", "w2")
    )
    core.create_namespaced_service(ns, model(client.V1Service, svc_body("web", {"app": "web"})))
    assert described_endpoints(kubectl, ns, "web") == f"{ips[0]}:8080,{ips[1]}:8080"
    listed = ok(kubectl("get", "endpointslices", "-n", ns))
    assert "ADDRESSTYPE" in listed and "IPv4" in listed, listed
    assert ["IPv4", "8080", f"{ips[0]},{ips[1]}"] in [line.split()[1:4] for line in
                                                     listed.splitlines()], listed  # fmt: skip
    [eps] = slices(kubectl, ns, "web")
    assert eps["metadata"]["name"].startswith("web-") and len(eps["metadata"]["name"]) == 9
    assert eps["metadata"]["labels"] == {
        SERVICE_LABEL: "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    owner = eps["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Service", "web", True)
    assert eps["addressType"] == "IPv4"
    assert eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    first = eps["endpoints"][0]
    pod = core.read_namespaced_pod(first["targetRef"]["name"], ns)
    assert first["addresses"] == [pod_ip(pod)] == [ips[0]]
    assert first["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert first["nodeName"] == node_name(pod)
    assert first["targetRef"] == {"kind": "Pod", "namespace": ns, "name": name_of(pod),
                                  "uid": meta(pod).uid}  # fmt: skip


def test_a_pod_not_ready_is_an_endpoint_not_ready(
    kubectl: Kubectl, core: client.CoreV1Api, ns: str
) -> None:
    core.create_namespaced_service(ns, model(client.V1Service, svc_body("web", {"app": "web"})))
    ready_ip = pod_ip(running_pod(core, ns, "w1", labels={"app": "web"}))
    running_pod(core, ns, "w2", labels={"app": "web"})
    core.patch_namespaced_pod_status("w2", ns, {"status": {"conditions": [
        {"type": "Ready", "status": "False"}]}})  # fmt: skip
    [eps] = slices(kubectl, ns, "web")
    conditions = {e["targetRef"]["name"]: e["conditions"] for e in eps["endpoints"]}
    assert conditions == {
        "w1": {"ready": True, "serving": True, "terminating": False},
        "w2": {"ready": False, "serving": False, "terminating": False},
    }
    assert described_endpoints(kubectl, ns, "web") == f"{ready_ip}:8080"


def test_slices_follow_the_service(kubectl: Kubectl, core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, model(client.V1Service, svc_body("web", {"app": "web"})))
    [placeholder] = slices(kubectl, ns, "web")
    assert (placeholder["endpoints"], placeholder["ports"]) == ([], [])
    listed = ok(kubectl("get", "endpointslices", "-n", ns))
    assert ["IPv4", "<unset>", "<unset>"] in [line.split()[1:4] for line in
                                             listed.splitlines()], listed  # fmt: skip
    running_pod(core, ns, "w1", labels={"app": "web"})
    [filled] = slices(kubectl, ns, "web")
    assert filled["metadata"]["name"] == placeholder["metadata"]["name"]
    assert len(filled["endpoints"]) == 1
    ok(kubectl("delete", "svc", "web", "-n", ns))
    wait_for(lambda: not slices(kubectl, ns, "web"), what="slices gone with the Service")
