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
    target,
    wait_for,
)
from tests.lab.fields import (
    cluster_ip,
    labels_of,
    meta,
    model,
    name_of,
    need,
    node_name,
    node_port,
    owner,
    pod_ip,
    pod_spec,
    svc_ports,
    svc_spec,
)


def service(core: client.CoreV1Api, ns: str, manifest: dict[str, object]) -> client.V1Service:
    return core.create_namespaced_service(ns, model(client.V1Service, manifest))


# -- services and endpoints --------------------------------------------------------------------


def test_service_ip_allocation(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    network = ipaddress.ip_network(SERVICE_CIDR)
    svc = service(core, ns, svc_body("a", {"app": "a"}))
    ip = ipaddress.ip_address(cluster_ip(svc))
    assert ip in network and ip not in (network.network_address, network.network_address + 1)
    assert svc_spec(svc).cluster_ips == [cluster_ip(svc)] and svc_spec(svc).type == "ClusterIP"
    assert svc_ports(svc)[0].protocol == "TCP" and svc_ports(svc)[0].target_port == "http"
    plain = service(core, ns, svc_body("plain", None, ports=[{"port": 53}]))
    assert svc_ports(plain)[0].target_port == 53
    headless = service(core, ns, svc_body("h", {"app": "a"}, clusterIP="None"))
    assert cluster_ip(headless) == "None"
    taken = model(client.V1Service, svc_body("dup", None, clusterIP=cluster_ip(svc)))
    expect_error(422, "Invalid", lambda: core.create_namespaced_service(ns, taken))
    outside = model(client.V1Service, svc_body("out", None, clusterIP="10.9.9.9"))
    expect_error(422, "Invalid", lambda: core.create_namespaced_service(ns, outside))
    by_node_port = service(core, ns, svc_body("np", None, type="NodePort"))
    assert 30000 <= node_port(by_node_port) <= 32767
    core.delete_namespaced_service("a", ns)
    again = service(core, ns, svc_body("reuse", None, clusterIP=str(ip)))
    assert cluster_ip(again) == str(ip)
    lab_api.run(lab_api.server.stores["east"].set_service_status(
        ns, "np", {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}))  # fmt: skip
    status = need(core.read_namespaced_service_status("np", ns).status, "service status")
    lb = need(need(status.load_balancer, "status.loadBalancer").ingress, "loadBalancer.ingress")
    assert lb[0].ip == "198.51.100.7"


def test_endpoints_follow_pods(core: client.CoreV1Api, ns: str) -> None:
    service(core, ns, svc_body("web", {"app": "web"}))
    running_pod(core, ns, "w1", labels={"app": "web"})
    running_pod(core, ns, "w2", labels={"app": "web"})
    core.create_namespaced_pod(
        ns, model(client.V1Pod, pod_body("w3", {"app": "web", PENDING: "1"}))
    )
    core.create_namespaced_pod(ns, model(client.V1Pod, pod_body("other", {"app": "other"})))
    want = {"ready": ["w1", "w2"], "not_ready": [], "ports": [("http", 8080)]}
    wait_for(lambda: endpoints(core, ns, "web") == want, what="endpoints")
    ep = core.read_namespaced_endpoints("web", ns)
    address = need(need(ep.subsets, "subsets")[0].addresses, "subsets[0].addresses")[0]
    pod = core.read_namespaced_pod(target(address), ns)
    assert (address.ip, address.node_name) == (pod_ip(pod), node_name(pod))
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
    service(core, ns, svc_body("ext", None, ports=[{"port": 5432}]))
    body = {"metadata": {"name": "ext"}, "subsets": [
        {"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]}  # fmt: skip
    core.create_namespaced_endpoints(ns, model(client.V1Endpoints, body))
    running_pod(core, ns, "unrelated")
    ep = core.read_namespaced_endpoints("ext", ns)
    assert need(need(ep.subsets, "subsets")[0].addresses, "addresses")[0].ip == "192.0.2.10"


# -- deployments -------------------------------------------------------------------------------


def test_deployment_converges_scales_and_cascades(
    lab_api: Lab, core: client.CoreV1Api, ns: str
) -> None:
    apps = client.AppsV1Api(lab_api.api())
    dep = apps.create_namespaced_deployment(
        ns, model(client.V1Deployment, deployment_body("api", 3))
    )
    assert meta(dep).generation == 1

    def status_of(name: str) -> client.V1DeploymentStatus:
        return need(apps.read_namespaced_deployment(name, ns).status, "deployment status")

    def ready() -> client.V1DeploymentStatus | None:
        status = status_of("api")
        return status if status.ready_replicas == 3 else None

    status = wait_for(ready, what="3 ready replicas")
    assert status.replicas == status.available_replicas == status.updated_replicas == 3
    assert status.observed_generation == 1
    pods = owned_pods(core, ns, "api")
    pod_hash = labels_of(pods[0])["pod-template-hash"]
    assert all(re.fullmatch(rf"api-{pod_hash}-[a-z0-9]{{5}}", name_of(p)) for p in pods)
    assert re.fullmatch(r"[0-9a-f]{10}", pod_hash)
    ref = owner(pods[0])
    assert (ref.kind, ref.name, ref.controller) == ("ReplicaSet", f"api-{pod_hash}", True)
    rs = apps.read_namespaced_replica_set(f"api-{pod_hash}", ns)
    rs_ref = owner(rs)
    assert (rs_ref.kind, rs_ref.name, rs_ref.uid) == ("Deployment", "api", meta(dep).uid)
    core.delete_namespaced_pod(name_of(pods[0]), ns)
    wait_for(lambda: len(owned_pods(core, ns, "api")) == 3, what="replacement pod")
    scaled = apps.patch_namespaced_deployment("api", ns, {"spec": {"replicas": 1}})
    assert meta(scaled).generation == 2
    assert len(owned_pods(core, ns, "api")) == 1
    wait_for(lambda: status_of("api").replicas == 1, what="1")
    apps.patch_namespaced_deployment(
        "api",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
    )  # fmt: skip (strategic merge keeps ports)
    new_pods = owned_pods(core, ns, "api")
    assert len(new_pods) == 1 and labels_of(new_pods[0])["pod-template-hash"] != pod_hash
    container = pod_spec(new_pods[0]).containers[0]
    assert container.image == "nginx:1.27"
    assert need(container.ports, "container ports")[0].container_port == 8080
    scale = apps.read_namespaced_deployment_scale("api", ns)
    scale_spec, scale_status = need(scale.spec, "scale spec"), need(scale.status, "scale status")
    assert scale_spec.replicas == 1 and scale_status.selector == "app=api"
    apps.patch_namespaced_deployment_scale("api", ns, {"spec": {"replicas": 2}})
    wait_for(lambda: len(owned_pods(core, ns, "api")) == 2, what="scale to 2")
    apps.delete_namespaced_deployment("api", ns)
    assert owned_pods(core, ns, "api") == []


def test_deployment_validation(lab_api: Lab, ns: str) -> None:
    apps = client.AppsV1Api(lab_api.api())
    bad = deployment_body("bad", 1)
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    body = expect_error(
        422,
        "Invalid",
        lambda: apps.create_namespaced_deployment(ns, model(client.V1Deployment, bad)),
    )
    assert "selector" in body["message"]


# -- config, secrets, networking ---------------------------------------------------------------


def test_configmap_and_secret_round_trip(core: client.CoreV1Api, ns: str) -> None:
    cfg = {"metadata": {"name": "cfg"}, "data": {"a": "1"}}
    cm = core.create_namespaced_config_map(ns, model(client.V1ConfigMap, cfg))
    need(cm.data, "data")["b"] = "2"
    assert core.replace_namespaced_config_map("cfg", ns, cm).data == {"a": "1", "b": "2"}
    patched = core.patch_namespaced_config_map("cfg", ns, {"data": {"a": None, "c": "3"}})
    assert patched.data == {"b": "2", "c": "3"}
    core.delete_namespaced_config_map("cfg", ns)
    assert core.list_namespaced_config_map(ns).items == []
    secret = core.create_namespaced_secret(
        ns,
        model(client.V1Secret, {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}),
    )
    password = need(secret.data, "data")["password"]
    assert secret.type == "Opaque" and base64.b64decode(password) == b"hunter2"


def test_ingress_and_network_policy_round_trip(lab_api: Lab, ns: str) -> None:
    net = client.NetworkingV1Api(lab_api.api())
    net.create_ingress_class(model(client.V1IngressClass, {
        "metadata": {"name": f"lab-{ns}"}, "spec": {"controller": "lab/ingress"}}))  # fmt: skip
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    rule = {"host": "web.example", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": backend}]}}  # fmt: skip
    ing = net.create_namespaced_ingress(ns, model(client.V1Ingress, {"metadata": {"name": "web"},
        "spec": {"ingressClassName": f"lab-{ns}", "rules": [rule]}}))  # fmt: skip
    http = need(need(need(ing.spec, "ingress spec").rules, "rules")[0].http, "rules[0].http")
    port = need(need(http.paths[0].backend.service, "backend.service").port, "service.port")
    assert port.number == 80
    assert [name_of(i) for i in net.list_ingress_for_all_namespaces().items] == ["web"]
    policy = {"metadata": {"name": "deny"}, "spec": {"podSelector": {"matchLabels": {"a": "b"}},
                                                      "egress": [{}]}}  # fmt: skip
    created = net.create_namespaced_network_policy(ns, model(client.V1NetworkPolicy, policy))
    assert need(created.spec, "policy spec").policy_types == ["Ingress", "Egress"]
    read = net.read_namespaced_network_policy("deny", ns)
    selector = need(need(read.spec, "policy spec").pod_selector, "spec.podSelector")
    assert selector.match_labels == {"a": "b"}
    net.delete_namespaced_network_policy("deny", ns)
    net.delete_namespaced_ingress("web", ns)
    net.delete_ingress_class(f"lab-{ns}")
    assert net.list_namespaced_network_policy(ns).items == []


def test_every_kind_lists_through_the_client(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    """Every stored object must pass the client's pydantic models."""
    apps, net = client.AppsV1Api(lab_api.api()), client.NetworkingV1Api(lab_api.api())
    apps.create_namespaced_deployment(ns, model(client.V1Deployment, deployment_body("all", 1)))
    service(core, ns, svc_body("all", {"app": "all"}, type="LoadBalancer"))
    wait_for(lambda: endpoints(core, ns, "all").get("ready"), what="endpoints")
    for call in (core.list_pod_for_all_namespaces, core.list_service_for_all_namespaces,
                 core.list_endpoints_for_all_namespaces, core.list_namespace, core.list_node,
                 core.list_secret_for_all_namespaces, core.list_config_map_for_all_namespaces,
                 apps.list_deployment_for_all_namespaces, net.list_ingress_class,
                 net.list_network_policy_for_all_namespaces):  # fmt: skip
        assert call().items is not None
