"""The lab's in-memory Kubernetes API: discovery, nodes, kubeconfig, pods, namespaces, events
and watches, selectors and patches."""

from __future__ import annotations

import ipaddress
import re
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from provisioning.lab.apiserver import (
    apply_patch,
    parse_label_selector,
    selector_matches,
    write_kubeconfig,
)
from tests.lab.apiserver_kit import (
    PENDING,
    WEST_CIDR,
    Lab,
    deployment_body,
    endpoints,
    expect_error,
    pod_body,
    running_pod,
    svc_body,
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
    phase,
    pod_status,
    resource_version,
)

# -- discovery, nodes, kubeconfig --------------------------------------------------------------


def test_version_and_discovery(lab_api: Lab, core: client.CoreV1Api) -> None:
    api = lab_api.api()
    assert client.VersionApi(api).get_code().major == "1"
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert groups == {"apps", "discovery.k8s.io", "networking.k8s.io", "authorization.k8s.io"}
    pods = next(r for r in core.get_api_resources().resources if r.name == "pods")
    assert pods.short_names == ["po"] and pods.namespaced and pods.kind == "Pod"
    names = {r.name for r in client.NetworkingV1Api(api).get_api_resources().resources}
    assert {"ingresses", "ingressclasses", "networkpolicies"} <= names


def test_nodes_come_from_the_cluster_spec(core: client.CoreV1Api) -> None:
    nodes = core.list_node().items
    assert [name_of(n) for n in nodes] == ["east-node-0", "east-node-1"]
    node = nodes[1]
    assert labels_of(node)["topology.kubernetes.io/region"] == "east"
    status = need(node.status, "node status")
    addresses = need(status.addresses, "status.addresses")
    assert {(a.type, a.address) for a in addresses} >= {("InternalIP", "10.101.0.11")}
    conditions = need(status.conditions, "status.conditions")
    assert [(c.type, c.status) for c in conditions][-1] == ("Ready", "True")
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
    assert [name_of(n) for n in west.list_node().items] == ["west-node-0"]
    only_west = {"metadata": {"name": "only-west"}, "spec": {"ports": [{"port": 80}]}}
    svc = west.create_namespaced_service("default", model(client.V1Service, only_west))
    assert ipaddress.ip_address(cluster_ip(svc)) in ipaddress.ip_network(WEST_CIDR)
    east = client.CoreV1Api(lab_api.api())
    expect_error(404, "NotFound", lambda: east.read_namespaced_service("only-west", "default"))
    west.delete_namespaced_service("only-west", "default")


# -- pods --------------------------------------------------------------------------------------


def test_pod_create_get_list_replace_patch_delete(core: client.CoreV1Api, ns: str) -> None:
    web = pod_body("web", {"app": "web", "tier": "front"})
    created = core.create_namespaced_pod(ns, model(client.V1Pod, web))
    created_meta = meta(created)
    assert created_meta.uid and created_meta.resource_version and created_meta.creation_timestamp
    assert phase(created) == "Pending" and node_name(created).startswith("east-node-")
    assert pod_status(created).host_ip in ("10.101.0.10", "10.101.0.11")
    pod = running_pod(core, ns, "db", labels={"app": "db"})
    statuses = need(pod_status(pod).container_statuses, "status.containerStatuses")
    assert pod_status(pod).pod_ip and statuses[0].ready
    listed = core.list_namespaced_pod(ns)
    assert [name_of(p) for p in listed.items] == ["db", "web"]
    list_version = need(need(listed.metadata, "list metadata").resource_version, "resourceVersion")
    assert int(list_version) >= resource_version(pod)
    current = core.read_namespaced_pod("web", ns)
    labels_of(current)["tier"] = "back"
    replaced = core.replace_namespaced_pod("web", ns, current)
    assert labels_of(replaced)["tier"] == "back"
    assert resource_version(replaced) > resource_version(current)
    body = expect_error(409, "Conflict", lambda: core.replace_namespaced_pod("web", ns, current))
    assert "the object has been modified" in body["message"]
    patched = core.patch_namespaced_pod("web", ns, {"metadata": {"labels": {"extra": "1"}}})
    assert labels_of(patched) == {"app": "web", "tier": "back", "extra": "1"}
    deleted = core.delete_namespaced_pod("web", ns)
    assert name_of(deleted) == "web"
    expect_error(404, "NotFound", lambda: core.read_namespaced_pod("web", ns))


def test_label_and_field_selectors(core: client.CoreV1Api, ns: str) -> None:
    for name, labels in (("a", {"app": "x", "env": "prod"}), ("b", {"app": "y", "env": "dev"}),
                         ("c", {"app": "z", PENDING: "1"})):  # fmt: skip
        core.create_namespaced_pod(
            ns, model(client.V1Pod, pod_body(name, labels, nodeName="east-node-1"))
        )

    def names(label_selector: str | None = None, field_selector: str | None = None) -> list[str]:
        listed = core.list_namespaced_pod(
            ns, label_selector=label_selector, field_selector=field_selector
        )
        return [name_of(p) for p in listed.items]

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
    assert [(meta(p).namespace, name_of(p)) for p in everywhere.items] == [(ns, "b")]
    expect_error(400, "BadRequest", lambda: core.list_namespaced_pod(ns, label_selector="a in b"))


def test_scheduler_spreads_and_respects_node_name(core: client.CoreV1Api, ns: str) -> None:
    load = {"east-node-0": 0, "east-node-1": 0}
    for pod in core.list_pod_for_all_namespaces().items:
        if phase(pod) not in ("Succeeded", "Failed"):
            load[node_name(pod)] += 1
    pinned_body = pod_body("pinned", nodeName="east-node-1")
    pinned = core.create_namespaced_pod(ns, model(client.V1Pod, pinned_body))
    assert node_name(pinned) == "east-node-1"
    load["east-node-1"] += 1
    for i in range(4):
        expected = min(load, key=lambda n: (load[n], n))
        created = core.create_namespaced_pod(ns, model(client.V1Pod, pod_body(f"p{i}")))
        assert node_name(created) == expected
        load[expected] += 1
    nowhere = model(client.V1Pod, pod_body("x", nodeName="nope"))
    body = expect_error(422, "Invalid", lambda: core.create_namespaced_pod(ns, nowhere))
    assert body["details"]["causes"][0]["field"] == "spec.nodeName"


def test_dry_run_changes_nothing(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    seen = len(lab_api.runtime.events)
    dry = model(client.V1Service, svc_body("dry", None, type="NodePort"))
    svc = core.create_namespaced_service(ns, dry, dry_run="All")
    assert cluster_ip(svc) and node_port(svc)
    expect_error(404, "NotFound", lambda: core.read_namespaced_service("dry", ns))
    real_body = model(client.V1Service, svc_body("real", None, type="NodePort"))
    real = core.create_namespaced_service(ns, real_body)
    assert (cluster_ip(real), node_port(real)) == (
        cluster_ip(svc),
        node_port(svc),
    )  # the dry run reserved nothing
    core.delete_namespaced_service("real", ns, dry_run="All")
    assert meta(core.read_namespaced_service("real", ns)).uid == meta(real).uid
    lab_api.run(lab_api.server.stores["east"].wait_idle())
    assert [e.obj["metadata"]["name"] for _, e in lab_api.runtime.events[seen:]
            if e.kind == "Service"] == ["real"]  # fmt: skip


def test_generate_name(core: client.CoreV1Api, ns: str) -> None:
    body = pod_body("")
    body["metadata"] = {"generateName": "worker-"}
    first, second = (
        name_of(core.create_namespaced_pod(ns, model(client.V1Pod, body))) for _ in range(2)
    )
    assert re.fullmatch(r"worker-[a-z0-9]{5}", first) and first != second


def test_validation_errors(core: client.CoreV1Api, ns: str) -> None:
    no_containers = model(client.V1Pod, {"metadata": {"name": "empty"}, "spec": {"containers": []}})
    body = expect_error(422, "Invalid", lambda: core.create_namespaced_pod(ns, no_containers))
    assert body["details"]["causes"][0]["field"] == "spec.containers"
    assert body["details"]["kind"] == "Pod" and body["details"]["name"] == "empty"
    nameless = model(
        client.V1Pod, {"metadata": {}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    )
    body = expect_error(422, "Invalid", lambda: core.create_namespaced_pod(ns, nameless))
    assert "metadata.name" in body["message"]
    bad_name = model(client.V1Pod, pod_body("Not_Valid"))
    expect_error(422, "Invalid", lambda: core.create_namespaced_pod(ns, bad_name))


def test_not_found_and_already_exists(core: client.CoreV1Api, ns: str) -> None:
    body = expect_error(404, "NotFound", lambda: core.read_namespaced_pod("ghost", ns))
    assert body["message"] == 'pods "ghost" not found' and body["details"]["name"] == "ghost"
    homeless = model(client.V1Pod, pod_body("p"))
    body = expect_error(404, "NotFound", lambda: core.create_namespaced_pod("no-such-ns", homeless))
    assert body["message"] == 'namespaces "no-such-ns" not found'
    cm = model(client.V1ConfigMap, {"metadata": {"name": "cm"}})
    core.create_namespaced_config_map(ns, cm)
    expect_error(409, "AlreadyExists", lambda: core.create_namespaced_config_map(ns, cm))
    apps = client.AppsV1Api(core.api_client)
    body = expect_error(404, "NotFound", lambda: apps.read_namespaced_deployment("nope", ns))
    assert body["message"] == 'deployments.apps "nope" not found'


def test_viewer_token_is_read_only(lab_api: Lab, core: client.CoreV1Api, ns: str) -> None:
    running_pod(core, ns, "target")
    viewer = client.CoreV1Api(lab_api.api("lab-east-viewer"))
    assert [name_of(p) for p in viewer.list_namespaced_pod(ns).items] == ["target"]
    assert name_of(viewer.read_namespaced_pod("target", ns)) == "target"
    config_map = model(client.V1ConfigMap, {"metadata": {"name": "x"}})
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
    assert name_of(by_token.read_namespaced_pod("target", ns)) == "target"
    expect_error(403, "Forbidden", lambda: by_token.delete_namespaced_pod("target", ns))
    west_viewer = client.CoreV1Api(lab_api.api("lab-west-viewer"))
    nope = model(client.V1Namespace, {"metadata": {"name": "nope"}})
    expect_error(403, "Forbidden", lambda: west_viewer.create_namespace(nope))


def test_pod_status_subresource_and_store_api(
    lab_api: Lab, core: client.CoreV1Api, ns: str
) -> None:
    running_pod(core, ns, "p")
    patch = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    patched = core.patch_namespaced_pod_status("p", ns, patch)
    conditions = {c.type: c.status for c in need(pod_status(patched).conditions, "conditions")}
    assert conditions == {"PodScheduled": "True", "Ready": "False"}
    store = lab_api.server.stores["east"]
    pod = store.get("Pod", ns, "p")
    assert pod is not None and pod["status"]["phase"] == "Running"
    assert [p["metadata"]["name"] for p in store.list("Pod", ns, "missing!=x")] == ["p"]
    lab_api.run(store.update_pod_status(ns, "p", {"phase": "Failed"}))
    assert phase(core.read_namespaced_pod("p", ns)) == "Failed"


# -- namespaces, events, watch -----------------------------------------------------------------


def test_namespace_delete_cascades(lab_api: Lab, core: client.CoreV1Api) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(model(client.V1Namespace, {"metadata": {"name": name}}))
    apps = client.AppsV1Api(lab_api.api())
    apps.create_namespaced_deployment(name, model(client.V1Deployment, deployment_body("d", 2)))
    core.create_namespaced_service(name, model(client.V1Service, svc_body("s", {"app": "d"})))
    core.create_namespaced_config_map(name, model(client.V1ConfigMap, {"metadata": {"name": "c"}}))
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
    core.create_namespaced_config_map(
        ns, model(client.V1ConfigMap, {"metadata": {"name": "before"}})
    )
    listed = core.list_namespaced_config_map(ns)
    labelled = {"metadata": {"name": "w", "labels": {"k": "v"}}}
    core.create_namespaced_config_map(ns, model(client.V1ConfigMap, labelled))
    core.patch_namespaced_config_map("w", ns, {"data": {"x": "1"}})
    core.delete_namespaced_config_map("w", ns)
    events: list[tuple[str, str]] = []
    since = need(listed.metadata, "list metadata").resource_version
    watcher = watch.Watch()  # type: ignore[no-untyped-call]  # the watch module is unannotated
    for event in watcher.stream(  # type: ignore[no-untyped-call]
        core.list_namespaced_config_map, ns, timeout_seconds=1, resource_version=since
    ):
        events.append((event["type"], name_of(event["object"])))
        if len(events) == 3:
            break
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


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
