"""Pod Security admission, as the API server's built-in plugin applies it from namespace labels
(`pod-security.kubernetes.io/enforce: baseline|restricted`, `-version`): a pod asking for what
the level forbids is refused with the plugin's own words; the `warn` level, and the `enforce`
level for pod templates (Deployments, ReplicaSets), answer a `Warning` header instead, which
kubectl prints. The checks and their order follow k8s.io/pod-security-admission/policy (one
check per file, in file order); the checks a lab pod cannot ask for (Windows hostProcess,
AppArmor, SELinux, procMount, sysctls) are left out. The `audit` label is not acted on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Final

from provisioning.lab.apiserver.errors import ApiError, object_details
from provisioning.lab.apiserver.model import BY_KIND, Obj

PREFIX: Final = "pod-security.kubernetes.io/"
ENFORCE: Final = f"{PREFIX}enforce"
WARNINGS: ContextVar[list[str] | None] = ContextVar("pod_security_warnings", default=None)
"""Warnings of the request being handled (the HTTP layer sets a list and answers them)."""
LEVELS: Final = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES: Final = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})  # fmt: skip
RESTRICTED_VOLUMES: Final = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
})  # fmt: skip
Violation = tuple[str, str]


def _containers(pod: Obj) -> Iterator[Obj]:
    spec = pod["spec"]
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _sc(container: Obj) -> Obj:
    return container.get("securityContext") or {}


def _names(what: str, names: list[str]) -> str:
    plural = what if len(names) == 1 else f"{what}s"
    return f"{plural} " + ", ".join(f'"{n}"' for n in names)


def _caps_added(c: Obj) -> list[str]:
    return list((_sc(c).get("capabilities") or {}).get("add") or [])


def allow_privilege_escalation(pod: Obj) -> Violation | None:
    bad = [
        c["name"] for c in _containers(pod) if _sc(c).get("allowPrivilegeEscalation") is not False
    ]
    return (bad and ("allowPrivilegeEscalation != false", f"{_names('container', bad)} must set "
                    "securityContext.allowPrivilegeEscalation=false")) or None  # fmt: skip


def capabilities_baseline(pod: Obj) -> Violation | None:
    bad = [c["name"] for c in _containers(pod) if set(_caps_added(c)) - BASELINE_CAPABILITIES]
    caps = sorted({x for c in _containers(pod) for x in _caps_added(c)} - BASELINE_CAPABILITIES)
    return (bad and ("non-default capabilities", f"{_names('container', bad)} must not include "
                    f"{', '.join(repr_go(x) for x in caps)} in "
                    "securityContext.capabilities.add")) or None  # fmt: skip


def capabilities_restricted(pod: Obj) -> Violation | None:
    no_drop = [
        c["name"]
        for c in _containers(pod)
        if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])
    ]
    adding = [c["name"] for c in _containers(pod) if set(_caps_added(c)) - {"NET_BIND_SERVICE"}]
    caps = sorted({x for c in _containers(pod) for x in _caps_added(c)} - {"NET_BIND_SERVICE"})
    details = []
    if no_drop:
        details.append(
            f'{_names("container", no_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_names('container', adding)} must not include "
            f"{', '.join(repr_go(x) for x in caps)} in "
            "securityContext.capabilities.add"
        )
    return (details and ("unrestricted capabilities", "; ".join(details))) or None  # fmt: skip


def host_namespaces(pod: Obj) -> Violation | None:
    on = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if pod["spec"].get(k)]
    return (on and ("host namespaces", ", ".join(on))) or None


def host_path_volumes(pod: Obj) -> Violation | None:
    bad = [v["name"] for v in pod["spec"].get("volumes") or [] if "hostPath" in v]
    return (bad and ("hostPath volumes", _names("volume", bad))) or None


def host_ports(pod: Obj) -> Violation | None:
    used = [(c["name"], p["hostPort"]) for c in _containers(pod) for p in c.get("ports") or []
            if p.get("hostPort")]  # fmt: skip
    names = list(dict.fromkeys(n for n, _ in used))
    ports = ", ".join(str(p) for _, p in used)
    return (
        used
        and (
            "hostPort",
            f"{_names('container', names)} "
            f"{'uses hostPort' if len(used) == 1 else 'use hostPorts'} {ports}",
        )
    ) or None


def privileged(pod: Obj) -> Violation | None:
    bad = [c["name"] for c in _containers(pod) if _sc(c).get("privileged")]
    return (bad and ("privileged", f"{_names('container', bad)} must not set "
                    "securityContext.privileged=true")) or None  # fmt: skip


def restricted_volumes(pod: Obj) -> Violation | None:
    bad = [v["name"] for v in pod["spec"].get("volumes") or []
           if not set(v) - {"name"} <= RESTRICTED_VOLUMES]  # fmt: skip
    return (bad and ("restricted volume types", f"{_names('volume', bad)} uses restricted "
                    "volume type")) or None  # fmt: skip


def run_as_non_root(pod: Obj) -> Violation | None:
    pod_value = (pod["spec"].get("securityContext") or {}).get("runAsNonRoot")
    explicit_false = [c["name"] for c in _containers(pod) if _sc(c).get("runAsNonRoot") is False]
    unset = [c["name"] for c in _containers(pod) if _sc(c).get("runAsNonRoot") is None]
    details = []
    if pod_value is False:
        details.append("pod must not set securityContext.runAsNonRoot=false")
    if explicit_false:
        details.append(f"{_names('container', explicit_false)} must not set "
                       "securityContext.runAsNonRoot=false")  # fmt: skip
    if pod_value is None and unset:
        details.append(f"pod or {_names('container', unset)} must set "
                       "securityContext.runAsNonRoot=true")  # fmt: skip
    return (details and ("runAsNonRoot != true", "; ".join(details))) or None


def run_as_user(pod: Obj) -> Violation | None:
    details = []
    if (pod["spec"].get("securityContext") or {}).get("runAsUser") == 0:
        details.append("pod must not set runAsUser=0")
    bad = [c["name"] for c in _containers(pod) if _sc(c).get("runAsUser") == 0]
    if bad:
        details.append(f"{_names('container', bad)} must not set runAsUser=0")
    return (details and ("runAsUser=0", "; ".join(details))) or None


def _seccomp(obj: Obj | None) -> str | None:
    return ((obj or {}).get("seccompProfile") or {}).get("type")


def seccomp_baseline(pod: Obj) -> Violation | None:
    details = []
    if _seccomp(pod["spec"].get("securityContext")) == "Unconfined":
        details.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad = [c["name"] for c in _containers(pod) if _seccomp(_sc(c)) == "Unconfined"]
    if bad:
        details.append(f"{_names('container', bad)} must not set "
                       'securityContext.seccompProfile.type to "Unconfined"')  # fmt: skip
    return (details and ("seccompProfile", "; ".join(details))) or None


def seccomp_restricted(pod: Obj) -> Violation | None:
    good = ("RuntimeDefault", "Localhost")
    pod_value = _seccomp(pod["spec"].get("securityContext"))
    bad = [c["name"] for c in _containers(pod) if _seccomp(_sc(c)) not in good
           and not (_seccomp(_sc(c)) is None and pod_value in good)]  # fmt: skip
    if not bad:
        return None
    who = f"pod or {_names('container', bad)}" if pod_value is None else _names("container", bad)
    return ("seccompProfile", f'{who} must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost"')  # fmt: skip


def repr_go(text: str) -> str:
    """Go's %q of a plain string."""
    return f'"{text}"'


Check = Callable[[Obj], Violation | None]
# (check, level it starts at, checks it replaces), in the plugin's order
CHECKS: Final[tuple[tuple[Check, str], ...]] = (
    (allow_privilege_escalation, "restricted"),
    (capabilities_baseline, "baseline-only"),
    (capabilities_restricted, "restricted"),
    (host_namespaces, "baseline"),
    (host_path_volumes, "baseline"),
    (host_ports, "baseline"),
    (privileged, "baseline"),
    (restricted_volumes, "restricted"),
    (run_as_non_root, "restricted"),
    (run_as_user, "restricted"),
    (seccomp_baseline, "baseline-only"),
    (seccomp_restricted, "restricted"),
)


def violations(pod: Obj, level: str) -> list[Violation]:
    """What `pod` does that `level` forbids, in the plugin's order."""
    wanted = {"baseline": ("baseline", "baseline-only"), "restricted": ("baseline", "restricted")}
    found = [check(pod) for check, at in CHECKS if at in wanted.get(level, ())]
    return [v for v in found if v]


def _level(namespace: Obj | None, mode: str) -> tuple[str, str]:
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(f"{PREFIX}{mode}", "privileged")
    return (level if level in LEVELS else "privileged",
            labels.get(f"{PREFIX}{mode}-version", "latest"))  # fmt: skip


def _violation_text(pod: Obj, level: str, version: str) -> str:
    """`PodSecurity "restricted:latest": reason (detail), ...` ("" when none)."""
    found = violations(pod, level) if level != "privileged" else []
    if not found:
        return ""
    text = ", ".join(f"{reason} ({detail})" for reason, detail in found)
    return f'PodSecurity "{level}:{version}": {text}'


def _warn(text: str) -> None:
    pending = WARNINGS.get()
    if pending is not None and text not in pending:
        pending.append(text)


def enforce_pod_security(namespace: Obj | None, pod: Obj) -> None:
    """Refuse `pod` (403 Forbidden) when its namespace enforces a level it violates; warn
    when it violates the namespace's `warn` level."""
    warned = _violation_text(pod, *_level(namespace, "warn"))
    if warned:
        _warn(f"would violate {warned}")
    text = _violation_text(pod, *_level(namespace, "enforce"))
    if not text:
        return
    name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
    message = f'pods "{name}" is forbidden: violates {text}'
    raise ApiError(403, "Forbidden", message, object_details(BY_KIND["Pod"], name))


def warn_pod_template(namespace: Obj | None, template: Obj) -> None:
    """Warn (never refuse) when a workload's pod template violates the enforce or warn level,
    as the plugin does for Deployments and ReplicaSets."""
    pod = {"metadata": template.get("metadata") or {}, "spec": template.get("spec") or {}}
    for mode in ("enforce", "warn"):
        text = _violation_text(pod, *_level(namespace, mode))
        if text:
            _warn(f"would violate {text}")
