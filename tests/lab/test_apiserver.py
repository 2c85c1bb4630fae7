"""The lab's in-memory Kubernetes API, driven through the official client and kubectl."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from provisioning.lab.apiserver import (
    ClusterSpec,
    Event,
    LabApiServer,
    NodeSpec,
    apply_patch,
    parse_label_selector,
    selector_matches,
    write_kubeconfig,
)
from tests.tools import kubectl_binary

T = TypeVar("T")
SERVICE_CIDR = "10.201.0.0/16"
WEST_CIDR = "10.202.0.0/16"
PENDING = "lab-test/pending"  # label: the fake runtime leaves such pods Pending
NODES = (
    NodeSpec("east-node-0", "10.101.0.10", {"topology.kubernetes.io/region": "east"}),
    NodeSpec("east-node-1", "10.101.0.11", {"topology.kubernetes.io/region": "east"}),
)
WEST_NODES = (NodeSpec("west-node-0", "10.102.0.10", {"topology.kubernetes.io/region": "west"}),)


# -- the lab under test ------------------------------------------------------------------------


@dataclass
class FakeRuntime:
    """Subscriber standing in for the lab runtime: marks new pods Running with a fake IP."""

    server: LabApiServer | None = None
    events: list[tuple[str, Event]] = field(default_factory=list)
    execs: list[tuple[str, str, str, str, list[str]]] = field(default_factory=list)
    counter: int = 0

    async def on_event(self, cluster: str, event: Event) -> None:
        self.events.append((cluster, event))
        labels = event.obj["metadata"].get("labels") or {}
        if event.kind != "Pod" or event.type != "ADDED" or PENDING in labels:
            return
        assert self.server is not None
        self.counter += 1
        ip = str(ipaddress.ip_address("10.244.0.0") + self.counter)
        containers = event.obj["spec"]["containers"]
        status = {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": c["name"], "ready": True, "state": {"running": {}}}
                                  for c in containers],
        }  # fmt: skip
        meta = event.obj["metadata"]
        await self.server.stores[cluster].update_pod_status(meta["namespace"], meta["name"], status)

    async def exec_handler(
        self, cluster: str, namespace: str, pod: str, container: str, argv: list[str]
    ) -> asyncio.subprocess.Process:
        self.execs.append((cluster, namespace, pod, container, argv))
        pipe = asyncio.subprocess.PIPE
        return await asyncio.create_subprocess_exec(*argv, stdin=pipe, stdout=pipe, stderr=pipe)

    async def log_handler(self, cluster: str, namespace: str, pod: str, container: str) -> str:
        return f"first {cluster}/{namespace}/{pod}/{container}\nsecond\nthird\n"


@dataclass
class Lab:
    server: LabApiServer
    runtime: FakeRuntime
    loop: asyncio.AbstractEventLoop
    kubeconfig: Path
    ports: dict[str, int]

    def api(self, context: str = "lab-east") -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig), context=context)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)


@pytest.fixture(scope="module")
def lab_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="lab-apiserver", daemon=True)
    thread.start()
    runtime = FakeRuntime()
    clusters = [
        ClusterSpec("east", 0, NODES, SERVICE_CIDR, namespaces=("apps",)),
        ClusterSpec("west", 0, WEST_NODES, WEST_CIDR, viewer_token="west-viewer"),
    ]
    server = LabApiServer(clusters, runtime.exec_handler, runtime.log_handler)
    runtime.server = server
    server.subscribe(runtime.on_event)
    ports = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    kubeconfig = server.write_kubeconfig(tmp_path_factory.mktemp("lab") / "kubeconfig")
    yield Lab(server, runtime, loop, kubeconfig, ports)
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture(scope="module")
def core(lab_api: Lab) -> client.CoreV1Api:
    return client.CoreV1Api(lab_api.api())


@pytest.fixture
def ns(lab_api: Lab, core: client.CoreV1Api) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        assert exc.status == 404


def wait_for(check: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last value {value!r})")
        time.sleep(0.01)


def pod_body(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox:1.36",
                 "ports": [{"name": "http", "containerPort": 8080}]}  # fmt: skip
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [container], **spec}}  # fmt: skip


def running_pod(core: client.CoreV1Api, ns: str, name: str, **kw: Any) -> client.V1Pod:
    core.create_namespaced_pod(ns, pod_body(name, **kw))
    return wait_for(
        lambda: (p := core.read_namespaced_pod(name, ns)).status.phase == "Running" and p,
        what=f"pod {name} running",
    )


def status_body(exc: ApiException) -> dict[str, Any]:
    body = yaml.safe_load(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return dict(body)


def expect_error(status: int, reason: str, call: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status == status, info.value.body
    body = status_body(info.value)
    assert body["reason"] == reason, body
    return body


# -- discovery, nodes, kubeconfig --------------------------------------------------------------


def test_version_and_discovery(lab_api: Lab, core: client.CoreV1Api) -> None:
    api = lab_api.api()
    assert client.VersionApi(api).get_code().major == "1"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert groups == {"apps", "networking.k8s.io"}
    pods = next(r for r in core.get_api_resources().resources if r.name == "pods")
    assert pods.short_names == ["po"] and pods.namespaced and pods.kind == "Pod"
    names = {r.name for r in client.NetworkingV1Api(api).get_api_resources().resources}
    assert {"ingresses", "ingressclasses", "networkpolicies"} <= names


def test_nodes_come_from_the_cluster_spec(core: client.CoreV1Api) -> None:
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == ["east-node-0", "east-node-1"]
    node = nodes[1]
    assert node.metadata.labels["topology.kubernetes.io/region"] == "east"
    assert {(a.type, a.address) for a in node.status.addresses} >= {("InternalIP", "10.101.0.11")}
    assert [(c.type, c.status) for c in node.status.conditions] == [("Ready", "True")]
    expect_error(405, "MethodNotAllowed", lambda: core.delete_node("east-node-0"))


def test_start_announces_nodes_and_namespaces(lab_api: Lab) -> None:
    for store in lab_api.server.stores.values():
        lab_api.run(store.wait_idle())
    added = {(c, e.kind, e.obj["metadata"]["name"]) for c, e in lab_api.runtime.events
             if e.type == "ADDED"}  # fmt: skip
    assert {
        ("east", "Node", "east-node-0"),
        ("west", "Node", "west-node-0"),
        ("east", "Namespace", "apps"),
        ("west", "Namespace", "kube-system"),
    } <= added


def test_kubeconfig_has_admin_and_viewer_contexts(lab_api: Lab, tmp_path: Path) -> None:
    doc = yaml.safe_load(lab_api.kubeconfig.read_text())
    assert doc["current-context"] == "lab-east"
    contexts = {c["name"] for c in doc["contexts"]}
    assert contexts == {"lab-east", "lab-east-viewer", "lab-west", "lab-west-viewer"}
    servers = {c["name"]: c["cluster"]["server"] for c in doc["clusters"]}
    assert servers["lab-west"] == f"http://127.0.0.1:{lab_api.ports['west']}"
    plain = yaml.safe_load(write_kubeconfig(tmp_path / "k", {"a": 1, "b": 2}, "x-").read_text())
    assert plain["current-context"] == "x-a"


def test_clusters_are_separate(lab_api: Lab) -> None:
    west = client.CoreV1Api(lab_api.api("lab-west"))
    assert [n.metadata.name for n in west.list_node().items] == ["west-node-0"]
    svc = west.create_namespaced_service(
        "default", {"metadata": {"name": "only-west"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert ipaddress.ip_address(svc.spec.cluster_ip) in ipaddress.ip_network(WEST_CIDR)
    east = client.CoreV1Api(lab_api.api())
    expect_error(404, "NotFound", lambda: east.read_namespaced_service("only-west", "default"))
    west.delete_namespaced_service("only-west", "default")


# -- pods --------------------------------------------------------------------------------------


def test_pod_create_get_list_replace_patch_delete(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_pod(ns, pod_body("web", {"app": "web", "tier": "front"}))
    meta = created.metadata
    assert meta.uid and meta.resource_version and meta.creation_timestamp
    assert created.status.phase == "Pending" and created.spec.node_name.startswith("east-node-")
    assert created.status.host_ip in ("10.101.0.10", "10.101.0.11")
    pod = running_pod(core, ns, "db", labels={"app": "db"})
    assert pod.status.pod_ip and pod.status.container_statuses[0].ready
    listed = core.list_namespaced_pod(ns)
    assert [p.metadata.name for p in listed.items] == ["db", "web"]
    assert int(listed.metadata.resource_version) >= int(pod.metadata.resource_version)
    current = core.read_namespaced_pod("web", ns)
    current.metadata.labels["tier"] = "back"
    replaced = core.replace_namespaced_pod("web", ns, current)
    assert replaced.metadata.labels["tier"] == "back"
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)
    body = expect_error(409, "Conflict", lambda: core.replace_namespaced_pod("web", ns, current))
    assert "the object has been modified" in body["message"]
    patched = core.patch_namespaced_pod("web", ns, {"metadata": {"labels": {"extra": "1"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "back", "extra": "1"}
    deleted = core.delete_namespaced_pod("web", ns)
    assert deleted.metadata.name == "web"
    expect_error(404, "NotFound", lambda: core.read_namespaced_pod("web", ns))


def test_label_and_field_selectors(core: client.CoreV1Api, ns: str) -> None:
    for name, labels in (("a", {"app": "x", "env": "prod"}), ("b", {"app": "y", "env": "dev"}),
                         ("c", {"app": "z", PENDING: "1"})):  # fmt: skip
        core.create_namespaced_pod(ns, pod_body(name, labels, nodeName="east-node-1"))

    def names(**kw: str) -> list[str]:
        return [p.metadata.name for p in core.list_namespaced_pod(ns, **kw).items]

    assert names(label_selector="app=x") == ["a"]
    assert names(label_selector="app==y") == ["b"]
    assert names(label_selector="app!=x") == ["b", "c"]
    assert names(label_selector="app in (x, z)") == ["a", "c"]
    assert names(label_selector="app notin (x,z)") == ["b"]
    assert names(label_selector="env") == ["a", "b"]
    assert names(label_selector="!env") == ["c"]
    assert names(label_selector="app in (x,y),env=dev") == ["b"]
    assert names(field_selector="metadata.name=c") == ["c"]
    wait_for(lambda: names(field_selector="status.phase=Running") == ["a", "b"], what="running")
    assert names(field_selector="status.phase!=Running") == ["c"]
    assert names(field_selector="spec.nodeName=east-node-1,metadata.name!=a") == ["b", "c"]
    everywhere = core.list_pod_for_all_namespaces(label_selector="app=y")
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [(ns, "b")]
    expect_error(400, "BadRequest", lambda: core.list_namespaced_pod(ns, label_selector="a in b"))


def test_scheduler_spreads_and_respects_node_name(core: client.CoreV1Api, ns: str) -> None:
    load = {"east-node-0": 0, "east-node-1": 0}
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.status.phase not in ("Succeeded", "Failed"):
            load[pod.spec.node_name] += 1
    pinned = core.create_namespaced_pod(ns, pod_body("pinned", nodeName="east-node-1"))
    assert pinned.spec.node_name == "east-node-1"
    load["east-node-1"] += 1
    for i in range(4):
        expected = min(load, key=lambda n: (load[n], n))
        assert core.create_namespaced_pod(ns, pod_body(f"p{i}")).spec.node_name == expected
        load[expected] += 1
    body = expect_error(
        422, "Invalid", lambda: core.create_namespaced_pod(ns, pod_body("x", nodeName="nope"))
    )
    assert body["details"]["causes"][0]["field"] == "spec.nodeName"


def test_dry_run_changes_nothing(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    seen = len(lab_api.runtime.events)
    svc = core.create_namespaced_service(ns, svc_body("dry", None, type="NodePort"),
                                         dry_run="All")  # fmt: skip
    assert svc.spec.cluster_ip and svc.spec.ports[0].node_port
    expect_error(404, "NotFound", lambda: core.read_namespaced_service("dry", ns))
    real = core.create_namespaced_service(ns, svc_body("real", None, type="NodePort"))
    assert (real.spec.cluster_ip, real.spec.ports[0].node_port) == (
        svc.spec.cluster_ip,
        svc.spec.ports[0].node_port,
    )  # the dry run reserved nothing
    core.delete_namespaced_service("real", ns, dry_run="All")
    assert core.read_namespaced_service("real", ns).metadata.uid == real.metadata.uid
    lab_api.run(lab_api.server.stores["east"].wait_idle())
    assert [e.obj["metadata"]["name"] for _, e in lab_api.runtime.events[seen:]
            if e.kind == "Service"] == ["real"]  # fmt: skip


def test_generate_name(core: client.CoreV1Api, ns: str) -> None:
    body = pod_body("")
    body["metadata"] = {"generateName": "worker-"}
    first, second = (core.create_namespaced_pod(ns, body).metadata.name for _ in range(2))
    assert re.fullmatch(r"worker-[a-z0-9]{5}", first) and first != second


def test_validation_errors(core: client.CoreV1Api, ns: str) -> None:
    no_containers = {"metadata": {"name": "empty"}, "spec": {"containers": []}}
    body = expect_error(422, "Invalid", lambda: core.create_namespaced_pod(ns, no_containers))
    assert body["details"]["causes"][0]["field"] == "spec.containers"
    assert body["details"]["kind"] == "Pod" and body["details"]["name"] == "empty"
    nameless = {"metadata": {}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    body = expect_error(422, "Invalid", lambda: core.create_namespaced_pod(ns, nameless))
    assert "metadata.name" in body["message"]
    bad_name = pod_body("Not_Valid")
    expect_error(422, "Invalid", lambda: core.create_namespaced_pod(ns, bad_name))


def test_not_found_and_already_exists(core: client.CoreV1Api, ns: str) -> None:
    body = expect_error(404, "NotFound", lambda: core.read_namespaced_pod("ghost", ns))
    assert body["message"] == 'pods "ghost" not found' and body["details"]["name"] == "ghost"
    body = expect_error(
        404, "NotFound", lambda: core.create_namespaced_pod("no-such-ns", pod_body("p"))
    )
    assert body["message"] == 'namespaces "no-such-ns" not found'
    core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
    expect_error(
        409,
        "AlreadyExists",
        lambda: core.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}}),
    )
    apps = client.AppsV1Api(core.api_client)
    body = expect_error(404, "NotFound", lambda: apps.read_namespaced_deployment("nope", ns))
    assert body["message"] == 'deployments.apps "nope" not found'


def test_viewer_token_is_read_only(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "target")
    viewer = client.CoreV1Api(lab_api.api("lab-east-viewer"))
    assert [p.metadata.name for p in viewer.list_namespaced_pod(ns).items] == ["target"]
    assert viewer.read_namespaced_pod("target", ns).metadata.name == "target"
    config_map = {"metadata": {"name": "x"}}
    body = expect_error(
        403, "Forbidden", lambda: viewer.create_namespaced_config_map(ns, config_map)
    )
    assert 'cannot create resource "configmaps"' in body["message"]
    expect_error(403, "Forbidden", lambda: viewer.delete_namespaced_pod("target", ns))
    expect_error(
        403, "Forbidden", lambda: viewer.patch_namespaced_pod("target", ns, {"metadata": {}})
    )
    with pytest.raises(ApiException) as info:
        stream(viewer.connect_get_namespaced_pod_exec, "target", ns, command=["true"],
               stdout=True, stderr=True, stdin=False, tty=False)  # fmt: skip
    assert "403" in str(info.value.reason)
    token_only = client.Configuration(host=f"http://127.0.0.1:{lab_api.ports['east']}",
                                      api_key={"authorization": "Bearer viewer"})  # fmt: skip
    by_token = client.CoreV1Api(client.ApiClient(token_only))
    assert by_token.read_namespaced_pod("target", ns).metadata.name == "target"
    expect_error(403, "Forbidden", lambda: by_token.delete_namespaced_pod("target", ns))
    west_viewer = client.CoreV1Api(lab_api.api("lab-west-viewer"))
    expect_error(
        403, "Forbidden", lambda: west_viewer.create_namespace({"metadata": {"name": "nope"}})
    )


def test_pod_status_subresource_and_store_api(
    lab_api: Lab, core: client.CoreV1Api, ns: str
) -> None:
    running_pod(core, ns, "p")
    patch = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    patched = core.patch_namespaced_pod_status("p", ns, patch)
    conditions = {c.type: c.status for c in patched.status.conditions}
    assert conditions == {"PodScheduled": "True", "Ready": "False"}
    store = lab_api.server.stores["east"]
    pod = store.get("Pod", ns, "p")
    assert pod is not None and pod["status"]["phase"] == "Running"
    assert [p["metadata"]["name"] for p in store.list("Pod", ns, "missing!=x")] == ["p"]
    lab_api.run(store.update_pod_status(ns, "p", {"phase": "Failed"}))
    assert core.read_namespaced_pod("p", ns).status.phase == "Failed"


# -- services and endpoints --------------------------------------------------------------------


def svc_body(name: str, selector: dict[str, str] | None, **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"name": "http", "port": 80, "targetPort": "http"}])
    return {"metadata": {"name": name}, "spec": {"selector": selector, "ports": ports, **spec}}


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


def endpoints(core: client.CoreV1Api, ns: str, name: str) -> dict[str, Any]:
    try:
        ep = core.read_namespaced_endpoints(name, ns)
    except ApiException:
        return {}
    subsets = ep.subsets or []
    return {
        "ready": sorted(a.target_ref.name for s in subsets for a in s.addresses or []),
        "not_ready": sorted(
            a.target_ref.name for s in subsets for a in s.not_ready_addresses or []
        ),
        "ports": sorted((p.name, p.port) for s in subsets for p in s.ports or []),
    }


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


def deployment_body(name: str, replicas: int, image: str = "nginx:1.25") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": image, "ports": [
                             {"name": "http", "containerPort": 8080}]}]}},
        },
    }  # fmt: skip


def owned_pods(core: client.CoreV1Api, ns: str, app: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(ns, label_selector=f"app={app}").items)


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
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Deployment", "api", dep.metadata.uid,
                                                             True)  # fmt: skip
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


# -- namespaces, events, watch -----------------------------------------------------------------


def test_namespace_delete_cascades(lab_api: Lab, core: client.CoreV1Api) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    apps = client.AppsV1Api(lab_api.api())
    apps.create_namespaced_deployment(name, deployment_body("d", 2))
    core.create_namespaced_service(name, svc_body("s", {"app": "d"}))
    core.create_namespaced_config_map(name, {"metadata": {"name": "c"}})
    wait_for(lambda: endpoints(core, name, "s").get("ready"), what="endpoints")
    seen = len(lab_api.runtime.events)
    core.delete_namespace(name)
    expect_error(404, "NotFound", lambda: core.read_namespace(name))
    for lister in (core.list_namespaced_pod, core.list_namespaced_service,
                   core.list_namespaced_endpoints, core.list_namespaced_config_map,
                   apps.list_namespaced_deployment):  # fmt: skip
        assert lister(name).items == []
    deleted = wait_for(lambda: [(e.kind, e.obj["metadata"]["name"])
                                for _, e in lab_api.runtime.events[seen:] if e.type == "DELETED"]
                       if any(e.kind == "Namespace" for _, e in lab_api.runtime.events[seen:])
                       else None, what="namespace DELETED event")  # fmt: skip
    assert deleted[-1] == ("Namespace", name)
    assert {k for k, _ in deleted} >= {"Pod", "Deployment", "Service", "Endpoints", "ConfigMap"}
    expect_error(403, "Forbidden", lambda: core.delete_namespace("default"))


def test_subscribers_see_events_in_order(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    seen = len(lab_api.runtime.events)
    running_pod(core, ns, "ev")
    core.delete_namespaced_pod("ev", ns)

    def pod_events() -> list[tuple[str, str]]:
        return [(e.type, e.obj.get("status", {}).get("phase", "")) for c, e in
                lab_api.runtime.events[seen:] if e.kind == "Pod" and c == "east"]  # fmt: skip

    wait_for(lambda: len(pod_events()) == 3, what="3 pod events")
    assert pod_events() == [("ADDED", "Pending"), ("MODIFIED", "Running"), ("DELETED", "Running")]
    lab_api.run(lab_api.server.stores["east"].wait_idle())


def test_watch_streams_changes(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "before"}})
    listed = core.list_namespaced_config_map(ns)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "w", "labels": {"k": "v"}}})
    core.patch_namespaced_config_map("w", ns, {"data": {"x": "1"}})
    core.delete_namespaced_config_map("w", ns)
    events = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map,
        ns,
        timeout_seconds=1,
        resource_version=listed.metadata.resource_version,
    ):
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 3:
            break
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


# -- exec and logs -----------------------------------------------------------------------------


def run_exec(
    core: client.CoreV1Api, ns: str, pod: str, argv: list[str], stdin: str | None = None,
    **kw: Any,
) -> tuple[str, str, int]:  # fmt: skip
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        ns,
        command=argv,
        stdout=True,
        stderr=True,
        stdin=stdin is not None,
        tty=False,
        _preload_content=False,
        **kw,
    )
    if stdin is not None:
        resp.write_stdin(stdin)
        resp.close_channel(0)
    resp.run_forever(timeout=10)
    out, err, code = resp.read_stdout(), resp.read_stderr(), resp.returncode
    resp.close()
    return out, err, code


def test_exec_streams_and_exit_codes(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "sh")
    assert run_exec(core, ns, "sh", ["sh", "-c", "echo out; echo err >&2"]) == ("out\n", "err\n", 0)
    assert run_exec(core, ns, "sh", ["sh", "-c", "echo bye; exit 3"]) == ("bye\n", "", 3)
    assert lab_api.runtime.execs[-1] == ("east", ns, "sh", "main", ["sh", "-c", "echo bye; exit 3"])


def test_exec_stdin_is_closed_by_v5_close_frame(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "cat")
    text = "".join(f"line {i}\n" for i in range(5000))
    assert run_exec(core, ns, "cat", ["cat"], stdin=text) == (text, "", 0)
    assert run_exec(core, ns, "cat", ["wc", "-l"], stdin="a\nb\n")[0].strip() == "2"


def test_exec_large_output_arrives_intact(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "big")
    out, err, code = run_exec(core, ns, "big", ["sh", "-c", "seq 1 170000; seq 1 1000 >&2"])
    assert code == 0 and len(out) > 1_000_000
    assert out == "".join(f"{i}\n" for i in range(1, 170001))
    assert err == "".join(f"{i}\n" for i in range(1, 1001))


def test_exec_failures(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "p")
    _, err, code = run_exec(core, ns, "p", ["no-such-binary-xyz", "arg"])
    assert code == 127 and 'exec: "no-such-binary-xyz": executable file not found' in err
    with pytest.raises(ApiException) as info:
        run_exec(core, ns, "ghost", ["true"])
    assert "404" in str(info.value.reason)
    core.create_namespaced_pod(ns, pod_body("waiting", {PENDING: "1"}))
    with pytest.raises(ApiException) as info:
        run_exec(core, ns, "waiting", ["true"])
    assert "400" in str(info.value.reason) and "is not running" in str(info.value.reason)
    with pytest.raises(ApiException) as info:
        run_exec(core, ns, "p", ["true"], container="nope")
    assert "400" in str(info.value.reason)


def test_exec_round_trip_latency(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "fast")
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        assert run_exec(core, ns, "fast", ["true"]) == ("", "", 0)
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    print(f"exec round trip: median {median * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms")
    assert median < 0.5


def test_pod_logs(core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "logger")
    text = core.read_namespaced_pod_log("logger", ns)
    assert text == f"first east/{ns}/logger/main\nsecond\nthird\n"
    assert core.read_namespaced_pod_log("logger", ns, tail_lines=1) == "third\n"
    expect_error(404, "NotFound", lambda: core.read_namespaced_pod_log("ghost", ns))


# -- kubectl -----------------------------------------------------------------------------------


@pytest.fixture
def kubectl(lab_api: Lab, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = kubectl_binary()

    def run(
        *args: str, stdin: str | None = None, context: str = "lab-east"
    ) -> subprocess.CompletedProcess[str]:
        command = [binary, "--kubeconfig", str(lab_api.kubeconfig), "--context", context,
                   "--cache-dir", str(tmp_path / "cache"), *args]  # fmt: skip
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30,
                               check=False)  # fmt: skip

    return run


def test_kubectl_get_and_exec(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], core: client.CoreV1Api, ns: str
) -> None:
    pod = running_pod(core, ns, "kc")
    got = kubectl("get", "po", "-A", "-o", "wide")
    assert got.returncode == 0, got.stderr
    row = next(line.split() for line in got.stdout.splitlines() if line.startswith(ns))
    assert row[:4] == [ns, "kc", "1/1", "Running"] and pod.status.pod_ip in row
    assert kubectl("get", "svc,deploy,no,ns,netpol,ing,ep,cm", "-n", ns).returncode == 0
    shell = kubectl("exec", "-n", ns, "kc", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (shell.returncode, shell.stdout) == (3, "out\n")
    assert "err\n" in shell.stderr
    text = "".join(f"stdin line {i}\n" for i in range(2000))
    cat = kubectl("exec", "-i", "-n", ns, "kc", "--", "cat", stdin=text)
    assert (cat.returncode, cat.stdout) == (0, text), cat.stderr


def test_kubectl_viewer_context_is_read_only(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], core: client.CoreV1Api, ns: str
) -> None:
    running_pod(core, ns, "ro")
    assert kubectl("get", "pods", "-n", ns, context="lab-east-viewer").returncode == 0
    for args in (("delete", "pod", "ro"), ("exec", "ro", "--", "true"), ("label", "pod", "ro",
                                                                          "a=b")):  # fmt: skip
        denied = kubectl("-n", ns, *args, context="lab-east-viewer")
        # kubectl 1.37 (pinned) words a denied exec "unable to upgrade connection: pods is
        # forbidden: ...", a denied delete or label "Error from server (Forbidden): ..."
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    assert core.read_namespaced_pod("ro", ns).metadata.labels == {}


def test_kubectl_apply_creates_and_updates(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], lab_api: Lab, ns: str, tmp_path: Path
) -> None:
    manifest = deployment_body("applied", 2)
    manifest.update(apiVersion="apps/v1", kind="Deployment")
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    first = kubectl("apply", "-n", ns, "-f", str(path))
    assert first.returncode == 0, first.stderr
    manifest["spec"]["replicas"] = 1
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    path.write_text(yaml.safe_dump(manifest))
    second = kubectl("apply", "-n", ns, "-f", str(path))
    assert second.returncode == 0 and "configured" in second.stdout, second.stderr
    dep = client.AppsV1Api(lab_api.api()).read_namespaced_deployment("applied", ns)
    assert dep.spec.replicas == 1 and dep.spec.template.spec.containers[0].image == "nginx:1.27"
    assert dep.spec.template.spec.containers[0].ports[0].container_port == 8080


# -- shutdown ----------------------------------------------------------------------------------


def test_stop_ends_open_exec_and_watch_streams(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    server = LabApiServer([ClusterSpec("solo", 0, NODES[:1], SERVICE_CIDR)], runtime.exec_handler)
    runtime.server = server
    server.subscribe(runtime.on_event)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        ports = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        api = config.new_client_from_config(
            config_file=str(write_kubeconfig(tmp_path / "kc", ports)), context="lab-solo"
        )
        core = client.CoreV1Api(api)
        running_pod(core, "default", "sleeper")
        session = stream(core.connect_get_namespaced_pod_exec, "sleeper", "default",
                         command=["sleep", "30"], stdout=True, stderr=True, stdin=False,
                         tty=False, _preload_content=False)  # fmt: skip
        watcher = core.list_namespaced_pod("default", watch=True, _preload_content=False)
        started = time.monotonic()
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        assert time.monotonic() - started < 3
        session.run_forever(timeout=5)
        assert not session.is_open()
        watcher.read()  # the stream has ended
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


# -- pure helpers ------------------------------------------------------------------------------


def test_label_selector_parsing() -> None:
    labels = {"app": "web", "tier": "front", "n": "5"}
    cases = {"app=web": True, "app in (api, web)": True, "app notin (web)": False,
             "missing!=x": True, "!missing": True, "tier,app": True, "n>4": True, "n<5": False,
             "": True}  # fmt: skip
    for text, expected in cases.items():
        assert selector_matches(parse_label_selector(text), labels) is expected, text


def test_patch_flavours() -> None:
    doc = {"spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 1}]},
                                   {"name": "b", "image": "y"}]}}  # fmt: skip
    smp = apply_patch(
        doc,
        {"spec": {"containers": [{"name": "a", "image": "z"}]}},
        "application/strategic-merge-patch+json",
    )
    assert smp["spec"]["containers"][0] == {
        "name": "a",
        "image": "z",
        "ports": [{"containerPort": 1}],
    }
    assert len(smp["spec"]["containers"]) == 2
    merge = apply_patch(
        doc, {"spec": {"containers": [{"name": "a"}]}}, "application/merge-patch+json"
    )
    assert merge["spec"]["containers"] == [{"name": "a"}]
    ops = [
        {"op": "replace", "path": "/spec/containers/1/image", "value": "q"},
        {"op": "add", "path": "/metadata", "value": {"labels": {"a": "b"}}},
    ]
    patched = apply_patch(doc, ops, "application/json-patch+json")
    assert patched["spec"]["containers"][1]["image"] == "q" and patched["metadata"]
