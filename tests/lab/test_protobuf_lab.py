"""kubectl's typed commands (protobuf bodies) and schema validation against the lab API server.

The real kubectl 1.37 over real HTTP: `kubectl create namespace|configmap|secret|deployment|
service` send `application/vnd.kubernetes.protobuf`; `kubectl apply` sends
`fieldValidation=Strict`, so a misspelled field is refused naming it, as a real server does.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from provisioning.lab.apiserver.protobuf import decode
from provisioning.lab.apiserver.protobuf_encode import encode
from tests.lab.apiserver_kit import Lab, deployment_body, owned_pods, wait_for
from tests.lab.fields import cluster_ip, need, svc_ports, svc_spec

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
PROTOBUF = "application/vnd.kubernetes.protobuf"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_create_namespace_configmap_and_generic_secret(
    kubectl: Kubectl, core: client.CoreV1Api, ns: str
) -> None:
    name = f"{ns}-central"
    assert f"namespace/{name} created" in ok(kubectl("create", "ns", name))
    assert need(core.read_namespace(name).status, "namespace status").phase == "Active"
    ok(kubectl("create", "configmap", "x", "--from-literal=a=b", "-n", ns))
    assert core.read_namespaced_config_map("x", ns).data == {"a": "b"}
    ok(kubectl("create", "secret", "generic", "s", "--from-literal=k=v", "-n", ns))
    secret = core.read_namespaced_secret("s", ns)
    assert secret.type == "Opaque" and base64.b64decode(need(secret.data, "data")["k"]) == b"v"
    got = json.loads(ok(kubectl("get", "cm", "x", "-n", ns, "-o", "json")))
    assert got["data"] == {"a": "b"} and got["metadata"]["namespace"] == ns
    ok(kubectl("delete", "ns", name))


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=central.example", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    return cert, key


def test_create_secret_tls(
    kubectl: Kubectl, core: client.CoreV1Api, ns: str, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    out = ok(kubectl("create", "secret", "tls", "web-tls", f"--cert={cert}", f"--key={key}",
                     "-n", ns))  # fmt: skip
    assert "secret/web-tls created" in out
    secret = core.read_namespaced_secret("web-tls", ns)
    assert secret.type == "kubernetes.io/tls"
    data = need(secret.data, "data")
    assert base64.b64decode(data["tls.crt"]) == cert.read_bytes()
    assert base64.b64decode(data["tls.key"]) == key.read_bytes()


def test_create_deployment_then_pods_then_expose(
    kubectl: Kubectl, core: client.CoreV1Api, ns: str
) -> None:
    ok(kubectl("create", "deployment", "nginx", "--image=nginx", "--replicas=2", "-n", ns))
    pods = wait_for(lambda: len(owned_pods(core, ns, "nginx")) == 2, what="2 nginx pods")
    assert pods
    ok(kubectl("expose", "deployment", "nginx", "--port=80", "-n", ns))
    svc = core.read_namespaced_service("nginx", ns)
    assert svc_spec(svc).selector == {"app": "nginx"} and svc_ports(svc)[0].port == 80
    ok(kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", "-n", ns))
    web = core.read_namespaced_service("web", ns)
    assert cluster_ip(web) and svc_ports(web)[0].target_port == 8080


def manifest(tmp_path: Path, obj: dict[str, Any]) -> str:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(obj))
    return str(path)


def misspelled() -> dict[str, Any]:
    body = deployment_body("typo", 1)
    spec = body["spec"]["template"]["spec"]
    spec["contianers"] = spec.pop("containers")
    return {"apiVersion": "apps/v1", "kind": "Deployment", **body}


def test_apply_refuses_a_misspelled_field_naming_it(
    kubectl: Kubectl, lab_api: Lab, ns: str, tmp_path: Path
) -> None:
    refused = kubectl("apply", "-n", ns, "-f", manifest(tmp_path, misspelled()))
    assert refused.returncode != 0
    assert "BadRequest" in refused.stderr, refused.stderr
    assert 'strict decoding error: unknown field "spec.template.spec.contianers"' in (
        refused.stderr
    )
    assert not client.AppsV1Api(lab_api.api()).list_namespaced_deployment(ns).items


def test_apply_refuses_a_missing_required_field_with_422(
    kubectl: Kubectl, ns: str, tmp_path: Path
) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nameless"},
           "spec": {"containers": [{"image": "busybox:1.36"}]}}  # fmt: skip
    refused = kubectl("apply", "-n", ns, "-f", manifest(tmp_path, pod))
    assert refused.returncode != 0
    assert 'Pod "nameless" is invalid: spec.containers[0].name: Required value' in (
        refused.stderr
    ), refused.stderr


def test_apply_warns_and_drops_an_unknown_field_when_asked_to_warn(
    kubectl: Kubectl, core: client.CoreV1Api, ns: str, tmp_path: Path
) -> None:
    cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w"},
          "data": {"a": "b"}, "dataa": {"c": "d"}}  # fmt: skip
    path = manifest(tmp_path, cm)
    warned = kubectl("apply", "-n", ns, "-f", path, "--validate=warn")
    assert 'Warning: unknown field "dataa"' in ok(warned) + warned.stderr, warned.stderr
    assert core.read_namespaced_config_map("w", ns).data == {"a": "b"}
    cm["metadata"]["name"] = "i"
    ignored = kubectl("apply", "-n", ns, "-f", manifest(tmp_path, cm), "--validate=false")
    assert "dataa" not in ok(ignored) + ignored.stderr


def raw_request(
    lab_api: Lab, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes, list[str]]:
    """(status, content type, body, Warning headers) of one plain HTTP request."""
    url = f"http://127.0.0.1:{lab_api.ports['east']}{path}"
    token = lab_api.server.specs["east"].secret
    headers = {"Authorization": f"Bearer {token}", **headers} if token else headers
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return (answer.status, answer.headers.get_content_type(), answer.read(),
                    answer.headers.get_all("Warning") or [])  # fmt: skip
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), err.read(), []


def test_answers_protobuf_to_a_client_that_accepts_only_protobuf(lab_api: Lab, ns: str) -> None:
    cm = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "pb"}, "data": {"k": "v"}}
    headers = {"Content-Type": PROTOBUF, "Accept": PROTOBUF}
    status, kind, body, _ = raw_request(
        lab_api, "POST", f"/api/v1/namespaces/{ns}/configmaps", encode(cm), headers
    )
    assert (status, kind) == (201, PROTOBUF)
    stored = decode(body)
    assert stored["data"] == {"k": "v"} and stored["metadata"]["namespace"] == ns
    status, kind, body, _ = raw_request(
        lab_api, "POST", f"/api/v1/namespaces/{ns}/configmaps", encode(cm), headers
    )
    assert (status, kind) == (409, PROTOBUF)
    assert decode(body)["reason"] == "AlreadyExists"


@pytest.mark.parametrize(
    ("mode", "status", "warnings"),
    [("Strict", 400, []), ("Warn", 201, ['299 - "unknown field \\"spec.selecter\\""']),
     ("Ignore", 201, [])],
)  # fmt: skip
def test_field_validation_modes(
    lab_api: Lab, ns: str, mode: str, status: int, warnings: list[str]
) -> None:
    svc = {"kind": "Service", "apiVersion": "v1", "metadata": {"name": f"v-{mode.lower()}"},
           "spec": {"selecter": {"app": "x"}, "ports": [{"port": 80}]}}  # fmt: skip
    got, _, body, warned = raw_request(
        lab_api, "POST", f"/api/v1/namespaces/{ns}/services?fieldValidation={mode}",
        json.dumps(svc).encode(), {"Content-Type": "application/json"},
    )  # fmt: skip
    assert (got, warned) == (status, warnings), body
    if status == 201:
        assert "selecter" not in json.loads(body)["spec"]


def test_a_wrong_type_is_refused_naming_the_field(lab_api: Lab, ns: str) -> None:
    deploy = {"kind": "Deployment", "apiVersion": "apps/v1", **deployment_body("t", 1)}
    deploy["spec"]["replicas"] = "three"
    got, _, body, _ = raw_request(
        lab_api, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments",
        json.dumps(deploy).encode(), {"Content-Type": "application/json"},
    )  # fmt: skip
    status = json.loads(body)
    assert got == 400 and "spec.replicas" in status["message"], status


def test_warn_mode_warns_with_the_422_too(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    warned = kubectl("apply", "-n", ns, "-f", manifest(tmp_path, misspelled()), "--validate=warn")
    assert warned.returncode != 0
    assert 'Warning: unknown field "spec.template.spec.contianers"' in warned.stderr
    assert "spec.template.spec.containers: Required value" in warned.stderr


def test_lists_and_stored_objects_encode_as_protobuf(
    kubectl: Kubectl, lab_api: Lab, ns: str
) -> None:
    ok(kubectl("create", "deployment", "listed", "--image=nginx", "--replicas=2", "-n", ns))
    ok(kubectl("expose", "deployment", "listed", "--port=80", "-n", ns))
    listed = [
        (f"/api/v1/namespaces/{ns}/pods", "PodList"),
        (f"/api/v1/namespaces/{ns}/services/listed", "Service"),
        (f"/api/v1/namespaces/{ns}/endpoints", "EndpointsList"),
        (f"/apis/apps/v1/namespaces/{ns}/deployments", "DeploymentList"),
        ("/api/v1/nodes", "NodeList"),
        ("/api/v1/namespaces", "NamespaceList"),
    ]
    for path, kind in listed:
        status, media, body, _ = raw_request(lab_api, "GET", path, b"", {"Accept": PROTOBUF})
        assert (status, media) == (200, PROTOBUF), (path, body[:200])
        assert decode(body)["kind"] == kind
    status, _, body, _ = raw_request(
        lab_api, "GET", f"/api/v1/namespaces/{ns}/pods?watch=true", b"", {"Accept": PROTOBUF}
    )
    assert status == 406 and json.loads(body)["reason"] == "NotAcceptable"
