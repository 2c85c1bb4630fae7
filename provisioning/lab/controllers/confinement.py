"""What a container's securityContext takes away, applied to what runs in a lab pod: the user
and group it runs as and the capabilities it keeps (the runtime's default set, minus `drop`,
plus `add`), through util-linux `setpriv`. A pod that drops ALL (Pod Security `restricted`)
then cannot open raw sockets: a file-capable `ping`/`fping` (cap_net_raw) fails to execute
("Operation not permitted"), as in a container whose bounding set lacks NET_RAW. The pod's
network namespace keeps the kernel's default `net.ipv4.ping_group_range` ("1 0"), so
unprivileged ICMP sockets are not offered either (containerd 2 widens it; the lab does not)."""

from __future__ import annotations

from typing import Any, Final

#: containerd's default capabilities of a container
DEFAULT_CAPABILITIES: Final = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
                               "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
                               "SYS_CHROOT", "KILL", "AUDIT_WRITE")  # fmt: skip


def _merged(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    pod_sc = spec.get("securityContext") or {}
    own = container.get("securityContext") or {}
    keys = ("runAsUser", "runAsGroup")
    return {**{k: pod_sc[k] for k in keys if k in pod_sc}, **own}


def kept_capabilities(container: dict[str, Any]) -> list[str] | None:
    """The capabilities the container keeps; None when it changes nothing (all of root's)."""
    caps = (container.get("securityContext") or {}).get("capabilities") or {}
    drop = {c.upper() for c in caps.get("drop") or []}
    add = [c.upper() for c in caps.get("add") or []]
    if not drop and not add:
        return None
    base = [] if "ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    return sorted({*base, *add})


def confinement(spec: dict[str, Any], name: str) -> list[str]:
    """The `setpriv` prefix for commands run in container `name` ([] when unconfined)."""
    containers: list[dict[str, Any]] = spec.get("containers") or []
    container = next((c for c in containers if c.get("name") == name), {})
    sc = _merged(spec, container)
    caps = kept_capabilities(container)
    uid = sc.get("runAsUser")
    if caps is None and uid in (None, 0):
        return []
    argv = ["setpriv"]
    if uid not in (None, 0):
        gid = sc.get("runAsGroup", uid)
        argv += [f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    if caps is not None:
        wanted = ",".join(f"+{c.lower()}" for c in caps)
        argv.append("--bounding-set=-all" + (f",{wanted}" if wanted else ""))
        argv.append("--inh-caps=-all")
    if sc.get("allowPrivilegeEscalation") is False:
        argv.append("--no-new-privs")
    return [*argv, "--"]
