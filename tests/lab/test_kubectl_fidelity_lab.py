"""The real kubectl against the lab API server: what a new user tries first works as on a real
cluster (what a cluster starts with, events, ReplicaSets, server-side apply, can-i,
port-forward's refusal, Pod Security admission)."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from netconform.cluster import ClusterClient
from netconform.errors import ForbiddenError
from netconform.rbac import check_permissions
from netconform.topology import Cluster, ClusterName, Namespace, Region, Timeouts
from tests.lab.apiserver_kit import Lab, expect_error, running_pod, wait_for

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
    assert not ep.get("subsets")
    assert "loopback" in ep["metadata"]["annotations"]["netconform.lab/note"]
    node = json.loads(ok(kubectl("get", "node", "east-node-1", "-o", "json")))
    assert node["spec"]["podCIDR"] == "10.101.2.0/24"
    assert node["spec"]["podCIDRs"] == ["10.101.2.0/24"]
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
    newer = ok(kubectl("events", "-n", ns, "--for", "pod/ev"))
    assert "Scheduled" in newer, newer
    ok(kubectl("delete", "pod", "ev", "-n", ns, "--wait=false"))

    def killing_listed() -> str:
        out = ok(kubectl("get", "ev", "-n", ns))
        return out if "Killing" in out else ""

    killing = wait_for(killing_listed)
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


def _deployment_yaml(name: str, replicas: int) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: nginx:1.25}}]}}
"""


def test_server_side_apply_is_idempotent_and_names_conflicts(
    kubectl: Kubectl, lab_api: Lab, ns: str
) -> None:
    def apply(replicas: int, manager: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return kubectl("apply", "--server-side", f"--field-manager={manager}", "-n", ns,
                       *extra, "-f", "-", stdin=_deployment_yaml("ssa", replicas))  # fmt: skip

    assert "deployment.apps/ssa serverside-applied" in ok(apply(2, "mgr-a"))
    version = ok(kubectl("get", "deploy", "ssa", "-n", ns, "-o",
                         "jsonpath={.metadata.resourceVersion}"))  # fmt: skip
    assert "serverside-applied" in ok(apply(2, "mgr-a"))
    assert version == ok(kubectl("get", "deploy", "ssa", "-n", ns, "-o",
                                 "jsonpath={.metadata.resourceVersion}"))  # fmt: skip
    clash = apply(3, "mgr-b")
    assert clash.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "mgr-a": .spec.replicas' in clash.stderr
    body = yaml.safe_load(_deployment_yaml("ssa", 3))
    status = expect_error(409, "Conflict", lambda: client.AppsV1Api(lab_api.api())
                          .patch_namespaced_deployment("ssa", ns, body, field_manager="mgr-b",
                          _content_type="application/apply-patch+yaml"))  # fmt: skip
    assert status["details"]["causes"] == [
        {
            "type": "FieldManagerConflict",
            "field": ".spec.replicas",
            "message": 'conflict with "mgr-a"',
        }
    ]
    assert "serverside-applied" in ok(apply(3, "mgr-b", "--force-conflicts"))
    got = json.loads(
        ok(kubectl("get", "deploy", "ssa", "-n", ns, "-o", "json", "--show-managed-fields"))
    )
    assert got["spec"]["replicas"] == 3
    owners = {e["manager"]: e["fieldsV1"] for e in got["metadata"]["managedFields"]}
    assert "f:replicas" in owners["mgr-b"]["f:spec"]
    assert "f:replicas" not in owners["mgr-a"]["f:spec"]
    ok(kubectl("scale", "deploy", "ssa", "-n", ns, "--replicas=5"))
    after_scale = apply(3, "mgr-b")
    assert "conflict with" in after_scale.stderr and ".spec.replicas" in after_scale.stderr


def test_deployments_run_replica_sets_with_history(kubectl: Kubectl, ns: str) -> None:
    ok(kubectl("apply", "-n", ns, "-f", "-", stdin=_deployment_yaml("web", 2)))
    ok(kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=10s"))
    sets = ok(kubectl("get", "rs", "-n", ns))
    first = json.loads(ok(kubectl("get", "rs", "-n", ns, "-o", "json")))["items"]
    assert len(first) == 1 and first[0]["metadata"]["ownerReferences"][0]["name"] == "web"
    assert first[0]["metadata"]["name"] in sets and "DESIRED" in sets
    everything = ok(kubectl("get", "all", "-n", ns))
    assert "deployment.apps/web" in everything and "replicaset.apps/web-" in everything
    assert everything.count("pod/web-") == 2
    ok(kubectl("set", "image", "deployment/web", "c=nginx:1.27", "-n", ns))
    ok(kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=bump", "-n", ns))
    ok(kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=10s"))
    history = ok(kubectl("rollout", "history", "deployment/web", "-n", ns))
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    rs = json.loads(ok(kubectl("get", "rs", "-n", ns, "-o", "json")))["items"]
    assert sorted(r["spec"]["replicas"] for r in rs) == [0, 2]
    ok(kubectl("rollout", "undo", "deployment/web", "-n", ns))
    image = "jsonpath={.spec.template.spec.containers[0].image}"
    assert ok(kubectl("get", "deploy", "web", "-n", ns, "-o", image)) == "nginx:1.25"
    described = ok(kubectl("describe", "deployment", "web", "-n", ns))
    assert "ScalingReplicaSet" in described and "Scaled up replica set web-" in described


RESTRICTED_POD = """apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: busybox:1.36
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
"""


def test_pod_security_admission_refuses_what_the_level_forbids(kubectl: Kubectl, ns: str) -> None:
    ok(kubectl("label", "ns", ns, "pod-security.kubernetes.io/enforce=restricted"))
    refused = kubectl("run", "priv", "-n", ns, "--image=busybox:1.36", "--privileged")
    assert refused.returncode == 1
    assert (
        'Error from server (Forbidden): pods "priv" is forbidden: violates PodSecurity '
        '"restricted:latest": allowPrivilegeEscalation != false (container "priv" must set '
        "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
        '"priv" must set securityContext.capabilities.drop=["ALL"]), privileged (container '
        '"priv" must not set securityContext.privileged=true), runAsNonRoot != true (pod or '
        'container "priv" must set securityContext.runAsNonRoot=true), seccompProfile (pod or '
        'container "priv" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")'
    ) in refused.stderr, refused.stderr
    assert "pod/ok created" in ok(kubectl("apply", "-n", ns, "-f", "-", stdin=RESTRICTED_POD))
    ok(kubectl("apply", "-n", ns, "-f", "-", stdin=_deployment_yaml("d", 1)))
    assert ok(kubectl("get", "pods", "-n", ns, "-l", "app=d", "-o", "name")) == ""
    failed = ok(kubectl("get", "events", "-n", ns, "--field-selector", "reason=FailedCreate"))
    assert 'Error creating: pods "d-' in failed and "violates PodSecurity" in failed, failed
    ok(kubectl("label", "ns", ns, "--overwrite", "pod-security.kubernetes.io/enforce=baseline",
               "pod-security.kubernetes.io/enforce-version=v1.32"))  # fmt: skip
    # baseline keeps the runtime's default capabilities (NET_RAW among them) but adds none
    raw = RESTRICTED_POD.replace("name: ok", "name: raw").replace("drop: [ALL]", "add: [CHOWN]")
    assert "pod/raw created" in ok(kubectl("apply", "-n", ns, "-f", "-", stdin=raw))
    host = kubectl("run", "host", "-n", ns, "--image=busybox:1.36",
                   "--overrides", '{"spec": {"hostNetwork": true}}')  # fmt: skip
    assert 'violates PodSecurity "baseline:v1.32": host namespaces (hostNetwork=true)' in (
        host.stderr
    )
    admin = raw.replace("name: raw", "name: admin").replace("CHOWN", "NET_ADMIN")
    denied = kubectl("apply", "-n", ns, "-f", "-", stdin=admin)
    assert 'non-default capabilities (container "c" must not include "NET_ADMIN" in ' in (
        denied.stderr
    )


def _suite_client(lab_api: Lab, context: str) -> ClusterClient:
    cluster = Cluster(ClusterName("east"), context, Region("east"), Namespace("apps"), ())
    return ClusterClient(cluster, lab_api.kubeconfig, Timeouts())


def test_rbac_preflight_asks_access_reviews(lab_api: Lab) -> None:
    check_permissions(_suite_client(lab_api, "lab-east"), "apps")
    with pytest.raises(ForbiddenError) as info:
        check_permissions(_suite_client(lab_api, "lab-east-viewer"), "apps")
    assert str(info.value) == (
        f"east (context lab-east-viewer, http://127.0.0.1:{lab_api.ports['east']}/...): "
        "RBAC does not allow create pods in namespace apps, which the suite needs (asked with "
        "a SelfSubjectAccessReview)"
    )


class _OldServer(http.server.BaseHTTPRequestHandler):
    """An API server from before SelfSubjectAccessReview: every POST is 404."""

    def do_POST(self) -> None:
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404}).encode()  # fmt: skip
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_rbac_preflight_is_skipped_where_access_reviews_do_not_exist(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OldServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "old",
                  "clusters": [{"name": "old", "cluster": {
                      "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
                  "users": [{"name": "old", "user": {}}],
                  "contexts": [{"name": "old",
                                "context": {"cluster": "old", "user": "old"}}]}  # fmt: skip
        path = tmp_path / "kubeconfig"
        path.write_text(json.dumps(config))
        cluster = Cluster(ClusterName("old"), "old", Region("old"), Namespace("apps"), ())
        check_permissions(ClusterClient(cluster, path, Timeouts()), "apps")  # no error
    finally:
        server.shutdown()
        thread.join(5)


def test_pod_security_warns_for_templates_and_the_warn_level(kubectl: Kubectl, ns: str) -> None:
    ok(kubectl("label", "ns", ns, "pod-security.kubernetes.io/enforce=baseline",
               "pod-security.kubernetes.io/warn=restricted"))  # fmt: skip
    created = kubectl("apply", "-n", ns, "-f", "-", stdin=_deployment_yaml("w", 1))
    assert created.returncode == 0, created.stderr
    assert 'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation' in (
        created.stderr
    )
    assert ok(kubectl("get", "pods", "-n", ns, "-l", "app=w", "-o", "name")).startswith("pod/w-")
