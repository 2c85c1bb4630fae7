"""The objects of one cluster: storage, resourceVersion, generic admission and settling.

What differs per kind (validation, defaults, allocations, cascades) lives in `kinds`, looked up
in its table; the settling controllers (deployments, endpoints) are given to the store, which
runs them until nothing is left to do before a mutating call returns.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from provisioning.lab.apiserver import fieldmanager
from provisioning.lab.apiserver.bootstrap import bootstrap
from provisioning.lab.apiserver.deletion import (
    grace_period,
    namespace_emptied,
    terminate_namespace,
    terminate_pod,
)
from provisioning.lab.apiserver.errors import (
    ApiError,
    already_exists,
    bad_request,
    bad_value,
    conflict,
    invalid,
    method_not_allowed,
    not_found,
    required,
)
from provisioning.lab.apiserver.kinds import KIND_RULES
from provisioning.lab.apiserver.kinds.pod import complete_pod_status
from provisioning.lab.apiserver.kinds.service import ServiceAllocations
from provisioning.lab.apiserver.model import BY_KIND, RESOURCES, ClusterSpec, Event, Obj, Resource
from provisioning.lab.apiserver.objects import (
    labels_of,
    meta,
    name_problem,
    now,
    random_suffix,
)
from provisioning.lab.apiserver.patches import apply_patch, merge_patch, strategic_merge
from provisioning.lab.apiserver.selectors import (
    FieldTerm,
    Selector,
    fields_match,
    parse_label_selector,
    selector_matches,
)
from provisioning.lab.apiserver.watch import EventStream, Subscriber

if TYPE_CHECKING:
    import asyncio

    from provisioning.lab.controllers.base import SettlingController

log = logging.getLogger("netconform.lab.apiserver")
SETTLE_LIMIT = 100000


class Store:
    """The objects of one cluster, its settling controllers and its event stream."""

    def __init__(
        self,
        spec: ClusterSpec,
        subscribers: builtins.list[Subscriber] | None = None,
        controllers: Sequence[SettlingController] = (),
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.resource_version = 0
        self.events = EventStream(spec.name, subscribers if subscribers is not None else [])
        self.allocations = ServiceAllocations(spec.service_cidr)
        self.controllers = tuple(controllers)
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {r.kind: {} for r in RESOURCES}
        self._settling = False
        self._dry = False
        self.graceful_pods = False
        """Set by a kubelet: a bound pod's delete then waits for it (`Terminating`); the API
        server alone has none, so its pods go at once."""
        bootstrap(self)

    # -- reading --

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy of one object, or None."""
        obj = self.lookup(BY_KIND[kind], namespace, name)
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """Deep copies of the matching objects, by namespace then name."""
        selector = parse_label_selector(label_selector)
        return [copy.deepcopy(o) for o in self.select(BY_KIND[kind], namespace, selector)]

    def select(
        self, res: Resource, namespace: str | None, selector: Selector = (),
        fields: Sequence[FieldTerm] = (),
    ) -> builtins.list[Obj]:  # fmt: skip
        """The stored matching objects themselves (not copies), by namespace then name."""
        return [
            obj
            for (ns, _), obj in sorted(self._objects[res.kind].items())
            if (namespace is None or not res.namespaced or ns == namespace)
            and selector_matches(selector, labels_of(obj))
            and fields_match(fields, obj)
        ]

    def lookup(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        """The stored object itself (not a copy), or None."""
        return self._objects[res.kind].get(self._key(res, namespace, name))

    def require(self, res: Resource, namespace: str | None, name: str) -> Obj:
        """The stored object itself; 404 when absent."""
        obj = self.lookup(res, namespace, name)
        if obj is None:
            raise not_found(res, name)
        return obj

    @staticmethod
    def _key(res: Resource, namespace: str | None, name: str) -> tuple[str, str]:
        return ((namespace or "") if res.namespaced else "", name)

    # -- public mutations (settled before they return) --

    async def create(self, kind: str, namespace: str | None, body: Obj, manager: str = "") -> Obj:
        """Create an object (201 semantics); returns the stored copy."""
        return self._settled(self.create_now(BY_KIND[kind], namespace, body, manager))

    async def replace(
        self, kind: str, namespace: str | None, name: str, body: Obj, subresource: str = "",
        manager: str = "",
    ) -> Obj:  # fmt: skip
        """PUT semantics; `subresource="status"` replaces only the status."""
        res = BY_KIND[kind]
        return self._settled(self.replace_now(res, namespace, name, body, subresource, manager))

    async def patch(
        self, kind: str, namespace: str | None, name: str, patch: Any,
        content_type: str = "application/merge-patch+json", subresource: str = "",
        manager: str = "",
    ) -> Obj:  # fmt: skip
        """PATCH semantics by content type."""
        res = BY_KIND[kind]
        old = self.require(res, namespace, name)
        patched = apply_patch(copy.deepcopy(old), patch, content_type)
        return self._settled(self.replace_now(res, namespace, name, patched, subresource, manager))

    async def apply(
        self, kind: str, namespace: str | None, name: str, applied: Any, manager: str,
        force: bool = False,
    ) -> tuple[Obj, bool]:  # fmt: skip
        """Server-side apply by `manager`; (the object, whether it was created)."""
        res = BY_KIND[kind]
        if not isinstance(applied, dict):
            raise bad_request("the applied configuration must be an object")
        if not manager:
            raise invalid(applied, required("fieldManager", "is required for apply requests"))
        body = copy.deepcopy(applied)
        body.setdefault("metadata", {}).setdefault("name", name)
        live = self.lookup(res, namespace, name)
        new = fieldmanager.apply(copy.deepcopy(live) if live else None, body, manager, force)
        if live is None:
            return self._settled(self.create_now(res, namespace, new, keep_fields=True)), True
        return self._settled(self.replace_now(res, namespace, name, new)), False

    async def delete(
        self, kind: str, namespace: str | None, name: str, grace: int | None = None
    ) -> Obj:
        """Delete (cascading for namespaces and deployments); returns the last state. A bound
        pod with a grace period (`grace`, else its terminationGracePeriodSeconds) is only
        marked Terminating: its kubelet removes it once stopped."""
        return self._settled(self.delete_now(BY_KIND[kind], namespace, name, grace))

    async def update_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Strategic-merge `status` into the pod's status (conditions by type, containerStatuses
        by name, other lists replaced, None deletes a key), bump resourceVersion, emit MODIFIED.
        Raises ApiError (404) when the pod is gone."""
        pod = copy.deepcopy(self.require(BY_KIND["Pod"], namespace, name))
        pod["status"] = strategic_merge(pod.get("status") or {}, status)
        complete_pod_status(pod)
        self._settled(self.write_status(BY_KIND["Pod"], pod))

    async def set_service_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge `status` (e.g. `{"loadBalancer": {"ingress": [{"ip": ...}]}}`) into a service."""
        await self.set_status("Service", namespace, name, status)

    async def set_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        """Merge-patch `status` into an object's status (an Ingress's load balancer, too);
        nothing happens when it already holds it."""
        res = BY_KIND[kind]
        obj = copy.deepcopy(self.require(res, namespace, name))
        obj["status"] = merge_patch(obj.get("status") or {}, status)
        self._settled(self.write_status(res, obj))

    async def wait_idle(self) -> None:
        """Wait until every event so far was delivered (not from inside a subscriber)."""
        await self.events.wait_idle()

    def scale(self, namespace: str, name: str) -> Obj:
        """The `autoscaling/v1` Scale of a deployment."""
        dep = self.require(BY_KIND["Deployment"], namespace, name)
        dmeta, status = dep["metadata"], dep.get("status") or {}
        selector = ",".join(f"{k}={v}" for k, v in
                            (dep["spec"]["selector"].get("matchLabels") or {}).items())  # fmt: skip
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: dmeta[k] for k in
                         ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {"replicas": status.get("replicas", 0), "selector": selector},
        }  # fmt: skip

    async def set_scale(self, namespace: str, name: str, scale: Obj, manager: str = "") -> Obj:
        """PUT of the scale subresource."""
        dep = copy.deepcopy(self.require(BY_KIND["Deployment"], namespace, name))
        wanted = scale.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != dep["metadata"]["resourceVersion"]:
            raise conflict(BY_KIND["Deployment"], name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(dep, bad_value("spec.replicas", replicas, "must be >= 0"))
        dep["spec"]["replicas"] = replicas
        await self.replace("Deployment", namespace, name, dep, manager=manager)
        return self.scale(namespace, name)

    def _settled(self, obj: Obj) -> Obj:
        self._settle()
        return obj

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[None]:
        """Mutations inside are validated and answered as usual, then undone unseen
        (`?dryRun=All`). Only for code that does not await other tasks inside."""
        saved = copy.deepcopy((self._objects, self.resource_version, self.allocations))
        self._dry = True
        try:
            yield
        finally:
            self._objects, self.resource_version, self.allocations = saved
            self._dry = False

    # -- mutations without settling (for kind rules and settling controllers) --

    def create_now(
        self, res: Resource, namespace: str | None, body: Any, manager: str = "",
        keep_fields: bool = False,
    ) -> Obj:  # fmt: skip
        """Admit and store a new object; returns a copy. `manager` owns its fields;
        `keep_fields` keeps the body's managedFields (server-side apply made them)."""
        if res.read_only:
            raise method_not_allowed()
        obj = self._as_object(res, body)
        self._place(res, namespace, obj)
        self._name(res, obj)
        KIND_RULES[res.kind].admit(self, obj, None)
        m = meta(obj)
        m.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "selfLink"):  # fmt: skip
            m.pop(key, None)
        if not keep_fields:
            m.pop("managedFields", None)
            if manager:
                fieldmanager.track_update(obj, None, manager)
        self._commit("ADDED", res, obj)
        return copy.deepcopy(obj)

    def replace_now(
        self, res: Resource, namespace: str | None, name: str, body: Any, sub: str = "",
        manager: str = "",
    ) -> Obj:  # fmt: skip
        """Admit and store a new version of an object; returns a copy. `manager` owns the
        fields it changed; without one the body's managedFields (or the old ones) stay."""
        if res.read_only:
            raise method_not_allowed()
        old = self.require(res, namespace, name)
        new = self._as_object(res, body)
        self._check_identity(res, old, new, name)
        if sub == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            new["status"] = status if status is not None else {}
            return self.write_status(res, new)
        for key in ("uid", "creationTimestamp", "namespace", "generation", "resourceVersion",
                    "deletionTimestamp", "deletionGracePeriodSeconds"):  # fmt: skip
            if key in old["metadata"]:
                new["metadata"][key] = old["metadata"][key]
            elif key.startswith("deletion"):
                new["metadata"].pop(key, None)  # only a delete sets them
        if res.has_status:
            new["status"] = copy.deepcopy(old.get("status", {}))
        KIND_RULES[res.kind].admit(self, new, old)
        if manager:
            fieldmanager.track_update(new, old, manager)
        elif "managedFields" not in new["metadata"] and "managedFields" in old["metadata"]:
            new["metadata"]["managedFields"] = copy.deepcopy(old["metadata"]["managedFields"])
        if new == old:
            return copy.deepcopy(old)
        self._commit("MODIFIED", res, new)
        return copy.deepcopy(new)

    def delete_now(
        self, res: Resource, namespace: str | None, name: str, grace: int | None = None
    ) -> Obj:
        """Delete an object and what its kind cascades to; returns its last state."""
        if res.read_only:
            raise method_not_allowed()
        rules = KIND_RULES[res.kind]
        obj = self.require(res, namespace, name)
        if res.kind == "Pod" and (period := grace_period(self, obj, grace)) > 0:
            return terminate_pod(self, res, obj, period)
        if meta(obj).get("deletionTimestamp") and res.kind == "Namespace":
            return copy.deepcopy(obj)  # already emptying itself
        rules.before_delete(self, obj)
        if res.kind == "Namespace" and self.select(BY_KIND["Pod"], name):
            return terminate_namespace(self, res, obj)
        obj = copy.deepcopy(obj)
        self._commit("DELETED", res, obj)
        rules.after_delete(self, obj)
        if res.kind == "Pod":
            namespace_emptied(self, obj["metadata"]["namespace"])
        return copy.deepcopy(obj)

    def write_status(self, res: Resource, new: Obj) -> Obj:
        """Store `new` if it differs from the current object (used for status-only writes)."""
        old = self.require(res, new["metadata"].get("namespace"), new["metadata"]["name"])
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return copy.deepcopy(old)
        self._commit("MODIFIED", res, new)
        return copy.deepcopy(new)

    def _commit(self, type_: str, res: Resource, obj: Obj) -> None:
        """Store or drop `obj` with a new resourceVersion and tell everyone."""
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        bucket = self._objects[res.kind]
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if type_ == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        if self._dry:
            return
        event = Event(type_, res.kind, copy.deepcopy(obj))
        self.events.publish(event, Event(type_, res.kind, copy.deepcopy(obj)))
        for controller in self.controllers:
            if event.kind in controller.watches:
                controller.observe(self, event)

    # -- generic admission --

    @staticmethod
    def _as_object(res: Resource, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        for key, want in (("kind", res.kind), ("apiVersion", res.api_version)):
            if obj.get(key) not in (None, "", want):
                raise bad_request(f"{key} {obj[key]!r} does not match the resource "
                                  f"{res.qualified} ({want!r})")  # fmt: skip
            obj[key] = want
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        for key in ("labels", "annotations"):
            value = obj["metadata"].get(key)
            if value is not None and not (
                isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
            ):
                raise invalid(obj, bad_value(f"metadata.{key}", value, "must map strings"))
        return obj

    def _place(self, res: Resource, namespace: str | None, obj: Obj) -> None:
        m = meta(obj)
        if not res.namespaced:
            m.pop("namespace", None)
            return
        namespace = namespace or m.get("namespace") or "default"
        if m.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")  # fmt: skip
        m["namespace"] = namespace
        ns = self.lookup(BY_KIND["Namespace"], None, namespace)
        if ns is None:
            raise not_found(BY_KIND["Namespace"], namespace)
        if meta(ns).get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f'{res.plural} "{m.get("name") or ""}" is '
                           f"forbidden: unable to create new content in namespace {namespace} "
                           "because it is being terminated")  # fmt: skip

    def _name(self, res: Resource, obj: Obj) -> None:
        m = meta(obj)
        if not m.get("name"):
            if not m.get("generateName"):
                raise invalid(obj, required("metadata.name", "name or generateName is required"))
            m["name"] = self._generated_name(res, m)
        problem = name_problem(res.kind, m["name"])
        if problem:
            raise invalid(obj, bad_value("metadata.name", m["name"], problem))
        if self.lookup(res, m.get("namespace"), m["name"]) is not None:
            raise already_exists(res, m["name"])

    def _generated_name(self, res: Resource, m: Obj) -> str:
        for _ in range(100):
            name = f"{m['generateName']}{random_suffix()}"
            if self.lookup(res, m.get("namespace"), name) is None:
                return str(name)
        raise ApiError(500, "InternalError", "could not generate a unique name")

    def _check_identity(self, res: Resource, old: Obj, new: Obj, name: str) -> None:
        m = new["metadata"]
        if m.get("name") not in (None, "", name):
            raise bad_request(f"the name of the object ({m['name']}) does not match the name on "
                              f"the URL ({name})")  # fmt: skip
        m["name"] = name
        if res.namespaced and m.get("namespace") not in (None, "", old["metadata"]["namespace"]):
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")  # fmt: skip
        wanted = m.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise conflict(res, name)

    def commit_node(self, node: Obj) -> None:
        """Store a Node (read-only kind: only the lab makes them)."""
        self._commit("ADDED", BY_KIND["Node"], node)

    # -- settling --

    def _settle(self) -> None:
        """Run the settling controllers until none has work left (not re-entrant); the first
        in registry order with work goes first, so deployments settle before endpoints."""
        if self._settling or self._dry:
            return
        self._settling = True
        try:
            for _ in range(SETTLE_LIMIT):
                if not any(self._step(c) for c in self.controllers):
                    return
            log.error("%s: controllers did not settle", self.name)
        finally:
            self._settling = False

    def _step(self, controller: SettlingController) -> bool:
        try:
            return controller.reconcile(self)
        except ApiError as exc:
            log.error("%s: controller %s failed: %s", self.name, controller.name, exc)
            return True

    # -- watches and delivery --

    def start(self) -> None:
        """Start delivering events to subscribers (in the running loop)."""
        self.events.start()

    async def stop(self) -> None:
        """Stop delivering events and end all watches."""
        await self.events.stop()

    def open_watch(self, kind: str, since: str) -> asyncio.Queue[Event | None]:
        """A queue of events of `kind` after resourceVersion `since` ("" or "0": current
        objects as ADDED first); 410 Gone when `since` is older than the kept history."""
        current = (
            [Event("ADDED", kind, copy.deepcopy(o)) for o in self.select(BY_KIND[kind], None)]
            if since in ("", "0")
            else []
        )
        return self.events.open_watch(kind, since, current)

    @property
    def watch_count(self) -> int:
        """Watches open now."""
        return self.events.watch_count

    def close_watch(self, queue: asyncio.Queue[Event | None]) -> None:
        """Forget a watch queue."""
        self.events.close_watch(queue)
