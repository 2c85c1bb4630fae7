"""Pods: validation, defaults, the scheduler, and the status fields the client requires."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from provisioning.lab.apiserver.errors import Cause, bad_value, forbidden_field, invalid, required
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.kinds.node import node_labels
from provisioning.lab.apiserver.kinds.podsecurity import enforce_pod_security
from provisioning.lab.apiserver.model import BY_KIND, NodeSpec, Obj
from provisioning.lab.apiserver.objects import LABEL, now, pod_terminal

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class PodRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise invalid(obj, required("spec"))
        problem = pod_spec_problem(spec, "spec")
        if problem:
            raise invalid(obj, problem)
        default_pod_spec(spec)
        if old is not None:
            check_pod_update(obj, old)
            return
        namespace = store.lookup(BY_KIND["Namespace"], None, obj["metadata"]["namespace"])
        enforce_pod_security(namespace, obj)
        schedule(store, obj)


def check_pod_update(pod: Obj, old: Obj) -> None:
    """Only images (and a few scheduling fields) of a pod may change."""
    pod["spec"].setdefault("nodeName", old["spec"].get("nodeName"))
    if pod["spec"].get("nodeName") is None:
        pod["spec"].pop("nodeName")
    if mutable_pod_fields_stripped(pod["spec"]) != mutable_pod_fields_stripped(old["spec"]):
        raise invalid(pod, forbidden_field("spec", "pod updates may not change fields other "
                      "than `spec.containers[*].image`, `spec.initContainers[*].image`, "
                      "`spec.activeDeadlineSeconds`, `spec.tolerations`"))  # fmt: skip


def schedule(store: Store, pod: Obj) -> None:
    """Bind a new pod to its node (or mark it Unschedulable) and set its Pending status."""
    nodes = {n.name: n for n in store.spec.nodes}
    spec, stamp = pod["spec"], now()
    wanted = spec.get("nodeName")
    if wanted and wanted not in nodes:
        raise invalid(pod, bad_value("spec.nodeName", wanted, "node not found"))
    node = nodes[wanted] if wanted else pick_node(store, spec)
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}
    pod["status"] = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [scheduled]}
    if node is None:
        scheduled.update(
            status="False",
            reason="Unschedulable",
            message=f"0/{len(nodes)} nodes are available: no node matched the pod's node selector",
        )
        return  # fmt: skip
    spec["nodeName"] = node.name
    pod["status"].update(hostIP=node.internal_ip, hostIPs=[{"ip": node.internal_ip}])


def pick_node(store: Store, spec: Obj) -> NodeSpec | None:
    """Fewest non-terminal pods first, ties by name; honours spec.nodeSelector."""
    selector = dict(spec.get("nodeSelector") or {})
    load = {n.name: 0 for n in store.spec.nodes}
    for pod in store.select(BY_KIND["Pod"], None):
        node = pod["spec"].get("nodeName")
        if node in load and not pod_terminal(pod):
            load[node] += 1
    candidates = [
        n for n in store.spec.nodes
        if all(node_labels(n).get(k) == v for k, v in selector.items())
    ]  # fmt: skip
    return min(candidates, key=lambda n: (load[n.name], n.name), default=None)


def complete_pod_status(pod: Obj) -> None:
    """Fill the fields the client's models require in container statuses."""
    images = {c["name"]: c.get("image", "") for c in pod["spec"]["containers"]}
    status = pod["status"]
    for cs in status.get("containerStatuses") or []:
        running = (cs.get("state") or {}).get("running")
        if isinstance(running, dict):
            running.setdefault("startedAt", now())
        cs.setdefault("image", images.get(cs.get("name", ""), ""))
        cs.setdefault("imageID", "")
        cs.setdefault("ready", status.get("phase") == "Running")
        cs.setdefault("restartCount", 0)
    for cond in status.get("conditions") or []:
        cond.setdefault("lastTransitionTime", now())
    if status.get("phase") == "Running":
        status.setdefault("startTime", now())


def pod_spec_problem(spec: Obj, path: str) -> Cause | None:
    """The first problem of a pod spec, or None."""
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return required(f"{path}.containers")
    seen: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{path}.containers[{i}]"
        if not isinstance(container, dict):
            return bad_value(where, container, "must be an object")
        name = container.get("name")
        if not name:
            return required(f"{where}.name")
        if not isinstance(name, str) or not LABEL.match(name):
            return bad_value(f"{where}.name", name, "must be an RFC 1123 label")
        if name in seen:
            return Cause(f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
        seen.add(name)
        if not container.get("image"):
            return required(f"{where}.image")
        for j, port in enumerate(container.get("ports") or []):
            value = port.get("containerPort") if isinstance(port, dict) else None
            if not isinstance(value, int) or not 0 < value < 65536:
                return bad_value(f"{where}.ports[{j}].containerPort", value,
                                 "must be between 1 and 65535, inclusive")  # fmt: skip
    return None


def default_pod_spec(spec: Obj) -> None:
    """The defaults the API server fills in a pod spec."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec["containers"]:
        image = str(container["image"])
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")


def mutable_pod_fields_stripped(spec: Obj) -> Obj:
    """A pod spec without the fields a pod update may change."""
    stripped = copy.deepcopy(spec)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
        stripped.pop(key, None)
    for key in ("containers", "initContainers"):
        for container in stripped.get(key) or []:
            container.pop("image", None)
    return stripped
