"""The RBAC preflight: before deploying anything, ask each cluster (SelfSubjectAccessReview, what
`kubectl auth can-i` asks) for every verb the suite needs in its region namespace, so a missing
one ends the run with one line naming it instead of a failure half-way through. Servers
without the authorization API are not asked (old clusters): the first 403 then names it."""

from __future__ import annotations

from typing import Final, NamedTuple

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from netconform.cluster import ClusterClient
from netconform.errors import ForbiddenError


class Permission(NamedTuple):
    """One verb on one resource (subresource) the suite needs."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespaced: bool = True

    @property
    def text(self) -> str:
        sub = f"/{self.subresource}" if self.subresource else ""
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {self.resource}{sub}{group}"


#: What the README promises the suite needs, in the order it is asked.
NEEDED: Final = (
    *(Permission(verb, "", "pods") for verb in ("create", "get", "list", "patch", "delete")),
    Permission("create", "", "pods", "exec"),
    *(Permission(verb, group, resource) for group, resource in (
        ("networking.k8s.io", "ingresses"), ("networking.k8s.io", "networkpolicies"),
        ("", "services"), ("apps", "deployments"), ("", "configmaps"), ("", "secrets"),
    ) for verb in ("list", "delete")),
    Permission("list", "", "nodes", namespaced=False),
)  # fmt: skip


def _allowed(cluster: ClusterClient, want: Permission, namespace: str) -> bool | None:
    """Whether `want` is allowed; None when the server has no SelfSubjectAccessReview."""
    attributes = {"verb": want.verb, "group": want.group, "resource": want.resource}
    if want.subresource:
        attributes["subresource"] = want.subresource
    if want.namespaced:
        attributes["namespace"] = namespace
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}  # fmt: skip
    api = client.AuthorizationV1Api(cluster.api)
    try:
        review = cluster.call("ask a SelfSubjectAccessReview",
                              api.create_self_subject_access_review, body)  # fmt: skip
    except ApiException as err:
        if err.status in (404, 405):
            return None
        raise
    return bool(review.status and review.status.allowed)


def check_permissions(cluster: ClusterClient, namespace: str) -> None:
    """Raise ForbiddenError naming the first needed permission `cluster` lacks."""
    for want in NEEDED:
        allowed = _allowed(cluster, want, namespace)
        if allowed is None:
            return
        if not allowed:
            where = f" in namespace {namespace}" if want.namespaced else " (cluster-wide)"
            raise ForbiddenError(
                f"{cluster.describe()}: RBAC does not allow {want.text}{where}, which the "
                "suite needs (asked with a SelfSubjectAccessReview)"
            )
