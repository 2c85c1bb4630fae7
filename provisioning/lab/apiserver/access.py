"""SelfSubjectAccessReview and SelfSubjectRulesReview (`kubectl auth can-i [--list]`): what the
two lab identities may do. The admin may do everything; the viewer may get, list and watch
every resource and read pod logs, which is exactly what the HTTP layer lets through."""

from __future__ import annotations

from typing import Any, Final

from provisioning.lab.apiserver.errors import bad_request
from provisioning.lab.apiserver.model import AUTHORIZATION, Obj

VIEWER_VERBS: Final = ("get", "list", "watch")
VIEWER_SUBRESOURCES: Final = ("", "log", "status", "scale")


def viewer_allowed(verb: str, subresource: str) -> bool:
    """Whether the read-only viewer may `verb` a resource (or its `subresource`)."""
    if subresource == "log":
        return verb == "get"
    return verb in VIEWER_VERBS and subresource in VIEWER_SUBRESOURCES


def access_review(body: Any, viewer: bool) -> Obj:
    """The answered SelfSubjectAccessReview."""
    spec = (body or {}).get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict) or not (
        spec.get("resourceAttributes") or spec.get("nonResourceAttributes")
    ):
        raise bad_request("spec.resourceAttributes or spec.nonResourceAttributes is required")
    attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
    verb = str(attrs.get("verb", ""))
    allowed = not viewer or viewer_allowed(verb, str(attrs.get("subresource") or ""))
    status: Obj = {"allowed": allowed}
    if viewer:
        status["reason"] = (
            "the lab viewer may get, list and watch, and read pod logs"
            if allowed
            else "the lab viewer is read-only (get, list, watch, pods/log)"
        )
    else:
        status["reason"] = "the lab admin may do everything"
    return {"kind": "SelfSubjectAccessReview", "apiVersion": f"{AUTHORIZATION}/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}  # fmt: skip


def rules_review(body: Any, viewer: bool) -> Obj:
    """The answered SelfSubjectRulesReview."""
    spec = body.get("spec") if isinstance(body, dict) else None
    if viewer:
        rules = [
            {"verbs": list(VIEWER_VERBS), "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]},
        ]
        non_resource = [{"verbs": ["get"], "nonResourceURLs": ["*"]}]
    else:
        rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        non_resource = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
    status = {"resourceRules": rules, "nonResourceRules": non_resource, "incomplete": False}
    return {"kind": "SelfSubjectRulesReview", "apiVersion": f"{AUTHORIZATION}/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec or {},
            "status": status}  # fmt: skip
