"""Deployments: validation, defaults, generation, and the delete cascade to their
ReplicaSets (whose own cascade takes their pods)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from provisioning.lab.apiserver.errors import Cause, bad_value, invalid, required
from provisioning.lab.apiserver.kinds.base import KindRules
from provisioning.lab.apiserver.kinds.pod import default_pod_spec, pod_spec_problem
from provisioning.lab.apiserver.kinds.podsecurity import warn_pod_template
from provisioning.lab.apiserver.model import BY_KIND, Obj
from provisioning.lab.apiserver.selectors import selector_from_spec, selector_matches

if TYPE_CHECKING:
    from provisioning.lab.apiserver.store import Store


class DeploymentRules(KindRules):
    def admit(self, store: Store, obj: Obj, old: Obj | None) -> None:
        admit_workload(store, obj, old, default_deployment_spec, {})

    def after_delete(self, store: Store, obj: Obj) -> None:
        ns, res = obj["metadata"]["namespace"], BY_KIND["ReplicaSet"]
        for rs in owned(store, "ReplicaSet", obj):
            if store.lookup(res, ns, rs["metadata"]["name"]) is not None:
                store.delete_now(res, ns, rs["metadata"]["name"])


def admit_workload(
    store: Store, obj: Obj, old: Obj | None, defaults: Callable[[Obj], None], status: Obj
) -> None:
    """Admission shared by Deployments and ReplicaSets (a selector and a pod template):
    validate, warn on the template's Pod Security, default, count generations."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise invalid(obj, required("spec"))
    problem = deployment_spec_problem(spec)
    if problem:
        raise invalid(obj, problem)
    namespace = store.lookup(BY_KIND["Namespace"], None, obj["metadata"]["namespace"])
    if old is None or spec["template"] != old["spec"]["template"]:
        warn_pod_template(namespace, spec["template"])
    defaults(spec)
    if old is None:
        obj["metadata"]["generation"] = 1
        obj["status"] = dict(status)
        return
    if spec["selector"] != old["spec"]["selector"]:
        raise invalid(obj, bad_value("spec.selector", spec["selector"], "field is immutable"))
    if spec != old["spec"]:
        obj["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1


def owned(store: Store, kind: str, owner: Obj) -> list[Obj]:
    """The stored objects of `kind` whose owner is `owner` (not copies)."""
    uid = owner["metadata"]["uid"]
    return [
        obj for obj in store.select(BY_KIND[kind], owner["metadata"]["namespace"])
        if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
    ]  # fmt: skip


def deployment_spec_problem(spec: Obj) -> Cause | None:
    """Default the replicas, then return the first problem of a deployment spec (or None)."""
    replicas = spec.setdefault("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        return bad_value("spec.replicas", replicas, "must be greater than or equal to 0")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return required("spec.selector")
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return required("spec.template.spec")
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector_matches(selector_from_spec(selector), template_labels):
        return bad_value("spec.template.metadata.labels", template_labels,
                         "`selector` does not match template `labels`")  # fmt: skip
    return pod_spec_problem(template["spec"], "spec.template.spec")


def default_deployment_spec(spec: Obj) -> None:
    """The defaults the API server fills in a deployment spec."""
    spec.setdefault(
        "strategy",
        {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    )
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod_spec(spec["template"]["spec"])
