"""Small helpers on stored objects: timestamps, metadata, pod phase, names."""

from __future__ import annotations

import datetime
import random
import re
import string

from provisioning.lab.apiserver.model import Obj


def now(later: float = 0) -> str:
    """RFC 3339 UTC timestamp (`later` seconds from now), second precision, as Kubernetes
    writes it."""
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=later)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(obj: Obj) -> Obj:
    """The object's metadata (created when absent)."""
    value = obj.setdefault("metadata", {})
    assert isinstance(value, dict)
    return value


def labels_of(obj: Obj) -> dict[str, str]:
    """The object's labels."""
    return dict(obj.get("metadata", {}).get("labels") or {})


def random_suffix(length: int = 5) -> str:
    """Random lowercase alphanumerics, as generateName appends."""
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


def pod_ready(pod: Obj) -> bool:
    """Running, and no Ready condition that says False."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    conditions = status.get("conditions") or []
    return all(c.get("status") != "False" for c in conditions if c.get("type") == "Ready")


def pod_terminating(pod: Obj) -> bool:
    """Deleted gracefully, its kubelet still stopping it (`Terminating`)."""
    return bool(pod["metadata"].get("deletionTimestamp"))


def pod_terminal(pod: Obj) -> bool:
    """Succeeded or Failed."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def name_problem(kind: str, name: str) -> str | None:
    """Why `name` is not a valid name for `kind`, or None."""
    if kind == "Service":
        pattern, limit, what = _LABEL_1035, 63, "RFC 1035 label"
    elif kind == "Namespace":
        pattern, limit, what = LABEL, 63, "RFC 1123 label"
    else:
        pattern, limit, what = _SUBDOMAIN, 253, "RFC 1123 subdomain"
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    if not pattern.match(name):
        return f"a lowercase {what} must consist of lower case alphanumeric characters or '-'"
    return None
