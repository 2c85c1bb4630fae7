"""What makes a pod's network namespace a pod: its own hostname, /etc/hosts and a private
writable filesystem view, every process of the pod in them, SIGTERM then SIGKILL on delete.

Each pod has one long-lived holder process (the pause container's part), started with
`ip netns exec NETNS unshare --uts --mount --propagation private`: it sets the hostname
(spec.hostname, else the pod name), mounts a fresh tmpfs over the writable places
(`WRITABLE`) and remounts `/` read-only in its own mount namespace, then sleeps. Every exec and
container command enters it by exact pid: `nsenter -t PID -u -m -n --wd=/root`, about as fast
as `ip netns exec` (2 ms either way, measured on the lab host). So nothing a pod writes
reaches the host: the writable places are the pod's own, and a write anywhere else fails with
`Read-only file system` (a clear error, where a real container's root would be writable).
The holder and the container commands carry a parent-death signal (`setpriv --pdeathsig`),
so none outlives a daemon killed outright. /etc/hosts is the kubelet-managed file, written to
`/etc/netns/NETNS/hosts`, which `ip netns exec` binds over /etc/hosts for the holder and so
for everything in the pod (as it binds any other file there, such as a resolv.conf).

Container commands, by the lab's image-to-behaviour mapping:
- a shell image (alpine, busybox...) with no `command`, `args` or ports: its shell, which
  runs once per `kubectl attach` session (apiserver/attach.py), so nothing runs meanwhile;
- no `command` (only the image's entrypoint, with or without `args`): the image's behaviour,
  i.e. the echo server on every declared TCP containerPort (agnhost, nginx, netshoot...);
- a `command` whose program this host has (`sleep N`, `nc -lk -p PORT`...): run inside the
  pod as written (`$(VAR)` expanded from the container's env), its output in the pod's log;
- except a listener on a port the echo server already serves (the probe pod's
  `nc -lk -p $(PROBE_PORT)`): the echo server stands in for it;
- a program this host lacks: not run, said in the pod's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from pathlib import Path

from netconform.errors import LabError, WaitTimeoutError
from netconform.waits import wait_until
from provisioning.lab.apiserver.attach import runs_a_shell
from provisioning.lab.apiserver.model import Obj
from provisioning.lab.controllers.base import PodState

WRITABLE = ("/tmp", "/var/tmp", "/root", "/home")
WORKDIR = "/root"
"""Where execs start (a tmpfs, so `kubectl cp` to a relative path lands in the pod)."""
HOLDER_TIMEOUT = 10.0
NETNS_ETC = Path("/etc/netns")
_HOLDER_SCRIPT = """set -e
hostname "$1"
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs "$d"; done
mount -t tmpfs -o mode=0700 tmpfs /root
mount -t tmpfs -o mode=0755 tmpfs /home
mount -o remount,bind,ro /
echo ready
exec sleep infinity
"""
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def pod_hostname(state: PodState) -> str:
    """spec.hostname, else the pod name cut to 63 characters, as the kubelet does."""
    name = str(state.spec.get("hostname") or state.name)
    return name[:63].rstrip("-.")


def hosts_file(state: PodState) -> str:
    """The kubelet-managed /etc/hosts of a pod."""
    return (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        f"{state.ip}\t{pod_hostname(state)}\n"
    )


async def start_holder(state: PodState) -> asyncio.subprocess.Process:
    """The pod's holder, its namespaces set up (LabError when it could not)."""
    etc = NETNS_ETC / state.netns
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "hosts").write_text(hosts_file(state))
    proc = await asyncio.create_subprocess_exec(
        # the holder dies with the daemon, even one killed outright (no pod outlives its lab)
        *("ip", "netns", "exec", state.netns, "setpriv", "--pdeathsig", "KILL"),
        *("unshare", "--uts", "--mount"),
        *("--propagation", "private", "sh", "-c", _HOLDER_SCRIPT, "holder", pod_hostname(state)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), HOLDER_TIMEOUT)
    except TimeoutError:
        line = b""
    if line.strip() != b"ready":
        await stop_holder(state, proc)
        why = (await proc.stderr.read()).decode(errors="replace").strip() or "no answer"
        raise LabError(
            f"pod {state.namespace}/{state.name}: could not set up its namespaces: {why}"
        )
    return proc


async def stop_holder(state: PodState, proc: asyncio.subprocess.Process) -> None:
    """End the holder (the pod's namespaces go with it) and remove its /etc files."""
    if proc.returncode is None:
        proc.kill()
    await proc.wait()
    etc = NETNS_ETC / state.netns
    with contextlib.suppress(FileNotFoundError):
        (etc / "hosts").unlink()
    with contextlib.suppress(OSError):  # another file (resolv.conf) may not be gone yet
        etc.rmdir()


def enter(holder_pid: int, argv: list[str], lasting: bool = False) -> list[str]:
    """`argv` run inside the pod: its network, hostname and filesystem view; a `lasting`
    one (a container command) dies with the daemon, as the holder does."""
    guard = ["setpriv", "--pdeathsig", "KILL"] if lasting else []
    return ["nsenter", "-t", str(holder_pid), "-u", "-m", "-n", f"--wd={WORKDIR}", *guard, *argv]


def pod_pids(holder_pid: int) -> list[int]:
    """Every process in the pod's mount namespace but the holder (exact namespace identity)."""
    try:
        mnt = os.readlink(f"/proc/{holder_pid}/ns/mnt")
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != holder_pid:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/ns/mnt") == mnt:
                    pids.append(int(entry))
    return pids


def stop_processes(holder_pid: int, grace: float) -> list[int]:
    """SIGTERM what runs in the pod, SIGKILL what is left after `grace` seconds; the pids
    that had to be killed."""
    _signal(pod_pids(holder_pid), signal.SIGTERM)
    if grace > 0:
        with contextlib.suppress(WaitTimeoutError):
            wait_until(lambda: not pod_pids(holder_pid), timeout=grace, name="pod_stopped")
    left = pod_pids(holder_pid)
    _signal(left, signal.SIGKILL)
    return left


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def expand(word: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables replaced, `$$` escapes a `$`."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(one, word)


def container_command(container: Obj, served: list[int]) -> tuple[list[str] | None, str]:
    """What the lab runs for a container (None: the image's behaviour) and why, for the log."""
    command = [str(w) for w in container.get("command") or []]
    if runs_a_shell(container):
        return None, "image behaviour: a shell, started for each kubectl attach session"
    if not command:
        return None, "image behaviour: echo server on the declared TCP ports"
    env = {str(e.get("name")): str(e.get("value", "")) for e in container.get("env") or []}
    argv = [expand(w, env) for w in (*command, *(str(a) for a in container.get("args") or []))]
    if shutil.which(argv[0]) is None:
        return None, f"command {argv[0]!r} is not on this host: image behaviour instead"
    listens = any(a.startswith("-") and not a.startswith("--") and "l" in a for a in argv[1:])
    netcat = Path(argv[0]).name in ("nc", "ncat", "netcat")
    if netcat and listens and any(str(p) in argv for p in served):
        return None, "listener on a served port: the echo server stands in"
    return argv, "command: " + " ".join(argv)
