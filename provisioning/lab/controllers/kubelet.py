"""The kubelet: a scheduled pod becomes a network namespace wired to its node (VPC CNI style,
an address from the node's slice of the VPC) with its own hostname, /etc/hosts and filesystem
view (`podruntime`), pod hooks and container commands run inside it, and the pod is reported
Running. A pod deleted with a grace period shows Terminating: its processes get SIGTERM, then
SIGKILL when the grace period ends, it is unwired, and only then is the object removed (a
grace period of 0 removes it at once and stops it after). Exec and logs end here too."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
from typing import ClassVar

from netconform.errors import LabError
from provisioning.lab import network, ownership
from provisioning.lab.apiserver.errors import ApiError
from provisioning.lab.apiserver.model import Event, Obj
from provisioning.lab.controllers.base import Controller, LabContext, PodState
from provisioning.lab.controllers.confinement import confinement
from provisioning.lab.controllers.podruntime import (
    container_command,
    enter,
    start_holder,
    stop_holder,
    stop_processes,
)
from provisioning.lab.network import POD_GATEWAY, NodePlan

log = logging.getLogger("netconform.lab.kubelet")


class Kubelet(Controller):
    name: ClassVar[str] = "kubelet"
    watches: ClassVar[frozenset[str]] = frozenset({"Pod"})

    def __init__(self) -> None:
        self._next_host: dict[str, int] = {}
        self._ips_in_use: set[str] = set()
        self._dev_counter = 0
        self._holders: dict[str, asyncio.subprocess.Process] = {}
        self._terminating: set[tuple[str, str, str]] = set()

    async def start(self, lab: LabContext) -> None:
        await super().start(lab)
        for store in lab.api.stores.values():
            store.graceful_pods = True  # deletes of bound pods now wait for this kubelet

    async def stop(self) -> None:
        for state in list(self.lab.pods.values()):
            holder = self._holders.pop(state.netns, None)
            if holder is not None:
                await stop_holder(state, holder)

    async def on_event(self, cluster: str, event: Event) -> None:
        """Slow work runs in tasks so API calls return at once."""
        meta = event.obj["metadata"]
        key = (cluster, meta.get("namespace", ""), meta["name"])
        if event.type == "ADDED" and event.obj["spec"].get("nodeName"):
            self.lab.tasks.spawn(self._start_pod(cluster, event.obj))
        elif event.type == "MODIFIED" and meta.get("deletionTimestamp"):
            if key not in self._terminating:
                self._terminating.add(key)
                self.lab.tasks.spawn(self._terminate(cluster, event.obj))
        elif event.type == "DELETED":
            self.lab.tasks.spawn(self._stop_pod(cluster, event.obj, 0))

    def _node(self, cluster: str, node_name: str) -> NodePlan:
        for node in self.lab.region(cluster).nodes:
            if node.name == node_name:
                return node
        raise LabError(f"pod scheduled to unknown node {node_name!r} in {cluster}")

    def _allocate_ip(self, node: NodePlan) -> str:
        net = ipaddress.IPv4Network(node.pod_cidr)
        start = self._next_host.get(node.name, 2)
        for offset in range(net.num_addresses - 3):
            host = 2 + (start - 2 + offset) % (net.num_addresses - 3)
            candidate = str(net.network_address + host)
            if candidate not in self._ips_in_use:
                self._next_host[node.name] = host + 1
                self._ips_in_use.add(candidate)  # until its pod is fully unwired
                return candidate
        raise LabError(f"node {node.name} has no pod addresses left in {node.pod_cidr}")

    async def _start_pod(self, cluster: str, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        node = self._node(cluster, spec["nodeName"])
        uid = str(meta.get("uid", ""))[:8] or str(self._dev_counter)
        self._dev_counter += 1
        state = PodState(
            cluster=cluster,
            namespace=meta["namespace"],
            name=meta["name"],
            node=node,
            # the uid keeps a re-created pod of the same name apart from one still being removed
            netns=f"{self.lab.plan.prefix}-{cluster}-{meta['namespace']}-{meta['name']}-{uid}",
            dev=f"p{self._dev_counter}",
            ip=self._allocate_ip(node),
            spec=spec,
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        )
        key = (cluster, state.namespace, state.name)
        self.lab.pods[key] = state
        try:
            await asyncio.to_thread(wire_pod, state, self.lab.plan.owner)
            for hook in self.lab.pod_hooks:
                await hook.pod_started(state)
            # after the hooks: files they put in /etc/netns/NETNS (resolv.conf) are bound too
            holder = self._holders[state.netns] = await start_holder(state)
            state.holder_pid = holder.pid
            await self._run_commands(state)
        finally:
            state.started.set()
        if self.lab.pods.get(key) is not state:
            return  # deleted while it was being wired: _stop_pod undoes it
        state.log.append(
            f"pod {state.name} on {node.name} ip {state.ip} serving tcp {state.serving}"
        )
        try:
            await self.lab.store(cluster).update_pod_status(
                state.namespace, state.name, running_status(state)
            )
        except ApiError:
            log.info("pod %s/%s deleted while it was being wired", state.namespace, state.name)
            return
        self._started_events(cluster, pod)

    def _started_events(self, cluster: str, pod: Obj) -> None:
        for c in pod["spec"].get("containers") or []:
            image, name = c.get("image", ""), c["name"]
            for reason, message in (
                ("Pulled", f'Container image "{image}" already present on machine'),
                ("Created", f"Created container: {name}"),
                ("Started", f"Started container {name}"),
            ):
                self.lab.record_event(cluster, pod, reason, message, "kubelet")

    async def _run_commands(self, state: PodState) -> None:
        """Each container's command, where the image-to-behaviour mapping allows."""
        for container in state.spec.get("containers", []):
            argv, why = container_command(container, state.serving)
            state.log.append(f"container {container['name']}: {why}")
            if argv is None:
                continue
            proc = await asyncio.create_subprocess_exec(
                *enter(state.holder_pid, argv, lasting=True),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            self.lab.procs.add(proc)
            self.lab.tasks.spawn(_collect(self.lab, proc, state, container["name"]))

    async def _terminate(self, cluster: str, pod: Obj) -> None:
        """Graceful deletion: stop the pod within its grace period, then remove the object."""
        meta = pod["metadata"]
        key = (cluster, meta["namespace"], meta["name"])
        try:
            await self._stop_pod(cluster, pod, int(meta.get("deletionGracePeriodSeconds") or 0))
            store = self.lab.store(cluster)
            current = store.get("Pod", meta["namespace"], meta["name"])
            if current is not None and current["metadata"].get("uid") == meta.get("uid"):
                await store.delete("Pod", meta["namespace"], meta["name"], 0)
        finally:
            self._terminating.discard(key)

    async def _stop_pod(self, cluster: str, pod: Obj, grace: int) -> None:
        meta = pod["metadata"]
        key = (cluster, meta["namespace"], meta["name"])
        state = self.lab.pods.get(key)
        if state is None or (meta.get("uid") and not state.netns.endswith(meta["uid"][:8])):
            return
        self.lab.pods.pop(key)
        await state.started.wait()  # never unwire half-way through wiring
        for hook in self.lab.pod_hooks:
            hook.pod_stopping(state)
        holder = self._holders.pop(state.netns, None)
        if holder is not None:
            killed = await asyncio.to_thread(stop_processes, holder.pid, grace)
            if killed:
                state.log.append(f"killed {len(killed)} process(es) at the end of {grace}s")
            await stop_holder(state, holder)
        await asyncio.to_thread(unwire_pod, state)
        self._ips_in_use.discard(state.ip)


async def exec_in_pod(
    lab: LabContext, cluster: str, namespace: str, pod: str, container: str, argv: list[str]
) -> asyncio.subprocess.Process:
    """ExecHandler for the API server: the host's tools inside the pod's namespace."""
    state = lab.pods.get((cluster, namespace, pod))
    if state is None:
        raise LabError(f"pod {namespace}/{pod} has no network namespace yet")
    if not argv or ("/" not in argv[0] and shutil.which(argv[0]) is None):
        raise FileNotFoundError(argv[0] if argv else "")
    if not state.holder_pid:
        raise LabError(f"pod {namespace}/{pod} is still starting")
    state.execs += 1
    pipe = asyncio.subprocess.PIPE
    argv = [*confinement(state.spec, container), *argv]
    proc = await asyncio.create_subprocess_exec(
        *enter(state.holder_pid, argv), stdin=pipe, stdout=pipe, stderr=pipe
    )
    lab.procs.add(proc)
    lab.tasks.spawn(_reap(lab, proc))
    return proc


async def _collect(
    lab: LabContext, proc: asyncio.subprocess.Process, state: PodState, container: str
) -> None:
    """A container command's output into the pod's log, then its exit."""
    assert proc.stdout is not None
    async for line in proc.stdout:
        state.log.append(line.decode(errors="replace").rstrip("\n"))
    code = await proc.wait()
    lab.procs.discard(proc)
    state.log.append(f"container {container}: command exited with code {code}")


async def _reap(lab: LabContext, proc: asyncio.subprocess.Process) -> None:
    await proc.wait()
    lab.procs.discard(proc)


async def pod_log(
    lab: LabContext, cluster: str, namespace: str, pod: str, container: str, previous: bool
) -> str:
    """LogHandler for the API server: what happened in the pod's current container, or with
    `previous` in the one before its last restart (the kubelet keeps one)."""
    state = lab.pods.get((cluster, namespace, pod))
    if state is None:
        return ""
    if not previous:
        return "\n".join(state.log) + "\n"
    if state.previous_log is None:
        raise ApiError(
            400,
            "BadRequest",
            f'previous terminated container "{container}" in pod "{pod}" not found',
        )
    return "\n".join(state.previous_log) + "\n"


def restart_container(state: PodState) -> None:
    """The container restarted: its log begins anew, the old one is `--previous`."""
    state.previous_log = list(state.log)
    state.log.clear()  # in place: the pod's servers hold `state.log.append`


def running_status(state: PodState) -> Obj:
    """The status of a wired pod: Running and Ready, with its address."""
    containers = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "ready": True,
            "restartCount": 0,
            "state": {"running": {}},
            "imageID": "",
            "containerID": f"lab://{state.netns}",
        }
        for c in state.spec.get("containers", [])
    ]
    return {
        "phase": "Running",
        "podIP": state.ip,
        "podIPs": [{"ip": state.ip}],
        "hostIP": state.node.ip,
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
        ],
        "containerStatuses": containers,
    }


def wire_pod(state: PodState, owner: str) -> None:
    """A pod namespace with a /32 address, routed by its node (Calico/VPC CNI style); marked
    as the lab of `owner`'s."""
    network.add_netns([state.netns], owner)
    network.veth(state.node.netns, state.dev, state.netns, "eth0")
    network.ip_batch(
        state.netns,
        [
            "link set lo up",
            "link set eth0 up",
            f"addr add {state.ip}/32 dev eth0",
            f"route add {POD_GATEWAY} dev eth0 scope link",
            f"route add default via {POD_GATEWAY} dev eth0",
        ],
    )
    network.ip_batch(
        state.node.netns,
        [
            f"link set {state.dev} up",
            f"route add {state.ip}/32 dev {state.dev}",
        ],
    )
    # proxy ARP for the pod's gateway, answered at once as Calico sets it: the kernel default
    # delays proxy replies up to 0.8 s, which made a fresh pod's first pings late or lost
    network.sysctl(
        state.node.netns,
        f"net.ipv4.conf.{state.dev}.proxy_arp=1",
        f"net.ipv4.neigh.{state.dev}.proxy_delay=0",
    )


def unwire_pod(state: PodState) -> None:
    """Remove the pod's namespace and its node's route to it."""
    network.run(["ip", "netns", "delete", state.netns], check=False)
    ownership.unmark([state.netns])
    # the veth route left with the namespace; a fault's blackhole route would not
    network.run(["ip", "-n", state.node.netns, "route", "del", f"{state.ip}/32"], check=False)
