"""The lab's in-memory Kubernetes API: services and endpoints, deployments, config and
networking objects."""

from __future__ import annotations

import base64
import ipaddress
import re

from kubernetes import client

from tests.lab.apiserver_kit import (
    PENDING,
    SERVICE_CIDR,
    Lab,
    deployment_body,
    endpoints,
    expect_error,
    owned_pods,
    pod_body,
    running_pod,
    svc_body,
    wait_for,
)

# -- services and endpoints --------------------------------------------------------------------


def test_service_ip_allocation(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    network = ipaddress.ip_network(SERVICE_CIDR)
    svc = core.create_namespaced_service(ns, svc_body("a", {"app": "a"}))
    ip = ipaddress.ip_address(svc.spec.cluster_ip)
    assert ip in network and ip not in (network.network_address, network.network_address + 1)
    assert svc.spec.cluster_ips == [svc.spec.cluster_ip] and svc.spec.type == "ClusterIP"
    assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].target_port == "http"
    plain = core.create_namespaced_service(ns, svc_body("plain", None, ports=[{"port": 53}]))
    assert plain.spec.ports[0].target_port == 53
    headless = core.create_namespaced_service(ns, svc_body("h", {"app": "a"}, clusterIP="None"))
    assert headless.spec.cluster_ip == "None"
    taken = svc_body("dup", None, clusterIP=svc.spec.cluster_ip)
    expect_error(422, "Invalid", lambda: core.create_namespaced_service(ns, taken))
    outside = svc_body("out", None, clusterIP="10.9.9.9")
    expect_error(422, "Invalid", lambda: core.create_namespaced_service(ns, outside))
    node_port = core.create_namespaced_service(ns, svc_body("np", None, type="NodePort"))
    assert 30000 <= node_port.spec.ports[0].node_port <= 32767
    core.delete_namespaced_service("a", ns)
    again = core.create_namespaced_service(ns, svc_body("reuse", None, clusterIP=str(ip)))
    assert again.spec.cluster_ip == str(ip)
    lab_api.run(lab_api.server.stores["east"].set_service_status(
        ns, "np", {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}))  # fmt: skip
    lb = core.read_namespaced_service_status("np", ns).status.load_balancer.ingress
    assert lb[0].ip == "198.51.100.7"


def test_endpoints_follow_pods(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, svc_body("web", {"app": "web"}))
    running_pod(core, ns, "w1", labels={"app": "web"})
    running_pod(core, ns, "w2", labels={"app": "web"})
    core.create_namespaced_pod(ns, pod_body("w3", {"app": "web", PENDING: "1"}))
    core.create_namespaced_pod(ns, pod_body("other", {"app": "other"}))
    want = {"ready": ["w1", "w2"], "not_ready": [], "ports": [("http", 8080)]}
    wait_for(lambda: endpoints(core, ns, "web") == want, what="endpoints")
    ep = core.read_namespaced_endpoints("web", ns)
    address = ep.subsets[0].addresses[0]
    pod = core.read_namespaced_pod(address.target_ref.name, ns)
    assert (address.ip, address.node_name) == (pod.status.pod_ip, pod.spec.node_name)
    core.patch_namespaced_pod_status("w1", ns, {"status": {"conditions": [
        {"type": "Ready", "status": "False"}]}})  # fmt: skip
    want = {"ready": ["w2"], "not_ready": ["w1"], "ports": [("http", 8080)]}
    wait_for(lambda: endpoints(core, ns, "web") == want, what="w1 not ready")
    core.delete_namespaced_pod("w2", ns)
    want = {"ready": [], "not_ready": ["w1"], "ports": [("http", 8080)]}
    assert endpoints(core, ns, "web") == want
    core.delete_namespaced_service("web", ns)
    assert endpoints(core, ns, "web") == {}


def test_selectorless_service_keeps_user_endpoints(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_service(ns, svc_body("ext", None, ports=[{"port": 5432}]))
    body = {"metadata": {"name": "ext"}, "subsets": [
        {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]}  # fmt: skip
    core.create_namespaced_endpoints(ns, body)
    running_pod(core, ns, "unrelated")
    ep = core.read_namespaced_endpoints("ext", ns)
    assert ep.subsets[0].addresses[0].ip == "192.0.2.10"


# -- deployments -------------------------------------------------------------------------------


def test_deployment_converges_scales_and_cascades(
    lab_api: Lab, core: client.CoreV1Api, ns: str
) -> None:
    apps = client.AppsV1Api(lab_api.api())
    dep = apps.create_namespaced_deployment(ns, deployment_body("api", 3))
    assert dep.metadata.generation == 1
    status = wait_for(lambda: (s := apps.read_namespaced_deployment("api", ns).status)
                      .ready_replicas == 3 and s, what="3 ready replicas")  # fmt: skip
    assert status.replicas == status.available_replicas == status.updated_replicas == 3
    assert status.observed_generation == 1
    pods = owned_pods(core, ns, "api")
    pod_hash = pods[0].metadata.labels["pod-template-hash"]
    assert all(re.fullmatch(rf"api-{pod_hash}-[a-z0-9]{{5}}", p.metadata.name) for p in pods)
    assert re.fullmatch(r"[0-9a-f]{10}", pod_hash)
    ref = pods[0].metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.controller) == ("ReplicaSet", f"api-{pod_hash}", True)
    rs = apps.read_namespaced_replica_set(f"api-{pod_hash}", ns)
    rs_ref = rs.metadata.owner_references[0]
    assert (rs_ref.kind, rs_ref.name, rs_ref.uid) == ("Deployment", "api", dep.metadata.uid)
    core.delete_namespaced_pod(pods[0].metadata.name, ns)
    wait_for(lambda: len(owned_pods(core, ns, "api")) == 3, what="replacement pod")
    scaled = apps.patch_namespaced_deployment("api", ns, {"spec": {"replicas": 1}})
    assert scaled.metadata.generation == 2
    assert len(owned_pods(core, ns, "api")) == 1
    wait_for(lambda: apps.read_namespaced_deployment("api", ns).status.replicas == 1, what="1")
    apps.patch_namespaced_deployment(
        "api",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
    )  # fmt: skip (strategic merge keeps ports)
    new_pods = owned_pods(core, ns, "api")
    assert len(new_pods) == 1 and new_pods[0].metadata.labels["pod-template-hash"] != pod_hash
    assert new_pods[0].spec.containers[0].image == "nginx:1.27"
    assert new_pods[0].spec.containers[0].ports[0].container_port == 8080
    scale = apps.read_namespaced_deployment_scale("api", ns)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=api"
    apps.patch_namespaced_deployment_scale("api", ns, {"spec": {"replicas": 2}})
    wait_for(lambda: len(owned_pods(core, ns, "api")) == 2, what="scale to 2")
    apps.delete_namespaced_deployment("api", ns)
    assert owned_pods(core, ns, "api") == []


def test_deployment_validation(lab_api: Lab, ns: str) -> None:
    apps = client.AppsV1Api(lab_api.api())
    bad = deployment_body("bad", 1)
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    body = expect_error(422, "Invalid", lambda: apps.create_namespaced_deployment(ns, bad))
    assert "selector" in body["message"]


# -- config, secrets, networking ---------------------------------------------------------------


def test_configmap_and_secret_round_trip(core: client.CoreV1Api, ns: str) -> None:
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    cm.data["b"] = "2"
    assert core.replace_namespaced_config_map("cfg", ns, cm).data == {"a": "1", "b": "2"}
    patched = core.patch_namespaced_config_map("cfg", ns, {"data": {"a": None, "c": "3"}})
    assert patched.data == {"b": "2", "c": "3"}
    core.delete_namespaced_config_map("cfg", ns)
    assert core.list_namespaced_config_map(ns).items == []
    secret = core.create_namespaced_secret(
        ns, {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}
    )
    assert secret.type == "Opaque" and base64.b64decode(secret.data["password"]) == b"hunter2"


def test_ingress_and_network_policy_round_trip(lab_api: Lab, ns: str) -> None:
    net = client.NetworkingV1Api(lab_api.api())
    net.create_ingress_class({"metadata": {"name": f"lab-{ns}"},
                              "spec": {"controller": "lab/ingress"}})  # fmt: skip
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    rule = {"host": "web.example", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend}]}}  # fmt: skip
    ing = net.create_namespaced_ingress(ns, {"metadata": {"name": "web"}, "spec": {
        "ingressClassName": f"lab-{ns}", "rules": [rule]}})  # fmt: skip
    assert ing.spec.rules[0].http.paths[0].backend.service.port.number == 80
    assert [i.metadata.name for i in net.list_ingress_for_all_namespaces().items] == ["web"]
    policy = {"metadata": {"name": "deny"}, "spec": {"podSelector": {"matchLabels": {"a": "b"}},
                                                      "egress": [{}]}}  # fmt: skip
    created = net.create_namespaced_network_policy(ns, policy)
    assert created.spec.policy_types == ["Ingress", "Egress"]
    read = net.read_namespaced_network_policy("deny", ns)
    assert read.spec.pod_selector.match_labels == {"a": "b"}
    net.delete_namespaced_network_policy("deny", ns)
    net.delete_namespaced_ingress("web", ns)
    net.delete_ingress_class(f"lab-{ns}")
    assert net.list_namespaced_network_policy(ns).items == []


def test_every_kind_lists_through_the_client(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    """Every stored object must pass the client's pydantic models."""
    apps, net = client.AppsV1Api(lab_api.api()), client.NetworkingV1Api(lab_api.api())
    apps.create_namespaced_deployment(ns, deployment_body("all", 1))
    core.create_namespaced_service(ns, svc_body("all", {"app": "all"}, type="LoadBalancer"))
    wait_for(lambda: endpoints(core, ns, "all").get("ready"), what="endpoints")
    for call in (core.list_pod_for_all_namespaces, core.list_service_for_all_namespaces,
                 core.list_endpoints_for_all_namespaces, core.list_namespace, core.list_node,
                 core.list_secret_for_all_namespaces, core.list_config_map_for_all_namespaces,
                 apps.list_deployment_for_all_namespaces, net.list_ingress_class,
                 net.list_network_policy_for_all_namespaces):  # fmt: skip
        assert call().items is not None
